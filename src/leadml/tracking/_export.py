"""Export bundles: written at training, installed in the export folder, fetched from a run.

- **Export** (``tracking.export_dir``, default ``models/``): ``<model_name>/v<N>/`` with
  ``model.skops``, ``metadata.json`` and ``MODEL_CARD.md``, plus ``<model_name>/aliases.json``
  naming the challenger and champion versions, so scoring can run without a tracking server
  (:func:`leadml.modeling.modelfile.load_exported`). Written atomically (a temporary folder renamed
  into place); an export of another store's version of the same number is never replaced silently.
- The same bundle is logged as the run's ``export`` artifacts (promotion installs it from there)
  and is the logged MLflow model's artifacts (:mod:`._logged`): :func:`load_registered` loads a
  registered version from its own files (or from the local export of the same run), and
  :func:`load_run_model` a run's model, checking the file's SHA-256 against the one the
  tracking database recorded.

The folder layout and the checks on loading are :mod:`leadml.modeling.modelfile`'s.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from leadml.common.atomic import new_dir, scratch_dir
from leadml.common.safe_text import shorten_json
from leadml.errors import TrackingError
from leadml.modeling.modelfile import (
    CHAMPION,
    METADATA_FILE,
    MODEL_FILE,
    SHA256_TAG,
    ExportedModel,
    export_owner,
    load_bundle,
)
from leadml.tracking._logged import load_logged
from leadml.tracking._store import (
    TrackingUnavailable,
    connected,
    quick_failure,
    resolve_tracking_uri,
    sqlite_path,
    without_credentials,
)

if TYPE_CHECKING:
    from leadml.config import Settings
    from leadml.modeling.training import TrainingResult
    from leadml.tracking._runs import TrackedRun

_REQUIREMENTS = ("mlflow", "scikit-learn", "skops", "numpy", "scipy", "pandas")


def requirements(result: TrainingResult) -> list[str]:
    """Pinned requirements of a logged model, with those its input adds (a flat-export model
    needs leadml itself: its first step is :class:`leadml.flat.FlatPreprocessor`)."""
    packages = (*_REQUIREMENTS, *result.inputs.requirements)
    pins = []
    for package in packages:
        try:
            pins.append(f"{package}=={installed_version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    return pins


def export_metadata(
    result: TrainingResult, tracked: TrackedRun, types: list[str], store: dict | None = None
) -> dict:
    settings = result.settings
    example = result.input_example
    windows = {
        window: {
            "first_snapshot": f"{row.get('first_snapshot')}",
            "last_snapshot": f"{row.get('last_snapshot')}",
            "snapshots": int(row["snapshots"]) if pd.notna(row.get("snapshots")) else None,
            "rows": int(row["rows"]),
            "positives": int(row["positives"]),
        }
        for window, row in result.windows.iterrows()
    }
    metrics = {
        k: (None if isinstance(v, float) and math.isnan(v) else float(v))
        for k, v in result.evaluation.metrics.items()
    }
    leakage = getattr(result, "leakage", None)
    return {
        "name": tracked.model_name,
        "version": tracked.model_version,
        # What the model reads: "events" (leadml's point-in-time features) or "flat" (the
        # columns of a flat export, as read by leadml.flat.read_flat), and what scoring a new
        # input needs to know of it (None for the events).
        "input": result.inputs.kind,
        "validation": getattr(result, "validation", "time"),
        "flat": result.inputs.export_metadata(),
        "leakage": shorten_json(leakage.to_dict()) if leakage is not None else None,
        "run_id": tracked.run_id,
        "tracking_uri": without_credentials(tracked.tracking_uri),
        # Which store the version number belongs to: an export of another store's version N is
        # never silently replaced (see _install_export).
        "store": store,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model_file": MODEL_FILE,
        "model_sha256": tracked.model_sha256,
        "format": "skops",
        "skops_trusted_types": types,
        "predicts": "predict_proba(features)[:, 1] = probability of conversion",
        "family": result.family,
        "params": {k: v for k, v in result.params.items()},
        "calibration": (
            str(result.calibration.loc[0, "method"]) if result.calibration is not None else None
        ),
        "prior_shift": {
            window: None if shift is None else {"log_odds": shift.shift, "applied": shift.applied}
            for window, shift in (getattr(result, "prior_shift", None) or {}).items()
        },
        "fitness": tracked.fitness_tags().get("leadml.fitness"),
        "feature_names": list(result.feature_names),
        "feature_dtypes": (
            {c: str(example[c].dtype) for c in result.feature_names} if example is not None else {}
        ),
        "target": {
            "stage": settings.target.stage,
            "horizon_days": settings.target.horizon_days,
        },
        "windows": windows,
        "metrics": metrics,
        "champion_at_training": {
            "version": tracked.champion_version,
            "metrics": tracked.champion_metrics,
            "note": tracked.champion_note,
        },
        "leadml_version": _version("leadml"),
        "requirements": requirements(result),
        # For nightly scoring (leadml.scoring): drift and reasons compare against this.
        "reference": _reference_profile(result),
    }


def _reference_profile(result: TrainingResult) -> dict | None:
    """Distributions of the features and of the probability on the test window (scored out of
    sample, so like tonight's leads), at most 200,000 rows; None without a test window."""
    from leadml.data.profiles import reference_profile

    frame = (getattr(result, "frames", None) or {}).get("test")
    if frame is None or result.test is None or not len(frame):
        return None
    features = frame[list(result.feature_names)]
    scores = result.test["model_probability"].to_numpy()
    if len(features) > 200_000:
        keep = np.random.default_rng(0).choice(len(features), 200_000, replace=False)
        features, scores = features.iloc[np.sort(keep)], scores[np.sort(keep)]
    return reference_profile(features, scores if len(scores) == len(frame) else None)


def _version(package: str) -> str | None:
    try:
        return installed_version(package)
    except PackageNotFoundError:
        return None


# --------------------------------------------------------------------------------------------
# The export folder: installed atomically, never over another store's version


class ExportConflict(TrackingError):
    """The export folder of a version already holds another run's model (from another tracking
    store, or a deleted version's): nothing was replaced."""


def store_identity(client: MlflowClient, uri: str, name: str, experiment_id: str) -> dict:
    """What tells this store apart from another one that also has a version N of ``name``."""
    try:
        created = client.get_registered_model(name).creation_timestamp
    except MlflowException:
        created = None
    return {
        "tracking_uri": without_credentials(uri),
        "experiment_id": experiment_id,
        "registered_model_created": created,
    }


def refuse_foreign_export(folder: Path, run_id: str | None, uri: str, force: bool) -> None:
    """Raise :class:`ExportConflict` if ``folder`` holds the export of a run other than
    ``run_id`` (None: any run, the one to come), unless ``force``."""
    owner = export_owner(folder)
    if force or owner is None or (run_id is not None and owner.get("run_id") == run_id):
        return
    store = owner.get("store") or {}
    where = store.get("tracking_uri") or owner.get("tracking_uri") or "an unknown store"
    ours = f"run {run_id}" if run_id else "this training run"
    raise ExportConflict(
        f"{folder} holds version {owner.get('version', '?')} of run {owner.get('run_id')} from "
        f"{where} (exported {owner.get('created_at', 'at an unknown time')}); {ours} in "
        f"{without_credentials(uri)} would replace it: nothing was written. Use another "
        "tracking.export_dir, or --force (force=True) to replace it"
    )


def install_export(
    export_dir: Path, name: str, version: int, bundle: Path, *, uri: str, force: bool = False
) -> Path:
    """Copy ``bundle`` to ``export_dir/name/v<version>`` atomically: readers see the old
    folder or the new one, never half of either. An export of another run there is refused
    (:class:`ExportConflict`) unless ``force``."""
    home = export_dir / name
    target = home / f"v{version}"
    run_id = json.loads((bundle / METADATA_FILE).read_text()).get("run_id")
    refuse_foreign_export(target, run_id, uri, force)
    home.mkdir(parents=True, exist_ok=True)
    staging = new_dir(home, f".v{version}-")  # readable like any folder, unlike mkdtemp's
    try:
        shutil.copytree(bundle, staging, dirs_exist_ok=True)
        if target.exists():
            # The same run exported again, or force: replace it.
            retired = new_dir(home, f".old-v{version}-")
            os.replace(target, retired / "v")
            os.replace(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def install_champion(
    settings: Settings, version: int, tags: Mapping[str, str], force: bool = False
) -> Path | None:
    """The export folder of ``version``, fetching its bundle from the run (checked against the
    registry's hash first) if this machine has not exported it yet; None if the run has none."""
    export_dir = Path(settings.tracking.export_dir)
    name = settings.tracking.model_name
    folder = export_dir / name / f"v{version}"
    run_id = tags.get("leadml.run_id")
    owner = export_owner(folder)
    if owner is None or owner.get("run_id") != run_id:
        if not run_id:
            return None
        uri = resolve_tracking_uri(settings)
        with connected(uri), scratch_dir("export") as tmp:
            try:
                bundle = Path(mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path="export", dst_path=tmp))  # fmt: skip
            except Exception:
                return None
            load_bundle(bundle, source=f"models:/{name}/{version} (run {run_id})",
                        sha256=tags.get(SHA256_TAG))  # fmt: skip
            install_export(export_dir, name, version, bundle, uri=uri, force=force)
    return folder


# --------------------------------------------------------------------------------------------
# Loading a registered version: its run's export, checked


_NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}


