"""Models: candidate pipelines and a small time-ordered search (calibration:
:mod:`leadml.modeling.calibration`).

Plain scikit-learn throughout, so a fitted model is one estimator that takes the feature frame as
it comes (text categories, booleans, missing values) and returns probabilities.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
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
    # "points" is learned from the events, not searched (leadml.modeling.points_model).
    for family in (f for f in settings.candidates if f != "points"):
        for params in GRIDS[family]:
            losses, aucs = [], []
            for number, train, valid in usable:
                # Built for the fold's own rows: the first time-ordered fold can be small.
                fold = make_candidate(family, X.iloc[train], settings.random_state)
                try:
                    model = fold.set_params(**params).fit(X.iloc[train], y.iloc[train])
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
        family = next(f for f in settings.candidates if f != "points")
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
