"""Occlusion, for any model: ``p(x) - p(x with f at its reference value)`` through the model's
own ``predict_proba``, on the leads whose value differs. Exact, model-agnostic, the slowest."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadml.scoring._explain._reference import differs, reference_frame


def ranked_features(
    model,
    sample: pd.DataFrame | None,
    feature_names: list[str],
    reference: dict[str, object],
    candidates: int,
) -> list[str]:
    """The ``candidates`` features whose occlusion moves the probabilities of ``sample`` (its
    first 2,000 rows) the most in total, largest first, leaving out those that move nothing;
    without a sample, the first ``candidates`` features."""
    if sample is None or not len(sample):
        return feature_names[:candidates]
    sample = sample[feature_names].iloc[:2_000]
    p = model.predict_proba(sample)[:, 1]
    ref = reference_frame(sample, feature_names, reference)
    size = {}
    for f in feature_names:
        rows = np.flatnonzero(differs(sample[f], reference.get(f)))
        if not len(rows):
            size[f] = 0.0
            continue
        occluded = sample.iloc[rows].copy()
        occluded[f] = ref[f].iloc[0]
        size[f] = float(np.abs(p[rows] - model.predict_proba(occluded)[:, 1]).sum())
    ranked = sorted(feature_names, key=lambda f: -size[f])
    return [f for f in ranked[:candidates] if size[f] > 0]


def occlusion_effects(
    model,
    X: pd.DataFrame,
    features: list[str],
    feature_names: list[str],
    reference: dict[str, object],
) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, effects of ``features`` in probability points) for the feature frame."""
    p = model.predict_proba(X)[:, 1]
    effects = np.zeros((len(X), len(features)), dtype="float32")
    ref = reference_frame(X, feature_names, reference)
    for k, f in enumerate(features):
        rows = np.flatnonzero(differs(X[f], reference.get(f)))
        if not len(rows):
            continue
        occluded = X.iloc[rows].copy()
        occluded[f] = ref[f].iloc[0]
        effects[rows, k] = p[rows] - model.predict_proba(occluded)[:, 1]
    return p, effects
