"""The explainer's compiled paths against scikit-learn itself, on small synthetic frames that
have what the nightly frame has and more: text categories with missing values, categories the
model never saw, rare ones, booleans, missing and infinite numbers."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder, StandardScaler

from leadml.modeling.models import make_candidate
from leadml.scoring import top_reasons
from leadml.scoring._explain import Explained, Explainer, _expected_values


def _frame(n: int, seed: int, *, unseen: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    colours = np.array(["red", "green", "blue", "teal", "rare"], dtype=object)
    colour = colours[rng.choice(5, n, p=[0.35, 0.3, 0.2, 0.14, 0.01])]
    if unseen:  # categories the model never saw
        colour[rng.random(n) < 0.1] = "violet"
    colour[rng.random(n) < 0.1] = None
    size = rng.choice(np.array(["s", "m", "l"], dtype=object), n)
    visits = rng.poisson(3, n).astype("float32")
    visits[rng.random(n) < 0.15] = np.nan
    score = rng.normal(0, 1, n)
    score[rng.random(n) < 0.1] = np.nan
    if unseen:
        score[:3] = [np.inf, -np.inf, 1e300]
    return pd.DataFrame(
        {
            "colour": pd.Series(colour, dtype="str"),
            "size": pd.Series(size, dtype="str"),
            "visits": visits,
            "score": score,
            "student": rng.random(n) < 0.2,
        }
    )


def _labels(X: pd.DataFrame, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logit = (
        0.4 * X["visits"].fillna(-2).to_numpy()
        + np.where(X["colour"].isna(), 1.0, 0.0)
        + np.where(X["colour"] == "blue", -1.5, 0.0)
        + np.where(X["size"] == "l", 0.8, 0.0)
        + np.nan_to_num(X["score"].to_numpy(), nan=1.5)
        - 1.0 * X["student"].to_numpy()
        - 1.5
    )
    return (rng.random(len(X)) < 1 / (1 + np.exp(-logit))).astype(int)


@pytest.fixture(scope="module")
def data():
    X = _frame(3_000, 1)
    y = _labels(X, 2)
    pipeline = make_candidate("hist_gradient_boosting", X)
    pipeline.set_params(classifier__max_iter=40, classifier__max_leaf_nodes=15,
                        classifier__early_stopping=False)  # fmt: skip
    pipeline.fit(X, y)
    X_cal = _frame(1_500, 3)
    calibrated = CalibratedClassifierCV(FrozenEstimator(pipeline), method="sigmoid")
    calibrated.fit(X_cal, _labels(X_cal, 4))
    return {"X": X, "y": y, "pipeline": pipeline, "model": calibrated,
            "new": _frame(2_000, 5, unseen=True)}  # fmt: skip


def test_the_pipeline_splits_missing_values_both_ways_and_on_categories(data):
    """The model the other tests use exercises every kind of split."""
    nodes = np.concatenate([p[0].nodes for p in data["pipeline"][-1]._predictors])
    split = nodes[nodes["is_leaf"] == 0]
    assert split["is_categorical"].any() and not split["is_categorical"].all()
    assert split["missing_go_to_left"].any() and not split["missing_go_to_left"].all()


@pytest.mark.parametrize("calibration", ["sigmoid", "isotonic", "none"])
def test_probabilities_are_predict_probas_with_missing_and_unseen_values(data, calibration):
    model = data["pipeline"] if calibration == "none" else data["model"]
    if calibration == "isotonic":
        X_cal = _frame(1_500, 3)
        model = CalibratedClassifierCV(FrozenEstimator(data["pipeline"]), method="isotonic")
        model.fit(X_cal, _labels(X_cal, 4))
    X = data["new"]
    explainer = Explainer(model, list(X.columns), {}, candidates=10_000)
    got = explainer.explain(X)
    assert explainer.method == "tree"
    np.testing.assert_allclose(got.probability, model.predict_proba(X)[:, 1], rtol=0, atol=1e-12)
    # The effects go through the same calibration as the probability.
    raw, contributions = explainer._tree.explain(X)
    p, effects = explainer._effects(raw, contributions)
    np.testing.assert_allclose(got.probability, p, rtol=0, atol=1e-15)
    np.testing.assert_allclose(got.effects, effects, rtol=0, atol=1e-7)
    # The log-odds each reason moved: known exactly under a sigmoid (or no) calibration, and
    # then what the probabilities say; derived from them otherwise.
    assert (got.moved is None) == (calibration == "isotonic")
    from_probabilities = Explained(got.probability, got.effects, got.features).log_odds()
    clear = np.abs(got.probability - 0.5) < 0.49  # logit is ill-conditioned near 0 and 1
    assert clear.mean() > 0.5
    np.testing.assert_allclose(got.log_odds()[clear], from_probabilities[clear], rtol=0, atol=1e-3)


def test_raw_prediction_is_the_models_decision_function_to_the_bit(data):
    X = data["new"]
    explainer = Explainer(data["model"], list(X.columns), {})
    raw, _ = explainer._tree.explain(X)
    np.testing.assert_array_equal(raw, data["pipeline"].decision_function(X))


def test_the_walk_treats_odd_category_codes_as_sklearns_predictor_does(data):
    """Codes the model's own encoder never gives -- a category it never saw, a negative one, a
    fraction -- fed straight to the walk: sklearn sends the first two the way of missing values
    and truncates the fraction."""
    X = data["new"]
    hgb = data["pipeline"][-1]
    explainer = Explainer(data["model"], list(X.columns), {})
    Z = explainer._tree.inputs.transform(X)
    categorical = np.flatnonzero(hgb.is_categorical_)
    rng = np.random.default_rng(7)
    for j in categorical:
        odd = rng.random(len(Z)) < 0.3
        Z[odd, j] = rng.choice([7.0, 30.0, 254.0, -1.0, 1.5, 2.9], odd.sum())
    known, f_idx_map = hgb._bin_mapper.make_known_categories_bitsets()
    expected = np.full(len(Z), float(np.ravel(hgb._baseline_prediction)[0]))
    for (predictor,) in hgb._predictors:
        expected += predictor.predict(Z, known, f_idx_map, 1)
    raw, _ = explainer._tree.walk(Z)
    np.testing.assert_array_equal(raw, expected)


def test_contributions_add_up_to_the_log_odds_and_follow_sklearns_own_paths(data):
    """Each lead's leaf in each tree is found by sklearn's own predictor (on copies of the trees
    whose leaves hold their node number); the credits along those paths, summed, must be the
    compiled walk's."""
    X = data["new"]
    hgb = data["pipeline"][-1]
    explainer = Explainer(data["model"], list(X.columns), {}, candidates=10_000)
    tree = explainer._tree
    raw, contributions = tree.explain(X)
    np.testing.assert_allclose(
        raw, tree.baseline + tree.root_sum + contributions.sum(axis=1), rtol=0, atol=1e-9
    )

    Z = hgb._preprocess_X(data["pipeline"][0].transform(X), reset=False)
    known, f_idx_map = hgb._bin_mapper.make_known_categories_bitsets()
    expected = np.zeros((len(X), hgb.n_features_in_))
    for (predictor,) in hgb._predictors:
        nodes = predictor.nodes
        numbered = nodes.copy()
        numbered["value"] = np.arange(len(nodes))
        finder = TreePredictor(numbered, predictor.binned_left_cat_bitsets,
                               predictor.raw_left_cat_bitsets)  # fmt: skip
        leaves = finder.predict(np.asarray(Z), known, f_idx_map, 1).astype(int)
        value = _expected_values(nodes)
        parent = {int(c): i for i in np.flatnonzero(nodes["is_leaf"] == 0)
                  for c in (nodes["left"][i], nodes["right"][i])}  # fmt: skip
        for row, leaf in enumerate(leaves):
            node = leaf
            while node in parent:
                up = parent[node]
                expected[row, nodes["feature_idx"][up]] += value[node] - value[up]
                node = up
    assert len(tree.features) == len(X.columns)
    np.testing.assert_allclose(contributions, expected[:, tree.columns], rtol=0, atol=1e-12)


