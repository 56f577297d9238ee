"""Settings: the problem leadml solves, declared in YAML and loaded into strict typed objects.

Every section rejects unknown keys, so a typo such as ``horizon_day`` fails loudly with its path
instead of silently falling back to a default.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from leadml.config.vocabularies import (
    DEPARTMENT_WORDS,
    EVENT_TYPES_BY_STAGE,
    FREE_MAIL_DOMAINS,
    NO_ANSWER_PLACEHOLDERS,
    POST_OUTCOME_WORDS,
    REGIONS,
    SENIORITY_WORDS,
    STAGE_ALIASES,
    STUDENT_SUFFIXES,
)
from leadml.errors import ConfigError

BuyingStage = Literal["awareness", "consideration", "decision", "none"]

LIFECYCLE_STAGES = (
    "lead",
    "mql",
    "sal",
    "srl",
    "sql",
    "opportunity",
    "customer",
    "lost",
    "disqualified",
)
LifecycleStage = Literal[
    "lead", "mql", "sal", "srl", "sql", "opportunity", "customer", "lost", "disqualified"
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventType(_Strict):
    """A canonical engagement action: its buying stage and the raw names that mean it."""

    stage: BuyingStage
    aliases: tuple[str, ...] = ()


class DataSettings(_Strict):
    """How raw input maps onto the canonical contract."""

    event_types: dict[str, EventType] = Field(
        default_factory=lambda: {
            name: EventType(stage=stage)
            for stage, names in EVENT_TYPES_BY_STAGE.items()
            for name in names
        }
    )
    stage_aliases: dict[str, LifecycleStage] = Field(default_factory=lambda: dict(STAGE_ALIASES))
    terminal_stages: tuple[LifecycleStage, ...] = ("customer", "lost", "disqualified")
    # Seconds of clock skew tolerated before a timestamp counts as "in the future".
    future_tolerance_seconds: int = Field(default=300, ge=0)

    @model_validator(mode="after")
    def _aliases_are_unambiguous(self) -> DataSettings:
        seen: dict[str, str] = {}
        for name, event_type in self.event_types.items():
            for raw in (name, *event_type.aliases):
                key = raw.strip().lower()
                if key in seen and seen[key] != name:
                    raise ValueError(
                        f"raw event type {raw!r} maps to both {seen[key]!r} and {name!r}"
                    )
                seen[key] = name
        return self

    def event_type_lookup(self) -> dict[str, str]:
        """Lower-cased raw name -> canonical event type (canonical names map to themselves)."""
        return {
            raw.strip().lower(): name
            for name, event_type in self.event_types.items()
            for raw in (name, *event_type.aliases)
        }

    def buying_stage_lookup(self) -> dict[str, str]:
        """Canonical event type -> buying stage."""
        return {name: event_type.stage for name, event_type in self.event_types.items()}

    def stage_lookup(self) -> dict[str, str]:
        """Lower-cased raw stage name -> canonical lifecycle stage."""
        lookup = {stage: stage for stage in LIFECYCLE_STAGES}
        lookup.update({raw.strip().lower(): stage for raw, stage in self.stage_aliases.items()})
        return lookup


class TargetSettings(_Strict):
    """What counts as a conversion: reaching ``stage`` within ``horizon_days`` of the as-of date,
    and how long a lead stays open without activity (``stale_after_days``)."""

    stage: LifecycleStage = "sql"
    horizon_days: int = Field(default=90, gt=0)
    # A lead with no activity (creation, event, stage change) in this many days is no longer open
    # (leadml.data.asof); None keeps every lead open until it converts or reaches a terminal stage.
    stale_after_days: int | None = Field(default=365, gt=0)

    @field_validator("stage")
    @classmethod
    def _not_the_entry_stage(cls, stage: str) -> str:
        if stage == "lead":
            raise ValueError("the target stage cannot be 'lead': every lead starts there")
        return stage


class DomainSettings(_Strict):
    """E-mail domain lists; the e-mail itself never becomes a feature, only these flags."""

    free_mail: tuple[str, ...] = FREE_MAIL_DOMAINS
    # Suffixes: a domain ending in one of these belongs to a student.
    student_suffixes: tuple[str, ...] = STUDENT_SUFFIXES
    competitor: tuple[str, ...] = ()


class AttributeSettings(_Strict):
    """How raw lead and account attributes become normalised fit attributes.

    ``seniority`` and ``department`` map a level to words or phrases that, found in a job title
    (whole words, any case), place it there; the first level that matches wins. They apply only
    when the input has no ``seniority``/``department`` value of its own.
    """

    seniority: dict[str, tuple[str, ...]] = Field(default_factory=lambda: dict(SENIORITY_WORDS))
    department: dict[str, tuple[str, ...]] = Field(default_factory=lambda: dict(DEPARTMENT_WORDS))
    regions: dict[str, tuple[str, ...]] = Field(default_factory=lambda: dict(REGIONS))
    # Upper edges of the company-size bands (employees) and revenue bands (currency units).
    company_size_edges: tuple[float, ...] = (10, 50, 200, 1_000, 5_000)
    revenue_edges: tuple[float, ...] = (1e6, 1e7, 5e7, 2.5e8, 1e9)

    @field_validator("company_size_edges", "revenue_edges")
    @classmethod
    def _increasing(cls, edges: tuple[float, ...]) -> tuple[float, ...]:
        if any(b <= a for a, b in itertools.pairwise(edges)) or any(e <= 0 for e in edges):
            raise ValueError(f"band edges must be positive and increasing, got {list(edges)}")
        return edges


class PassthroughSettings(_Strict):
    """Extra input columns (beyond the contract) copied into the features as they are.

    Lead and account attributes carry no history, so they are taken as known from the lead's
    creation on. A lead column ``x`` becomes feature ``lead_x``, an account column ``account_x``.
    PII columns (e-mail, names, phone) are refused.
    """

    leads: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()

    @field_validator("leads", "accounts")
    @classmethod
    def _no_pii(cls, columns: tuple[str, ...]) -> tuple[str, ...]:
        from leadml.config.contract import PII_COLUMNS

        pii = sorted({c for c in columns if c.strip().lower() in PII_COLUMNS})
        if pii:
            raise ValueError(f"PII column(s) {pii} may never become features")
        return columns


class FeatureSettings(_Strict):
    """Point-in-time features: windows of the engagement counts and what else goes in.

    A ``w``-day window at ``T`` is ``[T - w days, T)``.
    """

    # Count windows of the lead's own engagement (per event type, per buying stage, active days,
    # distinct content).
    windows_days: tuple[int, ...] = Field(default=(7, 30, 90), min_length=1)
    # Trend: events in the last trend_days vs the trend_days before them.
    trend_days: int = Field(default=30, gt=0)
    # Count windows of the buying committee's engagement (the other leads at the account).
    account_windows_days: tuple[int, ...] = Field(default=(30, 90), min_length=1)
    passthrough: PassthroughSettings = Field(default_factory=PassthroughSettings)

    @field_validator("windows_days", "account_windows_days")
    @classmethod
    def _windows(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        if any(d <= 0 for d in days) or len(set(days)) != len(days):
            raise ValueError(f"windows must be distinct positive numbers of days, got {list(days)}")
        return tuple(sorted(days))


class TrainsetSettings(_Strict):
    """The training spine: snapshots of the open leads every ``cadence_days``.

    Snapshots fall at midnight UTC, counted back from the end of the data (or the ``end`` given),
    so the latest snapshot is as fresh as the data allows; snapshots whose horizon runs past the
    end of the data are immature and left out (and counted).
    """

    cadence_days: int = Field(default=7, gt=0)
    # Snapshots start this many days after the first lead was created, so the first ones are
    # not made of a handful of brand-new leads.
    warmup_days: int = Field(default=30, ge=0)


ModelFamily = Literal["logistic", "hist_gradient_boosting"]
CalibrationMethod = Literal["sigmoid", "isotonic", "temperature"]


class SplitSettings(_Strict):
    """Time windows, by snapshot date: train | gap | calibrate | gap | test (latest), sized by
    their share of the mature conversions.

    Each gap is one horizon, so no training label peeks into the calibration window and no
    calibration label into the test window.
    """

    # "auto": the calendar windows below (test: the last test_days of snapshots, calibration:
    # calibration_days before it) while each holds enough conversions, else windows sized by
    # their share of the mature conversions (a young CRM's first months may hold none, its last
    # ones only outcomes arriving); "days" or "conversions" to force one.
    placement: Literal["auto", "days", "conversions"] = "auto"
    calibration_days: int = Field(default=91, gt=0)
    test_days: int = Field(default=91, gt=0)
    test_share: float = Field(default=0.25, gt=0, lt=0.5)
    calibration_share: float = Field(default=0.2, gt=0, lt=0.5)
    # A calibration or test window needs at least this many conversions (and as many leads that
    # did not convert). Without enough for a calibration window, calibration is cross-fitted
    # inside the training window; without enough for a test window, it is a cold start.
    min_window_positives: int = Field(default=30, ge=1)


class FitnessSettings(_Strict):
    """The fitness gate at training time: a model that fails it is logged with the reasons but
    not registered or exported (``leadml train`` exits 10; ``--force`` registers it anyway)."""

    # The lower bound of the bootstrap interval of the test ROC AUC must exceed this.
    min_roc_auc_lower_bound: float = Field(default=0.5, ge=0, lt=1)
    # Where a rule score exists, the model's test ROC AUC must be at least the rules' + this.
    min_roc_auc_over_rules: float = Field(default=0.0, ge=-1, le=1)
    # Resamples of the bootstrap intervals (leads resampled whole) and their level.
    bootstrap_resamples: int = Field(default=200, ge=20)
    interval_level: float = Field(default=0.95, gt=0.5, lt=1)


class ModelSettings(_Strict):
    """Which models compete, how they are searched and calibrated, and when not to trust one."""

    candidates: tuple[ModelFamily, ...] = Field(
        default=("logistic", "hist_gradient_boosting"), min_length=1
    )
    # Time-ordered folds inside the training window for the hyper-parameter search.
    search_folds: int = Field(default=3, ge=2)
    # The search runs on at most this many training rows (sampled by lead); the winner is then
    # refitted on the whole training window.
    search_max_rows: int = Field(default=100_000, gt=0)
    calibration_methods: tuple[CalibrationMethod, ...] = Field(
        default=("sigmoid", "isotonic", "temperature"), min_length=1
    )
    # Isotonic calibration overfits on few positives; below this many it is not tried.
    isotonic_min_positives: int = Field(default=500, ge=0)
    # Data sufficiency (both inputs): with fewer rows or fewer conversions (or non-conversions)
    # than this to train on, no model is registered and the rule score remains the answer.
    min_training_rows: int = Field(default=500, ge=1)
    min_training_positives: int = Field(default=100, ge=1)
    # Prior shift: when the conversion rate of the latest mature snapshots (the last
    # prior_shift_days of a window, widened back until they hold prior_shift_min_positives
    # conversions) differs from what calibration expects by more than chance, an intercept on
    # the calibrated log-odds follows it. The ranking is unchanged.
    prior_shift: bool = True
    prior_shift_days: int = Field(default=28, gt=0)
    prior_shift_min_positives: int = Field(default=50, ge=1)
    fitness: FitnessSettings = Field(default_factory=FitnessSettings)
    random_state: int = 0


Role = Literal["numeric", "categorical", "boolean", "date", "identifier", "free_text", "ignore"]


class FlatSettings(_Strict):
    """Flat CRM exports (``leadml train --flat``): one row per lead, its attributes, aggregated
    activity columns and a converted flag.

    Column roles are inferred from the values; ``roles`` overrides them by column name.
    """

    # Column -> role (numeric, categorical, boolean, date, identifier, free_text, ignore).
    roles: dict[str, Role] = Field(default_factory=dict)
    placeholders: tuple[str, ...] = NO_ANSWER_PLACEHOLDERS
    # Spellings of yes/no (ignoring case): a column whose values are all among them is boolean.
    true_values: tuple[str, ...] = ("yes", "y", "true", "t", "1")
    false_values: tuple[str, ...] = ("no", "n", "false", "f", "0")
    # A column is numeric (or a date) when at least this share of its present values parse as
    # one; the others are mixed types, reported and read as missing.
    parse_min_share: float = Field(default=0.95, gt=0.5, le=1)
    # Text whose values average at least this many characters, mostly distinct, is free text
    # (notes, comments): reported, not modelled.
    free_text_min_length: int = Field(default=40, ge=1)
    # Validation without a time column: stratified folds, every row predicted out of fold.
    cv_folds: int = Field(default=5, ge=2)
    # Share of the rows a model is calibrated on (held out from its fit), and, with a time
    # column, share of the latest rows it is tested on.
    calibration_share: float = Field(default=0.2, gt=0, lt=0.5)
    test_share: float = Field(default=0.2, gt=0, lt=0.5)
    # The prior-shift correction (model.prior_shift) on exports validated by time. Off by
    # default: an export's converted flag is read when it is exported, so its newest leads have
    # not all had time to convert, and a correction would read that as a falling rate. Turn it on
    # for exports that hold only leads whose outcome is known.
    prior_shift: bool = False
    # Models trained on flat exports are registered under their own name: they take an export's
    # columns, not the event features, so they must never become the nightly scorer's champion.
    model_name: str = "leadml-mql-flat"

    @model_validator(mode="after")
    def _yes_is_not_no(self) -> FlatSettings:
        both = {v.lower() for v in self.true_values} & {v.lower() for v in self.false_values}
        if both:
            raise ValueError(f"true_values and false_values share {sorted(both)}")
        return self


class LeakageSettings(_Strict):
    """The leakage guard, run before every training (flat exports and the event features).

    A flagged column is left out unless listed in ``allow`` (or ``--allow-column``).
    """

    # Out-of-fold ROC AUC of one column's values alone at or above this: "almost perfect".
    max_single_column_auc: float = Field(default=0.95, gt=0.5, le=1)
    # Values whose rows have the rarer outcome at least this often are "pure"; a column whose
    # pure values hold at least max_pure_share of all rows with that outcome is flagged.
    purity: float = Field(default=0.95, gt=0.5, le=1)
    max_pure_share: float = Field(default=0.25, gt=0, le=1)
    # Filled in for one class at most this fraction as often as for the other (e.g. 0.05: a
    # deal amount present for 30% of converted leads and under 1.5% of the others).
    presence_ratio: float = Field(default=0.05, ge=0, lt=1)
    # A value (or a presence pattern) needs this many rows before it can count as evidence.
    min_rows_per_value: int = Field(default=20, ge=1)
    # (Almost) one value per lead: an identifier, which lets a model memorise rows.
    identifier_unique_share: float = Field(default=0.95, gt=0.5, le=1)
    # Whole words of column names (ignoring case and a plural s); phrases match word runs.
    post_outcome_names: tuple[str, ...] = POST_OUTCOME_WORDS
    # Flat exports with --time: a date column more than this share of whose present dates fall
    # on a later day than the row's own time (a close date) is post-outcome; 1 turns it off.
    max_after_time_share: float = Field(default=0.05, ge=0, le=1)
    # Columns kept although flagged: a knowing decision, recorded in the report.
    allow: tuple[str, ...] = ()
    # The statistics use at most this many rows (sampled) and this many folds.
    max_rows: int = Field(default=200_000, ge=1_000)
    folds: int = Field(default=5, ge=2)


class EvaluationSettings(_Strict):
    """What the test-window comparison of model and rules reports."""

    # Sales capacity as a share of the scored leads, and as leads per weekly snapshot.
    capacity_fractions: tuple[float, ...] = (0.05, 0.10, 0.20)
    capacity_per_week: tuple[int, ...] = (100,)
    segments: tuple[str, ...] = ("industry", "company_size_band", "lead_source")
    calibration_bins: int = Field(default=10, ge=2)

    @field_validator("capacity_fractions")
    @classmethod
    def _fractions(cls, values: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 < v <= 1 for v in values):
            raise ValueError(f"capacity fractions must be in (0, 1], got {list(values)}")
        return values


class PromotionSettings(_Strict):
    """The gate a challenger must pass to become champion, on the challenger's test window."""

    # Metric -> how much worse than the current champion the challenger may be (0 = not worse).
    # Higher is better for roc_auc and pr_auc; lower is better for log_loss, brier and ece.
    tolerances: dict[Literal["roc_auc", "pr_auc", "log_loss", "brier", "ece"], float] = Field(
        default_factory=lambda: {"roc_auc": 0.0, "log_loss": 0.0}
    )
    # The challenger must also rank better than the rule score on the same rows.
    must_beat_rules: bool = True


