"""The nightly job: check the inputs, take the partition's lock, score, write, record."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from leadml.common.atomic import sweep_scratch
from leadml.common.safe_text import csv_safe
from leadml.config import Settings
from leadml.data import LeadData
from leadml.data.readers import Source
from leadml.errors import OutputError
from leadml.scoring import _output
from leadml.scoring._core import Progress, ScoringResult, prepare, run
from leadml.scoring._database import database_target, reach, write_scores

log = logging.getLogger("leadml.scoring")


def score_to(
    data: LeadData | Source,
    as_of: pd.Timestamp | str,
    out: str | Path,
    model: Any = None,
    settings: Settings | None = None,
    *,
    rules: Any = None,
    csv: bool = False,
    track: bool = True,
    progress: Progress | None = None,
    now: pd.Timestamp | str | None = None,
) -> ScoringResult:
    """Score the leads open at ``as_of`` and write partition ``out/as_of=YYYY-MM-DD``, or, when
    ``out`` is a database URI ending in a table (``postgresql://…/schema.table``, ``sqlite:``,
    ``duckdb:``), replace that night's rows of the table in one transaction (no summary files
    then: the summary goes to MLflow).

    In order: the inputs, rules and model are checked (on any problem nothing is written);
    the partition's lock is taken (another run on it: :class:`OutputLockedError`); the leads
    are scored; the partition is written to a staging folder and swapped in atomically (a
    failure leaves the previous partition as it was); the summary is logged to MLflow
    (``tracking.scoring_experiment``) unless ``track`` is False. A tracking store that cannot
    be reached is a warning, not a failure: the scores are already written.

    The partition holds ``part-0.parquet`` (``as_of`` is the partition column: read the folder
    with ``pd.read_parquet(out)``), ``_summary.json``, ``_summary.md``, and ``_scores.csv``
    with ``csv``.
    """
    target = database_target(out)
    if target is not None and csv:
        raise OutputError("--csv writes a file into a partition folder: not with a database --out")
    prepared = prepare(data, as_of, model, settings, rules=rules, now=now)
    sweep_scratch()  # working folders of killed runs (a training can leave 15 MB)
    if target is None:
        result = _write_partition(prepared, Path(out), csv, progress)
    else:
        reach(target[0])
        result = run(prepared, progress=progress)
        table = _table(result.scores, partitioned=False)
        result.path = write_scores(*target, table, result.as_of)
        prepared.clock.lap("write", "%s", result.path)
    if track and not prepared.model.store_unreachable:
        result.tracking_run_id = track_summary(
            prepared.settings, result.summary, result.markdown, result.warnings
        )
        prepared.clock.lap("mlflow", "run %s", result.tracking_run_id)
    result.summary["timings_seconds"] = dict(prepared.clock.seconds)
    return result


def _write_partition(prepared, out: Path, csv: bool, progress: Progress | None) -> ScoringResult:
    name = _output.partition_name(prepared.as_of)
    with _output.partition_lock(out, name):
        _output.recover(out, name)
        result = run(prepared, progress=progress)
        clock = prepared.clock
        writers = {
            _output.PARQUET_FILE: lambda path: write_parquet(result.scores, result.as_of, path),
            _output.SUMMARY_JSON: lambda path: path.write_text(
                json.dumps(result.summary, indent=2, default=str) + "\n"
            ),
            _output.SUMMARY_MD: lambda path: path.write_text(result.markdown),
        }
        if csv:
            writers[_output.CSV_FILE] = lambda path: _write_csv(result.scores, path)
        result.path = _output.write_partition(out, name, writers)
        clock.lap("write", "%s", result.path)
    return result


def track_summary(
    settings: Settings, summary: dict, markdown: str, warnings: list[str]
) -> str | None:
    """Log a night's summary to MLflow; a store that cannot be reached is a warning (appended
    to ``warnings``): the scores are written already."""
    from leadml.errors import TrackingError
    from leadml.scoring._summary import metrics
    from leadml.tracking import log_scoring

    model = summary["model"]
    try:
        return log_scoring(
            settings, summary, markdown, metrics=metrics(summary),
            model_name=model["name"], model_version=model["version"], model_run_id=model["run_id"],
        )  # fmt: skip
    except TrackingError as exc:
        message = f"the run summary was not logged to MLflow: {exc}"
        log.warning(message)
        warnings.append(message)
        return None


def _table(scores: pd.DataFrame, *, partitioned: bool) -> pa.Table:
    frame = scores.drop(columns="as_of", errors="ignore") if partitioned else scores
    with warnings.catch_warnings():
        # pyarrow reads timezone-aware columns through Series.values, which pandas 3.1 flags.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        table = pa.Table.from_pandas(frame, preserve_index=False)
    # Text columns as dictionaries with 32-bit codes: a reader of a partition of several files
    # (the shards of a night) unifies their dictionaries, which 8-bit codes may not hold.
    wide = pa.schema([
        f.with_type(pa.dictionary(pa.int32(), f.type.value_type))
        if pa.types.is_dictionary(f.type) else f
        for f in table.schema
    ], metadata=table.schema.metadata)  # fmt: skip
    return table.cast(wide)


def write_parquet(scores: pd.DataFrame, as_of: pd.Timestamp, path: Path, **meta: str) -> None:
    """Write a partition's score file (without its partition column, ``as_of``, which is in
    the file's metadata with ``meta``: ``leadml.<key>``)."""
    table = _table(scores, partitioned=True)
    meta = {**dict(table.schema.metadata or {}), **{f"leadml.{k}".encode(): str(v).encode()
                                                   for k, v in meta.items()}}  # fmt: skip
    meta[b"leadml.as_of"] = as_of.isoformat().encode()
    pq.write_table(table.replace_schema_metadata(meta), path, compression="zstd",
                   compression_level=1)  # fmt: skip


def _write_csv(scores: pd.DataFrame, path: Path) -> None:
    # Formula-like text gets its quote (leadml.common.safe_text); pyarrow writes large frames fast.
    table = _table(csv_safe(scores), partitioned=False)
    plain = pa.table({
        name: column.cast(column.type.value_type)
        if pa.types.is_dictionary(column.type)
        else column
        for name, column in zip(table.column_names, table.columns, strict=True)
    })  # fmt: skip
    pacsv.write_csv(plain, path)
