"""Nightly batch scoring: real features of a generated history, real models, real Parquet and a
real MLflow SQLite store in tmp_path -- no mocks.

One small history and two small models (logistic and gradient boosting) are built once for the
module; each test scores the same open leads.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from leadml import load_data
from leadml.cli import app
from leadml.config import Settings
from leadml.data.asof import label_pairs, open_leads
from leadml.data.profiles import psi, reference_profile
from leadml.data.validation import DataValidationError
from leadml.errors import TrackingError
from leadml.features import build_features, feature_catalogue
from leadml.modeling.calibration import calibrate
from leadml.modeling.models import make_candidate
from leadml.scoring import (
    AGREEMENT,
    OutputLockedError,
    ScoringModel,
    assign_tiers,
    partition_lock,
    score,
    score_to,
)
from leadml.scoring._explain import Explainer
from leadml.scoring._phrases import Phrasebook
from leadml.scoring._texts import fired_text, join_texts, reason_texts
from leadml.synth import generate_history

KEYS = ["lead_id", "as_of"]
EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


@pytest.fixture(scope="module")
def world():
    """A 1,500-lead history, its training frame and two calibrated models on real features."""
    with threadpool_limits(limits=1):
        history = generate_history(n_leads=1_500, seed=3, history_days=500)
        data = load_data(history.tables())
        end = history.end.floor("D")
        dates = [end - pd.Timedelta(days=d) for d in range(100, 400, 28)]
        labels = label_pairs(data, open_leads(data, dates))
        labels = labels[labels["mature"]]
        frame = build_features(data, labels[KEYS]).merge(labels[[*KEYS, "label"]], on=KEYS)
        names = [c for c in frame.columns if c not in (*KEYS, "label")]
        last = frame["as_of"].max()
        split = last - pd.Timedelta(days=56)
        train, cal = frame[frame["as_of"] < split], frame[frame["as_of"] >= split]
        models = {}
        for family in ("logistic", "hist_gradient_boosting"):
            model = make_candidate(family, train[names])
            if family == "hist_gradient_boosting":
                model.set_params(classifier__max_iter=40, classifier__max_leaf_nodes=15)
            model.fit(train[names], train["label"].astype(int))
            calibrated, _ = calibrate(model, cal[names], cal["label"].astype(int), cal["as_of"],
                                      ["sigmoid"], 500)  # fmt: skip
            profile = reference_profile(cal[names], calibrated.predict_proba(cal[names])[:, 1])
            models[family] = ScoringModel(
                calibrated, names, f"test-{family}", "1", "run-test", "object",
                {"family": family, "reference": profile},
            )  # fmt: skip
    return {"history": history, "data": data, "as_of": end, "models": models,
            "frame": frame, "names": names, "train": train, "cal": cal}  # fmt: skip


@pytest.fixture(scope="module")
def scored(world):
    return score(world["data"], world["as_of"], world["models"]["logistic"])


def _read(partition: Path) -> pd.DataFrame:
    return pd.read_parquet(partition / "part-0.parquet")


# --- the scores ---------------------------------------------------------------------------------


def test_one_row_per_open_lead_with_the_documented_columns_and_ranges(world, scored):
    scores = scored.scores
    open_now = open_leads(world["data"], world["as_of"])
    assert sorted(scores["lead_id"]) == sorted(open_now["lead_id"])
    assert scores["lead_id"].is_unique
    columns = ["mql_probability", "model_tier", "model_rank", "model_mql", "rule_fit_score",
               "rule_engagement_score", "rule_score", "rule_grade", "rule_mql", "rules_fired",
               "agreement", "top_reasons", "reason_1", "reason_1_feature", "reason_1_effect",
               "model_name", "model_version", "model_run_id", "as_of", "scored_at"]  # fmt: skip
    for column in columns:
        assert column in scores.columns, column
    p = scores["mql_probability"]
    assert p.between(0, 1).all() and p.notna().all()
    assert sorted(scores["model_rank"]) == list(range(1, len(scores) + 1))
    assert (scores.sort_values("model_rank")["mql_probability"].diff().dropna() <= 0).all()
    bands = Settings().scoring.tiers.probability
    for tier, low in bands.items():
        part = p[scores["model_tier"] == tier]
        assert (part >= low).all()
    assert scores["model_mql"].equals(scores["model_tier"].isin(["A", "B"]))
    expected = np.select(
        [scores["model_mql"] & scores["rule_mql"], scores["model_mql"], scores["rule_mql"]],
        ["both", "model_only", "rules_only"], "neither",
    )  # fmt: skip
    assert (scores["agreement"].astype(str) == expected).all()
    assert set(scores["agreement"].cat.categories) == set(AGREEMENT)
    assert (scores["as_of"] == world["as_of"]).all()
    # Every lead has at least one reason; a reason's sign matches its effect.
    assert scores["reason_1"].notna().mean() > 0.95
    named = scores["reason_1"].notna()
    signs = scores.loc[named, "reason_1"].astype(str).str[-3:]
    assert ((signs == "(+)") == (scores.loc[named, "reason_1_effect"] > 0)).all()
    assert scored.summary["expected_conversions"] == pytest.approx(p.sum())


def test_the_run_gives_what_the_features_rules_and_model_give_on_their_own(world, scored):
    """The run shares one attributes table between features and rules and trusts its own
    spine; its numbers must be those of the public functions called one by one."""
    from leadml.rules import SCORE_COLUMNS, rule_scores_as_of

    data, as_of, model = world["data"], world["as_of"], world["models"]["logistic"]
    scores = scored.scores.set_index("lead_id")
    rules = rule_scores_as_of(data, as_of, explain=False).set_index("lead_id").loc[scores.index]
    pd.testing.assert_frame_equal(
        scores[list(SCORE_COLUMNS)].astype({"rule_grade": str}), rules[list(SCORE_COLUMNS)]
    )
    features = build_features(data, open_leads(data, as_of)).set_index("lead_id")
    expected = model.model.predict_proba(features.loc[scores.index, model.feature_names])[:, 1]
    np.testing.assert_allclose(scores["mql_probability"], expected, rtol=1e-12)


def test_reasons_read_like_a_salesperson_would_say_them(scored):
    texts = " | ".join(scored.scores["reason_1"].dropna().astype(str).unique()[:200])
    assert re.search(r"\d+ [a-z-]+( [a-z-]+)* in the last \d+ days \([+-]\)", texts) or re.search(
        r"last activity \d+ days? ago", texts
    )
    assert "_" not in texts.replace("e.g.", "")  # no raw feature names


@pytest.mark.parametrize("family", ["logistic", "hist_gradient_boosting"])
def test_raising_a_top_positive_reason_raises_the_probability(world, family):
    """Move the feature named as a lead's top positive reason from the reference value to the
    lead's own: the model's probability goes up. Exact for the linear model (every lead); the
    tree model's path contributions must agree for nearly all leads."""
    model = world["models"][family]
    result = score(world["data"], world["as_of"], model)
    scores = result.scores.set_index("lead_id")
    features = build_features(world["data"], open_leads(world["data"], world["as_of"]))
    features = features.set_index("lead_id").loc[scores.index]
    positive = scores[scores["reason_1_effect"] > 0]
    assert len(positive) > 20
    explainer = Explainer(model.model, model.feature_names, {})
    rows, at_reference = [], []
    for lead, row in positive.head(150).iterrows():
        feature = str(row["reason_1_feature"])
        lead_row = features.loc[[lead], model.feature_names]
        moved = lead_row.copy()
        moved[feature] = pd.Series([_reference_of(feature, model)], index=moved.index).astype(
            lead_row[feature].dtype
        )
        rows.append(lead_row)
        at_reference.append(moved)
    p_lead = model.model.predict_proba(pd.concat(rows))[:, 1]
    p_ref = model.model.predict_proba(pd.concat(at_reference))[:, 1]
    agree = p_lead >= p_ref
    share = float(np.mean(agree))
    if family == "logistic":
        assert share == 1.0
    else:
        assert share >= 0.8, share
    assert explainer.method in ("linear", "tree")


