"""Reading and validating the input contract."""

from __future__ import annotations

from bench.harness import case, dataset
from leadml import validate_data


@case("validate: 1 M leads / ~50 M events from Parquet", max_seconds=15)
def validate_million():
    report = validate_data(dataset(1_000_000))
    return {"events": report.row_counts["events"], "errors": len(report.errors)}
