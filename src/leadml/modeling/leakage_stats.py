"""The statistics of the leakage guard: sampled rows, folds, value codes and the out-of-fold
ROC AUC of a column's values alone.

Pure NumPy and pandas; what counts as leakage is decided in :mod:`leadml.modeling.leakage`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_BINS = 20  # quantile bins of a numeric column
_MAX_VALUES = 200  # most frequent values of a text column kept apart; the rest are pooled
_SMOOTHING = 10.0  # rows of prior weight in the out-of-fold conversion rate of a value


def is_number(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def sample_rows(rows: int, max_rows: int, random_state: int) -> np.ndarray | None:
    """The rows the statistics use: all (None), or a sorted random ``max_rows`` of them."""
    if rows <= max_rows:
        return None
    return np.sort(np.random.default_rng(random_state).choice(rows, max_rows, replace=False))


def take_rows(values, keep: np.ndarray | None):
    """``values`` (a frame or an array) at the sampled rows, a frame renumbered from 0."""
    if isinstance(values, pd.DataFrame):
        return (values if keep is None else values.iloc[keep]).reset_index(drop=True)
    return values if keep is None else values[keep]


def folds_of(y: np.ndarray, groups, k: int, rng: np.random.Generator) -> np.ndarray:
    """Fold of each row: stratified by class, or by lead when rows share one."""
    if groups is not None:
        codes = pd.factorize(pd.Series(np.asarray(groups)))[0]
        return rng.permutation(codes.max() + 1)[codes] % k
    fold = np.empty(len(y), dtype="int64")
    for cls in (0, 1):
        rows = np.flatnonzero(y == cls)
        rng.shuffle(rows)
        fold[rows] = np.arange(len(rows)) % k
    return fold


def value_codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer code per row and a label per code: quantile bins of numbers, the most frequent
    values of anything else (the rest pooled), and missing as a value of its own."""
    missing = values.isna().to_numpy()
    codes = np.zeros(len(values), dtype="int64")
    if is_number(values):
        x = values.to_numpy(dtype="float64", na_value=np.nan)
        present = x[~missing]
        edges = (
            np.unique(np.quantile(present, np.linspace(0, 1, _BINS + 1)[1:-1]))
            if len(present)
            else np.array([])
        )
        codes[~missing] = np.searchsorted(edges, present, side="right")
        bounds = [-np.inf, *edges, np.inf]
        labels = [value_range(bounds[i], bounds[i + 1], present) for i in range(len(edges) + 1)]
    else:
        text = values[~missing].astype("str")
        factor, uniques = pd.factorize(text)
        counts = np.bincount(factor, minlength=len(uniques)) if len(uniques) else np.array([])
        top = np.argsort(-counts, kind="stable")[:_MAX_VALUES]
        remap = np.full(len(uniques), len(top), dtype="int64")
        remap[top] = np.arange(len(top))
        codes[~missing] = remap[factor] if len(factor) else factor
        labels = [repr(str(uniques[i])) for i in top] + ["(other values)"]
    codes[missing] = len(labels)
    return codes, [*labels, "(missing)"]


def value_range(low: float, high: float, present: np.ndarray) -> str:
    inside = present[(present >= low) & (present < high)] if len(present) else present
    if not len(inside):
        return "(empty bin)"
    a, b = inside.min(), inside.max()
    return f"{a:g}" if a == b else f"{a:g} to {b:g}"


def out_of_fold_auc(codes: np.ndarray, y: np.ndarray, fold: np.ndarray, k: int) -> float:
    """ROC AUC of each row's value's conversion rate, learnt on the other folds.

    Every row of one (fold, value) cell gets the same score, so the AUC is computed from the
    cells' counts (Mann-Whitney with ties) rather than by sorting every row.
    """
    positives, total = int(y.sum()), len(y)
    if positives in (0, total):
        return float("nan")
    size = int(codes.max()) + 1
    cell = fold * size + codes
    rows = np.bincount(cell, minlength=k * size).reshape(k, size).astype("float64")
    hits = np.bincount(cell, weights=y, minlength=k * size).reshape(k, size)
    train_rows, train_hits = rows.sum(axis=0) - rows, hits.sum(axis=0) - hits
    prior = train_hits.sum(axis=1, keepdims=True) / np.maximum(
        train_rows.sum(axis=1, keepdims=True), 1
    )
    score = ((train_hits + _SMOOTHING * prior) / (train_rows + _SMOOTHING)).ravel()
    pos, neg = hits.ravel(), (rows - hits).ravel()
    order = np.argsort(score, kind="stable")
    score, pos, neg = score[order], pos[order], neg[order]
    # Pool cells with equal scores: their rows are tied.
    _, level = np.unique(score, return_inverse=True)
    pos = np.bincount(level, weights=pos)
    neg = np.bincount(level, weights=neg)
    below = np.cumsum(neg) - neg
    return float((pos * (below + 0.5 * neg)).sum() / (positives * (total - positives)))


def share_of(part: np.ndarray, whole: np.ndarray) -> float:
    total = int(whole.sum())
    return float(part.sum() / total) if total else float("nan")
