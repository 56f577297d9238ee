"""Model files and export folders: everything scoring needs to load a model, without MLflow.

- **Model files** are skops, not pickle: loading one runs no arbitrary code, and the only types
  trusted beyond skops' defaults are scikit-learn, NumPy and SciPy internals, ``functools.partial``
  and leadml's own :class:`~leadml.flat.FlatPreprocessor` and
  :class:`~leadml.modeling.points_model.PointsClassifier` (checked, never trusted blindly).
- **Export bundle**: ``model.skops``, ``metadata.json`` (feature names, the file's SHA-256,
  the training reference; :mod:`leadml.tracking` writes it) and ``MODEL_CARD.md``.
- **Export folder** (``tracking.export_dir``): ``<model_name>/v<N>/`` holds a bundle, and
  ``<model_name>/aliases.json`` names the challenger and champion versions.

:func:`load_bundle` is the one way leadml loads a stored model, whatever its source: it checks
the path, the SHA-256 and the skops types before anything is built from the file. This module
imports no MLflow, so the nightly scorer can run from an export alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skops.io

from leadml.common.atomic import write_atomic
from leadml.errors import ModelIntegrityError, TrackingError

CHALLENGER, CHAMPION = "challenger", "champion"
MODEL_FILE, METADATA_FILE, CARD_FILE, ALIASES_FILE = (
    "model.skops",
    "metadata.json",
    "MODEL_CARD.md",
    "aliases.json",
)
#: The version tag holding the SHA-256 of the exported model file: the registry's witness.
SHA256_TAG = "leadml.model_sha256"
#: Types a stored model may reference beyond skops' defaults: library internals only.
_SAFE_TYPE_PREFIXES = ("sklearn.", "numpy.", "scipy.")
_SAFE_TYPES = frozenset({
    "functools.partial",  # skops checks the function it wraps separately
    # The column handling of flat-export models: leadml's own class, whose state is plain data.
    "leadml.flat.preprocess.FlatPreprocessor",
    # The learned points table as a model: leadml's own class, whose state is plain data.
    "leadml.modeling.points_model.PointsClassifier",
})  # fmt: skip


# --------------------------------------------------------------------------------------------
# skops: safe model files


def is_trusted(name: str) -> bool:
    """Whether a type a stored model references may be loaded (see :func:`trusted_types`)."""
    return name.startswith(_SAFE_TYPE_PREFIXES) or name in _SAFE_TYPES


def trusted_types(path: str | os.PathLike) -> list[str]:
    """The types a skops file needs trusted beyond skops' defaults, if all are safe.

    Only reads the file's schema: nothing in it is built or run.

    Raises
    ------
    ModelIntegrityError
        If the file is not a skops file (a pickle, say), or references anything but
        scikit-learn, NumPy or SciPy internals, ``functools.partial`` or leadml's
        ``FlatPreprocessor`` and ``PointsClassifier``.
    """
    if not zipfile.is_zipfile(path):
        raise ModelIntegrityError(
            f"{path}: not a skops file (a skops file is a zip archive; a pickle or any other "
            "format can run code when loaded); refusing to load it"
        )
    try:
        untrusted = skops.io.get_untrusted_types(file=path)
    except Exception as exc:  # a zip without skops' schema: parsing it ran nothing
        raise ModelIntegrityError(
            f"{path}: not a readable skops file ({type(exc).__name__}: {exc}); refusing to load it"
        ) from None
    unsafe = [t for t in untrusted if not is_trusted(t)]
    if unsafe:
        raise ModelIntegrityError(
            f"{path}: the model file references types leadml does not trust: "
            f"{', '.join(unsafe)}; refusing to load it"
        )
    return untrusted


def load_model_file(path: str | os.PathLike):
    """Load a skops model file after checking every type it references (see
    :func:`trusted_types`). Use :func:`load_bundle` for a stored model: it also checks the
    file's SHA-256."""
    types = trusted_types(path)
    try:
        return skops.io.load(path, trusted=types)
    except Exception as exc:  # types checked: a version mismatch or a damaged archive
        raise ModelIntegrityError(
            f"{path}: the skops file passed its type check but cannot be loaded "
            f"({type(exc).__name__}: {str(exc)[:200]})"
        ) from None


def save_model_file(model: Any, path: str | os.PathLike) -> tuple[str, list[str]]:
    """Write ``model`` as a skops file at ``path``; return its SHA-256 and the types it needs
    trusted (checked now as :func:`load_model_file` will check them)."""
    skops.io.dump(model, path)
    return file_sha256(path), trusted_types(path)


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, in hex."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


# --------------------------------------------------------------------------------------------
# Export bundles and folders


def write_bundle(folder: Path, model_file: Path, metadata: dict, card: str) -> None:
    """Write an export bundle in the new folder ``folder``: a copy of the model file, the
    metadata and the model card."""
    folder.mkdir(parents=True)
    shutil.copyfile(model_file, folder / MODEL_FILE)
    (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str) + "\n")
    (folder / CARD_FILE).write_text(card)