def _reference_of(feature, model):
    from leadml.features import feature_specs

    spec = {f.name: f for f in feature_specs()}.get(feature)
    if spec is not None and spec.fill is not None:
        return spec.fill
    stored = model.reference["features"][feature]
    return stored["median"] if stored["kind"] == "number" else stored["mode"]


def test_tree_contributions_add_up_to_the_models_log_odds(world):
    model = world["models"]["hist_gradient_boosting"]
    X = world["cal"][model.feature_names].iloc[:400]
    explainer = Explainer(model.model, model.feature_names, {}, candidates=10_000)
    assert explainer.method == "tree"
    parts = explainer._parts
    raw, contributions = explainer._tree.explain(X)
    tree = explainer._tree
    np.testing.assert_allclose(
        raw, tree.baseline + tree.root_sum + contributions.sum(axis=1), atol=1e-9
    )
    np.testing.assert_allclose(parts.calibrate(raw), model.model.predict_proba(X)[:, 1], atol=1e-9)


def test_tiers_by_sales_capacity_fill_the_configured_shares(world):
    settings = Settings.model_validate({"scoring": {"tiers": {"by": "capacity"}}})
    scores = score(world["data"], world["as_of"], world["models"]["logistic"], settings).scores
    n = len(scores)
    shares = settings.scoring.tiers.capacity
    counts = scores["model_tier"].value_counts().reindex(list(shares)).cumsum()
    for tier, share in shares.items():
        assert counts[tier] == int(np.ceil(share * n))
    top = scores.sort_values("model_rank").head(counts["A"])
    assert (top["model_tier"] == "A").all()