class TrackingSettings(_Strict):
    """Where runs and models go. ``uri`` None: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db."""

    uri: str | None = None
    experiment: str = "leadml"
    scoring_experiment: str = "leadml-scoring"
    model_name: str = "leadml-mql"
    export_dir: str = "models"
    promotion: PromotionSettings = Field(default_factory=PromotionSettings)


class TierSettings(_Strict):
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


class ScoringSettings(_Strict):
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


class ReportSettings(_Strict):
    """The funnel report (``leadml report``): its period and how it breaks the funnel down.

    The report compares the MQLs of each definition (the CRM's, the rules', the model's) over the
    last ``period_days`` whose outcomes are known: each MQL is followed for one target horizon.
    """

    period_days: int = Field(default=91, gt=0)
    segments: tuple[ReportSegment, ...] = ("lead_source", "industry", "company_size_band")


class Settings(_Strict):
    """All of leadml's settings; sections are added as the pipeline grows."""

    data: DataSettings = Field(default_factory=DataSettings)
    target: TargetSettings = Field(default_factory=TargetSettings)
    domains: DomainSettings = Field(default_factory=DomainSettings)
    attributes: AttributeSettings = Field(default_factory=AttributeSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    trainset: TrainsetSettings = Field(default_factory=TrainsetSettings)
    split: SplitSettings = Field(default_factory=SplitSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)
    flat: FlatSettings = Field(default_factory=FlatSettings)
    leakage: LeakageSettings = Field(default_factory=LeakageSettings)


def load_settings(path: str | Path | None = None) -> Settings:
    """Load settings from a YAML file; ``None`` gives the built-in defaults.

    Raises
    ------
    ConfigError
        Naming the file and the dotted path of every unknown, missing or mistyped key.
    """
    if path is None:
        return Settings()
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}:\n" + format_validation_error(exc)) from None


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: ``  section.key: message (got value)``."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        got = error.get("input")
        shown = "" if isinstance(got, dict) or error["type"] == "missing" else f" (got {got!r})"
        lines.append(f"  {where}: {message}{shown}")
    return "\n".join(lines)
