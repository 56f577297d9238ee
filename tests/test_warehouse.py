"""Databases as input and output, against a real PostgreSQL server this module starts, and SQLite
and DuckDB files."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import sqlite3
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
# pyarrow reads timezone-aware columns through Series.values, which pandas 3.1 flags.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Series.values returning an ndarray"),
]
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
    assert [p.message for p in report.errors if p.table == "stages"] == [
        f"table is missing (looked for {schema}.stages in {postgres})"
    ]


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


def test_a_database_without_the_optional_accounts_table_loads_as_a_folder_without_it(
    tiny_tables, tmp_path
):
    import adbc_driver_sqlite.dbapi as sqlite

    del tiny_tables["accounts"]
    from_files = canonical(write_tables(tiny_tables, tmp_path / "files", "parquet"))
    with sqlite.connect(str(tmp_path / "crm.db")) as con, con.cursor() as cursor:
        for name, frame in tiny_tables.items():
            cursor.adbc_ingest(name, pa.Table.from_pandas(frame, preserve_index=False))
        con.commit()
    report = validate_data(f"sqlite:///{tmp_path}/crm.db")
    assert report.ok, report.format()  # absent, not unreadable
    got = canonical(f"sqlite:///{tmp_path}/crm.db")
    assert len(got["accounts"]) == len(from_files["accounts"]) == 0
    assert_same_tables({k: got[k] for k in tiny_tables}, {k: from_files[k] for k in tiny_tables})
    with duckdb.connect(tmp_path / "crm.duckdb") as con:
        con.execute("CREATE TABLE leads AS SELECT 'L1' AS lead_id")
    missing = validate_data(f"duckdb:///{tmp_path}/crm.duckdb")
    assert not missing.ok and "looked for events in duckdb:///" in missing.format()


def test_passwords_are_masked_even_when_they_hold_a_slash_or_an_at_sign():
    from leadml.common.databases import first_line

    shown = first_line(RuntimeError("connect postgresql://crm:p@ss/w@db.internal/sales failed"))
    assert "p@ss" not in shown and "ss/w" not in shown
    assert shown == "connect postgresql://crm:***@db.internal/sales failed"


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


# Scores to a database: a small history and model, scored as the nightly job does.


@pytest.fixture(scope="module")
def night():
    """A 600-lead history and a calibrated logistic model on its real features."""
    from threadpoolctl import threadpool_limits

    from leadml.data.asof import label_pairs, open_leads
    from leadml.features import build_features
    from leadml.modeling.calibration import calibrate
    from leadml.modeling.models import make_candidate
    from leadml.scoring import ScoringModel
    from leadml.synth import generate_history

    keys = ["lead_id", "as_of"]
    with threadpool_limits(limits=1):
        history = generate_history(n_leads=600, seed=3, history_days=400)
        data = load_data(history.tables())
        end = history.end.floor("D")
        labels = label_pairs(data, open_leads(data, [end - pd.Timedelta(days=d)
                                                     for d in range(100, 300, 28)]))  # fmt: skip
        labels = labels[labels["mature"]]
        frame = build_features(data, labels[keys]).merge(labels[[*keys, "label"]], on=keys)
        names = [c for c in frame.columns if c not in (*keys, "label")]
        split = frame["as_of"].max() - pd.Timedelta(days=56)
        train, cal = frame[frame["as_of"] < split], frame[frame["as_of"] >= split]
        model = make_candidate("logistic", train[names]).fit(train[names], train["label"])
        calibrated, _ = calibrate(model, cal[names], cal["label"], cal["as_of"], ["sigmoid"], 500)
    scoring = ScoringModel(calibrated, names, "test-logistic", "1", "run-test", "object",
                           {"family": "logistic"})  # fmt: skip
    return {"data": data, "as_of": end, "model": scoring}


def score_into(night, out, as_of=None):
    from leadml.scoring import score_to

    when = night["as_of"] if as_of is None else as_of
    return score_to(night["data"], when, out, night["model"], track=False)


def test_scores_replace_their_night_in_postgres(postgres, night, tmp_path):
    import adbc_driver_postgresql.dbapi as pg

    schema = postgres_schema(postgres, {})
    table = f"{schema}.lead_scores"
    base, query = postgres.split("?")
    out = f"{base}/{table}?{query}"
    earlier = night["as_of"] - pd.Timedelta(days=7)

    def read(sql):
        with pg.connect(postgres) as con, con.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetch_arrow_table().to_pandas()

    first = score_into(night, out, earlier)
    tonight = score_into(night, out)
    again = score_into(night, out)  # a re-run replaces the night
    assert again.path == f"{table} in {postgres}"
    counts = read(f"SELECT as_of, count(*) AS n FROM {table} GROUP BY 1 ORDER BY 1")
    assert counts["n"].tolist() == [len(first.scores), len(tonight.scores)]
    assert counts["as_of"].tolist() == [earlier, night["as_of"]]
    assert len(tonight.scores) > 50

    score_into(night, str(tmp_path / "scores"))  # the same night as Parquet
    files = pd.read_parquet(tmp_path / "scores")
    stored = read(f"SELECT * FROM {table} WHERE as_of = '{night['as_of']}'")
    assert sorted(stored.columns) == sorted(files.columns)
    by_lead = stored.set_index("lead_id").loc[files["lead_id"]]
    assert by_lead["mql_probability"].tolist() == files["mql_probability"].tolist()
    assert by_lead["model_tier"].tolist() == files["model_tier"].astype(str).tolist()


def test_a_failed_insert_leaves_the_previous_rows(postgres, night):
    import adbc_driver_postgresql.dbapi as pg

    from leadml.errors import OutputError

    schema = postgres_schema(postgres, {})
    table = f"{schema}.lead_scores"
    base, query = postgres.split("?")
    out = f"{base}/{table}?{query}"
    before = score_into(night, out)

    def execute(sql):
        with pg.connect(postgres) as con, con.cursor() as cursor:
            cursor.execute(sql)
            rows = cursor.fetchall() if cursor.description else None
            con.commit()
            return rows

    # A row the table refuses, in the middle of tonight's insert (after its delete).
    refused = before.scores["lead_id"].iloc[len(before.scores) // 2]
    execute(f"ALTER TABLE {table} ADD CONSTRAINT not_this CHECK (lead_id <> '{refused}') "
            "NOT VALID")  # fmt: skip
    with pytest.raises(OutputError, match="the table is as it was before this run") as caught:
        score_into(night, out)
    assert "not_this" in str(caught.value) and caught.value.exit_code == 8
    assert execute(f"SELECT count(*) FROM {table}") == [(len(before.scores),)]
    assert execute(f"SELECT count(*) FROM {table} WHERE lead_id = '{refused}'") == [(1,)]


def test_an_unreachable_output_database_is_an_output_error_without_the_password(night, tmp_path):
    from leadml.errors import OutputError

    out = f"postgresql://crm:s3cret@/sales/lead_scores?host={tmp_path}&port=1"
    with pytest.raises(OutputError, match=r"cannot connect to postgresql://crm:\*\*\*@/sales\?"):
        score_into(night, out)


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_scores_replace_their_night_in_sqlite_and_duckdb(engine, night, tmp_path):
    path = tmp_path / f"crm.{engine}"
    table = "lead_scores" if engine == "sqlite" else "main.lead_scores"
    for _ in range(2):
        result = score_into(night, f"{engine}:///{path}/{table}")
    query = "SELECT count(*), count(DISTINCT lead_id) FROM lead_scores"
    if engine == "sqlite":
        with contextlib.closing(sqlite3.connect(path)) as con:
            counted = con.execute(query).fetchall()
    else:
        with duckdb.connect(path, read_only=True) as con:
            counted = con.execute(query).fetchall()
    assert counted == [(len(result.scores), len(result.scores))]


def test_an_out_uri_without_a_table_is_refused_before_anything_runs(tmp_path, tiny_tables):
    data = write_tables(tiny_tables, tmp_path / "data")
    done = subprocess.run(
        [sys.executable, "-m", "leadml", "score", "--data", str(data), "--as-of", "2025-03-01",
         "--out", "postgresql://crm@db.invalid/sales", "--no-track"],
        capture_output=True, text=True, env=os.environ,
    )  # fmt: skip
    assert done.returncode == 8, done.stderr
    assert "names no table: end it with /table or /schema.table" in done.stderr