# --- assembling: reason texts, joined texts, fired rules ----------------------------------------


def test_reason_texts_of_hand_made_leads():
    features = pd.DataFrame({
        "pricing_page_view_30d": np.array([3.2, 1.0, 0.0, 3.4], dtype="float32"),
        "days_since_last_event": np.array([12.4, np.nan, 0.2, 12.0], dtype="float32"),
        "industry": pd.array(["software", None, "retail", "software"], dtype="str"),
    })  # fmt: skip
    names = list(features.columns)
    index = np.array([[0, 1, 2], [1, 2, -1], [2, 0, 1], [0, -1, -1]], dtype="int32")
    effect = np.array([[0.1, -0.05, 0.02], [-0.2, 0.01, 0], [0.03, -0.01, 0.02], [0.05, 0, 0]],
                      dtype="float32")  # fmt: skip
    phrasebook = Phrasebook(Settings(), feature_catalogue(Settings()))
    texts, reason_features = reason_texts(index, effect, features, names, phrasebook)

    visits = "pricing-page visits in the last 30 days"
    assert [list(t.astype(object)) for t in texts] == [
        [f"3 {visits} (+)", "no activity yet (-)", "industry: retail (+)", f"3 {visits} (+)"],
        ["last activity 12 days ago (-)", "industry unknown (+)", f"no {visits} (-)", np.nan],
        ["industry: software (+)", np.nan, "last activity today (+)", np.nan],
    ]  # fmt: skip
    assert [list(f.astype(object)) for f in reason_features] == [
        [names[0], names[1], names[2], names[0]],
        [names[1], names[2], names[0], np.nan],
        [names[2], np.nan, names[1], np.nan],
    ]  # fmt: skip
    # One set of categories for every slot, in the order met: slot by slot, feature by feature,
    # value by value down the rows (the order scores have always had).
    met = [f"3 {visits}", "no activity yet", "industry: retail", f"no {visits}",
           "last activity 12 days ago", "industry unknown", "last activity today",
           "industry: software"]  # fmt: skip
    for text in texts:
        assert list(text.categories) == [f"{m} {s}" for m in met for s in ("(+)", "(-)")]


