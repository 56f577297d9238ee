"""MLflow tracking: a real SQLite store in tmp_path, opened and inspected after each run."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import sqlite3
from pathlib import Path

import mlflow
import numpy as np
import pytest
import skops.io
from mlflow.tracking import MlflowClient
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from leadml.config import Settings
from leadml.errors import ModelIntegrityError, TrackingError
from leadml.tracking import (
    DEFAULT_TRACKING_URI,
    PARAM_VALUE_LIMIT,
    flatten_settings,
    load_exported,
    load_model_file,
    load_registered,
    log_training,
    resolve_tracking_uri,
)
from tracking_helpers import (
    EMAIL,
    FEATURES,
    cold_result,
    fresh_store,
    make_result,
    scan_for_emails,
    settings_for,
    tracking_uri,
)


@pytest.fixture(scope="module")
def trained():
    return make_result(Settings())


@dataclasses.dataclass
class Logged:
    settings: Settings
    folder: Path
    result: object
    tracked: object


@pytest.fixture(scope="module")
def logged(trained, mlflow_template, tmp_path_factory) -> Logged:
    """One training run logged to its own store, shared by the tests that only read it."""
    folder = tmp_path_factory.mktemp("logged")
    fresh_store(mlflow_template, folder)
    settings = settings_for(folder)
    result = dataclasses.replace(trained, settings=settings)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        tracked = log_training(result, source=folder / "data")
    return Logged(settings, folder, result, tracked)


def test_a_training_run_is_logged_registered_and_exported(logged):
    result, tracked, store, tmp_path = logged.result, logged.tracked, logged.settings, logged.folder
    assert tracked.model_version == 1 and tracked.cold_start is None

    client = MlflowClient(tracking_uri=store.tracking.uri)
    run = client.get_run(tracked.run_id)
    assert run.data.params["target.horizon_days"] == "90"
    assert run.data.params["tracking.promotion.tolerances.roc_auc"] == "0.0"
    assert run.data.params["model.chosen.classifier__max_leaf_nodes"] == "15"
    assert run.data.params["model.chosen.calibration"] == "sigmoid"
    metrics = result.evaluation.metrics
    for key in ("model_roc_auc", "rules_points_roc_auc", "model_ece", "rules_brier",
                "model_conversions_at_rule_mql_volume"):  # fmt: skip
        assert run.data.metrics[key] == pytest.approx(metrics[key])
    assert run.data.metrics["train_positives"] == result.windows.loc["train", "positives"]

    # Lineage: one dataset per window, a digest of the whole feature frame, its size as tags.
    inputs = {
        next(t.value for t in d.tags if t.key == "mlflow.data.context"): d
        for d in run.inputs.dataset_inputs
    }
    assert set(inputs) == {"train", "calibration", "test"}
    test_input = inputs["test"]
    tags = {t.key: t.value for t in test_input.tags}
    assert tags["rows"] == str(len(result.frames["test"]))
    assert len(test_input.dataset.digest) == 16
    assert "visits" in test_input.dataset.schema and "lead_id" not in test_input.dataset.schema

    artifacts = _artifact_paths(client, tracked.run_id)
    for stem in ("calibration", "lift_gains", "roc_pr", "feature_importance"):
        assert f"plots/{stem}.png" in artifacts
    for stem in ("head_to_head", "capacity", "gains_model", "reliability_rules", "segments",
                 "search", "calibration_methods", "feature_importance", "windows"):  # fmt: skip
        assert f"tables/{stem}.csv" in artifacts
    assert {"MODEL_CARD.md", "export/model.skops", "export/metadata.json"} <= artifacts
    card = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/MODEL_CARD.md")
    assert "SQL" in card and "90 days" in card and "ROC AUC" in card and "Caveats" in card

    # Registry: version 1 carries the alias and the gate's inputs.
    version = client.get_model_version_by_alias(store.tracking.model_name, "challenger")
    assert int(version.version) == 1 and version.run_id == tracked.run_id
    assert version.tags["leadml.run_id"] == tracked.run_id
    assert float(version.tags["leadml.challenger.roc_auc"]) == pytest.approx(
        metrics["model_roc_auc"], abs=1e-5
    )
    assert version.tags["leadml.champion.version"] == "none"
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        aliases = db.execute("SELECT alias, version FROM registered_model_aliases").fetchall()
    assert aliases == [("challenger", 1)]

    # The registered model reloads as a pyfunc: one column, the probability, as the signature says.
    with tracking_uri(store.tracking.uri):
        pyfunc = mlflow.pyfunc.load_model(f"models:/{store.tracking.model_name}@challenger")
    features = result.frames["test"][FEATURES].head(200)
    features = features.assign(industry=features["industry"].astype(str))
    predicted = pyfunc.predict(features)
    assert list(predicted.columns) == ["mql_probability"] and len(predicted) == 200
    assert np.allclose(predicted["mql_probability"], result.model.predict_proba(features)[:, 1])
    assert pyfunc.metadata.get_input_schema().input_names() == FEATURES
    assert pyfunc.metadata.get_output_schema().input_names() == ["mql_probability"]


def test_the_export_scores_without_a_tracking_server(logged, tmp_path):
    trained, tracked, store = logged.result, logged.tracked, logged.settings
    # A copy of the export folder alone, far from the tracking database, must do.
    shutil.copytree(logged.folder / "models", tmp_path / "models")
    exported = load_exported(tmp_path / "models", store.tracking.model_name, alias="challenger")
    assert exported.path == tmp_path / "models" / "leadml-mql" / "v1"
    assert tracked.export_path == logged.folder / "models" / "leadml-mql" / "v1"
    meta = exported.metadata
    assert meta["version"] == 1 and meta["run_id"] == tracked.run_id
    assert meta["feature_names"] == FEATURES and meta["feature_dtypes"]["visits"] == "float32"
    assert meta["target"] == {"stage": "sql", "horizon_days": 90}
    assert meta["format"] == "skops" and "sklearn." in " ".join(meta["skops_trusted_types"])
    assert meta["windows"]["test"]["rows"] == len(trained.frames["test"])
    assert meta["metrics"]["model_roc_auc"] == pytest.approx(
        trained.evaluation.metrics["model_roc_auc"]
    )
    test = trained.frames["test"]
    assert np.allclose(
        exported.predict_proba(test), trained.model.predict_proba(test[FEATURES])[:, 1]
    )
    assert (exported.path / "MODEL_CARD.md").read_text().startswith("# Model card: leadml-mql v1")
    assert not [p for p in exported.path.parent.iterdir() if p.name.startswith(".")]
    with pytest.raises(TrackingError, match="no exported 'champion' model"):
        load_exported(tmp_path / "models", store.tracking.model_name)


def test_the_model_file_hash_and_the_store_are_recorded_and_checked_on_load(logged, tmp_path):
    settings, tracked = logged.settings, logged.tracked
    export = tracked.export_path
    digest = hashlib.sha256((export / "model.skops").read_bytes()).hexdigest()
    meta = json.loads((export / "metadata.json").read_text())
    assert meta["model_sha256"] == digest == tracked.model_sha256
    client = MlflowClient(tracking_uri=settings.tracking.uri)
    version = client.get_model_version(settings.tracking.model_name, "1")
    assert version.tags["leadml.model_sha256"] == digest
    run = client.get_run(tracked.run_id)
    assert meta["run_id"] == tracked.run_id
    assert meta["store"] == {
        "tracking_uri": settings.tracking.uri,
        "experiment_id": run.info.experiment_id,
        "registered_model_created": client.get_registered_model("leadml-mql").creation_timestamp,
    }
    # By registry URI, with no local export: the run's bundle, checked against the tag.
    elsewhere = settings.model_copy(
        update={"tracking": settings.tracking.model_copy(update={"export_dir": str(tmp_path)})}
    )
    found = load_registered(elsewhere, alias="challenger")
    assert str(found.path) == "models:/leadml-mql/1" and found.metadata["model_sha256"] == digest
    test = logged.result.frames["test"]
    assert np.allclose(
        found.predict_proba(test), logged.result.model.predict_proba(test[FEATURES])[:, 1]
    )
    assert not list(tmp_path.iterdir())  # nothing fetched was left behind


def test_no_personal_data_reaches_mlflow_or_the_export(logged):
    # The synthetic leads are keyed by e-mail address; none may appear anywhere.
    assert "@" in logged.result.test["lead_id"].iloc[0]
    assert (logged.folder / "mlartifacts").is_dir() and (logged.folder / "models").is_dir()
    assert scan_for_emails(logged.folder) == []  # artifacts, export and the database itself


def test_cold_start_logs_the_reason_and_registers_nothing(store, tmp_path):
    result = cold_result(store)
    tracked = log_training(result)
    assert tracked.model_version is None and tracked.export_path is None
    assert "only 12 conversions" in tracked.cold_start
    client = MlflowClient(tracking_uri=store.tracking.uri)
    run = client.get_run(tracked.run_id)
    assert run.data.tags["leadml.cold_start"] == result.cold_start
    assert run.data.metrics["train_positives"] == 12
    assert client.search_registered_models() == []
    card = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/MODEL_CARD.md")
    assert "Cold start" in card and "rule score" in card
    assert not (tmp_path / "models").exists()


def test_tracking_uri_comes_from_settings_then_environment_then_default(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(Settings()) == DEFAULT_TRACKING_URI == "sqlite:///mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert resolve_tracking_uri(Settings()) == "http://tracking.example:5000"
    configured = Settings.model_validate({"tracking": {"uri": "sqlite:///elsewhere.db"}})
    assert resolve_tracking_uri(configured) == "sqlite:///elsewhere.db"


def test_settings_flatten_to_dotted_parameters_within_mlflow_limits():
    many = [f"competitor-{i}.example" for i in range(200)]
    params = flatten_settings(Settings.model_validate({"domains": {"competitor": many}}))
    assert params["data.event_types.demo_request.stage"] == "decision"
    assert params["model.candidates"] == '["logistic", "hist_gradient_boosting"]'
    assert len(params["domains.competitor"]) == PARAM_VALUE_LIMIT
    assert params["domains.competitor"].endswith("…")
    assert all(len(k) <= 250 for k in params)


def test_a_model_file_referencing_untrusted_code_is_refused(tmp_path):
    unsafe = make_pipeline(FunctionTransformer(os.system))
    path = tmp_path / "model.skops"
    skops.io.dump(unsafe, path)
    with pytest.raises(ModelIntegrityError, match=r"does not trust: .*system") as refused:
        load_model_file(path)
    assert refused.value.exit_code == 11


def _artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= _artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return found


@pytest.mark.slow
def test_train_command_end_to_end_on_the_sample_history(tmp_path, mlflow_template, monkeypatch):
    """`leadml train` on a generated history: head-to-head printed, run logged, challenger
    registered and exported, and not one of the sample's e-mail addresses anywhere."""
    from typer.testing import CliRunner

    from leadml.cli import app
    from leadml.synth import generate_history, write_history

    history = generate_history(n_leads=1_500, seed=11, history_days=540)
    write_history(history, tmp_path / "data")
    fresh_store(mlflow_template, tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = tmp_path / "settings.yaml"
    config.write_text(
        "target: {horizon_days: 30}\n"
        "split: {calibration_days: 60, test_days: 60, min_window_positives: 15}\n"
        "trainset: {cadence_days: 28}\n"
        "model: {candidates: [logistic], search_folds: 2, min_training_positives: 30}\n"
        f"tracking: {{uri: 'sqlite:///{tmp_path}/mlflow.db', export_dir: {tmp_path}/models}}\n"
    )
    args = ["train", "--data", str(tmp_path / "data"), "-c", str(config), "--no-plots"]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    assert (
        "ROC AUC" in out.output and "rules" in out.output and "Expected calibration" in out.output
    )
    assert "registered leadml-mql version 1 as 'challenger'" in out.output
    for step in ("trainset", "leakage guard", "search", "fit and calibrate", "test", "mlflow"):
        assert re.search(rf"leadml\.\w+: {step}: .* \(\d+\.\d s\)", out.stderr), step

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    version = client.get_model_version_by_alias("leadml-mql", "challenger")
    run = client.get_run(version.run_id)
    assert run.data.params["target.horizon_days"] == "30"
    assert 0.5 < run.data.metrics["model_roc_auc"] <= 1
    artifacts = _artifact_paths(client, run.info.run_id)
    assert {"tables/head_to_head.csv", "MODEL_CARD.md"} <= artifacts
    # The test window's funnel report goes with the run: the page, its figures and tables.
    assert {"report/index.html", "report/mql_comparison.png",
            "report/tables/mql_comparison.csv"} <= artifacts  # fmt: skip

    assert history.leads["email"].notna().any()
    assert scan_for_emails(tmp_path / "mlartifacts", tmp_path / "models") == []
    assert not EMAIL.findall((tmp_path / "mlflow.db").read_bytes())
