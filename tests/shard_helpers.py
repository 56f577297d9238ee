"""Reading a night as its readers do, to compare a sharded night with an unsharded one."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from leadml.scoring import SUMMARY_JSON


def night_of(partition: Path) -> tuple[pd.DataFrame, dict]:
    """A partition's rows as a reader sees them (sorted by lead, without the time each was
    scored; the categories of a column differ from file to file) and its summary."""
    rows = pd.read_parquet(partition)
    categorical = rows.select_dtypes("category").columns
    rows = rows.astype(dict.fromkeys(categorical, "str"))
    rows = rows.sort_values("lead_id", ignore_index=True).drop(columns="scored_at")
    summary = json.loads((partition / SUMMARY_JSON).read_text())
    for key in ("scored_at", "timings_seconds", "shard_seconds", "shards"):
        summary.pop(key, None)
    return rows, summary


def rounded(summary: dict) -> dict:
    """A summary with every number to 10 significant digits (sums of rows, in another order)."""
    return json.loads(json.dumps(summary), parse_float=lambda text: float(f"{float(text):.10g}"))
