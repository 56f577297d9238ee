"""The command line: exit codes, reports on stderr, no tracebacks."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from leadml.cli import app

runner = CliRunner()


def write_csvs(tables, folder):
    folder.mkdir(exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


def test_validate_passes_a_good_folder(tiny_tables, tmp_path):
    folder = write_csvs(tiny_tables, tmp_path / "data")
    result = runner.invoke(app, ["validate", "--data", str(folder), "--now", "2026-01-01"])
    assert result.exit_code == 0, result.output
    assert "0 error(s), 0 warning(s)" in result.output


def test_validate_reports_every_problem_and_exits_non_zero_without_traceback(tiny_tables, tmp_path):
    tiny_tables["events"].loc[0, "lead_id"] = "L404"
    tiny_tables["stages"] = tiny_tables["stages"].assign(stage=["lead", "mql", "won?", "lead"])
    folder = write_csvs(tiny_tables, tmp_path / "data")
    (folder / "accounts.csv").unlink()
    done = subprocess.run(
        [sys.executable, "-m", "leadml", "validate", "--data", str(folder), "--now", "2026-01-01"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 3
    assert "Traceback" not in done.stderr
    assert "2 error(s)" in done.stderr
    assert "warning accounts: no accounts table (or an empty one)" in done.stderr  # optional
    assert "events.lead_id: 1 row: lead_id not found in leads (e.g. 'L404')" in done.stderr
    assert "stages.stage: 1 row: unknown stage name" in done.stderr


def test_a_bad_config_exits_2_naming_the_key(tiny_tables, tmp_path):
    folder = write_csvs(tiny_tables, tmp_path / "data")
    config = tmp_path / "c.yaml"
    config.write_text("target:\n  horizon: 30\n")
    result = runner.invoke(app, ["validate", "--data", str(folder), "--config", str(config)])
    assert result.exit_code == 2
    assert "target.horizon: unknown key" in result.output


@pytest.mark.parametrize("command", [c.name for c in app.registered_commands])
def test_every_command_explains_itself_and_takes_a_config(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "--config" in result.output
