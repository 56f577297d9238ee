"""Reference distributions and population stability: is tonight's population the one the model
was trained for?

:func:`reference_profile` summarises a feature frame and its scores in a few numbers per column
(quantile bin edges and shares, the top categories, the median or most common value), small
enough for a model's ``metadata.json``; :func:`psi` compares new values with such a summary.

Population stability index, per column, over the reference bins (plus one for missing values):
``PSI = sum((new - ref) * ln(new / ref))``. Rule of thumb: below 0.1 stable, 0.1-0.2 a moderate
shift, above 0.2 a large one.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from leadml.common.safe_text import DISPLAY_LIMIT, shorten

PROFILE_VERSION = 1
#: Smallest share a bin is given, so an empty bin does not make the index infinite.
_FLOOR = 1e-4


def _is_number(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _counts(values: pd.Series) -> pd.Series:
    """Rows per distinct value, as text; values too long to show are cut (their share goes
    with the cut text), so that a 1 MB category cannot swell a model's metadata."""
    counts = values.astype("str").value_counts()
    if not len(counts) or counts.index.str.len().max() <= DISPLAY_LIMIT:
        return counts
    cut = counts.groupby([shorten(k) for k in counts.index], sort=False).sum()
    return cut.sort_values(ascending=False, kind="stable")


def column_profile(values: pd.Series, bins: int = 10, top: int = 20) -> dict:
    """The distribution of one column: numbers by quantile bins, anything else by category."""
    missing = values.isna().to_numpy()
    n = max(len(values), 1)
    present = values[~missing]
    if _is_number(values):
        x = present.to_numpy(dtype="float64")
        if len(x):
            edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1]))
            counts = np.bincount(np.searchsorted(edges, x, side="left"), minlength=len(edges) + 1)
            median = float(np.median(x))
        else:
            edges, counts, median = np.array([]), np.array([0]), None
        return {
            "kind": "number",
            "edges": [float(e) for e in edges],
            "shares": [float(c) / n for c in counts],
            "missing": float(missing.sum()) / n,
            "median": median,
        }
    counts = _counts(present)
    kept = counts.iloc[:top]
    return {
        "kind": "flag" if pd.api.types.is_bool_dtype(values) else "category",
        "shares": {str(k): float(v) / n for k, v in kept.items()},
        "other": float(counts.iloc[top:].sum()) / n,
        "missing": float(missing.sum()) / n,
        "mode": str(counts.index[0]) if len(counts) else None,
    }


def reference_profile(
    features: pd.DataFrame, scores: np.ndarray | pd.Series | None = None, *, bins: int = 10
) -> dict:
    """A JSON-serialisable summary of ``features`` (and of the model's ``scores`` on them).

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"visits": [0, 0, 1, 2, 5, 9], "tier": list("aabbbc")})
    >>> profile = reference_profile(frame, bins=4)
    >>> profile["features"]["visits"]["median"], profile["features"]["tier"]["mode"]
    (1.5, 'b')
    >>> round(psi(frame["visits"], profile["features"]["visits"]), 6)
    0.0
    """
    profile = {
        "version": PROFILE_VERSION,
        "rows": len(features),
        "features": {str(c): column_profile(features[c], bins) for c in features.columns},
    }
    if scores is not None:
        profile["score"] = column_profile(pd.Series(np.asarray(scores, dtype="float64")), bins)
    return profile


def bin_counts(values: pd.Series, reference: dict) -> np.ndarray:
    """How many of ``values`` fall in each bin of the reference column: its number ranges, or
    its most common values then every other value; the missing values last."""
    missing = values.isna().to_numpy()
    if reference["kind"] == "number":
        x = pd.to_numeric(values[~missing], errors="coerce").to_numpy(dtype="float64")
        edges = np.asarray(reference["edges"], dtype="float64")
        counts = np.bincount(np.searchsorted(edges, x, side="left"), minlength=len(edges) + 1)
        return np.append(counts, missing.sum()).astype("int64")
    text = values[~missing]
    counts = _counts(text)
    found = np.array([counts.get(k, 0) for k in reference["shares"]], dtype="int64")
    return np.append(found, [len(text) - found.sum(), missing.sum()]).astype("int64")


def _shares(counts: np.ndarray, reference: dict) -> tuple[np.ndarray, np.ndarray]:
    new = counts / max(int(counts.sum()), 1)
    if reference["kind"] == "number":
        ref = np.append(np.asarray(reference["shares"], dtype="float64"), reference["missing"])
    else:
        ref = np.array([*reference["shares"].values(), reference["other"], reference["missing"]])
    return new, ref


def psi(values: pd.Series, reference: dict) -> float:
    """Population stability index of ``values`` against one column of a reference profile."""
    return psi_of_counts(bin_counts(values, reference), reference)


def psi_of_counts(counts: np.ndarray, reference: dict) -> float:
    """:func:`psi` from :func:`bin_counts`, which add up: the counts of parts of a population
    (the shards of a night) give the index of the whole."""
    new, ref = _shares(counts, reference)
    new, ref = np.maximum(new, _FLOOR), np.maximum(ref, _FLOOR)
    value = float(np.sum((new - ref) * np.log(new / ref)))
    return 0.0 if math.isclose(value, 0.0, abs_tol=1e-12) else value


def population_shift(
    reference: pd.DataFrame, current: pd.DataFrame, *, top: int = 10, bins: int = 10
) -> pd.DataFrame:
    """The ``top`` columns of ``current`` that moved most from ``reference``, by population
    stability index (the drift measure of nightly scoring), largest first.

    Examples
    --------
    >>> old = pd.DataFrame({"visits": range(100), "tier": ["a"] * 100})
    >>> new = pd.DataFrame({"visits": range(50, 150), "tier": ["a"] * 100})
    >>> population_shift(old, new)["feature"].tolist()
    ['visits', 'tier']
    """
    profile = reference_profile(reference, bins=bins)["features"]
    found = [(str(c), psi(current[c], profile[str(c)])) for c in current.columns]
    table = pd.DataFrame(found, columns=["feature", "psi"])
    return table.sort_values("psi", ascending=False, kind="stable", ignore_index=True).head(top)
