"""Calibration that never reorders leads, and the prior shift that lets it follow a moving
conversion rate.

Every calibrator is a non-decreasing function of the model's score, kept in the shape
``CalibratedClassifierCV(FrozenEstimator(model))`` so that a calibrated model stays one
scikit-learn estimator (scoring's explainer reads it); the prior shift is an intercept on its
log-odds, fitted on the latest mature rows and carried along their trend.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import log_loss
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline

from leadml.config import ModelSettings
from leadml.modeling import sklearn_internals as sk
from leadml.modeling.evaluation import auc_interval

#: Methods whose probabilities are a strictly increasing function of the model's score, so the
#: ranking (and the ROC AUC) is exactly the model's. Isotonic is non-decreasing: it may tie.
STRICTLY_INCREASING = frozenset({"sigmoid", "temperature", "intercept", "none"})
#: Rows :func:`calibrated_log_odds` predicts at once: the pipeline's dense intermediates for all
#: 1 M mature rows of the 100 k-lead bench (127 features) took 4.3 GiB at once, leadml train's
#: peak; in chunks they are freed and reused.
PREDICT_ROWS = 100_000


def calibrate(
    model: Pipeline,
    X: pd.DataFrame,
    y: pd.Series,
    as_of: pd.Series,
    methods: Sequence[str],
    isotonic_min_positives: int,
    *,
    groups: pd.Series | None = None,
    random_state: int = 0,
) -> tuple[CalibratedClassifierCV, pd.DataFrame]:
    """Calibrate a fitted model on the calibration window, never reordering its leads.

    Each method is cross-fitted on the two time halves of the window (fit on one, log loss on
    the other, both ways), so a flexible method cannot win by memorising; the winner is then
    fitted on the whole window. Every calibrator is a non-decreasing function of the model's
    score: a sigmoid whose slope comes out of the wrong sign is dropped, temperature scaling
    becomes the sigmoid it is (positive slope, no intercept), isotonic is increasing.

    When the model cannot rank the window (the lower bound of a bootstrap 95 % interval of its
    ROC AUC there is not above 0.5), no method is fitted to it: calibration falls back to an
    intercept that keeps the model's own scores and matches the window's conversion rate
    (``intercept``); with no conversion at all, the model's own probabilities are used
    (``none``). ``groups`` (the lead of each row) keeps a lead's snapshots together in the
    bootstrap.

    Returns the calibrated model and a table of the methods tried (cross-fitted log loss, or
    why not used), the chosen one first; ``table.attrs`` holds ``chosen``, ``note`` (why it
    fell back, or None), ``roc_auc`` and ``roc_auc_interval`` on the window and
    ``uncalibrated_log_loss``.
    """
    frozen = FrozenEstimator(model)
    y = np.asarray(y, dtype="int64")
    score = _decision(model, X)
    auc, low, high = auc_interval(y, score, groups, random_state=random_state)
    rows, note = [], None
    if not y.any() or y.all():
        outcome = "conversions" if not y.any() else "non-conversions"
        chosen = "none"
        note = (
            f"calibration skipped: the calibration window ({len(y):,} rows) holds no "
            f"{outcome}; the model's own probabilities are used"
        )
    elif not low > 0.5:
        chosen = "intercept"
        note = (
            f"the model does not rank the calibration window better than chance (ROC AUC "
            f"{auc:.3f}, 95 % interval {low:.3f}-{high:.3f}): calibration fell back to an "
            "intercept that keeps the model's scores and matches the window's conversion rate"
        )
    else:
        rows = _cross_fit(frozen, X, y, as_of, methods, isotonic_min_positives)
        usable = [r for r in rows if not r["note"]]
        chosen = min(usable, key=lambda r: r["cross_fitted_log_loss"])["method"] if usable else None
        if chosen is None:
            chosen = "intercept"
            note = (
                "no calibration method kept the model's order on the calibration window (each "
                "fitted a slope of the wrong sign): calibration fell back to an intercept"
            )
    calibrated = _fit_calibration(frozen, X, y, score, chosen)
    if calibrated is None:  # the sigmoid on the whole window came out of the wrong sign
        chosen = "intercept"
        note = (
            "the sigmoid fitted on the whole calibration window had a slope of the wrong "
            "sign: calibration fell back to an intercept"
        )
        calibrated = _fit_calibration(frozen, X, y, score, chosen)
    if chosen not in [r["method"] for r in rows]:
        rows.append({"method": chosen, "cross_fitted_log_loss": np.nan, "note": note})
    table = pd.DataFrame(rows).assign(chosen=lambda t: t["method"] == chosen)
    table = table.sort_values("chosen", ascending=False, kind="stable", ignore_index=True)
    uncalibrated = expit(score)  # a binary classifier's probability of its log-odds
    table.attrs |= {
        "chosen": chosen,
        "note": note,
        "roc_auc": auc,
        "roc_auc_interval": (low, high),
        "uncalibrated_log_loss": float(log_loss(y, uncalibrated, labels=[0, 1])),
    }
    return calibrated, table


def calibrate_on_window(
    model: Pipeline, window: pd.DataFrame, features: Sequence[str], settings: ModelSettings
) -> tuple[CalibratedClassifierCV, pd.DataFrame]:
    """:func:`calibrate` on a training set's calibration ``window`` (its ``features``,
    ``label``, ``as_of`` and ``lead_id``) with ``settings``' methods: how ``leadml train``
    calibrates the searched model and the learned points table alike."""
    return calibrate(
        model,
        window[list(features)],
        window["label"],
        window["as_of"],
        settings.calibration_methods,
        settings.isotonic_min_positives,
        groups=window["lead_id"],
        random_state=settings.random_state,
    )


def calibrate_cross_fitted(
    model: Pipeline, X: pd.DataFrame, y: pd.Series, groups: pd.Series
) -> tuple[CalibratedClassifierCV, pd.DataFrame]:
    """Calibration without a window of its own (a history too short for one): a sigmoid fitted
    on the training window's out-of-fold scores (three folds, a lead's snapshots in one), the
    model then refitted on the whole window. A slope of the wrong sign keeps the model's own
    probabilities instead, as :func:`calibrate` does.

    Returns the calibrated (and fitted) model and a one-row table like :func:`calibrate`'s.
    """
    folds = list(GroupKFold(n_splits=3).split(X, y, groups))
    try:
        calibrated = CalibratedClassifierCV(model, cv=folds, ensemble=False).fit(X, y)
    except ValueError:  # early stopping on a fold too small to split off its validation share
        if not getattr(model.named_steps["classifier"], "early_stopping", False):
            raise
        model = clone(model).set_params(classifier__early_stopping=False)
        calibrated = CalibratedClassifierCV(model, cv=folds, ensemble=False).fit(X, y)
    chosen, note = "sigmoid (cross-fitted)", None
    if not _increasing(calibrated):
        fitted = FrozenEstimator(sk.calibrated_model(sk.calibrations(calibrated)[0]))
        calibrated = _sigmoid_form(fitted, X, 1.0, 0.0)
        chosen = "none"
        note = (
            "the sigmoid cross-fitted inside the training window had a slope of the wrong sign: "
            "the model's own probabilities are used"
        )
    row = {"method": chosen, "cross_fitted_log_loss": np.nan, "note": note or "", "chosen": True}
    table = pd.DataFrame([row])
    table.attrs |= {"chosen": chosen, "note": note}
    return calibrated, table


def _decision(model, X: pd.DataFrame) -> np.ndarray:
    """The model's log-odds: what sklearn's calibrators are fitted on."""
    return np.asarray(model.decision_function(X), dtype="float64")


def _cross_fit(frozen, X, y, as_of, methods, isotonic_min_positives) -> list[dict]:
    tried = [m for m in methods if m != "isotonic" or y.sum() >= isotonic_min_positives]
    dates = np.sort(as_of.unique())
    if len(dates) >= 2:
        middle = dates[len(dates) // 2]
        halves = [(as_of < middle).to_numpy(), (as_of >= middle).to_numpy()]
    else:  # one snapshot (a bulk import, a long cadence): halves by position
        halves = [np.arange(len(y)) < len(y) // 2, np.arange(len(y)) >= len(y) // 2]
    rows = []
    for method in tried or ["sigmoid"]:
        losses, wrong_sign = [], 0
        for fit_on, score_on in (halves, halves[::-1]):
            if len(np.unique(y[fit_on])) < 2 or not score_on.any():
                continue
            calibrated = CalibratedClassifierCV(frozen, method=method).fit(X[fit_on], y[fit_on])
            if not _increasing(calibrated):
                wrong_sign += 1
                continue
            p = calibrated.predict_proba(X[score_on])[:, 1]
            losses.append(log_loss(y[score_on], p, labels=[0, 1]))
        note = ""
        if wrong_sign:
            note = "dropped: its slope came out of the wrong sign (it would reverse the ranking)"
        elif not losses:
            note = "dropped: neither half of the window holds both outcomes"
        loss = float(np.mean(losses)) if losses and not note else np.nan
        rows.append({"method": method, "cross_fitted_log_loss": loss, "note": note})
    return rows


def _calibrators(calibrated: CalibratedClassifierCV) -> list:
    """The calibrators of the (first and, here, only) calibration of ``calibrated``."""
    return sk.calibrators(sk.calibrations(calibrated)[0])


def _increasing(calibrated: CalibratedClassifierCV) -> bool:
    """Whether every calibrator is non-decreasing in the model's score."""
    return all(sk.is_non_decreasing(c) for c in _calibrators(calibrated))