def test_joined_text_is_the_present_parts_joined_in_order():
    parts = [
        pd.Categorical(["a", "a b", None, "a", None, "b"]),
        pd.Categorical(["x", "x", None, None, "y", "x"]),
        pd.Categorical([None, "z", None, "z", None, None]),
    ]
    joined = join_texts(parts)
    expected = ["a; x", "a b; x; z", "", "a; z", "y", "b; x"]
    assert list(joined.astype(object)) == expected
    assert list(joined.categories) == sorted(set(expected))


def test_joined_text_of_many_slots_with_many_texts_each():
    """Ten slots of 1,000 texts: 1,001 ** 10 combinations would overflow a 64-bit key."""
    rng = np.random.default_rng(0)
    n, slots = 3_000, 10
    parts = [
        pd.Categorical.from_codes(rng.integers(-1, 1_000, n), [f"{j}:{k}" for k in range(1_000)])
        for j in range(slots)
    ]
    joined = join_texts(parts)
    rows = zip(*[p.astype(object) for p in parts], strict=True)
    assert list(joined.astype(object)) == [
        "; ".join(t for t in row if isinstance(t, str)) for row in rows
    ]
    assert list(joined.categories) == sorted(joined.categories)


def test_fired_rules_name_the_largest_points_first():
    ruled = pd.DataFrame({
        "lead_id": ["L1", "L2", "L3", "L4"],
        "points__vp": [25.0, 0.0, 7.5, 1e-9],
        "points__pricing_page": [0.0, 0.0, 15.0, 0.04],
        "cap__web": [-10.0, 0.0, np.nan, 0.0],
    })  # fmt: skip
    assert list(fired_text(ruled).astype(object)) == [
        "vp +25; cap:web -10", "", "pricing_page +15; vp +7.5", "pricing_page +0",
    ]  # fmt: skip


def test_fired_rules_with_equal_points_are_named_in_the_rules_order():
    ruled = pd.DataFrame({
        "points__a": [5.0, -10.0, 0.0],
        "points__b": [10.0, 10.0, 2.0],
        "points__c": [5.0, 10.0, 2.0],
        "points__d": [5.0, 10.0, -2.0],
    })  # fmt: skip
    assert list(fired_text(ruled).astype(object)) == [
        "b +10; a +5; c +5", "a -10; b +10; c +10", "b +2; c +2; d -2",
    ]  # fmt: skip
    # A lead of the benchmark, 45 rules: numpy's argpartition on AVX2 named r12, not r10.
    points = np.zeros((1, 45))
    points[0, [0, 6, 10, 12]] = [25, 15, -10, 10]
    ruled = pd.DataFrame(points, columns=[f"points__r{i:02d}" for i in range(45)])
    assert list(fired_text(ruled).astype(object)) == ["r00 +25; r06 +15; r10 -10"]


def test_tiers_are_the_same_for_lead_ids_held_by_numpy_or_arrow():
    probability = np.array([0.2, 0.9, 0.2, 0.5, 0.2])
    ids = ["L3", "L1", "L0", "L4", "L2"]
    by_numpy = assign_tiers(probability, np.array(ids, dtype=object), Settings())
    by_arrow = assign_tiers(probability, pd.array(ids, dtype="str"), Settings())
    assert list(by_numpy[1]) == list(by_arrow[1]) == [5, 1, 3, 2, 4]  # ties: by lead id
    assert list(by_numpy[0]) == list(by_arrow[0])


# --- writing ------------------------------------------------------------------------------------


