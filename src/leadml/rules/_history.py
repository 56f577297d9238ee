"""MQL history: when the rules would have made each lead an MQL, over a period.

What "crossed" means
--------------------
A lead's rule score ``S(T)`` (as of T: events strictly before T) is a step function of T: it jumps
at each event (up for positive rules, down for negative ones), fades between events where decay
applies, drops when points leave a window, and starts, with the fit points, when the lead is
created. The lead *crosses* the threshold at T when ``S`` is below the threshold just before T
and at or above it from T on. It is evaluated

* exactly at each event that a positive rule counts or that ends a negative rule's inactivity:
  ``S`` just before the event (as of its timestamp) against ``S`` just after it (as of its
  timestamp + 1 µs); ``crossed_at`` is the event's timestamp, ``trigger`` is ``"event"``;
* exactly at the lead's creation, if its fit points alone reach the threshold (``"created"``);
* once a day, at midnight UTC, when the rules let a score rise with nothing happening (a negative
  engagement rule that decays or has a window, a positive ``inactive_days`` rule, or a fit rule on
  ``lead_age_days``): such a rise is
  reported at the first midnight that sees it (``"time"``), so at daily granularity.

Every up-crossing in ``[start, end)`` is reported (a lead that falls below the threshold as its
points fade can cross again), numbered per lead by ``crossing``; keep ``crossing == 1`` for the
first crossing of each lead in the period. A lead already at or above the threshold at ``start``
crossed before the period and is not reported until it falls below and crosses again. With
``open_only`` (the default) only instants at which the lead is open count: a lead that reached
the target stage or a terminal stage is no longer scored, nor one gone stale
(``target.stale_after_days`` without activity, :mod:`leadml.data.asof`) until its next activity; a
crossing compares the score with the lead's previous open instant.

How it is computed
------------------
The instants to evaluate and their scores are arrays: SQL gives each lead's creation, closing and
fit points once and its counted events in time order; each engagement rule walks a lead's
instants and events together once (:mod:`leadml.rules._timeline`); caps and rounding are those of
:func:`~leadml.rules.score_sql`, which then gives the full score of the few instants that cross.
The cost is linear in the events: a bot with a million events takes seconds (summing all of a
lead's events at each of its instants, in SQL, took hours).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd

from leadml.common.sql import sql_str
from leadml.data import LeadData
from leadml.data.asof import (
    as_spine,
    closing_stages,
    fresh_spells,
    is_fresh,
    registered,
    stale_after_us,
    to_utc,
)
from leadml.rules._engine import RulesLike, event_types_of, score_sql, usable_rules
from leadml.rules._loading import load_rules
from leadml.rules._schema import Rules

# Why an instant is evaluated, by precedence when two fall on the same instant.
_START, _CREATED, _EVENT, _TIME, _MIDNIGHT = range(5)
_TRIGGERS = np.array(["start", "created", "event", "time", "time"])
_COLUMNS = ["lead_id", "crossed_at", "trigger", "crossing", "rule_score", "rule_fit_score",
            "rule_engagement_score", "rule_grade"]  # fmt: skip


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
    rules = usable_rules(load_rules(rules, data.settings), data)  # as score_sql scores them
    start, end = to_utc(start), to_utc(end)
    if end <= start:
        raise ValueError(f"end ({end}) must be after start ({start})")
    leads, (lead, at, happened, why), score = _scored_instants(data, rules, start, end, open_only)
    above = score >= rules.mql.threshold
    first = np.r_[True, lead[1:] != lead[:-1]]
    # The baseline at `start` only says whether the lead was already above; a lead's first
    # instant otherwise follows its creation, before which it was not above.
    before = np.r_[False, above[:-1]] & ~first
    crossed = above & ~before & (why != _START)
    frame = pd.DataFrame({
        "lead_id": pd.array(leads["lead_id"].to_numpy()[lead[crossed]], dtype="str"),
        "as_of": _utc(at[crossed]), "crossed_at": _utc(happened[crossed]),
        "trigger": pd.array(_TRIGGERS[why[crossed]], dtype="str"),
    })  # fmt: skip
    frame["crossing"] = frame.groupby("lead_id").cumcount() + 1  # rows are in time per lead
    pairs = as_spine(frame)
    with registered(data, pairs, checked=True) as name, _engagement(data, pairs, rules) as eng:
        scores = data.con.execute(score_sql(data, name, rules, explain=False, engagement=eng)).df()
    crossed = frame.merge(scores, on=["lead_id", "as_of"])
    crossed = crossed.astype({"lead_id": "str", "rule_grade": "str"})
    crossed = crossed.sort_values(["crossed_at", "lead_id"])
    return crossed[_COLUMNS].reset_index(drop=True)


def _scored_instants(data: LeadData, rules: Rules, start, end, open_only: bool):
    """The leads (:func:`_leads`), the instants evaluated (:func:`_candidates`) where the lead
    exists (and is open), and the rule score at each."""
    leads = _leads(data, end)
    events = None
    if rules.engagement.rules:
        from leadml.rules._timeline import counted_events_of  # numba: imported when used

        events = counted_events_of(data, leads["lead_id"], rules, start, end)
    lead, at, happened, why = _candidates(leads, events, rules, data.settings, start, end)
    keep = leads["created"].to_numpy()[lead] < at  # the lead existed (asof.existing_leads)
    if open_only:  # and had not closed strictly before (asof.open_pairs)
        keep &= at <= leads["closed"].to_numpy()[lead]
    lead, at, happened, why = lead[keep], at[keep], happened[keep], why[keep]
    if open_only and stale_after_us(data.settings) is not None:  # nor gone stale
        spells = fresh_spells(data, start, end)
        keep = is_fresh(spells, leads["lead_id"].to_numpy()[lead], at)
        lead, at, happened, why = lead[keep], at[keep], happened[keep], why[keep]
    return leads, (lead, at, happened, why), _rule_scores(data, leads, events, rules, lead, at)


def _leads(data: LeadData, end: pd.Timestamp) -> pd.DataFrame:
    """Leads created before ``end``: ``lead_id``, ``created`` and ``closed`` (the first closing
    stage, as in :func:`leadml.data.asof.open_pairs`; the largest instant if none), in microseconds.
    A lead's position is its code in the arrays."""
    closing = ", ".join(sql_str(s) for s in closing_stages(data.settings))
    return data.con.execute(
        f"""
        SELECT l.lead_id, epoch_us(l.created_at) AS created,
            coalesce(epoch_us(c.closed_at), {np.iinfo(np.int64).max}) AS closed
        FROM leads l LEFT JOIN (
            SELECT lead_id, min(entered_at) AS closed_at FROM stages
            WHERE stage IN ({closing}) GROUP BY lead_id
        ) c USING (lead_id)
        WHERE l.created_at < {_ts(end)}
        """
    ).df()