def _fit_calibration(frozen, X, y, score, method: str) -> CalibratedClassifierCV | None:
    """``method`` fitted on the whole window, in sigmoid form where it has one: temperature
    ``softmax(beta * (-s, s))`` is the sigmoid of slope ``2 beta``, the intercept and identity
    fallbacks are sigmoids of slope 1. None when a fitted sigmoid would reverse the order."""
    if method in ("sigmoid", "isotonic"):
        calibrated = CalibratedClassifierCV(frozen, method=method).fit(X, y)
        return calibrated if _increasing(calibrated) else None
    if method == "temperature":
        beta = CalibratedClassifierCV(frozen, method="temperature").fit(X, y)
        slope = 2.0 * sk.temperature_beta(_calibrators(beta)[0])
        return _sigmoid_form(frozen, X, slope, 0.0)
    intercept = _intercept(score, y) if method == "intercept" else 0.0
    return _sigmoid_form(frozen, X, 1.0, intercept)


def _sigmoid_form(frozen, X, slope: float, intercept: float) -> CalibratedClassifierCV:
    """A sigmoid calibration ``expit(slope * s + intercept)`` with the given parameters.

    Fitted for its structure on ten rows labelled 0 and 1 in turn (the window may hold one
    outcome only; sklearn's five internal folds need both in each), then given its parameters.
    """
    placeholder = X.iloc[np.arange(10) % len(X)]
    calibrated = CalibratedClassifierCV(frozen, method="sigmoid").fit(placeholder, [0, 1] * 5)
    sk.set_sigmoid_parameters(_calibrators(calibrated)[0], -float(slope), -float(intercept))
    return calibrated


