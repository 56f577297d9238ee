"""What the engagement and account families share: every lead numbered, and one event tally.

Both families count events per lead over windows -- engagement for the lead itself, account for
the other leads at its account -- so one query per instant counts the events of *every* lead per
(lead row, canonical event type, age bucket), keyed by small integers, and numpy derives both
families from that tally: window counts are cumulative sums over the age buckets, and the buying
committee's counts are per-account sums minus the lead's own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadml.asof import in_window, visible_at
from leadml.config import Settings
from leadml.data import LeadData
from leadml.validation import sql_str


def event_types(settings: Settings) -> dict[str, str]:
    """Canonical event type -> buying stage, including ``other`` for unmapped raw names."""
    return {**settings.data.buying_stage_lookup(), "other": "none"}


@dataclass(frozen=True)
class LeadRows:
    """Every lead of the data, numbered in lead_id order: table ``name`` (``lead_id``, ``row``)
    in the connection, and per row the lead's account (``-1``: none) and creation time."""

    name: str
    ids: pd.Index
    account: np.ndarray
    created_at: pd.DatetimeIndex

    def __len__(self) -> int:
        return len(self.ids)

    def rows_of(self, lead_ids: pd.Series) -> np.ndarray:
        return self.ids.get_indexer(lead_ids)


@contextmanager
def numbered_leads(data: LeadData) -> Iterator[LeadRows]:
    """Number the leads, in lead_id order, for the duration of a block (one build, however many
    snapshots)."""
    # Accounts numbered in SQL and text through Arrow: ~1 s less than .df() and pd.factorize.
    leads = (
        data.con.sql(
            "SELECT l.lead_id, coalesce(a.number, -1) AS account, l.created_at FROM leads l "
            "LEFT JOIN (SELECT account_id, CAST(row_number() OVER () - 1 AS INTEGER) AS number "
            "FROM (SELECT DISTINCT account_id FROM leads WHERE account_id IS NOT NULL)) a "
            "USING (account_id) ORDER BY l.lead_id"
        )
        .to_arrow_table()
        .to_pandas()
    )
    account = leads["account"].to_numpy()  # -1 for a lead without an account
    name = f"lead_rows_{uuid.uuid4().hex[:12]}"
    rows = pd.DataFrame({"lead_id": leads["lead_id"], "row": np.arange(len(leads), dtype=np.int32)})
    data.con.register(name, rows)
    try:
        yield LeadRows(
            name, pd.Index(leads["lead_id"]), account, pd.DatetimeIndex(leads["created_at"])
        )
    finally:
        data.con.unregister(name)


def age_edges(settings: Settings) -> list[float]:
    """Upper edges of the age buckets: every engagement and account window, both trend halves."""
    f = settings.features
    return sorted({*f.windows_days, *f.account_windows_days, f.trend_days, 2 * f.trend_days})


def age_bucket(edges: list[float]) -> str:
    """SQL: the index of the first window edge a visible row's age falls within."""
    cases = " ".join(f"WHEN {in_window(e)} THEN {i}" for i, e in enumerate(edges))
    return f"CASE {cases} END"


def cumulative(
    key: np.ndarray, bucket: np.ndarray, n: np.ndarray, shape: tuple[int, ...], edges: list[float]
) -> np.ndarray:
    """Sparse counts (flat ``key`` into ``shape``, age ``bucket``, count ``n``; a key may repeat)
    as a dense float32 array of ``shape`` x window edges, cumulative over the edges: a window's
    count at its edge. Exact: float32 holds every count below 2**24."""
    b = len(edges)
    dense = np.zeros((*shape, b), dtype=np.float32)
    np.add.at(dense.reshape(-1), key * b + bucket, n.astype(np.float32))
    for i in range(1, b):  # one add per edge: np.cumsum along a short last axis is ~4x slower
        dense[..., i] += dense[..., i - 1]
    return dense


def positions(rows: np.ndarray, n_leads: int) -> np.ndarray:
    """Lead row -> its position in ``rows`` (-1: not among them)."""
    position = np.full(n_leads, -1, dtype=np.int64)
    position[rows[rows >= 0]] = np.flatnonzero(rows >= 0)
    return position


@dataclass(frozen=True)
class EventTally:
    """Events visible at one instant, counted per (lead row, event type code, age bucket), sparse.

    ``types[code]`` is the canonical event type; bucket ``i`` holds ages in
    ``(edges[i - 1], edges[i]]`` days, so counts over a window are cumulative over buckets.
    """

    types: list[str]
    edges: list[float]
    row: np.ndarray
    code: np.ndarray
    bucket: np.ndarray
    n: np.ndarray

    @classmethod
    def at(cls, data: LeadData, leads: LeadRows, as_of: pd.Timestamp) -> EventTally:
        types, edges = list(event_types(data.settings)), age_edges(data.settings)
        codes = "[" + ", ".join(sql_str(t) for t in types) + "]"
        recent = visible_at("events", as_of, window_days=edges[-1])
        found = data.con.execute(
            f"SELECT i.row, coalesce(list_position({codes}, v.event_type), {len(types)}) - 1 "
            f"AS code, {age_bucket(edges)} AS bucket, count(*) AS n "
            f"FROM ({recent}) v JOIN {leads.name} i USING (lead_id) GROUP BY ALL"
        ).fetchnumpy()
        return cls(
            types,
            edges,
            *(np.asarray(found[c], dtype=np.int64) for c in ("row", "code", "bucket", "n")),
        )

    def window(self, days: float) -> int:
        """The bucket index whose cumulative count covers the ``days`` window."""
        return self.edges.index(days)

    def per_lead(self, n_leads: int, types: list[str] | None = None) -> np.ndarray:
        """Counts per (lead row, window edge) over ``types`` (default: all), cumulative."""
        keep = slice(None) if types is None else np.isin(self.code, self._codes(types))
        return cumulative(self.row[keep], self.bucket[keep], self.n[keep], (n_leads,), self.edges)

    def per_type(self, position: np.ndarray, size: int) -> np.ndarray:
        """Counts per (position, type code, window edge), cumulative; ``position`` maps a lead
        row to its place among the ``size`` leads wanted (-1: not wanted, see :func:`positions`)."""
        at = position[self.row]
        keep = at >= 0
        k = len(self.types)
        return cumulative(
            at[keep] * k + self.code[keep], self.bucket[keep], self.n[keep], (size, k), self.edges
        )

    def _codes(self, types: list[str]) -> list[int]:
        return [self.types.index(t) for t in types if t in self.types]
