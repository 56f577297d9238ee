"""Writing a history's tables, or its flat export, to files: each written to a temporary name
and renamed when complete, text cells made safe for spreadsheets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import pandas as pd

from leadml.common.atomic import write_atomic
from leadml.common.safe_text import to_csv
from leadml.synth.history import SampleHistory, SynthError

FLAT_SUFFIXES = (".csv", ".csv.gz", ".parquet")  # what ``write_flat`` writes, by file name


def write_history(
    history: SampleHistory,
    out_dir: str | os.PathLike[str],
    *,
    format: Literal["parquet", "csv"] = "parquet",
) -> dict[str, Path]:
    """Write ``accounts``, ``leads``, ``events``, ``stages`` and, apart from them, ``truth``.

    Each file is written to a temporary name in ``out_dir`` and renamed when complete, so a crash
    never leaves a half-written table behind.

    Parameters
    ----------
    history : SampleHistory
    out_dir : path
        Created if missing.
    format : {"parquet", "csv"}

    Returns
    -------
    dict of str to Path
        Table name -> written file, in the order accounts, leads, events, stages, truth.
    """
    if format not in ("parquet", "csv"):
        raise SynthError(f"format must be 'parquet' or 'csv', got {format!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, frame in {**history.tables(), "truth": history.truth}.items():
        written[name] = _write_whole(frame, out / f"{name}.{format}")
    return written


def write_flat(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a flat export as CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``) by suffix,
    to a temporary name renamed when complete. Returns the path written.

    Raises
    ------
    SynthError
        If the suffix is none of those.
    """
    path = Path(path)
    if not path.name.endswith(FLAT_SUFFIXES):
        raise SynthError(f"a flat export must end in .csv, .csv.gz or .parquet, not {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return _write_whole(frame, path)


def _write_whole(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` (Parquet, or CSV by suffix) atomically, text cells made safe for
    spreadsheets (:mod:`leadml.common.atomic`, :mod:`leadml.common.safe_text`)."""
    if path.suffix == ".parquet":
        return write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))
    compression = "gzip" if path.name.endswith(".gz") else None
    return write_atomic(
        path,
        lambda tmp: to_csv(
            frame, tmp, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ", compression=compression
        ),
    )
