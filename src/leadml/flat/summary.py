"""How a flat export was read for training (:class:`FlatSummary`): what the model was trained
on, told to tracking and the model card the same way as the event history
(:class:`leadml.modeling.training.InputSummary`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from leadml.common.safe_text import DISPLAY_LIMIT, md_code, md_text, shorten_json, to_csv
from leadml.flat.quality import DataQuality

if TYPE_CHECKING:
    from leadml.modeling.training import TrainingResult


@dataclass
class FlatSummary:
    """How a flat export was read for training: the file, the target, the key columns, every
    column's role and fate (``columns``) and the data-quality findings.

    What the model was trained on (:class:`leadml.modeling.training.InputSummary`), as tracking and
    the model card tell it: a flat export has no rule score, and its model needs leadml itself.
    """

    source: str
    target: str
    positive: str
    rows: int  # in the file
    rows_used: int  # with a target (and, with a time column, a readable date)
    columns: pd.DataFrame  # column, role, used, note, leakage
    quality: DataQuality
    id: str | None = None
    time: str | None = None
    exclude: list[str] = field(default_factory=list)
    path: str | None = None

    # Class attributes, not fields (see leadml.modeling.training.InputSummary).
    kind = "flat"
    has_rule_score = False
    inputs_label = "Export columns read"
    rows_label = "rows"
    requirements = ("leadml",)  # the model's first step is leadml's FlatPreprocessor

    def metadata(self) -> dict:
        """JSON-ready: what scoring a new export needs to know, and the columns' fate."""
        return {
            "source": self.source,
            "target": self.target,
            "positive": self.positive,
            "id_column": self.id,
            "time_column": self.time,
            "exclude": list(self.exclude),
            "rows": self.rows,
            "rows_used": self.rows_used,
            "columns": self.columns.to_dict(orient="records"),
        }

    def target_text(self) -> str:
        return f"{self.target} = {self.positive!r} ({self.source})"

    def run_label(self) -> str:
        return f"flat {self.source}: {self.target}"

    def run_tags(self) -> dict[str, str]:
        return {"leadml.target": self.target_text()}

    def run_params(self) -> dict[str, str]:
        about = self.metadata()
        keys = ("source", "target", "positive", "id_column", "time_column", "exclude", "rows",
                "rows_used")  # fmt: skip
        return {f"flat.run.{key}": json.dumps(about[key], default=str) for key in keys}

    def export_metadata(self) -> dict:
        """:meth:`metadata`, its column notes (which quote values) cut for display; the names
        scoring reads (id, time and target columns) stay whole."""
        about = self.metadata()
        return about | {"columns": shorten_json(about["columns"])}

    def write_artifacts(self, folder: Path) -> None:
        """``data_quality.md``, ``tables/data_quality.csv`` and ``tables/columns.csv``: written
        for cold starts too, since they often explain them."""
        text = "# Data quality\n\n" + self.quality.markdown() + "\n"
        (folder / "data_quality.md").write_text(text)
        for frame, name in ((self.quality.to_frame(), "data_quality"), (self.columns, "columns")):
            to_csv(frame, folder / "tables" / f"{name}.csv", index=False, limit=DISPLAY_LIMIT)

    def card_sections(self, result: TrainingResult) -> list[str]:
        columns = self.columns
        used = int(columns["used"].sum())
        how = (
            f"by time ({md_text(self.time)}): trained on the earliest rows, calibrated on the "
            "next, tested on the latest"
            if result.validation == "time"
            else f"by {int(result.evaluation.metrics.get('cv_folds', 0)) or 'k'}-fold stratified "
            "cross-validation: every row predicted by a model (searched, fitted and calibrated) "
            "that never saw it"
            if result.evaluation is not None
            else "by stratified cross-validation"
        )
        return [
            "## What it predicts",
            "",
            f"The probability that a lead converts ({md_code(self.target)} = "
            f"{md_code(self.positive)}), from the columns of a flat export like "
            f"{md_code(self.source)}, each read the way it was in training.",
            "",
            "## Data",
            "",
            f"{md_code(self.source)}: {self.rows:,} rows, {self.rows_used:,} with a target"
            + (" and a date" if self.time else "")
            + f"; {used} of {len(columns)} columns used (roles in `tables/columns.csv`, data "
            f"quality in `data_quality.md`: {len(self.quality.findings)} finding(s)). Validated "
            f"{how}.",
            "",
        ]

    def card_caveats(self) -> list[str]:
        return [
            "- A flat export is a snapshot taken after many outcomes were known: the leakage "
            "guard catches the usual post-outcome columns, not every one; read the column list "
            "before trusting the figures.",
            "- Recent leads in an export may not have had time to convert yet; they count as not "
            "converted.",
        ]
