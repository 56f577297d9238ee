"""The float matrix a gradient boosting model's trees split on, built from the feature frame
column by column (see :class:`TreeInputs`)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OrdinalEncoder

from leadml.modeling import sklearn_internals as sk

log = logging.getLogger("leadml.scoring")

_MISSING = object()  # the key of a missing value among an encoded column's values


class TreeInputs:
    """The float matrix the trees split on, from the feature frame: the values of
    ``hgb._preprocess_X(columns.transform(X))``, built column by column.

    Both steps are one-to-one column maps: a column is either passed through (as float) or
    ordinal-encoded (by the pipeline's encoder, then by the one inside the model). An encoded
    column is factorized, and each distinct value (missing included) not seen in an earlier
    chunk goes through both encoders themselves, one lead per value; the codes are then spread
    -- so unknown categories, infrequent ones and missing values get exactly the codes the
    model gives them, at the cost of a ``factorize`` instead of the encoders' value-by-value
    lookups in Python.

    ``source[j]`` is the pipeline's output column behind column ``j`` (``None`` if untraceable);
    ``plan`` is ``None`` when some step is not a one-to-one column map, and :meth:`transform`
    then runs the two steps as they are.
    """

    def __init__(self, columns: ColumnTransformer, hgb):
        self.columns = columns
        self.preprocess = sk.tree_preprocessor(hgb)
        self.width = int(hgb.n_features_in_)
        width = sum(s.stop - s.start for s in columns.output_indices_.values())
        inner = sk.tree_encoder(hgb)
        steps = [(o, False) for o in range(width)] if inner is None else column_map(inner)
        self.source = None if steps is None else [o for o, _ in steps]
        outer = column_map(columns)
        names = getattr(columns, "feature_names_in_", None)
        self.plan: list[tuple[str, bool]] | None = None
        if steps is not None and outer is not None and names is not None:
            self.plan = [(names[outer[o][0]], encoded or outer[o][1]) for o, encoded in steps]
        # Encoded column -> value -> its code from the encoders (filled as values turn up).
        self._seen: dict[int, dict[object, float]] = {}

    def by_pipeline(self, X: pd.DataFrame) -> np.ndarray:
        """The matrix by the two steps themselves."""
        return np.asarray(self.preprocess(self.columns.transform(X)), dtype="float64")

    def check(self, X: pd.DataFrame) -> None:
        """Compare :meth:`transform` with :meth:`by_pipeline` on ``X``; on any difference, use
        the pipeline's steps from now on."""
        if self.plan is None:
            return
        try:
            same = np.array_equal(self.transform(X), self.by_pipeline(X), equal_nan=True)
        except Exception:  # a column type the fast build does not know
            same = False
        if not same:
            log.warning("the trees' inputs built column by column differ from the pipeline's; "
                        "using the pipeline's")  # fmt: skip
            self.plan = None

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        if not len(X):  # sklearn refuses no rows
            return np.empty((0, self.width))
        if self.plan is None:
            return self.by_pipeline(X)
        out = np.empty((len(X), len(self.plan)), order="F")
        encoded = [j for j, (_, is_encoded) in enumerate(self.plan) if is_encoded]
        codes, keys, new_rows = {}, {}, {}
        for j in encoded:
            code, uniques = pd.factorize(X[self.plan[j][0]])
            keys[j] = [*uniques, _MISSING]  # code -1 (missing) takes the last
            seen = self._seen.setdefault(j, {})
            rows = [int(np.argmax(code == (k if k < len(uniques) else -1)))
                    for k, key in enumerate(keys[j]) if key not in seen
                    and (k < len(uniques) or (code < 0).any())]  # fmt: skip
            codes[j] = code
            if rows:
                new_rows[j] = rows
        if new_rows:  # values not seen in earlier chunks: through the encoders themselves
            size = max(len(r) for r in new_rows.values())
            few = X.iloc[np.zeros(size, dtype="int64")].reset_index(drop=True)
            for j, rows in new_rows.items():
                name = self.plan[j][0]
                few[name] = X[name].iloc[rows + rows[:1] * (size - len(rows))].values
            coded = self.by_pipeline(few)
            for j, rows in new_rows.items():
                for r, value in zip(rows, coded[: len(rows), j], strict=True):
                    self._seen[j][keys[j][codes[j][r]]] = value
        for j, (name, is_encoded) in enumerate(self.plan):
            if is_encoded:
                out[:, j] = np.array([self._seen[j].get(key, np.nan) for key in keys[j]])[codes[j]]
                continue
            column = X[name]
            if isinstance(column.dtype, np.dtype) and column.dtype.kind in "biuf":
                out[:, j] = column.to_numpy()  # numpy numbers: NaN is already NaN
            else:
                out[:, j] = column.to_numpy(dtype="float64", na_value=np.nan)
        return out


def column_map(columns: ColumnTransformer) -> list[tuple[int, bool]] | None:
    """(input column, ordinal-encoded?) behind each output column of a fitted column
    transformer whose every step maps columns one to one, else None."""
    indices = sk.column_inputs(columns)
    if indices is None or columns.transformer_weights:
        return None
    out: list[tuple[int, bool] | None] = [None] * sum(
        s.stop - s.start for s in columns.output_indices_.values()
    )
    for name, step, _ in columns.transformers_:
        part = columns.output_indices_.get(name, slice(0, 0))
        inputs = list(indices.get(name, []))
        if part.stop == part.start:
            continue
        if isinstance(step, OrdinalEncoder):
            encoded = True
        elif sk.is_float_check(step):
            encoded = False  # passthrough, or the float check inside the model
        else:
            return None
        if len(inputs) != part.stop - part.start:
            return None
        for k, i in enumerate(inputs):
            out[part.start + k] = (int(i), encoded)
    if any(o is None for o in out):
        return None
    return out  # type: ignore[return-value]
