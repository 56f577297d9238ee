"""Training on flat exports and scoring new ones: leaks left out, honest validation, the same
MLflow run and registry as the event history, exit codes, and nothing half-written."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from flat_helpers import HONEST, LEAKS, export_frame, fast_settings, write_csv
from leadml.cli import app
from leadml.errors import DataError
from leadml.flat import flat_settings, plan_columns, read_flat, score_flat, train_flat
from leadml.tracking import load_exported, log_training
from tracking_helpers import scan_for_emails, tracking_uri

runner = CliRunner()
FAST = fast_settings()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """On data this small, BLAS and OpenMP threads only add overhead (3x on a busy machine)."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def by_folds(one_thread):
    """Stratified cross-validation (no time column) on a messy export with every leak."""
    return train_flat(export_frame(600), "Converted", id="Lead ID", settings=FAST)


@pytest.fixture(scope="module")
def by_time(one_thread):
    """Validation by time, keeping one flagged column on purpose."""
    frame = export_frame(600)
    return train_flat(
        frame, "Converted", id="Lead ID", time="Created", allow=["Call Duration"], settings=FAST
    )


def test_every_leak_is_left_out_with_its_reason_and_the_honest_columns_are_used(by_folds):
    report = by_folds.leakage
    assert set(report.excluded) == set(LEAKS)
    for column, expected in LEAKS.items():
        assert {f.check for f in report.reasons(column)} >= expected, report.format()
    assert set(by_folds.feature_names) == set(HONEST)
    columns = by_folds.inputs.columns.set_index("column")
    assert columns.loc["Deal Amount", "leakage"] == "excluded: presence"
    assert not columns.loc[list(LEAKS), "used"].any() and columns.loc[HONEST, "used"].all()


def test_cross_validation_predicts_every_row_out_of_fold_and_calibrates(by_folds):
    metrics = by_folds.evaluation.metrics
    assert by_folds.validation == "cross-validation" and by_folds.trained
    assert metrics["test_rows"] == 600 and len(by_folds.test) == 600
    # The signal is real but modest; a leak would push this near 1.
    assert 0.62 < metrics["model_roc_auc"] < 0.85
    assert metrics["model_ece"] < 0.08
    assert abs(metrics["model_mean_probability"] - metrics["model_base_rate"]) < 0.03
    assert metrics["model_roc_auc_fold_std"] < 0.1 and metrics["cv_folds"] == 3
    assert "rules_roc_auc" not in metrics  # a flat export has no rule score
    assert by_folds.windows.loc["test", "rows"] == 600
    assert by_folds.windows.loc["calibration", "rows"] == 120


def test_the_model_takes_the_export_as_read(by_folds, tmp_path):
    new = export_frame(200, seed=5)
    as_csv = read_flat(write_csv(new, tmp_path / "new.csv")).frame
    from_csv = by_folds.model.predict_proba(as_csv[by_folds.feature_names])[:, 1]
    from_frame = by_folds.model.predict_proba(read_flat(new).frame[by_folds.feature_names])[:, 1]
    assert np.allclose(from_csv, from_frame)
    scored = score_flat(as_csv.drop(columns=["Lead Status", "Deal Amount"]), by_folds.model)
    assert np.allclose(scored.scores["mql_probability"], from_csv)
    assert scored.scores.columns[0] == "row"  # a bare estimator knows no id column


def test_validation_by_time_tests_the_latest_rows(by_time):
    windows = by_time.windows
    assert by_time.validation == "time" and list(windows.index) == ["train", "calibration", "test"]
    assert windows.loc["train", "last_snapshot"] < windows.loc["calibration", "first_snapshot"]
    assert windows.loc["calibration", "last_snapshot"] < windows.loc["test", "first_snapshot"]
    assert windows.loc["test", "rows"] == pytest.approx(120, abs=10)
    assert by_time.evaluation.metrics["test_rows"] == windows.loc["test", "rows"]
    assert by_time.evaluation.metrics["model_roc_auc"] > 0.55


