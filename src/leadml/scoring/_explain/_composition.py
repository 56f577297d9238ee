"""What a model is made of, for the fast paths: a calibration (or none) around a pipeline of a
column transformer and a binary classifier; the probability of the classifier's log-odds
through that calibration; and the input feature behind each transformed column."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline

from leadml.modeling import sklearn_internals as sk


@dataclass
class Parts:
    """A model taken apart: ``columns`` then ``final`` make ``pipeline``; ``calibrated`` is the
    one calibration around it (sklearn's ``_CalibratedClassifier``), or None."""

    pipeline: Pipeline
    columns: ColumnTransformer
    final: object
    calibrated: object | None

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """Probability from the final estimator's decision function, through the calibration."""
        if self.calibrated is None:
            return expit(raw)
        sigmoid = sigmoid_of(self.calibrated)
        if sigmoid is not None:
            # sklearn's _SigmoidCalibration.predict, expit(-(a * raw + b)), the same operations
            # in the same order, without the copies of the general path.
            z = np.multiply(raw, sigmoid[0], dtype="float64")
            z += sigmoid[1]
            np.negative(z, out=z)
            return expit(z, out=z)
        return sk.calibrate_scores(self.calibrated, self.final.classes_, raw)

    def sigmoid(self) -> tuple[float, float] | None:
        """(a, b) of ``p = expit(-(a * raw + b))`` from the model's log-odds ``raw``: the
        sigmoid calibration's, (-1, 0) for none, None for any other calibration."""
        return (-1.0, 0.0) if self.calibrated is None else sigmoid_of(self.calibrated)


def sigmoid_of(calibrated) -> tuple[float, float] | None:
    """(a, b) of a binary sigmoid calibration, else None."""
    found = sk.calibrators(calibrated)
    if sk.calibration_method(calibrated) != "sigmoid" or len(found) != 1:
        return None
    return sk.sigmoid_parameters(found[0])


def parts_of(model) -> Parts | None:
    """``model`` taken apart, or None if it is not a (calibrated) pipeline of a column
    transformer and a binary classifier with a single decision function."""
    calibrated, inner = None, model
    if isinstance(model, CalibratedClassifierCV):
        fitted = sk.calibrations(model)
        if len(fitted) != 1:
            return None  # an ensemble of calibrated clones: no single decision function
        calibrated, inner = fitted[0], sk.calibrated_model(fitted[0])
    if isinstance(inner, FrozenEstimator):
        inner = inner.estimator
    if not isinstance(inner, Pipeline) or len(inner.steps) != 2:
        return None
    columns, final = inner.steps[0][1], inner.steps[1][1]
    if not isinstance(columns, ColumnTransformer):
        return None
    if len(getattr(final, "classes_", [])) != 2:
        return None
    return Parts(inner, columns, final, calibrated)


def output_features(columns: ColumnTransformer, features: list[str]) -> list[str] | None:
    """The input feature behind each output column (one-hot and missing-indicator columns
    included), or None if some column cannot be traced to exactly one feature."""
    try:
        names = list(columns.get_feature_names_out())
    except Exception:
        return None
    owner: list[str | None] = [None] * len(names)
    for name, _, cols in columns.transformers_:
        if name not in columns.output_indices_:
            continue
        inputs = [features[c] if isinstance(c, int | np.integer) else str(c) for c in
                  (cols if isinstance(cols, list | tuple | np.ndarray) else [cols])]  # fmt: skip
        part = columns.output_indices_[name]
        for i in range(part.start, part.stop):
            rest = names[i].removeprefix(f"{name}__")
            if rest in inputs:
                owner[i] = rest
                continue
            found = [f for f in inputs
                     if rest.startswith(f + "_") or rest == f"missingindicator_{f}"]  # fmt: skip
            if found:
                owner[i] = max(found, key=len)
    if any(o is None for o in owner):
        return None
    return owner  # type: ignore[return-value]
