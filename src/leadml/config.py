"""Settings: the problem leadml solves, declared in YAML and loaded into strict typed objects.

Every section rejects unknown keys, so a typo such as ``horizon_day`` fails loudly with its path
instead of silently falling back to a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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


def _default_event_types() -> dict[str, EventType]:
    stages: dict[BuyingStage, tuple[str, ...]] = {
        "awareness": (
            "page_view",
            "blog_view",
            "newsletter_signup",
            "email_open",
            "ad_click",
            "social_engagement",
        ),
        "consideration": (
            "email_click",
            "content_download",
            "case_study_view",
            "webinar_registration",
            "webinar_attended",
            "pricing_page_view",
            "product_page_view",
        ),
        "decision": ("demo_request", "contact_request", "trial_signup", "consultation_request"),
        "none": ("unsubscribe", "email_bounce"),
    }
    return {name: EventType(stage=stage) for stage, names in stages.items() for name in names}


class DataSettings(_Strict):
    """How raw input maps onto the canonical contract."""

    event_types: dict[str, EventType] = Field(default_factory=_default_event_types)
    stage_aliases: dict[str, LifecycleStage] = Field(
        default_factory=lambda: {
            "marketing qualified": "mql",
            "sales accepted": "sal",
            "sales rejected": "srl",
            "sales qualified": "sql",
            "closed won": "customer",
            "closed lost": "lost",
        }
    )
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
    """What counts as a conversion: reaching ``stage`` within ``horizon_days`` of the as-of date."""

    stage: LifecycleStage = "sql"
    horizon_days: int = Field(default=90, gt=0)

    @field_validator("stage")
    @classmethod
    def _not_the_entry_stage(cls, stage: str) -> str:
        if stage == "lead":
            raise ValueError("the target stage cannot be 'lead': every lead starts there")
        return stage


class DomainSettings(_Strict):
    """E-mail domain lists; the e-mail itself never becomes a feature, only these flags."""

    free_mail: tuple[str, ...] = (
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "hotmail.com",
        "outlook.com",
        "live.com",
        "aol.com",
        "icloud.com",
        "proton.me",
        "protonmail.com",
        "gmx.de",
        "web.de",
        "mail.ru",
        "yandex.ru",
        "qq.com",
        "163.com",
    )
    # Suffixes: a domain ending in one of these belongs to a student.
    student_suffixes: tuple[str, ...] = (".edu", ".ac.uk", ".edu.au", ".ac.in", ".student.com")
    competitor: tuple[str, ...] = ()


def _default_seniority() -> dict[str, tuple[str, ...]]:
    # First match wins, so "vice president" is tried before "president".
    return {
        "student": ("student", "intern", "trainee", "apprentice", "graduate assistant"),
        "vp": ("vp", "vice president", "svp", "evp"),
        "c_level": (
            "chief",
            "ceo",
            "cto",
            "cfo",
            "cmo",
            "coo",
            "cio",
            "ciso",
            "cro",
            "founder",
            "co-founder",
            "owner",
            "president",
            "partner",
        ),
        "director": ("director", "head of", "head"),
        "manager": ("manager", "lead", "supervisor", "principal"),
        "individual_contributor": (
            "engineer",
            "developer",
            "analyst",
            "specialist",
            "coordinator",
            "associate",
            "consultant",
            "designer",
            "representative",
            "administrator",
            "assistant",
            "accountant",
            "architect",
            "scientist",
            "executive",
            "officer",
            "recruiter",
            "strategist",
            "writer",
            "buyer",
        ),
    }


def _default_department() -> dict[str, tuple[str, ...]]:
    return {
        "education": ("student", "intern", "professor", "teacher", "lecturer", "researcher"),
        "marketing": (
            "marketing",
            "cmo",
            "brand",
            "growth",
            "demand gen",
            "demand generation",
            "content",
            "seo",
            "communications",
            "campaign",
        ),
        "sales": (
            "sales",
            "cro",
            "account executive",
            "business development",
            "bdr",
            "sdr",
            "revenue",
            "account manager",
        ),
        "engineering": (
            "engineer",
            "engineering",
            "developer",
            "software",
            "devops",
            "cto",
            "architect",
            "data scientist",
            "product",
        ),
        "it": (
            "it",
            "information technology",
            "cio",
            "ciso",
            "systems",
            "infrastructure",
            "security",
            "network",
            "database",
        ),
        "finance": ("finance", "financial", "cfo", "accounting", "accountant", "controller"),
        "operations": ("operations", "coo", "supply chain", "logistics", "procurement", "buyer"),
        "hr": ("hr", "human resources", "people", "talent", "recruiter", "recruiting"),
        "executive": (
            "ceo",
            "founder",
            "co-founder",
            "owner",
            "president",
            "managing director",
            "general manager",
            "partner",
        ),
    }


def _default_regions() -> dict[str, tuple[str, ...]]:
    return {
        "north_america": ("US", "CA"),
        "latin_america": ("MX", "BR", "AR", "CL", "CO", "PE"),
        "europe": (
            "GB",
            "DE",
            "FR",
            "NL",
            "ES",
            "IT",
            "SE",
            "DK",
            "NO",
            "FI",
            "IE",
            "BE",
            "CH",
            "AT",
            "PL",
            "PT",
            "CZ",
        ),
        "middle_east_africa": ("AE", "SA", "IL", "ZA", "NG", "EG", "KE"),
        "asia_pacific": ("IN", "JP", "AU", "NZ", "SG", "CN", "KR", "HK", "ID", "PH", "MY"),
    }


class AttributeSettings(_Strict):
    """How raw lead and account attributes become normalised fit attributes.

    ``seniority`` and ``department`` map a level to words or phrases that, found in a job title
    (whole words, any case), place it there; the first level that matches wins. They apply only
    when the input has no ``seniority``/``department`` value of its own.
    """

    seniority: dict[str, tuple[str, ...]] = Field(default_factory=_default_seniority)
    department: dict[str, tuple[str, ...]] = Field(default_factory=_default_department)
    regions: dict[str, tuple[str, ...]] = Field(default_factory=_default_regions)
    # Upper edges of the company-size bands (employees) and revenue bands (currency units).
    company_size_edges: tuple[float, ...] = (10, 50, 200, 1_000, 5_000)
    revenue_edges: tuple[float, ...] = (1e6, 1e7, 5e7, 2.5e8, 1e9)

    @field_validator("company_size_edges", "revenue_edges")
    @classmethod
    def _increasing(cls, edges: tuple[float, ...]) -> tuple[float, ...]:
        if any(b <= a for a, b in zip(edges, edges[1:], strict=False)) or any(
            e <= 0 for e in edges
        ):
            raise ValueError(f"band edges must be positive and increasing, got {list(edges)}")
        return edges


class Settings(_Strict):
    """All of leadml's settings; sections are added as the pipeline grows."""

    data: DataSettings = Field(default_factory=DataSettings)
    target: TargetSettings = Field(default_factory=TargetSettings)
    domains: DomainSettings = Field(default_factory=DomainSettings)
    attributes: AttributeSettings = Field(default_factory=AttributeSettings)


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
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        else:
            message = error["msg"]
        got = error.get("input")
        shown = "" if isinstance(got, dict) or error["type"] == "missing" else f" (got {got!r})"
        lines.append(f"  {where}: {message}{shown}")
    return "\n".join(lines)
