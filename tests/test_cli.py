"""The command line: exit codes, reports on stderr, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


# For orchestrators: a version, one JSON object on stdout, quiet runs, logged steps.


def test_version_names_the_package():
    import leadml

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"leadml {leadml.__version__}"


def test_json_is_one_object_on_stdout_with_the_result(tiny_tables, tmp_path):
    import json

    folder = write_csvs(tiny_tables, tmp_path / "data")
    out = tmp_path / "rules.csv"
    args = ["--json", "rules", "--data", str(folder), "--as-of", "2025-02-01", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)  # nothing else on stdout
    assert document["ok"] is True and document["exit_code"] == 0
    assert document["command"] == "rules" and document["path"] == str(out)
    assert document["rows"] == len(__import__("pandas").read_csv(out))
    assert document["as_of"].startswith("2025-02-01T00:00:00")
    assert "open leads scored" in result.stderr  # the text, for the log


def test_json_failure_carries_the_exit_code_and_the_error(tiny_tables, tmp_path):
    import json

    folder = write_csvs(tiny_tables, tmp_path / "data")
    args = ["--json", "rules", "--data", str(folder), "--as-of", "someday",
            "--out", str(tmp_path / "r.csv")]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 3
    document = json.loads(result.stdout)
    assert document == {"command": "rules", "ok": False, "exit_code": 3,
                        "error": document["error"]}  # fmt: skip
    assert "someday" in document["error"] and "someday" in result.stderr
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize("command", ["rules", "features"])
def test_an_as_of_with_no_open_lead_writes_nothing_and_says_so(tiny_tables, tmp_path, command):
    """Before the first lead (or a typo in the year) is no night to write: exit 3, as the
    nightly scores, rather than an empty file that reads as 'nobody qualifies'."""
    folder = write_csvs(tiny_tables, tmp_path / "data")
    out = tmp_path / "out.csv"
    result = runner.invoke(app, [command, "--data", str(folder), "--as-of", "2015-01-01",
                                 "--out", str(out)])  # fmt: skip
    assert result.exit_code == 3, result.output
    assert "no lead is open at 2015-01-01 00:00 UTC" in result.stderr
    assert not out.exists()


def test_quiet_prints_nothing_on_success_and_the_error_on_failure(tiny_tables, tmp_path):
    folder = write_csvs(tiny_tables, tmp_path / "data")
    ok = runner.invoke(app, ["-q", "validate", "--data", str(folder), "--now", "2026-01-01"])
    assert ok.exit_code == 0 and ok.stdout == "" and ok.stderr == ""
    tiny_tables["events"].loc[0, "lead_id"] = "L404"
    bad = write_csvs(tiny_tables, tmp_path / "bad")
    failed = runner.invoke(app, ["-q", "validate", "--data", str(bad), "--now", "2026-01-01"])
    assert failed.exit_code == 3 and failed.stdout == "" and "L404" in failed.stderr


def test_scores_are_not_sent_where_they_cannot_go(tiny_tables, tmp_path):
    folder = write_csvs(tiny_tables, tmp_path / "data")
    args = ["score", "--data", str(folder), "--as-of", "2025-02-01", "--out", "s3://bucket/scores"]
    result = runner.invoke(app, args)
    assert result.exit_code == 8, result.output
    assert "nothing was written" in result.stderr
    assert not any(p.name.startswith("s3") for p in Path.cwd().iterdir())


def test_validate_json_lists_every_problem(tiny_tables, tmp_path):
    import json

    tiny_tables["events"].loc[0, "lead_id"] = "L404"
    folder = write_csvs(tiny_tables, tmp_path / "data")
    result = runner.invoke(
        app, ["--json", "validate", "--data", str(folder), "--now", "2026-01-01"]
    )
    document = json.loads(result.stdout)
    assert result.exit_code == document["exit_code"] == 3 and document["ok"] is False
    assert document["errors"] == len(document["problems"]) - document["warnings"] >= 1
    assert any(p["table"] == "events" and p["example"] == "L404" for p in document["problems"])
