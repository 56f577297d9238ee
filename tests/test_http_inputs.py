"""Tables on a web server: ``<prefix>/<table>.parquet`` read over http:// from a real
``http.server`` this module starts on a free local port, serving a temporary folder."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import write_tables
from leadml.data import load_data
from leadml.data.lake import read_http
from leadml.data.readers import RawTables, connect
from leadml.data.validation import validate_data
from leadml.errors import DataError

NOW = pd.Timestamp("2025-06-01", tz="UTC")
pytestmark = pytest.mark.integration
TABLES = ("accounts", "leads", "events", "stages")


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Files from the served folder; ``/broken/…`` answers 500, ``/slow/…`` waits 2 s."""

    def do_GET(self) -> None:
        if self.path.startswith("/broken/"):
            self.send_error(500, "Internal Server Error")
            return
        if self.path.startswith("/slow/"):
            time.sleep(2)
        # The slow one's client has given up by the time the file is sent.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().do_GET()

    def log_message(self, *args) -> None:  # keep the test output quiet
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> tuple[Path, str]:
    """A folder and the http:// URL of a server publishing it, for the tests to fill."""
    root = tmp_path_factory.mktemp("www")
    handler = functools.partial(_Handler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def canonical(source) -> dict[str, pd.DataFrame]:
    data = load_data(source, now=NOW)
    return {name: data.table(name) for name in TABLES}


def test_parquet_over_http_loads_as_the_same_local_files_do(served, tiny_tables):
    root, url = served
    folder = write_tables(tiny_tables, root / "crm", "parquet")
    got = canonical(f"{url}/crm/")
    expected = canonical(folder)
    for name, frame in expected.items():
        assert len(frame) > 0
        pd.testing.assert_frame_equal(got[name], frame)


def test_an_absent_optional_table_is_absent(served, tiny_tables):
    root, url = served
    without = {name: frame for name, frame in tiny_tables.items() if name != "accounts"}
    write_tables(without, root / "no-accounts", "parquet")
    report = validate_data(f"{url}/no-accounts", now=NOW)
    assert report.errors == []
    expected = load_data(root / "no-accounts", now=NOW)
    got = load_data(f"{url}/no-accounts", now=NOW)
    assert got.notes == expected.notes
    assert any("accounts" in note for note in got.notes)  # known absent, not an error
    for name in ("leads", "events", "stages"):
        pd.testing.assert_frame_equal(got.table(name), expected.table(name))


def test_a_missing_required_table_names_the_url_tried(served, tiny_tables):
    root, url = served
    write_tables({"accounts": tiny_tables["accounts"]}, root / "half", "parquet")
    report = validate_data(f"{url}/half/", now=NOW)
    missing = {p.table: p.message for p in report.errors}
    assert set(missing) == {"leads", "events", "stages"}
    for name, message in missing.items():
        assert f"looked for {url}/half/{name}.parquet;" in message
        assert "cannot list a folder" in message


def test_a_file_that_is_not_parquet_names_the_url(served, tiny_tables):
    root, url = served
    folder = write_tables(tiny_tables, root / "damaged", "parquet")
    (folder / "events.parquet").write_bytes(b"not parquet at all")
    report = validate_data(f"{url}/damaged/", now=NOW)
    (bad,) = report.errors
    assert bad.table == "events"
    assert f"cannot read {url}/damaged/events.parquet" in bad.message


def test_a_server_error_is_a_data_error_naming_url_and_status(served):
    _, url = served
    with pytest.raises(
        DataError, match=re.escape(f"cannot read {url}/broken/accounts.parquet: HTTP 500")
    ):
        load_data(f"{url}/broken/", now=NOW)


def test_a_server_too_slow_is_a_data_error(served, tiny_tables):
    root, url = served
    write_tables(tiny_tables, root / "slow", "parquet")
    raw = RawTables(connect())
    with pytest.raises(DataError, match=re.escape("slow/accounts.parquet: no answer within 0.3 s")):
        read_http(raw, f"{url}/slow/", timeout=0.3)


def test_an_unreachable_server_is_a_data_error():
    # Port 1 on the loopback: nothing listens there, so the connection is refused at once.
    with pytest.raises(
        DataError, match=re.escape("cannot read http://127.0.0.1:1/crm/accounts.parquet")
    ):
        load_data("http://127.0.0.1:1/crm/", now=NOW)


def test_the_cli_validates_an_http_prefix(served, tiny_tables):
    root, url = served
    write_tables(tiny_tables, root / "cli", "parquet")
    command = ["validate", "--data", f"{url}/cli/", "--now", "2025-06-01"]
    done = subprocess.run(
        [sys.executable, "-m", "leadml", *command],
        capture_output=True, text=True, env=os.environ,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
