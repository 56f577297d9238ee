"""MLflow: one run per training, the datasets' lineage, artifacts, the registry and the export.

The only part of leadml that imports :mod:`mlflow`; model files and export folders, which
scoring reads without MLflow, are :mod:`leadml.modeling.modelfile`'s. What it records:

- **Run** (:mod:`._runs`, experiment ``tracking.experiment``): the flattened settings as
  parameters, every evaluation metric, the lineage of the train, calibration and test windows
  (feature frames only: never the lead or account tables), plots, tables, the model card, the
  export and, when given, the funnel report of the test window's MQLs. A nightly scoring run
  gets its own run (:mod:`._scoring_runs`: :func:`log_scoring`, :func:`log_report`).
- **Model** (:mod:`._logged`): the calibrated model, logged as an MLflow pyfunc whose
  ``predict`` returns one column, :data:`OUTPUT` (``mql_probability``), with a signature and a
  PII-free input example; its artifacts are the export bundle (no pickle, no code run by leadml).
- **Registry** (:mod:`._registry`): the model, registered under ``tracking.model_name`` with
  the alias ``challenger``; its version tags hold what the promotion gate compares
  (:func:`promote`, :func:`gate_checks`); every decision is recorded (:func:`promotion_history`).
- **Export** (:mod:`._export`, ``tracking.export_dir``): ``<model_name>/v<N>/`` and
  ``aliases.json``, so scoring can run without a tracking server (:func:`load_exported`);
  :func:`load_registered` loads a registered version from its own files (any name it is
  registered under) and :func:`load_run_model` a run's model, checked against the SHA-256 the
  tracking database recorded.

Tracking URI (:mod:`._store`): ``tracking.uri``, else ``$MLFLOW_TRACKING_URI``, else
``sqlite:///mlflow.db``. With a SQLite store, artifacts go to ``mlartifacts/`` next to the
database file.
"""

from leadml.modeling.modelfile import (
    CHALLENGER,
    CHAMPION,
    ExportedModel,
    load_bundle,
    load_exported,
    load_model_file,
)
from leadml.tracking._export import ExportConflict, load_registered, load_run_model
from leadml.tracking._logged import OUTPUT
from leadml.tracking._registry import Promotion, gate_checks, promote, promotion_history
from leadml.tracking._runs import (
    PARAM_VALUE_LIMIT,
    TrackedRun,
    flatten_settings,
    log_training,
)
from leadml.tracking._scoring_runs import log_report, log_scoring
from leadml.tracking._store import DEFAULT_TRACKING_URI, TrackingUnavailable, resolve_tracking_uri

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "DEFAULT_TRACKING_URI",
    "OUTPUT",
    "PARAM_VALUE_LIMIT",
    "ExportConflict",
    "ExportedModel",
    "Promotion",
    "TrackedRun",
    "TrackingUnavailable",
    "flatten_settings",
    "gate_checks",
    "load_bundle",
    "load_exported",
    "load_model_file",
    "load_registered",
    "load_run_model",
    "log_report",
    "log_scoring",
    "log_training",
    "promote",
    "promotion_history",
    "resolve_tracking_uri",
]