def test_an_allowed_column_is_kept_and_the_report_says_so(by_time):
    assert "Call Duration" in by_time.feature_names
    assert by_time.leakage.allowed == ["Call Duration"]
    assert "Call Duration: KEPT (allowed)" in by_time.leakage.format()
    assert set(by_time.leakage.excluded) == set(LEAKS) - {"Call Duration"}
    columns = by_time.inputs.columns.set_index("column")
    assert columns.loc["Call Duration", "leakage"] == "flagged, kept (allowed)"


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        ({}, {"target": "Convertd"}, "target 'Convertd' is not a column (600 rows, 17 columns"),
        ({}, {"id": "LeadID"}, "--id 'LeadID' is not a column"),
        ({}, {"time": "created"}, "did you mean 'Created'?"),
        ({}, {"exclude": ["Nope"]}, "--exclude 'Nope' is not a column"),
        ({}, {"time": "Lead Source"}, "--time column 'Lead Source' must hold dates, but only"),
        ({"Converted": "Won"}, {}, "has a single value ('Won' on all 600 rows with a value)"),
        (
            {"Converted": ["won", "lost", "open"] * 200},
            {},
            "must be binary (converted or not) "
            "but has 3 distinct values in 600 rows, e.g. 'won', 'lost', 'open'",
        ),
        (
            {"Converted": ["Won", "Lost"] * 300},
            {},
            "has the values 'Won' and 'Lost'; say which one means converted with --positive",
        ),
        ({"Converted": ""}, {}, "target column 'Converted' has no values in 600 rows"),
        (
            {},
            {"allow": ["Email"]},
            "--allow-column 'Email': the column is not a model input (role pii",
        ),
    ],
)
def test_bad_inputs_name_the_file_the_column_and_the_rows(change, kwargs, message):
    frame = export_frame(600).assign(**change)
    arguments = {"target": "Converted", **kwargs}
    target = arguments.pop("target")
    with pytest.raises(DataError, match=re.escape(message)) as caught:
        train_flat(frame, target, settings=FAST, **arguments)
    assert str(caught.value).startswith("DataFrame: ") or "--allow-column" in str(caught.value)


def test_any_two_target_values_work_with_positive():
    frame = export_frame(100).assign(
        Converted=lambda f: f["Converted"].map({"1": "Won", "0": "Lost"})
    )
    columns = plan_columns(read_flat(frame), "Converted", positive="won")
    assert columns.positive == "Won"
    assert columns.label.tolist() == (frame["Converted"] == "Won").astype(int).tolist()
    with pytest.raises(DataError, match=r"--positive 'Maybe' is not a value of the target"):
        plan_columns(read_flat(frame), "Converted", positive="Maybe")


@pytest.mark.parametrize(
    ("rows", "reason"),
    [(80, "only 80 rows in DataFrame"), (300, "conversions in DataFrame")],
)
def test_too_little_data_trains_nothing_and_says_why(rows, reason, store):
    frame = export_frame(rows)
    if rows == 300:
        frame["Converted"] = np.where(np.arange(rows) < 10, "1", "0")
    settings = fast_settings().model_copy(update={"tracking": store.tracking})
    result = train_flat(frame, "Converted", settings=settings)
    assert not result.trained and reason in result.cold_start
    assert result.cold_start.endswith("no model was trained or registered")
    assert result.leakage is not None  # the guard still reports
    tracked = log_training(result, plots=False)
    assert tracked.model_version is None and not Path(store.tracking.export_dir).exists()
    run = MlflowClient(tracking_uri=store.tracking.uri).get_run(tracked.run_id)
    assert run.data.tags["leadml.input"] == "flat"


