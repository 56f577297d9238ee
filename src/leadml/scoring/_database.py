"""Writing a night's scores into a database table, for a CRM sync (reverse ETL) to read.

One transaction creates the table if it is missing, deletes the rows of that night (``as_of`` on
the same UTC date, as the Parquet output's partition) and inserts the new ones: a re-run
replaces the night instead of adding it twice, and a run that fails part-way leaves the table as
it was. Readers see the old night or the new one, never a mix. On PostgreSQL the table is locked
against other writers for the transaction (readers go on), so two runs of one night take turns.

PostgreSQL and SQLite are written through ADBC (bulk ``COPY`` on PostgreSQL), a DuckDB file
through DuckDB; the columns are the Parquet output's, ``as_of`` included.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pyarrow as pa

from leadml.common.databases import (
    Database,
    connect_adbc,
    first_line,
    qualified,
    split_table,
)
from leadml.common.sql import sql_str
from leadml.errors import OutputError

_PLACEHOLDERS = {"postgresql": ("$1", "$2"), "sqlite": ("?", "?")}


def database_target(out: object) -> tuple[Database, str] | None:
    """The database and table an ``--out`` value names (``postgresql://…/schema.table``), or
    None when it names a folder."""
    if not isinstance(out, str):
        return None
    found = split_table(out)
    if found is not None and not found[1]:
        raise OutputError(
            f"--out {found[0].shown} names no table: end it with /table or /schema.table"
        )
    return found


def reach(db: Database) -> None:
    """Connect to ``db`` once and let go: an unreachable database or a missing driver fails
    the run before it scores, not after."""
    if db.engine != "duckdb":
        connect_adbc(db, OutputError, autocommit=True).close()
        return
    try:  # a missing folder, or a file another process holds open for writing
        duckdb.connect(db.path).close()
    except duckdb.Error as exc:
        raise OutputError(
            f"cannot open {db.shown}: {first_line(exc)}; nothing was written"
        ) from None


def write_scores(db: Database, table: str, scores: pa.Table, as_of: pd.Timestamp) -> str:
    """Replace the rows of night ``as_of`` in ``table`` of ``db`` with ``scores``, in one
    transaction; returns where they went (the password masked)."""
    day = pd.Timestamp(as_of).tz_convert("UTC").floor("D")
    night = (day.to_pydatetime(), (day + pd.Timedelta(days=1)).to_pydatetime())
    where = f"{table} in {db.shown}"
    try:
        if db.engine == "duckdb":
            _write_duckdb(db, table, scores, night)
        else:
            _write_adbc(db, table, scores, night)
    except OutputError:
        raise
    except Exception as exc:  # the drivers' own errors: nothing was committed
        raise OutputError(
            f"writing the scores to {where} failed ({first_line(exc)}); the table is as it "
            "was before this run"
        ) from None
    return where


def _write_adbc(db: Database, table: str, scores: pa.Table, night: tuple) -> None:
    schema, _, name = table.rpartition(".")
    into = {"db_schema_name": schema} if schema else {}
    first, second = _PLACEHOLDERS[db.engine]
    with connect_adbc(db, OutputError, autocommit=False) as con, con.cursor() as cursor:
        try:
            # Zero rows: creates the table with the scores' columns if it is not there yet.
            cursor.adbc_ingest(name, scores.slice(0, 0), mode="create_append", **into)
            if db.engine == "postgresql":
                cursor.execute(f"LOCK TABLE {qualified(table)} IN EXCLUSIVE MODE")
            cursor.execute(
                f"DELETE FROM {qualified(table)} WHERE as_of >= {first} AND as_of < {second}",
                night,
            )
            cursor.adbc_ingest(name, scores, mode="append", **into)
            con.commit()
        except BaseException:
            con.rollback()
            raise


def _write_duckdb(db: Database, table: str, scores: pa.Table, night: tuple) -> None:
    import duckdb

    with duckdb.connect(db.path) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("night_scores", scores)
        con.execute("BEGIN")
        try:
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {qualified(table)} AS "
                "SELECT * FROM night_scores LIMIT 0"
            )
            start, end = (sql_str(pd.Timestamp(t).isoformat()) for t in night)
            con.execute(
                f"DELETE FROM {qualified(table)} WHERE as_of >= CAST({start} AS TIMESTAMPTZ) "
                f"AND as_of < CAST({end} AS TIMESTAMPTZ)"
            )
            con.execute(f"INSERT INTO {qualified(table)} BY NAME SELECT * FROM night_scores")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
