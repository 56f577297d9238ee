"""The data-quality summary of a flat export: every mess found in it and what was done about it.

Each finding names the column (or the file), how many rows it touched, one example value (never
from a column holding personal data) and the action taken, in the style of
:class:`leadml.data.validation.Problem`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd

from leadml.common.safe_text import md_code, md_text


@dataclass(frozen=True)
class QualityFinding:
    """One kind of mess in one column (``column`` None: the file as a whole)."""

    column: str | None
    issue: str  # short code, e.g. "placeholder", "thousands_separator", "mixed_types"
    detail: str  # what was found and what was done, in plain words
    rows: int | None = None
    example: str | None = None

    def format(self) -> str:
        where = self.column if self.column is not None else "(file)"
        rows = "" if self.rows is None else f" {self.rows:,} row{'s' if self.rows != 1 else ''}:"
        example = "" if self.example is None else f" (e.g. {self.example!r})"
        return f"{where}:{rows} {self.detail}{example}"


@dataclass
class DataQuality:
    """Every finding, in the order found: the file first, then column by column."""

    source: str
    rows: int
    columns: int
    findings: list[QualityFinding] = field(default_factory=list)

    def add(self, finding: QualityFinding) -> None:
        self.findings.append(finding)

    def issues(self, column: str | None = None) -> list[str]:
        """The issue codes found (for one column, or the file with ``column=None``)."""
        return [f.issue for f in self.findings if f.column == column]

    def to_frame(self) -> pd.DataFrame:
        columns = ["column", "issue", "rows", "detail", "example"]
        return pd.DataFrame([asdict(f) for f in self.findings], columns=columns)

    def format(self) -> str:
        head = (
            f"Data quality of {self.source}: {self.rows:,} rows x {self.columns} columns, "
            f"{len(self.findings)} finding(s)."
        )
        return "\n".join([head, *(f"  {f.format()}" for f in self.findings)])

    def markdown(self) -> str:
        lines = [
            f"{md_text(self.source)}: {self.rows:,} rows x {self.columns} columns.",
            "",
            "| column | rows | finding |",
            "|---|---|---|",
        ]
        for f in self.findings:
            example = f" (e.g. {md_code(f.example)})" if f.example is not None else ""
            rows = f"{f.rows:,}" if f.rows is not None else ""
            # In a table cell even a code span needs its pipes escaped (GitHub's tables).
            detail = md_text(f.detail.replace("|", "/"), 1000) + example.replace("|", "\\|")
            column = md_text(f.column) if f.column is not None else "(file)"
            lines.append(f"| {column} | {rows} | {detail} |")
        return "\n".join(lines)