def export_owner(folder: Path) -> dict | None:
    """The metadata of the export in ``folder``, if one is there (unreadable: an empty dict)."""
    path = folder / METADATA_FILE
    if not path.exists():
        return None
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def set_export_alias(export_dir: Path, name: str, alias: str, version: int) -> None:
    """Point ``alias`` of ``name`` at ``version`` in the export's ``aliases.json`` (atomically)."""
    home = export_dir / name
    path = home / ALIASES_FILE
    aliases = json.loads(path.read_text()) if path.exists() else {}
    aliases[alias] = version
    write_atomic(path, lambda staging: staging.write_text(json.dumps(aliases, indent=2) + "\n"))


@dataclass
class ExportedModel:
    """An exported model (:func:`leadml.tracking.log_training`): the estimator, its metadata and
    folder."""

    model: Any
    metadata: dict
    path: Path

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Conversion probability per row, columns in the order of the training features."""
        return self.model.predict_proba(features[self.metadata["feature_names"]])[:, 1]


def load_exported(
    export_dir: str | os.PathLike = "models",
    model_name: str = "leadml-mql",
    alias: str = CHAMPION,
    version: int | None = None,
) -> ExportedModel:
    """Load an exported model without a tracking server: by ``version``, else by ``alias``.

    Raises
    ------
    TrackingError
        If nothing was exported under that alias or version.
    ModelIntegrityError
        If the model file fails its checks (see :func:`load_bundle`).
    """
    home = Path(export_dir) / model_name
    if version is None:
        aliases_path = home / ALIASES_FILE
        try:
            aliases = json.loads(aliases_path.read_text()) if aliases_path.exists() else {}
        except (OSError, ValueError) as exc:
            raise TrackingError(f"{aliases_path} cannot be read: {exc}") from None
        if alias not in aliases:
            known = ", ".join(f"{k} → v{v}" for k, v in aliases.items()) or "none"
            raise TrackingError(
                f"no exported {alias!r} model for {model_name!r} in {home} (aliases: {known}); "
                f"train one, or promote a version with 'leadml promote'"
            )
        version = int(aliases[alias])
    folder = home / f"v{version}"
    if not (folder / METADATA_FILE).exists():
        raise TrackingError(f"no exported model version {version} in {folder}")
    return load_bundle(folder)


def load_bundle(
    folder: str | os.PathLike, *, source: str | None = None, sha256: str | None = None
) -> ExportedModel:
    """Load the model of an export bundle (``metadata.json`` and the skops file it names), after
    checking it: the one way leadml loads a stored model, whatever its source (an export folder,
    a registered version's run, the champion at training time).

    Checks, in order, before anything is built from the file: ``model_file`` stays inside
    ``folder``; the file's SHA-256 equals ``model_sha256`` of ``metadata.json`` and, when given,
    ``sha256`` (the registry's tag); it is a skops file referencing only trusted types
    (:func:`trusted_types`).

    Parameters
    ----------
    folder
        The bundle: an export ``models/<name>/v<N>`` or a run's ``export`` artifacts.
    source
        How to name the model in errors (default: the folder).
    sha256
        The hash recorded elsewhere (the registry's ``leadml.model_sha256``), if known.

    Raises
    ------
    ModelIntegrityError
        Any check failed: the message names the model, the file and what is wrong.
    TrackingError
        ``folder`` holds no ``metadata.json``.
    """
    folder = Path(folder)
    source = source or str(folder)

    def refuse(why: str) -> ModelIntegrityError:
        return ModelIntegrityError(f"{source}: {why}; nothing was loaded")

    try:
        metadata = json.loads((folder / METADATA_FILE).read_text())
    except FileNotFoundError:
        missing = f"{source}: not an exported model (no {METADATA_FILE} in {folder})"
        raise TrackingError(missing) from None
    except (OSError, ValueError) as exc:
        raise refuse(f"{METADATA_FILE} cannot be read ({exc})") from None
    if not isinstance(metadata, dict):
        raise refuse(f"{METADATA_FILE} is not a JSON object")
    if metadata.get("format", "skops") != "skops":
        raise refuse(f"format {metadata.get('format')!r}: leadml loads skops files only")
    names = metadata.get("feature_names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise refuse(f"{METADATA_FILE} has no list of feature_names")
    name = metadata.get("model_file", MODEL_FILE)
    home = folder.resolve()
    path = (home / name).resolve() if isinstance(name, str) and name else home
    if not path.is_relative_to(home):
        raise refuse(
            f"model_file {name!r} in {METADATA_FILE} leads outside the export folder {folder}"
        )
    if not path.is_file():
        raise refuse(f"the model file {path} is missing")
    found = file_sha256(path)
    recorded = metadata.get("model_sha256")
    if not recorded:
        raise refuse(
            f"{METADATA_FILE} records no model_sha256 for {path.name} (exported before leadml "
            "recorded hashes, or removed): retrain or re-export the model"
        )
    if found != recorded:
        raise refuse(
            f"{path} has SHA-256 {found[:12]}…, but {recorded[:12]}… was recorded in "
            f"{METADATA_FILE} at export: the file was changed since"
        )
    if sha256 is not None and found != sha256:
        raise refuse(
            f"{path} has SHA-256 {found[:12]}…, but the registry recorded {sha256[:12]}… "
            f"({SHA256_TAG}) at registration: the file was changed since"
        )
    try:
        model = load_model_file(path)
    except ModelIntegrityError as exc:
        raise (exc if source == str(folder) else refuse(str(exc))) from None
    return ExportedModel(model, metadata, folder)
