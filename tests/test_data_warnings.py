"""Every command that reads a history says what validation found wrong with it, as `leadml
validate` does, rather than work around it in silence: an unknown event type counted as 'other',
an attribute the input lacks (whose fit rules are then skipped)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from leadml.cli import app

runner = CliRunner()
UNKNOWN = "events.event_type: 1 row: unknown event type, counted as 'other'"
NO_INDUSTRY = "accounts.industry: accounts has no industry column"


@pytest.fixture
def odd_history(tiny_tables, tmp_path):
    """The tiny history with one event of a type nobody mapped and no industry column."""
    tiny_tables["events"].loc[0, "event_type"] = "hologram_call"
    tiny_tables["accounts"] = tiny_tables["accounts"].drop(columns="industry")
    folder = tmp_path / "data"
    folder.mkdir()
    for name, frame in tiny_tables.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


@pytest.mark.parametrize(
    "command",
    [
        ["summary"],
        ["rules", "--as-of", "2025-02-01", "--out", "{tmp}/rules.csv"],
        ["features", "--as-of", "2025-02-01", "--out", "{tmp}/features.parquet"],
        ["report", "--out", "{tmp}/report"],
    ],
    ids=lambda c: c[0],
)
def test_a_command_reading_a_history_prints_its_warnings(odd_history, tmp_path, command):
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    done = runner.invoke(app, ["--json", *args, "--data", str(odd_history),
                               "--now", "2026-01-01"])  # fmt: skip
    assert done.exit_code == 0, done.stderr
    assert f"warning {UNKNOWN}" in done.stderr and f"warning {NO_INDUSTRY}" in done.stderr
    recorded = json.loads(done.stdout)["data_warnings"]
    assert len(recorded) == 2 and any(UNKNOWN in w for w in recorded)


def test_a_training_run_notes_what_validation_found(sample_history):
    """The notes of a run (its model card, its MLflow run, `leadml train`'s output) carry the
    history's warnings; a cold start keeps the test quick."""
    from leadml import Settings
    from leadml.modeling.training import train

    tables = sample_history.tables()  # the session's own frames: change copies
    tables["events"] = tables["events"].assign(event_type=lambda e: e["event_type"].where(
        e.index != 0, "hologram_call"))  # fmt: skip
    tables["accounts"] = tables["accounts"].drop(columns="industry")
    settings = {"model": {"min_training_rows": 10**9}, "trainset": {"cadence_days": 28}}
    result = train(tables, Settings.model_validate(settings))
    assert result.cold_start
    assert any(note.startswith(UNKNOWN) for note in result.notes)
    assert any(note.startswith(NO_INDUSTRY) for note in result.notes)
