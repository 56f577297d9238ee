"""Shared tools of the bad-input corpus: a small valid history to spoil, the CLI as a user runs
it, and a snapshot of a folder to prove that nothing was written.

Every ``test_bad_*.py`` here feeds one hostile input per parameter to the real command line and
asserts the exit code, a message naming the table or file, the column, the rows and an example,
no traceback, and an unchanged folder. Keep fixtures here generic; a file's own cases stay in it.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import write_tables
from leadml.cli import app

#: The instant after which the tiny history's timestamps would be "in the future".
NOW = "2026-01-01"


def run_cli(*args: object) -> tuple[int, str]:
    """Run ``leadml ARGS`` in-process; (exit code, stdout and stderr). Fails the test on a
    traceback or on click's bare "Aborted!" (what an uncaught EOFError becomes)."""
    # Wide enough that usage errors (drawn in a box by rich) keep a long path on one line.
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "500"})
    error = result.exception
    if error is not None and not isinstance(error, SystemExit):
        shown = "".join(traceback.format_exception(error))
        pytest.fail(f"leadml {' '.join(map(str, args))} raised instead of reporting:\n{shown}")
    assert "Traceback" not in result.output, result.output
    assert not result.output.strip().startswith("Aborted"), result.output
    return result.exit_code, result.output


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: relative path -> (size, modification time in ns)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def history(tiny_tables, tmp_path) -> Callable[..., Path]:
    """Write the tiny valid history (tests/conftest.py ``tiny_tables``), optionally changed
    first, into ``tmp_path / "data"``; returns the folder.

    ``history(change=None, format="csv")``: ``change(tables)`` edits the DataFrames in place
    (the tables as text is easiest to spoil: ``tables["accounts"]["employee_count"] = ...``).
    """

    def write(change: Callable[[dict], None] | None = None, format: str = "csv") -> Path:
        tables = {name: frame.copy() for name, frame in tiny_tables.items()}
        if change is not None:
            change(tables)
        return write_tables(tables, tmp_path / "data", format)

    return write


@pytest.fixture
def cli() -> Callable[..., tuple[int, str]]:
    """:func:`run_cli` as a fixture, for test files that prefer fixtures to imports."""
    return run_cli


@pytest.fixture
def nothing_written(tmp_path) -> Callable[[], AbstractContextManager[None]]:
    """``with nothing_written(): ...`` asserts that the block added, changed or removed no
    file under ``tmp_path`` (the data, the --out target, an MLflow store, models/)."""

    @contextmanager
    def check() -> Iterator[None]:
        before = tree(tmp_path)
        yield
        after = tree(tmp_path)
        assert after == before, {
            "added": sorted(set(after) - set(before)),
            "removed": sorted(set(before) - set(after)),
            "changed": sorted(k for k in set(after) & set(before) if after[k] != before[k]),
        }

    return check
