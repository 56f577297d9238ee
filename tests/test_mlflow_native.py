"""The registered model as MLflow users use it: ``mlflow.pyfunc.load_model`` and ``mlflow models
serve`` return one column, ``mql_probability``, the probability ``leadml score`` writes for the
same leads; ``leadml score --model`` takes any registered version of a leadml model (by version,
alias, another registered name or ``runs:/``) and refuses others.

A real MLflow SQLite store, the sample history's real model, the real command line.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from leadml.cli import app
from leadml.config import Settings
from leadml.features import features_as_of
from leadml.tracking import log_training, promote
from tracking_helpers import store_for_sample, tracking_uri

runner = CliRunner()
AS_OF = "2026-03-02"
NAME = "leadml-mql"


@dataclasses.dataclass
class Native:
    settings: Settings
    config: Path
    run_id: str
    names: list[str]
    scores: pd.DataFrame  # what `leadml score --model models:/NAME/1` wrote


def _score(config: Path, data: Path, out: Path, model: str):
    args = ["score", "--data", str(data), "--as-of", AS_OF, "--out", str(out),
            "--model", model, "--config", str(config), "--no-track"]  # fmt: skip
    return runner.invoke(app, args)


def _read(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / f"as_of={AS_OF}" / "part-0.parquet")


@pytest.fixture(scope="module")
def native(trained_sample, sample_dir, mlflow_template, tmp_path_factory) -> Native:
    """The sample's model logged, registered (version 1) and promoted to champion."""
    folder = tmp_path_factory.mktemp("native")
    settings = store_for_sample(trained_sample, mlflow_template, folder)
    config = folder / "leadml.yaml"
    tracked = log_training(dataclasses.replace(trained_sample, settings=settings), plots=False)
    assert tracked.model_version == 1
    promote(settings, version=1)
    done = _score(config, sample_dir, folder / "scores", f"models:/{NAME}/1")
    assert done.exit_code == 0, done.output
    return Native(settings, config, tracked.run_id, list(trained_sample.feature_names),
                  _read(folder / "scores"))  # fmt: skip


@pytest.fixture(scope="module")
def features(native, sample_data) -> pd.DataFrame:
    """The features of the leads open at AS_OF, as a user would build them."""
    return features_as_of(sample_data, AS_OF)


def _expected(native: Native, lead_ids) -> np.ndarray:
    scores = native.scores.set_index("lead_id")["mql_probability"]
    return scores.loc[list(lead_ids)].to_numpy()


def test_the_pyfunc_returns_mql_probability_as_leadml_score_writes_it(native, features):
    with tracking_uri(native.settings.tracking.uri):
        pyfunc = mlflow.pyfunc.load_model(f"models:/{NAME}/1")
    predicted = pyfunc.predict(features[native.names])
    assert isinstance(predicted, pd.DataFrame)
    assert list(predicted.columns) == ["mql_probability"] and len(predicted) == len(features)
    assert len(native.scores) == len(features) > 50
    expected = _expected(native, features["lead_id"])
    assert np.allclose(predicted["mql_probability"].to_numpy(), expected)
    assert [c.name for c in pyfunc.metadata.get_output_schema().inputs] == ["mql_probability"]


def test_leadml_score_takes_an_alias_another_registered_name_and_a_run(
    native, sample_dir, tmp_path
):
    client = MlflowClient(tracking_uri=native.settings.tracking.uri)
    # Registered by other means: the same logged model under another name, no leadml tags.
    with tracking_uri(native.settings.tracking.uri):
        other = mlflow.register_model(f"runs:/{native.run_id}/model", "crm-mql")
    assert not {k for k in other.tags if k.startswith("leadml.")}
    for model in (f"models:/{NAME}@champion", "models:/crm-mql/1", f"runs:/{native.run_id}/model"):
        out = tmp_path / model.replace("/", "_").replace(":", "").replace("@", "_")
        done = _score(native.config, sample_dir, out, model)
        assert done.exit_code == 0, (model, done.output)
        scores = _read(out)
        assert scores["lead_id"].tolist() == native.scores["lead_id"].tolist()
        assert np.allclose(scores["mql_probability"], native.scores["mql_probability"])
    assert client.get_model_version("crm-mql", "1").run_id == native.run_id


