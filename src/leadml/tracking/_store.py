"""The tracking store: its URI, a connection that leaves no trace, experiments, and the runs
that processes killed before they could end them left behind.

Tracking URI: ``tracking.uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``.
With a SQLite store, artifacts go to ``mlartifacts/`` next to the database file.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from leadml.common.atomic import process_alive
from leadml.errors import TrackingError

if TYPE_CHECKING:
    from leadml.config import Settings

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def resolve_tracking_uri(settings: Settings | None = None) -> str:
    """``tracking.uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``."""
    configured = settings.tracking.uri if settings is not None else None
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def without_credentials(uri: str) -> str:
    """``uri`` without a ``user:password@`` part, fit to be written down."""
    return re.sub(r"//[^/@]*@", "//", uri)


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, else None."""
    if not uri.startswith("sqlite:///") or ":memory:" in uri:
        return None
    return Path(uri[len("sqlite:///") :])


@contextlib.contextmanager
def connected(uri: str) -> Iterator[MlflowClient]:
    """A client for ``uri``; fluent calls inside (``log_model`` has no other form) go there too.

    ``mlflow.set_tracking_uri`` also writes ``$MLFLOW_TRACKING_URI``; both the global URI and
    the variable are put back as they were, so leadml leaves no trace in the caller's process.
    Without the variable no URI was set (setting one writes it): ``None`` unsets it again, where
    pinning the default would fix it to today's working folder.
    """
    environment = os.environ.get("MLFLOW_TRACKING_URI")
    previous = mlflow.get_tracking_uri() if environment is not None else None
    mlflow.set_tracking_uri(uri)
    try:
        yield MlflowClient(tracking_uri=uri)
    except MlflowException as exc:
        raise TrackingError(f"MLflow at {without_credentials(uri)}: {exc.message}") from exc
    finally:
        mlflow.set_tracking_uri(previous)
        if environment is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = environment


def ensure_experiment(client: MlflowClient, name: str, uri: str) -> str:
    """The id of experiment ``name``, restored if deleted, created if missing (with a SQLite
    store, its artifacts in ``mlartifacts/`` next to the database file)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    location = None
    database = sqlite_path(uri)
    if database is not None:
        folder = re.sub(r"[^0-9A-Za-z._-]+", "_", name)
        location = (database.resolve().parent / "mlartifacts" / folder).as_uri()
    return client.create_experiment(name, artifact_location=location)


class TrackingUnavailable(TrackingError):
    """The tracking store cannot be reached (or, for SQLite, its file does not exist)."""


@contextlib.contextmanager
def quick_failure() -> Iterator[None]:
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


# --------------------------------------------------------------------------------------------
# Runs of processes that are gone


def owner_tags() -> dict[str, str]:
    """Which process a run belongs to, so that a later run can tell it was abandoned."""
    return {"leadml.pid": str(os.getpid()), "leadml.host": socket.gethostname()}


def fail_abandoned_runs(client: MlflowClient, experiment_id: str) -> list[str]:
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
