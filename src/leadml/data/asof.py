"""As-of: the one place that knows time. Every feature, rule score and label goes through here.

The rules, fixed once:

- A *spine* is a set of (lead_id, as_of) pairs. At a pair's ``as_of`` = T, a row is visible only
  if its timestamp is strictly before T: an event at exactly T is not seen.
- A w-day window at T is ``[T - w days, T)``: an event at exactly T - w days is inside it.
- A lead exists at T if it was created before T; it is *open* at T if, before T, it had not
  reached the target stage (or any later stage of the funnel) nor a terminal stage, and it is
  not *stale*: with ``target.stale_after_days`` = s (default 365; ``None`` turns this off), a
  lead is open at T only if it was active -- created, an event, or a stage change -- in the
  s-day window ``[T - s days, T)``. Like everything else this sees only the past: an event at
  exactly T does not keep the lead open at T; one at exactly T - s days does. Staleness is not a
  state: a stale lead with a new event or stage change at t is open again from just after t
  (until it is silent for s days again, or closes).
- The label of (lead, T) is 1 if the lead reaches the target stage or a later one in
  ``(T, T + horizon]``. A pair with ``T + horizon`` past the end of the data is *immature*: its
  label is unknown (not 0), and training and evaluation leave it out.

Everything here returns SQL over the canonical tables of :class:`leadml.data.LeadData` (or runs it),
so that 50 M events never need to be Python objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd

from leadml.common.sql import sql_str
from leadml.config import Settings
from leadml.data import LeadData
from leadml.data.readers import to_utc
from leadml.errors import DataError

#: Order of the funnel; a lead that reached a stage has passed every lower one.
FUNNEL_RANK = {"lead": 0, "mql": 1, "sal": 2, "srl": 2, "sql": 3, "opportunity": 4, "customer": 5}

_TIME_COLUMN = {"events": "occurred_at", "stages": "entered_at"}


def reached_stages(target: str) -> tuple[str, ...]:
    """The stages that mean a lead has reached ``target``: it, and every later funnel stage."""
    rank = FUNNEL_RANK[target]
    return tuple(stage for stage, r in FUNNEL_RANK.items() if r >= rank and stage != "srl")


def closing_stages(settings: Settings) -> tuple[str, ...]:
    """Stages after which a lead is no longer open: the target or later, and terminal stages."""
    reached = reached_stages(settings.target.stage)
    return tuple(dict.fromkeys((*reached, *settings.data.terminal_stages)))


def _in_list(stages: Sequence[str]) -> str:
    return ", ".join(sql_str(s) for s in stages)


def stale_after_us(settings: Settings) -> int | None:
    """``target.stale_after_days`` in microseconds (``None``: leads never go stale)."""
    days = settings.target.stale_after_days
    return None if days is None else int(days) * 86_400_000_000


def _activity(since: str, until: str) -> str:
    """SQL for ``(lead_id, active_at)``: every creation, event and stage change in
    ``[since, until)`` (two SQL instants): what keeps a lead from going stale."""
    return " UNION ALL ".join(
        f"SELECT lead_id, {column} AS active_at FROM {table} "
        f"WHERE {column} >= {since} AND {column} < {until}"
        for table, column in (("leads", "created_at"), *_TIME_COLUMN.items())
    )


def _minus(at: str, us: int) -> str:
    return f"{at} - to_microseconds(CAST({us} AS BIGINT))"


def _not_stale(data: LeadData, pairs: str, since: str, until: str) -> str:
    """SQL for the pairs of the query ``pairs`` (``lead_id``, ``as_of`` in ``[since, until]``)
    whose lead was active in ``[as_of - stale_after_days, as_of)``: its last activity strictly
    before as_of (an as-of join, one sort of the activity) is recent enough."""
    us = stale_after_us(data.settings)
    return (
        f"SELECT p.lead_id, p.as_of FROM ({pairs}) p "
        f"ASOF JOIN ({_activity(_minus(since, us), until)}) a "
        f"ON a.lead_id = p.lead_id AND p.as_of > a.active_at "
        f"WHERE a.active_at >= {_minus('p.as_of', us)}"
    )


# --- the spine --------------------------------------------------------------------------------


def as_spine(pairs: pd.DataFrame) -> pd.DataFrame:
    """Check and normalise a spine: ``lead_id`` (text) and ``as_of`` (UTC), no duplicates."""
    missing = {"lead_id", "as_of"} - set(pairs.columns)
    if missing:
        raise DataError(f"spine: missing column(s) {sorted(missing)}; found {list(pairs.columns)}")
    spine = pd.DataFrame(
        {
            "lead_id": pairs["lead_id"].astype("str"),
            "as_of": pd.to_datetime(pairs["as_of"], utc=True).astype("datetime64[us, UTC]"),
        }
    )
    if spine["as_of"].isna().any():
        bad = spine["as_of"].isna()
        raise DataError(
            f"spine.as_of: {int(bad.sum())} rows without a timestamp "
            f"(e.g. lead {spine.loc[bad, 'lead_id'].iloc[0]!r})"
        )
    # Factorised first: hashing one integer per pair is twice as fast as hashing (text, time).
    lead, _ = pd.factorize(spine["lead_id"])
    when, instants = pd.factorize(spine["as_of"])
    duplicated = pd.Series(lead.astype(np.int64) * len(instants) + when).duplicated().to_numpy()
    if duplicated.any():
        example = spine[duplicated].iloc[0]
        raise DataError(
            f"spine: {int(duplicated.sum())} duplicate (lead_id, as_of) rows "
            f"(e.g. {example['lead_id']!r} at {example['as_of']})"
        )
    return spine


@contextmanager
def registered(data: LeadData, spine: pd.DataFrame, *, checked: bool = False) -> Iterator[str]:
    """Make ``spine`` queryable in ``data.con`` under a unique name for the duration of a block.

    Besides ``lead_id`` and ``as_of`` it has ``pos``, each pair's position in ``spine``, so a
    query can hand its rows back in the spine's order without a merge in pandas. ``checked``
    says the spine is already the output of :func:`as_spine` (checking a million pairs again
    costs ~0.4 s).
    """
    checked = spine if checked else as_spine(spine)
    with data.registered(
        "spine", checked.assign(pos=np.arange(len(checked), dtype=np.int64))
    ) as name:
        yield name


def open_leads(data: LeadData, as_of: pd.Timestamp | str | Sequence) -> pd.DataFrame:
    """The spine of leads open at each of the given instants, sorted by as_of then lead_id.

    Open as the module documentation says: existing, not closed, and (with
    ``target.stale_after_days``) active in the stale window before each instant.

    Examples
    --------
    >>> import pandas as pd
    >>> from leadml import load_data
    >>> t = lambda *v: pd.to_datetime(list(v), utc=True)
    >>> data = load_data({
    ...     "accounts": pd.DataFrame({"account_id": ["A"], "industry": ["x"],
    ...                               "employee_count": [5], "annual_revenue": [1.0],
    ...                               "country": ["US"]}),
    ...     "leads": pd.DataFrame({"lead_id": ["L1", "L2"],
    ...                            "created_at": t("2025-01-01", "2025-03-01"),
    ...                            "lead_source": ["web", "web"]}),
    ...     "events": pd.DataFrame({"lead_id": ["L1"], "occurred_at": t("2025-01-02"),
    ...                             "event_type": ["page_view"]}),
    ...     "stages": pd.DataFrame({"lead_id": ["L1"], "stage": ["sql"],
    ...                             "entered_at": t("2025-02-01")})})
    >>> open_leads(data, ["2025-02-01", "2025-03-02"]).astype({"as_of": str}).values.tolist()
    [['L1', '2025-02-01 00:00:00+00:00'], ['L2', '2025-03-02 00:00:00+00:00']]
    """
    instants = [as_of] if isinstance(as_of, str | pd.Timestamp) else list(as_of)
    dates = pd.DataFrame({"as_of": [to_utc(t) for t in instants]}).astype("datetime64[us, UTC]")
    closing = _in_list(closing_stages(data.settings))
    us = stale_after_us(data.settings)
    with data.registered("dates", dates) as name:
        pairs = f"""
            WITH closed AS (
                SELECT lead_id, min(entered_at) AS closed_at
                FROM stages WHERE stage IN ({closing}) GROUP BY lead_id
            )
            SELECT l.lead_id, d.as_of
            FROM leads l CROSS JOIN {name} d LEFT JOIN closed c USING (lead_id)
            WHERE l.created_at < d.as_of AND (c.closed_at IS NULL OR c.closed_at >= d.as_of)
            """
        if us is not None and len(dates) == 1:
            # One instant (the nightly run): a semi-join on the window's activity is ~3x faster
            # than the as-of join, with the same rule.
            t = instant(dates["as_of"].iloc[0])
            pairs += f" AND l.lead_id IN (SELECT lead_id FROM ({_activity(_minus(t, us), t)}))"
        elif us is not None and len(dates):
            first, last = (instant(t) for t in (dates["as_of"].min(), dates["as_of"].max()))
            pairs = _not_stale(data, pairs, first, last)
        # Through Arrow: pandas 3 takes the text column as it is (.df() copies it).
        return (
            data.con.sql(f"SELECT * FROM ({pairs}) ORDER BY as_of, lead_id")
            .to_arrow_table()
            .to_pandas()
        )


def open_pairs(data: LeadData, spine: str) -> str:
    """SQL for the pairs of the registered spine ``spine`` whose lead is open at its as_of.

    Same rule as :func:`open_leads`, for a spine whose instants differ from lead to lead.
    """
    closing = _in_list(closing_stages(data.settings))
    pairs = (
        f"SELECT s.lead_id, s.as_of FROM {spine} s JOIN leads l ON l.lead_id = s.lead_id "
        f"AND l.created_at < s.as_of WHERE NOT EXISTS (SELECT 1 FROM stages t WHERE "
        f"t.lead_id = s.lead_id AND t.stage IN ({closing}) AND t.entered_at < s.as_of)"
    )
    if stale_after_us(data.settings) is None:
        return pairs
    bounds = f"(SELECT {{}}(as_of) FROM {spine})"
    return _not_stale(data, pairs, bounds.format("min"), bounds.format("max"))


# --- staleness for arrays of instants (the MQL history) -----------------------------------------


def fresh_spells(
    data: LeadData, since: pd.Timestamp | str, until: pd.Timestamp | str
) -> pd.DataFrame:
    """When each lead is not stale, for instants in ``[since, until]``, as spells in microseconds.

    One row per spell: ``lead_id``, ``fresh_from`` and ``fresh_until``. A lead is fresh (active
    in the last ``stale_after_days``) at T exactly when ``fresh_from < T <= fresh_until`` for one
    of its spells: a spell runs from an activity to ``stale_after_days`` after the last activity
    that follows it with no longer silence. For arrays of instants (:func:`is_fresh`), where
    :func:`open_pairs` would need them registered. Requires ``stale_after_days``.
    """
    us = stale_after_us(data.settings)
    if us is None:
        raise ValueError("fresh_spells: target.stale_after_days is null (leads never go stale)")
    earliest = to_utc(since) - pd.Timedelta(microseconds=us)
    activity = _activity(instant(earliest), instant(until))
    # Gaps and islands: a silence longer than the window starts a new spell.
    return data.con.execute(
        f"""
        WITH a AS (SELECT lead_id, epoch_us(active_at) AS t FROM ({activity})),
        g AS (SELECT lead_id, t, coalesce(t - lag(t) OVER w > {us}, true)::INT AS new_spell
              FROM a WINDOW w AS (PARTITION BY lead_id ORDER BY t)),
        i AS (SELECT lead_id, t, sum(new_spell) OVER (PARTITION BY lead_id ORDER BY t
              ROWS UNBOUNDED PRECEDING) AS spell FROM g)
        SELECT lead_id, min(t) AS fresh_from, max(t) + {us} AS fresh_until
        FROM i GROUP BY lead_id, spell ORDER BY lead_id, fresh_from
        """
    ).df()


def is_fresh(spells: pd.DataFrame, lead_id: np.ndarray, at_us: np.ndarray) -> np.ndarray:
    """Whether each lead was active in the ``stale_after_days`` before each instant (µs), from
    its :func:`fresh_spells`: the numpy twin of the stale rule of :func:`open_pairs`."""
    at_us = np.asarray(at_us, dtype=np.int64)
    asked = pd.DataFrame(
        {
            "lead_id": pd.array(np.asarray(lead_id), dtype="str"),
            "at": at_us,
            "i": np.arange(len(at_us)),
        }
    )
    # The spell that starts last strictly before the instant; spells of a lead never overlap.
    found = pd.merge_asof(
        asked.sort_values("at"),
        spells.astype({"lead_id": "str", "fresh_from": "int64"}).sort_values("fresh_from"),
        left_on="at",
        right_on="fresh_from",
        by="lead_id",
        allow_exact_matches=False,
    )
    fresh = np.zeros(len(asked), dtype=bool)
    fresh[found["i"].to_numpy()] = (found["at"] <= found["fresh_until"]).to_numpy()
    return fresh


# --- what a pair can see ------------------------------------------------------------------------


def visible(table: str, spine: str, *, window_days: float | None = None) -> str:
    """SQL for the rows of ``events`` or ``stages`` visible at each pair of the spine ``spine``.

    Parameters
    ----------
    table
        ``"events"`` or ``"stages"``.
    spine
        Name of a registered spine (see :func:`registered`).
    window_days
        Keep only rows in ``[as_of - window_days, as_of)``; ``None`` keeps all of the past.

    The result has the spine's ``lead_id`` and ``as_of``, the table's other columns, and
    ``age_days``: how long before ``as_of`` the row happened, in (fractional) days.
    """
    if table not in _TIME_COLUMN:
        raise ValueError(f"table must be one of {list(_TIME_COLUMN)}, not {table!r}")
    time = _TIME_COLUMN[table]
    window = (
        ""
        if window_days is None
        else f" AND t.{time} >= s.as_of - to_microseconds(CAST({window_days * 86_400e6} AS BIGINT))"
    )
    age = f"(epoch_us(s.as_of) - epoch_us(t.{time})) / 86400e6 AS age_days"
    return (
        f"SELECT s.lead_id, s.as_of, t.* EXCLUDE (lead_id), {age} FROM {spine} s "
        f"JOIN {table} t ON t.lead_id = s.lead_id AND t.{time} < s.as_of{window}"
    )


def existing_leads(spine: str) -> str:
    """SQL for the spine's leads with their attributes, only where the lead existed at as_of.

    Lead and account attributes carry no history in the input contract; they are taken as known
    from the lead's creation on. Pairs whose lead did not exist yet are dropped.
    """
    return (
        f"SELECT s.as_of, l.* FROM {spine} s JOIN leads l "
        f"ON l.lead_id = s.lead_id AND l.created_at < s.as_of"
    )


def existed(created_at: pd.DatetimeIndex, as_of: pd.Timestamp) -> np.ndarray:
    """Which leads existed at ``as_of`` given their creation times: created strictly before.

    The same rule as :func:`existing_leads`, for leads already fetched (numpy, not SQL).
    """
    return np.asarray(created_at < to_utc(as_of))


def instant(as_of: pd.Timestamp | str) -> str:
    """An instant as a SQL literal (UTC), so scans can skip row groups by it."""
    return f"TIMESTAMPTZ '{to_utc(as_of).isoformat()}'"


def visible_at(
    table: str,
    as_of: pd.Timestamp | str,
    *,
    leads: str | None = None,
    window_days: float | None = None,
) -> str:
    """SQL for the rows of ``events`` or ``stages`` visible at the single instant ``as_of``.

    The same rule as :func:`visible` -- strictly before ``as_of``, and inside ``[as_of - w, as_of)``
    with a window -- for every lead, or for the leads the query ``leads`` returns (a ``lead_id``
    column). Filtering by a constant instant lets the scan skip old row groups and lets callers
    aggregate per lead *before* joining the spine: on 50 M events, aggregating every lead and then
    joining is ~3x faster than joining first (:func:`visible`), and faster than a semi-join on
    ``leads``, which pays off only for a spine of few leads.
    The result has the table's columns and ``age_days``.
    """
    if table not in _TIME_COLUMN:
        raise ValueError(f"table must be one of {list(_TIME_COLUMN)}, not {table!r}")
    time, at = _TIME_COLUMN[table], instant(as_of)
    window = (
        ""
        if window_days is None
        else f" AND t.{time} >= {at} - to_microseconds(CAST({window_days * 86_400e6} AS BIGINT))"
    )
    return (
        f"SELECT t.*, (epoch_us({at}) - epoch_us(t.{time})) / 86400e6 AS age_days FROM {table} t "
        f"WHERE t.{time} < {at}{window}" + ("" if leads is None else f" AND t.lead_id IN ({leads})")
    )


def in_window(window_days: float, age: str = "age_days") -> str:
    """SQL condition: a row of :func:`visible` lies in the ``window_days`` window ``[T - w, T)``.

    :func:`visible` already keeps only rows strictly before T, so this bounds the other end;
    a row exactly ``window_days`` before T is inside (its age equals ``window_days``).
    """
    return f"{age} <= {float(window_days)!r}"


def age_days(occurred_us: np.ndarray, as_of: pd.Timestamp | str) -> np.ndarray:
    """The ``age_days`` of :func:`visible` for rows already fetched (numpy, not SQL): how long
    before ``as_of`` each happened, from its time in microseconds since the epoch."""
    return (to_utc(as_of).value // 1000 - occurred_us) / 86400e6


def first_window(
    occurred_us: np.ndarray, as_of: pd.Timestamp | str, edges: Sequence[float]
) -> np.ndarray:
    """For rows visible at ``as_of``, the index of the first of the increasing window ``edges``
    (days) whose window holds each row; ``len(edges)`` for none.

    The rule of :func:`in_window` for rows already fetched: a row exactly ``w`` days old is
    inside the ``w``-day window.
    """
    edges = np.asarray(edges, dtype=np.float64)
    return np.searchsorted(edges, age_days(occurred_us, as_of), side="left")


def between_windows(newer_days: float, older_days: float, age: str = "age_days") -> str:
    """SQL condition: a row of :func:`visible` lies in ``[T - older_days, T - newer_days)``.

    The older part of a longer window, e.g. the 30 days before the last 30 for a trend.
    """
    return f"({age} > {float(newer_days)!r} AND {age} <= {float(older_days)!r})"


# --- labels -------------------------------------------------------------------------------------


def label_pairs(
    data: LeadData, spine: pd.DataFrame, *, end: pd.Timestamp | str | None = None
) -> pd.DataFrame:
    """The spine with ``label`` (1/0) and ``mature``; immature pairs have ``label`` NA.

    ``end`` is the last instant whose outcomes are known (default: the latest timestamp in the
    data). A pair is mature when ``as_of + horizon <= end``.
    """
    target = data.settings.target
    end = data.end() if end is None else to_utc(end)
    horizon = pd.Timedelta(days=target.horizon_days)
    reached = _in_list(reached_stages(target.stage))
    labelled = as_spine(spine).reset_index(drop=True)
    with registered(data, labelled) as name:
        found = data.con.execute(
            f"""
            SELECT count(t.lead_id) > 0 AS reached
            FROM {name} s LEFT JOIN stages t
              ON t.lead_id = s.lead_id AND t.stage IN ({reached})
             AND t.entered_at > s.as_of
             AND t.entered_at <= s.as_of + to_days({target.horizon_days})
            GROUP BY s.pos ORDER BY s.pos
            """
        ).fetchnumpy()["reached"]
    labelled["mature"] = labelled["as_of"] + horizon <= end
    labelled["label"] = pd.array(found, dtype="Int8")
    labelled["label"] = labelled["label"].where(labelled["mature"])
    return labelled


# --- what became of a lead afterwards ------------------------------------------------------------

#: Lifecycle stages at which sales has looked at a lead (its first "touch").
SALES_TOUCH_STAGES = ("sal", "srl", "sql", "opportunity")


def follow_up(
    data: LeadData,
    spine: pd.DataFrame,
    days: float,
    *,
    end: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """What became of each pair's lead in the ``days`` after its as_of (its follow-up).

    The same windows as the label: a stage counts in ``(as_of, as_of + days]``. For each pair:

    - ``converted``: reached the target stage (or a later one) in the follow-up; with
      ``days = target.horizon_days`` this is the pair's label;
    - ``reached_sql``, ``reached_opportunity``, ``reached_customer``: the same for those stages;
    - ``accepted``: sales accepted the lead (SAL or a later stage) at any time up to the end of
      the follow-up, before as_of included: sales's verdict on the lead so far;
    - ``rejected``: sales rejected it (SRL) by then and has not accepted it;
    - ``touched_before``: sales had touched the lead (:data:`SALES_TOUCH_STAGES`) before as_of;
    - ``touch_hours``: hours from as_of to the first sales touch in ``[as_of, as_of + days]``
      (missing when there was none);
    - ``mature``: ``as_of + days`` is no later than ``end`` (default: the end of the data);
      outcomes of immature pairs are not known yet and must not be read as "did not happen".
    """
    end = data.end() if end is None else to_utc(end)
    until = f"s.as_of + to_microseconds(CAST({float(days) * 86_400e6!r} AS BIGINT))"
    target = _in_list(reached_stages(data.settings.target.stage))

    def within(stages: str) -> str:
        return (
            f"coalesce(bool_or(t.stage IN ({stages}) AND t.entered_at > s.as_of "
            f"AND t.entered_at <= {until}), false)"
        )

    with registered(data, spine) as name:
        frame = data.con.execute(
            f"""
            SELECT {within(target)} AS converted,
                {within(_in_list(reached_stages("sql")))} AS reached_sql,
                {within(_in_list(reached_stages("opportunity")))} AS reached_opportunity,
                {within(_in_list(reached_stages("customer")))} AS reached_customer,
                coalesce(bool_or(t.stage IN ({_in_list(reached_stages("sal"))})
                    AND t.entered_at <= {until}), false) AS accepted,
                coalesce(bool_or(t.stage = 'srl' AND t.entered_at <= {until}), false)
                    AS rejected_once,
                coalesce(bool_or(t.stage IN ({_in_list(SALES_TOUCH_STAGES)})
                    AND t.entered_at < s.as_of), false) AS touched_before,
                (epoch_us(min(t.entered_at) FILTER (WHERE t.stage IN
                    ({_in_list(SALES_TOUCH_STAGES)}) AND t.entered_at >= s.as_of
                    AND t.entered_at <= {until})) - epoch_us(s.as_of)) / 3600e6 AS touch_hours
            FROM {name} s LEFT JOIN stages t ON t.lead_id = s.lead_id
            GROUP BY s.pos, s.as_of ORDER BY s.pos
            """
        ).df()
    frame["rejected"] = frame.pop("rejected_once") & ~frame["accepted"]
    frame = pd.concat([as_spine(spine).reset_index(drop=True), frame], axis=1)
    frame["mature"] = frame["as_of"] + pd.Timedelta(days=days) <= end
    return frame
