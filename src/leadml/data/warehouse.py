"""Reading the four tables from a database: PostgreSQL and SQLite through ADBC, DuckDB files
attached read-only.

Each table arrives as Arrow record batches and is streamed into leadml's DuckDB database
(:func:`~leadml.data.readers.stream_in`), so it is held once; a DuckDB file is not copied at
all. Table names come from settings (``data.tables``, schema-qualified where needed).
"""

from __future__ import annotations

import uuid

import duckdb

from leadml.common.databases import Database, connect_adbc, first_line, qualified
from leadml.common.sql import sql_str
from leadml.config.contract import TABLES
from leadml.data.readers import RawTables, ReadFailure, _describe, stream_in
from leadml.errors import DataError


def read_database(raw: RawTables, db: Database, tables: dict[str, str]) -> None:
    """Register every table of ``db`` named in ``tables`` (table -> qualified name; the plain
    name for those not given) as ``raw_<table>``; an absent table is left for validation."""
    names = {name: tables.get(name, name) for name in TABLES}
    if db.engine == "duckdb":
        _attach(raw, db, names)
        return
    with connect_adbc(db, DataError, autocommit=True) as con:
        for name, table in names.items():
            raw.origins[name] = f"{table} in {db.shown}"
            with con.cursor() as cursor:
                try:
                    cursor.execute(f"SELECT * FROM {qualified(table)}")
                    stream_in(raw.con, f"raw_{name}", cursor.fetch_record_batch())
                except Exception as exc:  # DuckDB's, or the driver's own error types
                    if not _no_such_table(exc):  # an absent table is left for validation
                        raw.unreadable[name] = ReadFailure(
                            f"cannot read {raw.origins[name]}: {first_line(exc)}"
                        )
                    continue
            _describe(raw, name)


def _no_such_table(exc: Exception) -> bool:
    """Whether an ADBC driver's error says the table does not exist: PostgreSQL's driver gives
    the status NOT_FOUND, SQLite's INVALID_ARGUMENT with SQLite's own words."""
    status = getattr(getattr(exc, "status_code", None), "name", "")
    return status == "NOT_FOUND" or "no such table" in str(exc)


def _attach(raw: RawTables, db: Database, names: dict[str, str]) -> None:
    attached = f"source_{uuid.uuid4().hex[:8]}"  # a second read on the same connection
    try:
        raw.con.execute(f"ATTACH {sql_str(db.path)} AS {attached} (READ_ONLY)")
    except duckdb.Error as exc:
        raise DataError(f"cannot open {db.shown}: {first_line(exc)}") from None
    present = {
        (schema, table)
        for schema, table in raw.con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? "
            "UNION ALL SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = ?",
            [attached, attached],
        ).fetchall()
    }
    for name, table in names.items():
        raw.origins[name] = f"{table} in {db.shown}"
        schema, _, bare = table.rpartition(".")
        if (schema or "main", bare) not in present:
            continue
        raw.con.execute(
            f"CREATE OR REPLACE VIEW raw_{name} AS SELECT * FROM {attached}.{qualified(table)}"
        )
        _describe(raw, name)
