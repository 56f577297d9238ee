"""Settings: the problem leadml solves, declared in YAML and loaded into strict typed objects.

Every section rejects unknown keys, so a typo such as ``horizon_day`` fails loudly with its path
instead of silently falling back to a default. The sections live by stage:
:mod:`~leadml.config.inputs` (data, target, domains, attributes, features, trainset),
:mod:`~leadml.config.modeling` (split, model, flat, leakage, evaluation) and
:mod:`~leadml.config.serving` (tracking, scoring, report).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import yaml
from pydantic import Field, ValidationError

from leadml.config._base import Strict
from leadml.config.inputs import (
    LIFECYCLE_STAGES,
    AttributeSettings,
    BuyingStage,
    DataSettings,
    DomainSettings,
    EventType,
    FeatureSettings,
    LifecycleStage,
    PassthroughSettings,
    TargetSettings,
    TrainsetSettings,
)
from leadml.config.modeling import (
    CalibrationMethod,
    EvaluationSettings,
    FitnessSettings,
    FlatSettings,
    LeakageSettings,
    ModelFamily,
    ModelSettings,
    Role,
    SplitSettings,
)
from leadml.config.serving import (
    PromotionSettings,
    ReportSegment,
    ReportSettings,
    ScoringSettings,
    TierSettings,
    TrackingSettings,
)
from leadml.errors import ConfigError

#: Every setting with its default and a comment, shipped inside the package; equal to
#: ``Settings()`` and identical to ``configs/default.yaml`` in the repository (both tested).
DEFAULT_SETTINGS = files("leadml") / "configs" / "default.yaml"

__all__ = [
    "DEFAULT_SETTINGS",
    "LIFECYCLE_STAGES",
    "AttributeSettings",
    "BuyingStage",
    "CalibrationMethod",
    "DataSettings",
    "DomainSettings",
    "EvaluationSettings",
    "EventType",
    "FeatureSettings",
    "FitnessSettings",
    "FlatSettings",
    "LeakageSettings",
    "LifecycleStage",
    "ModelFamily",
    "ModelSettings",
    "PassthroughSettings",
    "PromotionSettings",
    "ReportSegment",
    "ReportSettings",
    "Role",
    "ScoringSettings",
    "Settings",
    "SplitSettings",
    "TargetSettings",
    "TierSettings",
    "TrackingSettings",
    "TrainsetSettings",
    "format_validation_error",
    "load_settings",
]


class Settings(Strict):
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
