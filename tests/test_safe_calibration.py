"""Calibration can never reorder leads, whatever window it is fitted on; the prior shift moves
the rate, never the order; training survives windows and folds that hold one outcome."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from leadml.config import ModelSettings
from leadml.modeling.calibration import (
    STRICTLY_INCREASING,
    calibrate,
    calibrated_log_odds,
    fit_prior_shift,
    shift_log_odds,
)
from leadml.modeling.models import fit_robustly, make_candidate, search_folds

HOURS = pd.Timedelta(hours=1)


def _window(n: int, signal: float, rate: float, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Leads whose label follows ``x`` with strength ``signal`` (0: noise, < 0: reversed)."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n)})
    logit = np.log(rate / (1 - rate)) + signal * X["x"].to_numpy()
    return X, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)


@functools.cache
def _model(seed: int):
    X, y = _window(2_000, 1.5, 0.2, seed)
    return make_candidate("logistic", X).fit(X, y)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    signal=st.sampled_from([-3.0, -1.0, 0.0, 0.5, 2.0]),
    rate=st.floats(0.02, 0.6),
    n=st.integers(40, 1_500),
    methods=st.sets(st.sampled_from(["sigmoid", "isotonic", "temperature"]), min_size=1),
    seed=st.integers(0, 10_000),
)
def test_calibrated_probabilities_never_reorder_the_model_scores(signal, rate, n, methods, seed):
    model = _model(seed % 7)
    X, y = _window(n, signal, rate, seed)
    as_of = pd.Series(pd.Timestamp("2026-01-01", tz="UTC") + HOURS * np.arange(n))
    calibrated, table = calibrate(model, X, pd.Series(y), as_of, sorted(methods), 20)
    chosen = table.attrs["chosen"]

    fresh, fresh_y = _window(1_000, 1.0, 0.3, seed + 1)
    raw = model.decision_function(fresh)
    p = calibrated.predict_proba(fresh)[:, 1]
    order = np.argsort(raw, kind="stable")
    assert np.all(np.diff(p[order]) >= -1e-12), f"{chosen} reorders leads"
    if chosen in STRICTLY_INCREASING:
        assert np.all(np.diff(p[order]) > 0) or np.ptp(raw) == 0
        assert roc_auc_score(fresh_y, p) == pytest.approx(roc_auc_score(fresh_y, raw), abs=1e-12)
    # On the calibration window itself as well (where a reversed label once won).
    if 0 < y.sum() < n:
        p_window = calibrated.predict_proba(X)[:, 1]
        if chosen in STRICTLY_INCREASING:
            assert roc_auc_score(y, p_window) == pytest.approx(
                roc_auc_score(y, model.decision_function(X)), abs=1e-12
            )
    # Reversed windows cannot be ranked: nothing is fitted to them (a noise window can pass
    # the bootstrap test by chance, one time in forty; its calibrator still keeps the order).
    if signal < 0 and n >= 1_000 and 0 < y.sum() < n:
        assert chosen in ("intercept", "none") and table.attrs["note"]


@pytest.mark.slow
@settings(max_examples=15, deadline=None)
@given(
    shift=st.floats(-3, 3).filter(lambda s: abs(s) > 0.01),
    seed=st.integers(0, 1_000),
    method=st.sampled_from(["sigmoid", "isotonic"]),
)
def test_a_prior_shift_moves_the_rate_not_the_order(shift, seed, method):
    model = _model(seed % 5)
    X, y = _window(3_000, 1.5, 0.2, seed)
    as_of = pd.Series(pd.Timestamp("2026-01-01", tz="UTC") + HOURS * np.arange(len(y)))
    calibrated, _ = calibrate(model, X, pd.Series(y), as_of, [method], 20)
    shifted = shift_log_odds(calibrated, shift)
    before, after = calibrated.predict_proba(X)[:, 1], shifted.predict_proba(X)[:, 1]
    order = np.argsort(before, kind="stable")
    assert np.all(np.diff(after[order]) >= -1e-12)
    assert np.sign(after.mean() - before.mean()) in (np.sign(shift), 0)


def test_the_prior_shift_follows_a_risen_rate_and_ignores_chance():
    model = _model(0)
    X, y = _window(4_000, 1.5, 0.1, 1)
    as_of = pd.Series(pd.Timestamp("2026-01-01", tz="UTC") + HOURS * np.arange(len(y)))
    calibrated, _ = calibrate(model, X, pd.Series(y), as_of, ["sigmoid"], 20)
    later, later_y = _window(4_000, 1.5, 0.3, 2)  # the rate tripled, the signal the same
    shift = fit_prior_shift(calibrated_log_odds(calibrated, later), later_y)
    assert shift.applied and shift.shift > 0.5
    corrected = shift_log_odds(calibrated, shift.shift).predict_proba(later)[:, 1]
    assert corrected.mean() == pytest.approx(later_y.mean(), abs=0.005)
    same, same_y = _window(4_000, 1.5, 0.1, 3)  # the rate unchanged: no correction
    assert not fit_prior_shift(calibrated_log_odds(calibrated, same), same_y).applied


def test_calibration_without_conversions_keeps_the_model_probabilities():
    model = _model(0)
    X, _ = _window(500, 1.0, 0.2, 4)
    as_of = pd.Series(pd.Timestamp("2026-01-01", tz="UTC") + HOURS * np.arange(len(X)))
    calibrated, table = calibrate(model, X, pd.Series(np.zeros(len(X), int)), as_of,
                                  ["sigmoid", "isotonic"], 20)  # fmt: skip
    assert table.attrs["chosen"] == "none" and "no conversions" in table.attrs["note"]
    np.testing.assert_allclose(calibrated.predict_proba(X)[:, 1], model.predict_proba(X)[:, 1])


def test_the_search_skips_folds_with_one_outcome_and_says_which():
    X, y = _window(600, 1.5, 0.3, 5)
    y[:100] = 0  # the first fold predates the first conversion, as in a young CRM
    folds = [(np.arange(0, 100), np.arange(100, 200)), (np.arange(0, 300), np.arange(300, 600))]
    found = search_folds(X, pd.Series(y), folds, ModelSettings(candidates=["logistic"]))
    assert found.skipped == ["search fold 1 skipped: its training rows (100) hold no conversions"]
    assert found.table["folds"].tolist() == [1, 1]


def test_with_nothing_to_search_the_defaults_are_used_and_said():
    X, y = _window(200, 1.5, 0.3, 6)
    folds = [(np.arange(0, 100), np.arange(100, 200))]
    y[:100] = 0
    found = search_folds(X, pd.Series(y), folds, ModelSettings())
    assert found.family == "logistic" and found.params == {}
    assert "nothing could be searched" in found.skipped[-1]
    found.best.fit(X, y)  # the defaults still make a model


def test_a_fold_too_small_for_early_stopping_is_recorded_not_raised():
    X, y = _window(400, 1.5, 0.3, 7)
    y[:40] = 0
    y[3] = 1  # one conversion: early stopping's stratified tenth cannot be split off
    folds = [(np.arange(0, 40), np.arange(40, 400))]
    found = search_folds(X, pd.Series(y), folds,
                         ModelSettings(candidates=["hist_gradient_boosting"]))  # fmt: skip
    assert found.table.empty and found.family == "hist_gradient_boosting"
    assert len(found.skipped) == 3
    assert all("search fold 1, hist_gradient_boosting" in s and "the fit failed on 40 rows" in s
               for s in found.skipped[:2])  # fmt: skip
    assert "nothing could be searched" in found.skipped[2]
    model, note = fit_robustly(found.best, X.iloc[:40], y[:40])
    assert "early stopping was turned off" in note
    assert model.predict_proba(X)[:, 1].std() > 0


def _trained(data, frame, built):
    from threadpoolctl import threadpool_limits

    from leadml.modeling.training import train

    with threadpool_limits(limits=1):
        return train(data, trainset=type(built)(frame, built.report))


@pytest.mark.slow
def test_training_survives_empty_and_constant_features_and_one_outcome_folds(sample_data):
    """Shapes of a young CRM: a feature empty and one constant in the training window, the
    earliest snapshots without a conversion."""
    from leadml.modeling.trainset import build_trainset

    built = build_trainset(sample_data)
    frame = built.frame.assign(revenue=np.nan, region="emea")
    first = frame["as_of"] < frame["as_of"].quantile(0.25)
    frame.loc[first, "label"] = 0
    result = _trained(sample_data, frame, built)
    assert result.trained
    assert {"revenue", "region"}.isdisjoint(result.feature_names)
    notes = "\n".join(result.notes)
    assert "feature revenue is empty in the training window: left out" in notes
    assert "feature region is constant in the training window: left out" in notes
    assert "search fold 1 skipped: its training rows" in notes


def test_a_history_whose_first_months_never_convert_places_windows_by_conversions():
    """The calendar training window holds no conversion (a CRM whose first deal is won months
    after its first lead): the windows follow the conversions instead of a cold start."""
    from leadml.config import Settings
    from leadml.modeling.windows import describe_windows, place_windows

    rng = np.random.default_rng(0)
    dates = pd.date_range("2024-01-01", periods=104, freq="7D", tz="UTC").repeat(200)

    def young(converting_from: float) -> pd.DataFrame:
        late = dates >= dates[int(len(dates) * converting_from)]
        labels = (late & (rng.random(len(dates)) < 0.3)).astype(int)
        return pd.DataFrame({"lead_id": np.arange(len(dates)), "as_of": dates, "label": labels})

    placed, note = place_windows(young(0.5), Settings())
    windows = describe_windows(placed)
    assert note.startswith("the calendar windows (91 + 91 days) hold too few conversions")
    assert note.endswith("windows sized by their share of the conversions are used")
    assert windows["positives"].min() >= 100
    # Converting only in the last 40 %: no room for two 90-day gaps, calibration cross-fitted.
    placed, note = place_windows(young(0.6), Settings())
    assert note.endswith("with calibration cross-fitted inside the training window")
    assert set(placed["window"].dropna()) == {"train", "test"}
    _, none = place_windows(young(0.0), Settings())
    assert none is None  # evidence everywhere: the calendar windows, as always


@pytest.mark.slow
def test_too_few_conversions_for_a_calibration_window_cross_fits_inside_training(sample_dir):
    from conftest import FAST_SETTINGS
    from leadml import Settings, load_data
    from leadml.modeling.trainset import build_trainset

    split = {"placement": "conversions", "calibration_share": 0.01, "min_window_positives": 20}
    data = load_data(sample_dir, Settings.model_validate({**FAST_SETTINGS, "split": split}))
    built = build_trainset(data)
    result = _trained(data, built.frame, built)
    assert result.trained
    assert result.windows.loc["calibration", "rows"] == 0
    assert "calibration cross-fitted inside the training window" in result.notes[0]
    assert result.calibration.attrs["chosen"] in ("sigmoid (cross-fitted)", "none")
    probability = result.model.predict_proba(result.frames["test"][result.feature_names])[:, 1]
    assert ((probability > 0) & (probability < 1)).all()
