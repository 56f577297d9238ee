"""Small builders shared by the rules tests: one account, a few leads, hand-placed events."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from leadml import load_data

T0 = pd.Timestamp("2025-01-01", tz="UTC")
AS_OF = pd.Timestamp("2025-06-01", tz="UTC")
DAY = pd.Timedelta(days=1)

GRADES = {
    "fit": {"A": {"from": 60}, "B": {"from": 40, "below": 60}, "C": {"from": 20, "below": 40},
            "D": {"below": 20}},
    "engagement": {1: {"from": 60}, 2: {"from": 30, "below": 60}, 3: {"from": 10, "below": 30},
                   4: {"below": 10}},
}  # fmt: skip


def make_rules(
    fit: Sequence[dict] = (),
    engagement: Sequence[dict] = (),
    *,
    groups: dict | None = None,
    decay: dict | str | None = None,
    fit_cap: float | None = None,
    engagement_cap: float | None = None,
    threshold: float = 100,
    grades: dict | None = None,
) -> dict:
    """A rules mapping; sections are left out when empty."""
    rules: dict = {"grades": grades or GRADES, "mql": {"threshold": threshold}}
    rules["fit"] = {"rules": list(fit)} | ({"cap": fit_cap} if fit_cap else {})
    rules["engagement"] = {"rules": list(engagement)}
    if decay is not None:
        rules["engagement"]["decay"] = decay
    if engagement_cap:
        rules["engagement"]["cap"] = engagement_cap
    if groups:
        rules["groups"] = groups
    return rules


def make_data(
    leads: Sequence[dict] | None = None, events: Sequence[tuple] = (), stages=(), settings=None
):
    """Data with one account (software, 250 employees, 40 M revenue, US).

    ``leads``: dicts of lead columns (lead_id required; created_at defaults to T0).
    ``events``: (lead_id, occurred_at, event_type). ``stages``: (lead_id, stage, entered_at).
    """
    leads = leads or [{"lead_id": "L1"}]
    accounts = pd.DataFrame({"account_id": ["A1"], "industry": ["Software"],
                             "employee_count": [250.0], "annual_revenue": [40e6],
                             "country": ["US"]})  # fmt: skip
    lead_frame = pd.DataFrame(
        [{"created_at": T0, "lead_source": "web", "account_id": "A1", **lead} for lead in leads]
    )
    lead_frame["created_at"] = pd.to_datetime(lead_frame["created_at"], utc=True)
    # A far-away event keeps the events table non-empty whatever the test needs.
    events = [*events, (lead_frame["lead_id"].iloc[0], T0 - 400 * DAY, "other_raw_type")]
    event_frame = pd.DataFrame(events, columns=["lead_id", "occurred_at", "event_type"])
    event_frame["occurred_at"] = pd.to_datetime(event_frame["occurred_at"], utc=True)
    stages = [*stages, (lead_frame["lead_id"].iloc[0], "lead", T0)]
    stage_frame = pd.DataFrame(stages, columns=["lead_id", "stage", "entered_at"])
    stage_frame["entered_at"] = pd.to_datetime(stage_frame["entered_at"], utc=True)
    return load_data(
        {"accounts": accounts, "leads": lead_frame, "events": event_frame, "stages": stage_frame},
        settings,
        now="2030-01-01",
    )


def spine(*pairs: tuple[str, pd.Timestamp]) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=["lead_id", "as_of"])


def ago(days: float, as_of: pd.Timestamp = AS_OF) -> pd.Timestamp:
    return as_of - pd.Timedelta(days=days)