def test_rerun_replaces_the_partition_with_the_same_scores(world, tmp_path):
    model = world["models"]["logistic"]
    first = score_to(world["data"], world["as_of"], tmp_path, model, csv=True, track=False)
    before = _read(first.path)
    second = score_to(world["data"], world["as_of"], tmp_path, model, csv=True, track=False)
    after = _read(second.path)
    assert first.path == second.path == tmp_path / f"as_of={world['as_of']:%Y-%m-%d}"
    pd.testing.assert_frame_equal(before.drop(columns="scored_at"), after.drop(columns="scored_at"))
    assert sorted(p.name for p in second.path.iterdir()) == [
        "_scores.csv", "_summary.json", "_summary.md", "part-0.parquet"
    ]  # fmt: skip
    hidden = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert hidden == []  # no staging folder, and no lock file once the run is over
    every_night = pd.read_parquet(tmp_path)  # as_of comes back from the partition
    assert len(every_night) == len(before)
    csv = pd.read_csv(second.path / "_scores.csv")
    assert len(csv) == len(before) and "top_reasons" in csv.columns


def test_a_failure_mid_run_keeps_the_previous_partition(world, tmp_path, monkeypatch):
    model = world["models"]["logistic"]
    done = score_to(world["data"], world["as_of"], tmp_path, model, track=False)
    snapshot = {p.name: p.read_bytes() for p in done.path.iterdir()}

    calls = {"n": 0}
    original = Explainer.explain

    def fail_on_second_chunk(self, X):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("killed mid-run")
        return original(self, X)

    monkeypatch.setattr(Explainer, "explain", fail_on_second_chunk)
    settings = Settings.model_validate({"scoring": {"chunk_rows": 1_000}})
    with pytest.raises(RuntimeError, match="killed mid-run"):
        score_to(world["data"], world["as_of"], tmp_path, model, settings, track=False)
    monkeypatch.setattr(Explainer, "explain", original)

    import leadml.scoring._nightly as nightly

    def broken_csv(scores, path):
        path.write_text("lead_id\n")  # half a file, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nightly, "_write_csv", broken_csv)
    from leadml.scoring import OutputError

    with pytest.raises(OutputError, match="previous partition"):
        score_to(world["data"], world["as_of"], tmp_path, model, csv=True, track=False)
    assert {p.name: p.read_bytes() for p in done.path.iterdir()} == snapshot
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def test_a_second_run_on_the_same_partition_is_refused_while_the_first_holds_the_lock(
    world, tmp_path
):
    name = f"as_of={world['as_of']:%Y-%m-%d}"
    holding, release = threading.Event(), threading.Event()

    def first_run():
        with partition_lock(tmp_path, name):
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=first_run)
    thread.start()
    try:
        assert holding.wait(10)
        with pytest.raises(OutputLockedError) as refused:
            score_to(world["data"], world["as_of"], tmp_path, world["models"]["logistic"],
                     track=False)  # fmt: skip
        message = str(refused.value)
        assert f"pid {__import__('os').getpid()}" in message and name in message
        assert not (tmp_path / name).exists()
    finally:
        release.set()
        thread.join()
    # Once released, the next run goes through.
    assert score_to(world["data"], world["as_of"], tmp_path, world["models"]["logistic"],
                    track=False).path.exists()  # fmt: skip


def test_invalid_input_is_reported_first_and_nothing_is_written(world, tmp_path):
    tables = dict(world["history"].tables())
    tables["leads"] = tables["leads"].drop(columns="created_at")
    out = tmp_path / "out"
    with pytest.raises(DataValidationError, match="created_at"):
        score_to(tables, world["as_of"], out, world["models"]["logistic"], track=False)
    assert not out.exists()


def test_lead_ids_that_are_email_addresses_are_refused(world, tmp_path):
    tables = dict(world["history"].tables())
    for name in ("leads", "events", "stages"):
        keyed = tables[name]["lead_id"].str.lower() + ".person@example.com"
        tables[name] = tables[name].assign(lead_id=keyed)
    from leadml.errors import DataError

    with pytest.raises(DataError, match="e-mail addresses") as refused:
        score_to(tables, world["as_of"], tmp_path / "out", world["models"]["logistic"],
                 track=False)  # fmt: skip
    assert "l***@example.com" in str(refused.value)
    assert not EMAIL.search(str(refused.value).encode())
    assert not (tmp_path / "out").exists()