def load_registered(
    settings: Settings, alias: str | None = CHAMPION, version: int | None = None,
    name: str | None = None,
) -> ExportedModel:  # fmt: skip
    """The model and metadata of a registered version, by ``version``, else by ``alias``: read
    from the version's own files (any name it was registered under), or from
    ``tracking.export_dir`` when that holds the same run's export.

    The version's logged model must be leadml's (:func:`load_logged`) and its model file must
    match the SHA-256 tagged on the version at registration, else on its run (see
    :func:`load_bundle`).

    Raises
    ------
    TrackingUnavailable
        The store cannot be reached (a SQLite file that does not exist counts: it is never
        created here).
    TrackingError
        No such alias or version, or its files cannot be read.
    ModelMismatchError
        The version is not a model leadml logged.
    ModelIntegrityError
        The stored model failed its checks; nothing was loaded.
    """
    uri = resolve_tracking_uri(settings)
    name = name or settings.tracking.model_name
    shown = without_credentials(uri)
    database = sqlite_path(uri)
    if database is not None and not database.exists():
        raise TrackingUnavailable(f"no tracking database at {database}")
    wanted = f"version {version}" if version is not None else f"alias {alias!r}"
    with quick_failure():
        client = MlflowClient(tracking_uri=uri)
        try:
            found = (client.get_model_version(name, str(version)) if version is not None
                     else client.get_model_version_by_alias(name, alias))  # fmt: skip
        except MlflowException as exc:
            if exc.error_code in _NOT_FOUND:
                raise TrackingError(
                    f"model {name!r} has no {wanted} in {shown}: train one ('leadml train') "
                    f"and promote it ('leadml promote')"
                ) from None
            raise TrackingUnavailable(f"MLflow at {shown}: {exc.message}") from exc
        except Exception as exc:  # connection refused, DNS, timeouts: all mean "unreachable"
            raise TrackingUnavailable(f"MLflow at {shown}: {type(exc).__name__}: {exc}") from exc
        with connected(uri) as client:
            return load_version(client, found, Path(settings.tracking.export_dir))


