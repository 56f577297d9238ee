"""Every validation problem has a deliberately broken table and a check of its message."""

from __future__ import annotations

import pandas as pd
import pytest

from leadml import DataValidationError, load_data, validate_data

NOW = "2026-01-01"


def _set(tables, table, column, index, value):
    frame = tables[table].copy()
    frame[column] = frame[column].astype(object)
    frame.loc[index, column] = value
    tables[table] = frame


def drop_table(name):
    def breaker(tables):
        del tables[name]

    return breaker


def drop_column(table, column):
    def breaker(tables):
        tables[table] = tables[table].drop(columns=column)

    return breaker


def set_value(table, column, index, value):
    return lambda tables: _set(tables, table, column, index, value)


def set_values(*changes):
    def breaker(tables):
        for change in changes:
            _set(tables, *change)

    return breaker


def empty(table):
    def breaker(tables):
        tables[table] = tables[table].iloc[:0]

    return breaker


def append_row(table, **row):
    def breaker(tables):
        tables[table] = pd.concat([tables[table], pd.DataFrame([row])], ignore_index=True)

    return breaker


BROKEN = {
    # case: (breaker, severity, table, column, rows, example, words in the message)
    "missing table": (drop_table("stages"), "error", "stages", None, None, None, "missing"),
    "missing column": (
        drop_column("events", "occurred_at"),
        "error",
        "events",
        "occurred_at",
        None,
        None,
        "required column is missing",
    ),
    "unparseable timestamp": (
        set_value("leads", "created_at", 1, "last tuesday"),
        "error",
        "leads",
        "created_at",
        1,
        "last tuesday",
        "unparseable timestamp",
    ),
    "missing timestamp": (
        set_values(("events", "occurred_at", 0, None), ("events", "occurred_at", 2, None)),
        "error",
        "events",
        "occurred_at",
        2,
        None,
        "missing timestamp",
    ),
    "duplicate lead id": (
        set_value("leads", "lead_id", 2, "L1"),
        "error",
        "leads",
        "lead_id",
        2,
        "L1",
        "duplicate id",
    ),
    "duplicate account id": (
        set_value("accounts", "account_id", 1, "A1"),
        "error",
        "accounts",
        "account_id",
        2,
        "A1",
        "duplicate id",
    ),
    "missing lead id": (
        set_value("events", "lead_id", 3, None),
        "error",
        "events",
        "lead_id",
        1,
        None,
        "missing id",
    ),
    "event for unknown lead": (
        set_value("events", "lead_id", 3, "L404"),
        "error",
        "events",
        "lead_id",
        1,
        "L404",
        "not found in leads",
    ),
    "stage for unknown lead": (
        set_value("stages", "lead_id", 3, "L405"),
        "error",
        "stages",
        "lead_id",
        1,
        "L405",
        "not found in leads",
    ),
    "lead at unknown account": (
        set_value("leads", "account_id", 2, "A9"),
        "error",
        "leads",
        "account_id",
        1,
        "A9",
        "not found in accounts",
    ),
    "timestamp in the future": (
        set_value("stages", "entered_at", 2, pd.Timestamp("2027-03-01", tz="UTC")),
        "error",
        "stages",
        "entered_at",
        1,
        "2027-03-01 00:00:00+00",
        "in the future",
    ),
    "unknown stage": (
        set_value("stages", "stage", 1, "Hot Prospect"),
        "error",
        "stages",
        "stage",
        1,
        "Hot Prospect",
        "unknown stage name",
    ),
    "event before creation": (
        set_value("events", "occurred_at", 3, pd.Timestamp("2024-12-24", tz="UTC")),
        "warning",
        "events",
        "occurred_at",
        1,
        "L3 at 2024-12-24 00:00:00+00",
        "before the lead was created",
    ),
    "unknown event type": (
        set_value("events", "event_type", 0, "fax_received"),
        "warning",
        "events",
        "event_type",
        1,
        "fax_received",
        "unknown event type",
    ),
    "not a number": (
        set_value("accounts", "employee_count", 0, "about 250"),
        "error",
        "accounts",
        "employee_count",
        1,
        "about 250",
        "not a number",
    ),
    "negative number": (
        set_value("accounts", "annual_revenue", 1, -5.0),
        "error",
        "accounts",
        "annual_revenue",
        1,
        "-5.0",
        "negative value",
    ),
    "empty table": (empty("events"), "error", "events", None, 0, None, "table is empty"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_each_problem_is_reported_with_table_column_rows_and_example(tiny_tables, case):
    breaker, severity, table, column, rows, example, words = BROKEN[case]
    breaker(tiny_tables)
    report = validate_data(tiny_tables, now=NOW)
    matching = [p for p in report.problems if p.table == table and p.column == column]
    assert len(matching) == 1, report.format()
    problem = matching[0]
    assert problem.severity == severity
    assert problem.rows == rows
    assert problem.example == example
    assert words in problem.message
    line = problem.format()
    assert line.startswith(severity)
    assert (f"{table}.{column}" if column else table) in line
    assert report.ok is (severity == "warning")


def test_a_valid_history_has_no_problems(tiny_tables):
    report = validate_data(tiny_tables, now=NOW)
    assert report.problems == []
    assert report.row_counts == {"accounts": 2, "leads": 3, "events": 4, "stages": 4}


def test_all_problems_are_collected_not_just_the_first(tiny_tables):
    for case in (
        "unparseable timestamp",
        "event for unknown lead",
        "unknown stage",
        "not a number",
    ):
        BROKEN[case][0](tiny_tables)
    report = validate_data(tiny_tables, now=NOW)
    assert len(report.errors) == 4


def test_load_refuses_invalid_data_and_carries_the_report(tiny_tables):
    BROKEN["event for unknown lead"][0](tiny_tables)
    with pytest.raises(DataValidationError) as caught:
        load_data(tiny_tables, now=NOW)
    assert "events.lead_id: 1 row: lead_id not found in leads (e.g. 'L404')" in str(caught.value)
    assert caught.value.report.errors[0].example == "L404"


def test_future_uses_the_given_clock(tiny_tables):
    assert validate_data(tiny_tables, now="2025-02-01").errors  # stages on 2025-02-05
    assert validate_data(tiny_tables, now=NOW).ok
