"""Readers: bring CSV files, Parquet files or DataFrames into one in-process DuckDB database.

This is the only module that touches input files. Each table lands as a view ``raw_<table>``
with the columns exactly as they came (CSV as text, so nothing is guessed away); validation and
normalisation then work in SQL, which keeps 50 M events out of Python memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from leadml.contract import TABLES
from leadml.errors import DataError

#: A data folder, or a mapping of table name to a DataFrame or a file path.
Source = str | Path | Mapping[str, "pd.DataFrame | str | Path"]

_SUFFIXES = (".parquet", ".csv", ".csv.gz")


@dataclass
class RawTables:
    """The input tables as views ``raw_<name>`` in ``con``; ``columns`` lists what each has."""

    con: duckdb.DuckDBPyConnection
    columns: dict[str, list[str]] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        return [name for name in TABLES if name not in self.columns]


def to_utc(value: pd.Timestamp | str) -> pd.Timestamp:
    """A timestamp in UTC; naive values are taken to be UTC already."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def connect(memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that reads naive timestamps as UTC."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # A library must not draw on the terminal. In Jupyter the bar is off already, and DuckDB
    # refuses to change the setting there without ipywidgets: only switch it off when it is on.
    if con.execute("SELECT current_setting('enable_progress_bar')").fetchall()[0][0]:
        con.execute("SET enable_progress_bar = false")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    return con


def read_raw(source: Source, con: duckdb.DuckDBPyConnection | None = None) -> RawTables:
    """Register every table of ``source`` it can find; absent tables are left for validation."""
    raw = RawTables(con or connect())
    if isinstance(source, Mapping):
        unknown = sorted(set(source) - set(TABLES))
        if unknown:
            raise DataError(f"unknown table name(s) {unknown}; expected some of {list(TABLES)}")
        items = source.items()
    else:
        folder = Path(source)
        if not folder.is_dir():
            raise DataError(f"data folder not found: {folder}")
        items = ((name, path) for name in TABLES if (path := _find_file(folder, name)) is not None)
    for name, item in items:
        _register(raw, name, item)
    return raw


def _find_file(folder: Path, name: str) -> Path | None:
    for suffix in _SUFFIXES:
        if (path := folder / f"{name}{suffix}").is_file():
            return path
    if (path := folder / name).is_dir():  # a partitioned Parquet dataset
        return path
    return None


def _register(raw: RawTables, name: str, item: pd.DataFrame | str | Path) -> None:
    view = f"raw_{name}"
    if isinstance(item, pd.DataFrame):
        raw.con.register(view, item)
        raw.origins[name] = "DataFrame"
    else:
        path = Path(item)
        if not path.exists():
            raise DataError(f"{name}: file not found: {path}")
        raw.con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {_scan(path)}")
        raw.origins[name] = str(path)
    try:
        raw.columns[name] = [row[0] for row in raw.con.execute(f"DESCRIBE {view}").fetchall()]
    except duckdb.Error as exc:
        raise DataError(f"{name}: cannot read {raw.origins[name]}: {exc}") from None


def _scan(path: Path) -> str:
    quoted = str(path).replace("'", "''")
    if path.is_dir():
        return f"read_parquet('{quoted}/**/*.parquet', hive_partitioning = true)"
    if path.name.endswith(".parquet"):
        return f"read_parquet('{quoted}')"
    # Everything as text: validation reports what does not parse instead of the sniffer guessing.
    return f"read_csv('{quoted}', all_varchar = true, header = true)"
