"""A model at many snapshots: each open lead's probability and tier at each instant, as nightly
scoring would have tiered it that night (for comparisons over a window, e.g. ``leadml rules
threshold``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadml.data import LeadData
from leadml.errors import ModelMismatchError
from leadml.scoring._core import assign_tiers
from leadml.scoring._model import ScoringModel


def snapshot_tiers(data: LeadData, spine: pd.DataFrame, model: ScoringModel) -> pd.DataFrame:
    """``lead_id``, ``as_of``, ``probability``, ``tier`` and ``mql`` (a tier of
    ``scoring.tiers.mql``) for each pair of ``spine``.

    Tiers by capacity rank the leads of one instant against each other, so ``spine`` should
    hold every lead open at each of its instants. One instant at a time, which bounds memory.

    Raises
    ------
    ModelMismatchError
        The model needs features the data cannot supply.
    """
    from leadml.features import build_features

    settings = data.settings
    parts = []
    for _, pairs in spine.groupby("as_of"):
        features = build_features(data, pairs)
        missing = [f for f in model.feature_names if f not in features.columns]
        if missing:
            raise ModelMismatchError(
                f"model {model.name} needs {len(missing)} feature(s) this data lacks, e.g. "
                f"{missing[:5]}: use a model trained on this data and configuration"
            )
        probability = model.model.predict_proba(features[model.feature_names])[:, 1]
        tier, _ = assign_tiers(probability, features["lead_id"].to_numpy(), settings)
        mql = np.isin(np.asarray(tier), settings.scoring.tiers.mql)
        parts.append(features[["lead_id", "as_of"]].assign(probability=probability, tier=tier,
                                                           mql=mql))  # fmt: skip
    columns = ["lead_id", "as_of", "probability", "tier", "mql"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def tier_cut(settings) -> str:
    """The model's MQL cut in words, e.g. ``tiers A, B: probability >= 0.15``."""
    tiers = settings.scoring.tiers
    named = ", ".join(tiers.mql)
    if tiers.by == "probability":
        return f"tiers {named}: probability >= {min(tiers.probability[t] for t in tiers.mql):g}"
    share = max(tiers.capacity[t] for t in tiers.mql)
    return f"tiers {named}: the top {share:.0%} of each snapshot's open leads"
