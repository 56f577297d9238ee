"""`leadml report` and the reports of the nightly job: real folders, a real MLflow store."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from conftest import FAST_SETTINGS
from leadml import Settings
from leadml.cli import app
from report_helpers import EMAIL, check_static_page, tables_by_caption

runner = CliRunner()


def test_report_command_writes_a_checked_page_with_the_models_mqls(
    sample_dir, nightly_scores, tmp_path
):
    out = tmp_path / "report"
    args = ["report", "--data", str(sample_dir), "--scores", str(nightly_scores), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Had sales been sent the model's highest-scored leads instead" in result.stdout
    assert f"report: {out / 'index.html'}" in result.stdout
    check_static_page(out / "index.html")
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no staging file left


def test_report_command_adds_the_learned_rules_column(sample_dir, nightly_scores, tmp_path):
    rules = yaml.safe_load(Path("configs/rules.yaml").read_text())
    rules["mql"]["threshold"] += 30
    learned = tmp_path / "learned.yaml"
    learned.write_text(yaml.safe_dump(rules))
    out = tmp_path / "report"
    args = ["report", "--data", str(sample_dir), "--scores", str(nightly_scores), "--out",
            str(out), "--learned-rules", str(learned)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "for the learned rules' top leads at that volume" in result.stdout
    rows = tables_by_caption(check_static_page(out / "index.html")["tree"])
    compared = [row[0] for row in rows["MQLs and what became of them, per definition"][1:]]
    assert {"Learned rules", "Learned rules at the rules' volume"} <= set(compared)

    # A learned rules file that is no rules file: exit 2, naming the problem, nothing written.
    del rules["mql"]
    learned.write_text(yaml.safe_dump(rules) + "surprise: 1\n")
    result = runner.invoke(app, [*args[:-2], "--out", str(tmp_path / "bad"),
                                 "--learned-rules", str(learned)])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "surprise" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "bad" / "index.html").exists()


def _write(path, tables):
    path.mkdir()
    for name, frame in tables.items():
        frame.to_csv(path / f"{name}.csv", index=False)
    return path


@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        ("no data folder", 2, "'--data'"),
        ("no scores folder", 2, "'--scores'"),
        ("scores without partitions", 3, "no nightly scores in it"),
        ("a partition that is not Parquet", 3, "not a readable Parquet file"),
        ("out is a file", 2, "'--out'"),
        ("invalid data", 3, "stages.stage: 1 row: unknown stage name"),
    ],
)
def test_bad_inputs_exit_non_zero_with_a_clear_message(tiny_tables, tmp_path, case, code, message):
    data = _write(tmp_path / "data", tiny_tables)
    scores, out = tmp_path / "scores", tmp_path / "out"
    args = ["report", "--data", str(data), "--out", str(out), "--now", "2026-01-01"]
    if case == "no data folder":
        args[2] = str(tmp_path / "missing")
    elif case == "no scores folder":
        args += ["--scores", str(scores)]
    elif case == "scores without partitions":
        (scores / "as_of=2026-01-01").mkdir(parents=True)  # a partition folder without scores
        args += ["--scores", str(scores)]
    elif case == "a partition that is not Parquet":
        (scores / "as_of=2026-01-01").mkdir(parents=True)
        (scores / "as_of=2026-01-01" / "part-0.parquet").write_text("lead_id\nL1\n")
        args += ["--scores", str(scores)]
    elif case == "out is a file":
        out.write_text("not a folder")
    elif case == "invalid data":
        stages = tiny_tables["stages"].assign(stage=["lead", "mql", "won?", "lead"])
        shutil.rmtree(data)
        _write(data, {**tiny_tables, "stages": stages})
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (out / "index.html").exists()


def test_the_nightly_job_logs_its_report_with_the_scoring_run(
    store, trained_sample, sample_dir, nightly_scores, tmp_path
):
    """`leadml score` records the run, then the report of every night in --out with it."""
    from leadml.tracking import log_training

    settings = Settings.model_validate({**FAST_SETTINGS, "tracking": store.tracking.model_dump()})
    tracked = log_training(dataclasses.replace(trained_sample, settings=settings), plots=False)
    config = tmp_path / "settings.yaml"
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
    scores = tmp_path / "scores"
    shutil.copytree(nightly_scores, scores)
    args = ["score", "--data", str(sample_dir), "--as-of", "2026-06-30", "--out", str(scores),
            "--model", str(tracked.export_path), "-c", str(config), "--top", "0"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "funnel report was not logged" not in result.output

    client = MlflowClient(tracking_uri=store.tracking.uri)
    experiment = client.get_experiment_by_name(settings.tracking.scoring_experiment)
    (run,) = client.search_runs([experiment.experiment_id])
    listed = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert {"report/index.html", "report/mql_comparison.png", "report/tables"} <= listed
    folder = Path(client.download_artifacts(run.info.run_id, "report", str(tmp_path / "copy")))
    checked = check_static_page(folder / "index.html")
    assert len(checked["images"]) >= 8
    page = (folder / "index.html").read_text()
    assert "Had sales been sent the model" in page and not EMAIL.findall(page.encode())
