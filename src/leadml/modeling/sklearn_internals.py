"""Every scikit-learn internal leadml reads or writes, behind one small function each.

scikit-learn promises nothing about private attributes, private classes or the behaviour of
their methods, and leadml needs a few: the explainer (:mod:`leadml.scoring._explain`) walks the
trees of a histogram gradient boosting model and calibrates raw scores itself, and calibration
(:mod:`leadml.modeling.calibration`) reads and sets the parameters of fitted calibrators. They are
all here, so that a scikit-learn upgrade has one module to review, and one test to fail:
``tests/test_sklearn_internals.py`` fits tiny real models of every family leadml explains and
calibrates, and checks each function below against the installed scikit-learn (shapes, dtypes,
and that what is built from them gives the model's own scores).

Each function was checked against scikit-learn 1.8.0 and 1.9.1 (:data:`CHECKED_WITH`). The
explainer also checks its fast paths against ``predict_proba`` on the first chunk of every run
and falls back to a model-agnostic method, with a warning, when they disagree; calibration has
no such net, so the guard test is its only one.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer

#: The scikit-learn releases every function here was checked against (1.8.0 and 1.9.1).
CHECKED_WITH = ("1.8", "1.9")

# --------------------------------------------------------------------------------------------
# Calibration: sklearn's private ``_CalibratedClassifier`` (one per fold of a
# ``CalibratedClassifierCV``) and its calibrators (``_SigmoidCalibration``,
# ``IsotonicRegression``, ``_TemperatureScaling``).


def calibrations(model: CalibratedClassifierCV) -> list:
    """The fitted calibrations of ``model`` (sklearn's private ``_CalibratedClassifier``): one
    per fold, or one when fitted with ``ensemble=False`` or around a ``FrozenEstimator``.

    Reads ``calibrated_classifiers_``. Checked against scikit-learn 1.8 and 1.9.
    """
    return list(getattr(model, "calibrated_classifiers_", []))


def calibrated_model(calibration) -> object:
    """The fitted model inside one calibration, whose decision function it calibrates.

    Reads ``_CalibratedClassifier.estimator``. Checked against scikit-learn 1.8 and 1.9.
    """
    return calibration.estimator


def calibrators(calibration) -> list:
    """The calibrators of one calibration, one per class (one for a binary model).

    Reads ``_CalibratedClassifier.calibrators``. Checked against scikit-learn 1.8 and 1.9.
    """
    return list(getattr(calibration, "calibrators", []))


def calibration_method(calibration) -> str | None:
    """The method of one calibration (``"sigmoid"``, ``"isotonic"``, ``"temperature"``).

    Reads ``_CalibratedClassifier.method``. Checked against scikit-learn 1.8 and 1.9.
    """
    return getattr(calibration, "method", None)


def sigmoid_parameters(calibrator) -> tuple[float, float] | None:
    """``(a, b)`` of a sigmoid calibrator, ``p = expit(-(a * score + b))``; None for any other.

    Reads ``_SigmoidCalibration.a_`` and ``.b_`` (as stored: the same floats). Checked against
    scikit-learn 1.8 and 1.9.
    """
    from sklearn.calibration import _SigmoidCalibration

    if type(calibrator) is not _SigmoidCalibration:
        return None
    return calibrator.a_, calibrator.b_


def set_sigmoid_parameters(calibrator, a: float, b: float) -> None:
    """Give a sigmoid calibrator the parameters ``(a, b)`` (see :func:`sigmoid_parameters`).

    Writes ``_SigmoidCalibration.a_`` and ``.b_``, which its ``predict`` reads. Checked against
    scikit-learn 1.8 and 1.9.
    """
    calibrator.a_, calibrator.b_ = a, b


def is_non_decreasing(calibrator) -> bool:
    """Whether a calibrator is a non-decreasing function of the model's score: a sigmoid's
    ``a`` is negative, an isotonic regression was fitted increasing (temperature scaling always
    is).

    Reads ``_SigmoidCalibration.a_`` and ``IsotonicRegression.increasing_``. Checked against
    scikit-learn 1.8 and 1.9.
    """
    if hasattr(calibrator, "a_"):  # p = expit(-(a s + b))
        return bool(calibrator.a_ < 0)
    return bool(getattr(calibrator, "increasing_", True))


def temperature_beta(calibrator) -> float:
    """The inverse temperature ``beta`` of a temperature calibrator: its probabilities are
    ``softmax(beta * (-s, s))`` of the model's score ``s``.

    Reads ``_TemperatureScaling.beta_``. Checked against scikit-learn 1.8 and 1.9.
    """
    return float(calibrator.beta_)


def set_isotonic_levels(calibrator, levels: np.ndarray) -> None:
    """Give a fitted isotonic calibrator new levels at its thresholds (the same steps).

    Writes ``IsotonicRegression.y_thresholds_`` and rebuilds its interpolation with the private
    ``_build_f``, which ``predict`` uses. Checked against scikit-learn 1.8 and 1.9.
    """
    calibrator.y_thresholds_ = levels
    calibrator._build_f(calibrator.X_thresholds_, calibrator.y_thresholds_)


class _GivenScores(ClassifierMixin, BaseEstimator):
    """Stands in for the calibrated model: its decision function is the column it is given."""

    def __init__(self, classes=None):
        self.classes = classes

    def __sklearn_is_fitted__(self) -> bool:
        return True

    @property
    def classes_(self):
        return self.classes

    def decision_function(self, X):
        return np.asarray(X)[:, 0]


def calibrate_scores(calibration, classes: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """The probability of the positive class that ``calibration`` gives a model whose decision
    function is ``raw`` (any shape), by the calibration's own ``predict_proba``.

    Relies on ``_CalibratedClassifier.predict_proba`` taking the decision function of its
    ``estimator`` (a stand-in here, on a copy). Checked against scikit-learn 1.8 and 1.9.
    """
    shim = copy.copy(calibration)
    shim.estimator = _GivenScores(classes)
    flat = np.asarray(raw, dtype="float64").reshape(-1, 1)
    return shim.predict_proba(flat)[:, 1].reshape(np.shape(raw))


# --------------------------------------------------------------------------------------------
# Column transformers


def column_inputs(columns: ColumnTransformer) -> dict[str, list[int]] | None:
    """Step name -> the input column indices it takes, of a fitted column transformer (None if
    unknown).

    Reads ``ColumnTransformer._transformer_to_input_indices``. Checked against scikit-learn
    1.8 and 1.9.
    """
    return getattr(columns, "_transformer_to_input_indices", None)


def is_float_check(step) -> bool:
    """Whether a column transformer's step passes its columns through as floats: a
    ``FunctionTransformer`` without a function, or with the ``check_array`` that histogram
    gradient boosting puts on its numeric columns.

    Relies on how ``HistGradientBoosting*._preprocess_X`` builds its numeric step. Checked against
    scikit-learn 1.8 and 1.9.
    """
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.utils.validation import check_array

    return isinstance(step, FunctionTransformer) and (
        step.func is None
        or (isinstance(step.func, functools.partial) and step.func.func is check_array)
    )


# --------------------------------------------------------------------------------------------
# Histogram gradient boosting: ``_baseline_prediction``, ``_predictors`` (``TreePredictor``),
# ``_bin_mapper``, ``_preprocess_X`` and ``_preprocessor``.

#: The node fields of a ``TreePredictor`` the explainer reads (sklearn's
#: ``PREDICTOR_RECORD_DTYPE``), with their dtype kinds.
NODE_FIELDS = {
    "value": "f",
    "count": "u",
    "feature_idx": "i",
    "num_threshold": "f",
    "missing_go_to_left": "u",
    "left": "u",
    "right": "u",
    "gain": "f",
    "depth": "u",
    "is_leaf": "u",
    "is_categorical": "u",
    "bitset_idx": "u",
}


@dataclass(frozen=True)
class Tree:
    """One fitted tree: its nodes (a structured array with :data:`NODE_FIELDS`; node 0 the
    root, ``left``/``right`` the children of a split) and the bitsets of the categories that go
    left at its categorical splits (``raw_left_cat_bitsets[node["bitset_idx"]]``, in the
    categories' codes, see :func:`category_bits`)."""

    nodes: np.ndarray
    raw_left_cat_bitsets: np.ndarray


def tree_baseline(hgb) -> float:
    """The constant a binary histogram gradient boosting model adds to its trees' leaves.

    Reads ``_baseline_prediction``. Checked against scikit-learn 1.8 and 1.9.
    """
    return float(np.ravel(hgb._baseline_prediction)[0])


def trees(hgb) -> list[Tree]:
    """The trees of a binary histogram gradient boosting model, in the order it adds them.

    Reads ``_predictors`` (one list per iteration, one ``TreePredictor`` in it for a binary model)
    and each predictor's ``nodes`` and ``raw_left_cat_bitsets``; raises ``TypeError`` when the nodes
    lack a field of :data:`NODE_FIELDS` (their kinds are checked by the guard test). Checked against
    scikit-learn 1.8 and 1.9.
    """
    out = []
    for iteration in hgb._predictors:
        predictor = iteration[0]
        missing = set(NODE_FIELDS) - set(predictor.nodes.dtype.names or ())
        if missing:
            raise TypeError(f"tree nodes without the fields {sorted(missing)}")
        out.append(Tree(predictor.nodes, predictor.raw_left_cat_bitsets))
    return out


def known_categories(hgb) -> tuple[np.ndarray, np.ndarray]:
    """The categories seen in training: one bitset per categorical column (``(k, 8)``
    ``uint32``, see :func:`category_bits`) and, per column of the trees' matrix, the row of its
    bitset (``(n_features,)``).

    Calls ``_bin_mapper.make_known_categories_bitsets()``. Checked against scikit-learn 1.8 and 1.9.
    """
    return hgb._bin_mapper.make_known_categories_bitsets()


def category_bits(bitset: np.ndarray) -> np.ndarray:
    """The 256 booleans of an sklearn category bitset (8 little-endian 32-bit words): bit ``c``
    is category ``c``.

    Relies on sklearn's ``X_BITSET_INNER_DTYPE`` layout. Checked against scikit-learn 1.8 and 1.9.
    """
    words = np.asarray(bitset, dtype="<u4").view(np.uint8)
    return np.unpackbits(words, bitorder="little").astype(bool)


def tree_preprocessor(hgb) -> Callable[[object], np.ndarray]:
    """The model's own step from its input to the float matrix its trees split on (categories
    encoded by its inner encoder, if any).

    Wraps ``_preprocess_X(X, reset=False)``. Checked against scikit-learn 1.8 and 1.9.
    """
    return functools.partial(hgb._preprocess_X, reset=False)


def tree_encoder(hgb) -> ColumnTransformer | None:
    """The model's inner column transformer (an ``OrdinalEncoder`` for its categorical columns,
    a float check for the others, see :func:`is_float_check`), or None when it has no
    categorical column.

    Reads ``_preprocessor``. Checked against scikit-learn 1.8 and 1.9.
    """
    return getattr(hgb, "_preprocessor", None)