# --- model resolution, MLflow and PII -----------------------------------------------------------


@pytest.fixture(scope="module")
def registry(world, tmp_path_factory, mlflow_template):
    """A real MLflow store with the logistic model logged, registered, exported and promoted."""
    import shutil
    from types import SimpleNamespace

    from leadml.modeling.evaluation import evaluate
    from leadml.modeling.inputs import EventSummary
    from leadml.rules import rule_scores
    from leadml.tracking import log_training, promote

    folder = tmp_path_factory.mktemp("registry")
    shutil.copyfile(mlflow_template, folder / "mlflow.db")
    settings = Settings.model_validate(
        {
            "tracking": {
                "uri": f"sqlite:///{folder / 'mlflow.db'}",
                "export_dir": str(folder / "models"),
            }
        }
    )
    model, names = world["models"]["logistic"], world["names"]
    cal = world["cal"]
    parts = {"train": world["train"], "calibration": cal, "test": cal}
    windows = pd.DataFrame([
        {"window": w, "first_snapshot": f["as_of"].min(), "last_snapshot": f["as_of"].max(),
         "snapshots": f["as_of"].nunique(), "rows": len(f), "positives": int(f["label"].sum())}
        for w, f in parts.items()
    ]).set_index("window")  # fmt: skip
    test = cal.merge(rule_scores(world["data"], cal[KEYS], explain=False), on=KEYS, how="left")
    test["model_probability"] = model.model.predict_proba(test[names])[:, 1]
    test["rule_probability"] = (test["rule_score"].rank(pct=True) * 0.1).clip(1e-4, 1 - 1e-4)
    test = test[[*KEYS, "label", "model_probability", "rule_score", "rule_probability",
                 "rule_mql", "industry", "company_size_band", "lead_source"]]  # fmt: skip
    # What leadml.modeling.training.train returns, built from the module's real features and model.
    result = SimpleNamespace(
        settings=settings, windows=windows, feature_names=names, model=model.model,
        family="logistic", params={}, cold_start=None, trained=True, test=test,
        search=pd.DataFrame([{"family": "logistic", "params": {}, "cv_log_loss": 0.2,
                              "cv_roc_auc": 0.8}]),
        calibration=pd.DataFrame([{"method": "sigmoid", "cross_fitted_log_loss": 0.2}]),
        evaluation=evaluate(test, settings.evaluation), input_example=cal[names].head(5),
        frames={w: f[["as_of", *names, "label"]] for w, f in parts.items()},
        inputs=EventSummary.of(settings),
    )  # fmt: skip
    tracked = log_training(result, plots=False)
    promote(settings, version=tracked.model_version)
    return {"settings": settings, "folder": folder, "version": tracked.model_version}


def test_default_model_is_the_registered_champion_and_the_run_is_tracked(world, registry, tmp_path):
    from mlflow.tracking import MlflowClient

    settings = registry["settings"]
    result = score_to(world["data"], world["as_of"], tmp_path, None, settings, csv=True)
    assert result.model.source.startswith("registry")
    assert result.model.version == str(registry["version"])
    assert result.summary["drift"]["score_psi"] is not None  # the reference came with the model
    assert result.summary["drift"]["features"]
    client = MlflowClient(tracking_uri=settings.tracking.uri)
    run = client.get_run(result.tracking_run_id)
    assert run.data.tags["leadml.model_version"] == str(registry["version"])
    assert run.data.metrics["open_leads"] == len(result.scores)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == settings.tracking.scoring_experiment
    logged = {a.path for a in client.list_artifacts(result.tracking_run_id)}
    assert {"summary.json", "summary.md"} <= logged

    # No e-mail address or name of the sample anywhere: scores, CSV, summaries, MLflow.
    leads = world["history"].leads
    names = set(leads["first_name"]) | set(leads["last_name"])
    emails = set(leads["email"])
    for path in [*tmp_path.rglob("*"), *registry["folder"].rglob("*")]:
        if not path.is_file() or path.suffix == ".db":
            continue
        text = path.read_bytes()
        assert not EMAIL.search(text), path
        words = set(re.findall(rb"[A-Z][a-z]+", text))
        leaked = {n.encode() for n in names} & words
        assert not leaked, (path, leaked)
        assert not any(e.encode() in text for e in emails)
    summary = json.loads((result.path / "_summary.json").read_text())
    assert summary["missed_by_rules"]["lead_ids"]


