"""Settings of what follows training: tracking, the registry's promotion gate, the nightly scorer
and the funnel report."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from leadml.config._base import Strict


class PromotionSettings(Strict):
    """The gate a challenger must pass to become champion, on the challenger's test window."""

    # Metric -> how much worse than the current champion the challenger may be (0 = not worse).
    # Higher is better for roc_auc and pr_auc; lower is better for log_loss, brier and ece.
    tolerances: dict[Literal["roc_auc", "pr_auc", "log_loss", "brier", "ece"], float] = Field(
        default_factory=lambda: {"roc_auc": 0.0, "log_loss": 0.0}
    )
    # The challenger must also rank better than the rule score on the same rows.
    must_beat_rules: bool = True


class TrackingSettings(Strict):
    """Where runs and models go. ``uri`` None: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db."""

    uri: str | None = None
    experiment: str = "leadml"
    scoring_experiment: str = "leadml-scoring"
    model_name: str = "leadml-mql"
    export_dir: str = "models"
    promotion: PromotionSettings = Field(default_factory=PromotionSettings)


class TierSettings(Strict):
    """Model tiers, best first: by probability bands or by sales capacity.

    ``probability``: tier -> lowest probability of the tier (the last must be 0, so every lead
    gets one). ``capacity``: tier -> cumulative share of the open leads, ranked by probability,
    that the tier and the tiers above it hold (the last must be 1). Both name the same tiers.
    """

    by: Literal["probability", "capacity"] = "probability"
    probability: dict[str, float] = Field(
        default_factory=lambda: {"A": 0.30, "B": 0.15, "C": 0.05, "D": 0.0}
    )
    capacity: dict[str, float] = Field(
        default_factory=lambda: {"A": 0.02, "B": 0.10, "C": 0.30, "D": 1.0}
    )
    # A lead in one of these tiers is a model MQL (compared with the rules' MQL).
    mql: tuple[str, ...] = ("A", "B")

    @model_validator(mode="after")
    def _bands(self) -> TierSettings:
        from itertools import pairwise

        low = list(self.probability.values())
        share = list(self.capacity.values())
        if not low or any(b >= a for a, b in pairwise(low)) or low[-1] != 0:
            raise ValueError(f"probability bands must decrease to 0, got {self.probability}")
        if any(v < 0 or v > 1 for v in low):
            raise ValueError(f"probability bands must lie in [0, 1], got {self.probability}")
        if not share or any(b <= a for a, b in pairwise(share)) or share[0] <= 0 or share[-1] != 1:
            raise ValueError(f"capacity shares must increase to 1, got {self.capacity}")
        if list(self.probability) != list(self.capacity):
            raise ValueError(
                f"probability and capacity must name the same tiers in the same order, got "
                f"{list(self.probability)} and {list(self.capacity)}"
            )
        unknown = [t for t in self.mql if t not in self.probability]
        if unknown:
            raise ValueError(
                f"mql names unknown tier(s) {unknown}; tiers: {list(self.probability)}"
            )
        return self


class ScoringSettings(Strict):
    """The nightly batch scorer: tiers, reasons, drift and the run summary."""

    tiers: TierSettings = Field(default_factory=TierSettings)
    # Reasons: the features whose value moved the lead's probability most against a reference
    # lead (training median; 0 for counts), among the `reason_features` most important ones.
    reasons: int = Field(default=3, ge=0, le=10)
    reason_features: int = Field(default=30, ge=1)
    # Effects smaller than this in log-odds (0.05: the odds change by about 5%) are not named.
    reason_min_log_odds: float = Field(default=0.05, ge=0)
    # Drift against the model's training data: population stability index (PSI) of the score and
    # of the `drift_features` most important features; a warning past the threshold.
    drift_features: int = Field(default=10, ge=0)
    psi_warning: float = Field(default=0.2, gt=0)
    # The summary lists the ids of this many leads the rules miss that the model ranks highest.
    top_missed: int = Field(default=25, ge=0)
    # Leads scored per chunk: bounds the memory of prediction and reasons.
    chunk_rows: int = Field(default=100_000, ge=1_000)


#: Lead attributes a report can break the funnel down by (see ``leadml.data.attributes``).
ReportSegment = Literal[
    "lead_source", "industry", "company_size_band", "revenue_band", "country", "region",
    "seniority", "department",
]  # fmt: skip


class ReportSettings(Strict):
    """The funnel report (``leadml report``): its period and how it breaks the funnel down.

    The report compares the MQLs of each definition (the CRM's, the rules', the model's) over the
    last ``period_days`` whose outcomes are known: each MQL is followed for one target horizon.
    """

    period_days: int = Field(default=91, gt=0)
    segments: tuple[ReportSegment, ...] = ("lead_source", "industry", "company_size_band")
