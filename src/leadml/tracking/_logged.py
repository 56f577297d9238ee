"""The MLflow model of a training run, logged and read back.

- **Logged** (:func:`log_model`): a pyfunc "from code" (:mod:`leadml.tracking.pyfunc_model`, no
  pickle) whose artifacts are leadml's export bundle: ``model.skops`` and ``metadata.json``.
  ``mlflow.pyfunc.load_model(uri).predict(features)`` returns one column, ``mql_probability``,
  as its signature says; so do ``mlflow models serve`` and ``mlflow.pyfunc.spark_udf``.
- **Read back** (:func:`load_logged`): from a registered version or a run, leadml reads the
  ``MLmodel`` (YAML, safely) and loads the bundle it names through
  :func:`~leadml.modeling.modelfile.load_bundle`, checked against the SHA-256 the tracking
  database recorded; nothing in the model (its code file included) is run. Versions logged
  before the pyfunc (the ``sklearn`` flavour, skops) are read from their run's ``export``.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import mlflow
import pandas as pd
import yaml
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from leadml.errors import ModelIntegrityError, ModelMismatchError, TrackingError
from leadml.modeling.modelfile import (
    METADATA_FILE,
    MODEL_FILE,
    ExportedModel,
    export_owner,
    is_trusted,
    load_bundle,
)
from leadml.tracking._store import without_credentials

#: The one column the logged model's ``predict`` returns.
OUTPUT = "mql_probability"
PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")
_ARTIFACTS = {"model": MODEL_FILE, "metadata": METADATA_FILE}
_CODE_LOADER = "mlflow.pyfunc.loaders.code_model"  # MLflow's loader of a model from code


def log_model(bundle: Path, example: pd.DataFrame, model, pip_requirements: list[str]):
    """Log the model of ``bundle`` (``model.skops`` and ``metadata.json``) in the active run as
    the pyfunc ``model``; return MLflow's ``ModelInfo``."""
    output = pd.DataFrame({OUTPUT: model.predict_proba(example)[:, 1]})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="mlflow")
        warnings.filterwarnings("ignore", message=".*type hint", category=UserWarning)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=PYFUNC_CODE,
            artifacts={key: str(bundle / file) for key, file in _ARTIFACTS.items()},
            signature=infer_signature(example, output),
            input_example=example,
            pip_requirements=pip_requirements,
        )


def load_logged(
    location: str, source: str, recorded: str | None, run_id: str | None, local: Path | None
) -> ExportedModel:
    """Load the logged model at ``location`` (an artifact URI): checked, nothing run.

    Parameters
    ----------
    location
        Where the model's files are (``MLmodel`` and its artifacts).
    source
        How to name the model in messages (``models:/<name>/<version>``, ``runs:/...``).
    recorded
        The SHA-256 of its model file as the tracking database recorded it (the version's tag,
        else the run's): the witness the artifact store alone cannot forge.
    run_id
        The run the model belongs to, if known.
    local
        The export folder that may hold the same run's bundle (read instead of downloading).

    Raises
    ------
    ModelMismatchError
        The files are not a model leadml logged (and nothing says leadml did).
    ModelIntegrityError
        A leadml model whose files fail their checks, or no SHA-256 recorded for it.
    TrackingError
        The files cannot be read.
    """
    with tempfile.TemporaryDirectory(prefix="leadml-logged-") as tmp:
        spec, listed = _read_mlmodel(location, source, Path(tmp) / "spec")
        pyfunc = _is_leadml_pyfunc(spec, listed)
        if not pyfunc:
            why = _not_legacy(spec, listed, run_id)
            if not recorded:  # nothing in the database ties it to leadml: another kind of model
                flavors = spec.get("flavors")
                shown = sorted(flavors) if isinstance(flavors, dict) else flavors
                _refuse(source, why or f"has flavours {shown} and no leadml bundle", leadml=False)
            if why is not None:
                _refuse(source, why, leadml=True)
        if not recorded:
            raise ModelIntegrityError(
                f"{source}: no SHA-256 recorded for its model file in the tracking database (tag "
                "leadml.model_sha256 of the version or of its run; models logged before leadml "
                "recorded one have none): nothing was loaded; retrain to log a model that has one"
            )
        if local is not None and run_id and (export_owner(local) or {}).get("run_id") == run_id:
            exported = load_bundle(local, source=f"{source} (export {local})", sha256=recorded)
        elif pyfunc:
            folder = _download(f"{location.rstrip('/')}/artifacts", source, Path(tmp) / "bundle")
            exported = load_bundle(folder, source=source, sha256=recorded)
        else:  # logged before the pyfunc: the bundle is the run's export
            folder = _download(f"runs:/{run_id}/export", f"{source} (run {run_id})",
                               Path(tmp) / "export")  # fmt: skip
            exported = load_bundle(folder, source=f"{source} (run {run_id})", sha256=recorded)
    if run_id and exported.metadata.get("run_id") != run_id:
        raise ModelIntegrityError(
            f"{source}: its bundle names run {exported.metadata.get('run_id')}, not {run_id}; "
            "nothing was loaded"
        )
    return exported


def _download(uri: str, source: str, dst: Path) -> Path:
    dst.mkdir(parents=True)
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst)))
    except (OSError, MlflowException) as exc:
        raise TrackingError(
            f"{source}: its files cannot be read from "
            f"{without_credentials(mlflow.get_tracking_uri())}: {str(exc)[:300]}"
        ) from None


