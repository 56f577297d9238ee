"""Models: candidate pipelines, a small time-ordered search, and calibration.

Plain scikit-learn throughout, so a fitted model is one estimator that takes the feature frame as
it comes (text categories, booleans, missing values) and returns probabilities.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, QuantileTransformer

from leadml.config import ModelSettings
from leadml.evaluation import auc_interval

#: Small grids: enough to avoid a bad setting, small enough for a nightly retrain.
GRIDS: dict[str, list[dict]] = {
    "logistic": [{"classifier__C": c} for c in (0.05, 0.5)],
    "hist_gradient_boosting": [
        {"classifier__max_leaf_nodes": leaves, "classifier__l2_regularization": l2}
        for leaves, l2 in ((15, 1.0), (31, 10.0))
    ],
}


def split_columns(X: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Numeric (numbers and booleans) and categorical (everything else) feature columns."""
    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    return numeric, [c for c in X.columns if c not in numeric]


def make_candidate(family: str, X: pd.DataFrame, random_state: int = 0) -> Pipeline:
    """An unfitted pipeline of the given family for the columns of ``X``."""
    numeric, categorical = split_columns(X)
    if family == "logistic":
        prepare = ColumnTransformer(
            [
                (
                    "numeric",
                    make_pipeline(
                        SimpleImputer(strategy="median", add_indicator=True),
                        # Counts are heavy-tailed; a normal-quantile map keeps one whale from
                        # dominating a linear model.
                        QuantileTransformer(
                            # Fewer quantiles than the rows a fold fits on (small exports).
                            n_quantiles=int(np.clip(len(X) // 20, 10, 1_000)),
                            output_distribution="normal",
                            subsample=100_000,
                            random_state=0,
                        ),
                    ),
                    numeric,
                ),
                (
                    "categorical",
                    OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20),
                    categorical,
                ),
            ]
        )
        classifier = LogisticRegression(C=0.5, max_iter=2_000)
    elif family == "hist_gradient_boosting":
        prepare = ColumnTransformer(
            [
                (
                    "categorical",
                    OrdinalEncoder(
                        handle_unknown="use_encoded_value",
                        unknown_value=np.nan,
                        encoded_missing_value=np.nan,
                        max_categories=250,  # the trees handle at most 255 bins
                    ),
                    categorical,
                ),
                ("numeric", "passthrough", numeric),
            ]
        )
        # Early stopping on a held-out tenth picks the number of trees, the costliest
        # setting to search.
        classifier = HistGradientBoostingClassifier(
            max_iter=300,
            learning_rate=0.1,
            max_leaf_nodes=31,
            l2_regularization=1.0,
            early_stopping=True,
            validation_fraction=0.1,
            n_iter_no_change=10,
            categorical_features=[True] * len(categorical) + [False] * len(numeric),
            random_state=random_state,
        )
    else:
        raise ValueError(f"unknown model family {family!r}")
    return Pipeline([("prepare", prepare), ("classifier", classifier)])


def time_folds(
    as_of: pd.Series, n_folds: int, gap: pd.Timedelta
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window folds over snapshot dates, with a gap of ``gap`` before each validation
    block so that no training label (which looks ``gap`` ahead) overlaps it."""
    dates = np.sort(as_of.unique())
    blocks = np.array_split(dates, n_folds + 1)
    values = as_of.to_numpy()
    for block in blocks[1:]:
        start, end = block[0], block[-1]
        train = np.flatnonzero(values <= start - gap)
        valid = np.flatnonzero((values >= start) & (values <= end))
        if len(train) and len(valid):
            yield train, valid


@dataclass
class SearchResult:
    best: Pipeline  # unfitted, with the winning parameters
    family: str
    params: dict
    table: pd.DataFrame  # one row per candidate and setting, best first
    # Folds or candidates that could not be used, and why (one class, too few rows, a failed
    # fit); and, when nothing could be searched, why the defaults were used.
    skipped: list[str] = field(default_factory=list)


def search(
    X: pd.DataFrame,
    y: pd.Series,
    as_of: pd.Series,
    settings: ModelSettings,
    gap: pd.Timedelta,
) -> SearchResult:
    """Pick the family and setting with the lowest mean log loss over time-ordered folds."""
    return search_folds(X, y, list(time_folds(as_of, settings.search_folds, gap)), settings)


def search_folds(
    X: pd.DataFrame,
    y: pd.Series,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    settings: ModelSettings,
) -> SearchResult:
    """Pick the family and setting with the lowest mean log loss over the given folds
    ((train rows, validation rows) positions: time-ordered, or stratified without a time).

    A fold whose either side holds one outcome cannot score a candidate: it is skipped and
    recorded, as is a fit that fails on a small fold. When no fold is left, the first candidate
    family's defaults are used, and the result says so.
    """
    skipped, usable = [], []
    for number, (train, valid) in enumerate(folds, start=1):
        why = _unusable(y.iloc[train], "training") or _unusable(y.iloc[valid], "validation")
        if why:
            skipped.append(f"search fold {number} skipped: {why}")
        else:
            usable.append((number, train, valid))
    rows = []
    for family in settings.candidates:
        base = make_candidate(family, X, settings.random_state)
        for params in GRIDS[family]:
            losses, aucs = [], []
            for number, train, valid in usable:
                try:
                    model = clone(base).set_params(**params).fit(X.iloc[train], y.iloc[train])
                except ValueError as exc:  # e.g. early stopping on a fold too small to split
                    skipped.append(
                        f"search fold {number}, {family} {params}: the fit failed on "
                        f"{len(train):,} rows ({str(exc).splitlines()[0][:160]})"
                    )
                    continue
                p = model.predict_proba(X.iloc[valid])[:, 1]
                losses.append(log_loss(y.iloc[valid], p, labels=[0, 1]))
                aucs.append(roc_auc_score(y.iloc[valid], p))
            if losses:
                rows.append(
                    {
                        "family": family,
                        "params": params,
                        "cv_log_loss": float(np.mean(losses)),
                        "cv_roc_auc": float(np.mean(aucs)),
                        "folds": len(losses),
                    }
                )
    if not rows:
        family = settings.candidates[0]
        skipped.append(
            f"nothing could be searched ({len(folds)} fold(s), {len(usable)} with both "
            f"outcomes on each side): {family} with its default settings was used"
        )
        default = make_candidate(family, X, settings.random_state)
        empty = pd.DataFrame(columns=["family", "params", "cv_log_loss", "cv_roc_auc", "folds"])
        return SearchResult(default, family, {}, empty, skipped)
    table = pd.DataFrame(rows).sort_values("cv_log_loss", ignore_index=True)
    winner = table.iloc[0]
    best = make_candidate(winner["family"], X, settings.random_state).set_params(**winner["params"])
    return SearchResult(best, winner["family"], dict(winner["params"]), table, skipped)


def _unusable(y: pd.Series, side: str) -> str | None:
    counts = np.bincount(np.asarray(y, dtype="int64"), minlength=2)
    if counts.min() == 0:
        outcome = "conversions" if counts[1] == 0 else "non-conversions"
        return f"its {side} rows ({len(y):,}) hold no {outcome}"
    return None


def fit_robustly(model: Pipeline, X: pd.DataFrame, y: pd.Series) -> tuple[Pipeline, str | None]:
    """Fit ``model``; if early stopping cannot split its validation share off ``X`` (too few
    rows of one outcome), fit again without early stopping and say so."""
    try:
        return model.fit(X, y), None
    except ValueError as exc:
        classifier = model.named_steps["classifier"]
        if not getattr(classifier, "early_stopping", False):
            raise
        model.set_params(classifier__early_stopping=False)
        return model.fit(X, y), (
            f"early stopping was turned off for the final fit ({str(exc).splitlines()[0][:160]})"
        )


# --------------------------------------------------------------------------------------------
# Calibration: never reorders leads


#: Methods whose probabilities are a strictly increasing function of the model's score, so the
#: ranking (and the ROC AUC) is exactly the model's. Isotonic is non-decreasing: it may tie.
STRICTLY_INCREASING = frozenset({"sigmoid", "temperature", "intercept", "none"})


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
        fitted = FrozenEstimator(calibrated.calibrated_classifiers_[0].estimator)
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


def _increasing(calibrated: CalibratedClassifierCV) -> bool:
    """Whether every calibrator is non-decreasing in the model's score."""
    for calibrator in calibrated.calibrated_classifiers_[0].calibrators:
        if hasattr(calibrator, "a_") and not calibrator.a_ < 0:  # p = expit(-(a s + b))
            return False
        if hasattr(calibrator, "increasing_") and not calibrator.increasing_:
            return False
    return True


def _fit_calibration(frozen, X, y, score, method: str) -> CalibratedClassifierCV | None:
    """``method`` fitted on the whole window, in sigmoid form where it has one: temperature
    ``softmax(beta * (-s, s))`` is the sigmoid of slope ``2 beta``, the intercept and identity
    fallbacks are sigmoids of slope 1. None when a fitted sigmoid would reverse the order."""
    if method in ("sigmoid", "isotonic"):
        calibrated = CalibratedClassifierCV(frozen, method=method).fit(X, y)
        return calibrated if _increasing(calibrated) else None
    if method == "temperature":
        beta = CalibratedClassifierCV(frozen, method="temperature").fit(X, y)
        slope = 2.0 * float(beta.calibrated_classifiers_[0].calibrators[0].beta_)
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
    sigmoid = calibrated.calibrated_classifiers_[0].calibrators[0]
    sigmoid.a_, sigmoid.b_ = -float(slope), -float(intercept)
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
    """Log-odds of the calibrated probabilities (clipped away from 0 and 1)."""
    p = np.clip(calibrated.predict_proba(X)[:, 1], 1e-6, 1 - 1e-6)
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
    for calibrator in shifted.calibrated_classifiers_[0].calibrators:
        if hasattr(calibrator, "b_"):
            calibrator.b_ = float(calibrator.b_) - shift
        else:
            levels = np.clip(calibrator.y_thresholds_, 1e-6, 1 - 1e-6)
            calibrator.y_thresholds_ = expit(np.log(levels / (1 - levels)) + shift)
            calibrator._build_f(calibrator.X_thresholds_, calibrator.y_thresholds_)
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
