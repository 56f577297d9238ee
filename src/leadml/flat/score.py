"""Scoring a new flat export with a model trained on one: probability, tier and rank per row.

The model (registry champion of ``flat.model_name`` by default, or the export's when the
tracking store is unreachable, as in nightly scoring) carries its own column handling, so the
new export is read exactly as the training one was; it must have the columns the model reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadml.common.atomic import write_atomic
from leadml.common.safe_text import to_csv
from leadml.config import Settings
from leadml.errors import DataError
from leadml.flat.preprocess import FlatPreprocessor
from leadml.flat.quality import DataQuality
from leadml.flat.read import FlatExport, read_flat
from leadml.flat.roles import unknown_column
from leadml.flat.train import flat_settings
from leadml.scoring import ModelMismatchError, OutputError, ScoringModel, assign_tiers
from leadml.scoring import resolve_model as _resolve

_EMAIL = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"
_SUFFIXES = (".parquet", ".csv", ".csv.gz")


@dataclass
class FlatScores:
    """Scores of one export: ``scores`` has the id column (or ``row``, the 1-based data row),
    ``mql_probability``, ``model_tier``, ``model_rank``, ``model_mql`` and the model's name,
    version and run; ``quality`` is what reading the file found."""

    scores: pd.DataFrame
    model: ScoringModel
    source: str
    quality: DataQuality
    warnings: list[str] = field(default_factory=list)
    path: Path | None = None


def score_flat(
    source: str | Path | pd.DataFrame | FlatExport,
    model: Any = None,
    settings: Settings | None = None,
    *,
    id: str | None = None,
) -> FlatScores:
    """Score every row of a flat export.

    Parameters
    ----------
    source
        CSV or Parquet file, DataFrame, or an export read by :func:`read_flat`.
    model
        ``None`` for the registry's champion of ``flat.model_name``; otherwise anything
        :func:`leadml.scoring.resolve_model` takes (``models:/NAME@ALIAS``, an export folder, a
        fitted model).
    id
        The column naming each row in the output (default: the model's training ``--id``).

    Raises
    ------
    ModelMismatchError
        The model was trained on the event history, or reads columns the export lacks.
    DataError
        The file cannot be read, the id column is missing or holds e-mail addresses.
    TrackingError
        No model can be found.
    ModelIntegrityError
        The stored model failed its checks (hash, path, skops types); nothing was loaded.
    """
    settings = flat_settings(settings or Settings())
    export = source if isinstance(source, FlatExport) else read_flat(source)
    scoring = _resolve(model, settings)
    about = scoring.metadata.get("flat") or {}
    if scoring.metadata.get("input", "flat" if about else None) == "events":
        raise ModelMismatchError(
            f"model {scoring.name} version {scoring.version} was trained on the event history; "
            "score it with 'leadml score --data', not on a flat export"
        )
    frame, source_name = export.frame, export.source
    needed = list(scoring.feature_names)
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ModelMismatchError(
            f"{source_name}: model {scoring.name} version {scoring.version} reads "
            f"{len(missing)} column(s) this export lacks: {missing[:8]} ({len(frame):,} rows, "
            f"{frame.shape[1]} columns); export the same columns as for training"
        )
    id_column = id or about.get("id_column")
    if id_column is not None and id_column not in frame.columns:
        if id is None:  # the model's own id column: carry on with row numbers, and say so
            id_column = None
        else:
            raise unknown_column(source_name, frame, id_column, "--id")
    warnings = (
        []
        if id_column or not about.get("id_column")
        else [
            f"the export has no {about['id_column']!r} column (the model's --id): rows are named "
            "by their number"
        ]
    )
    if id_column is not None:
        _refuse_emails(frame[id_column], source_name, id_column)
    probability = _predict(scoring.model, frame[needed], settings.scoring.chunk_rows)
    warnings += _empty_inputs(scoring.model, frame[needed])
    keys = frame[id_column].to_numpy() if id_column is not None else np.arange(1, len(frame) + 1)
    tier, rank = assign_tiers(probability, keys, settings)
    mql = np.isin(
        np.asarray(tier.codes), [list(tier.categories).index(t) for t in settings.scoring.tiers.mql]
    )
    scores = pd.DataFrame(
        {
            id_column or "row": keys,
            "mql_probability": probability,
            "model_tier": tier,
            "model_rank": rank,
            "model_mql": mql,
            "model_name": scoring.name,
            "model_version": str(scoring.version),
            "model_run_id": str(scoring.run_id),
            "scored_at": pd.Timestamp(datetime.now(UTC)).floor("s"),
        }
    )
    return FlatScores(scores, scoring, source_name, export.quality, warnings)


def score_flat_to(
    source: str | Path | pd.DataFrame | FlatExport,
    out: str | Path,
    model: Any = None,
    settings: Settings | None = None,
    *,
    id: str | None = None,
) -> FlatScores:
    """:func:`score_flat`, then write the scores to ``out`` (.parquet, .csv or .csv.gz)
    atomically: a reader sees the previous file or the new one, never half of it; on any
    error nothing is written. In a CSV file, ids a spreadsheet would run as a formula start
    with ``'`` (:mod:`leadml.common.safe_text`); the Parquet file holds them as they are."""
    out = Path(out)
    if not out.name.endswith(_SUFFIXES):
        raise OutputError(f"--out must end in .parquet, .csv or .csv.gz, not {out.name!r}")
    result = score_flat(source, model, settings, id=id)
    scores = result.scores.assign(model_tier=result.scores["model_tier"].astype("str"))

    def write(path: Path) -> None:
        if out.name.endswith(".parquet"):
            scores.to_parquet(path, index=False)
        else:
            to_csv(scores, path, index=False, compression="infer")  # .csv or .csv.gz

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, write)
    except OSError as exc:
        raise OutputError(f"writing {out} failed ({exc}); nothing was written") from None
    result.path = out
    return result


def _refuse_emails(ids: pd.Series, source: str, column: str) -> None:
    emails = ids.astype("str").str.strip().str.match(_EMAIL)
    if emails.any():
        example = str(ids[emails].iloc[0])
        local, _, domain = example.partition("@")
        raise DataError(
            f"{source}: column {column!r} holds e-mail addresses in {int(emails.sum()):,} rows "
            f"(e.g. {local[:1]}***@{domain}); score files carry the id, and e-mail addresses may "
            "not leave the pipeline: use a CRM id"
        )


def _predict(model, frame: pd.DataFrame, chunk: int) -> np.ndarray:
    parts = [
        model.predict_proba(frame.iloc[start : start + chunk])[:, 1]
        for start in range(0, len(frame), chunk)
    ]
    return np.concatenate(parts) if parts else np.empty(0)


def _preprocessor(model) -> FlatPreprocessor | None:
    """The export's column handling: the first step of a flat model, if it is one."""
    steps = getattr(model, "steps", None)
    if steps and isinstance(steps[0][1], FlatPreprocessor):
        return steps[0][1]
    return None


def _empty_inputs(model, frame: pd.DataFrame) -> list[str]:
    """A warning per model column with no usable value in this export (its effect is lost)."""
    step = _preprocessor(model)
    if step is None or not len(frame):
        return []
    parsed = step.transform(frame)
    empty = [c for c in parsed.columns if parsed[c].isna().all()]
    return [
        f"column {c!r} has no usable value in this export (all missing or unreadable): the "
        "model scores every row as if it were unknown"
        for c in empty
    ]
