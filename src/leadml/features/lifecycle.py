"""Lifecycle features: the lead's own stage history before ``as_of`` (e.g. an MQL not yet accepted).

Only transitions strictly before ``as_of`` are seen, so a lead's later SQL never leaks in.
"""

from __future__ import annotations

import pandas as pd

from leadml.config import Settings
from leadml.data.asof import FUNNEL_RANK, reached_stages, visible_at
from leadml.features._spec import Feature


def catalogue(settings: Settings) -> list[Feature]:
    return [
        Feature(
            "current_stage",
            "latest lifecycle stage entered before as_of ('lead' if none)",
            kind="category",
            fill="lead",
        ),
        Feature(
            "funnel_rank",
            "highest funnel rank reached (lead 0, mql 1, sal/srl 2, sql 3, "
            "opportunity 4, customer 5)",
            fill=0,
        ),
        Feature("days_in_current_stage", "days since the latest stage change (missing: none)"),
        Feature("days_since_mql", "days since the lead first became MQL or later (missing: never)"),
        Feature(
            "sales_accepted", "sales accepted the lead (SAL) before as_of", kind="flag", fill=False
        ),
        Feature(
            "sales_rejected", "sales rejected the lead (SRL) before as_of", kind="flag", fill=False
        ),
        Feature("stage_changes", "lifecycle transitions before as_of", fill=0),
    ]


def sql(settings: Settings, spine: str, as_of: pd.Timestamp) -> str:
    """SQL: one row per pair of ``spine`` (all at ``as_of``) with a stage change before as_of."""
    rank = " ".join(f"WHEN '{s}' THEN {r}" for s, r in FUNNEL_RANK.items())
    mql = ", ".join(f"'{s}'" for s in reached_stages("mql"))
    visible = visible_at("stages", as_of, leads=f"SELECT lead_id FROM {spine}")
    return f"""
        SELECT s.lead_id, s.as_of, v.* EXCLUDE (lead_id) FROM {spine} s JOIN (
            SELECT lead_id,
                -- ties (two stages entered at the same instant): the later funnel stage wins
                first(stage ORDER BY age_days, CASE stage {rank} ELSE -1 END DESC)
                    AS current_stage,
                max(CASE stage {rank} ELSE NULL END) AS funnel_rank,
                min(age_days) AS days_in_current_stage,
                max(age_days) FILTER (stage IN ({mql})) AS days_since_mql,
                bool_or(stage = 'sal') AS sales_accepted,
                bool_or(stage = 'srl') AS sales_rejected,
                count(*) AS stage_changes
            FROM ({visible}) t
            GROUP BY ALL
        ) v USING (lead_id)
    """