def test_a_registered_model_that_leadml_did_not_log_is_refused(native, sample_dir, tmp_path):
    frame = pd.DataFrame({"x": np.arange(20.0)})
    plain = LogisticRegression().fit(frame, np.arange(20) % 2)
    client = MlflowClient(tracking_uri=native.settings.tracking.uri)
    elsewhere = client.create_experiment("others", artifact_location=tmp_path.as_uri())
    with tracking_uri(native.settings.tracking.uri), mlflow.start_run(experiment_id=elsewhere):
        info = mlflow.sklearn.log_model(plain, name="model", serialization_format="skops",
                                        pip_requirements=["scikit-learn"])  # fmt: skip
        mlflow.register_model(info.model_uri, "someone-elses")
    done = _score(native.config, sample_dir, tmp_path / "out", "models:/someone-elses/1")
    assert done.exit_code == 4, done.output
    assert "models:/someone-elses/1 is not a model leadml can score" in done.output
    assert "Traceback" not in done.output and not (tmp_path / "out").exists()
    done = _score(native.config, sample_dir, tmp_path / "out", "runs:/0123abc/model")
    assert done.exit_code == 5 and "no run '0123abc'" in done.output, done.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@pytest.mark.integration
def test_mlflow_models_serve_answers_with_the_same_probabilities(native, features, tmp_path):
    port = _free_port()
    # MLflow starts `uvicorn` by name: the interpreter's own bin folder goes first on PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = os.environ | {"MLFLOW_TRACKING_URI": native.settings.tracking.uri, "PATH": path}
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{NAME}@champion",
         "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.skip(
                        "mlflow models serve did not start here: "
                        + (tmp_path / "serve.log").read_text()[-500:]
                    )
                time.sleep(0.5)
        rows = features.head(7)
        body = {"dataframe_split": json.loads(rows[native.names].to_json(orient="split",
                                                                         index=False))}  # fmt: skip
        answer = _post(f"http://127.0.0.1:{port}/invocations", body)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        log.close()
    predicted = [row["mql_probability"] for row in answer["predictions"]]
    assert np.allclose(predicted, _expected(native, rows["lead_id"]))


def test_a_version_logged_by_an_earlier_release_still_scores_from_its_runs_export(
    native, trained_sample
):
    """Before the pyfunc, leadml logged the ``sklearn`` flavour (skops) and kept the bundle in the
    run's ``export``: such a version is checked as then and loaded from that export."""
    from leadml.tracking import load_model_file, load_registered

    uri = native.settings.tracking.uri
    client = MlflowClient(tracking_uri=uri)
    export = Path(native.settings.tracking.export_dir) / NAME / "v1"
    metadata = json.loads((export / "metadata.json").read_text())
    model = load_model_file(export / "model.skops")
    with tracking_uri(uri), mlflow.start_run(run_id=native.run_id):
        info = mlflow.sklearn.log_model(
            model, name="legacy", serialization_format="skops", pyfunc_predict_fn="predict_proba",
            skops_trusted_types=metadata["skops_trusted_types"], pip_requirements=["skops"],
        )  # fmt: skip
        client.create_registered_model("legacy-mql")
        version = client.create_model_version("legacy-mql", info.model_uri, run_id=native.run_id)
    client.set_model_version_tag("legacy-mql", version.version, "leadml.model_sha256",
                                 metadata["model_sha256"])  # fmt: skip
    found = load_registered(native.settings, version=int(version.version), name="legacy-mql")
    assert found.metadata["run_id"] == native.run_id and found.metadata["name"] == "legacy-mql"
    rows = trained_sample.frames["test"][native.names].head(50)
    assert np.allclose(found.predict_proba(rows), trained_sample.model.predict_proba(rows)[:, 1])