def _candidates(leads: pd.DataFrame, events, rules: Rules, settings, start, end):
    """The instants to evaluate, as arrays sorted by lead, then instant, one per (lead, instant):
    ``lead`` (code), ``at`` (the as_of, µs), ``happened`` (what crossed_at would be) and ``why``
    (a trigger code; the first by precedence where several fall on one instant)."""
    s, e = _us(start), _us(end)
    created = leads["created"].to_numpy()
    code = np.arange(len(leads), dtype=np.int64)
    parts = []

    def add(lead, at, happened, why):
        parts.append((lead, at, happened, np.full(len(lead), why, dtype=np.int8)))

    # Baseline: where each lead already stood when the period began.
    old = created < s
    add(code[old], np.full(old.sum(), s), np.full(old.sum(), s), _START)
    new = (created >= s) & (created < e)
    add(code[new], created[new] + 1, created[new], _CREATED)
    # An event raises the score through a positive rule counting it, or by ending the inactivity
    # a negative rule takes points for.
    rising = [r for r in rules.engagement.rules
              if (r.points < 0 if r.inactive_days is not None else r.points > 0)]  # fmt: skip
    if rising and events is not None:
        types = {t for r in rising for t in event_types_of(r, settings)}
        mine = np.isin(events.type, [events.types.index(t) for t in types])
        mine &= (events.us >= s) & (events.us < e)
        lead, us = events.lead[mine].astype(np.int64), events.us[mine]
        add(lead, us, us, _TIME)  # just before the event
        add(lead, us + 1, us, _EVENT)  # just after it
    if rules.rises_without_events:
        midnights = pd.date_range(start.floor("D") + pd.Timedelta(days=1), end, freq="D",
                                  inclusive="left")  # fmt: skip
        m = midnights.as_unit("us").asi8
        lead, at = np.repeat(code, len(m)), np.tile(m, len(code))
        alive = created[lead] < at
        add(lead[alive], at[alive], at[alive], _MIDNIGHT)
    lead, at, happened, why = (np.concatenate(p) for p in zip(*parts, strict=True))
    if not len(lead):
        return lead, at, happened, why
    order = np.lexsort((why, at, lead))
    lead, at, happened, why = lead[order], at[order], happened[order], why[order]
    firsts = np.flatnonzero(np.r_[True, (lead[1:] != lead[:-1]) | (at[1:] != at[:-1])])
    return lead[firsts], at[firsts], np.minimum.reduceat(happened, firsts), why[firsts]


