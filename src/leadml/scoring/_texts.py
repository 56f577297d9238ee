"""The text columns of a night's scores: each lead's top reasons in words and the rules that
gave or took most points. A million leads share few distinct texts, so they are built once per
distinct value (categoricals, joined with Arrow) rather than once per lead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadml.scoring._explain import top_reasons
from leadml.scoring._phrases import Phrasebook


def reason_texts(
    index: np.ndarray,
    effect: np.ndarray,
    features: pd.DataFrame,
    names: list[str],
    phrasebook: Phrasebook,
) -> tuple[list[pd.Categorical], list[pd.Categorical]]:
    """Per reason slot: the phrase with its sign, and the feature name (categoricals).

    A phrase is written once per feature and distinct shown value, whatever the slot.
    """
    n, slots = index.shape
    flat = index.ravel()  # position = row * slots + slot
    negative = (effect.ravel() < 0).astype("int64")
    groups = {}
    for k, feature in enumerate(names):
        where = np.flatnonzero(flat == k)
        if len(where):
            value, texts = _phrased(phrasebook, feature, features[feature].iloc[where // slots])
            groups[k] = where, value, texts
    # The categories in the order they have always had: slot by slot, feature by feature, value
    # by value as the rows meet them, "(+)" before "(-)".
    met = {k: np.divmod(pd.unique(where % slots * len(texts) + value), len(texts))
           for k, (where, value, texts) in groups.items()}  # fmt: skip
    phrases: dict[str, int] = {}
    tables = {k: np.empty((len(texts), 2), dtype="int64") for k, (_, _, texts) in groups.items()}
    for j in range(slots):
        for k, (slot, values) in met.items():
            texts = groups[k][2]
            for v in values[slot == j]:
                tables[k][v] = [phrases.setdefault(f"{texts[v]} (+)", len(phrases)),
                                phrases.setdefault(f"{texts[v]} (-)", len(phrases))]  # fmt: skip
    codes = np.full(n * slots, -1, dtype="int64")
    for k, (where, value, _) in groups.items():
        codes[where] = tables[k][value, negative[where]]
    dtype = pd.CategoricalDtype(list(phrases))
    codes = codes.reshape(n, slots)
    texts_out = [pd.Categorical.from_codes(codes[:, j], dtype=dtype) for j in range(slots)]
    features_out = [
        pd.Categorical.from_codes(np.where(index[:, j] < 0, -1, index[:, j]), categories=names)
        for j in range(slots)
    ]
    return texts_out, features_out


def _phrased(phrasebook: Phrasebook, feature: str, values: pd.Series) -> tuple[np.ndarray, list]:
    """(code of each value's phrase, the phrases): a phrase per distinct shown value, in the
    order of their first row."""
    codes, shown = pd.factorize(phrasebook.shown(feature, values), use_na_sentinel=False)
    return codes, [phrasebook.phrase(feature, v) for v in shown]


def join_texts(parts: list[pd.Categorical], separator: str = "; ") -> pd.Categorical:
    """One text per row joining the non-empty parts, written once per distinct combination.

    The categories are the distinct texts, sorted.
    """
    n = len(parts[0]) if parts else 0
    if not parts:
        return pd.Categorical([""] * n)
    labels = [pa.array(part.categories.astype(str), pa.large_string()) for part in parts]
    codes = [np.asarray(part.codes, dtype="int64") for part in parts]
    # Numbered by the ranks of their parts' texts, the combinations come in the order of their
    # joined texts, or nearly (a part that is a prefix of another can swap a few): the sort
    # below then has almost nothing to do.
    combo = _combinations([
        np.where(c < 0, 0, _ranks(names)[c] + 1) for names, c in zip(labels, codes, strict=True)
    ])  # fmt: skip
    row = np.empty(combo.max(initial=-1) + 1, dtype="int64")
    row[combo] = np.arange(n)  # any row of each combination: they all have its codes
    pieces = [names.take(pa.array(c[row], mask=c[row] < 0))  # null: no part
              for names, c in zip(labels, codes, strict=True)]  # fmt: skip
    categories, inverse = _sorted_unique(_join_present(pieces, separator))
    return pd.Categorical.from_codes(inverse[combo], categories=categories)


def _join_present(pieces: list[pa.Array], separator: str) -> pa.Array:
    """The non-null pieces of each row joined, "" where all are null.

    Not ``binary_join_element_wise(null_handling="skip")``: it drops the rows where all are
    null (pyarrow 25), shifting every text after them.
    """
    sep = pa.scalar(separator, pa.large_string())
    texts = pieces[0]
    for piece in pieces[1:]:
        texts = pc.coalesce(pc.binary_join_element_wise(texts, piece, sep), texts, piece)
    return pc.fill_null(texts, "")


def _ranks(texts: pa.Array) -> np.ndarray:
    """Position of each text in sorted order."""
    rank = np.empty(len(texts), dtype="int64")
    rank[pc.array_sort_indices(texts).to_numpy()] = np.arange(len(texts))
    return rank


def _combinations(keys: list[np.ndarray]) -> np.ndarray:
    """Per row, the id of its tuple of non-negative ``keys``, ids in the tuples' order."""
    ids, bound = np.zeros(len(keys[0]), dtype="int64"), 1
    for key in keys:
        size = int(key.max(initial=0)) + 1
        if bound * size > 2**62:  # the next key would overflow: number the tuples so far 0, 1...
            ids, _ = pd.factorize(ids, sort=True)
            bound = int(ids.max(initial=0)) + 1
        ids, bound = ids * size + key, bound * size
    ids, _ = pd.factorize(ids, sort=True)
    return ids


def _sorted_unique(texts: pa.Array) -> tuple[pd.Index, np.ndarray]:
    """(the distinct texts sorted, each text's position among them), as ``np.unique`` gives."""
    order = pc.array_sort_indices(texts)
    ordered = texts.take(order)
    first = np.ones(len(ordered), dtype=bool)
    first[1:] = pc.not_equal(ordered[1:], ordered[:-1]).to_numpy(zero_copy_only=False)
    inverse = np.empty(len(ordered), dtype="int64")
    inverse[order.to_numpy()] = np.cumsum(first) - 1
    return pd.Index(pd.array(ordered.filter(first), dtype="str")), inverse


def fired_text(ruled: pd.DataFrame, count: int = 3) -> pd.Categorical:
    """The rules that gave or took most points, e.g. ``vp_or_c_level +25; pricing_page +7.5``;
    of rules with equal points, the earlier in the rules file first."""
    columns = [c for c in ruled.columns if c.startswith(("points__", "cap__"))]
    if not columns:
        return pd.Categorical([""] * len(ruled))
    points = ruled[columns].to_numpy(dtype="float32", na_value=0.0)
    index, value = top_reasons(points, count, 1e-6)
    labels = [c.removeprefix("points__").replace("cap__", "cap:") for c in columns]
    parts = []
    for j in range(index.shape[1]):
        tenths = np.round(value[:, j].astype("float64") * 10).astype("int64")
        rule = index[:, j].astype("int64")
        key = np.where(rule < 0, -1, rule * 100_000_000 + tenths + 50_000_000)
        codes, uniques = pd.factorize(key)
        texts = [
            "" if k < 0 else f"{labels[k // 100_000_000]} {(k % 100_000_000 - 50_000_000) / 10:+g}"
            for k in uniques
        ]
        empty = [i for i, t in enumerate(texts) if not t]
        codes = np.where(np.isin(codes, empty), -1, codes)
        parts.append(pd.Categorical.from_codes(codes, categories=_unique_labels(texts)))
    return join_texts(parts)


def _unique_labels(texts: list[str]) -> list[str]:
    # Categories must be unique and non-empty; empty texts are never referenced by a code.
    return [t or f"\0{i}" for i, t in enumerate(texts)]