def _intercept(log_odds: np.ndarray, y: np.ndarray) -> float:
    """The shift ``c`` for which ``expit(log_odds + c)`` averages to the rate of ``y``: the
    maximum-likelihood intercept of a model that keeps ``log_odds`` as they are."""
    target = float(np.mean(y))
    target = min(max(target, 1e-6), 1 - 1e-6)
    return float(brentq(lambda c: expit(log_odds + c).mean() - target, -50.0, 50.0))


# --------------------------------------------------------------------------------------------
# Prior shift: the conversion rate moves, the ranking stays


def calibrated_log_odds(calibrated: CalibratedClassifierCV, X: pd.DataFrame) -> np.ndarray:
    """Log-odds of the calibrated probabilities (clipped away from 0 and 1), predicted
    :data:`PREDICT_ROWS` rows at a time."""
    rows = X.iloc if hasattr(X, "iloc") else X
    starts = range(0, len(X), PREDICT_ROWS) or range(1)  # no rows: predict_proba's own error
    p = np.concatenate([calibrated.predict_proba(rows[i : i + PREDICT_ROWS])[:, 1] for i in starts])
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


@dataclass
class PriorShift:
    """An intercept added to the calibrated log-odds so that they follow the conversion rate
    where it is heading: ``shift`` (0 when the rate did not move beyond chance); the latest
    mature rows of the window (``rows``, ``positives`` conversions) convert at ``observed`` where
    the calibrated model expected ``expected``. ``trend`` is the change of
    log-odds per 30 days, when the rate moved steadily across the window (else None), carried
    forward to ``at``, the instant the shift is for."""

    shift: float
    rows: int
    positives: int
    observed: float
    expected: float
    applied: bool
    trend: float | None = None
    at: pd.Timestamp | None = None

    def describe(self) -> str:
        latest = (
            f"the latest mature rows convert at {self.observed:.1%} where calibration expected "
            f"{self.expected:.1%}"
        )
        if not self.applied:
            return f"no correction: {latest}, within chance ({self.rows:,} rows)"
        how = f"log-odds shifted by {self.shift:+.3f}"
        if self.trend is not None:
            how += (
                f", following a steady trend of {self.trend:+.3f} log-odds per 30 days to "
                f"{self.at:%Y-%m-%d}"
            )
        return f"{latest} ({self.rows:,} rows, {self.positives:,} conversions): {how}"


