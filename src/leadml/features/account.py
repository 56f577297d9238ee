"""Account features: the buying committee, i.e. the *other* leads at the lead's account.

Their engagement over the configured account windows, and their lifecycle history: how many of
them had become MQL, SQL, opportunity or customer, or were lost, before ``as_of``. They need only
``leads.account_id``; without it (see :attr:`~leadml.data.LeadData.has_accounts`) the family is
left out, rather than a row of zeros for every lead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadml.common.sql import sql_str
from leadml.config import Settings
from leadml.data import LeadData
from leadml.data.asof import FUNNEL_RANK, existed, reached_stages, visible_at
from leadml.features._events import LeadRows, RecentEvents, event_types
from leadml.features._spec import Feature

#: feature suffix -> (stages that count, meaning)
LIFECYCLE = {
    "mql": (reached_stages("mql"), "had become MQL (or later)"),
    "sql": (reached_stages("sql"), "had become SQL (or later)"),
    "opportunity": (reached_stages("opportunity"), "had become an opportunity (or later)"),
    "customer": (("customer",), "had become a customer"),
    "lost": (("lost", "disqualified"), "had been lost or disqualified"),
}
assert set(FUNNEL_RANK) >= {"mql", "sql", "opportunity", "customer"}


def catalogue(settings: Settings, data: LeadData | None = None) -> list[Feature]:
    """The account features (none when ``data``'s leads have no account_id)."""
    if data is not None and not data.has_accounts:
        return []
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


def compute(
    data: LeadData, leads: LeadRows, recent: RecentEvents, rows: np.ndarray, as_of: pd.Timestamp
) -> dict[str, np.ndarray]:
    """The features of :func:`catalogue` (name -> float32 values) for the leads at ``rows`` of
    ``leads``, row for row.

    Each is a sum over the lead's peers, computed as the sum over everyone at its account who
    existed at ``as_of``, minus the lead itself.
    """
    if not data.has_accounts:
        return {}
    member = existed(leads.created_at, as_of) & (leads.account >= 0)
    account = leads.account[rows]
    totals_size = int(leads.account.max(initial=0)) + 1  # one slot even when no lead has one

    def over_peers(per_lead: np.ndarray) -> np.ndarray:
        per_lead = np.where(member, per_lead, 0.0)
        totals = np.bincount(leads.account[member], weights=per_lead[member], minlength=totals_size)
        return np.where(account >= 0, totals[np.maximum(account, 0)] - per_lead[rows], 0.0)

    out = {"account_other_leads": over_peers(np.ones(len(leads)))}
    events = recent.per_lead(len(leads))
    decisions = recent.per_lead(len(leads), types=_decision_types(data))
    for w in data.settings.features.account_windows_days:
        out[f"account_events_{w}d"] = over_peers(events[recent.window(w)])
        out[f"account_decision_actions_{w}d"] = over_peers(decisions[recent.window(w)])
        out[f"account_active_leads_{w}d"] = over_peers(events[recent.window(w)] > 0)
    reached = _stages_reached(data, leads, as_of)
    for name in LIFECYCLE:
        out[f"account_leads_{name}"] = over_peers(reached[name])
    return {f.name: out[f.name].astype(np.float32) for f in catalogue(data.settings, data)}


def _decision_types(data: LeadData) -> list[str]:
    return [t for t, stage in event_types(data.settings).items() if stage == "decision"]


def _stages_reached(data: LeadData, leads: LeadRows, as_of: pd.Timestamp) -> dict[str, np.ndarray]:
    """Per lead row: whether it had entered each :data:`LIFECYCLE` group of stages before as_of."""
    flags = ", ".join(
        f"bool_or(stage IN ({', '.join(map(sql_str, names))})) AS {name}"
        for name, (names, _) in LIFECYCLE.items()
    )
    found = data.con.execute(
        f"SELECT i.row, {flags} FROM ({visible_at('stages', as_of)}) v "
        f"JOIN {leads.name} i USING (lead_id) GROUP BY i.row"
    ).fetchnumpy()
    out = {}
    for name in LIFECYCLE:
        reached = np.zeros(len(leads))
        reached[found["row"]] = np.asarray(found[name], dtype=np.float64)
        out[name] = reached
    return out
