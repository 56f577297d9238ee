"""The funnel as the CRM recorded it: each lead's journey through the lifecycle stages, and the
funnel metrics people ask for (conversion rates, MQL acceptance, speed to lead), overall, per
week and per segment.

A lead *reached* a stage if the stages table has that stage or a later funnel stage for it (a
lead recorded as SQL without an MQL row still passed MQL), so every step of the funnel is at most
the step before it. Sales's verdict on an MQL is one of three, which add up to the MQLs:
accepted (SAL or later), rejected (SRL, never accepted) or awaiting review.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadml.common.safe_text import shorten_series
from leadml.common.sql import sql_str
from leadml.data import LeadData
from leadml.data.asof import SALES_TOUCH_STAGES, instant, reached_stages
from leadml.data.attributes import available, lead_attributes

#: The funnel in order, as the journeys table names it (``won`` is the canonical ``customer``).
FUNNEL = ("lead", "mql", "sal", "sql", "opportunity", "customer")
#: Stages whose first time :func:`lead_journeys` records, with what reaching each means.
_REACHED = {
    "mql": (*reached_stages("mql"), "srl"),  # a rejected lead had been an MQL
    "sal": reached_stages("sal"),
    "srl": ("srl",),
    "sql": reached_stages("sql"),
    "opportunity": reached_stages("opportunity"),
    "customer": reached_stages("customer"),
}
UNKNOWN = "(unknown)"


def _in(stages: tuple[str, ...]) -> str:
    return ", ".join(sql_str(s) for s in stages)


def lead_journeys(data: LeadData, segments: tuple[str, ...] | None = None) -> pd.DataFrame:
    """One row per lead: when it was created and first reached each funnel stage.

    Parameters
    ----------
    data
        Loaded data; the whole history is read (as of the end of the data).
    segments
        Lead attributes to add (default: ``report.segments``), normalised exactly as the
        features and rules read them (:mod:`leadml.data.attributes`); missing values read
        ``"(unknown)"``; values longer than 200 characters are cut, with a marker
        (:func:`leadml.common.safe_text.shorten`). An attribute the input cannot supply
        (``industry`` without an accounts table) is left out
        (:func:`leadml.data.attributes.available`).

    Returns
    -------
    pandas.DataFrame
        ``lead_id``, ``created_at``, ``week`` (Monday 00:00 UTC of the creation week), the
        segment columns, ``mql_at``, ``sal_at``, ``srl_at``, ``sql_at``, ``opportunity_at``,
        ``customer_at`` (first time the stage or a later one was reached; ``srl_at``: first
        rejection), ``first_touch_at`` (first sales touch -- SAL, SRL, SQL or opportunity -- at or
        after the MQL) and ``speed_to_lead_hours`` (MQL to that touch). Sorted by lead_id.

    Examples
    --------
    >>> from leadml import generate_history, load_data
    >>> journeys = lead_journeys(load_data(generate_history(n_leads=300, seed=1).tables()))
    >>> accepted = journeys.dropna(subset="sal_at")  # every accepted lead was an MQL first
    >>> len(journeys), bool((accepted["sal_at"] >= accepted["mql_at"]).all())
    (300, True)
    """
    segments = tuple(
        available(data, data.settings.report.segments if segments is None else segments)
    )
    after_end = instant(data.end() + pd.Timedelta(days=1))
    # Attributes carry no history: read them once per lead, as of after the end of the data.
    attributes = lead_attributes(data, f"(SELECT lead_id, {after_end} AS as_of FROM leads)")
    firsts = ",\n".join(
        f"min(entered_at) FILTER (WHERE stage IN ({_in(stages)})) AS {name}_at"
        for name, stages in _REACHED.items()
    )
    chosen = "".join(f", coalesce(CAST(a.{s} AS VARCHAR), {sql_str(UNKNOWN)}) AS {s}"
                     for s in segments)  # fmt: skip
    frame = data.con.execute(
        f"""
        WITH firsts AS (SELECT lead_id, {firsts} FROM stages GROUP BY lead_id),
        touch AS (
            SELECT f.lead_id, min(t.entered_at) AS first_touch_at
            FROM firsts f JOIN stages t ON t.lead_id = f.lead_id
             AND t.stage IN ({_in(SALES_TOUCH_STAGES)}) AND t.entered_at >= f.mql_at
            GROUP BY f.lead_id
        )
        SELECT l.lead_id, l.created_at, date_trunc('week', l.created_at) AS week{chosen},
               {", ".join(f"f.{name}_at" for name in _REACHED)}, touch.first_touch_at
        FROM leads l
        JOIN ({attributes}) a ON a.lead_id = l.lead_id
        LEFT JOIN firsts f ON f.lead_id = l.lead_id
        LEFT JOIN touch ON touch.lead_id = l.lead_id
        ORDER BY l.lead_id
        """
    ).df()
    frame["speed_to_lead_hours"] = (
        frame["first_touch_at"] - frame["mql_at"]
    ).dt.total_seconds() / 3600
    for segment in segments:  # shown in tables and figures: a 1 MB value would swamp both
        frame[segment] = shorten_series(frame[segment])
    return frame


def funnel_table(journeys: pd.DataFrame, by: str | list[str] | None = None) -> pd.DataFrame:
    """The funnel metrics of a journeys table, overall or per value of ``by``.

    Parameters
    ----------
    journeys
        What :func:`lead_journeys` returns (or any subset of its rows).
    by
        ``None`` for one row (index ``"all"``), or column(s) to group by, e.g. ``"week"`` or
        ``"lead_source"``.

    Returns
    -------
    pandas.DataFrame
        Counts of leads that reached each stage -- ``leads``, ``mql``, ``sal`` (accepted),
        ``srl`` (rejected, never accepted), ``awaiting_review`` (MQLs neither), ``sql``,
        ``opportunity``, ``won`` -- and the rates ``lead_to_mql``, ``mql_acceptance``
        (accepted / MQLs), ``mql_to_sql``, ``sql_to_opportunity``, ``opportunity_to_won``,
        ``lead_to_won``, with ``speed_to_lead_hours`` (median hours from MQL to the first sales
        touch, over the MQLs touched). A rate whose denominator is 0 is missing, not 0.
    """
    reached = {name: journeys[f"{name}_at"].notna().to_numpy() for name in _REACHED}
    counts = pd.DataFrame(
        {
            "leads": np.ones(len(journeys), dtype="int64"),
            "mql": reached["mql"],
            "sal": reached["sal"],
            "srl": reached["srl"] & ~reached["sal"],
            "awaiting_review": reached["mql"] & ~reached["sal"] & ~reached["srl"],
            "sql": reached["sql"],
            "opportunity": reached["opportunity"],
            "won": reached["customer"],
            "speed_to_lead_hours": journeys["speed_to_lead_hours"].to_numpy(),
        },
        index=journeys.index,
    )
    if by is None:
        keys = pd.Series("all", index=journeys.index, name="")
        grouped = counts.groupby(keys)
    else:
        grouped = counts.groupby([journeys[c] for c in ([by] if isinstance(by, str) else by)])
    speed = grouped["speed_to_lead_hours"].median()
    table = grouped[[c for c in counts.columns if c != "speed_to_lead_hours"]].sum()
    table = table.astype("int64")

    def rate(numerator: str, denominator: str) -> pd.Series:
        return table[numerator] / table[denominator].where(table[denominator] > 0)

    table["lead_to_mql"] = rate("mql", "leads")
    table["mql_acceptance"] = rate("sal", "mql")
    table["mql_to_sql"] = rate("sql", "mql")
    table["sql_to_opportunity"] = rate("opportunity", "sql")
    table["opportunity_to_won"] = rate("won", "opportunity")
    table["lead_to_won"] = rate("won", "leads")
    table["speed_to_lead_hours"] = speed
    return table


def funnel_counts(data: LeadData) -> pd.DataFrame:
    """Leads that reached each lifecycle stage, with step-to-step and lead-level rates.

    The overall row of :func:`funnel_table` as one row per stage: ``lead``, ``mql``, ``sal``
    (accepted), ``sql``, ``opportunity``, ``customer`` (won), and ``srl`` (rejected, never
    accepted), reported next to ``sal`` so the MQL acceptance rate can be read off.
    ``rate_from_previous`` divides by the stage before (``mql`` for ``srl``).

    Examples
    --------
    >>> from leadml.synth import generate_history
    >>> from leadml.data import load_data
    >>> h = generate_history(n_leads=300, seed=1)
    >>> table = funnel_counts(load_data(h.tables()))
    >>> int(table.loc["lead", "leads"]) == 300
    True
    """
    overall = funnel_table(lead_journeys(data, segments=())).iloc[0]
    names = {"lead": "leads", "customer": "won"}
    stages = [*FUNNEL, "srl"]
    counts = pd.Series([int(overall[names.get(s, s)]) for s in stages], index=stages)
    previous = counts.reindex(["lead", "lead", "mql", "sal", "sql", "opportunity", "mql"])
    table = counts.to_frame("leads")
    table["rate_from_previous"] = counts.to_numpy() / previous.to_numpy().clip(min=1)
    table["rate_from_lead"] = counts / max(int(counts["lead"]), 1)
    table.index.name = "stage"
    return table


def engagement_over_time(data: LeadData, freq: str = "week") -> pd.DataFrame:
    """Engagement actions per ``freq`` (``"day"``, ``"week"`` or ``"month"``, in UTC) and buying
    stage: one column per stage (awareness, consideration, decision, none) and ``active_leads``
    (leads with at least one action in the period), indexed by the period's start."""
    if freq not in ("day", "week", "month"):
        raise ValueError(f"freq must be 'day', 'week' or 'month', not {freq!r}")
    counts = data.con.execute(
        f"""
        SELECT date_trunc('{freq}', occurred_at) AS period, buying_stage, count(*) AS actions
        FROM events GROUP BY ALL
        """
    ).df()
    active = data.con.execute(
        f"""
        SELECT date_trunc('{freq}', occurred_at) AS period, count(DISTINCT lead_id) AS active_leads
        FROM events GROUP BY ALL
        """
    ).df()
    table = counts.pivot_table(
        index="period", columns="buying_stage", values="actions", aggfunc="sum", fill_value=0
    )
    stages = ["awareness", "consideration", "decision", "none"]
    table = table.reindex(columns=stages, fill_value=0).astype("int64")
    table.columns.name = None
    table = table.join(active.set_index("period"))
    return table.sort_index()
