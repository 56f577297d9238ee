"""Readers: bring CSV files, Parquet files, DataFrames, Arrow data or DuckDB relations into one
in-process DuckDB database.

It reads local files and in-memory data, and hands databases and object stores to its peers
(:mod:`~leadml.data.warehouse`, :mod:`~leadml.data.lake`). Each table lands as ``raw_<table>``
with the columns exactly as they came (CSV as text, so nothing is guessed away); validation and
normalisation then work in SQL, which keeps 50 M events out of Python memory.

A table that cannot be read (a damaged file, a folder where a file belongs, two files for one
table) is not an exception here: it is recorded in :attr:`RawTables.unreadable`, and validation
reports it next to every other problem.
"""

from __future__ import annotations

import csv
import gzip
import re
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from leadml.common.databases import database, first_line, is_object_store
from leadml.common.sql import sql_ident, sql_str
from leadml.config.contract import PII_COLUMNS, TABLES
from leadml.errors import DataError

#: One table given in memory: read where it is (a DataFrame, an Arrow table) or streamed into
#: DuckDB once (Arrow record batches, a DuckDB relation, which may live on another connection).
Frame = pd.DataFrame | pa.Table | pa.RecordBatchReader | duckdb.DuckDBPyRelation
#: A data folder, a database URI, an object-store prefix, or a mapping of table name to a
#: table in memory or a file path.
Source = str | Path | Mapping[str, "Frame | str | Path"]

_SUFFIXES = (".parquet", ".csv", ".csv.gz")
_HEAD_BYTES = 1 << 16
_EMAIL = re.compile(r"[^\s,;|\t\"']+@[^\s,;|\t\"']+")
_DELIMITERS = ",;\t|"
#: DuckDB's names for the ways a CSV line can be bad, in words.
_CSV_ERRORS = {
    "INVALID ENCODING": "not UTF-8 text (save the file as UTF-8)",
    "MISSING COLUMNS": "fewer fields than the header",
    "TOO MANY COLUMNS": "more fields than the header",
    "UNQUOTED VALUE": "a quote inside an unquoted value",
    "LINE SIZE OVER MAXIMUM": "more than 2 MB, DuckDB's limit (a pasted document?)",
}


@dataclass(frozen=True)
class ReadFailure:
    """Why a table cannot be read: ``rows`` lines are bad (when known), ``example`` shows one."""

    message: str
    rows: int | None = None
    example: str | None = None


@dataclass
class RawTables:
    """The input tables as views ``raw_<name>`` in ``con``; ``columns`` lists what each has,
    ``unreadable`` why a table that is present cannot be read."""

    con: duckdb.DuckDBPyConnection
    columns: dict[str, list[str]] = field(default_factory=dict)
    types: dict[str, dict[str, str]] = field(default_factory=dict)  # DuckDB type per column
    origins: dict[str, str] = field(default_factory=dict)
    unreadable: dict[str, ReadFailure] = field(default_factory=dict)
    scans: dict[str, str] = field(default_factory=dict)  # the SQL reading each file
    # Tables cut to a shard of the leads (leadml.data.shards) from a whole that has rows: empty
    # in this shard is no error.
    cut: set[str] = field(default_factory=set)

    @property
    def missing(self) -> list[str]:
        """The required tables the source lacks (an optional one may be absent)."""
        return [
            name
            for name, spec in TABLES.items()
            if not spec.optional and name not in self.columns | self.unreadable
        ]

    def failure(self, name: str, exc: duckdb.Error) -> ReadFailure:
        """What went wrong reading table ``name``, in words, from DuckDB's error ``exc``.

        A CSV file is read once more, keeping the lines that do not parse, to count them and
        show one; other sources get the first line of DuckDB's message.
        """
        origin = self.origins.get(name, name)
        scan = self.scans.get(name, "")
        if scan.startswith("read_csv(") and name in self.columns:
            found = _bad_csv_lines(self.con, scan, self.columns[name])
            if found:
                return ReadFailure(
                    f"cannot read {origin}: {found.message}", found.rows, found.example
                )
        return ReadFailure(f"cannot read {origin}: {first_line(exc)}")


