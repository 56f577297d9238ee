"""Bad event-history data: every case is refused by `leadml validate` and by a command that
loads the data (`leadml features`), with exit 3, a message naming the table or file, the
column, the rows and an example, and nothing written.

A few hostile inputs are not errors: they pass with a warning (outlier leads, huge values,
unknown event types) or are read as meant (a byte-order mark, CRLF, semicolons).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

NOW = "2026-01-01"
AS_OF = "2025-02-03"


def cell(table: str, column: str, row: int, value: object) -> Callable[[dict], None]:
    """A change setting one cell (its column turned into text-or-anything first)."""

    def change(tables: dict) -> None:
        frame = tables[table]
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value

    return change


def drop_column(table: str, column: str, rename: str | None = None) -> Callable[[dict], None]:
    def change(tables: dict) -> None:
        if rename:
            tables[table] = tables[table].rename(columns={column: rename})
        else:
            tables[table] = tables[table].drop(columns=column)

    return change


def remove(name: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).unlink()


def replace_file(name: str, content: bytes, new_name: str | None = None):
    def spoil(folder: Path) -> None:
        (folder / name).unlink()
        (folder / (new_name or name)).write_bytes(content)

    return spoil


def edit_text(name: str, edit: Callable[[str], str], encoding: str = "utf-8"):
    def spoil(folder: Path) -> None:
        path = folder / name
        path.write_bytes(edit(path.read_text()).encode(encoding, errors="strict"))

    return spoil


def add_line(name: str, line: str):
    return edit_text(name, lambda text: text + line + "\n")


def truncate(name: str, keep: float = 0.5):
    def spoil(folder: Path) -> None:
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: int(len(data) * keep)])

    return spoil


def gzip_table(name: str, extra_rows: int = 0):
    """``name.csv`` -> ``name.csv.gz`` (with ``extra_rows`` copies of the last row, so the
    stream is longer than the header the reader samples)."""

    def spoil(folder: Path) -> None:
        text = (folder / f"{name}.csv").read_text()
        last = text.strip().splitlines()[-1]
        text += "".join(f"{last}\n" for _ in range(extra_rows))
        (folder / f"{name}.csv").unlink()
        (folder / f"{name}.csv.gz").write_bytes(gzip.compress(text.encode()))

    return spoil


def then(*spoils):
    def spoil(folder: Path) -> None:
        for step in spoils:
            step(folder)

    return spoil


def folder_instead(name: str, file_name: str):
    def spoil(folder: Path) -> None:
        (folder / name).unlink()
        (folder / file_name).mkdir()

    return spoil


def both_formats(name: str):
    def spoil(folder: Path) -> None:
        pd.read_csv(folder / f"{name}.csv").to_parquet(folder / f"{name}.parquet")

    return spoil


def empty_dataset(name: str):
    def spoil(folder: Path) -> None:
        (folder / f"{name}.csv").unlink()
        (folder / name).mkdir()
        (folder / name / "README.txt").write_text("the export job failed")

    return spoil


def typed(table: str, column: str, values: list) -> Callable[[dict], None]:
    """Replace a whole column with typed values (for Parquet inputs)."""

    def change(tables: dict) -> None:
        tables[table][column] = values

    return change


@dataclass(frozen=True)
class Case:
    id: str
    expect: tuple[str, ...]  # fragments of the message: table or file, column, rows, example
    change: Callable[[dict], None] | None = None  # on the DataFrames, before writing
    spoil: Callable[[Path], None] | None = None  # on the written folder
    format: str = "csv"
    absent: tuple[str, ...] = ()  # what the message must not show (personal data)


LONG_TITLE = "x" * 1_000_001

ERRORS = [
    # --- tables and files ------------------------------------------------------------------
    Case("table_missing", ("stages: table is missing",), spoil=remove("stages.csv")),
    Case("every_table_missing", ("3 error(s)", "leads: table is missing"),
         spoil=then(*(remove(f"{n}.csv") for n in ("accounts", "leads", "events", "stages")))),
    Case("required_column_missing", ("leads.created_at", "required column is missing"),
         change=drop_column("leads", "created_at")),
    Case("required_column_misnamed", ("events.occurred_at", "required column is missing",
                                      "'timestamp'"),
         change=drop_column("events", "occurred_at", rename="timestamp")),
    Case("empty_file", ("events", "events.csv", "empty (0 bytes)"),
         spoil=replace_file("events.csv", b"")),
    Case("header_only", ("events: 0 rows: table is empty",),
         spoil=replace_file("events.csv", b"lead_id,occurred_at,event_type\n")),
    Case("blank_first_line", ("stages", "stages.csv", "no header"),
         spoil=edit_text("stages.csv", lambda t: "\n" + t)),
    Case("duplicate_header", ("leads", "leads.csv", "['lead_id']", "more than once"),
         spoil=edit_text("leads.csv", lambda t: t.replace("lead_source", "lead_id", 1))),
    Case("empty_dataset_folder", ("events", "no .parquet files"), spoil=empty_dataset("events")),
    Case("folder_named_like_a_file", ("leads", "leads.csv", "is a folder, not a file"),
         spoil=folder_instead("leads.csv", "leads.csv")),
    Case("csv_and_parquet_both", ("leads", "leads.parquet and leads.csv", "keep one"),
         spoil=both_formats("leads")),
    Case("not_utf8", ("leads", "leads.csv", "1 row", "not UTF-8", "line 3", "L2"),
         change=cell("leads", "job_title", 1, "Directeur général"),
         spoil=edit_text("leads.csv", lambda t: t, encoding="latin-1"), absent=("@acme",)),
    Case("not_utf8_header", ("accounts", "accounts.csv", "header line is not UTF-8"),
         spoil=edit_text("accounts.csv", lambda t: t.replace("industry", "branché", 1),
                         encoding="latin-1")),
    Case("ragged_row_short", ("events", "events.csv", "1 row", "fewer fields than the header",
                              "'L2,2025-01-12'"),
         spoil=add_line("events.csv", "L2,2025-01-12")),
    Case("ragged_row_long", ("stages", "stages.csv", "1 row", "more fields than the header",
                             "L3,lead,2025-02-01,extra"),
         spoil=add_line("stages.csv", "L3,lead,2025-02-01,extra")),
    Case("line_over_2_mb", ("events", "events.csv", "1 row", "1 line with more than 2 MB",
                            "line 2"),
         change=cell("events", "event_type", 0, "z" * 3_000_000)),
    Case("truncated_parquet", ("events", "events.parquet", "cannot read"), format="parquet",
         spoil=truncate("events.parquet")),
    Case("text_named_parquet", ("stages", "stages.parquet", "cannot read"), format="parquet",
         spoil=replace_file("stages.parquet", b"lead_id,stage,entered_at\nL1,lead,2025-01-01\n")),
    Case("truncated_csv_gz_head", ("events", "events.csv.gz", "gzip"),
         spoil=then(gzip_table("events"), truncate("events.csv.gz"))),
    Case("truncated_csv_gz_body", ("events", "events.csv.gz", "GZIP"),
         spoil=then(gzip_table("events", extra_rows=40_000), truncate("events.csv.gz", 0.6))),
    # --- timestamps ------------------------------------------------------------------------
    Case("unparseable_timestamp", ("leads.created_at: 1 row: unparseable timestamp", "'soon'"),
         change=cell("leads", "created_at", 2, "soon")),
    Case("impossible_date", ("events.occurred_at: 1 row: unparseable timestamp", "2026-02-30"),
         change=cell("events", "occurred_at", 0, "2026-02-30")),
    Case("missing_timestamp", ("stages.entered_at: 1 row: missing timestamp",),
         change=cell("stages", "entered_at", 3, None)),
    Case("future_timestamp", ("events.occurred_at: 1 row: timestamp in the future", "2031-05-01"),
         change=cell("events", "occurred_at", 1, "2031-05-01")),
    Case("timestamp_as_number", ("leads.created_at", "3 rows", "unparseable timestamp", "1735"),
         format="parquet",
         change=typed("leads", "created_at", [1735689600, 1736467200, 1738368000])),
    # --- ids and references ----------------------------------------------------------------
    Case("duplicate_lead_id", ("leads.lead_id: 2 rows: duplicate id", "'L1'"),
         change=cell("leads", "lead_id", 1, "L1")),
    Case("duplicate_account_id", ("accounts.account_id: 2 rows: duplicate id", "'A1'"),
         change=cell("accounts", "account_id", 1, "A1")),
    Case("missing_lead_id", ("leads.lead_id: 1 row: missing id",),
         change=cell("leads", "lead_id", 2, None)),
    Case("orphan_event", ("events.lead_id: 1 row: lead_id not found in leads", "'L404'"),
         change=cell("events", "lead_id", 0, "L404")),
    Case("orphan_stage", ("stages.lead_id: 1 row: lead_id not found in leads", "'ghost'"),
         change=cell("stages", "lead_id", 3, "ghost")),
    Case("unknown_account", ("leads.account_id: 1 row: account_id not found in accounts", "'A9'"),
         change=cell("leads", "account_id", 2, "A9")),
    Case("unknown_stage_name", ("stages.stage: 1 row: unknown stage name", "'won?'"),
         change=cell("stages", "stage", 2, "won?")),
    Case("missing_stage_name", ("stages.stage: 1 row: unknown stage name",),
         change=cell("stages", "stage", 0, None)),
    # --- numbers ---------------------------------------------------------------------------
    Case("negative_count", ("accounts.employee_count: 1 row: negative value", "'-5'"),
         change=cell("accounts", "employee_count", 1, -5)),
    Case("not_a_number", ("accounts.annual_revenue: 1 row: not a number", "'lots'"),
         change=cell("accounts", "annual_revenue", 0, "lots")),
    Case("inf", ("accounts.employee_count: 1 row: not a finite number", "'inf'"),
         change=cell("accounts", "employee_count", 0, "inf")),
    Case("minus_infinity", ("accounts.annual_revenue: 1 row: not a finite number", "'-Infinity'"),
         change=cell("accounts", "annual_revenue", 1, "-Infinity")),
    Case("nan_literal", ("accounts.employee_count: 1 row: not a finite number", "'NaN'"),
         change=cell("accounts", "employee_count", 1, "NaN")),
    Case("beyond_double_range", ("accounts.annual_revenue: 1 row: not a finite number",
                                 "'1e400'"),
         change=cell("accounts", "annual_revenue", 0, "1e400")),
    Case("inf_in_parquet", ("accounts.employee_count: 1 row: not a finite number", "inf"),
         format="parquet", change=typed("accounts", "employee_count", [np.inf, 12.0])),
]  # fmt: skip


@pytest.mark.parametrize("case", ERRORS, ids=lambda c: c.id)
def test_bad_history_is_refused_by_validate_and_by_features(case, history, cli,
                                                            nothing_written, tmp_path):  # fmt: skip
    folder = history(case.change, case.format)
    if case.spoil:
        case.spoil(folder)
    out = tmp_path / "features.parquet"
    with nothing_written():
        code, output = cli("validate", "--data", folder, "--now", NOW)
        assert code == 3, output
        for fragment in case.expect:
            assert fragment in output, f"{fragment!r} not in:\n{output}"
        assert not any(shown in output for shown in case.absent), output
        code, output = cli("features", "--data", folder, "--as-of", AS_OF, "--out", out,
                           "--now", NOW)  # fmt: skip
        assert code == 3, output
        assert all(fragment in output for fragment in case.expect), output
    assert not out.exists()


def outlier_events(tables: dict) -> None:
    """150 more leads with one event each, and one lead (a bot) with 10,001 more events."""
    leads, events = tables["leads"], tables["events"]
    ids = [f"P{i:03d}" for i in range(150)]
    created, occurred = leads["created_at"].iloc[0], events["occurred_at"].iloc[-1]
    people = pd.DataFrame({"lead_id": ids, "created_at": created, "lead_source": "referral"})
    bot = pd.DataFrame({"lead_id": "L3", "occurred_at": occurred, "event_type": "page_view"},
                       index=range(10_001))  # fmt: skip
    once = pd.DataFrame({"lead_id": ids, "occurred_at": occurred, "event_type": "page_view"})
    tables["leads"] = pd.concat([leads, people], ignore_index=True)
    tables["events"] = pd.concat([events, bot, once], ignore_index=True)


WARNINGS = [
    Case("outlier_lead", ("warning", "events.lead_id", "1 lead(s)", "'L3: 10,002 events'"),
         change=outlier_events, format="parquet"),
    Case("huge_category_value", ("warning", "leads.job_title: 1 row", "longer than 1,000",
                                 "(1000001 characters)"),
         change=cell("leads", "job_title", 0, LONG_TITLE)),
    Case("huge_email", ("warning", "leads.email: 1 row", "'(1000010 characters)'"),
         change=cell("leads", "email", 0, "a" * 1_000_000 + "@gmail.com"), absent=("aaa",)),
    Case("huge_extra_column_value", ("warning", "events.note: 1 row", "longer than 1,000"),
         change=typed("events", "note", [None, None, "y" * 5_000, None])),
    Case("unknown_event_type", ("warning", "events.event_type: 1 row: unknown event type",
                                "'telepathy'"),
         change=cell("events", "event_type", 3, "telepathy")),
    Case("event_before_lead_created", ("warning", "events.occurred_at: 1 row",
                                       "before the lead was created", "L3 at 2024"),
         change=cell("events", "occurred_at", 3, "2024-12-01T00:00:00Z")),
]  # fmt: skip


@pytest.mark.parametrize("case", WARNINGS, ids=lambda c: c.id)
def test_suspicious_history_passes_with_a_warning(case, history, cli):
    folder = history(case.change, case.format)
    code, output = cli("validate", "--data", folder, "--now", NOW)
    assert code == 0, output
    assert "0 error(s), 1 warning(s)" in output
    for fragment in case.expect:
        assert fragment in output, f"{fragment!r} not in:\n{output}"
    assert not any(shown in output for shown in case.absent), output


TOLERATED = [
    Case("byte_order_mark", (), spoil=edit_text("leads.csv", lambda t: "\ufeff" + t)),
    Case("crlf_line_ends", (), spoil=edit_text("events.csv", lambda t: t.replace("\n", "\r\n"))),
    Case("semicolons", (), spoil=edit_text("stages.csv", lambda t: t.replace(",", ";"))),
    Case("gzip_csv", (), spoil=gzip_table("events")),
    Case("parquet_dataset_folder", (), format="parquet",
         spoil=lambda folder: (folder / "events.parquet").rename(
             (folder / "events").mkdir() or folder / "events" / "part-0.parquet")),
    Case("formula_like_category", (), change=cell("leads", "job_title", 0, "=HYPERLINK(1)")),
]  # fmt: skip


@pytest.mark.parametrize("case", TOLERATED, ids=lambda c: c.id)
def test_hostile_but_valid_history_is_read_as_meant(case, history, cli, tmp_path):
    folder = history(case.change, case.format)
    case.spoil and case.spoil(folder)
    code, output = cli("validate", "--data", folder, "--now", NOW)
    assert code == 0, output
    assert "0 error(s), 0 warning(s) in accounts 2, leads 3, events 4, stages 4 rows" in output
