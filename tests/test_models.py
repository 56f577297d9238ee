from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from leadml.config import ModelSettings
from leadml.modeling.calibration import calibrate
from leadml.modeling.models import make_candidate, search, time_folds

WEEK = pd.Timedelta(days=7)
GAP = pd.Timedelta(days=28)


def snapshots(n_rows: int = 6_000, weeks: int = 30, seed: int = 0) -> pd.DataFrame:
    """Weekly snapshots with a known signal, text categories, booleans and missing values."""
    rng = np.random.default_rng(seed)
    as_of = pd.Timestamp("2024-01-01", tz="UTC") + WEEK * rng.integers(0, weeks, n_rows)
    visits = rng.poisson(2, n_rows).astype("float32")
    seniority = rng.choice(["vp", "manager", "student"], n_rows)
    free_mail = rng.random(n_rows) < 0.3
    recency = np.where(visits > 0, rng.exponential(20, n_rows), np.nan)
    logit = -3 + 0.6 * visits + (seniority == "vp") * 1.0 - (seniority == "student") * 2 - free_mail
    y = (rng.random(n_rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(n_rows)],
            "as_of": as_of,
            "visits": visits,
            "seniority": pd.array(seniority, dtype="str"),
            "is_free_mail": free_mail,
            "days_since_last_visit": recency.astype("float32"),
            "label": y,
        }
    ).sort_values("as_of", ignore_index=True)


FEATURES = ["visits", "seniority", "is_free_mail", "days_since_last_visit"]


def test_time_folds_leave_a_gap_before_each_validation_block():
    frame = snapshots()
    folds = list(time_folds(frame["as_of"], 3, GAP))
    assert len(folds) == 3
    for train, valid in folds:
        assert frame["as_of"].iloc[train].max() <= frame["as_of"].iloc[valid].min() - GAP


@pytest.mark.parametrize("family", ["logistic", "hist_gradient_boosting"])
def test_candidates_take_the_frame_as_it_comes(family):
    frame = snapshots(2_000)
    model = make_candidate(family, frame[FEATURES]).fit(frame[FEATURES], frame["label"])
    unseen = frame[FEATURES].head(3).assign(seniority=["astronaut", None, "vp"])
    p = model.predict_proba(unseen)[:, 1]
    assert ((p > 0) & (p < 1)).all()


def test_search_ranks_every_candidate_and_learns_the_signal():
    frame = snapshots()
    result = search(frame[FEATURES], frame["label"], frame["as_of"], ModelSettings(), GAP)
    assert len(result.table) == 4  # 2 logistic + 2 boosting settings
    assert result.table["cv_log_loss"].is_monotonic_increasing
    assert result.table["cv_roc_auc"].min() > 0.7
    assert result.family in ("logistic", "hist_gradient_boosting")


def test_calibration_repairs_a_distorted_model_and_skips_isotonic_on_few_positives():
    frame = snapshots(8_000)
    fit_part, cal_part = frame.iloc[:4_000], frame.iloc[4_000:].reset_index(drop=True)
    model = make_candidate("logistic", frame[FEATURES]).set_params(classifier__C=0.5)
    # Train on positives counted five times: probabilities too high, as resampling would give.
    weights = np.where(fit_part["label"] == 1, 5.0, 1.0)
    model.fit(fit_part[FEATURES], fit_part["label"], classifier__sample_weight=weights)
    raw = model.predict_proba(cal_part[FEATURES])[:, 1]
    calibrated, table = calibrate(
        model,
        cal_part[FEATURES],
        cal_part["label"],
        cal_part["as_of"],
        ["sigmoid", "isotonic", "temperature"],
        isotonic_min_positives=10**6,
    )
    assert "isotonic" not in set(table["method"])
    fixed = calibrated.predict_proba(cal_part[FEATURES])[:, 1]
    assert log_loss(cal_part["label"], fixed) < log_loss(cal_part["label"], raw) - 0.01
    assert (
        abs(fixed.mean() - cal_part["label"].mean())
        < 0.01
        < abs(raw.mean() - cal_part["label"].mean())
    )
