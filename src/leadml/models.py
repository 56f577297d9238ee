"""Models: candidate pipelines, a small time-ordered search, and calibration.

Plain scikit-learn throughout, so a fitted model is one estimator that takes the feature frame as
it comes (text categories, booleans, missing values) and returns probabilities.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, QuantileTransformer

from leadml.config import ModelSettings

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


def search(
    X: pd.DataFrame,
    y: pd.Series,
    as_of: pd.Series,
    settings: ModelSettings,
    gap: pd.Timedelta,
) -> SearchResult:
    """Pick the family and setting with the lowest mean log loss over time-ordered folds."""
    folds = list(time_folds(as_of, settings.search_folds, gap))
    if not folds:
        raise ValueError("the training window is too short for time-ordered folds")
    return search_folds(X, y, folds, settings)


def search_folds(
    X: pd.DataFrame,
    y: pd.Series,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    settings: ModelSettings,
) -> SearchResult:
    """Pick the family and setting with the lowest mean log loss over the given folds
    ((train rows, validation rows) positions: time-ordered, or stratified without a time)."""
    rows = []
    for family in settings.candidates:
        base = make_candidate(family, X, settings.random_state)
        for params in GRIDS[family]:
            losses, aucs = [], []
            for train, valid in folds:
                model = clone(base).set_params(**params).fit(X.iloc[train], y.iloc[train])
                p = model.predict_proba(X.iloc[valid])[:, 1]
                losses.append(log_loss(y.iloc[valid], p, labels=[0, 1]))
                aucs.append(
                    roc_auc_score(y.iloc[valid], p) if y.iloc[valid].nunique() == 2 else np.nan
                )
            rows.append(
                {
                    "family": family,
                    "params": params,
                    "cv_log_loss": float(np.mean(losses)),
                    "cv_roc_auc": float(np.nanmean(aucs)),
                }
            )
    table = pd.DataFrame(rows).sort_values("cv_log_loss", ignore_index=True)
    winner = table.iloc[0]
    best = make_candidate(winner["family"], X, settings.random_state).set_params(**winner["params"])
    return SearchResult(best, winner["family"], dict(winner["params"]), table)


def calibrate(
    model: Pipeline,
    X: pd.DataFrame,
    y: pd.Series,
    as_of: pd.Series,
    methods: Sequence[str],
    isotonic_min_positives: int,
) -> tuple[CalibratedClassifierCV, pd.DataFrame]:
    """Calibrate a fitted model on the calibration window with the method that generalises best.

    Each method is cross-fitted on the two time halves of the window (fit on one, log loss on
    the other, both ways), so a flexible method cannot win by memorising; the winner is then
    fitted on the whole window.
    """
    tried = [m for m in methods if m != "isotonic" or y.sum() >= isotonic_min_positives]
    if not tried:
        tried = ["sigmoid"]
    dates = np.sort(as_of.unique())
    middle = dates[len(dates) // 2]
    halves = [(as_of < middle).to_numpy(), (as_of >= middle).to_numpy()]
    frozen = FrozenEstimator(model)
    y = np.asarray(y)
    rows = []
    for method in tried:
        losses = []
        for fit_on, score_on in (halves, halves[::-1]):
            if len(np.unique(y[fit_on])) < 2 or not score_on.any():
                continue
            calibrated = CalibratedClassifierCV(frozen, method=method).fit(X[fit_on], y[fit_on])
            p = calibrated.predict_proba(X[score_on])[:, 1]
            losses.append(log_loss(y[score_on], p, labels=[0, 1]))
        rows.append({"method": method, "cross_fitted_log_loss": float(np.mean(losses))})
    uncalibrated = model.predict_proba(X)[:, 1]
    table = pd.DataFrame(rows).sort_values("cross_fitted_log_loss", ignore_index=True)
    table.attrs["uncalibrated_log_loss"] = float(log_loss(y, uncalibrated, labels=[0, 1]))
    chosen = table.loc[0, "method"]
    return CalibratedClassifierCV(frozen, method=chosen).fit(X, y), table
