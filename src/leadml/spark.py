"""Nightly scoring and training sets on Spark, with leadml's own engine in every task
(``pip install leadml[spark]``).

Spark runs ``mapInPandas`` over the night's shard numbers, one per task. Each task reads
its shard's rows of the input (:func:`leadml.load_data` with ``shard``: DuckDB and the compiled
loops, as on one machine), scores them with the model the driver resolved (broadcast, so read once
per executor) and writes its shard's files; the driver then joins the shards into the night's
partition (:func:`leadml.scoring.finish_night`). A task that Spark runs again replaces its shard's
files: a night never holds a row twice. :func:`build_trainset` builds a training set the same
way, each task its shard's rows at the whole history's snapshots.

The input is a folder or object-store prefix that every executor can read (each task reads it),
or the four tables as Spark DataFrames, which are first written as Parquet under ``out``. The
output folder must be one the executors and the driver share (a local folder with a local
master, a mounted volume on a cluster). See docs/scale.md.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
import warnings
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from leadml import errors
from leadml.config import Settings
from leadml.data.asof import to_utc
from leadml.data.readers import Source
from leadml.data.shards import Shard
from leadml.modeling.trainset import NoMatureSnapshot, TrainingSet
from leadml.scoring import (
    FinishedNight,
    ShardResult,
    finish_night,
    resolve_model,
    score_shard,
)

log = logging.getLogger("leadml.spark")

TABLES = ("accounts", "leads", "events", "stages")
_RESULT = "shard int, leads long, seconds double, error_type string, error string, exit_code int"


def session(master: str = "local[*]", app_name: str = "leadml", **conf: str):
    """A Spark session for leadml: ``master`` (``local[*]``: every core of this machine), UTC
    session time, pandas conversions through Arrow, Python workers on this interpreter, no web
    UI for a local master. ``conf``: more Spark settings."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover - the dev extra installs it
        raise errors.ConfigError(
            "leadml.spark needs PySpark: pip install 'leadml[spark]'"
        ) from None
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if re.fullmatch(r"local(\[[0-9*]+\])?", master):
        # A local master tries a task once unless told otherwise: a task that dies (a worker
        # killed, out of memory) gets the retries a cluster gives it.
        master = f"local[{master[6:-1] or '*'},4]" if "[" in master else "local[1,4]"
    builder = SparkSession.builder.master(master).appName(app_name)
    settings = {
        "spark.sql.session.timeZone": "UTC",
        # pandas <-> Spark through Arrow: column types as pandas has them, and fast.
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        **conf,
    }
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        settings.setdefault("spark.ui.enabled", "false")
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def score_night(
    spark,
    data: Source | Mapping[str, Any],
    as_of: pd.Timestamp | str,
    out: str | Path,
    model: Any = None,
    settings: Settings | None = None,
    *,
    rules: Any = None,
    shards: int | None = None,
    track: bool = True,
    now: pd.Timestamp | str | None = None,
    after_shard: Callable[[ShardResult], None] | None = None,
) -> FinishedNight:
    """Score the leads open at ``as_of`` on Spark into ``out/as_of=YYYY-MM-DD``: the same
    partition, row for row, as :func:`leadml.scoring.score_to` writes (``part-<shard>.parquet``
    files), and its summary logged once to MLflow unless ``track`` is False.

    Parameters
    ----------
    spark
        A SparkSession (:func:`session` makes one).
    data
        A folder or object-store prefix (``s3://…``) every executor can read, or a mapping of
        table name to Spark DataFrame (written as Parquet under ``out`` first).
    model
        As :func:`leadml.scoring.resolve_model` takes it, resolved once on the driver.
    shards
        How many shards (tasks); default: Spark's default parallelism.
    after_shard
        Called in the task once its shard is written (for progress, or a test's fault).

    Raises
    ------
    LeadmlError
        The first task's error, of its class (a shard's invalid data is a ``DataError``);
        nothing is written to the partition then.
    """
    from leadml.rules import load_rules

    settings = settings or Settings()
    as_of, out = to_utc(as_of), Path(out)
    count = shards or spark.sparkContext.defaultParallelism
    resolved = resolve_model(model, settings)
    checked_rules = load_rules(rules, settings)
    # This run's own, and no '=' in its name: a file: URI would escape it.
    staged = out / f".spark-input-{as_of:%Y-%m-%d}-{uuid.uuid4().hex[:8]}"
    source = _stage(data, staged) if isinstance(data, Mapping) and _spark_frames(data) else data
    shared = spark.sparkContext.broadcast(resolved)

    def task(number: int) -> pd.DataFrame:
        shard = Shard(number, count)
        started = time.perf_counter()
        try:
            result = score_shard(source, as_of, out, shard, shared.value, settings,
                                 rules=checked_rules, now=now)  # fmt: skip
        except errors.LeadmlError as exc:
            return _row(shard, 0, started, exc)
        if after_shard is not None:
            after_shard(result)
        return _row(shard, result.rows, started, None)

    try:
        done = _run(spark, count, task)
    finally:
        shared.unpersist()
        shutil.rmtree(staged, ignore_errors=True)
    _raise_first(done, count)
    log.info("%d shards scored in %.1f s of task time", count, done["seconds"].sum())
    return finish_night(out, as_of, settings, track=track)


