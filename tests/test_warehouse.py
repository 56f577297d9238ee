"""Databases as input and output, against a real PostgreSQL server this module starts, and SQLite
and DuckDB files."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from conftest import write_tables
from leadml.config import Settings
from leadml.config.inputs import DataSettings
from leadml.data import load_data
from leadml.data.validation import validate_data
from leadml.errors import DataError

NOW = pd.Timestamp("2025-06-01", tz="UTC")
TABLES = ("accounts", "leads", "events", "stages")


def _as_postgres_user() -> dict:
    """PostgreSQL refuses to run as root: run its binaries as an unprivileged user then."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": entry.pw_uid, "group": entry.pw_gid}
    pytest.skip("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL")


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server of its own: a cluster in a temporary folder, listening on a unix
    socket there only, stopped and removed at the end of the session; yields its URI."""
    binaries = [shutil.which(b) for b in ("initdb", "pg_ctl")]
    if None in binaries:
        pytest.skip("PostgreSQL's initdb and pg_ctl are not on PATH")
    user = _as_postgres_user()
    folder = Path(tempfile.mkdtemp(prefix="leadml-pg-"))
    if user:
        os.chown(folder, user["user"], user["group"])
    with socket.socket() as probe:  # a free port number names the socket file
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = {"check": True, "capture_output": True, **user}
    subprocess.run(
        ["initdb", "-D", folder / "data", "-A", "trust", "-U", "leadml", "--no-sync"], **run
    )
    options = f"-k {folder} -p {port} -c listen_addresses='' -c fsync=off"
    subprocess.run(
        ["pg_ctl", "-D", folder / "data", "-o", options, "-l", folder / "log", "-w", "start"],
        **run,
    )
    try:
        yield f"postgresql://leadml@/postgres?host={folder}&port={port}"
    finally:
        subprocess.run(["pg_ctl", "-D", folder / "data", "-m", "immediate", "stop"], **run)
        shutil.rmtree(folder, ignore_errors=True)


def postgres_schema(uri: str, tables: dict[str, pd.DataFrame]) -> str:
    """A new schema holding ``tables``, written with ADBC's bulk ingest; returns its name."""
    import adbc_driver_postgresql.dbapi as pg

    schema = f"crm_{uuid.uuid4().hex[:8]}"
    with pg.connect(uri) as con, con.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {schema}")
        for name, frame in tables.items():
            arrow = pa.Table.from_pandas(frame, preserve_index=False)
            cursor.adbc_ingest(name, arrow, mode="create", db_schema_name=schema)
        con.commit()
    return schema


def in_schema(schema: str, names=TABLES) -> Settings:
    return Settings(data=DataSettings(tables={n: f"{schema}.{n}" for n in names}))


def canonical(source, settings: Settings | None = None) -> dict[str, pd.DataFrame]:
    data = load_data(source, settings, now=NOW)
    return {name: data.table(name) for name in TABLES}


def assert_same_tables(got: dict, expected: dict) -> None:
    for name, frame in expected.items():
        assert len(frame) > 0
        pd.testing.assert_frame_equal(got[name], frame)


def test_postgres_tables_load_as_the_same_files_do(postgres, tiny_tables, tmp_path):
    schema = postgres_schema(postgres, tiny_tables)
    from_files = canonical(write_tables(tiny_tables, tmp_path / "files", "parquet"))
    assert_same_tables(canonical(postgres, in_schema(schema)), from_files)


def test_postgres_problems_name_the_table_column_rows_and_example(postgres, tiny_tables):
    events = tiny_tables["events"].copy()
    events.loc[[0, 3], "lead_id"] = "L404"
    without_stages = {n: f for n, f in tiny_tables.items() if n != "stages"}
    schema = postgres_schema(postgres, {**without_stages, "events": events})
    report = validate_data(postgres, in_schema(schema), now=NOW)
    (problem,) = [p for p in report.errors if p.table == "events"]
    assert (problem.column, problem.rows, problem.example) == ("lead_id", 2, "L404")
    assert [p.message for p in report.errors if p.table == "stages"] == ["table is missing"]


def test_sqlite_and_duckdb_files_load_as_the_same_files_do(tiny_tables, tmp_path):
    import adbc_driver_sqlite.dbapi as sqlite

    from_files = canonical(write_tables(tiny_tables, tmp_path / "files", "parquet"))
    with sqlite.connect(str(tmp_path / "crm.db")) as con, con.cursor() as cursor:
        for name, frame in tiny_tables.items():
            cursor.adbc_ingest(name, pa.Table.from_pandas(frame, preserve_index=False))
        con.commit()
    assert_same_tables(canonical(f"sqlite:///{tmp_path}/crm.db"), from_files)
    with duckdb.connect(tmp_path / "crm.duckdb") as con:
        con.execute("CREATE SCHEMA sales")
        for name, frame in tiny_tables.items():
            con.execute(f"CREATE TABLE sales.{name} AS SELECT * FROM frame", [])
            assert con.execute(f"SELECT count(*) FROM sales.{name}").fetchone()[0] == len(frame)
    from_duckdb = canonical(f"duckdb:///{tmp_path}/crm.duckdb", in_schema("sales"))
    assert_same_tables(from_duckdb, from_files)


def test_an_unreachable_database_is_a_data_error_without_the_password(tmp_path):
    uri = f"postgresql://leadml:s3cret@/postgres?host={tmp_path}&port=1"
    with pytest.raises(DataError, match=r"cannot connect to postgresql://leadml:\*\*\*@") as caught:
        load_data(uri)
    assert "s3cret" not in str(caught.value)
    with pytest.raises(DataError, match="cannot open duckdb:///"):
        load_data(f"duckdb:///{tmp_path}/none/here.duckdb")


def test_a_missing_driver_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "adbc_driver_sqlite.dbapi", None)
    with pytest.raises(DataError, match=r"pip install 'leadml\[warehouse\]'"):
        load_data(f"sqlite:///{tmp_path}/crm.db")


def test_unknown_tables_in_settings_are_refused():
    with pytest.raises(ValueError, match=r"unknown table\(s\) \['lead'\]"):
        DataSettings(tables={"lead": "crm.leads"})


def test_the_cli_reads_a_postgres_uri(postgres, tiny_tables, tmp_path):
    schema = postgres_schema(postgres, tiny_tables)
    config = tmp_path / "settings.yaml"
    config.write_text("data:\n  tables:\n" + "".join(f"    {n}: {schema}.{n}\n" for n in TABLES))
    done = subprocess.run(
        [sys.executable, "-m", "leadml", "--json", "validate", "--data", postgres,
         "--config", str(config), "--now", "2025-06-01"],
        capture_output=True, text=True, env=os.environ,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["row_counts"] == {"accounts": 2, "leads": 3, "events": 4, "stages": 4}
    missing = subprocess.run(
        [sys.executable, "-m", "leadml", "validate", "--data", str(tmp_path / "nowhere")],
        capture_output=True, text=True, env=os.environ,
    )  # fmt: skip
    assert missing.returncode == 2 and "does not exist" in missing.stderr
