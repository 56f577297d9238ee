"""Engagement points at one instant -- the nightly run -- counted in one compiled pass.

For a spine of many instants, :mod:`leadml.rules._engine` sums the events' weights in SQL, per
(pair, event type) and then per rule. At one instant that grouping of ~13 M counted events costs
~5 s (1 M open leads, 2 cores); fetching them as small integers (the pair's position, the event
type, the time) costs ~2.2 s and one compiled loop adds each event's weight to every rule that
counts its type in ~0.3 s. The weights, windows and caps are the same: an event of age ``a`` days
counts within a ``w``-day window when ``a <= w`` (:func:`leadml.data.asof.in_window`), weighs
``0.5 ** (a / half_life)`` or ``max(0, 1 - a / lifespan)``, and each rule's sum is capped. An
``inactive_days`` rule reads, per lead, the age of its latest event of the rule's types, in SQL
as the SQL plan does (:func:`leadml.rules._engine.inactivity_sql`).
A test checks that both plans give the same scores.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pandas as pd

from leadml.common.sql import sql_str
from leadml.data import LeadData
from leadml.data.asof import age_days, visible_at
from leadml.rules._engine import (
    counted_events,
    event_types_of,
    inactivity_sql,
    kernel_of,
    split_inactivity,
    widest_window,
)
from leadml.rules._schema import Rules


def engagement_points(
    data: LeadData, spine: str, pairs: pd.DataFrame, rules: Rules, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Each pair's points per engagement rule, after the rule's own cap: ``lead_id``,
    ``as_of``, ``points__<rule>``, for the pairs ``pairs`` of the registered spine ``spine``,
    all at ``as_of``."""
    counting, quiet = split_inactivity(rules)
    points = _counted(data, spine, pairs, counting, as_of) if counting.engagement.rules else {}
    # One frame at once: a column per rule, added one by one, fragments it (pandas warns when a
    # learned table's ~250 candidates are scored).
    frame = pd.concat([pairs[["lead_id", "as_of"]], pd.DataFrame(points, index=pairs.index)],
                      axis=1)  # fmt: skip
    if not quiet:
        return frame
    # Per lead of the spine, then joined: every event of their types is read, however old.
    events = f"SELECT v.* FROM ({visible_at('events', as_of)}) v JOIN {spine} s USING (lead_id)"
    found = data.con.execute(inactivity_sql(events, quiet, data.settings, "lead_id")).df()
    frame = frame.merge(found, on="lead_id", how="left")
    return frame.fillna({f"points__{r.name}": 0.0 for r in quiet})


def _counted(
    data: LeadData, spine: str, pairs: pd.DataFrame, rules: Rules, as_of: pd.Timestamp
) -> dict[str, np.ndarray]:
    """The points of the rules that count events, by column, in the order of ``pairs``."""
    engagement = rules.engagement.rules
    types = {r.name: event_types_of(r, data.settings) for r in engagement}
    counted = sorted({t for ts in types.values() for t in ts})
    kernels = [kernel_of(rules, r) for r in engagement]
    windows = [k[0] for k in kernels]
    widest = widest_window(kernels)
    found = data.con.execute(
        f"SELECT s.pos, CAST(list_position([{', '.join(map(sql_str, counted))}], v.event_type)"
        f" - 1 AS SMALLINT) AS code, epoch_us(v.occurred_at) AS us "
        f"FROM ({visible_at('events', as_of, window_days=widest)}) v "
        f"JOIN {spine} s USING (lead_id) WHERE {counted_events(rules, types)}"
    ).fetchnumpy()
    # The rules counting each type, flattened: type c has members[start[c]:start[c + 1]].
    members = [[j for j, r in enumerate(engagement) if t in types[r.name]] for t in counted]
    start = np.cumsum([0, *map(len, members)])
    sums = np.zeros((len(engagement), len(pairs)))
    _add_weights(
        found["pos"], found["code"], age_days(found["us"], as_of),
        start, np.array([j for m in members for j in m], dtype=np.int64),
        np.array([math.inf if w is None else w for w in windows], dtype=np.float64),
        np.array([k[1] or 0.0 for k in kernels]), np.array([k[2] or 0.0 for k in kernels]),
        sums,
    )  # fmt: skip
    points = {}
    for j, rule in enumerate(engagement):
        value = rule.points * sums[j]
        points[f"points__{rule.name}"] = (
            value if rule.cap is None else np.clip(value, -rule.cap, rule.cap)
        )
    return points


@numba.njit(cache=True)
def _add_weights(pos, code, age, start, members, window, half_life, lifespan, sums):
    """Adds each event's weight to ``sums[rule, pos]`` for every rule counting its type whose
    window holds it (``half_life``/``lifespan`` 0: that decay is not used). The same weights as
    the SQL plan's, rules._engine._kernel_sum."""
    for i in range(len(pos)):
        a = age[i]
        for m in range(start[code[i]], start[code[i] + 1]):
            r = members[m]
            if a > window[r]:
                continue
            if half_life[r] > 0:
                weight = 0.5 ** (a / half_life[r])
            elif lifespan[r] > 0:
                weight = max(0.0, 1.0 - a / lifespan[r])
            else:
                weight = 1.0
            sums[r, pos[i]] += weight
