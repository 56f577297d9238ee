"""The explainer: picks the method from the model's structure, checks a fast method against
``predict_proba`` on the first chunk (falling back to occlusion on any mismatch), turns log-odds
parts into effects through the calibration, and keeps the mean size of each feature's effect."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from leadml.scoring._explain._composition import output_features, parts_of
from leadml.scoring._explain._linear import LinearContributions
from leadml.scoring._explain._occlusion import occlusion_effects, ranked_features
from leadml.scoring._explain._reasons import Explained
from leadml.scoring._explain._tree import TreePaths

log = logging.getLogger("leadml.scoring")

_CHECK_ROWS = 256
_TOLERANCE = 1e-6


class Explainer:
    """Probabilities and reasons for one model (see :mod:`leadml.scoring._explain`).

    Parameters
    ----------
    model
        A fitted binary classifier with ``predict_proba`` taking the feature frame.
    feature_names
        The columns the model takes, in its order.
    reference
        Feature -> reference value.
    candidates
        How many of the most important features the ``tree`` and ``occlusion`` methods explain
        (``linear`` explains all).
    sample
        Leads to rank the features on when the method is ``occlusion``.
    """

    def __init__(
        self,
        model,
        feature_names: list[str],
        reference: dict[str, object],
        *,
        candidates: int = 30,
        sample: pd.DataFrame | None = None,
    ):
        self.model = model
        self.feature_names = list(feature_names)
        self.reference = reference
        self.candidates = candidates
        self.method = "occlusion"
        self.features: list[str] = []
        self._checked = False
        self._parts = parts_of(model)
        self._effect_sum: np.ndarray | None = None
        if self._parts is not None:
            owners = output_features(self._parts.columns, self.feature_names)
            final = self._parts.final
            if owners is not None and isinstance(final, LogisticRegression):
                self._setup_linear(owners)
            elif (
                owners is not None
                and isinstance(final, HistGradientBoostingClassifier)
                and len(set(owners)) == len(owners)
                and getattr(final, "n_trees_per_iteration_", 0) == 1
            ):
                self._setup_tree(owners)
        if self.method == "occlusion":
            self._setup_occlusion(sample)

    # -- set-up per method --------------------------------------------------------------------

    def _setup_linear(self, owners: list[str]) -> None:
        self._linear = LinearContributions(self._parts, owners, self.feature_names,
                                           self.reference)  # fmt: skip
        self.method = "linear"
        self.features = list(self.feature_names)

    def _setup_tree(self, owners: list[str]) -> None:
        try:
            self._tree = TreePaths(self._parts.final, self._parts.columns, owners,
                                   self.candidates)  # fmt: skip
        except Exception as exc:  # a model or an sklearn the walk does not know
            log.warning("fast tree reasons unavailable (%s: %s); using occlusion",
                        type(exc).__name__, exc)  # fmt: skip
            return
        self.method = "tree"
        self.features = self._tree.features

    def _setup_occlusion(self, sample: pd.DataFrame | None) -> None:
        self.method = "occlusion"
        self.features = ranked_features(self.model, sample, self.feature_names, self.reference,
                                        self.candidates)  # fmt: skip

    # -- explaining ---------------------------------------------------------------------------

    def explain(self, X: pd.DataFrame) -> Explained:
        """Probabilities and effects (probability points) of :attr:`features` for ``X``."""
        X = X[self.feature_names]
        if not self._checked and self.method != "occlusion":
            self._check(X.iloc[:_CHECK_ROWS])
        out = self.explain_method(X)
        size = np.abs(out.effects).sum(axis=0, dtype="float64")
        self._effect_sum = size if self._effect_sum is None else self._effect_sum + size
        return out

    @property
    def effect_sums(self) -> pd.Series:
        """Sum of the absolute effects (probability points) of each explained feature so far."""
        if self._effect_sum is None:
            return pd.Series(dtype="float64")
        return pd.Series(self._effect_sum, index=self.features)

    def _check(self, X: pd.DataFrame) -> None:
        self._checked = True
        expected = self.model.predict_proba(X)[:, 1]
        try:
            if self.method == "tree":
                self._tree.inputs.check(X)
            got = self.explain_method(X).probability
            ok = np.allclose(got, expected, atol=_TOLERANCE, rtol=0)
        except Exception as exc:  # internals changed shape: explain the slow, safe way
            log.warning("fast %s reasons unavailable (%s: %s); using occlusion",
                        self.method, type(exc).__name__, exc)  # fmt: skip
            ok = None
        if ok is False:
            log.warning("fast %s reasons disagree with predict_proba; using occlusion",
                        self.method)  # fmt: skip
        if not ok:
            self._setup_occlusion(X)

    def explain_method(self, X: pd.DataFrame) -> Explained:
        """Probabilities and effects for ``X`` by the current method, unchecked and uncounted."""
        if self.method == "linear":
            raw, delta = self._linear.explain(X)
            p, effects = self._effects(raw, delta)
            return Explained(p, effects, self.features, self._moved(delta))
        if self.method == "tree":
            return self._explain_tree(X)
        p, effects = occlusion_effects(self.model, X, self.features, self.feature_names,
                                       self.reference)  # fmt: skip
        return Explained(p, effects, self.features)

    def _effects(self, raw: np.ndarray, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities, and effects from the log-odds each feature adds over its reference."""
        calibrate = self._parts.calibrate
        p = calibrate(raw)
        if not delta.shape[1]:
            return p, np.zeros(delta.shape, dtype="float32")
        without = calibrate(raw[:, None] - delta)
        return p, (p[:, None] - without).astype("float32")

    def _explain_tree(self, X: pd.DataFrame) -> Explained:
        raw, contributions = self._tree.explain(X)
        sigmoid = self._parts.sigmoid()
        if sigmoid is None:
            p, effects = self._effects(raw, contributions)
        else:
            from leadml.scoring._compiled import sigmoid_effects

            p, effects = sigmoid_effects(raw, contributions, *sigmoid)
        return Explained(p, effects, self.features, self._moved(contributions))

    def _moved(self, delta: np.ndarray) -> np.ndarray | None:
        """The calibrated log-odds each feature moved, from its part ``delta`` of the model's:
        ``-a * delta`` under a sigmoid (or no) calibration, else unknown (None)."""
        sigmoid = self._parts.sigmoid()
        return None if sigmoid is None else (-sigmoid[0] * delta).astype("float32")