def fit_prior_shift(
    log_odds: np.ndarray,
    y: np.ndarray,
    times: pd.Series | None = None,
    at: pd.Timestamp | None = None,
    *,
    latest_days: int = 28,
    min_positives: int = 50,
) -> PriorShift:
    """The intercept on a window's calibrated ``log_odds`` (:func:`calibrated_log_odds`) that
    matches its conversion rate, and where it is heading.

    With ``times`` and ``at``: an intercept and a slope in time are fitted to the window's rows
    (a logistic regression with the calibrated log-odds as offset); when the slope is beyond
    chance (two standard errors), the intercept is carried along it to ``at``, the instant the
    model will be used. Otherwise, the intercept that matches the latest rows
    (:func:`latest_rows`). Either is applied only when larger than two of its standard errors.
    """
    y = np.asarray(y, dtype="int64")
    latest = np.ones(len(y), dtype=bool)
    if times is not None:
        latest = latest_rows(times, y, latest_days, min_positives)
    expected = float(expit(log_odds[latest]).mean()) if len(y) else float("nan")
    observed = float(y[latest].mean()) if len(y) else float("nan")
    counts = (int(latest.sum()), int(y[latest].sum()), observed, expected)
    if len(y) == 0 or y[latest].min() == y[latest].max():
        return PriorShift(0.0, *counts, applied=False)
    level = _intercept(log_odds[latest], y[latest])
    p = expit(log_odds[latest] + level)
    level_variance = 1 / max(float(np.sum(p * (1 - p))), 1e-12)
    if times is not None and at is not None:
        times = pd.Series(times).reset_index(drop=True)
        months = ((times - times.max()) / pd.Timedelta(days=30)).to_numpy(dtype="float64")
        (_, slope), covariance = _offset_regression(log_odds, y, months)
        if abs(slope) > 2 * np.sqrt(covariance[1, 1]):
            # The level of the latest rows, carried along the window's trend to ``at``.
            ahead = (pd.Timestamp(at) - times[latest].mean()) / pd.Timedelta(days=30)
            shift = level + slope * ahead
            spread = np.sqrt(level_variance + ahead**2 * covariance[1, 1])
            applied = abs(shift) > 2 * spread
            return PriorShift(shift if applied else 0.0, *counts, applied, slope, pd.Timestamp(at))
    applied = abs(level) > 2 * np.sqrt(level_variance)
    return PriorShift(level if applied else 0.0, *counts, applied)


