"""Sharded nights: each process scores a shard of the open leads (see
:mod:`leadml.data.shards`), one step joins them.

Each row of a shard is the row the unsharded run writes. What ranks a lead against the others
(tier, rank, model MQL, agreement) and the run summary need the whole night: :func:`finish_night`
adds them once every shard is in.

While a night is in shards::

    out/
      .as_of=2026-06-29.shards/     hidden from Parquet readers
        shard-3-of-7.parquet        shard 3's rows, without the night's columns
        shard-3-of-7.json           its manifest: rows, model, settings, summary sums

Each file is replaced atomically, the manifest last, and both carry the attempt's token: a shard
run again (a retried task) replaces its files and never adds rows. :func:`finish_night` writes
the partition (``part-<shard>.parquet`` per shard, ``_summary.json``, ``_summary.md``) with one
atomic swap, then removes the shard folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leadml.common.atomic import replacing
from leadml.common.steps import StepClock
from leadml.config import Settings, load_settings
from leadml.data import LeadData
from leadml.data.readers import Source, parse_instant
from leadml.data.shards import Shard, shard_keys, shard_numbers
from leadml.errors import ConfigError, DataError, OutputError
from leadml.scoring import _output
from leadml.scoring._core import (
    NIGHT_COLUMNS,
    night_columns,
    no_open_lead,
    prepare,
    score_columns,
    score_rows,
)
from leadml.scoring._nightly import track_summary, write_parquet
from leadml.scoring._summary import NightStats, model_facts, render_markdown, summarise

log = logging.getLogger("leadml.scoring")


def in_shard(data: LeadData, spine: pd.DataFrame, shard: Shard) -> np.ndarray:
    """Which leads of ``spine`` are in ``shard`` (a boolean mask)."""
    if data.shard == shard:  # read as this shard: every lead is
        return np.ones(len(spine), dtype=bool)
    if data.shard is not None:
        raise ConfigError(f"the data holds shard {data.shard} of its input, not {shard}: read "
                          "it whole or as this shard")  # fmt: skip
    keys = shard_keys(data.con, "leads", spine["lead_id"])
    return shard_numbers(keys, shard.count) == shard.index


@dataclass
class ShardResult:
    """What :func:`score_shard` wrote."""

    shard: Shard
    as_of: pd.Timestamp
    rows: int
    path: Path
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def score_shard(
    data: LeadData | Source,
    as_of: pd.Timestamp | str,
    out: str | Path,
    shard: Shard | str,
    model: Any = None,
    settings: Settings | None = None,
    *,
    rules: Any = None,
    now: pd.Timestamp | str | None = None,
) -> ShardResult:
    """Score the leads of ``shard`` open at ``as_of`` into the night's shard folder in ``out``
    (see the module's documentation); :func:`finish_night` then writes the partition.

    ``data`` other than a :class:`LeadData` is read and validated for this shard's rows only.
    """
    shard = Shard.parse(shard)
    prepared = prepare(data, as_of, model, settings, rules=rules, now=now, shard=shard)

    scored = score_rows(prepared, keep=lambda loaded, spine: in_shard(loaded, spine, shard))
    folder = shard_folder(Path(out), prepared.as_of)
    token = uuid.uuid4().hex
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("shard-*"):  # an earlier run of this night in other shards
            if not stale.name.endswith(f"-of-{shard.count}{stale.suffix}"):
                stale.unlink(missing_ok=True)
        scores_file = folder / f"{shard.stem}.parquet"
        if len(scored.rows):
            with replacing(scores_file) as path:
                write_parquet(scored.rows, prepared.as_of, path, attempt=token)
        else:
            scores_file.unlink(missing_ok=True)
        prepared.clock.lap("write", "shard %s: %s leads", shard, f"{len(scored.rows):,}")
        manifest = {
            "shard": shard.index,
            "shards": shard.count,
            "attempt": token,
            "as_of": prepared.as_of.isoformat(),
            "scored_at": scored.scored_at.isoformat(),
            "rows": len(scored.rows),
            "model": model_facts(prepared.model),
            "reference": prepared.model.reference,
            "settings": settings_digest(prepared.settings),
            "rules": _digest(prepared.rules.model_dump_json()),
            "input": [str(t) for t in (prepared.data.first_created(), prepared.data.end())],
            "stats": scored.stats.to_dict(),
            "timings": dict(prepared.clock.seconds),
        }
        with replacing(folder / f"{shard.stem}.json") as path:
            path.write_text(json.dumps(manifest, default=str) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write shard {shard} into {folder}: {exc}") from None
    return ShardResult(shard, prepared.as_of, len(scored.rows), folder / f"{shard.stem}.json",
                       scored.stats.notes.format(), dict(prepared.clock.seconds))  # fmt: skip


def shard_folder(out: Path, as_of: pd.Timestamp) -> Path:
    return out / f".{_output.partition_name(as_of)}.shards"


def settings_digest(settings: Settings) -> str:
    """A fingerprint of the settings that shape a night's scores: the shards and their finish
    must agree on every one (where MLflow is may differ from process to process)."""
    return _digest(settings.model_dump_json(exclude={"tracking"}))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class FinishedNight:
    """The partition :func:`finish_night` wrote."""

    as_of: pd.Timestamp
    shards: int
    summary: dict
    markdown: str
    path: Path
    tracking_run_id: str | None = None
    warnings: list[str] = field(default_factory=list)


def finish_night(
    out: str | Path,
    as_of: pd.Timestamp | str,
    settings: Settings | None = None,
    *,
    track: bool = True,
) -> FinishedNight:
    """Join the shards of night ``as_of`` in ``out`` into its partition, with the tiers, ranks
    and summary of the whole night, and log the summary to MLflow unless ``track`` is False.

    Raises
    ------
    OutputError
        A shard is missing or was scored with another model or settings; nothing is written.
    OutputLockedError
        Another run writes the partition.
    """
    settings = settings or load_settings(None)
    as_of, out = parse_instant(as_of, "as_of"), Path(out)
    clock = StepClock(log)
    folder = shard_folder(out, as_of)
    name = _output.partition_name(as_of)
    with _output.partition_lock(out, name):
        _output.recover(out, name)
        manifests = _complete_shards(folder, settings)
        clock.lap("shards", "%d shards of %s", len(manifests), name)
        files = [folder / f"{Shard(m['shard'], m['shards']).stem}.parquet" for m in manifests]
        narrow = [_narrow(f, m) for f, m in zip(files, manifests, strict=True)]
        night = pd.concat(narrow, ignore_index=True)
        if not len(night):
            raise DataError(no_open_lead(as_of))
        if not night["lead_id"].is_unique:
            twice = night["lead_id"][night["lead_id"].duplicated()]
            raise OutputError(
                f"{len(twice):,} lead ids are in more than one shard (e.g. {twice.iloc[0]}): the "
                "leads table repeats them under different accounts; validate the whole history "
                "(leadml validate) and fix it; nothing was written"
            )
        # In lead-id order, the unsharded run's: the same sums to the last bit.
        order = night["lead_id"].argsort(kind="stable").to_numpy()
        night = night.iloc[order].reset_index(drop=True)
        night = night.assign(**night_columns(night, settings))
        clock.lap("rank", "%s leads", f"{len(night):,}")

        stats = NightStats.merge([NightStats.from_dict(m["stats"]) for m in manifests])
        if stats.reasons_from_sample and len(manifests) > 1:
            stats.notes.warnings.append(
                f"reasons by {stats.method} rank features on each shard's own leads: a sharded "
                "night's reasons may differ from an unsharded night's"
            )
        model = manifests[0]["model"]
        summary = summarise(
            night, stats, as_of=as_of, model=model, reference=manifests[0]["reference"],
            settings=settings, scored_at=max(pd.Timestamp(m["scored_at"]) for m in manifests),
        )  # fmt: skip
        summary["shards"] = len(manifests)
        summary["shard_seconds"] = _shard_seconds(manifests)
        summary["timings_seconds"] = dict(clock.seconds)  # the finish's own
        markdown = render_markdown(summary)
        back = np.empty(len(order), dtype="int64")
        back[order] = np.arange(len(order))
        writers, start = {}, 0
        for file, manifest in zip(files, manifests, strict=True):
            rows = manifest["rows"]
            if rows:
                part = night.iloc[back[start : start + rows]]
                writers[f"part-{manifest['shard']}.parquet"] = _part_writer(
                    file, manifest, part, as_of
                )
            start += rows
        writers[_output.SUMMARY_JSON] = lambda path: path.write_text(
            json.dumps(summary, indent=2, default=str) + "\n"
        )
        writers[_output.SUMMARY_MD] = lambda path: path.write_text(markdown)
        path = _output.write_partition(out, name, writers)
        clock.lap("write", "%s", path)
        summary["timings_seconds"] = dict(clock.seconds)  # the finish's own
        shutil.rmtree(folder, ignore_errors=True)  # the night is written: they are spent
    warnings = list(summary["warnings"])
    run_id = track_summary(settings, summary, markdown, warnings) if track else None
    return FinishedNight(as_of, len(manifests), summary, markdown, path, run_id, warnings)


def _complete_shards(folder: Path, settings: Settings) -> list[dict]:
    """Every shard's manifest, checked: all N shards in, one model, these settings."""
    if not folder.is_dir():
        raise OutputError(f"no shards to finish in {folder}: score the night with --shard "
                          "I/N first (nothing was written)")  # fmt: skip
    manifests = []
    for path in sorted(folder.glob("shard-*.json")):
        try:
            manifest = json.loads(path.read_text())
            if not isinstance(manifest, dict) or _MANIFEST - set(manifest):
                raise ValueError(f"it lacks {sorted(_MANIFEST - set(manifest or {}))}")
        except (OSError, ValueError) as exc:
            raise OutputError(f"shard manifest {path} cannot be read ({exc}); score that "
                              "shard again; nothing was written") from None  # fmt: skip
        manifests.append(manifest)
    if not manifests:
        raise OutputError(f"no shard has finished in {folder}; nothing was written")
    counts = sorted({m["shards"] for m in manifests})
    if len(counts) > 1:
        raise OutputError(
            f"{folder} holds shards of nights cut in {counts} shards: score the night again "
            "in one number of shards; nothing was written"
        )
    count = counts[0]
    manifests.sort(key=lambda m: m["shard"])
    missing = sorted(set(range(count)) - {m["shard"] for m in manifests})
    if missing:
        raise OutputError(
            f"{len(missing)} of {count} shards are not in {folder} (e.g. shard "
            f"{missing[0]}/{count}): score them, then finish again; nothing was written"
        )
    models = {(m["model"]["name"], m["model"]["version"], m["model"]["run_id"]) for m in manifests}
    if len(models) > 1:
        raise OutputError(f"the shards in {folder} were scored with {len(models)} models "
                          f"({sorted(map(str, models))}): score them again with one model; "
                          "nothing was written")  # fmt: skip
    for what, key in (("rules files", "rules"), ("inputs (histories of other spans)", "input")):
        if len({json.dumps(m[key]) for m in manifests}) > 1:
            raise OutputError(f"the shards in {folder} were scored from different {what}: "
                              "score them again from one; nothing was written")  # fmt: skip
    if any(m["settings"] != settings_digest(settings) for m in manifests):
        raise OutputError(
            f"the shards in {folder} were scored with other settings than these: finish with "
            "the --config the shards were scored with; nothing was written"
        )
    return manifests


_MANIFEST = {"shard", "shards", "attempt", "as_of", "scored_at", "rows", "model", "reference",
             "settings", "rules", "input", "stats", "timings"}  # fmt: skip


def _narrow(file: Path, manifest: dict) -> pd.DataFrame:
    """The columns the night's ranks and summary need, of one shard's file."""
    columns = ["lead_id", "mql_probability", "rule_mql"]
    if not manifest["rows"]:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                             zip(columns, ["str", "float64", "bool"], strict=True)})  # fmt: skip
    try:
        return _read_shard(file, manifest, columns)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise OutputError(f"{file} cannot be read ({exc}): score that shard again") from None


