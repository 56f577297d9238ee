"""MLflow: one run per training, the datasets' lineage, artifacts, the registry and the export.

The only module of leadml that imports :mod:`mlflow`. What it records:

- **Run** (experiment ``tracking.experiment``): the flattened settings as parameters, every
  evaluation metric (``model_*``, ``rules_*``, and ``champion_*`` when a champion exists), the
  lineage of the train, calibration and test windows (feature frames only: a digest of the whole
  frame, its schema, rows and positives; never the lead or account tables), and artifacts:
  ``plots/*.png``, ``tables/*.csv``, ``MODEL_CARD.md``, ``export/`` (what was exported) and,
  when given, ``report/`` (the funnel report of the test window's MQLs; a nightly scoring run
  gets its own through :func:`log_report`).
- **Registry**: the calibrated model, logged with a signature and a PII-free input example and
  predicting probabilities (``predict_proba``), registered under ``tracking.model_name`` with the
  alias ``challenger``. Its version tags (``leadml.*``) hold the run id, the test window, the
  gate metrics of the challenger and of the rule score, and those of the champion of the time
  **scored on the challenger's own test rows**, so that :func:`promote` compares like with like.
- **Promotions**: :func:`promote` moves the alias ``champion``; every decision (promotion,
  refusal, explicit version) is tagged on the version and recorded as a small run of the
  experiment ``<experiment>-registry`` whose artifact ``promotions.json`` is the whole history
  so far (:func:`promotion_history` reads it back).
- **Export** (``tracking.export_dir``, default ``models/``): ``<model_name>/v<N>/`` with
  ``model.skops``, ``metadata.json`` and ``MODEL_CARD.md``, plus ``<model_name>/aliases.json``
  naming the challenger and champion versions, so scoring can run without a tracking server
  (:func:`load_exported`). Written atomically (a temporary folder renamed into place).

Models are stored with skops, not pickle: loading one runs no arbitrary code, and the only
types trusted beyond skops' defaults are scikit-learn, NumPy and SciPy internals (checked, never
trusted blindly).

Tracking URI: ``tracking.uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``.
With a SQLite store, artifacts go to ``mlartifacts/`` next to the database file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import socket
import tempfile
import time
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import pandas as pd
import skops.io
import yaml
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from leadml.common.atomic import new_dir, process_alive, scratch_dir, write_atomic
from leadml.common.safe_text import DISPLAY_LIMIT, shorten_json, shorten_series, to_csv
from leadml.errors import ModelIntegrityError, PromotionRefused, TrackingError
from leadml.modeling.card import GATE_METRICS, HIGHER_IS_BETTER, comparison_table, model_card
from leadml.modeling.evaluation import probability_metrics

if TYPE_CHECKING:
    from leadml.config import Settings
    from leadml.modeling.training import TrainingResult

CHALLENGER, CHAMPION = "challenger", "champion"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
#: Parameter values are cut to this length: within the limit of every MLflow server version.
PARAM_VALUE_LIMIT = 500
_PARAMS_PER_BATCH = 100  # MLflow's limit per log_batch request
MODEL_FILE, METADATA_FILE, CARD_FILE, ALIASES_FILE = (
    "model.skops",
    "metadata.json",
    "MODEL_CARD.md",
    "aliases.json",
)
HISTORY_FILE = "promotions.json"
#: The version tag holding the SHA-256 of the exported model file: the registry's witness.
SHA256_TAG = "leadml.model_sha256"
REPORT_PATH = "report"  # where a run's funnel report goes among its artifacts
WINDOWS = ("train", "calibration", "test")
#: Types a stored model may reference beyond skops' defaults: library internals only.
_SAFE_TYPE_PREFIXES = ("sklearn.", "numpy.", "scipy.")
_SAFE_TYPES = frozenset({
    "functools.partial",  # skops checks the function it wraps separately
    # The column handling of flat-export models: leadml's own class, whose state is plain data.
    "leadml.flat.preprocess.FlatPreprocessor",
})  # fmt: skip
_REQUIREMENTS = ("mlflow", "scikit-learn", "skops", "numpy", "scipy", "pandas")


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class TrackedRun:
    """Where a training run went: the MLflow run, the registered version and the export."""

    run_id: str
    experiment: str
    tracking_uri: str
    model_name: str
    model_version: int | None = None  # None: nothing registered (cold start)
    export_path: Path | None = None
    champion_version: int | None = None  # the champion when this run was logged, if any
    champion_metrics: dict[str, float] | None = None  # on this run's test rows
    champion_note: str | None = None  # why the champion could not be compared, if so
    cold_start: str | None = None
    # Why the model failed the fitness gate (None: it passed, or a cold start); ``forced``: it
    # was registered anyway (``force=True``).
    unfit: str | None = None
    forced: bool = False
    model_sha256: str | None = None  # of the exported model file (metadata and version tag)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step

    @property
    def mlflow_seconds(self) -> float:
        """Seconds spent in MLflow calls: logging, the model, the registry, and loading and
        scoring the champion (not the plots, nor the export's file copies)."""
        return sum(
            v for k, v in self.timings.items() if k in ("log", "model", "registry", "champion")
        )


@dataclass
class Promotion:
    """One decision of :func:`promote`; ``checks`` has one row per gate check."""

    model_name: str
    version: int
    previous: int | None  # champion before the decision
    promoted: bool
    reason: str
    explicit: bool = False  # --version: no gate
    checks: pd.DataFrame = field(default_factory=pd.DataFrame)
    record_run_id: str | None = None
    export_path: Path | None = None


# --------------------------------------------------------------------------------------------
# Connection


def resolve_tracking_uri(settings: Settings | None = None) -> str:
    """``tracking.uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``."""
    configured = settings.tracking.uri if settings is not None else None
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def _without_credentials(uri: str) -> str:
    """``uri`` without a ``user:password@`` part, fit to be written down."""
    return re.sub(r"//[^/@]*@", "//", uri)


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///") or ":memory:" in uri:
        return None
    return Path(uri[len("sqlite:///") :])


@contextlib.contextmanager
def _connected(uri: str) -> Iterator[MlflowClient]:
    """A client for ``uri``; fluent calls inside (``log_model`` has no other form) go there too.

    ``mlflow.set_tracking_uri`` also writes ``$MLFLOW_TRACKING_URI``; both the global URI and
    the variable are put back as they were, so leadml leaves no trace in the caller's process.
    """
    from mlflow.tracking._tracking_service import utils as tracking_state

    environment = os.environ.get("MLFLOW_TRACKING_URI")
    previous = getattr(tracking_state, "_tracking_uri", None)
    mlflow.set_tracking_uri(uri)
    try:
        yield MlflowClient(tracking_uri=uri)
    except MlflowException as exc:
        raise TrackingError(f"MLflow at {_without_credentials(uri)}: {exc.message}") from exc
    finally:
        mlflow.set_tracking_uri(previous)
        if environment is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = environment


def _experiment_id(client: MlflowClient, name: str, uri: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    location = None
    database = _sqlite_path(uri)
    if database is not None:
        folder = re.sub(r"[^0-9A-Za-z._-]+", "_", name)
        location = (database.resolve().parent / "mlartifacts" / folder).as_uri()
    return client.create_experiment(name, artifact_location=location)


# --------------------------------------------------------------------------------------------
# Parameters, frames and lineage


def flatten_settings(settings: Settings) -> dict[str, str]:
    """Settings as MLflow parameters: nested keys joined with dots, values as JSON text (strings
    as they are), cut to :data:`PARAM_VALUE_LIMIT` characters.

    Examples
    --------
    >>> from leadml.config import Settings
    >>> params = flatten_settings(Settings())
    >>> params["target.horizon_days"], params["tracking.promotion.must_beat_rules"]
    ('90', 'true')
    """
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
            return
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        if len(text) > PARAM_VALUE_LIMIT:
            text = text[: PARAM_VALUE_LIMIT - 1] + "…"
        flat[prefix] = text

    walk("", settings.model_dump(mode="json"))
    return flat


def model_input(frame: pd.DataFrame) -> pd.DataFrame:
    """Features as the logged model's signature expects them: pandas ``category`` columns as
    plain text (MLflow silently drops a signature inferred from categories and refuses them at
    prediction), integers as floats (so a later missing value is not a schema error)."""
    out = {}
    for name, column in frame.items():
        dtype = column.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            column = column.astype(object).where(column.notna(), None)
        elif pd.api.types.is_integer_dtype(dtype) or (
            pd.api.types.is_bool_dtype(dtype) and column.isna().any()
        ):
            column = column.astype("float64")
        out[name] = column
    return pd.DataFrame(out, index=frame.index)


def frame_digest(frame: pd.DataFrame) -> str:
    """A fingerprint of the whole frame (values, column names and dtypes), 16 hex digits.

    MLflow's own pandas digest hashes only the first 10,000 rows and, like its schema
    inference, costs minutes on a million rows; this one reads every row in about a second.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    digest.update(np.int64(len(frame)).tobytes())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def _dataset_source(source: str | os.PathLike | None):
    if source is None:
        return CodeDatasetSource(tags={})
    text = str(source)
    if "://" not in text:
        text = Path(text).resolve().as_uri()
    with warnings.catch_warnings():
        # MLflow registers its local-file source twice and warns that it cannot choose.
        warnings.simplefilter("ignore", UserWarning)
        return resolve_dataset_source(text)


def _log_lineage(result: TrainingResult, experiment: str, source) -> None:
    """One dataset per window: digest of the full feature frame, schema from a sample, counts.

    Only the feature frames (features, label, as_of) are described; lead and account tables,
    e-mails and names never reach MLflow.
    """
    frames = getattr(result, "frames", None) or {}
    dataset_source = _dataset_source(source)
    for window in WINDOWS:
        frame = frames.get(window)
        if frame is None:
            continue
        sample = model_input(frame.head(1_000))
        with warnings.catch_warnings():
            # MLflow's hints (integer columns) and its own pandas 3 deprecations: not ours.
            warnings.simplefilter("ignore")
            schema = infer_signature(sample).inputs
        dataset = MetaDataset(
            dataset_source,
            name=f"{experiment}-{window}",
            digest=frame_digest(frame),
            schema=schema,
        )
        row = result.windows.loc[window]
        tags = {
            "rows": str(len(frame)),
            "positives": str(int(frame["label"].sum())) if "label" in frame else "",
            "first_snapshot": f"{row.get('first_snapshot', '')}",
            "last_snapshot": f"{row.get('last_snapshot', '')}",
        }
        mlflow.log_input(dataset, context=window, tags=tags)


# --------------------------------------------------------------------------------------------
# skops: safe model files


def _is_trusted(name: str) -> bool:
    return name.startswith(_SAFE_TYPE_PREFIXES) or name in _SAFE_TYPES


def trusted_types(path: str | os.PathLike) -> list[str]:
    """The types a skops file needs trusted beyond skops' defaults, if all are safe.

    Only reads the file's schema: nothing in it is built or run.

    Raises
    ------
    ModelIntegrityError
        If the file is not a skops file (a pickle, say), or references anything but
        scikit-learn, NumPy or SciPy internals.
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
    unsafe = [t for t in untrusted if not _is_trusted(t)]
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


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, in hex."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def _requirements(result: TrainingResult | None = None) -> list[str]:
    """Pinned requirements of a logged model; a flat-export model also needs leadml itself (its
    first step is :class:`leadml.flat.FlatPreprocessor`)."""
    packages = (*_REQUIREMENTS, "leadml") if _is_flat(result) else _REQUIREMENTS
    pins = []
    for package in packages:
        try:
            pins.append(f"{package}=={installed_version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    return pins


# --------------------------------------------------------------------------------------------
# Logging a training run


def _is_flat(result: TrainingResult | None) -> bool:
    return getattr(result, "flat", None) is not None


def _target_text(result: TrainingResult) -> str:
    """What the model predicts, in a few words."""
    if _is_flat(result):
        return f"{result.flat.target} = {result.flat.positive!r} ({result.flat.source})"
    target = result.settings.target
    return f"{target.stage} within {target.horizon_days} days"


def _test_window_text(result: TrainingResult) -> str:
    """The test rows: their date span, or how they were predicted when they have none."""
    test = result.windows.loc["test"]
    first, last = test.get("first_snapshot"), test.get("last_snapshot")
    if first is None or pd.isna(first):
        return f"{getattr(result, 'validation', 'time')}, {int(test['rows']):,} rows"
    return f"{first:%Y-%m-%d}..{last:%Y-%m-%d}"


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, step: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - start


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    return f"{value:.6g}"


def _gate_tags(result: TrainingResult, run_id: str, champion: TrackedRun) -> dict[str, str]:
    metrics = result.evaluation.metrics
    tags = {
        "leadml.run_id": run_id,
        SHA256_TAG: str(champion.model_sha256),
        "leadml.family": str(result.family),
        "leadml.target": _target_text(result),
        "leadml.test_window": _test_window_text(result),
        "leadml.validation": getattr(result, "validation", "time"),
        "leadml.input": "flat" if _is_flat(result) else "events",
    }
    frames = getattr(result, "frames", None) or {}
    if "test" in frames:
        tags["leadml.test_digest"] = frame_digest(frames["test"])
    for metric in GATE_METRICS:
        tags[f"leadml.challenger.{metric}"] = _fmt(metrics.get(f"model_{metric}"))
        # Ranking metrics of the rules use their raw points; the others their mapped probability.
        rules_key = f"rules_points_{metric}" if metric in HIGHER_IS_BETTER else f"rules_{metric}"
        tags[f"leadml.rules.{metric}"] = _fmt(metrics.get(rules_key))
    if champion.champion_version is not None:
        tags["leadml.champion.version"] = str(champion.champion_version)
        for metric, value in (champion.champion_metrics or {}).items():
            tags[f"leadml.champion.{metric}"] = _fmt(value)
        if champion.champion_note:
            tags["leadml.champion.note"] = champion.champion_note
    else:
        tags["leadml.champion.version"] = "none"
    return tags


def _score_champion(client: MlflowClient, result: TrainingResult, tracked: TrackedRun) -> None:
    """Score the current champion, if any, on the challenger's test rows (same window, same
    labels), so that the promotion gate compares like with like."""
    name = tracked.model_name
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return  # no registered model, or no champion yet
    tracked.champion_version = int(champion.version)
    test = (getattr(result, "frames", None) or {}).get("test")
    if getattr(result, "validation", "time") == "cross-validation":
        # Out-of-fold rows are every row of the export: the champion may have trained on them,
        # so its figures on them would flatter it; there is no like-for-like comparison.
        tracked.champion_note = (
            "not compared: the challenger was validated by cross-validation on every row, which "
            "the champion may have been trained on; compare them on a later export, or promote "
            "explicitly with --version"
        )
        return
    if test is None:
        tracked.champion_note = "not compared: the training result kept no test features"
        return
    if not champion.tags.get(SHA256_TAG):
        tracked.champion_note = (
            f"not compared: version {champion.version} has no recorded SHA-256 ({SHA256_TAG}; "
            "registered before leadml recorded one), and leadml loads no model it cannot verify"
        )
        return
    try:
        exported = _load_version(client, champion, Path(result.settings.tracking.export_dir))
    except ModelIntegrityError:
        raise  # a tampered champion stops the training: nothing is logged next to it
    except (TrackingError, MlflowException, OSError) as exc:  # e.g. a missing artifact
        tracked.champion_note = f"not compared: version {champion.version} could not be loaded "
        tracked.champion_note += f"({type(exc).__name__}: {str(exc)[:200]})"
        return
    model = exported.model
    needed = list(exported.metadata.get("feature_names") or result.feature_names)
    missing = [c for c in needed if c not in test.columns]
    if missing:
        tracked.champion_note = (
            f"not compared: version {champion.version} needs {len(missing)} feature(s) this "
            f"test window lacks, e.g. {missing[0]!r}"
        )
        return
    p = model.predict_proba(test[needed])[:, 1]
    found = probability_metrics(
        test["label"].to_numpy(), p, result.settings.evaluation.calibration_bins
    )
    tracked.champion_metrics = {m: found[m] for m in GATE_METRICS}


def _owner_tags() -> dict[str, str]:
    """Which process a run belongs to, so that a later run can tell it was abandoned."""
    return {"leadml.pid": str(os.getpid()), "leadml.host": socket.gethostname()}


def _fail_abandoned_runs(client: MlflowClient, experiment_id: str) -> list[str]:
    """Mark FAILED the runs of the experiment left RUNNING by a leadml process of this machine
    that is gone (killed before it could end them). Runs of live processes, of other machines,
    and runs not started by leadml are left alone. Returns the run ids marked."""
    host, marked = socket.gethostname(), []
    try:
        running = client.search_runs(
            [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=500
        )
    except MlflowException:  # housekeeping: never a reason for this run to fail
        return marked
    for run in running:
        tags = run.data.tags
        pid = tags.get("leadml.pid", "")
        if tags.get("leadml.host") != host or not pid.isdigit() or int(pid) == os.getpid():
            continue
        if not process_alive(int(pid)):
            try:
                why = f"process {pid} ended without finishing the run (killed?)"
                client.set_tag(run.info.run_id, "leadml.abandoned", why)
                client.set_terminated(run.info.run_id, status="FAILED")
            except MlflowException:  # housekeeping again: another process may have ended it
                continue
            marked.append(run.info.run_id)
    return marked


def log_training(
    result: TrainingResult,
    *,
    source: str | os.PathLike | None = None,
    export: bool = True,
    plots: bool = True,
    report: str | os.PathLike | None = None,
    force: bool = False,
) -> TrackedRun:
    """Record a training run in MLflow; register and export its model unless it is a cold start
    or failed the fitness gate (:mod:`leadml.modeling.fitness`).

    A model that failed the gate is logged in the run with the reasons (tags, the model card,
    ``tables/fitness.csv`` and the model itself, for inspection) but not registered, aliased or
    exported, unless ``force``: then it is, tagged ``leadml.fitness = failed (forced)``,
    and the promotion gate still refuses it.

    Parameters
    ----------
    result
        What :func:`leadml.modeling.training.train` returned.
    source
        Where the data came from (a folder or URI), recorded as the datasets' source; None
        records the calling code instead.
    export
        Also export the model to ``tracking.export_dir``.
    plots
        Draw and log the plots. Most of their cost is the permutation importance (one
        prediction per feature and sampled row: about 5 s for 126 features); the tables are
        logged either way.
    report
        A report folder (:func:`leadml.reports.write_report`, e.g. of the test window's MQLs)
        to log under ``report/``.
    force
        Register and export a model that failed the fitness gate, and replace an export of
        the same version number that another run (another tracking store's) wrote; without
        it that is refused before anything is logged.

    Returns
    -------
    TrackedRun
        Run id, registered version (None on cold start or a failed gate), export folder, the
        champion's metrics on the same test rows, why the gate failed, and seconds per step.

    Raises
    ------
    ExportConflict
        The export folder of the version to come holds another run's model (and not ``force``).
    ModelIntegrityError
        The champion's stored model failed its checks: nothing was logged.
    """
    settings = result.settings
    uri = resolve_tracking_uri(settings)
    name = settings.tracking.model_name
    timer = _Timer()
    with _connected(uri) as client, contextlib.ExitStack() as stack:
        tmp = stack.enter_context(scratch_dir("run"))
        with timer("log"):
            experiment_id = _experiment_id(client, settings.tracking.experiment, uri)
            _fail_abandoned_runs(client, experiment_id)
        tracked = TrackedRun(
            run_id="",
            experiment=settings.tracking.experiment,
            tracking_uri=uri,
            model_name=name,
            cold_start=result.cold_start,
        )
        fitness = getattr(result, "fitness", None)
        if fitness is not None and not fitness.passed:
            tracked.unfit, tracked.forced = fitness.reasons(), force
        export_dir = Path(settings.tracking.export_dir)
        if export and result.trained and (not tracked.unfit or force):
            upcoming = export_dir / name / f"v{_next_version(client, name)}"
            _refuse_foreign_export(upcoming, None, uri, force)
        if result.trained:
            with timer("champion"):
                _score_champion(client, result, tracked)
        with timer("plots"):
            artifacts = _write_artifacts(result, tmp / "artifacts", plots=plots)
        with timer("log"):
            run = stack.enter_context(
                mlflow.start_run(
                    experiment_id=experiment_id,
                    run_name=_run_name(result),
                    nested=mlflow.active_run() is not None,
                    tags=_owner_tags(),
                )  # ends the run as FAILED if an exception escapes the block
            )
            tracked.run_id = run.info.run_id
            _log_run(result, tracked, source, artifacts)
            if report is not None:
                mlflow.log_artifacts(str(report), REPORT_PATH)
        if not result.trained:
            card = model_card(result, name=name, run_id=tracked.run_id)
            mlflow.log_text(card, CARD_FILE)
            tracked.timings = timer.seconds
            return tracked

        with timer("model"):
            model_file = tmp / MODEL_FILE
            skops.io.dump(result.model, model_file)
            tracked.model_sha256 = file_sha256(model_file)
            types = trusted_types(model_file)
            example = model_input(result.input_example)
            example = example.apply(shorten_series)  # input_example.json: no 1 MB value
            signature = infer_signature(example, result.model.predict_proba(example))
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=DeprecationWarning, module="mlflow")
                info = mlflow.sklearn.log_model(
                    result.model,
                    name="model",
                    signature=signature,
                    input_example=example,
                    pip_requirements=_requirements(result),
                    pyfunc_predict_fn="predict_proba",
                    skops_trusted_types=types,
                )
        if tracked.unfit and not force:
            mlflow.log_text(model_card(result, name=name, run_id=tracked.run_id), CARD_FILE)
            tracked.timings = timer.seconds
            return tracked
        with timer("registry"):
            version = _register(client, result, tracked, info.model_uri)
            tracked.model_version = version
            card = model_card(
                result,
                name=name,
                version=version,
                run_id=tracked.run_id,
                champion=tracked.champion_metrics,
                champion_version=tracked.champion_version,
                champion_note=tracked.champion_note,
            )
            mlflow.log_text(card, CARD_FILE)
        with timer("export"):
            store = _store_identity(client, uri, name, experiment_id)
            metadata = _metadata(result, tracked, types, store)
            bundle = tmp / "export"
            _write_bundle(bundle, model_file, metadata, card)
            mlflow.log_artifacts(str(bundle), "export")
            if export:
                tracked.export_path = _install_export(
                    export_dir, name, version, bundle, uri=uri, force=force
                )
        with timer("registry"):
            # Last: the alias points only at a version with its card and export in place.
            client.set_registered_model_alias(name, CHALLENGER, str(version))
            if export:
                _set_export_alias(export_dir, name, CHALLENGER, version)
        tracked.timings = timer.seconds
        mlflow.log_metrics({f"leadml_seconds_{k}": v for k, v in timer.seconds.items()})
    return tracked


def _run_name(result: TrainingResult) -> str:
    target = f"{result.settings.target.stage}@{result.settings.target.horizon_days}d"
    if _is_flat(result):
        target = f"flat {result.flat.source}: {result.flat.target}"
    if not result.trained:
        return f"cold start {target}"
    return f"{result.family} {target}"


def _write_artifacts(result: TrainingResult, folder: Path, plots: bool = True) -> Path:
    """Plots (PNG) and tables (CSV) in ``folder``; no lead ids, e-mails or names."""
    (folder / "tables").mkdir(parents=True)
    _table(result.windows, folder / "tables" / "windows.csv", index=True)
    _write_checks(result, folder)
    if not result.trained:
        return folder
    from leadml.modeling.plots import training_figures

    figures, importance = training_figures(result) if plots else ({}, None)
    (folder / "plots").mkdir()
    for stem, figure in figures.items():
        figure.savefig(folder / "plots" / f"{stem}.png", dpi=110)
    tables = dict(result.evaluation.tables)
    tables["search"] = result.search
    tables["calibration_methods"] = result.calibration
    fitness = getattr(result, "fitness", None)
    tables["fitness"] = fitness.to_frame() if fitness is not None else None
    tables["drift"] = getattr(result, "drift", None)
    if importance is not None:
        tables["feature_importance"] = importance
    for stem, table in tables.items():
        if table is not None:
            _table(table, folder / "tables" / f"{stem}.csv")
    _table(comparison_table(result.evaluation.metrics),
           folder / "tables" / "head_to_head_metrics.csv", index=True)  # fmt: skip
    return folder


def _table(frame: pd.DataFrame, path: Path, *, index: bool = False) -> None:
    """A table for people to read: long text cut, formula-like text quoted (safe_text)."""
    to_csv(frame, path, index=index, limit=DISPLAY_LIMIT)


def _write_checks(result: TrainingResult, folder: Path) -> None:
    """The leakage guard's report and, for a flat export, its data quality and column roles:
    written for cold starts too, since they often explain them."""
    leakage = getattr(result, "leakage", None)
    if leakage is not None:
        (folder / "leakage.md").write_text("# Leakage guard\n\n" + leakage.markdown() + "\n")
        (folder / "leakage.json").write_text(json.dumps(leakage.to_dict(), indent=2) + "\n")
        _table(leakage.to_frame(), folder / "tables" / "leakage.csv")
        _table(leakage.columns, folder / "tables" / "leakage_columns.csv")
    if _is_flat(result):
        quality = result.flat.quality
        (folder / "data_quality.md").write_text("# Data quality\n\n" + quality.markdown() + "\n")
        _table(quality.to_frame(), folder / "tables" / "data_quality.csv")
        _table(result.flat.columns, folder / "tables" / "columns.csv")


def _log_run(result: TrainingResult, tracked: TrackedRun, source, artifacts: Path) -> None:
    settings = result.settings
    tags = {
        "leadml.target": settings.target.stage,
        "leadml.horizon_days": str(settings.target.horizon_days),
        "leadml.model_name": settings.tracking.model_name,
    }
    tags["leadml.input"] = "flat" if _is_flat(result) else "events"
    tags["leadml.validation"] = getattr(result, "validation", "time")
    if _is_flat(result):
        tags["leadml.target"] = _target_text(result)
    leakage = getattr(result, "leakage", None)
    if leakage is not None:
        tags["leadml.leakage.excluded"] = ", ".join(leakage.excluded)[:5000] or "none"
    if result.cold_start:
        tags["leadml.cold_start"] = result.cold_start
        mlflow.set_tag("mlflow.note.content", f"Cold start: {result.cold_start}")
    else:
        tags["leadml.family"] = str(result.family)
        tags["leadml.champion_version"] = str(tracked.champion_version or "none")
    tags |= _fitness_tags(tracked)
    if tracked.unfit:
        registered = "registered anyway (--force)" if tracked.forced else "not registered"
        mlflow.set_tag(
            "mlflow.note.content", f"Failed the fitness gate, {registered}: {tracked.unfit}"
        )
    mlflow.set_tags(tags)
    params = list(flatten_settings(settings).items())
    if _is_flat(result):
        about = result.flat.metadata()
        params += [(f"flat.run.{key}", json.dumps(about[key], default=str)[:PARAM_VALUE_LIMIT])
                   for key in ("source", "target", "positive", "id_column", "time_column",
                               "exclude", "rows", "rows_used")]  # fmt: skip
    params += [(f"model.chosen.{k}", json.dumps(v, default=str)) for k, v in result.params.items()]
    if result.calibration is not None and len(result.calibration):
        params.append(("model.chosen.calibration", str(result.calibration.loc[0, "method"])))
    for start in range(0, len(params), _PARAMS_PER_BATCH):
        mlflow.log_params(dict(params[start : start + _PARAMS_PER_BATCH]))
    metrics = {}
    for window, row in result.windows.iterrows():
        metrics[f"{window}_rows"] = float(row["rows"])
        metrics[f"{window}_positives"] = float(row["positives"])
        if pd.notna(row.get("base_rate")):
            metrics[f"{window}_base_rate"] = float(row["base_rate"])
    for window, shift in (getattr(result, "prior_shift", None) or {}).items():
        if shift is not None:
            metrics[f"prior_shift_{window}"] = shift.shift
    if result.evaluation is not None:
        metrics |= {k: float(v) for k, v in result.evaluation.metrics.items()}
    if leakage is not None:
        metrics["leakage_columns_checked"] = float(len(leakage.columns))
        metrics["leakage_columns_excluded"] = float(len(leakage.excluded))
    for metric, value in (tracked.champion_metrics or {}).items():
        metrics[f"champion_{metric}"] = float(value)
    mlflow.log_metrics(metrics)
    _log_lineage(result, settings.tracking.experiment, source)
    mlflow.log_artifacts(str(artifacts))


def _fitness_tags(tracked: TrackedRun) -> dict[str, str]:
    """The fitness gate's outcome, on the run and on a registered version (cold starts have
    none)."""
    if tracked.cold_start:
        return {}
    if not tracked.unfit:
        return {"leadml.fitness": "passed"}
    status = "failed (forced)" if tracked.forced else "failed"
    return {"leadml.fitness": status, "leadml.fitness.reasons": tracked.unfit[:5000]}


def _register(client: MlflowClient, result: TrainingResult, tracked: TrackedRun, uri: str) -> int:
    name = tracked.model_name
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(
            name,
            description="leadml: calibrated probability that an open lead converts; aliases "
            "'challenger' (latest trained) and 'champion' (what scoring uses).",
        )
    version = client.create_model_version(name, uri, run_id=tracked.run_id)
    number = int(version.version)
    metrics = result.evaluation.metrics
    client.update_model_version(
        name,
        version.version,
        description=(
            f"{result.family}, ROC AUC {metrics['model_roc_auc']:.3f} vs rules "
            f"{metrics.get('rules_points_roc_auc', math.nan):.3f}, ECE {metrics['model_ece']:.4f}"
            f" on the test rows ({_test_window_text(result)}); predicts {_target_text(result)}"
        ),
    )
    tags = _gate_tags(result, tracked.run_id, tracked) | _fitness_tags(tracked)
    for key, value in tags.items():
        client.set_model_version_tag(name, version.version, key, value)
    return number


# --------------------------------------------------------------------------------------------
# Export: scoring without a tracking server


def _metadata(
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
        # columns of a flat export, as read by leadml.flat.read_flat).
        "input": "flat" if _is_flat(result) else "events",
        "validation": getattr(result, "validation", "time"),
        "flat": _flat_metadata(result) if _is_flat(result) else None,
        "leakage": shorten_json(leakage.to_dict()) if leakage is not None else None,
        "run_id": tracked.run_id,
        "tracking_uri": _without_credentials(tracked.tracking_uri),
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
        "fitness": _fitness_tags(tracked).get("leadml.fitness"),
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
        "requirements": _requirements(result),
        # For nightly scoring (leadml.scoring): drift and reasons compare against this.
        "reference": _reference_profile(result),
    }


def _flat_metadata(result: TrainingResult) -> dict:
    """The flat export's metadata, its column notes (which quote values) cut for display; the
    names scoring reads (id, time and target columns) stay whole."""
    about = result.flat.metadata()
    return about | {"columns": shorten_json(about["columns"])}


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


def _write_bundle(folder: Path, model_file: Path, metadata: dict, card: str) -> None:
    folder.mkdir(parents=True)
    shutil.copyfile(model_file, folder / MODEL_FILE)
    (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str) + "\n")
    (folder / CARD_FILE).write_text(card)


class ExportConflict(TrackingError):
    """The export folder of a version already holds another run's model (from another tracking
    store, or a deleted version's): nothing was replaced."""


def _store_identity(client: MlflowClient, uri: str, name: str, experiment_id: str) -> dict:
    """What tells this store apart from another one that also has a version N of ``name``."""
    try:
        created = client.get_registered_model(name).creation_timestamp
    except MlflowException:
        created = None
    return {
        "tracking_uri": _without_credentials(uri),
        "experiment_id": experiment_id,
        "registered_model_created": created,
    }


def _export_owner(folder: Path) -> dict | None:
    """The metadata of the export in ``folder``, if one is there (unreadable: an empty dict)."""
    path = folder / METADATA_FILE
    if not path.exists():
        return None
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _refuse_foreign_export(folder: Path, run_id: str | None, uri: str, force: bool) -> None:
    """Raise :class:`ExportConflict` if ``folder`` holds the export of a run other than
    ``run_id`` (None: any run, the one to come), unless ``force``."""
    owner = _export_owner(folder)
    if force or owner is None or (run_id is not None and owner.get("run_id") == run_id):
        return
    store = owner.get("store") or {}
    where = store.get("tracking_uri") or owner.get("tracking_uri") or "an unknown store"
    ours = f"run {run_id}" if run_id else "this training run"
    raise ExportConflict(
        f"{folder} holds version {owner.get('version', '?')} of run {owner.get('run_id')} from "
        f"{where} (exported {owner.get('created_at', 'at an unknown time')}); {ours} in "
        f"{_without_credentials(uri)} would replace it: nothing was written. Use another "
        "tracking.export_dir, or --force (force=True) to replace it"
    )


def _next_version(client: MlflowClient, name: str) -> int:
    """The version number the registry gives the next model of ``name``."""
    try:
        found = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return 1
    return max((int(v.version) for v in found), default=0) + 1


def _install_export(
    export_dir: Path, name: str, version: int, bundle: Path, *, uri: str, force: bool = False
) -> Path:
    """Copy ``bundle`` to ``export_dir/name/v<version>`` atomically: readers see the old
    folder or the new one, never half of either. An export of another run there is refused
    (:class:`ExportConflict`) unless ``force``."""
    home = export_dir / name
    target = home / f"v{version}"
    run_id = json.loads((bundle / METADATA_FILE).read_text()).get("run_id")
    _refuse_foreign_export(target, run_id, uri, force)
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


def _set_export_alias(export_dir: Path, name: str, alias: str, version: int) -> None:
    home = export_dir / name
    path = home / ALIASES_FILE
    aliases = json.loads(path.read_text()) if path.exists() else {}
    aliases[alias] = version
    write_atomic(path, lambda staging: staging.write_text(json.dumps(aliases, indent=2) + "\n"))


@dataclass
class ExportedModel:
    """A model exported by :func:`log_training`: the estimator, its metadata and folder."""

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


# --------------------------------------------------------------------------------------------
# Promotion


def _version_or_none(client: MlflowClient, name: str, alias: str):
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _number(tags: Mapping[str, str], key: str) -> float:
    try:
        return float(tags.get(key, "nan"))
    except ValueError:
        return math.nan


def gate_checks(
    tags: Mapping[str, str], settings: Settings, champion_version: int | None
) -> pd.DataFrame:
    """The promotion gate for a challenger's version tags against the current champion.

    One row per check: ``check``, ``metric``, ``challenger``, ``reference`` (the champion's value
    on the challenger's test rows, or the rule score's), ``tolerance``, ``status`` ("passed",
    "failed" or "not applicable"), ``passed`` (False only for a failed check: one that does not
    apply does not block) and ``reason`` (a sentence for failed and inapplicable checks).
    Without a champion only the rules check applies.
    """
    gate = settings.tracking.promotion
    rows = []
    if champion_version is not None:
        recorded = tags.get("leadml.champion.version", "none")
        note = tags.get("leadml.champion.note")
        if recorded != str(champion_version):
            rows.append({
                "check": "same test window", "metric": "", "passed": False,
                "reason": f"the challenger was compared at training time with champion "
                f"{'version ' + recorded if recorded != 'none' else '(none)'}, but the champion "
                f"is now version {champion_version}; retrain to compare on the same rows, or "
                "promote explicitly with --version",
            })  # fmt: skip
        elif note:
            rows.append({"check": "same test window", "metric": "", "passed": False,
                         "reason": f"champion version {champion_version} {note}"})  # fmt: skip
        else:
            for metric, tolerance in gate.tolerances.items():
                new = _number(tags, f"leadml.challenger.{metric}")
                old = _number(tags, f"leadml.champion.{metric}")
                if metric in HIGHER_IS_BETTER:
                    passed, worse = new >= old - tolerance, old - new
                else:
                    passed, worse = new <= old + tolerance, new - old
                direction = "higher" if metric in HIGHER_IS_BETTER else "lower"
                rows.append({
                    "check": f"vs champion v{champion_version}", "metric": metric,
                    "challenger": new, "reference": old, "tolerance": tolerance,
                    "passed": bool(passed),
                    "reason": "" if passed else (
                        f"{metric} {new:.4f} is worse than the champion's {old:.4f} (version "
                        f"{champion_version}, same test rows) by {worse:.4f}; the tolerance is "
                        f"{tolerance:g} ({direction} is better)"
                    ),
                })  # fmt: skip
    fitness = tags.get("leadml.fitness")
    if fitness is not None:  # versions registered before the fitness gate carry no tag
        rows.append({
            "check": "fitness gate at training", "metric": "", "passed": fitness == "passed",
            "reason": "" if fitness == "passed" else (
                f"the model failed the fitness gate at training and was registered with "
                f"--force: {tags.get('leadml.fitness.reasons', '')}; promote it only "
                "explicitly with --version"
            ),
        })  # fmt: skip
    rules = _number(tags, "leadml.rules.roc_auc")
    if gate.must_beat_rules and tags.get("leadml.input") == "flat" and math.isnan(rules):
        # A flat export carries no rule score: there is nothing to beat, and the table says so.
        rows.append({
            "check": "beats the rule score", "metric": "roc_auc",
            "challenger": _number(tags, "leadml.challenger.roc_auc"), "reference": rules,
            "tolerance": 0.0, "passed": True, "status": "not applicable",
            "reason": "not applicable: no rule score was measured on these rows (flat export)",
        })  # fmt: skip
    elif gate.must_beat_rules:
        new = _number(tags, "leadml.challenger.roc_auc")
        passed = new > rules
        rows.append({
            "check": "beats the rule score", "metric": "roc_auc", "challenger": new,
            "reference": rules, "tolerance": 0.0, "passed": bool(passed),
            "reason": "" if passed else (
                f"roc_auc {new:.4f} does not beat the rule score's {rules:.4f} on the same "
                "test rows (must_beat_rules)"
            ),
        })  # fmt: skip
    for row in rows:
        row.setdefault("status", "passed" if row["passed"] else "failed")
    columns = ["check", "metric", "challenger", "reference", "tolerance", "status", "passed",
               "reason"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def promote(settings: Settings, version: int | None = None, *, force: bool = False) -> Promotion:
    """Move the alias ``champion``: to the challenger if it passes the gate, or to ``version``.

    Without ``version`` the challenger must pass ``tracking.promotion`` (each metric within its
    tolerance of the champion's, both measured on the challenger's test rows; and, with
    ``must_beat_rules``, a higher ROC AUC than the rule score). With ``version`` (a rollback or
    roll-forward) the alias moves without the gate. Every decision is recorded (see the module
    docstring) and the export's ``aliases.json`` follows the champion. ``force`` replaces an
    export of the same version number that another run (another store's) wrote; without it the
    promotion is refused before anything moves.

    Raises
    ------
    PromotionRefused
        The challenger failed the gate; the message names every failed check and
        ``.promotion`` holds the decision.
    TrackingError
        No challenger, unknown version, or an unreachable store.
    ExportConflict
        The export folder of that version holds another run's model (and not ``force``).
    ModelIntegrityError
        The version's export, fetched from its run, failed its checks.
    """
    uri = resolve_tracking_uri(settings)
    name = settings.tracking.model_name
    with _connected(uri) as client:
        current = _version_or_none(client, name, CHAMPION)
        previous = int(current.version) if current is not None else None
        if version is not None:
            try:
                target = client.get_model_version(name, str(version))
            except MlflowException:
                raise TrackingError(
                    f"model {name!r} has no version {version} in {_without_credentials(uri)}"
                ) from None
            decision = Promotion(
                name, int(target.version), previous, promoted=True, explicit=True,
                reason=(
                    f"version {version} set as champion explicitly (no gate)"
                    + (f"; it replaces version {previous}" if previous is not None else "")
                ),
            )  # fmt: skip
            tags = target.tags
        else:
            target = _version_or_none(client, name, CHALLENGER)
            if target is None:
                raise TrackingError(
                    f"model {name!r} has no challenger in {_without_credentials(uri)}: run "
                    "'leadml train' first"
                )
            number = int(target.version)
            if previous == number:
                return Promotion(
                    name, number, previous, promoted=False,
                    reason=f"version {number} is already the champion; nothing to do",
                )  # fmt: skip
            checks = gate_checks(target.tags, settings, previous)
            failed = checks[~checks["passed"]]
            if len(failed):
                reason = f"version {number} was not promoted: " + "; ".join(failed["reason"])
            else:
                reason = f"version {number} passed the gate" + (
                    f" and replaces version {previous}"
                    if previous is not None
                    else " and is the first champion"
                )
            decision = Promotion(
                name, number, previous, promoted=not len(failed), reason=reason, checks=checks
            )
            tags = target.tags
        if decision.promoted:
            folder = Path(settings.tracking.export_dir) / name / f"v{decision.version}"
            _refuse_foreign_export(folder, tags.get("leadml.run_id"), uri, force)
            # Fetched and verified before anything moves: a model file that fails its checks
            # leaves the champion where it was, in the registry and in the export.
            decision.export_path = _install_champion(settings, decision.version, tags, force)
            client.set_registered_model_alias(name, CHAMPION, str(decision.version))
        _record(client, settings, uri, decision, tags)
    if decision.export_path is not None:
        _set_export_alias(Path(settings.tracking.export_dir), name, CHAMPION, decision.version)
    if not decision.promoted:
        raise PromotionRefused(decision.reason, decision)
    return decision


def _record(client, settings: Settings, uri: str, decision: Promotion, tags) -> None:
    """Tag the version and append the decision to the history run of ``<experiment>-registry``."""
    name, version = decision.model_name, str(decision.version)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    action = "explicit" if decision.explicit else ("promoted" if decision.promoted else "refused")
    for key, value in {
        "leadml.promotion.status": action,
        "leadml.promotion.at": now,
        "leadml.promotion.reason": decision.reason[:5000],
    }.items():
        client.set_model_version_tag(name, version, key, value)
    entry = {
        "at": now,
        "model": name,
        "version": decision.version,
        "previous_champion": decision.previous,
        "champion_after": decision.version if decision.promoted else decision.previous,
        "action": action,
        "reason": decision.reason,
        "run_id": tags.get("leadml.run_id"),
        "checks": json.loads(decision.checks.to_json(orient="records"))
        if len(decision.checks)
        else [],
    }
    experiment_id = _experiment_id(client, f"{settings.tracking.experiment}-registry", uri)
    history = [*_history(client, experiment_id), entry]
    run = client.create_run(
        experiment_id,
        run_name=f"{action} {name} v{version}",
        tags={"leadml.action": action, "leadml.model_name": name, "leadml.version": version},
    )
    client.log_dict(run.info.run_id, history, HISTORY_FILE)
    client.set_terminated(run.info.run_id)
    decision.record_run_id = run.info.run_id


def _history(client: MlflowClient, experiment_id: str) -> list[dict]:
    """The history in the latest decision run that has one (an interrupted run may not)."""
    runs = client.search_runs(
        [experiment_id], order_by=["attributes.start_time DESC"], max_results=20
    )
    for run in runs:
        try:
            return mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/{HISTORY_FILE}")
        except Exception:  # no file in that run (interrupted): look at the one before
            continue
    return []


def promotion_history(settings: Settings) -> pd.DataFrame:
    """Every promotion decision recorded so far, oldest first (empty if none)."""
    uri = resolve_tracking_uri(settings)
    with _connected(uri) as client:
        experiment = client.get_experiment_by_name(f"{settings.tracking.experiment}-registry")
        if experiment is None:
            return pd.DataFrame()
        return pd.DataFrame(_history(client, experiment.experiment_id))


def _install_champion(
    settings: Settings, version: int, tags: Mapping[str, str], force: bool = False
) -> Path | None:
    """The export folder of ``version``, fetching its bundle from the run (checked against the
    registry's hash first) if this machine has not exported it yet; None if the run has none."""
    export_dir = Path(settings.tracking.export_dir)
    name = settings.tracking.model_name
    folder = export_dir / name / f"v{version}"
    run_id = tags.get("leadml.run_id")
    owner = _export_owner(folder)
    if owner is None or owner.get("run_id") != run_id:
        if not run_id:
            return None
        uri = resolve_tracking_uri(settings)
        with _connected(uri), scratch_dir("export") as tmp:
            try:
                bundle = Path(mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path="export", dst_path=tmp))  # fmt: skip
            except Exception:
                return None
            load_bundle(bundle, source=f"models:/{name}/{version} (run {run_id})",
                        sha256=tags.get(SHA256_TAG))  # fmt: skip
            _install_export(export_dir, name, version, bundle, uri=uri, force=force)
    return folder


# --------------------------------------------------------------------------------------------
# Nightly scoring (leadml.scoring): load the model it scores with, record the run it made.


class TrackingUnavailable(TrackingError):
    """The tracking store cannot be reached (or, for SQLite, its file does not exist)."""


_NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}


@contextlib.contextmanager
def _quick_failure() -> Iterator[None]:
    """No retries and a short timeout: a nightly run falls back to the export rather than wait
    minutes for a server that is down."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES",
                                            "MLFLOW_HTTP_REQUEST_TIMEOUT")}  # fmt: skip
    os.environ.update(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="15")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def load_registered(
    settings: Settings, alias: str | None = CHAMPION, version: int | None = None,
    name: str | None = None,
) -> ExportedModel:  # fmt: skip
    """The bundle (model and metadata) a registered version's run exported, by ``version``, else
    by ``alias``; read from ``tracking.export_dir`` when that holds the same run's export.

    The version's logged model must be leadml's (:func:`_check_logged_model`) and the bundle's
    model file must match the SHA-256 tagged on the version at registration (see
    :func:`load_bundle`).

    Raises
    ------
    TrackingUnavailable
        The store cannot be reached (a SQLite file that does not exist counts: it is never
        created here).
    TrackingError
        No such alias or version, or its run has no export.
    ModelIntegrityError
        The stored model failed its checks; nothing was loaded.
    """
    uri = resolve_tracking_uri(settings)
    name = name or settings.tracking.model_name
    shown = _without_credentials(uri)
    database = _sqlite_path(uri)
    if database is not None and not database.exists():
        raise TrackingUnavailable(f"no tracking database at {database}")
    wanted = f"version {version}" if version is not None else f"alias {alias!r}"
    with _quick_failure():
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
        with _connected(uri) as client:
            return _load_version(client, found, Path(settings.tracking.export_dir))


def _load_version(client: MlflowClient, found, export_dir: Path) -> ExportedModel:
    """Load registered version ``found`` through :func:`load_bundle`: from the local export if it
    holds the same run's, else from the run's ``export`` artifacts. Call inside
    :func:`_connected` (the download goes to the fluent tracking URI)."""
    name, number, run_id = found.name, int(found.version), found.run_id
    source = f"models:/{name}/{number}"
    recorded = found.tags.get(SHA256_TAG)
    if not recorded:
        raise ModelIntegrityError(
            f"{source}: no SHA-256 recorded for its model file (version tag {SHA256_TAG}; "
            "versions registered before leadml recorded one have none): nothing was loaded; "
            "retrain to register a version that has one"
        )
    with tempfile.TemporaryDirectory(prefix="leadml-registered-") as tmp:
        _check_logged_model(client, found, Path(tmp) / "logged")
        local = export_dir / name / f"v{number}"
        if (_export_owner(local) or {}).get("run_id") == run_id:
            return load_bundle(local, source=f"{source} (export {local})", sha256=recorded)
        try:
            folder = Path(mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path="export", dst_path=f"{tmp}/export"))  # fmt: skip
        except (OSError, MlflowException) as exc:
            raise TrackingError(
                f"{source} (run {run_id}): its export cannot be read from "
                f"{_without_credentials(mlflow.get_tracking_uri())}: {exc}"
            ) from None
        exported = load_bundle(folder, source=f"{source} (run {run_id})", sha256=recorded)
    if exported.metadata.get("run_id") != run_id:
        raise ModelIntegrityError(
            f"{source}: the export in run {run_id} names run {exported.metadata.get('run_id')}; "
            "nothing was loaded"
        )
    return ExportedModel(exported.model, exported.metadata, Path(source))


def _check_logged_model(client: MlflowClient, found, tmp: Path) -> None:
    """Refuse a registered version whose logged model is not one leadml logged: an ``MLmodel``
    whose flavours are not exactly ``sklearn`` (serialised with skops, trusting only the types
    :func:`trusted_types` trusts, no code path) and ``python_function`` through
    ``mlflow.sklearn``, or whose skops file is missing. Only the YAML is read (safely): a
    pickle or cloudpickle payload is never loaded, here or anywhere in leadml."""
    source = f"models:/{found.name}/{found.version}"

    def refuse(why: str) -> ModelIntegrityError:
        return ModelIntegrityError(
            f"{source}: its logged model {why}; leadml stores models with skops only (a pickle "
            "or cloudpickle flavour runs code when loaded): refusing it, nothing was loaded"
        )

    location = client.get_model_version_download_uri(found.name, str(found.version))
    try:
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{location.rstrip('/')}/MLmodel", dst_path=str(tmp)
        )
        listed = {Path(a.path).name for a in mlflow.artifacts.list_artifacts(location)}
    except (OSError, MlflowException) as exc:
        # Unreachable or deleted artifacts are not a tampered model: the caller may go on
        # without it (training notes "not compared"), where a bad file stops everything.
        raise TrackingError(
            f"{source}: its logged model cannot be read ({type(exc).__name__}: {str(exc)[:200]})"
        ) from None
    try:
        spec = yaml.safe_load(Path(path).read_text())
    except (ValueError, yaml.YAMLError) as exc:
        raise refuse(f"has no readable MLmodel ({type(exc).__name__}: {str(exc)[:200]})") from None
    flavors = spec.get("flavors") if isinstance(spec, dict) else None
    if not isinstance(flavors, dict) or set(flavors) != {"python_function", "sklearn"}:
        shown = sorted(flavors) if isinstance(flavors, dict) else flavors
        raise refuse(f"has flavours {shown}, not leadml's (python_function and sklearn)")
    sklearn, pyfunc = flavors["sklearn"] or {}, flavors["python_function"] or {}
    if sklearn.get("serialization_format") != "skops":
        raise refuse(f"is serialised as {sklearn.get('serialization_format')!r}, not skops")
    if pyfunc.get("loader_module") != "mlflow.sklearn":
        raise refuse(f"is loaded by {pyfunc.get('loader_module')!r}, not mlflow.sklearn")
    if sklearn.get("code") or pyfunc.get("code"):
        raise refuse("ships code to import")
    unsafe = [t for t in sklearn.get("skops_trusted_types") or [] if not _is_trusted(str(t))]
    if unsafe:
        raise refuse(f"trusts types leadml does not trust: {', '.join(map(str, unsafe))}")
    stored = sklearn.get("pickled_model")
    if not isinstance(stored, str) or not stored.endswith(".skops") or stored not in listed:
        raise refuse(f"names model file {stored!r}, which is not a skops file beside it")
    if spec.get("run_id") not in (None, found.run_id):
        raise refuse(f"comes from run {spec.get('run_id')}, not the version's run {found.run_id}")


def log_scoring(
    settings: Settings,
    summary: Mapping[str, Any],
    markdown: str,
    *,
    metrics: Mapping[str, float],
    model_name: str | None,
    model_version: str | int | None,
    model_run_id: str | None,
) -> str:
    """Record a nightly scoring run in the experiment ``tracking.scoring_experiment``: the
    summary (``summary.json``, ``summary.md``), its numbers as metrics, and its lineage (tags
    naming the model version and its training run; the registered model as the run's input).

    Only what the summary holds is logged: counts, distributions, lead ids -- no lead table.
    Returns the run id.
    """
    uri = resolve_tracking_uri(settings)
    as_of = str(summary.get("as_of", ""))[:10]
    with _quick_failure(), _connected(uri) as client:
        experiment_id = _experiment_id(client, settings.tracking.scoring_experiment, uri)
        _fail_abandoned_runs(client, experiment_id)
        tags = _owner_tags() | {
            "leadml.as_of": str(summary.get("as_of", "")),
            "leadml.model_name": str(model_name),
            "leadml.model_version": str(model_version),
            "leadml.model_run_id": str(model_run_id),
        }
        run = client.create_run(experiment_id, run_name=f"score {as_of}", tags=tags)
        run_id = run.info.run_id
        try:
            finite = {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}
            for start in range(0, len(finite), 500):
                chunk = dict(list(finite.items())[start : start + 500])
                client.log_batch(run_id, metrics=[
                    mlflow.entities.Metric(k, v, int(time.time() * 1000), 0)
                    for k, v in chunk.items()
                ])  # fmt: skip
            client.log_dict(run_id, dict(summary), "summary.json")
            client.log_text(run_id, markdown, "summary.md")
            if model_name and model_version not in (None, "", "None"):
                with contextlib.suppress(Exception):  # lineage is a bonus, not a failure
                    version = client.get_model_version(model_name, str(model_version))
                    if getattr(version, "model_id", None):
                        client.log_inputs(run_id, models=[
                            mlflow.entities.LoggedModelInput(version.model_id)])  # fmt: skip
            client.set_terminated(run_id)
        except BaseException:  # Ctrl-C too; a kill -9 is caught by the next run's clean-up
            client.set_terminated(run_id, status="FAILED")
            raise
    return run_id


def log_report(settings: Settings, run_id: str, folder: str | os.PathLike) -> None:
    """Attach a report folder (:func:`leadml.reports.write_report`) to an existing run, under
    ``report/``: how the nightly job adds its report to the scoring run it just recorded.

    The report holds aggregates only (no lead id, e-mail address or name).

    Raises
    ------
    TrackingError
        The store cannot be reached or has no such run.
    """
    uri = resolve_tracking_uri(settings)
    with _quick_failure(), _connected(uri) as client:
        client.log_artifacts(run_id, str(folder), REPORT_PATH)