def _offset_regression(
    offset: np.ndarray, y: np.ndarray, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood ``(a, b)`` of ``P(y) = expit(offset + a + b x)`` by Newton's method,
    and their covariance (the inverse Fisher information)."""
    design = np.column_stack([np.ones(len(x)), x])
    beta = np.zeros(2)
    for _ in range(100):
        p = expit(offset + design @ beta)
        information = (design * (p * (1 - p))[:, None]).T @ design
        step = np.linalg.solve(information + 1e-9 * np.eye(2), design.T @ (y - p))
        beta += np.clip(step, -5, 5)
        if np.abs(step).max() < 1e-10:
            break
    return beta, np.linalg.inv(information + 1e-9 * np.eye(2))


def shift_of(shift: PriorShift | None) -> float:
    """The log-odds a prior shift adds (0 without one)."""
    return 0.0 if shift is None else shift.shift


def shift_log_odds(calibrated: CalibratedClassifierCV, shift: float) -> CalibratedClassifierCV:
    """A copy of ``calibrated`` whose probabilities are ``expit(logit(p) + shift)``: the same
    order, a different conversion rate. Kept inside the calibrator (a sigmoid's intercept, an
    isotonic step's levels), so the model stays one scikit-learn estimator."""
    shifted = copy.deepcopy(calibrated)
    if shift == 0.0:
        return shifted
    for calibrator in _calibrators(shifted):
        sigmoid = sk.sigmoid_parameters(calibrator)
        if sigmoid is not None:
            sk.set_sigmoid_parameters(calibrator, sigmoid[0], float(sigmoid[1]) - shift)
        else:
            levels = np.clip(calibrator.y_thresholds_, 1e-6, 1 - 1e-6)
            sk.set_isotonic_levels(calibrator, expit(np.log(levels / (1 - levels)) + shift))
    return shifted


def latest_rows(times: pd.Series, y: np.ndarray, days: int, min_positives: int) -> np.ndarray:
    """Mask of the latest rows: the last ``days`` days of ``times``, widened back one distinct
    time at a time until they hold ``min_positives`` conversions (or every row).

    Examples
    --------
    >>> t = pd.Series(pd.to_datetime(["2026-01-01", "2026-02-01", "2026-03-01", "2026-03-20"]))
    >>> latest_rows(t, np.array([1, 0, 1, 0]), days=28, min_positives=1).tolist()
    [False, False, True, True]
    """
    times = pd.Series(times).reset_index(drop=True)
    y = np.asarray(y)
    start = times.max() - pd.Timedelta(days=days)
    earlier = np.sort(times[times < start].unique())[::-1]
    for moment in (start, *earlier):
        latest = (times >= moment).to_numpy()
        if y[latest].sum() >= min_positives:
            return latest
    return np.ones(len(times), dtype=bool)


def prior_shift(
    log_odds: np.ndarray, y: np.ndarray, times: pd.Series, at: pd.Timestamp, settings: ModelSettings
) -> PriorShift | None:
    """:func:`fit_prior_shift` with the ``model`` settings; None when ``model.prior_shift`` is
    off. Apply it with :func:`shift_log_odds` (a model) or to the log-odds themselves."""
    if not settings.prior_shift:
        return None
    return fit_prior_shift(
        log_odds,
        y,
        times,
        at,
        latest_days=settings.prior_shift_days,
        min_positives=settings.prior_shift_min_positives,
    )
