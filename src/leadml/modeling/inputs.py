"""What a model was trained on, told one way for every input: the event history
(:class:`EventSummary`) and a flat CRM export (:class:`leadml.flat.FlatSummary`) both implement
:class:`InputSummary`, so tracking and the model card never ask which one they hold."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from leadml.config import Settings

if TYPE_CHECKING:
    from leadml.modeling.training import TrainingResult


class InputSummary(Protocol):
    """What a model was trained on, told the same way whatever the input: the event history
    (:class:`EventSummary`) or a flat export (:class:`leadml.flat.FlatSummary`). Tracking and
    the model card read a training run's input through this alone."""

    kind: str  # "events" or "flat": the leadml.input tag and the export's "input"
    has_rule_score: bool  # the rule score was measured on the test rows, next to the model
    inputs_label: str  # what the model card calls the model's inputs ("Features")
    rows_label: str  # and the test rows ("snapshot rows")
    requirements: tuple[str, ...]  # packages the logged model needs beyond the usual ones

    def target_text(self) -> str:
        """What the model predicts, in a few words (version tag and description)."""

    def run_label(self) -> str:
        """The target part of the training run's name."""

    def run_tags(self) -> dict[str, str]:
        """Tags of the training run that depend on the input (``leadml.target``)."""

    def run_params(self) -> dict[str, str]:
        """Parameters of the training run that describe the input, as JSON text."""

    def export_metadata(self) -> dict | None:
        """What scoring a new input needs to know, JSON-ready (None: nothing beyond the
        features)."""

    def write_artifacts(self, folder: Path) -> None:
        """Write the input's own artifacts (data quality, column roles) into ``folder``, which
        has a ``tables`` folder."""

    def card_sections(self, result: TrainingResult) -> list[str]:
        """The model card's "What it predicts" and "Data" sections, up to the windows table."""

    def card_caveats(self) -> list[str]:
        """The model card's caveats that come with this input."""


@dataclass(frozen=True)
class EventSummary:
    """The event history: weekly snapshots of open leads, the target stage within the horizon."""

    stage: str
    horizon_days: int

    # Class attributes, not fields (see InputSummary).
    kind = "events"
    has_rule_score = True
    inputs_label = "Features"
    rows_label = "snapshot rows"
    requirements = ()

    @classmethod
    def of(cls, settings: Settings) -> EventSummary:
        """The event history as ``settings`` describe its target."""
        return cls(settings.target.stage, settings.target.horizon_days)

    def target_text(self) -> str:
        """What the model predicts.

        Examples
        --------
        >>> EventSummary("sql", 90).target_text()
        'sql within 90 days'
        """
        return f"{self.stage} within {self.horizon_days} days"

    def run_label(self) -> str:
        return f"{self.stage}@{self.horizon_days}d"

    def run_tags(self) -> dict[str, str]:
        return {"leadml.target": self.stage}

    def run_params(self) -> dict[str, str]:
        return {}  # the settings say it all

    def export_metadata(self) -> None:
        return None

    def write_artifacts(self, folder: Path) -> None:
        return None

    def card_sections(self, result: TrainingResult) -> list[str]:
        return [
            "## What it predicts",
            "",
            f"The probability that an open lead reaches **{self.stage.upper()}** within "
            f"**{self.horizon_days} days** of the scoring date, from fit and engagement features "
            "computed strictly before that date.",
            "",
            "## Data",
            "",
            "Weekly snapshots of open leads, split by time; each later window starts one horizon "
            "after the previous one ends, so no label looks into a later window. Snapshots whose "
            "horizon runs past the end of the data are left out (their outcome is unknown).",
            "",
        ]

    def card_caveats(self) -> list[str]:
        return []
