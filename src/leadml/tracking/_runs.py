"""Training runs: parameters, metrics, lineage, artifacts and the model, marked as their
process's so that a killed one is ended (nightly scoring runs: :mod:`._scoring_runs`)."""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import pandas as pd
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.models import infer_signature

from leadml.common.atomic import scratch_dir
from leadml.common.safe_text import DISPLAY_LIMIT, shorten_series, to_csv
from leadml.modeling.card import comparison_table, model_card
from leadml.modeling.modelfile import (
    CARD_FILE,
    CHALLENGER,
    METADATA_FILE,
    MODEL_FILE,
    SHA256_TAG,
    save_model_file,
    set_export_alias,
    write_bundle,
)
from leadml.tracking._export import (
    export_metadata,
    install_export,
    refuse_foreign_export,
    requirements,
    store_identity,
)
from leadml.tracking._logged import log_model
from leadml.tracking._registry import (
    frame_digest,
    next_version,
    register,
    score_champion,
)
from leadml.tracking._store import (
    connected,
    ensure_experiment,
    fail_abandoned_runs,
    owner_tags,
    resolve_tracking_uri,
)

if TYPE_CHECKING:
    from leadml.config import Settings
    from leadml.modeling.training import TrainingResult

#: Parameter values are cut to this length: within the limit of every MLflow server version.
PARAM_VALUE_LIMIT = 500
_PARAMS_PER_BATCH = 100  # MLflow's limit per log_batch request
REPORT_PATH = "report"  # where a run's funnel report goes among its artifacts
WINDOWS = ("train", "calibration", "test")


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

    def fitness_tags(self) -> dict[str, str]:
        """The fitness gate's outcome, on the run and on a registered version (cold starts have
        none)."""
        if self.cold_start:
            return {}
        if not self.unfit:
            return {"leadml.fitness": "passed"}
        status = "failed (forced)" if self.forced else "failed"
        return {"leadml.fitness": status, "leadml.fitness.reasons": self.unfit[:5000]}


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
# Logging a training run


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


