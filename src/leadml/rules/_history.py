"""MQL history: when the rules would have made each lead an MQL, over a period.

What "crossed" means
--------------------
A lead's rule score ``S(T)`` (as of T: events strictly before T) is a step function of T: it jumps
at each event (up for positive rules, down for negative ones), fades between events where decay
applies, drops when points leave a window, and starts, with the fit points, when the lead is
created. The lead *crosses* the threshold at T when ``S`` is below the threshold just before T
and at or above it from T on. It is evaluated

* exactly at each event that a positive rule counts: ``S`` just before the event (as of its
  timestamp) against ``S`` just after it (as of its timestamp + 1 µs); ``crossed_at`` is the
  event's timestamp, ``trigger`` is ``"event"``;
* exactly at the lead's creation, if its fit points alone reach the threshold (``"created"``);
* once a day, at midnight UTC, when the rules let a score rise with nothing happening (a negative
  engagement rule that decays or has a window, or a fit rule on ``lead_age_days``): such a rise is
  reported at the first midnight that sees it (``"time"``), so at daily granularity.

Every up-crossing in ``[start, end)`` is reported (a lead that falls below the threshold as its
points fade can cross again), numbered per lead by ``crossing``; keep ``crossing == 1`` for the
first crossing of each lead in the period. A lead already at or above the threshold at ``start``
crossed before the period and is not reported until it falls below and crosses again. With
``open_only`` (the default) only instants at which the lead is open count: a lead that reached
the target stage or a terminal stage is no longer scored.

Each lead's candidate instants and events are walked together once, in time order
(:mod:`leadml.rules._timeline`): the cost is linear in the events, so that a bot with a million
events takes seconds, where summing all of a lead's events at each instant took hours.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd

from leadml.asof import as_spine, open_pairs, registered, to_utc
from leadml.data import LeadData
from leadml.rules._engine import RulesLike, event_types_of, score_sql
from leadml.rules._schema import load_rules
from leadml.validation import sql_str

_ONE_US = "INTERVAL 1 MICROSECOND"


def rule_mql_history(
    data: LeadData,
    start: pd.Timestamp | str,
    end: pd.Timestamp | str,
    rules: RulesLike = None,
    *,
    open_only: bool = True,
) -> pd.DataFrame:
    """The leads whose rule score crossed the MQL threshold in ``[start, end)``, and when.

    See the module documentation for exactly what "crossed" means.

    Returns
    -------
    pandas.DataFrame
        One row per up-crossing: ``lead_id``, ``crossed_at``, ``trigger`` (event, created or
        time), ``crossing`` (1 for the lead's first in the period), and the scores just after
        it: ``rule_score``, ``rule_fit_score``, ``rule_engagement_score``, ``rule_grade``.
        Sorted by crossed_at, lead_id. Rule MQLs per week:
        ``history[history.crossing == 1].groupby(history.crossed_at.dt.floor("7D")).size()``
        (or ``resample`` on ``crossed_at``).
    """
    rules = load_rules(rules, data.settings)
    start, end = to_utc(start), to_utc(end)
    if end <= start:
        raise ValueError(f"end ({end}) must be after start ({start})")
    candidates = _candidates(data, rules, start, end)
    columns = ["lead_id", "crossed_at", "trigger", "crossing", "rule_score", "rule_fit_score",
               "rule_engagement_score", "rule_grade"]  # fmt: skip
    if candidates.empty:
        return pd.DataFrame({c: [] for c in columns})
    pairs = as_spine(candidates)
    with registered(data, pairs, checked=True) as name, _engagement(data, pairs, rules) as eng:
        keep = f"JOIN ({open_pairs(data, name)}) o USING (lead_id, as_of)" if open_only else ""
        sql = score_sql(data, name, rules, explain=False, engagement=eng)
        scores = data.con.execute(f"SELECT sc.* FROM ({sql}) sc {keep}").df()
    frame = scores.merge(candidates, on=["lead_id", "as_of"]).sort_values(["lead_id", "as_of"])
    above = frame["rule_score"] >= rules.mql.threshold
    first = frame["lead_id"].ne(frame["lead_id"].shift())
    # The baseline at `start` only says whether the lead was already above; a lead's first
    # instant otherwise follows its creation, before which it was not above.
    before = above.shift(fill_value=False).where(~first, False)
    crossed = frame[above & ~before & frame["trigger"].ne("start")].copy()
    crossed = crossed.rename(columns={"happened": "crossed_at"})
    crossed["crossing"] = crossed.groupby("lead_id").cumcount() + 1
    crossed["rule_grade"] = crossed["rule_grade"].astype("str")
    crossed = crossed.sort_values(["crossed_at", "lead_id"])
    return crossed[columns].reset_index(drop=True)


@contextmanager
def _engagement(data: LeadData, pairs: pd.DataFrame, rules) -> Iterator[str | None]:
    """The engagement points of the pairs, held for a block: one pass per lead in time order
    (:mod:`leadml.rules._timeline`), where summing each instant's events in SQL costs events x
    instants per lead -- hours for a bot with a million events."""
    if not rules.engagement.rules:
        yield None
        return
    from leadml.rules._timeline import engagement_timeline  # numba: imported when used

    with data.registered("engagement", engagement_timeline(data, pairs, rules)) as name:
        yield name


def _candidates(data: LeadData, rules, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The instants to evaluate: (lead_id, as_of, happened, trigger), one per (lead_id, as_of)."""
    window = f"occurred_at >= {_ts(start)} AND occurred_at < {_ts(end)}"
    rising = [r for r in rules.engagement.rules if r.points > 0]
    parts = [
        # Baseline: where each lead already stood when the period began.
        f"SELECT lead_id, {_ts(start)}, {_ts(start)}, 'start', 0 "
        f"FROM leads WHERE created_at < {_ts(start)}",
        f"SELECT lead_id, created_at + {_ONE_US}, created_at, 'created', 1 FROM leads "
        f"WHERE created_at >= {_ts(start)} AND created_at < {_ts(end)}",
    ]
    if rising:
        types = sorted({t for r in rising for t in event_types_of(r, data.settings)})
        wanted = ", ".join(sql_str(t) for t in types)
        events = f"FROM events WHERE {window} AND event_type IN ({wanted})"
        parts += [
            f"SELECT lead_id, occurred_at, occurred_at, 'time', 3 {events}",
            f"SELECT lead_id, occurred_at + {_ONE_US}, occurred_at, 'event', 2 {events}",
        ]
    days = None
    if rules.rises_without_events:
        days = f"days_{uuid.uuid4().hex[:12]}"
        midnights = pd.date_range(start.floor("D") + pd.Timedelta(days=1), end, freq="D",
                                  inclusive="left")  # fmt: skip
        data.con.register(days, pd.DataFrame({"m": midnights.astype("datetime64[us, UTC]")}))
        parts.append(
            f"SELECT l.lead_id, d.m, d.m, 'time', 4 FROM leads l JOIN {days} d "
            f"ON l.created_at < d.m"
        )
    try:
        return data.con.execute(
            f"""
            SELECT lead_id, as_of, min(happened) AS happened, arg_min(why, p) AS "trigger"
            FROM ({" UNION ALL ".join(parts)}) c(lead_id, as_of, happened, why, p)
            GROUP BY lead_id, as_of
            """
        ).df()
    finally:
        if days is not None:
            data.con.unregister(days)


def _ts(value: pd.Timestamp) -> str:
    return f"TIMESTAMPTZ '{value.isoformat()}'"