def _config(store, tmp_path: Path) -> Path:
    settings = fast_settings().model_dump(mode="json")
    path = tmp_path / "leadml.yaml"
    config = {
        "model": settings["model"],
        "flat": {"cv_folds": 2},
        "tracking": {"uri": store.tracking.uri, "export_dir": store.tracking.export_dir},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_train_promote_and_score_a_flat_export_from_the_command_line(store, tmp_path):
    config = _config(store, tmp_path)
    export = write_csv(export_frame(400), tmp_path / "leads.csv")
    done = runner.invoke(
        app,
        [
            "train",
            "--flat",
            str(export),
            "--target",
            "Converted",
            "--id",
            "Lead ID",
            "--allow-column",
            "Call Duration",
            "--config",
            str(config),
            "--no-plots",
        ],
    )
    assert done.exit_code == 0, done.output
    assert "Data quality of leads.csv: 400 rows x 17 columns" in done.output
    assert "Leakage guard: 5 of" in done.output and "Deal Amount: excluded" in done.output
    assert "4 left out, 1 kept on purpose" in done.output
    assert "Call Duration: KEPT (allowed)" in done.output
    assert "Out of fold" in done.output
    assert "registered leadml-mql-flat version 1 as 'challenger'" in done.output

    client = MlflowClient(tracking_uri=store.tracking.uri)
    version = client.get_model_version_by_alias("leadml-mql-flat", "challenger")
    run = client.get_run(version.run_id)
    assert run.data.tags["leadml.input"] == "flat"
    assert run.data.tags["leadml.validation"] == "cross-validation"
    assert run.data.params["flat.run.target"] == '"Converted"'
    assert run.data.metrics["leakage_columns_excluded"] == 4
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"leakage.md", "leakage.json", "data_quality.md", "MODEL_CARD.md"} <= artifacts
    leakage = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/leakage.json")
    assert set(leakage["excluded"]) == set(LEAKS) - {"Call Duration"}
    assert leakage["allowed"] == ["Call Duration"]
    assert leakage["flagged"]["Deal Amount"]["reasons"][0]["check"] == "presence"
    quality = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/data_quality.md")
    assert "Windows line endings" in quality and "'Select'" in quality
    card = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/MODEL_CARD.md")
    assert "## Leakage guard" in card and "Deal Amount | excluded | presence" in card
    # The event-history model's name is untouched.
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        names = {n for (n,) in db.execute("SELECT name FROM registered_models")}
    assert names == {"leadml-mql-flat"}

    done = runner.invoke(app, ["promote", "--flat", "--config", str(config)])
    assert done.exit_code == 0, done.output
    assert "not applicable" in done.output  # the rules check does not apply to a flat export
    assert "leadml-mql-flat version 1 is now the champion" in done.output

    new = export_frame(200, seed=9)
    out = tmp_path / "scores" / "new.parquet"
    done = runner.invoke(
        app,
        [
            "score",
            "--flat",
            str(write_csv(new, tmp_path / "new.csv")),
            "--out",
            str(out),
            "--config",
            str(config),
        ],
    )
    assert done.exit_code == 0, done.output
    assert "200 rows of new.csv scored with leadml-mql-flat v1" in done.output
    scores = pd.read_parquet(out)
    assert list(scores["Lead ID"]) == list(new["Lead ID"])
    exported = load_exported(store.tracking.export_dir, "leadml-mql-flat", alias="champion")
    assert exported.metadata["input"] == "flat"
    assert exported.metadata["flat"]["id_column"] == "Lead ID"
    expected = exported.predict_proba(read_flat(tmp_path / "new.csv").frame)
    assert np.allclose(scores["mql_probability"], expected)
    assert set(scores["model_tier"]) <= {"A", "B", "C", "D"}
    assert sorted(scores["model_rank"]) == list(range(1, 201))

    # The logged MLflow model takes the export's columns as text, like the scorer.
    with tracking_uri(store.tracking.uri):
        pyfunc = mlflow.pyfunc.load_model("models:/leadml-mql-flat@champion")
    frame = read_flat(tmp_path / "new.csv").frame[exported.metadata["feature_names"]]
    assert np.allclose(pyfunc.predict(frame)["mql_probability"], expected)

    # Bad inputs for scoring: exit codes, and the earlier scores left as they were.
    before = out.read_bytes()
    lacking = write_csv(new.drop(columns=["Visits"]), tmp_path / "lacking.csv")
    done = runner.invoke(
        app, ["score", "--flat", str(lacking), "--out", str(out), "--config", str(config)]
    )
    assert done.exit_code == 4 and "lacks: ['Visits']" in done.output
    done = runner.invoke(
        app,
        [
            "score",
            "--flat",
            str(lacking),
            "--out",
            str(tmp_path / "x.txt"),
            "--config",
            str(config),
        ],
    )
    assert done.exit_code == 8 and "--out must end in .parquet, .csv or .csv.gz" in done.output
    done = runner.invoke(
        app,
        [
            "score",
            "--flat",
            str(tmp_path / "new.csv"),
            "--out",
            str(out),
            "--model",
            "models:/leadml-mql-flat@nope",
            "--config",
            str(config),
        ],
    )
    assert done.exit_code == 5
    assert out.read_bytes() == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]

    # The export carried e-mail addresses (a PII column): none reached MLflow or the export.
    assert (
        scan_for_emails(tmp_path / "mlartifacts", tmp_path / "models", tmp_path / "mlflow.db") == []
    )


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (["--target", "Convertd"], 3, "leads.csv: target 'Convertd' is not a column"),
        (["--target", "Lead Source"], 3, "must be binary"),
        (["--target", "Converted", "--time", "Notes"], 3, "must hold dates"),
        ([], 2, "--flat needs --target COLUMN"),
        (["--target", "Converted", "--data", "."], 2, "give either --data DIR"),
    ],
)
def test_train_refuses_bad_input_with_its_exit_code_and_writes_nothing(
    store, tmp_path, arguments, code, message
):
    export = write_csv(export_frame(120), tmp_path / "leads.csv")
    config = _config(store, tmp_path)
    done = runner.invoke(app, ["train", "--flat", str(export), "--config", str(config), *arguments])
    assert done.exit_code == code, done.output
    assert message in done.output and "Traceback" not in done.output
    assert (
        MlflowClient(tracking_uri=store.tracking.uri).search_experiments(
            filter_string="name = 'leadml'"
        )
        == []
    )
    assert not (tmp_path / "models").exists()


def test_a_missing_export_is_an_error_naming_it(store, tmp_path):
    done = runner.invoke(
        app,
        [
            "train",
            "--flat",
            str(tmp_path / "none.csv"),
            "--target",
            "C",
            "--config",
            str(_config(store, tmp_path)),
        ],
    )
    assert done.exit_code == 3 and "none.csv: file not found" in done.output


def test_scoring_a_flat_export_with_the_event_model_is_refused(by_folds, tmp_path):
    from leadml.scoring import ModelMismatchError, ScoringModel

    events = ScoringModel(
        by_folds.model, by_folds.feature_names, "leadml-mql", "3", metadata={"input": "events"}
    )
    with pytest.raises(ModelMismatchError, match="trained on the event history"):
        score_flat(export_frame(50), events)


def test_flat_models_have_their_own_registry_name():
    settings = flat_settings(FAST)
    assert settings.tracking.model_name == "leadml-mql-flat"
    assert FAST.tracking.model_name == "leadml-mql"
