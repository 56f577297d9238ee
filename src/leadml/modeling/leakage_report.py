"""The leakage guard's report: what it found, per column and check, in words, Markdown and JSON.

Built by :func:`leadml.modeling.leakage.check_leakage`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from leadml.common.safe_text import md_text


@dataclass(frozen=True)
class Finding:
    """One reason to distrust one column."""

    column: str
    check: str  # one of leadml.modeling.leakage.CHECKS
    reason: str


@dataclass
class LeakageReport:
    """What the guard found: ``findings`` (one per column and check), the columns ``allowed``
    although flagged, and ``columns``: the figures of every column examined."""

    findings: list[Finding]
    columns: pd.DataFrame
    allowed: list[str] = field(default_factory=list)
    rows: int = 0
    positives: int = 0

    @property
    def flagged(self) -> list[str]:
        """Flagged columns, in the order of the frame."""
        names = {f.column for f in self.findings}
        return [c for c in self.columns["column"] if c in names]

    @property
    def excluded(self) -> list[str]:
        """Flagged columns left out of the model (flagged and not allowed)."""
        return [c for c in self.flagged if c not in self.allowed]

    def reasons(self, column: str) -> list[Finding]:
        return [f for f in self.findings if f.column == column]

    def to_frame(self) -> pd.DataFrame:
        """One row per finding: column, check, action (excluded or kept), reason."""
        rows = [
            {
                "column": f.column,
                "check": f.check,
                "action": "kept (allowed)" if f.column in self.allowed else "excluded",
                "reason": f.reason,
            }
            for f in self.findings
        ]
        return pd.DataFrame(rows, columns=["column", "check", "action", "reason"])

    def to_dict(self) -> dict:
        """JSON-ready: counts, and per flagged column its action and reasons."""
        return {
            "rows": self.rows,
            "positives": self.positives,
            "columns_checked": len(self.columns),
            "excluded": self.excluded,
            "allowed": [c for c in self.allowed if c in self.flagged],
            "flagged": {
                c: {
                    "action": "kept (allowed)" if c in self.allowed else "excluded",
                    "reasons": [{"check": f.check, "reason": f.reason} for f in self.reasons(c)],
                }
                for c in self.flagged
            },
        }

    def format(self) -> str:
        """The report in plain words, one block per flagged column."""
        kept = [c for c in self.flagged if c in self.allowed]
        head = (
            f"Leakage guard: {len(self.flagged)} of {len(self.columns)} columns flagged on "
            f"{self.rows:,} rows ({self.positives:,} converted); {len(self.excluded)} left out"
            + (f", {len(kept)} kept on purpose (allowed)" if kept else "")
            + "."
        )
        lines = [head]
        for column in self.flagged:
            action = "KEPT (allowed)" if column in self.allowed else "excluded"
            lines.append(f"  {column}: {action}")
            lines += [f"    - {f.check}: {f.reason}" for f in self.reasons(column)]
        return "\n".join(lines)

    def markdown(self) -> str:
        """The report as Markdown (for the model card and the MLflow artifact)."""
        if not self.flagged:
            return (
                f"No column flagged among {len(self.columns)} examined on {self.rows:,} rows "
                f"({self.positives:,} converted)."
            )
        lines = [
            f"{len(self.flagged)} of {len(self.columns)} columns flagged on {self.rows:,} rows "
            f"({self.positives:,} converted):",
            "",
            "| column | action | why |",
            "|---|---|---|",
        ]
        for column in self.flagged:
            action = "kept (allowed)" if column in self.allowed else "excluded"
            why = "; ".join(f"{f.check}: {f.reason}" for f in self.reasons(column))
            lines.append(f"| {md_text(column)} | {action} | {md_text(why, 1000)} |")
        return "\n".join(lines)
