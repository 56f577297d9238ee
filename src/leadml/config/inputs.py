"""Settings of the input side: how raw data maps onto the contract, what counts as a conversion,
how attributes are normalised, and what the features and the training spine see."""

from __future__ import annotations

import itertools
from typing import Literal

from pydantic import Field, field_validator, model_validator

from leadml.config._base import Strict
from leadml.config.vocabularies import (
    DEPARTMENT_WORDS,
    EVENT_TYPES_BY_STAGE,
    FREE_MAIL_DOMAINS,
    REGIONS,
    SENIORITY_WORDS,
    STAGE_ALIASES,
    STUDENT_SUFFIXES,
)

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


class EventType(Strict):
    """A canonical engagement action: its buying stage and the raw names that mean it."""

    stage: BuyingStage
    aliases: tuple[str, ...] = ()


class DataSettings(Strict):
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
    # Where each table lives in a database given as --data (postgresql://, sqlite:///,
    # duckdb:///): table -> name, schema-qualified where needed ("crm.leads"); default the plain
    # table name.
    tables: dict[str, str] = Field(default_factory=dict)

    @field_validator("tables")
    @classmethod
    def _known_tables(cls, tables: dict[str, str]) -> dict[str, str]:
        from leadml.config.contract import TABLES

        unknown = sorted(set(tables) - set(TABLES))
        if unknown:
            raise ValueError(f"unknown table(s) {unknown}; expected some of {list(TABLES)}")
        empty = sorted(t for t, name in tables.items() if not name.strip())
        if empty:
            raise ValueError(f"empty table name for {empty}")
        return tables

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


class TargetSettings(Strict):
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


class DomainSettings(Strict):
    """E-mail domain lists; the e-mail itself never becomes a feature, only these flags."""

    free_mail: tuple[str, ...] = FREE_MAIL_DOMAINS
    # Suffixes: a domain ending in one of these belongs to a student.
    student_suffixes: tuple[str, ...] = STUDENT_SUFFIXES
    competitor: tuple[str, ...] = ()


class AttributeSettings(Strict):
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


class PassthroughSettings(Strict):
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


class FeatureSettings(Strict):
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


class TrainsetSettings(Strict):
    """The training spine: snapshots of the open leads every ``cadence_days``.

    Snapshots fall at midnight UTC, counted back from the end of the data (or the ``end`` given),
    so the latest snapshot is as fresh as the data allows; snapshots whose horizon runs past the
    end of the data are immature and left out (and counted).
    """

    cadence_days: int = Field(default=7, gt=0)
    # Snapshots start this many days after the first lead was created, so the first ones are
    # not made of a handful of brand-new leads.
    warmup_days: int = Field(default=30, ge=0)
    # Built on Spark (leadml.spark.build_trainset): at most this many rows reach the driver,
    # whole accounts sampled; none: every row.
    max_rows: int | None = Field(default=None, ge=1)
