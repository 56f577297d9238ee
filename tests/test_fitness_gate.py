"""The fitness gate: a model that cannot rank is logged with the reasons, never registered,
aliased or exported unless forced, and the command says so with its own exit code."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from flat_helpers import export_frame, fast_settings, write_csv
from leadml.cli import app
from leadml.errors import ColdStart, ModelUnfit
from leadml.tracking import log_training

runner = CliRunner()


def _config(store, tmp_path: Path) -> Path:
    path = tmp_path / "leadml.yaml"
    settings = fast_settings().model_dump(mode="json")
    path.write_text(
        yaml.safe_dump(
            {
                "model": settings["model"],
                "tracking": {"uri": store.tracking.uri, "export_dir": store.tracking.export_dir},
            }
        )
    )
    return path


def _registered(tmp_path: Path) -> set[str]:
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        return {f"{n} v{v}" for n, v in db.execute("SELECT name, version FROM model_versions")}


def _train(export: Path, config: Path, *extra: str):
    arguments = ["train", "--flat", str(export), "--target", "Converted", "--time", "Created"]
    return runner.invoke(app, [*arguments, "--config", str(config), "--no-plots", *extra])


def test_shuffled_labels_fail_the_gate_and_nothing_is_registered(store, tmp_path):
    frame = export_frame(900, seed=4, leaks=False)
    frame["Converted"] = np.random.default_rng(0).permutation(frame["Converted"].to_numpy())
    export = write_csv(frame, tmp_path / "shuffled.csv")
    config = _config(store, tmp_path)

    done = _train(export, config)
    assert done.exit_code == ModelUnfit.exit_code == 10, done.output
    assert "ranks the test window: FAILED" in done.output
    assert "failed the fitness gate and was not registered" in done.output
    assert _registered(tmp_path) == set()
    assert not Path(store.tracking.export_dir).exists()
    client = MlflowClient(tracking_uri=store.tracking.uri)
    (run,) = client.search_runs(client.get_experiment_by_name("leadml").experiment_id)
    assert run.data.tags["leadml.fitness"] == "failed"
    assert "ranks the test window" in run.data.tags["leadml.fitness.reasons"]
    card = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/MODEL_CARD.md")
    assert "**Failed: this model was not registered or exported.**" in card
    fitness = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/tables/fitness.csv")
    assert "ranks the test window,FAILED" in fitness

    done = _train(export, config, "--force")
    assert done.exit_code == 0, done.output
    assert "although it failed the fitness gate (--force)" in done.output
    assert _registered(tmp_path) == {"leadml-mql-flat v1"}
    version = client.get_model_version("leadml-mql-flat", "1")
    assert version.tags["leadml.fitness"] == "failed (forced)"
    assert (Path(store.tracking.export_dir) / "leadml-mql-flat" / "v1").is_dir()

    done = runner.invoke(app, ["promote", "--flat", "--config", str(config)])
    assert done.exit_code == 6, done.output
    assert "fitness gate at training" in done.output


def test_a_model_that_ranks_passes_the_gate(store, tmp_path):
    export = write_csv(export_frame(900, seed=4, leaks=False), tmp_path / "leads.csv")
    done = _train(export, _config(store, tmp_path))
    assert done.exit_code == 0, done.output
    assert "ranks the test window: passed" in done.output
    assert _registered(tmp_path) == {"leadml-mql-flat v1"}


def test_a_cold_start_has_its_own_exit_code_and_names_the_setting(store, tmp_path):
    frame = export_frame(300, seed=1, leaks=False)
    frame["Converted"] = np.where(np.arange(300) % 30 == 0, "1", "0")
    export = write_csv(frame, tmp_path / "few.csv")
    done = _train(export, _config(store, tmp_path))
    assert done.exit_code == ColdStart.exit_code == 9, done.output
    assert "conversions in the training window" in done.output
    assert "lower model.min_training_positives" in done.output
    assert _registered(tmp_path) == set()


@pytest.mark.slow
def test_shuffled_event_history_labels_fail_the_gate(sample_data, store):
    """The event history goes through the same gate: its labels shuffled, no version."""
    from leadml.modeling.training import train
    from leadml.modeling.trainset import build_trainset

    built = build_trainset(sample_data)
    labels = np.random.default_rng(1).permutation(built.frame["label"].to_numpy())
    shuffled = type(built)(built.frame.assign(label=labels), built.report)
    with threadpool_limits(limits=1):
        result = train(sample_data, trainset=shuffled)
    assert not result.fitness.passed
    assert "ranks the test window" in [c.name for c in result.fitness.failures]
    # The points table learned beside it, from the same shuffled labels, fails too and says so.
    assert any(n.startswith("the learned points table failed the fitness gate: ranks the test")
               for n in result.notes)  # fmt: skip
    result.settings = result.settings.model_copy(update={"tracking": store.tracking})
    tracked = log_training(result, plots=False)
    assert tracked.model_version is None and tracked.unfit
    assert not Path(store.tracking.export_dir).exists()