def _part_writer(file: Path, manifest: dict, night: pd.DataFrame, as_of: pd.Timestamp):
    def write(path: Path) -> None:
        try:
            rows = _read_shard(file, manifest)
            for column in NIGHT_COLUMNS:
                rows[column] = night[column].array
        except (ValueError, pa.ArrowException) as exc:
            raise OutputError(f"{file} cannot be read ({exc}): score that shard again") from None
        write_parquet(rows[score_columns(rows.columns)], as_of, path)

    return write


def _read_shard(file: Path, manifest: dict, columns: list[str] | None = None) -> pd.DataFrame:
    """A shard's rows, from the attempt its manifest describes (else an error: a retried task
    replaced the file since)."""
    table = pq.read_table(file, columns=columns)
    if (table.schema.metadata or {}).get(b"leadml.attempt", b"").decode() != manifest["attempt"]:
        raise OutputError(
            f"{file} is not the file its manifest describes (a shard run stopped between them, "
            "or runs again now): score that shard again"
        )
    return table.to_pandas()


def _shard_seconds(manifests: list[dict]) -> dict[str, float]:
    """Seconds per step, summed over the shards (task time, not wall time: shards may run at
    the same time)."""
    total: dict[str, float] = {}
    for manifest in manifests:
        for step, seconds in manifest["timings"].items():
            total[step] = round(total.get(step, 0.0) + seconds, 3)
    return total
