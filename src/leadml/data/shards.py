"""Shards of the leads: stable shares of a history that can be scored apart.

A lead's shard is ``crc32(key) mod N``, its key the lead's account id (its own id when it has
none). Every lead of an account is in the same shard, and a feature or rule looks at a lead and
its account only, so a lead scored in its shard is scored as in the whole history.

:func:`restrict` cuts the input tables to one shard before validation, every row in exactly one
shard: a lead's events and stage changes go with it, an account with its leads, and what belongs
to no lead (events of unknown leads, accounts without leads, rows without an id) to shard 0, whose
validation reports them as the whole history's would.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from leadml.data.readers import RawTables
from leadml.errors import ConfigError

# The account features group leads by account_id as it is: so does the shard.
KEY_SQL = "coalesce(CAST(account_id AS VARCHAR), CAST(lead_id AS VARCHAR))"


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (from 0) of ``count``."""

    index: int
    count: int

    def __post_init__(self):
        if not (self.count >= 1 and 0 <= self.index < self.count):
            raise ConfigError(
                f"shard {self.index}/{self.count}: give I/N with N >= 1 and 0 <= I < N "
                "(shards are numbered from 0, as job arrays and mapped tasks number them)"
            )

    @classmethod
    def parse(cls, text: str | Shard) -> Shard:
        """``"I/N"``, e.g. ``"0/4"``."""
        if isinstance(text, Shard):
            return text
        index, _, count = str(text).partition("/")
        try:
            return cls(int(index), int(count))
        except ValueError:
            raise ConfigError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def stem(self) -> str:
        return f"shard-{self.index}-of-{self.count}"


def shard_numbers(keys: Iterable[str | None], count: int) -> np.ndarray:
    """The shard of each key: CRC-32 of its UTF-8 bytes mod ``count`` (Spark's ``crc32``
    computes the same); a missing key is in shard 0."""
    crc = np.fromiter((0 if k is None else zlib.crc32(k.encode("utf-8")) for k in keys),
                      dtype="int64")  # fmt: skip
    return crc % count


def shard_keys(con: duckdb.DuckDBPyConnection, leads: str, lead_ids: pd.Series) -> list:
    """The shard key of each of ``lead_ids``, from table ``leads`` (with an ``account_id``)."""
    frame = pd.DataFrame({"lead_id": lead_ids.astype("str").array, "i": np.arange(len(lead_ids))})
    name = f"shard_ids_{id(frame)}"
    con.register(name, frame)
    try:
        found = con.execute(
            f"SELECT {KEY_SQL} AS key FROM {name} LEFT JOIN {leads} USING (lead_id) ORDER BY i"
        )
        return found.fetchnumpy()["key"].tolist()
    finally:
        con.unregister(name)


def restrict(raw: RawTables, shard: Shard) -> None:
    """Replace the input views ``raw_<table>`` of ``raw`` by their rows in ``shard``: a view
    filtering a file, or a temporary table of rows given in memory."""
    con, columns = raw.con, raw.columns
    leads = columns.get("leads", [])
    if "lead_id" not in leads:
        return  # validation says what is wrong with the leads
    key = KEY_SQL if "account_id" in leads else "CAST(lead_id AS VARCHAR)"
    keys = con.execute(f"SELECT DISTINCT {key} AS key FROM raw_leads").fetchnumpy()["key"]
    keys = [None if pd.isna(k) else k for k in keys]
    numbers = shard_numbers(keys, shard.count)
    chosen = [k for k, n in zip(keys, numbers, strict=True) if n == shard.index and k is not None]
    mine = pd.DataFrame({"key": pd.Series(chosen, dtype="str")})
    first = shard.index == 0  # shard 0 also takes what belongs to no lead
    con.register("shard_keys_given", mine)
    try:
        orphan = f" OR {key} IS NULL" if first else ""
        con.execute(f"CREATE TEMP TABLE shard_leads AS SELECT * FROM raw_leads "
                    f"WHERE {key} IN (SELECT key FROM shard_keys_given){orphan}")  # fmt: skip
    finally:
        con.unregister("shard_keys_given")

    # The ids of this shard, and (shard 0) of every lead and account, held apart: the input
    # views are pointed at this shard's rows next.
    def save_ids(table: str, column: str, source: str) -> None:
        con.execute(f"CREATE TEMP TABLE {table} AS SELECT DISTINCT CAST({column} AS VARCHAR) "
                    f"AS id FROM {source} WHERE {column} IS NOT NULL")  # fmt: skip

    save_ids("shard_lead_ids", "lead_id", "shard_leads")
    if first:
        save_ids("all_lead_ids", "lead_id", "raw_leads")
    if "account_id" in leads:
        save_ids("shard_account_ids", "account_id", "shard_leads")
        if first:
            save_ids("all_account_ids", "account_id", "raw_leads")
    kept = {"leads": "shard_leads"}
    for name, column, ids in (("events", "lead_id", "lead"), ("stages", "lead_id", "lead"),
                              ("accounts", "account_id", "account")):  # fmt: skip
        if column not in columns.get(name, []) or column not in leads:
            continue
        value = f"CAST({column} AS VARCHAR)"
        condition = f"{value} IN (SELECT id FROM shard_{ids}_ids)"
        if first:
            condition += f" OR {value} IS NULL OR {value} NOT IN (SELECT id FROM all_{ids}_ids)"
        # A file is read through a filtering view, as the whole input is (DuckDB streams it);
        # rows already in memory are copied. On one shard of two of 1 M leads a copy of the
        # file's rows took as long (17.3 s against 17.1 s) and 4.4 GB against 2.3 GB.
        scan = raw.scans.get(name)
        kind, source = ("VIEW", scan) if scan else ("TABLE", f"raw_{name}")
        con.execute(f"CREATE TEMP {kind} shard_{name} AS SELECT * FROM {source} WHERE {condition}")
        kept[name] = f"shard_{name}"
    for name, table in kept.items():
        if con.execute(f"SELECT count(*) FROM (SELECT 1 FROM raw_{name} LIMIT 1)").fetchall()[0][0]:
            raw.cut.add(name)
        _point(con, f"raw_{name}", table)


def _point(con: duckdb.DuckDBPyConnection, view: str, table: str) -> None:
    """Make ``view`` read ``table``, whatever ``view`` was (a view, a registered frame, a
    temporary table)."""
    con.unregister(view)
    for kind in ("VIEW", "TABLE"):
        with contextlib.suppress(duckdb.CatalogException):  # an object of the other kind
            con.execute(f"DROP {kind} IF EXISTS {view}")
    con.execute(f"CREATE VIEW {view} AS SELECT * FROM {table}")
