"""Which model scores tonight: the registry's champion, an export, or one given in Python."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leadml.config import Settings
from leadml.errors import TrackingError
from leadml.modeling.modelfile import (
    CHAMPION,
    METADATA_FILE,
    ExportedModel,
    load_bundle,
    load_exported,
)

log = logging.getLogger("leadml.scoring")

_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")
_RUN_URI = re.compile(r"^runs:/(?P<run_id>[0-9A-Za-z_-]+)/(?P<path>[^\s]+?)/?$")


@dataclass
class ScoringModel:
    """A fitted model with what scoring needs to know about it.

    ``metadata`` is the export's ``metadata.json`` (feature names, training reference
    distributions under ``reference``); ``source`` says where the model came from;
    ``store_unreachable``: the tracking store could not be reached, so this is the exported copy
    (and there is no store to log the run to either).
    """

    model: Any
    feature_names: list[str]
    name: str
    version: str | None = None
    run_id: str | None = None
    source: str = "object"
    metadata: dict = field(default_factory=dict)
    store_unreachable: bool = False

    @property
    def reference(self) -> dict | None:
        """The training distributions stored with the model, if any."""
        return self.metadata.get("reference")

    @classmethod
    def from_export(cls, exported, source: str) -> ScoringModel:
        meta = exported.metadata
        version = meta.get("version")
        return cls(
            exported.model,
            list(meta["feature_names"]),
            meta.get("name", "unknown"),
            None if version is None else str(version),
            meta.get("run_id"),
            source,
            meta,
        )


def resolve_model(model: Any, settings: Settings) -> ScoringModel:
    """The model to score with.

    ``model`` may be ``None`` (the registry's ``champion``, else the exported champion with a
    warning when the tracking store cannot be reached), a ``models:/<name>@<alias>`` or
    ``models:/<name>/<version>`` URI (same fallback; any registered name, the version's own
    files are read), a ``runs:/<run_id>/<path>`` URI (a model leadml logged in that run), the
    folder of an export (``models/<name>/v<N>``), a :class:`ScoringModel`, an exported model from
    :func:`leadml.modeling.modelfile.load_exported`, or a fitted estimator taking the feature frame
    (its ``feature_names_in_`` name the features).

    Whatever comes from a store (registry or export folder) is loaded by
    :func:`leadml.modeling.modelfile.load_bundle`: its model file is checked (path inside the
    export, SHA-256 as recorded at export and, from the registry, at registration, skops with
    trusted types only) before anything is built from it.

    Raises
    ------
    TrackingError
        No model can be found: the message says where it looked.
    ModelMismatchError
        The URI names an MLflow model that leadml did not log.
    ModelIntegrityError
        The stored model failed its checks (no fallback to another copy: a tampered model is
        news, not a detail); nothing was loaded.
    """
    if isinstance(model, ScoringModel):
        return model
    if hasattr(model, "predict_proba") and not hasattr(model, "metadata"):
        return _from_estimator(model)
    if isinstance(model, ExportedModel):
        return ScoringModel.from_export(model, f"export {model.path}")
    if model is None or isinstance(model, str | Path):
        text = "" if model is None else str(model)
        if text.startswith("runs:/"):
            return _from_run(text, settings)
        if text and not text.startswith("models:/"):
            return _from_folder(Path(text))
        name, alias, version = settings.tracking.model_name, CHAMPION, None
        if text:
            match = _URI.match(text)
            if match is None:
                raise TrackingError(f"--model {text!r}: expected {_EXPECTED}")
            name, alias = match["name"], match["alias"]
            version = int(match["version"]) if match["version"] else None
        wanted = f"models:/{name}" + (f"/{version}" if version is not None else f"@{alias}")
        from leadml import tracking  # imports MLflow: only when the registry is asked

        try:
            found = tracking.load_registered(settings, alias, version, name=name)
            return ScoringModel.from_export(found, f"registry {wanted}")
        except tracking.TrackingUnavailable as exc:
            unreachable = exc
        export_dir = settings.tracking.export_dir
        try:
            found = load_exported(export_dir, name, alias or CHAMPION, version)
        except TrackingError as exc:
            raise TrackingError(
                f"no model to score with: the tracking store is unreachable ({unreachable}) "
                f"and the export has none either ({exc})"
            ) from None
        log.warning(
            "tracking store unreachable (%s): scoring with the exported %s from %s",
            unreachable, wanted, found.path,
        )  # fmt: skip
        fallback = ScoringModel.from_export(
            found, f"export {found.path} (tracking store unreachable)"
        )
        fallback.store_unreachable = True
        return fallback
    if not hasattr(model, "predict_proba"):
        raise TrackingError(f"cannot score with a {type(model).__name__}: it has no predict_proba")
    return _from_estimator(model)


_EXPECTED = ("models:/<name>@<alias>, models:/<name>/<version>, runs:/<run_id>/<path> or the "
             "folder of an exported model (e.g. models/leadml-mql/v3)")  # fmt: skip


def _from_run(text: str, settings: Settings) -> ScoringModel:
    match = _RUN_URI.match(text)
    if match is None:
        raise TrackingError(f"--model {text!r}: expected {_EXPECTED}")
    from leadml import tracking  # imports MLflow: only when a run is asked

    found = tracking.load_run_model(settings, match["run_id"], match["path"])
    return ScoringModel.from_export(found, f"run {text}")


def _from_estimator(model: Any) -> ScoringModel:
    if not hasattr(model, "predict_proba"):
        raise TrackingError(f"cannot score with a {type(model).__name__}: it has no predict_proba")
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        raise TrackingError(
            f"cannot tell which features the {type(model).__name__} takes: fit it on a "
            "DataFrame (feature_names_in_) or wrap it in a ScoringModel"
        )
    return ScoringModel(model, [str(n) for n in names], type(model).__name__)


def _from_folder(folder: Path) -> ScoringModel:
    if not (folder / METADATA_FILE).exists():
        raise TrackingError(f"--model {folder}: not an exported model (no metadata.json in it)")
    if not folder.name.removeprefix("v").isdigit():
        raise TrackingError(f"--model {folder}: an export folder is named v<version>")
    return ScoringModel.from_export(load_bundle(folder), f"export {folder}")
