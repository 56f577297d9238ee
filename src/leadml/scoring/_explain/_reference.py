"""The reference a feature is taken back to when its effect is measured (0 for counts, else the
training median or most common value), as a row of the feature frame, and which leads differ
from it."""

from __future__ import annotations

import numpy as np
import pandas as pd


def reference_frame(
    like: pd.DataFrame, feature_names: list[str], reference: dict[str, object]
) -> pd.DataFrame:
    """One row of ``like``'s columns and dtypes holding each feature's reference value (missing
    where ``reference`` has none)."""
    row = like.iloc[:1].copy()
    for f in feature_names:
        value = reference.get(f)
        if pd.api.types.is_bool_dtype(row[f]) and isinstance(value, str):
            value = value.strip().lower() == "true"
        row[f] = pd.Series([value], index=row.index).astype(row[f].dtype)
    return row


def differs(values: pd.Series | np.ndarray, reference: object) -> np.ndarray:
    """Rows whose value is not the reference (missing equals missing)."""
    if isinstance(values, pd.Series):
        missing = values.isna().to_numpy()
        ref_missing = reference is None or (isinstance(reference, float) and np.isnan(reference))
        if ref_missing:
            return ~missing
        equal = (values == reference).to_numpy(dtype=bool, na_value=False)
        return ~equal
    ref = np.float64(reference)
    if np.isnan(ref):
        return ~np.isnan(values)
    return values != ref  # NaN != ref is True: a missing value differs from a present one
