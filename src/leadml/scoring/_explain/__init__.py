"""Probabilities and their reasons, chunk by chunk, faithful to the model.

The effect of feature ``f`` on a lead is how much ``f`` moves its probability: the probability
minus that of the lead with ``f``'s part of the log-odds taken out. A positive effect means the
lead's value of ``f`` raises its probability -- which is what the sign test checks. The effect
goes through the calibration, so it is in probability points.

Three ways to compute it, chosen from the model's structure (:mod:`._composition` takes the
model apart and calibrates log-odds; :mod:`._explainer` chooses and checks):

``linear`` (:mod:`._linear`)
    A logistic regression after column-wise preprocessing (the ``logistic`` candidate): the
    log-odds are a sum over the transformed columns, so ``f``'s part is its columns' terms
    minus their values at ``f``'s reference (0 for counts, else the training median or most
    common value, :mod:`._reference`) -- an exact occlusion, for all features and every lead,
    in one small matrix product.
``tree`` (:mod:`._tree`, its inputs :mod:`._tree_inputs`)
    Histogram gradient boosting (the ``hist_gradient_boosting`` candidate): path
    contributions. Along a lead's path through each tree, the change of the expected leaf value
    at each split is credited to the split's feature; the credits add up exactly to the
    log-odds minus a constant, and ``f``'s part is its credit. One compiled pass walks every
    tree for every lead and gives the prediction and the credits together. For the
    ``candidates`` features with the most split gain.
``occlusion`` (:mod:`._occlusion`)
    Anything else: ``p(x) - p(x with f at its reference value)`` through the model's own
    ``predict_proba``, on the leads whose value differs. Exact, model-agnostic, the slowest.

The scikit-learn internals the fast paths use (the trees, their bins and encoders, the fitted
calibrators) are read through :mod:`leadml.modeling.sklearn_internals` only, guarded by
``tests/test_sklearn_internals.py``; at run time, a fast path is checked on the first chunk
against ``predict_proba``, and on any mismatch the scorer falls back to ``occlusion`` with a
warning rather than explain wrongly. Each lead's top reasons: :func:`top_reasons`
(:mod:`._reasons`).
"""

from leadml.scoring._explain._explainer import Explainer
from leadml.scoring._explain._reasons import Explained, top_reasons
from leadml.scoring._explain._tree import expected_values

_expected_values = expected_values  # the name the explainer's tests import

__all__ = ["Explained", "Explainer", "top_reasons"]
