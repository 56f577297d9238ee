"""Nightly scoring runs: the night's summary and its funnel report, marked as their process's so
that a killed one is ended."""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import mlflow

from leadml.tracking._runs import REPORT_PATH
from leadml.tracking._store import (
    connected,
    ensure_experiment,
    fail_abandoned_runs,
    owner_tags,
    quick_failure,
    resolve_tracking_uri,
)

if TYPE_CHECKING:
    from leadml.config import Settings


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
    with quick_failure(), connected(uri) as client:
        experiment_id = ensure_experiment(client, settings.tracking.scoring_experiment, uri)
        fail_abandoned_runs(client, experiment_id)
        tags = owner_tags() | {
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
    with quick_failure(), connected(uri) as client:
        client.log_artifacts(run_id, str(folder), REPORT_PATH)