def to_utc(value: pd.Timestamp | str) -> pd.Timestamp:
    """A timestamp in UTC; naive values are taken to be UTC already."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def parse_instant(value: pd.Timestamp | str, what: str = "instant") -> pd.Timestamp:
    """``value`` as a UTC timestamp, or a :class:`DataError` naming ``what`` (e.g. ``--as-of``).

    Examples
    --------
    >>> parse_instant("2026-03-31")
    Timestamp('2026-03-31 00:00:00+0000', tz='UTC')
    >>> parse_instant("2026-02-30", "--as-of")
    Traceback (most recent call last):
    ...
    leadml.errors.DataError: --as-of '2026-02-30' is not a valid date or instant (day is out of range for month: 2026-02-30); write it as 2026-03-31 or 2026-03-31T06:00:00Z
    """  # noqa: E501
    hint = "write it as 2026-03-31 or 2026-03-31T06:00:00Z"
    try:
        ts = to_utc(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(
            f"{what} {value!r} is not a valid date or instant ({exc}); {hint}"
        ) from None
    if pd.isna(ts):
        raise DataError(f"{what} {value!r} is not a date or instant; {hint}")
    return ts


def connect() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that reads naive timestamps as UTC."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # A library must not draw on the terminal. In Jupyter the bar is off already, and DuckDB
    # refuses to change the setting there without ipywidgets: only switch it off when it is on.
    if con.execute("SELECT current_setting('enable_progress_bar')").fetchall()[0][0]:
        con.execute("SET enable_progress_bar = false")
    return con


def read_raw(
    source: Source,
    con: duckdb.DuckDBPyConnection | None = None,
    *,
    tables: Mapping[str, str] | None = None,
) -> RawTables:
    """Register every table of ``source`` it can find; absent and unreadable tables are left
    for validation to report.

    ``source`` may also be a database URI (``postgresql://``, ``sqlite:///``, ``duckdb:///``),
    whose tables are named by ``tables`` (table -> schema-qualified name; settings'
    ``data.tables``), an object-store prefix (``s3://``, ``gs://``) laid out as a folder, or a
    web prefix (``https://``) holding ``<table>.parquet`` files.
    """
    raw = RawTables(con or connect())
    db = database(source)
    if db is not None:
        from leadml.data.warehouse import read_database  # the drivers load only when asked

        read_database(raw, db, dict(tables or {}))
        return raw
    if is_object_store(source):
        from leadml.data.lake import read_lake

        read_lake(raw, source)
        return raw
    if isinstance(source, Mapping):
        unknown = sorted(set(source) - set(TABLES))
        if unknown:
            raise DataError(f"unknown table name(s) {unknown}; expected some of {list(TABLES)}")
        items = list(source.items())
    else:
        folder = Path(source)
        if not folder.is_dir():
            raise DataError(f"data folder not found: {folder}")
        items = []
        for name in TABLES:
            found = _candidates(folder, name)
            if len(found) > 1:
                names = " and ".join(p.name for p in found)
                raw.unreadable[name] = ReadFailure(
                    f"{names} are both in {folder}: keep one, leadml will not choose"
                )
            elif found:
                items.append((name, found[0]))
    for name, item in items:
        _register(raw, name, item)
    return raw


def _candidates(folder: Path, name: str) -> list[Path]:
    """Every file in ``folder`` that could hold table ``name``, and a folder ``name`` (a
    partitioned Parquet dataset)."""
    folder_only = folder / name
    found = [folder_only] if folder_only.is_dir() else []
    return found + [path for s in _SUFFIXES if (path := folder / f"{name}{s}").exists()]


_ORIGINS = {
    pd.DataFrame: "DataFrame",
    pa.Table: "Arrow table",
    pa.RecordBatchReader: "Arrow record batches",
    duckdb.DuckDBPyRelation: "DuckDB relation",
}


def _register(raw: RawTables, name: str, item: Frame | str | Path) -> None:
    view = f"raw_{name}"
    origin = next((o for kind, o in _ORIGINS.items() if isinstance(item, kind)), None)
    if origin is not None:
        raw.origins[name] = f"{name} ({origin})"
        try:
            if isinstance(item, pd.DataFrame | pa.Table):
                raw.con.register(view, item)
            else:
                stream_in(raw.con, view, item)
            _describe(raw, name)
        except duckdb.Error as exc:
            raw.unreadable[name] = ReadFailure(
                f"cannot read {raw.origins[name]}: {first_line(exc)}"
            )
        return
    if not isinstance(item, str | Path):
        raise DataError(
            f"table {name!r} is a {type(item).__name__}; give a DataFrame, an Arrow table or "
            "record batches, a DuckDB relation, or a file path"
        )
    path = Path(item)
    raw.origins[name] = str(path)
    try:
        scan = raw.scans[name] = _scan(path)
        raw.con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {scan}")
        _describe(raw, name)
    except _Unreadable as exc:
        raw.unreadable[name] = ReadFailure(f"{path}: {exc}")
    except duckdb.Error as exc:
        raw.unreadable[name] = ReadFailure(f"cannot read {path}: {first_line(exc)}")


def stream_in(
    con: duckdb.DuckDBPyConnection,
    table: str,
    data: pa.RecordBatchReader | duckdb.DuckDBPyRelation,
) -> None:
    """Copy ``data`` into a temporary table ``table`` of ``con``, batch by batch.

    Validation and features read a table several times, which a stream allows once: DuckDB
    holds the only copy (and spills it to disk past its memory limit), Python never the whole.
    """
    reader = data.to_arrow_reader() if isinstance(data, duckdb.DuckDBPyRelation) else data
    staged = f"stream_{uuid.uuid4().hex[:12]}"
    con.register(staged, reader)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {sql_ident(table)} AS SELECT * FROM {staged}")
    finally:
        con.unregister(staged)


def _describe(raw: RawTables, name: str) -> None:
    described = raw.con.execute(f"DESCRIBE raw_{name}").fetchall()
    raw.columns[name] = [row[0] for row in described]
    raw.types[name] = {row[0]: row[1] for row in described}


class _Unreadable(Exception):
    """A file leadml can tell it cannot read before asking DuckDB."""


def _scan(path: Path) -> str:
    if not path.exists():
        raise _Unreadable("file not found")
    quoted = sql_str(str(path))
    if path.is_dir():
        if path.name.endswith((".csv", ".csv.gz")):
            raise _Unreadable("is a folder, not a file")
        if next(path.rglob("*.parquet"), None) is None:
            raise _Unreadable("the folder holds no .parquet files")
        return f"read_parquet({quoted} || '/**/*.parquet', hive_partitioning = true)"
    if path.stat().st_size == 0:
        raise _Unreadable("the file is empty (0 bytes)")
    if path.name.endswith(".parquet"):
        return f"read_parquet({quoted})"
    header, delimiter = _csv_header(path)
    columns = ", ".join(f"{sql_str(c)}: 'VARCHAR'" for c in header)
    # Everything as text, and the header as Python reads it: the sniffer guesses a header from
    # the data when a line is ragged; strict parsing reports the bad lines instead.
    return (
        f"read_csv({quoted}, auto_detect = false, header = true, columns = {{{columns}}}, "
        f"delim = {sql_str(delimiter)}, quote = '\"', escape = '\"', strict_mode = true, "
        "null_padding = false)"
    )


def _csv_header(path: Path) -> tuple[list[str], str]:
    """The column names of a CSV file (a byte-order mark dropped) and its delimiter."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise _Unreadable(f"not a readable gzip file ({exc})") from None
    first = head.split(b"\n", 1)[0]
    try:
        text = first.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError:
        raise _Unreadable(
            f"the header line is not UTF-8 text (save the file as UTF-8): {first[:80]!r}"
        ) from None
    if not text.strip():
        raise _Unreadable("the first line is empty: no header")
    try:
        delimiter = csv.Sniffer().sniff(text, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        delimiter = ","
    header = [
        c.strip() or f"column{i}"
        for i, c in enumerate(next(csv.reader([text], delimiter=delimiter)))
    ]
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise _Unreadable(f"column name(s) {twice} appear more than once in the header")
    return header, delimiter


def _bad_csv_lines(
    con: duckdb.DuckDBPyConnection, scan: str, columns: list[str]
) -> ReadFailure | None:
    """Read a CSV file (``scan``, a ``read_csv(...)`` call) once more, keeping the lines DuckDB
    rejects, to count them by kind and show the first."""
    tag = uuid.uuid4().hex[:12]
    rejects, scans = f"rejects_{tag}", f"scans_{tag}"
    options = f", store_rejects = true, rejects_table = '{rejects}', rejects_scan = '{scans}')"
    touched = ", ".join(f"max(length({sql_ident(c)}))" for c in columns)  # decode every value
    try:
        con.execute(f"SELECT {touched} FROM {scan[:-1]}{options}").fetchall()
        found = con.execute(
            f"SELECT error_type, count(*), min(line), arg_min(csv_line, line) FROM {rejects} "
            "GROUP BY 1 ORDER BY 3"
        ).fetchall()
    except duckdb.Error:
        return None
    finally:
        con.execute(f"DROP TABLE IF EXISTS {rejects}")
        con.execute(f"DROP TABLE IF EXISTS {scans}")
    if not found:
        return None
    kinds = "; ".join(
        f"{n:,} line{'s' if n != 1 else ''} with {_CSV_ERRORS.get(kind, kind.lower())} "
        f"(first: line {line:,})"
        for kind, n, line, _ in found
    )
    rows = sum(n for _, n, _, _ in found)
    return ReadFailure(kinds, rows, _shown_line(found[0][3], columns))


def _shown_line(line: str, columns: list[str]) -> str:
    """A bad line as an example, without personal data: e-mail addresses masked, and only its
    first field when the table has a column of personal data (names, phones)."""
    if any(c.strip().lower() in PII_COLUMNS for c in columns):
        line = line.split(",", 1)[0] + ",..."
    line = _EMAIL.sub("<e-mail>", line)
    return line if len(line) <= 80 else line[:77] + "..."
