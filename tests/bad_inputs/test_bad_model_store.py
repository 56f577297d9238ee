"""Tampered model stores: every stored model leadml loads goes through one checked loader
(``leadml.tracking.load_bundle``), and exports of different stores never overwrite each other.

Real MLflow SQLite stores, real skops files, the real command line; each case asserts the exit
code, the message, and that nothing was written or run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import pickle
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import mlflow
import pytest
import skops.io
import yaml
from mlflow.tracking import MlflowClient
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from flat_helpers import export_frame, fast_settings, write_csv
from leadml.cli import app
from leadml.config import Settings
from leadml.errors import ModelIntegrityError, TrackingError
from leadml.tracking import (
    ExportConflict,
    load_bundle,
    load_exported,
    load_model_file,
    load_registered,
    log_training,
    promote,
)
from tracking_helpers import make_result, settings_for, tracking_uri

runner = CliRunner()
FLAT = "leadml-mql-flat"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """On data this small, BLAS and OpenMP threads only add overhead."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def trained():
    return make_result(Settings())


@pytest.fixture
def logged(trained, store):
    """Version 1 of ``leadml-mql`` logged, registered and exported to a fresh store."""
    tracked = log_training(dataclasses.replace(trained, settings=store), plots=False)
    export = Path(store.tracking.export_dir) / "leadml-mql" / "v1"
    return store, tracked, export


