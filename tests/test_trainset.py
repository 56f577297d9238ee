"""Training sets: snapshots, labels, immature pairs, and a model that learns from the features."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from leadml import DataError, Settings, load_data
from leadml.config import FeatureSettings, PassthroughSettings, TrainsetSettings
from leadml.features import FEATURES
from leadml.modeling.trainset import build_trainset, snapshot_dates


def test_snapshots_labels_and_report(tiny_tables):
    settings = Settings(trainset=TrainsetSettings(cadence_days=7, warmup_days=0))
    data = load_data(tiny_tables, settings)
    # The data ends 2025-02-05 (L1's SQL); with a 90-day horizon nothing is mature yet...
    with pytest.raises(DataError, match="no mature snapshot"):
        build_trainset(data)
    # ...but with a 14-day horizon the snapshots up to 2025-01-22 are.
    settings = Settings(
        trainset=TrainsetSettings(cadence_days=7, warmup_days=0),
        target={"stage": "sql", "horizon_days": 14},
    )
    ts = build_trainset(load_data(tiny_tables, settings))
    dates = snapshot_dates(load_data(tiny_tables, settings))
    # Every 7 days back from the end of the data, down to the first lead's creation.
    assert list(dates.strftime("%m-%d")) == ["01-01", "01-08", "01-15", "01-22", "01-29", "02-05"]
    report = ts.report.set_index(ts.report["as_of"].dt.strftime("%m-%d"))
    assert list(report["mature"]) == [True, True, True, True, False, False]
    # At 01-01 00:00 no lead exists yet (L1 is created at that very instant).
    assert report.loc["01-01", ["open_leads", "rows"]].tolist() == [0, 0]
    # 01-22: L1 (SQL on 02-05, within 14 days) and L2 are open; L1 is the one positive.
    assert report.loc["01-22", ["open_leads", "rows", "positives"]].tolist() == [2, 2, 1]
    assert report.loc["01-15", "positives"] == 0  # 02-05 is 21 days after 01-15
    # L1's SQL at exactly 02-05 00:00 is not before that snapshot: L1 is still open then.
    assert report.loc["02-05", "rows"] == 0 and report.loc["02-05", "open_leads"] == 3
    # Immature snapshots are counted, never labelled 0 in the frame.
    assert ts.frame["as_of"].max() == pd.Timestamp("2025-01-22", tz="UTC")
    summary = ts.summary()
    assert summary["immature_snapshots"] == 2 and summary["immature_pairs"] == 5
    assert summary["rows"] == len(ts.frame) == 5 and summary["positives"] == 1
    assert list(ts.frame.columns) == ["lead_id", "as_of", *FEATURES, "label"]
    assert str(ts.frame["label"].dtype) == "int8"
    assert ts.feature_names == list(FEATURES)


def test_start_and_end_bound_the_snapshots(tiny_tables):
    settings = Settings(target={"stage": "sql", "horizon_days": 14})
    data = load_data(tiny_tables, settings)
    dates = snapshot_dates(data, start="2025-01-10", end="2025-01-25 13:00")
    assert list(dates.strftime("%m-%d")) == ["01-11", "01-18", "01-25"]


@pytest.mark.slow
def test_a_gradient_boosting_model_ranks_test_leads_close_to_the_truth():
    """Train on early snapshots, test on the last 91 days of them after a one-horizon gap.

    The sample history knows each pair's exact conversion probability, so its AUC is the best any
    model can reach: a model far below it misses signal, and one above it would be leaking.
    """
    from leadml.synth import generate_history

    end, cadence, horizon = pd.Timestamp("2026-03-30", tz="UTC"), 14, 90
    test_dates = [end - pd.Timedelta(days=cadence * k) for k in range(91 // cadence + 1)]
    history = generate_history(n_leads=2500, seed=7, history_days=540, truth_as_of=test_dates)
    settings = Settings(
        trainset=TrainsetSettings(cadence_days=cadence),
        features=FeatureSettings(passthrough=PassthroughSettings(accounts=("tech_stack",))),
    )
    ts = build_trainset(load_data(history.tables(), settings), end=end)
    frame = ts.frame
    test = frame[frame["as_of"] >= min(test_dates)]
    train = frame[frame["as_of"] <= min(test_dates) - pd.Timedelta(days=horizon)]
    assert train["label"].sum() > 200 and test["label"].sum() > 200

    def prepare(part: pd.DataFrame) -> pd.DataFrame:
        X = part[ts.feature_names].copy()
        for column in X.columns:
            if X[column].dtype == "str":
                X[column] = pd.Categorical(X[column], sorted(train[column].dropna().unique()))
        return X

    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    model.fit(prepare(train), train["label"])
    scored = test.assign(model=model.predict_proba(prepare(test))[:, 1]).merge(
        history.truth[["lead_id", "as_of", "p_true"]], on=["lead_id", "as_of"], validate="1:1"
    )
    assert len(scored) == len(test)  # the truth covers exactly the open leads we scored

    def auc(column: str) -> float:
        value = roc_auc_score(scored["label"], scored[column])
        return max(value, 1 - value)

    model_auc, age_auc, truth_auc = auc("model"), auc("lead_age_days"), auc("p_true")
    print(f"AUC model {model_auc:.3f}, lead age {age_auc:.3f}, truth {truth_auc:.3f}")
    assert model_auc >= age_auc + 0.12
    assert model_auc >= truth_auc - 0.10
    assert model_auc <= truth_auc + 0.01  # beating the exact probabilities would mean a leak
