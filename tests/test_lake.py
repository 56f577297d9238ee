"""Tables in an object store: Parquet under an s3:// prefix, read from a local S3-compatible
server (moto) this module starts, through the standard AWS environment variables."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from conftest import write_tables
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


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on a free local port, found by pyarrow through AWS_ENDPOINT_URL; yields
    a filesystem that may create buckets, for the tests to lay out their data."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            yield pafs.S3FileSystem(endpoint_override=env["AWS_ENDPOINT_URL"],
                                    allow_bucket_creation=True)  # fmt: skip
    finally:
        server.stop()


def arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def lay_out(fs: pafs.S3FileSystem, prefix: str, tables: dict[str, pd.DataFrame]) -> str:
    """``tables`` under ``s3://prefix``: leads and accounts one file each, events a folder of
    two hive partitions (and a marker file Parquet readers skip), stages two plain files."""
    fs.create_dir(prefix.split("/")[0])
    for name in ("accounts", "leads"):
        pq.write_table(arrow(tables[name]), f"{prefix}/{name}.parquet", filesystem=fs)
    events = tables["events"]
    for month, part in events.groupby(events["occurred_at"].dt.month):
        pq.write_table(arrow(part), f"{prefix}/events/month={month}/part-0.parquet",
                       filesystem=fs)  # fmt: skip
    with fs.open_output_stream(f"{prefix}/events/_SUCCESS") as marker:
        marker.write(b"")
    stages = tables["stages"]
    for i, part in enumerate((stages.iloc[:2], stages.iloc[2:])):
        pq.write_table(arrow(part), f"{prefix}/stages/part-{i}.parquet", filesystem=fs)
    return f"s3://{prefix}/"


def canonical(source) -> dict[str, pd.DataFrame]:
    data = load_data(source, now=NOW)
    return {name: data.table(name) for name in TABLES}


def test_parquet_in_s3_loads_as_the_same_local_files_do(s3, tiny_tables, tmp_path):
    uri = lay_out(s3, "lake/crm", tiny_tables)
    got = canonical(uri)
    expected = canonical(write_tables(tiny_tables, tmp_path / "files", "parquet"))
    for name, frame in expected.items():
        assert len(frame) > 0
        extra = [c for c in got[name].columns if c not in frame.columns]
        assert extra == (["month"] if name == "events" else [])  # the hive partition column
        pd.testing.assert_frame_equal(got[name][list(frame.columns)], frame)


def test_problems_in_s3_name_the_table_and_where_it_is(s3, tiny_tables):
    events = tiny_tables["events"].copy()
    events.loc[[0], "lead_id"] = "L404"
    uri = lay_out(s3, "lake2/crm", {**tiny_tables, "events": events})
    pq.write_table(arrow(tiny_tables["stages"]), "lake2/crm/stages.parquet", filesystem=s3)
    report = validate_data(uri, now=NOW)
    (unknown,) = [p for p in report.errors if p.table == "events"]
    assert (unknown.column, unknown.rows, unknown.example) == ("lead_id", 1, "L404")
    (both,) = [p for p in report.errors if p.table == "stages"]
    assert "s3://lake2/crm/stages.parquet and s3://lake2/crm/stages/ are both there" in both.message
    missing = validate_data("s3://lake2/nothing-here/", now=NOW)
    assert {p.table: p.message for p in missing.errors} == {
        name: f"table is missing (looked for s3://lake2/nothing-here/{name}.parquet or "
        f"s3://lake2/nothing-here/{name}/)"
        for name in ("leads", "events", "stages")
    }


def test_a_store_that_cannot_be_read_is_a_data_error(s3):
    # (An unreachable endpoint is one too, after the AWS SDK's retries: ~6 s, not tested here.)
    with pytest.raises(DataError, match="cannot read s3://bad bucket/crm/: Cannot parse URI"):
        load_data("s3://bad bucket/crm/", now=NOW)


def test_the_cli_validates_an_s3_prefix(s3, tiny_tables):
    uri = lay_out(s3, "lake3/crm", tiny_tables)
    done = subprocess.run(
        [sys.executable, "-m", "leadml", "validate", "--data", uri, "--now", "2025-06-01"],
        capture_output=True, text=True, env=os.environ,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