def test_inputs_built_column_by_column_are_the_pipelines(data):
    """Unknown, rare (grouped as infrequent) and missing categories get the model's codes."""
    pipeline = make_candidate("hist_gradient_boosting", data["X"])
    pipeline.set_params(prepare__categorical__max_categories=3, classifier__max_iter=5)
    pipeline.fit(data["X"], data["y"])
    explainer = Explainer(pipeline, list(data["X"].columns), {})
    inputs = explainer._tree.inputs
    assert inputs.plan is not None
    X = data["new"]
    # Codes are remembered from chunk to chunk: unseen and missing values turn up later.
    known = X[X["colour"].isin(["red", "blue"])]
    np.testing.assert_array_equal(inputs.transform(known), inputs.by_pipeline(known))
    np.testing.assert_array_equal(inputs.transform(X), inputs.by_pipeline(X))
    np.testing.assert_array_equal(inputs.transform(X.iloc[:1]), inputs.by_pipeline(X.iloc[:1]))
    assert inputs.transform(X.iloc[:0]).shape == (0, X.shape[1])


def test_a_pipeline_with_other_steps_is_walked_on_its_own_output(data):
    """A scaler is not a one-to-one map the inputs can be built by: the pipeline's own output
    is walked, and the result is still the model's."""
    X = data["X"]
    columns = ColumnTransformer([
        ("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                       encoded_missing_value=np.nan), ["colour", "size"]),
        ("numeric", StandardScaler(), ["visits", "score", "student"]),
    ])  # fmt: skip
    model = Pipeline([
        ("prepare", columns),
        ("classifier", HistGradientBoostingClassifier(
            max_iter=10, categorical_features=[True, True, False, False, False])),
    ]).fit(X, data["y"])  # fmt: skip
    explainer = Explainer(model, list(X.columns), {})
    assert explainer._tree.inputs.plan is None
    new = data["new"].iloc[3:]  # the scaler refuses infinite values
    got = explainer.explain(new)
    assert explainer.method == "tree"
    np.testing.assert_allclose(got.probability, model.predict_proba(new)[:, 1],
                               rtol=0, atol=1e-12)  # fmt: skip


def test_a_walk_that_disagrees_with_predict_proba_falls_back_to_occlusion(data, caplog):
    X = data["new"]
    reference = {"colour": "red", "size": "m", "visits": 0.0, "score": 0.0, "student": False}
    explainer = Explainer(data["model"], list(X.columns), reference, sample=X)
    assert explainer.method == "tree"
    explainer._tree._value = explainer._tree._value + 0.01  # as if sklearn's trees changed
    with caplog.at_level(logging.WARNING, logger="leadml.scoring"):
        got = explainer.explain(X.iloc[:300])
    assert explainer.method == "occlusion"
    assert "disagree with predict_proba" in caplog.text
    np.testing.assert_allclose(got.probability, data["model"].predict_proba(X.iloc[:300])[:, 1])


def test_inputs_that_differ_from_the_pipelines_are_replaced_by_the_pipelines(data, caplog):
    X = data["new"]
    explainer = Explainer(data["model"], list(X.columns), {})
    inputs = explainer._tree.inputs
    inputs.plan[0], inputs.plan[1] = inputs.plan[1], inputs.plan[0]  # as if mis-traced
    with caplog.at_level(logging.WARNING, logger="leadml.scoring"):
        got = explainer.explain(X)
    assert inputs.plan is None and "differ from the pipeline's" in caplog.text
    assert explainer.method == "tree"
    np.testing.assert_allclose(got.probability, data["model"].predict_proba(X)[:, 1],
                               rtol=0, atol=1e-12)  # fmt: skip


def test_a_model_the_walk_does_not_know_is_explained_by_occlusion(data):
    """Three classes: no single log-odds to split into credits."""
    X = data["X"]
    y = (data["y"] + (X["size"] == "l").to_numpy()).clip(0, 2)
    model = make_candidate("hist_gradient_boosting", X).set_params(classifier__max_iter=5)
    model.fit(X, y)
    reference = {"colour": "red", "size": "m", "visits": 0.0, "score": 0.0, "student": False}
    explainer = Explainer(model, list(X.columns), reference, sample=X.iloc[:200])
    assert explainer.method == "occlusion"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_top_reasons_are_a_stable_sort_of_their_sizes_with_ties_and_nans(dtype):
    rng = np.random.default_rng(0)
    effects = rng.normal(0, 0.1, (4_000, 12))
    effects[::2, 5] = effects[::2, 7]  # a tie, sometimes across the cut
    effects[::3, 9] = -effects[::3, 2]  # equal size, opposite sign
    effects[::5] = np.round(effects[::5] * 10) / 10  # many ties
    effects[::11, 4] = np.nan  # counts as 0
    effects[::13] = 0.0
    effects = effects.astype(dtype)
    size = np.nan_to_num(np.abs(effects))
    for count in (1, 3, 12, 20):
        for minimum in (0.0, 0.05):
            index, effect = top_reasons(effects, count, minimum)
            order = np.argsort(-size, axis=1, kind="stable")[:, : min(count, 12)]
            strong = np.take_along_axis(size, order, axis=1) >= max(minimum, 1e-12)
            np.testing.assert_array_equal(index, np.where(strong, order, -1))
            expected = np.where(strong, np.take_along_axis(effects, order, axis=1), 0.0)
            np.testing.assert_array_equal(effect, expected.astype("float32"))
    # F-ordered input (as DataFrame.to_numpy gives) and no rows.
    np.testing.assert_array_equal(top_reasons(np.asfortranarray(effects), 3, 0.0)[0],
                                  top_reasons(effects, 3, 0.0)[0])  # fmt: skip
    assert top_reasons(effects[:0], 3, 0.0)[0].shape == (0, 3)