def test_unreachable_store_falls_back_to_the_export_with_a_warning(
    world, registry, caplog, tmp_path
):
    folder = registry["folder"]
    settings = Settings.model_validate({"tracking": {
        "uri": f"sqlite:///{folder / 'missing' / 'mlflow.db'}",
        "export_dir": str(folder / "models")}})  # fmt: skip
    with caplog.at_level("WARNING", logger="leadml.scoring"):
        result = score(world["data"], world["as_of"], None, settings)
    assert result.model.store_unreachable and "unreachable" in result.model.source
    assert any("tracking store unreachable" in r.message for r in caplog.records)
    assert result.model.version == str(registry["version"])
    # The nightly job scores with the export and, the store being down, does not try to log.
    written = score_to(world["data"], world["as_of"], tmp_path / "scores", None, settings)
    assert written.tracking_run_id is None and written.model.store_unreachable
    assert (written.path / "part-0.parquet").is_file()


def test_no_store_and_no_export_fails_clearly(world, tmp_path):
    settings = Settings.model_validate(
        {
            "tracking": {
                "uri": f"sqlite:///{tmp_path / 'none.db'}",
                "export_dir": str(tmp_path / "models"),
            }
        }
    )
    with pytest.raises(TrackingError, match="no model to score with"):
        score(world["data"], world["as_of"], None, settings)
    assert not (tmp_path / "none.db").exists()  # never created by scoring


def test_cli_scores_with_an_export_and_exits_with_meaningful_codes(world, registry, tmp_path):
    runner = CliRunner()
    data = tmp_path / "data"
    from leadml.synth import write_history

    write_history(world["history"], data)
    export = registry["folder"] / "models" / "leadml-mql" / f"v{registry['version']}"
    args = [
        "score",
        "--data",
        str(data),
        "--as-of",
        f"{world['as_of']:%Y-%m-%d}",
        "--out",
        str(tmp_path / "out"),
        "--model",
        str(export),
        "--no-track",
        "--csv",
    ]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "open leads scored" in done.output
    assert (tmp_path / "out" / f"as_of={world['as_of']:%Y-%m-%d}" / "_scores.csv").exists()

    name = f"as_of={world['as_of']:%Y-%m-%d}"
    with partition_lock(tmp_path / "out", name):
        locked = runner.invoke(app, args)
    assert locked.exit_code == 7
    assert "another leadml run" in locked.output

    leads = pd.read_parquet(data / "leads.parquet")
    leads.drop(columns="created_at").to_parquet(data / "leads.parquet")
    broken = runner.invoke(app, [*args[:6], str(tmp_path / "elsewhere"), *args[7:]])
    assert broken.exit_code == 3
    assert "created_at" in broken.output
    assert not (tmp_path / "elsewhere").exists()


def test_psi_is_zero_for_the_reference_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    values = pd.Series(rng.poisson(3, 5_000).astype("float32"))
    profile = reference_profile(pd.DataFrame({"x": values}))["features"]["x"]
    assert psi(values, profile) == pytest.approx(0.0, abs=1e-9)
    assert psi(values + 3, profile) > 0.2
    cats = pd.Series(rng.choice(["a", "b", "c"], 5_000))
    profile = reference_profile(pd.DataFrame({"c": cats}))["features"]["c"]
    assert psi(cats, profile) == pytest.approx(0.0, abs=1e-9)
    assert psi(pd.Series(["a"] * 5_000), profile) > 0.2
