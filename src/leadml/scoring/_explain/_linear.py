"""Linear contributions: a logistic regression after column-wise preprocessing (the ``logistic``
candidate).

Its log-odds are a sum over the transformed columns, so a feature's part is its columns' terms
minus their values at the feature's reference -- an exact occlusion, for every feature and every
lead, in one small matrix product.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadml.scoring._explain._composition import Parts
from leadml.scoring._explain._reference import reference_frame


class LinearContributions:
    """The log-odds of a linear model and each feature's part of them.

    Parameters
    ----------
    parts
        The model taken apart; its ``final`` step has ``coef_`` and ``intercept_``.
    owners
        The input feature behind each transformed column.
    feature_names
        The columns the model takes, in its order.
    reference
        Feature -> reference value.
    """

    def __init__(
        self,
        parts: Parts,
        owners: list[str],
        feature_names: list[str],
        reference: dict[str, object],
    ):
        self.parts = parts
        self.feature_names = feature_names
        self.reference = reference
        coef = np.asarray(parts.final.coef_, dtype="float64").ravel()
        index = {f: i for i, f in enumerate(feature_names)}
        # Transformed column -> its feature, as a 0/1 matrix that sums the terms per feature.
        self.groups = np.zeros((len(coef), len(feature_names)))
        self.groups[np.arange(len(coef)), [index[o] for o in owners]] = 1.0
        self.coef = coef

    def explain(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(log-odds, each feature's part of them over its reference) for the feature frame."""
        columns = self.parts.columns
        Z = columns.transform(X)
        Z = Z.toarray() if hasattr(Z, "toarray") else np.asarray(Z, dtype="float64")
        z_ref = columns.transform(reference_frame(X, self.feature_names, self.reference))
        z_ref = z_ref.toarray() if hasattr(z_ref, "toarray") else np.asarray(z_ref)
        raw = Z @ self.coef + float(np.ravel(self.parts.final.intercept_)[0])
        delta = ((Z - z_ref) * self.coef) @ self.groups
        return raw, delta
