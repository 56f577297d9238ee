"""Readers and normalisation: CSV, Parquet and DataFrames all become the same canonical tables."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import write_tables
from leadml import DataError, Settings, load_data
from leadml.config import DataSettings, EventType

NOW = "2026-01-01"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_files_and_frames_load_to_the_same_tables(tiny_tables, tmp_path, fmt):
    from_frames = load_data(tiny_tables, now=NOW)
    from_files = load_data(write_tables(tiny_tables, tmp_path / "data", fmt), now=NOW)
    for name in ("accounts", "leads", "events", "stages"):
        pd.testing.assert_frame_equal(from_files.table(name), from_frames.table(name))


def test_timestamps_become_utc_whatever_their_zone(tiny_tables):
    leads = tiny_tables["leads"].copy()
    leads["created_at"] = [
        "2025-01-01T02:00:00+02:00",
        "2025-01-10 00:00:00",
        "2025-02-01T00:00:00Z",
    ]
    events = tiny_tables["events"].copy()
    events["occurred_at"] = pd.to_datetime(events["occurred_at"]).dt.tz_convert("America/New_York")
    data = load_data({**tiny_tables, "leads": leads, "events": events}, now=NOW)
    created = data.leads["created_at"]
    assert str(created.dtype) == "datetime64[us, UTC]"
    assert list(created) == list(
        pd.to_datetime(["2025-01-01", "2025-01-10", "2025-02-01"], utc=True)
    )
    pd.testing.assert_series_equal(
        data.events["occurred_at"],
        tiny_tables["events"]["occurred_at"].astype("datetime64[us, UTC]"),
    )


def test_raw_event_types_and_stages_map_to_canonical_names(tiny_tables):
    events = tiny_tables["events"].copy()
    events["event_type"] = ["Page View", "demo_request", " WEBINAR_ATTENDED ", "mystery"]
    stages = tiny_tables["stages"].copy()
    stages["stage"] = ["lead", "Marketing Qualified", "SQL", "lead"]
    event_types = dict(DataSettings().event_types)
    event_types["page_view"] = EventType(stage="awareness", aliases=("Page View",))
    settings = Settings(data=DataSettings(event_types=event_types))
    data = load_data({**tiny_tables, "events": events, "stages": stages}, settings, now=NOW)
    assert list(data.events["event_type"]) == [
        "page_view",
        "demo_request",
        "webinar_attended",
        "other",
    ]
    assert list(data.events["buying_stage"]) == ["awareness", "decision", "consideration", "none"]
    assert list(data.stages["stage"]) == ["lead", "mql", "sql", "lead"]
    assert [p.column for p in data.report.warnings] == ["event_type"]


def test_optional_columns_exist_and_extra_columns_pass_through(tiny_tables):
    leads = tiny_tables["leads"].drop(columns=["job_title"]).assign(score_from_crm=[1, 2, 3])
    data = load_data({**tiny_tables, "leads": leads}, now=NOW)
    assert data.leads["job_title"].isna().all()
    assert list(data.leads["score_from_crm"]) == [1, 2, 3]
    assert data.extra_columns["leads"] == ["score_from_crm"]


def test_end_is_the_latest_timestamp(tiny_tables):
    assert load_data(tiny_tables, now=NOW).end() == pd.Timestamp("2025-02-05", tz="UTC")


def test_missing_folder_and_unknown_table_are_clear_errors(tiny_tables, tmp_path):
    with pytest.raises(DataError, match="data folder not found"):
        load_data(tmp_path / "nope")
    with pytest.raises(DataError, match=r"unknown table name\(s\) \['lead'\]"):
        load_data({"lead": tiny_tables["leads"]})


def test_a_table_held_in_memory_reads_the_same_and_is_released(tiny_tables):
    data = load_data(tiny_tables, now=NOW)
    before = data.table("events")
    with data.in_memory("events"), data.in_memory("events"):  # nested: held once
        pd.testing.assert_frame_equal(data.table("events"), before)
        held = data.con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'events_held_%'"
        ).fetchall()
        assert held == [(1,)]
    pd.testing.assert_frame_equal(data.table("events"), before)
    left = data.con.execute("SELECT count(*) FROM duckdb_tables()").fetchall()
    assert left == [(1,)]  # only the event-type map; the held copy is gone
    with pytest.raises(KeyError, match="unknown table"), data.in_memory("evnts"):
        pass


def test_explicit_settings_win_over_those_the_data_was_loaded_with(tiny_tables):
    loaded = load_data(tiny_tables, Settings())
    later = Settings.model_validate({"target": {"horizon_days": 30}})
    assert load_data(loaded) is loaded  # no settings given: the data's own
    assert load_data(loaded, loaded.settings) is loaded
    again = load_data(loaded, later)
    assert again.settings is later and loaded.settings.target.horizon_days == 90
    assert again.row_counts() == loaded.row_counts()  # same tables, other settings
    # Training, which takes both, follows the same rule: this history is too short for either
    # horizon, and the message says which horizon it was judged with.
    from leadml import train

    with pytest.raises(DataError, match="30-day horizon"):
        train(loaded, later)
    with pytest.raises(DataError, match="90-day horizon"):
        train(loaded)
