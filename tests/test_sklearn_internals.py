"""The guard on scikit-learn's internals: every function of
:mod:`leadml.modeling.sklearn_internals`, against the installed scikit-learn, on tiny real models
of every family leadml explains and every calibration it fits. A scikit-learn upgrade that moves an
internal fails here, by name, rather than as a slow fallback to occlusion at night or a wrong
calibration."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import sklearn
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.frozen import FrozenEstimator
from sklearn.preprocessing import OrdinalEncoder

from leadml.modeling import sklearn_internals as sk
from leadml.modeling.models import GRIDS, make_candidate
from leadml.scoring import Explainer

CALIBRATIONS = ("sigmoid", "isotonic", "temperature")


def _leads(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Text categories with missing values, a boolean, numbers with missing values; a label
    that depends on each."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(np.array(["red", "green", "blue", "teal"], dtype=object), n)
    colour[rng.random(n) < 0.1] = None
    visits = rng.poisson(3, n).astype("float64")
    visits[rng.random(n) < 0.15] = np.nan
    X = pd.DataFrame({
        "colour": pd.Series(colour, dtype="str"),
        "size": pd.Series(rng.choice(np.array(["s", "m", "l"], dtype=object), n), dtype="str"),
        "visits": visits,
        "score": rng.normal(0, 1, n),
        "student": rng.random(n) < 0.2,
    })  # fmt: skip
    logit = (0.5 * np.nan_to_num(visits, nan=-2) - 1.5 * (X["colour"] == "blue").to_numpy()
             + X["score"].to_numpy() - X["student"].to_numpy() - 1.0)  # fmt: skip
    return X, (rng.random(n) < expit(logit)).astype(int)


@pytest.fixture(scope="module")
def fitted():
    X, y = _leads(800, 1)
    X_cal, y_cal = _leads(400, 2)
    models = {}
    for family in sorted(GRIDS):
        pipeline = make_candidate(family, X)
        if family == "hist_gradient_boosting":
            pipeline.set_params(classifier__max_iter=12, classifier__early_stopping=False)
        pipeline.fit(X, y)
        models[family, "none"] = pipeline
        for method in CALIBRATIONS:
            calibrated = CalibratedClassifierCV(FrozenEstimator(pipeline), method=method)
            models[family, method] = calibrated.fit(X_cal, y_cal)
    return {"X": X, "new": _leads(300, 3)[0], "models": models}


def test_the_installed_scikit_learn_is_one_the_internals_were_checked_against():
    """A new scikit-learn: run this file against it and, when it passes, add its version to
    ``CHECKED_WITH`` (and to the docstrings that name it)."""
    installed = ".".join(sklearn.__version__.split(".")[:2])
    assert installed in sk.CHECKED_WITH, (sklearn.__version__, sk.CHECKED_WITH)


# --- calibration --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", CALIBRATIONS)
def test_a_calibration_is_taken_apart_and_recomputed_from_raw_scores(fitted, method):
    model = fitted["models"]["logistic", method]
    pipeline = fitted["models"]["logistic", "none"]
    X = fitted["new"]
    (calibration,) = sk.calibrations(model)
    assert isinstance(sk.calibrated_model(calibration), FrozenEstimator)
    assert sk.calibrated_model(calibration).estimator is pipeline
    assert sk.calibration_method(calibration) == method
    (calibrator,) = sk.calibrators(calibration)
    assert sk.is_non_decreasing(calibrator)

    raw = pipeline.decision_function(X)
    expected = model.predict_proba(X)[:, 1]
    got = sk.calibrate_scores(calibration, pipeline.classes_, raw)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    # Any shape: the explainer calibrates a (leads, features) matrix at once.
    square = np.stack([raw, raw + 0.5], axis=1)
    assert sk.calibrate_scores(calibration, pipeline.classes_, square).shape == square.shape

    sigmoid = sk.sigmoid_parameters(calibrator)
    if method == "sigmoid":
        a, b = sigmoid
        assert np.isfinite([a, b]).all() and a < 0
        np.testing.assert_allclose(expit(-(a * raw + b)), expected, rtol=0, atol=1e-12)
    else:
        assert sigmoid is None
    if method == "temperature":
        beta = sk.temperature_beta(calibrator)
        assert isinstance(beta, float) and beta > 0
        # softmax(beta * (-s, s)) is the sigmoid of slope 2 beta (what calibration relies on).
        np.testing.assert_allclose(expit(2 * beta * raw), expected, rtol=0, atol=1e-9)


def test_a_sigmoid_calibrator_takes_new_parameters(fitted):
    model = fitted["models"]["hist_gradient_boosting", "sigmoid"]
    raw = fitted["models"]["hist_gradient_boosting", "none"].decision_function(fitted["new"])
    (calibration,) = sk.calibrations(model)
    (calibrator,) = sk.calibrators(calibration)
    before = sk.sigmoid_parameters(calibrator)
    try:
        sk.set_sigmoid_parameters(calibrator, -0.7, 0.3)
        assert sk.sigmoid_parameters(calibrator) == (-0.7, 0.3)
        np.testing.assert_allclose(model.predict_proba(fitted["new"])[:, 1],
                                   expit(0.7 * raw - 0.3), rtol=0, atol=1e-12)  # fmt: skip
        sk.set_sigmoid_parameters(calibrator, 0.7, 0.3)  # a decreasing sigmoid
        assert not sk.is_non_decreasing(calibrator)
    finally:
        sk.set_sigmoid_parameters(calibrator, *before)


def test_an_isotonic_calibrator_takes_new_levels(fitted):
    model = fitted["models"]["hist_gradient_boosting", "isotonic"]
    raw = fitted["models"]["hist_gradient_boosting", "none"].decision_function(fitted["new"])
    (calibration,) = sk.calibrations(model)
    (calibrator,) = sk.calibrators(calibration)
    assert calibrator.y_thresholds_.shape == calibrator.X_thresholds_.shape
    before = calibrator.y_thresholds_.copy()
    levels = np.clip(before + 0.05, 0, 1)
    try:
        sk.set_isotonic_levels(calibrator, levels)
        np.testing.assert_allclose(model.predict_proba(fitted["new"])[:, 1],
                                   np.interp(raw, calibrator.X_thresholds_, levels),
                                   rtol=0, atol=1e-12)  # fmt: skip
    finally:
        sk.set_isotonic_levels(calibrator, before)


# --- column transformers and the trees' inputs --------------------------------------------------


@pytest.mark.parametrize("family", sorted(GRIDS))
def test_each_step_of_a_column_transformer_names_its_input_columns(fitted, family):
    X = fitted["X"]
    columns = fitted["models"][family, "none"][0]
    inputs = sk.column_inputs(columns)
    steps = [(name, selected) for name, _, selected in columns.transformers_
             if name != "remainder"]  # fmt: skip
    assert steps
    for name, selected in steps:
        assert [X.columns[i] for i in inputs[name]] == list(selected), name


def test_the_trees_inner_encoder_and_float_check_are_as_the_inputs_expect(fitted):
    pipeline = fitted["models"]["hist_gradient_boosting", "none"]
    columns, hgb = pipeline[0], pipeline[-1]
    passthrough = dict((name, step) for name, step, _ in columns.transformers_)["numeric"]
    assert sk.is_float_check(passthrough)
    inner = sk.tree_encoder(hgb)
    assert isinstance(inner, ColumnTransformer)
    width = {name: part.stop - part.start for name, part in inner.output_indices_.items()}
    steps = {name: step for name, step, _ in inner.transformers_ if width.get(name)}
    encoders = [n for n, s in steps.items() if isinstance(s, OrdinalEncoder)]
    checks = [n for n, s in steps.items() if sk.is_float_check(s)]
    assert len(encoders) == 1 and len(checks) == 1 and len(steps) == 2

    # The trees' matrix: the float-checked columns as they come, the encoded ones as whole
    # codes below 255 (missing where the input is), each where the inner transformer says.
    outer = columns.transform(fitted["new"])
    Z = sk.tree_preprocessor(hgb)(outer)
    assert Z.dtype == np.float64 and Z.shape == (len(outer), hgb.n_features_in_)
    inputs = sk.column_inputs(inner)
    for name in steps:
        part, taken = inner.output_indices_[name], outer[:, inputs[name]].astype("float64")
        if name in checks:
            np.testing.assert_array_equal(Z[:, part], taken)
            continue
        codes = Z[:, part]
        np.testing.assert_array_equal(np.isnan(codes), np.isnan(taken))
        present = codes[~np.isnan(codes)]
        assert len(present) and (present == np.round(present)).all()
        assert present.min() >= 0 and present.max() < 255


# --- the trees ----------------------------------------------------------------------------------


def test_the_trees_their_nodes_and_known_categories(fitted):
    pipeline = fitted["models"]["hist_gradient_boosting", "none"]
    columns, hgb = pipeline[0], pipeline[-1]
    baseline = sk.tree_baseline(hgb)
    assert isinstance(baseline, float) and np.isfinite(baseline)
    trees = sk.trees(hgb)
    assert len(trees) == hgb.n_iter_
    for tree in trees:
        for field, kind in sk.NODE_FIELDS.items():
            assert tree.nodes.dtype[field].kind == kind, field
        assert tree.raw_left_cat_bitsets.dtype == np.uint32
        assert tree.raw_left_cat_bitsets.shape[1:] == (8,)
        split = tree.nodes[tree.nodes["is_leaf"] == 0]
        if split["is_categorical"].any():
            assert split["bitset_idx"][split["is_categorical"] == 1].max() < len(
                tree.raw_left_cat_bitsets
            )
    assert any(t.nodes["is_categorical"].any() for t in trees)

    known, f_idx_map = sk.known_categories(hgb)
    categorical = np.flatnonzero(hgb.is_categorical_)
    assert known.dtype == np.uint32 and known.shape == (len(categorical), 8)
    assert f_idx_map.shape == (hgb.n_features_in_,)
    # The categories seen in training are the codes of the training rows, bit by bit.
    Z = sk.tree_preprocessor(hgb)(columns.transform(fitted["X"]))
    for j in categorical:
        bits = sk.category_bits(known[f_idx_map[j]])
        assert bits.shape == (256,) and bits.dtype == bool
        seen = np.unique(Z[:, j][~np.isnan(Z[:, j])]).astype(int)
        np.testing.assert_array_equal(np.flatnonzero(bits), seen)


# --- what the explainer builds from them ----------------------------------------------------------


@pytest.mark.parametrize("calibration", ["none", *CALIBRATIONS])
@pytest.mark.parametrize("family", sorted(GRIDS))
def test_contributions_add_up_to_the_models_raw_score_and_pass_the_run_time_check(
    fitted, family, calibration, caplog
):
    """The fast path of each family keeps its method through the run-time check (no warning,
    no fallback to occlusion), its raw score is the model's decision function, and the
    features' parts add up to it."""
    model = fitted["models"][family, calibration]
    pipeline = fitted["models"][family, "none"]
    X = fitted["new"]
    reference = {"colour": "red", "size": "m", "visits": 0.0, "score": 0.0, "student": False}
    explainer = Explainer(model, list(X.columns), reference, candidates=10_000)
    with caplog.at_level(logging.WARNING, logger="leadml.scoring"):
        got = explainer.explain(X)
    assert caplog.text == ""
    assert explainer.method == {"logistic": "linear", "hist_gradient_boosting": "tree"}[family]
    np.testing.assert_allclose(got.probability, model.predict_proba(X)[:, 1], rtol=0, atol=1e-9)

    decision = pipeline.decision_function(X)
    if family == "hist_gradient_boosting":
        tree = explainer._tree
        raw, contributions = tree.explain(X)
        np.testing.assert_array_equal(raw, decision)
        total = tree.baseline + tree.root_sum + contributions.sum(axis=1)
        np.testing.assert_allclose(total, raw, rtol=0, atol=1e-9)
    else:
        raw, delta = explainer._linear.explain(X)
        np.testing.assert_allclose(raw, decision, rtol=0, atol=1e-9)
        # Each lead's parts add up to its raw score minus the reference lead's.
        at_reference = pipeline.decision_function(X.iloc[:1].assign(**reference))
        np.testing.assert_allclose(raw - delta.sum(axis=1), at_reference[0], rtol=0, atol=1e-9)
