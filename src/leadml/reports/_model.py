"""The model on the report's scored nights, as aggregates the page can draw: how honest its
probabilities were (reliability), how well it ranked next to the rules (gains), how its tiers
spread, and which features drive it.

Every (lead, night) of the period's scored nights is followed for one horizon
(:func:`leadml.data.asof.follow_up`): its label is whether the lead reached the target stage
in that time, as in training. Only aggregates are kept: no lead id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadml.data import LeadData
from leadml.data.asof import follow_up
from leadml.modeling.evaluation import expected_calibration_error, gains_table, reliability_table

#: Bins of the score distribution by tier: log-spaced, from the lowest probability (or this).
LOWEST_EDGE = 1e-4
_EFFECT = re.compile(r"^reason_(\d+)_effect$")


@dataclass
class ModelEvidence:
    """Aggregates of the model on scored nights (see the module documentation)."""

    pairs: int  # (lead, night) pairs followed up
    nights: int
    reliability: pd.DataFrame  # reliability_table of the model: rows, predicted, observed
    ece: float
    gains: dict[str, pd.DataFrame]  # gains_table per score: model, rules, learned
    tiers: pd.DataFrame  # per tier: pairs, converted, conversion, probability range
    histogram: pd.DataFrame  # pairs per probability bin (index: bin start) and tier (columns)
    importance: pd.DataFrame | None  # feature, importance, stderr
    importance_kind: str  # "permutation", "reasons" or ""


def model_evidence(
    data: LeadData,
    rows: pd.DataFrame | None,
    nights: pd.DatetimeIndex | None,
    follow_up_days: int,
    importance: pd.DataFrame | None = None,
    reasons: pd.DataFrame | None = None,
) -> ModelEvidence | None:
    """The aggregates of ``rows`` (a score history's rows, :meth:`ScoreHistory.rows`) on
    ``nights``; None when they hold no model probability or no mature pair with both outcomes.

    ``importance`` (a permutation-importance table) wins over ``reasons`` (rows with the
    scores' ``reason_<j>_feature``/``reason_<j>_effect`` columns), which give the mean absolute
    effect of each feature among the leads' top reasons.
    """
    if rows is None or nights is None or "mql_probability" not in rows:
        return None
    rows = rows[rows["as_of"].isin(nights)].reset_index(drop=True)
    spine = rows[["lead_id", "as_of"]]
    outcome = follow_up(data, spine, follow_up_days)[["lead_id", "as_of", "converted", "mature"]]
    rows = rows.merge(outcome, on=["lead_id", "as_of"], how="left")
    rows = rows[rows["mature"].fillna(False).astype(bool)]
    y = rows["converted"].to_numpy(dtype=int)
    if len(np.unique(y)) < 2:
        return None
    p = rows["mql_probability"].to_numpy(dtype=float)
    scores = {"model": p}
    for who, column in (("rules", "rule_score"), ("learned", "learned_score")):
        if column in rows:
            scores[who] = rows[column].fillna(-np.inf).to_numpy(dtype=float)
    if "model_tier" not in rows:
        rows = rows.assign(model_tier="all")
    tier = rows["model_tier"].astype("str")
    tiers = rows.groupby(tier).agg(
        pairs=("converted", "size"), converted=("converted", "sum"),
        lowest=("mql_probability", "min"), median=("mql_probability", "median"),
        highest=("mql_probability", "max"),
    )  # fmt: skip
    tiers.insert(2, "conversion", tiers["converted"] / tiers["pairs"])
    tiers.index.name = "tier"
    edges = np.geomspace(max(float(p.min()), LOWEST_EDGE), 1.0, 31)
    binned = pd.cut(np.clip(p, edges[0], 1.0), edges, labels=False, include_lowest=True)
    histogram = pd.crosstab(edges[binned], tier.to_numpy())
    histogram = histogram.reindex(edges[:-1], fill_value=0)
    histogram.index.name, histogram.columns.name = "probability_from", None
    kind = "permutation" if importance is not None else ""
    if importance is None and reasons is not None:
        importance = reason_importance(reasons)
        kind = "reasons" if importance is not None else ""
    return ModelEvidence(
        pairs=len(rows), nights=int(rows["as_of"].nunique()),
        reliability=reliability_table(y, p), ece=expected_calibration_error(y, p),
        gains={who: gains_table(y, score) for who, score in scores.items()},
        tiers=tiers, histogram=histogram, importance=importance, importance_kind=kind,
    )  # fmt: skip


def reason_importance(reasons: pd.DataFrame) -> pd.DataFrame | None:
    """Per feature, the mean absolute effect it has among the leads' top reasons (0 for a lead
    whose reasons do not name it), most important first; None without reason columns.

    Examples
    --------
    >>> reasons = pd.DataFrame({"reason_1_feature": ["visits", "title"],
    ...                         "reason_1_effect": [0.4, -0.2],
    ...                         "reason_2_feature": ["title", None],
    ...                         "reason_2_effect": [0.1, None]})
    >>> reason_importance(reasons).round(3)[["feature", "importance"]].to_dict("list")
    {'feature': ['visits', 'title'], 'importance': [0.2, 0.15]}
    """
    slots = [int(m.group(1)) for c in reasons.columns if (m := _EFFECT.match(c))]
    slots = [j for j in slots if f"reason_{j}_feature" in reasons]
    if not slots or not len(reasons):
        return None
    long = pd.concat(
        [pd.DataFrame({"feature": reasons[f"reason_{j}_feature"],
                       "effect": reasons[f"reason_{j}_effect"].abs()}) for j in slots],
        ignore_index=True,
    ).dropna()  # fmt: skip
    if not len(long):
        return None
    total = long.groupby("feature")["effect"].sum() / len(reasons)
    table = total.rename("importance").reset_index()
    table["stderr"] = 0.0
    table.attrs["leads"] = len(reasons)
    return table.sort_values(["importance", "feature"], ascending=[False, True],
                             ignore_index=True)  # fmt: skip