def _raise_first(done: pd.DataFrame, count: int) -> None:
    """The first task's leadml error, raised on the driver as its class."""
    failed = done[done["error_type"].notna()]
    if len(failed):
        first = failed.iloc[0]
        raise _error(first["error_type"], int(first["exit_code"]))(
            f"shard {int(first['shard'])}/{count}: {first['error']}"
        )


def _run(spark, count: int, task, schema: str = _RESULT) -> pd.DataFrame:
    """``task(shard)`` for every shard, one Spark task each: a range of ``count`` partitions
    holds one shard number per partition (grouping by shard would hash two shards into one
    task now and then, and run them one after the other)."""

    def per_partition(batches):
        for batch in batches:
            for number in batch["id"]:
                yield task(int(number))

    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    numbers = spark.range(0, count, 1, numPartitions=count)
    with warnings.catch_warnings():
        # PySpark 4.3 warns that it does not fully support pandas 3; the frames it passes here
        # are shard numbers in and a few numbers and texts out.
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
        try:
            return numbers.mapInPandas(per_partition, schema=schema).toPandas()
        except (PySparkException, Py4JError) as exc:  # a task failed every attempt
            first = str(exc).strip().splitlines()[0][:500]
            raise errors.LeadmlError(f"Spark could not run the {count} shards: {first}") from None


def _row(shard: Shard, leads: int, started: float, exc: Exception | None) -> pd.DataFrame:
    return pd.DataFrame({
        "shard": [shard.index], "leads": [leads], "seconds": [time.perf_counter() - started],
        "error_type": [None if exc is None else type(exc).__name__],
        "error": [None if exc is None else str(exc)],
        "exit_code": [0 if exc is None else getattr(exc, "exit_code", 1)],
    })  # fmt: skip


def _error(name: str, exit_code: int) -> type[errors.LeadmlError]:
    """The leadml error class a task raised, or the one of its exit code."""
    found = getattr(errors, name, None)
    if isinstance(found, type) and issubclass(found, errors.LeadmlError):
        return found
    return {2: errors.ConfigError, 3: errors.DataError}.get(exit_code, errors.LeadmlError)


def _spark_frames(data: Mapping) -> bool:
    return all(hasattr(frame, "write") and hasattr(frame, "schema") for frame in data.values())


def _stage(frames: Mapping[str, Any], folder: Path) -> Path:
    """Write Spark DataFrames as Parquet folders ``folder/<table>`` (instants in microseconds,
    as UTC), for the tasks to read their shards of."""
    unknown = sorted(set(frames) - set(TABLES))
    if unknown:
        raise errors.DataError(f"unknown table name(s) {unknown}; expected some of {TABLES}")
    shutil.rmtree(folder, ignore_errors=True)
    for name, frame in frames.items():
        conf = frame.sparkSession.conf
        previous = conf.get("spark.sql.parquet.outputTimestampType", None)
        conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        try:
            # A file: URI, as the tasks read it (a bare path goes to the cluster's file system).
            frame.write.mode("overwrite").parquet((folder / name).resolve().as_uri())
        finally:
            if previous is None:
                conf.unset("spark.sql.parquet.outputTimestampType")
            else:
                conf.set("spark.sql.parquet.outputTimestampType", previous)
    return folder