class Payload:
    """What an attacker puts in a pickle: loading it creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _path(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: to show nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _config(settings: Settings, folder: Path, uri: str | None = None) -> Path:
    fast = fast_settings().model_dump(mode="json")
    path = folder / f"leadml-{abs(hash(uri or settings.tracking.uri))}.yaml"
    tracking = {"uri": uri or settings.tracking.uri, "export_dir": settings.tracking.export_dir}
    path.write_text(yaml.safe_dump({"model": fast["model"], "tracking": tracking}))
    return path


def _train_flat(config: Path, export: Path, *extra: str):
    args = ["train", "--flat", str(export), "--target", "Converted", "--id", "Lead ID",
            "--time", "Created", "--config", str(config), "--no-plots", *extra]  # fmt: skip
    return runner.invoke(app, args)


def _score_flat(config: Path, export: Path, out: Path, model: str):
    args = ["score", "--flat", str(export), "--out", str(out), "--model", model,
            "--config", str(config)]  # fmt: skip
    return runner.invoke(app, args)


def _altered_calibrator(path: Path) -> None:
    """Re-dump the model in ``path`` with its sigmoid pushed to near-zero probabilities: a valid,
    trusted skops file that predicts nonsense."""
    model = load_model_file(path)
    model.calibrated_classifiers_[0].calibrators[0].b_ = 12.0
    skops.io.dump(model, path)


# --- code from the model store -----------------------------------------------------------------


def test_a_champion_switched_to_cloudpickle_runs_nothing_at_train_or_score(store, tmp_path):
    config = _config(store, tmp_path)
    leads = write_csv(export_frame(900, seed=4, leaks=False), tmp_path / "leads.csv")
    done = _train_flat(config, leads)
    assert done.exit_code == 0, done.output
    assert (
        runner.invoke(app, ["promote", "--flat", "--version", "1", "-c", str(config)]).exit_code
        == 0
    )

    # The attack: the champion's MLmodel now says cloudpickle, and its pickle writes a marker.
    client = MlflowClient(tracking_uri=store.tracking.uri)
    logged = _path(client.get_model_version_download_uri(FLAT, "1"))
    marker = tmp_path / "payload-ran"
    (logged / "python_model.pkl").write_bytes(pickle.dumps(Payload(marker)))
    spec = yaml.safe_load((logged / "MLmodel").read_text())
    pyfunc = spec["flavors"]["python_function"]
    pyfunc.update(loader_module="mlflow.pyfunc.model", python_model="python_model.pkl")
    del pyfunc["model_code_path"]
    (logged / "MLmodel").write_text(yaml.safe_dump(spec))
    exports = _snapshot(Path(store.tracking.export_dir))
    runs = len(client.search_runs([v.experiment_id for v in client.search_experiments()]))

    # leadml train: the champion comparison refuses it; nothing logged, registered or exported.
    done = _train_flat(config, leads)
    assert done.exit_code == 11, done.output
    assert f"models:/{FLAT}/1: its logged model is a pickled python_model" in done.output
    assert "refusing it, nothing was loaded" in done.output and "Traceback" not in done.output
    assert not marker.exists()
    assert len(client.search_model_versions(f"name = '{FLAT}'")) == 1
    assert len(client.search_runs([v.experiment_id for v in client.search_experiments()])) == runs
    assert _snapshot(Path(store.tracking.export_dir)) == exports

    # leadml score --model models:/...: by alias and by version, no scores written.
    new = write_csv(export_frame(50, seed=3, leaks=False), tmp_path / "new.csv")
    for uri in (f"models:/{FLAT}@champion", f"models:/{FLAT}/1"):
        done = _score_flat(config, new, tmp_path / "scores.parquet", uri)
        assert done.exit_code == 11, done.output
        assert "a pickled python_model ('python_model.pkl')" in done.output
        assert not marker.exists() and not (tmp_path / "scores.parquet").exists()

    # The payload is live: MLflow's own loader runs it (which is why leadml never calls it).
    with tracking_uri(store.tracking.uri), contextlib.suppress(Exception):
        mlflow.pyfunc.load_model(f"models:/{FLAT}/1")
    assert marker.exists()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f["python_function"].update(loader_module="evil"),
         "is loaded by 'evil', not mlflow.pyfunc.loaders.code_model"),
        (lambda f: f.update(custom={"anything": 1}), "has flavours ['custom', 'python_function'"),
        (lambda f: f["python_function"].update(code="code"), "ships code to import"),
        (lambda f: f["python_function"].update(model_code_path="/elsewhere/evil.py"),
         "runs the code file 'evil.py', not leadml's pyfunc_model.py"),
        (lambda f: f["python_function"]["artifacts"]["model"].update(path="artifacts/gone.skops"),
         "names artifacts"),
    ],
)  # fmt: skip
def test_a_logged_model_that_is_not_leadmls_is_refused(logged, change, message):
    store = logged[0]
    client = MlflowClient(tracking_uri=store.tracking.uri)
    folder = _path(client.get_model_version_download_uri("leadml-mql", "1"))
    spec = yaml.safe_load((folder / "MLmodel").read_text())
    change(spec["flavors"])
    (folder / "MLmodel").write_text(yaml.safe_dump(spec))
    with pytest.raises(ModelIntegrityError, match="models:/leadml-mql/1: its logged model") as e:
        load_registered(store, version=1)
    assert message in str(e.value) and e.value.exit_code == 11


# --- exported and registered model files are verified ------------------------------------------


def test_an_altered_calibrator_is_refused_from_the_export_and_from_the_registry(logged, tmp_path):
    store, _, export = logged
    config = _config(store, tmp_path)
    new = write_csv(export_frame(50, seed=3, leaks=False), tmp_path / "new.csv")
    out = tmp_path / "scores.parquet"
    recorded = json.loads((export / "metadata.json").read_text())["model_sha256"]
    assert recorded == _sha(export / "model.skops")

    # The export: its model file no longer matches metadata.json.
    _altered_calibrator(export / "model.skops")
    found = _sha(export / "model.skops")
    done = _score_flat(config, new, out, str(export))
    assert done.exit_code == 11, done.output
    assert (
        f"{export}/model.skops has SHA-256 {found[:12]}…, but {recorded[:12]}… was " in done.output
    )
    assert "recorded in metadata.json at export" in done.output and not out.exists()

    # Both altered consistently: the folder alone cannot tell, the registry's tag can.
    meta = json.loads((export / "metadata.json").read_text())
    (export / "metadata.json").write_text(json.dumps(meta | {"model_sha256": found}))
    done = _score_flat(config, new, out, "models:/leadml-mql/1")
    assert done.exit_code == 11, done.output
    assert f"but the registry recorded {recorded[:12]}… (leadml.model_sha256)" in done.output
    assert not out.exists()

    # The registry without the local export: the registered model's own file was altered.
    shutil.rmtree(export)
    client = MlflowClient(store.tracking.uri)
    logged = _path(client.get_model_version_download_uri("leadml-mql", "1"))
    _altered_calibrator(logged / "artifacts" / "model.skops")
    with pytest.raises(ModelIntegrityError, match=r"models:/leadml-mql/1: .*has SHA-256"):
        load_registered(store, version=1)


@pytest.mark.parametrize("model_file", ["../../../outside.skops", "ABSOLUTE"])
def test_a_model_file_outside_the_export_folder_is_refused(logged, tmp_path, model_file):
    store, _, export = logged
    outside = tmp_path / "outside.skops"
    shutil.copyfile(export / "model.skops", outside)  # valid and trusted: only its place is wrong
    model_file = str(outside) if model_file == "ABSOLUTE" else model_file
    meta = json.loads((export / "metadata.json").read_text())
    (export / "metadata.json").write_text(json.dumps(meta | {"model_file": model_file}))
    if model_file.startswith(".."):
        assert (export / model_file).resolve() == outside
    new = write_csv(export_frame(50, seed=3, leaks=False), tmp_path / "new.csv")
    done = _score_flat(_config(store, tmp_path), new, tmp_path / "s.csv", str(export))
    assert done.exit_code == 11, done.output
    assert f"model_file {model_file!r} in metadata.json leads outside the export folder" in (
        done.output.replace("\n", " ")
    )
    assert not (tmp_path / "s.csv").exists()


@pytest.mark.parametrize("rehash", [False, True])
def test_a_pickle_in_place_of_the_model_file_is_refused_without_running_it(
    logged, tmp_path, rehash
):
    store, _, export = logged
    marker = tmp_path / "payload-ran"
    (export / "model.skops").write_bytes(pickle.dumps(Payload(marker)))
    if rehash:  # metadata.json altered too: the format check still stands
        meta = json.loads((export / "metadata.json").read_text())
        meta["model_sha256"] = _sha(export / "model.skops")
        (export / "metadata.json").write_text(json.dumps(meta))
    new = write_csv(export_frame(50, seed=3, leaks=False), tmp_path / "new.csv")
    done = _score_flat(_config(store, tmp_path), new, tmp_path / "s.csv", str(export))
    assert done.exit_code == 11, done.output
    expected = "not a skops file (a skops file is a zip archive" if rehash else "has SHA-256"
    assert expected in done.output and str(export) in done.output
    assert "Traceback" not in done.output and "BadZipFile" not in done.output
    assert not marker.exists() and not (tmp_path / "s.csv").exists()
    with pytest.raises(ModelIntegrityError):
        load_exported(store.tracking.export_dir, "leadml-mql", alias="challenger")


def test_an_export_without_a_recorded_hash_is_refused(logged):
    _, _, export = logged
    meta = json.loads((export / "metadata.json").read_text())
    del meta["model_sha256"]
    (export / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelIntegrityError, match=r"records no model_sha256 for model\.skops"):
        load_bundle(export)


# --- exports of two stores ---------------------------------------------------------------------


def test_an_export_from_another_store_is_kept_unless_forced(store, mlflow_template, tmp_path):
    leads = write_csv(export_frame(900, seed=4, leaks=False), tmp_path / "leads.csv")
    first = _config(store, tmp_path)
    assert _train_flat(first, leads).exit_code == 0
    home = Path(store.tracking.export_dir) / FLAT
    before = _snapshot(home)
    owner = json.loads((home / "v1" / "metadata.json").read_text())
    assert owner["store"]["tracking_uri"] == store.tracking.uri and owner["run_id"]

    # Store B, same export folder: its version 1 is refused before anything is logged.
    (tmp_path / "b").mkdir()
    shutil.copyfile(mlflow_template, tmp_path / "b" / "mlflow.db")
    other = f"sqlite:///{tmp_path / 'b' / 'mlflow.db'}"
    second = _config(store, tmp_path, uri=other)
    done = _train_flat(second, leads)
    assert done.exit_code == 5, done.output
    assert f"holds version 1 of run {owner['run_id']} from {store.tracking.uri}" in done.output
    assert "nothing was written" in done.output and "--force" in done.output
    assert _snapshot(home) == before
    client = MlflowClient(tracking_uri=other)
    assert client.search_registered_models() == []
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []

    # --force replaces it, and the export then names store B's run.
    done = _train_flat(second, leads, "--force")
    assert done.exit_code == 0, done.output
    replaced = json.loads((home / "v1" / "metadata.json").read_text())
    version = client.get_model_version(FLAT, "1")
    assert replaced["run_id"] == version.run_id != owner["run_id"]
    assert replaced["store"]["tracking_uri"] == other


def test_promoting_over_another_stores_export_moves_nothing(logged, trained, mlflow_template):
    store, tracked, export = logged
    folder = Path(store.tracking.export_dir).parent / "b"
    folder.mkdir()
    shutil.copyfile(mlflow_template, folder / "mlflow.db")
    tracking = {"uri": settings_for(folder).tracking.uri, "export_dir": store.tracking.export_dir}
    other = Settings.model_validate({"tracking": tracking})
    before = _snapshot(export.parent)
    log_training(dataclasses.replace(trained, settings=other), plots=False, export=False)
    with pytest.raises(ExportConflict, match=f"holds version 1 of run {tracked.run_id}") as e:
        promote(other, version=1)
    assert e.value.exit_code == 5 and isinstance(e.value, TrackingError)
    assert _snapshot(export.parent) == before
    versions = MlflowClient(tracking_uri=other.tracking.uri).get_registered_model("leadml-mql")
    assert "champion" not in versions.aliases


def test_a_tampered_bundle_fetched_at_promotion_moves_no_alias(logged):
    """The champion's bundle comes from its run when this machine never exported it: it is
    verified before the registry's alias or the export's moves."""
    store, tracked, export = logged
    client = MlflowClient(tracking_uri=store.tracking.uri)
    shutil.rmtree(export)  # another machine: the bundle must come from the run
    artifacts = _path(client.get_run(tracked.run_id).info.artifact_uri)
    _altered_calibrator(artifacts / "export" / "model.skops")
    with pytest.raises(ModelIntegrityError, match=r"model\.skops"):
        promote(store, version=1)
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.get_model_version_by_alias("leadml-mql", "champion")
    aliases = json.loads((export.parent / "aliases.json").read_text())
    assert "champion" not in aliases
