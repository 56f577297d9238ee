"""Account features: the buying committee, i.e. the *other* leads at the lead's account.

Their engagement over the configured account windows, and their lifecycle history: how many of
them had become MQL, SQL, opportunity or customer, or were lost, before ``as_of``.
"""

from __future__ import annotations

import pandas as pd

from leadml.asof import FUNNEL_RANK, account_peers, in_window, reached_stages, visible_at
from leadml.config import Settings
from leadml.features._spec import Feature
from leadml.validation import sql_str

#: feature suffix -> (stages that count, meaning)
LIFECYCLE = {
    "mql": (reached_stages("mql"), "had become MQL (or later)"),
    "sql": (reached_stages("sql"), "had become SQL (or later)"),
    "opportunity": (reached_stages("opportunity"), "had become an opportunity (or later)"),
    "customer": (("customer",), "had become a customer"),
    "lost": (("lost", "disqualified"), "had been lost or disqualified"),
}
assert set(FUNNEL_RANK) >= {"mql", "sql", "opportunity", "customer"}


def catalogue(settings: Settings) -> list[Feature]:
    out = [
        Feature("account_other_leads", "other leads of the account created before as_of", fill=0)
    ]
    for w in settings.features.account_windows_days:
        out += [
            Feature(f"account_events_{w}d", f"events of the other leads, last {w} days", fill=0),
            Feature(
                f"account_decision_actions_{w}d",
                f"decision-stage events of the other leads, last {w} days",
                fill=0,
            ),
            Feature(
                f"account_active_leads_{w}d",
                f"other leads with at least one event in the last {w} days",
                fill=0,
            ),
        ]
    for name, (_, meaning) in LIFECYCLE.items():
        out.append(
            Feature(f"account_leads_{name}", f"other leads that {meaning} before as_of", fill=0)
        )
    return out


def sql(settings: Settings, spine: str, as_of: pd.Timestamp) -> str:
    """SQL: one row per pair of ``spine`` (all at ``as_of``) with other leads at its account.

    Aggregates per other lead first (their events in the widest account window, their stages),
    then sums over each pair's peers.
    """
    windows = settings.features.account_windows_days
    leads = "SELECT other_lead_id FROM peers"
    acts = ", ".join(
        f"count(*) FILTER ({in_window(w)}) AS e_{w}, "
        f"count(*) FILTER ({in_window(w)} AND buying_stage = 'decision') AS d_{w}"
        for w in windows
    )
    flags = ", ".join(
        f"bool_or(stage IN ({', '.join(map(sql_str, names))})) AS {name}"
        for name, (names, _) in LIFECYCLE.items()
    )
    sums = ", ".join(
        f"coalesce(sum(e_{w}), 0) AS account_events_{w}d, "
        f"coalesce(sum(d_{w}), 0) AS account_decision_actions_{w}d, "
        f"count(*) FILTER (e_{w} > 0) AS account_active_leads_{w}d"
        for w in windows
    )
    counts = ", ".join(f"count(*) FILTER ({name}) AS account_leads_{name}" for name in LIFECYCLE)
    return f"""
        WITH peers AS ({account_peers(spine)}),
        acts AS (
            SELECT lead_id AS other_lead_id, {acts}
            FROM ({visible_at("events", as_of, leads=leads, window_days=max(windows))}) v
            GROUP BY ALL
        ),
        history AS (
            SELECT lead_id AS other_lead_id, {flags}
            FROM ({visible_at("stages", as_of, leads=leads)}) v
            GROUP BY ALL
        )
        SELECT p.lead_id, p.as_of, count(*) AS account_other_leads, {sums}, {counts}
        FROM peers p
        LEFT JOIN acts USING (other_lead_id)
        LEFT JOIN history USING (other_lead_id)
        GROUP BY p.lead_id, p.as_of
    """
