"""Engagement points of each lead at many instants of its history, in one pass in time order.

The MQL history asks for a lead's score just before and just after each of its events. Summing
all of the lead's events at each instant, as the SQL plan of :mod:`leadml.rules._engine` does,
costs events x instants per lead: nothing for a person, hours for a bot with a million events.
Here each rule walks the lead's instants and events together, keeping the events its window
holds and their summed weight, aged from one instant to the next (times ``0.5 ** (d / half_life)``,
or minus ``d / lifespan`` per event; nothing without decay). The weights, windows and caps are
those of the SQL plan and of the nightly pass (:mod:`leadml.rules._instant`): an event of age
``a`` days counts when ``0 < a <= window`` (strictly before the instant), weighs
``0.5 ** (a / half_life)`` or ``max(0, 1 - a / lifespan)``, and each rule's sum is capped; an
``inactive_days`` rule fires when the lead's latest event of its types is older than
``inactive_days``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import numba
import numpy as np
import pandas as pd

from leadml.common.sql import sql_str
from leadml.config import Settings
from leadml.data import LeadData
from leadml.data.asof import instant
from leadml.rules._engine import counted_events, event_types_of, kernel_of
from leadml.rules._schema import EngagementRule, Rules


class Events(NamedTuple):
    """The events some engagement rule counts, sorted by lead, then time: ``lead`` (a code),
    ``type`` (a position in ``types``), ``us`` (microseconds since the epoch)."""

    lead: np.ndarray
    type: np.ndarray
    us: np.ndarray
    types: list[str]


def counted_events_of(
    data: LeadData, lead_ids: pd.Series, rules: Rules, first: pd.Timestamp, last: pd.Timestamp
) -> Events:
    """The events of the leads ``lead_ids`` (each coded by its position) that the engagement
    rules may count at instants in ``[first, last]``: strictly before ``last``, and not out of
    every window of their type at ``first``."""
    types = {r.name: event_types_of(r, data.settings) for r in rules.engagement.rules}
    counted = sorted({t for ts in types.values() for t in ts})
    codes = pd.DataFrame({"lead_id": lead_ids, "code": np.arange(len(lead_ids), dtype=np.int64)})
    with data.registered("codes", codes) as name:
        # age_days as of the earliest instant: an event a rule's window has left by then has
        # left it at every instant (counted_events skips it).
        found = data.con.execute(
            f"SELECT k.code AS lead, CAST(list_position([{', '.join(map(sql_str, counted))}], "
            f"e.event_type) - 1 AS SMALLINT) AS type, epoch_us(e.occurred_at) AS us "
            f"FROM (SELECT *, (epoch_us({instant(first)}) - epoch_us(occurred_at)) / 86400e6 "
            f"AS age_days FROM events WHERE occurred_at < {instant(last)}) e "
            f"JOIN {name} k USING (lead_id) WHERE {counted_events(rules, types)} ORDER BY 1, 3"
        ).fetchnumpy()
    return Events(found["lead"], found["type"], found["us"], counted)


def rule_points(
    events: Events, rules: Rules, lead: np.ndarray, at: np.ndarray, settings: Settings
) -> Iterator[tuple[EngagementRule, np.ndarray]]:
    """Each engagement rule (in order) with its points, after its own cap, at the instants
    ``at`` (microseconds) of the leads ``lead`` (codes of ``events``), sorted by lead, then
    time."""
    lead = lead.astype(np.int64)
    for rule in rules.engagement.rules:
        window, half_life, lifespan = kernel_of(rules, rule)
        codes = [events.types.index(t) for t in event_types_of(rule, settings)]
        mine = np.isin(events.type, codes)
        sums = np.empty(len(at))
        if rule.inactive_days is not None:
            _latest_before(events.lead[mine], events.us[mine], lead, at, sums)
            sums = ((at - sums) / 86400e6 > rule.inactive_days).astype(float)  # never: at - inf
            yield rule, rule.points * sums
            continue
        _sums_at(
            events.lead[mine], events.us[mine], lead, at,
            math.inf if window is None else window, half_life or 0.0, lifespan or 0.0, sums,
        )  # fmt: skip
        value = rule.points * sums
        yield rule, value if rule.cap is None else np.clip(value, -rule.cap, rule.cap)


def engagement_timeline(data: LeadData, pairs: pd.DataFrame, rules: Rules) -> pd.DataFrame:
    """Each pair's points per engagement rule, after the rule's own cap: ``lead_id``,
    ``as_of``, ``points__<rule>`` (the columns of :func:`~leadml.rules._instant.
    engagement_points`), for pairs ``lead_id``, ``as_of`` (UTC, microseconds) at any instants;
    linear in the pairs and events of each lead."""
    points = {f"points__{r.name}": np.zeros(len(pairs)) for r in rules.engagement.rules}
    if pairs.empty:
        return pairs[["lead_id", "as_of"]].assign(**points)
    lead, keys = pd.factorize(pairs["lead_id"])
    at = pairs["as_of"].to_numpy(dtype="datetime64[us]").view(np.int64)
    order = np.lexsort((at, lead))  # by lead, then time: the order of the walk
    first, last = (pd.Timestamp(int(v), unit="us", tz="UTC") for v in (at.min(), at.max()))
    events = counted_events_of(data, pd.Series(keys), rules, first, last)
    for rule, value in rule_points(events, rules, lead[order], at[order], data.settings):
        points[f"points__{rule.name}"][order] = value
    return pairs[["lead_id", "as_of"]].assign(**points)


@numba.njit(cache=True)
def _weight(age, half_life, lifespan):
    """An event's weight at ``age`` days (lifespan: not clipped at 0, so that an event leaving
    the window takes away exactly what it added, aged)."""
    if half_life > 0:
        return 0.5 ** (age / half_life)
    if lifespan > 0:
        return 1.0 - age / lifespan
    return 1.0


@numba.njit(cache=True)
def _sums_at(ev_lead, ev_us, at_lead, at_us, window, half_life, lifespan, out):
    """``out[k]``: the weights summed over the events of lead ``at_lead[k]`` in the window at
    ``at_us[k]``. Events and instants sorted by (lead, time); ``half_life``/``lifespan`` 0:
    that decay is not used; a lifespan window never exceeds the lifespan (kernel_of)."""
    n = len(ev_us)
    lo = hi = 0  # the events in the window: ev[lo:hi]
    total = 0.0  # their weights at the current instant
    updates = 0  # changes made to total since it was last summed afresh
    for k in range(len(at_us)):
        lead, now = at_lead[k], at_us[k]
        if k == 0 or lead != at_lead[k - 1]:
            while hi < n and ev_lead[hi] < lead:
                hi += 1
            lo, total, updates = hi, 0.0, 0
        elif hi > lo:  # the window's events age from the previous instant to this one
            days = (now - at_us[k - 1]) / 86400e6
            if half_life > 0:
                total *= 0.5 ** (days / half_life)
            elif lifespan > 0:
                total -= (hi - lo) * days / lifespan
            updates += 1
        while hi < n and ev_lead[hi] == lead and ev_us[hi] < now:  # strictly before: visible
            total += _weight((now - ev_us[hi]) / 86400e6, half_life, lifespan)
            hi += 1
            updates += 1
        while lo < hi and (now - ev_us[lo]) / 86400e6 > window:  # older than the window
            total -= _weight((now - ev_us[lo]) / 86400e6, half_life, lifespan)
            lo += 1
            updates += 1
        # Rounding errors add up over the updates: once they outnumber the window's events,
        # sum afresh, which keeps the error that of a direct sum and the pass linear.
        if updates > hi - lo:
            total = 0.0
            for i in range(lo, hi):
                total += _weight((now - ev_us[i]) / 86400e6, half_life, lifespan)
            updates = 0
        out[k] = total


@numba.njit(cache=True)
def _latest_before(ev_lead, ev_us, at_lead, at_us, out):
    """``out[k]``: the time (µs) of lead ``at_lead[k]``'s latest event strictly before
    ``at_us[k]``, or ``inf`` if it has none; sorted as :func:`_sums_at`'s arguments."""
    n = len(ev_us)
    first = hi = 0  # the lead's events: ev[first:]; those before the instant: ev[first:hi]
    for k in range(len(at_us)):
        lead, now = at_lead[k], at_us[k]
        if k == 0 or lead != at_lead[k - 1]:
            while hi < n and ev_lead[hi] < lead:
                hi += 1
            first = hi
        while hi < n and ev_lead[hi] == lead and ev_us[hi] < now:
            hi += 1
        out[k] = ev_us[hi - 1] if hi > first else np.inf