def log_training(
    result: TrainingResult,
    *,
    source: str | os.PathLike | None = None,
    export: bool = True,
    plots: bool = True,
    report: str | os.PathLike | None = None,
    force: bool = False,
    importance: pd.DataFrame | None = None,
) -> TrackedRun:
    """Record a training run in MLflow; register and export its model unless it is a cold start
    or failed the fitness gate (:mod:`leadml.modeling.fitness`).

    A model that failed the gate is logged in the run with the reasons (tags, the model card,
    ``tables/fitness.csv`` and the model itself, for inspection) but not registered, aliased or
    exported, unless ``force``: then it is, tagged ``leadml.fitness = failed (forced)``, and the
    promotion gate still refuses it.

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
    importance
        The test window's permutation importance when the caller has computed it already
        (:func:`leadml.modeling.plots.permutation_importance_table`), so it is not computed
        twice.

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
    with connected(uri) as client, contextlib.ExitStack() as stack:
        tmp = stack.enter_context(scratch_dir("run"))
        with timer("log"):
            experiment_id = ensure_experiment(client, settings.tracking.experiment, uri)
            fail_abandoned_runs(client, experiment_id)
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
            upcoming = export_dir / name / f"v{next_version(client, name)}"
            refuse_foreign_export(upcoming, None, uri, force)
        if result.trained:
            with timer("champion"):
                score_champion(client, result, tracked)
        with timer("plots"):
            artifacts = _write_artifacts(result, tmp / "artifacts", plots, importance)
        with timer("log"):
            run = stack.enter_context(
                mlflow.start_run(
                    experiment_id=experiment_id,
                    run_name=_run_name(result),
                    nested=mlflow.active_run() is not None,
                    tags=owner_tags(),
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
            # The logged model's artifacts: the model file and the metadata scoring needs.
            logged = tmp / "logged"
            logged.mkdir()
            model_file = logged / MODEL_FILE
            tracked.model_sha256, types = save_model_file(result.model, model_file)
            # In the database, not beside the file: the witness for runs:/ URIs and for
            # versions registered by other means (leadml's own versions carry it too).
            mlflow.set_tag(SHA256_TAG, tracked.model_sha256)
            store = store_identity(client, uri, name, experiment_id)
            metadata = export_metadata(result, tracked, types, store)
            (logged / METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str) + "\n")
            example = model_input(result.input_example)
            example = example.apply(shorten_series)  # input_example.json: no 1 MB value
            info = log_model(logged, example, result.model, requirements(result))
        if tracked.unfit and not force:
            mlflow.log_text(model_card(result, name=name, run_id=tracked.run_id), CARD_FILE)
            tracked.timings = timer.seconds
            return tracked
        with timer("registry"):
            version = register(client, result, tracked, info.model_uri)
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
            store = store_identity(client, uri, name, experiment_id)
            metadata = metadata | {"version": version, "store": store}
            bundle = tmp / "export"
            write_bundle(bundle, model_file, metadata, card)
            mlflow.log_artifacts(str(bundle), "export")
            if export:
                tracked.export_path = install_export(
                    export_dir, name, version, bundle, uri=uri, force=force
                )
        with timer("registry"):
            # Last: the alias points only at a version with its card and export in place.
            client.set_registered_model_alias(name, CHALLENGER, str(version))
            if export:
                set_export_alias(export_dir, name, CHALLENGER, version)
        tracked.timings = timer.seconds
        mlflow.log_metrics({f"leadml_seconds_{k}": v for k, v in timer.seconds.items()})
    return tracked


def _run_name(result: TrainingResult) -> str:
    target = result.inputs.run_label()
    if not result.trained:
        return f"cold start {target}"
    return f"{result.family} {target}"


def _write_artifacts(
    result: TrainingResult, folder: Path, plots: bool = True, importance=None
) -> Path:
    """Plots (PNG) and tables (CSV) in ``folder``; no lead ids, e-mails or names."""
    (folder / "tables").mkdir(parents=True)
    _table(result.windows, folder / "tables" / "windows.csv", index=True)
    _write_checks(result, folder)
    if not result.trained:
        return folder
    from leadml.modeling.plots import training_figures

    figures, importance = training_figures(result, importance=importance) if plots else ({}, None)
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
    points = getattr(result, "points", None)
    if points is not None:  # the learned points table: a rules file, and each rule's evidence
        (folder / "learned_rules.yaml").write_text(points.text, encoding="utf-8")
        tables["learned_rules"] = points.table
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
    """The leakage guard's report and the input's own (a flat export's data quality and column
    roles): written for cold starts too, since they often explain them."""
    leakage = getattr(result, "leakage", None)
    if leakage is not None:
        (folder / "leakage.md").write_text("# Leakage guard\n\n" + leakage.markdown() + "\n")
        (folder / "leakage.json").write_text(json.dumps(leakage.to_dict(), indent=2) + "\n")
        _table(leakage.to_frame(), folder / "tables" / "leakage.csv")
        _table(leakage.columns, folder / "tables" / "leakage_columns.csv")
    result.inputs.write_artifacts(folder)


def _log_run(result: TrainingResult, tracked: TrackedRun, source, artifacts: Path) -> None:
    settings = result.settings
    tags = {
        "leadml.horizon_days": str(settings.target.horizon_days),
        "leadml.model_name": settings.tracking.model_name,
        "leadml.input": result.inputs.kind,
        "leadml.validation": getattr(result, "validation", "time"),
        **result.inputs.run_tags(),
    }
    leakage = getattr(result, "leakage", None)
    if leakage is not None:
        tags["leadml.leakage.excluded"] = ", ".join(leakage.excluded)[:5000] or "none"
    if result.cold_start:
        tags["leadml.cold_start"] = result.cold_start
        mlflow.set_tag("mlflow.note.content", f"Cold start: {result.cold_start}")
    else:
        tags["leadml.family"] = str(result.family)
        tags["leadml.champion_version"] = str(tracked.champion_version or "none")
    tags |= tracked.fitness_tags()
    if tracked.unfit:
        registered = "registered anyway (--force)" if tracked.forced else "not registered"
        mlflow.set_tag(
            "mlflow.note.content", f"Failed the fitness gate, {registered}: {tracked.unfit}"
        )
    mlflow.set_tags(tags)
    params = list(flatten_settings(settings).items())
    params += [(k, v[:PARAM_VALUE_LIMIT]) for k, v in result.inputs.run_params().items()]
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