def _read_mlmodel(location: str, source: str, tmp: Path) -> tuple[dict, set[str]]:
    """The ``MLmodel`` (parsed safely) and the names of the files beside it."""
    try:
        listed = {Path(a.path).name for a in mlflow.artifacts.list_artifacts(location)}
        if "MLmodel" not in listed:
            raise ModelMismatchError(
                f"{source} is not an MLflow model leadml can score: {location} holds no MLmodel "
                f"(files: {', '.join(sorted(listed)[:10]) or 'none'})"
            )
        tmp.mkdir()
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{location.rstrip('/')}/MLmodel", dst_path=str(tmp)
        )
    except (OSError, MlflowException) as exc:
        # Unreachable or deleted artifacts are not a tampered model: the caller may go on
        # without it (training notes "not compared"), where a bad file stops everything.
        raise TrackingError(
            f"{source}: its logged model cannot be read ({type(exc).__name__}: {str(exc)[:200]})"
        ) from None
    try:
        spec = yaml.safe_load(Path(path).read_text())
    except (ValueError, yaml.YAMLError) as exc:
        raise ModelIntegrityError(
            f"{source}: its logged model has no readable MLmodel ({type(exc).__name__}: "
            f"{str(exc)[:200]}); nothing was loaded"
        ) from None
    return (spec if isinstance(spec, dict) else {}), listed


def _refuse(source: str, why: str, *, leadml: bool) -> None:
    """A model leadml recorded (a SHA-256 in the database) whose files say otherwise was
    tampered with (exit 11); one nothing ties to leadml is another kind of model (exit 4)."""
    if leadml:
        raise ModelIntegrityError(
            f"{source}: its logged model {why}; leadml stores models with skops only (a pickle "
            "or cloudpickle flavour runs code when loaded): refusing it, nothing was loaded"
        )
    raise ModelMismatchError(
        f"{source} is not a model leadml can score: its logged model {why}. leadml scores the "
        "models it logs (a pyfunc whose artifacts are model.skops and metadata.json), "
        "registered under any name"
    )


def _is_leadml_pyfunc(spec: dict, listed: set[str]) -> bool:
    """Whether ``spec`` is the pyfunc :func:`log_model` writes: one flavour, leadml's code file,
    and exactly its two artifacts."""
    flavors = spec.get("flavors")
    if not isinstance(flavors, dict) or set(flavors) != {"python_function"}:
        return False
    pyfunc = flavors["python_function"] or {}
    artifacts = pyfunc.get("artifacts") or {}
    paths = {
        key: (value or {}).get("path") if isinstance(value, dict) else None
        for key, value in artifacts.items()
    }
    return (
        pyfunc.get("loader_module") == _CODE_LOADER
        and Path(str(pyfunc.get("model_code_path"))).name == PYFUNC_CODE.name
        and not pyfunc.get("code")
        and paths == {key: f"artifacts/{file}" for key, file in _ARTIFACTS.items()}
        and {"artifacts", PYFUNC_CODE.name} <= listed
    )


def _not_legacy(spec: dict, listed: set[str], run_id: str | None) -> str | None:
    """Why ``spec`` is not the ``sklearn`` flavour leadml logged before the pyfunc (serialised
    with skops, trusting only the types :func:`~leadml.modeling.modelfile.trusted_types`
    trusts, no code path, loaded by ``mlflow.sklearn``), or None if it is."""
    flavors = spec.get("flavors")
    if not isinstance(flavors, dict) or set(flavors) != {"python_function", "sklearn"}:
        shown = sorted(flavors) if isinstance(flavors, dict) else flavors
        pyfunc = (flavors or {}).get("python_function") if isinstance(flavors, dict) else None
        if shown == ["python_function"] and isinstance(pyfunc, dict):
            return _not_pyfunc(pyfunc)
        return f"has flavours {shown}, not leadml's (python_function from {PYFUNC_CODE.name})"
    sklearn, pyfunc = flavors["sklearn"] or {}, flavors["python_function"] or {}
    if sklearn.get("serialization_format") != "skops":
        return f"is serialised as {sklearn.get('serialization_format')!r}, not skops"
    if pyfunc.get("loader_module") != "mlflow.sklearn":
        return f"is loaded by {pyfunc.get('loader_module')!r}, not mlflow.sklearn"
    if sklearn.get("code") or pyfunc.get("code"):
        return "ships code to import"
    unsafe = [t for t in sklearn.get("skops_trusted_types") or [] if not is_trusted(str(t))]
    if unsafe:
        return f"trusts types leadml does not trust: {', '.join(map(str, unsafe))}"
    stored = sklearn.get("pickled_model")
    if not isinstance(stored, str) or not stored.endswith(".skops") or stored not in listed:
        return f"names model file {stored!r}, which is not a skops file beside it"
    if spec.get("run_id") not in (None, run_id):
        return f"comes from run {spec.get('run_id')}, not the version's run {run_id}"
    if not run_id:
        return "has no run to read its export from"
    return None


def _not_pyfunc(pyfunc: dict) -> str:
    """Why a lone python_function flavour is not the one :func:`log_model` writes."""
    if pyfunc.get("loader_module") == "mlflow.pyfunc.model":
        return f"is a pickled python_model ({pyfunc.get('python_model')!r}), not code from a file"
    if pyfunc.get("loader_module") != _CODE_LOADER:
        return f"is loaded by {pyfunc.get('loader_module')!r}, not {_CODE_LOADER}"
    code = Path(str(pyfunc.get("model_code_path"))).name
    if code != PYFUNC_CODE.name:
        return f"runs the code file {code!r}, not leadml's {PYFUNC_CODE.name}"
    if pyfunc.get("code"):
        return "ships code to import"
    return (
        f"names artifacts {pyfunc.get('artifacts')}, not leadml's "
        f"{{model: artifacts/{MODEL_FILE}, metadata: artifacts/{METADATA_FILE}}}"
    )
