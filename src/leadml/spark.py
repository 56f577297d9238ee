"""Nightly scoring on Spark, with leadml's own engine in every task (``pip install leadml[spark]``).

Spark runs ``groupBy("shard").applyInPandas`` over the night's shard numbers. Each task reads
its shard's rows of the input (:func:`leadml.load_data` with ``shard``: DuckDB and the compiled
loops, as on one machine), scores them with the model the driver resolved (broadcast, so read once
per executor) and writes its shard's files; the driver then joins the shards into the night's
partition (:func:`leadml.scoring.finish_night`). A task that Spark runs again replaces its shard's
files: a night never holds a row twice.

The input is a folder or object-store prefix that every executor can read (each task reads it),
or the four tables as Spark DataFrames, which are first written as Parquet under ``out``. The
output folder must be one the executors and the driver share (a local folder with a local
master, a mounted volume on a cluster). See docs/scale.md.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from leadml import errors
from leadml.config import Settings
from leadml.data.asof import to_utc
from leadml.data.readers import Source
from leadml.data.shards import Shard
from leadml.scoring import (
    FinishedNight,
    ShardResult,
    finish_night,
    partition_name,
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
    settings = settings or Settings()
    as_of, out = to_utc(as_of), Path(out)
    count = shards or spark.sparkContext.defaultParallelism
    resolved = resolve_model(model, settings)
    from leadml.rules import load_rules

    checked_rules = load_rules(rules, settings)
    staged = out / f".{partition_name(as_of)}.spark-input"
    source = _stage(data, staged) if isinstance(data, Mapping) and _spark_frames(data) else data
    shared = spark.sparkContext.broadcast(resolved)

    def task(frame: pd.DataFrame) -> pd.DataFrame:
        shard = Shard(int(frame["shard"].iloc[0]), count)
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
    failed = done[done["error_type"].notna()]
    if len(failed):
        first = failed.iloc[0]
        raise _error(first["error_type"], int(first["exit_code"]))(
            f"shard {int(first['shard'])}/{count}: {first['error']}"
        )
    log.info("%d shards scored in %.1f s of task time", count, done["seconds"].sum())
    return finish_night(out, as_of, settings, track=track)


def _run(spark, count: int, task) -> pd.DataFrame:
    """``task`` once per shard, one Spark task each."""
    numbers = spark.createDataFrame([(i,) for i in range(count)], "shard int")
    with warnings.catch_warnings():
        # PySpark 4.3 warns that it does not fully support pandas 3; the frames it passes here
        # are a shard number in and a few numbers and texts out.
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
        grouped = numbers.repartition(count, "shard").groupBy("shard")
        return grouped.applyInPandas(task, schema=_RESULT).toPandas()


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
        spark = frame.sparkSession
        previous = spark.conf.get("spark.sql.parquet.outputTimestampType", None)
        spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        try:
            frame.write.mode("overwrite").parquet(str(folder / name))
        finally:
            if previous is not None:
                spark.conf.set("spark.sql.parquet.outputTimestampType", previous)
    return folder