def _rule_scores(data, leads, events, rules: Rules, lead, at) -> np.ndarray:
    """``rule_score`` of :func:`~leadml.rules.score_sql` at each instant: the same caps, sums
    and rounding, over arrays."""
    fit = _section_total(rules, "fit", _fit_points(data, leads, rules, lead, at), len(at))
    engagement = 0.0
    if events is not None:
        from leadml.rules._timeline import rule_points

        points = rule_points(events, rules, lead, at, data.settings)
        engagement = _section_total(rules, "engagement", points, len(at))
    return _round6(_round6(fit) + _round6(engagement))


def _fit_points(data, leads, rules: Rules, lead, at) -> Iterator[tuple]:
    """Each fit rule with its points at each instant. Attributes have no history: a rule's
    points are the lead's, taken once, except those on the lead's age."""
    if not rules.fit.rules:
        return
    static = rules.model_copy(update={"engagement": rules.engagement.model_copy(
        update={"rules": ()})})  # fmt: skip
    spine = pd.DataFrame({"lead_id": leads["lead_id"], "as_of": _utc(leads["created"] + 1)})
    with registered(data, spine) as name:
        found = data.con.execute(score_sql(data, name, static, explain=True)).df()
    per_lead = leads[["lead_id"]].merge(found, on="lead_id", how="left")
    age = None
    for rule in rules.fit.rules:
        if rule.attribute == "lead_age_days":
            if age is None:  # as attributes.lead_attributes computes it
                age = (at - leads["created"].to_numpy()[lead]) / 86400e6
            inside = np.ones(len(at), dtype=bool)
            if rule.range.from_ is not None:
                inside &= age >= rule.range.from_
            if rule.range.below is not None:
                inside &= age < rule.range.below
            yield rule, np.where(inside, float(rule.points), 0.0)
        else:
            yield rule, per_lead[f"points__{rule.name}"].to_numpy()[lead]


def _section_total(rules: Rules, kind: str, points: Iterable[tuple], n: int) -> np.ndarray:
    """The fit or engagement score before rounding: the rules' points, each group's and then the
    section's cap adjustment, added in the order of score_sql (engine._caps)."""
    section = getattr(rules, kind)
    total = np.zeros(n)
    groups: dict[str, np.ndarray] = {}
    for rule, value in points:
        total = total + value
        if rule.group is not None:
            groups[rule.group] = groups[rule.group] + value if rule.group in groups else value
    for group, value in groups.items():
        cap = rules.groups[group].cap
        total = total + (np.clip(value, -cap, cap) - value)
    if section.cap is not None:
        total = total + (np.clip(total, -section.cap, section.cap) - total)
    return total


def _round6(x):
    # DuckDB's round(x, 6): half away from zero.
    return np.copysign(np.floor(np.abs(x) * 1e6 + 0.5), x) / 1e6


@contextmanager
def _engagement(data: LeadData, pairs: pd.DataFrame, rules) -> Iterator[str | None]:
    """The engagement points of the pairs, held for a block, for score_sql: one pass per lead
    in time order (:mod:`leadml.rules._timeline`), where SQL sums every event at each pair."""
    if not rules.engagement.rules:
        yield None
        return
    from leadml.rules._timeline import engagement_timeline  # numba: imported when used

    with data.registered("engagement", engagement_timeline(data, pairs, rules)) as name:
        yield name


def _us(value: pd.Timestamp) -> int:
    return value.value // 1000


def _utc(us) -> pd.Series:
    return pd.Series(np.asarray(us, dtype=np.int64).astype("datetime64[us]")).dt.tz_localize("UTC")


def _ts(value: pd.Timestamp) -> str:
    return f"TIMESTAMPTZ '{value.isoformat()}'"