def build_trainset(
    spark,
    data: Source | Mapping[str, Any],
    settings: Settings | None = None,
    *,
    shards: int | None = None,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    now: pd.Timestamp | str | None = None,
    staging: str | Path | None = None,
) -> TrainingSet:
    """The training set of ``data`` (see :func:`leadml.modeling.trainset.build_trainset`) built
    on Spark: each task its shard's rows at the snapshots of the whole history, so the rows are
    those one process builds. With ``trainset.max_rows``, each shard sends the driver at most its
    share of that many rows, whole accounts (or leads without one) sampled in a fixed order.

    ``data`` is a folder or object-store prefix every executor can read, or Spark DataFrames,
    written as Parquet first under ``staging``: a folder the executors can read (default: a
    temporary folder of the driver, which only a local master's executors share).
    """
    settings = settings or Settings()
    count = shards or spark.sparkContext.defaultParallelism
    budget = settings.trainset.max_rows
    base = Path(tempfile.mkdtemp(prefix="leadml-trainset-", dir=staging))
    staged = base / "input"
    source = _stage(data, staged) if isinstance(data, Mapping) and _spark_frames(data) else data

    def task(number: int) -> pd.DataFrame:
        shard = Shard(number, count)
        started = time.perf_counter()
        try:
            built = _shard_trainset(source, settings, shard, start, end, now)
        except errors.LeadmlError as exc:
            return _row(shard, 0, started, exc).assign(rows=None, report=None)
        if built is None:
            return _row(shard, 0, started, None).assign(rows=None, report=None)
        rows, report = built
        if budget is not None:
            rows = _sampled(rows, budget // count)
        payload = io.BytesIO()
        rows.to_parquet(payload, index=False)
        return _row(shard, len(rows), started, None).assign(
            rows=[payload.getvalue()], report=[report.to_json(orient="records", date_unit="us")]
        )

    try:
        done = _run(spark, count, task, _RESULT + ", rows binary, report string")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    _raise_first(done, count)
    parts = [pd.read_parquet(io.BytesIO(b)) for b in done["rows"] if b is not None]
    if not parts:
        raise errors.DataError(f"no shard of {count} has a mature snapshot: the history is "
                               "shorter than warm-up + one horizon")  # fmt: skip
    frame = pd.concat(parts, ignore_index=True).drop(columns="_key")
    twice = frame.duplicated(["lead_id", "as_of"])
    if twice.any():
        raise errors.DataError(
            f"leads: {int(twice.sum()):,} (lead, snapshot) rows came from two shards (e.g. lead "
            f"{frame['lead_id'][twice].iloc[0]}): the leads table repeats a lead id under "
            "different accounts; validate the whole history (leadml validate)"
        )
    frame = frame.sort_values(["as_of", "lead_id"], ignore_index=True)
    reports = [pd.DataFrame(json.loads(r)) for r in done["report"] if r]
    return TrainingSet(frame, _summed(reports))


def _shard_trainset(source, settings, shard, start, end, now):
    """(rows with their shard key ``_key``, report) of one shard; None for a shard without
    rows."""
    from leadml.data import load_data
    from leadml.data.shards import shard_keys
    from leadml.modeling.trainset import build_trainset as build

    data = load_data(source, settings, now=now, shard=shard)
    if not data.row_counts().get("leads"):
        return None
    try:
        built = build(data, start=start, end=end)
    except NoMatureSnapshot:
        # None among this shard's leads; the driver fails when no shard has one.
        return None
    rows = built.frame.assign(_key=shard_keys(data.con, "leads", built.frame["lead_id"]))
    return rows, built.report


def _sampled(rows: pd.DataFrame, budget: int) -> pd.DataFrame:
    """Whole keys (accounts, or leads without one), in a fixed pseudo-random order, while their
    rows fit in ``budget``."""
    per_key = rows.groupby("_key").size()
    order = sorted(per_key.index, key=lambda k: zlib.crc32(f"sample:{k}".encode()))
    total = per_key.loc[order].cumsum()
    return rows[rows["_key"].isin(total.index[total <= budget])]


def _summed(reports: list[pd.DataFrame]) -> pd.DataFrame:
    """The shards' per-snapshot reports as the whole history's."""
    both = pd.concat(reports, ignore_index=True)
    both["as_of"] = pd.to_datetime(both["as_of"], unit="us", utc=True)
    report = both.groupby("as_of", as_index=False).agg(
        open_leads=("open_leads", "sum"), mature=("mature", "first"), rows=("rows", "sum"),
        positives=("positives", "sum"),
    )  # fmt: skip
    report["positive_rate"] = report["positives"] / report["rows"].where(report["rows"] > 0)
    return report