def load_version(client: MlflowClient, found, export_dir: Path) -> ExportedModel:
    """Load registered version ``found`` from its own files (:func:`load_logged`: checked, nothing
    run), or from the local export when it holds the same run's bundle. Call inside
    :func:`connected` (downloads go to the fluent tracking URI)."""
    name, number, run_id = found.name, int(found.version), found.run_id
    recorded = found.tags.get(SHA256_TAG) or _run_tag(client, run_id, SHA256_TAG)
    location = client.get_model_version_download_uri(name, str(number))
    source = f"models:/{name}/{number}"
    exported = load_logged(location, source, recorded, run_id, export_dir / name / f"v{number}")
    # Named as the registry names it: a version registered by other means may differ.
    metadata = exported.metadata | {"name": name, "version": number}
    return ExportedModel(exported.model, metadata, Path(source))


def load_run_model(settings: Settings, run_id: str, path: str = "model") -> ExportedModel:
    """The model a run logged at ``path`` (``runs:/<run_id>/<path>``), checked like a registered
    version's against the SHA-256 tagged on the run.

    Raises
    ------
    TrackingUnavailable
        The store cannot be reached.
    TrackingError
        No such run, or nothing readable at ``path``.
    ModelMismatchError
        The run's model there is not one leadml logged.
    ModelIntegrityError
        The stored model failed its checks; nothing was loaded.
    """
    uri = resolve_tracking_uri(settings)
    shown = without_credentials(uri)
    database = sqlite_path(uri)
    if database is not None and not database.exists():
        raise TrackingUnavailable(f"no tracking database at {database}")
    source = f"runs:/{run_id}/{path.strip('/')}"
    with quick_failure():
        client = MlflowClient(tracking_uri=uri)
        try:
            run = client.get_run(run_id)
        except MlflowException as exc:
            if exc.error_code in _NOT_FOUND:
                raise TrackingError(f"{source}: no run {run_id!r} in {shown}") from None
            raise TrackingUnavailable(f"MLflow at {shown}: {exc.message}") from exc
        except Exception as exc:  # connection refused, DNS, timeouts: all mean "unreachable"
            raise TrackingUnavailable(f"MLflow at {shown}: {type(exc).__name__}: {exc}") from exc
        with connected(uri):
            exported = load_logged(source, source, run.data.tags.get(SHA256_TAG), run_id, None)
    return ExportedModel(exported.model, exported.metadata, Path(source))


def _run_tag(client: MlflowClient, run_id: str | None, key: str) -> str | None:
    if not run_id:
        return None
    try:
        return client.get_run(run_id).data.tags.get(key)
    except MlflowException:
        return None
