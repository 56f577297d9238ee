"""Every command on a real-shaped CRM history (`leadml synth --scenario sparse-crm`): sparse
firmographics, a third of the leads without an account, few events, outcomes arriving up to a
year late, no terminal stage for most non-converters. No traceback anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from conftest import FAST_SETTINGS
from leadml.cli import app
from tracking_helpers import fresh_store

runner = CliRunner()


@pytest.fixture(scope="module")
def sparse(tmp_path_factory, mlflow_template) -> tuple[Path, Path]:
    """A sparse-crm history of 2,000 leads and quick settings (its store in the same folder)."""
    folder = tmp_path_factory.mktemp("sparse")
    fresh_store(mlflow_template, folder)
    done = runner.invoke(app, ["synth", "--out", str(folder / "data"), "--leads", "2000",
                               "--seed", "5", "--scenario", "sparse-crm"])  # fmt: skip
    assert done.exit_code == 0, done.output
    config = folder / "leadml.yaml"
    settings = {
        **FAST_SETTINGS,
        "model": {**FAST_SETTINGS["model"], "min_training_positives": 30},
        "split": {"min_window_positives": 15},
        "tracking": {"uri": f"sqlite:///{folder / 'mlflow.db'}", "export_dir": str(folder / "m")},
    }
    config.write_text(yaml.safe_dump(settings))
    return folder, config


def _run(*args: str) -> str:
    done = runner.invoke(app, list(args))
    assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
    assert "Traceback" not in done.output
    assert done.exit_code == 0, done.output
    return done.output


@pytest.mark.slow
def test_every_command_runs_on_a_sparse_crm_history(sparse):
    folder, config = sparse
    data, c = str(folder / "data"), str(config)
    _run("validate", "--data", data, "-c", c)
    _run("summary", "--data", data, "-c", c)
    _run("features", "--data", data, "--as-of", "2026-03-02", "--out", str(folder / "f.parquet"),
         "-c", c)  # fmt: skip
    _run("trainset", "--data", data, "--out", str(folder / "t.parquet"), "-c", c)
    _run("rules", "--data", data, "--as-of", "2026-03-02", "--out", str(folder / "r.csv"),
         "-c", c)  # fmt: skip
    trained = _run("train", "--data", data, "-c", c, "--no-plots")
    assert "Cold start" not in trained
    assert "ranks the test window: passed" in trained
    _run("promote", "-c", c)
    _run("score", "--data", data, "--as-of", "2026-06-29", "--out", str(folder / "scores"),
         "-c", c)  # fmt: skip
    _run("report", "--data", data, "--scores", str(folder / "scores"), "--out",
         str(folder / "report"), "-c", c)  # fmt: skip
    assert (folder / "report" / "index.html").is_file()
