"""The rules file's strict schema: fit and engagement rules, groups, grades and the MQL threshold.

Build a :class:`Rules` with :func:`leadml.rules.load_rules`, which reports every problem at once
(:mod:`leadml.rules._loading`); the values a rule may name are checked in
:mod:`leadml.rules._checks`, against the settings the rules will run with (the canonical event
types are configurable).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
    field_validator,
    model_validator,
)

from leadml.config import Settings
from leadml.rules._checks import (
    check_attribute,
    check_buying_stages,
    check_event_types,
    check_in,
    check_is,
    check_name,
    check_range,
)

#: Group names that would collide with the section-cap columns ``cap__fit``/``cap__engagement``.
RESERVED_GROUPS = frozenset({"fit", "engagement"})

Number = Annotated[float, Strict()]
Positive = Annotated[float, Strict(), Field(gt=0)]


def _as_tuple(value: Any) -> Any:
    """Let a single value stand for a one-element list (``event_type: demo_request``)."""
    return (value,) if isinstance(value, str | int | float | bool) else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Interval(_Strict):
    """``from`` (inclusive) up to ``below`` (exclusive); either end may be left open."""

    from_: Number | None = Field(default=None, alias="from")
    below: Number | None = None

    def contains(self, value: float) -> bool:
        low = -math.inf if self.from_ is None else self.from_
        high = math.inf if self.below is None else self.below
        return low <= value < high

    def __str__(self) -> str:
        low = "-inf" if self.from_ is None else f"{self.from_:g}"
        high = "inf" if self.below is None else f"{self.below:g}"
        return f"[{low}, {high})"


class Range(Interval):
    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.from_ is None and self.below is None:
            raise ValueError("a range needs 'from', 'below' or both")
        if self.from_ is not None and self.below is not None and self.from_ >= self.below:
            raise ValueError(f"'from' ({self.from_:g}) must be less than 'below' ({self.below:g})")
        return self


class Decay(_Strict):
    """How an event's points fade with its age. Neither key: no decay (``decay: none``)."""

    half_life_days: Positive | None = None
    lifespan_days: Positive | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Decay:
        if self.half_life_days is not None and self.lifespan_days is not None:
            raise ValueError("choose one of 'half_life_days' and 'lifespan_days', not both")
        return self

    @property
    def active(self) -> bool:
        return self.half_life_days is not None or self.lifespan_days is not None


def _decay_before(value: Any) -> Any:
    if value is False or (isinstance(value, str) and value.strip().lower() == "none"):
        return {}
    if isinstance(value, str):
        raise ValueError(f"{value!r}: write 'none', {{half_life_days: N}} or {{lifespan_days: N}}")
    return value


class FitRule(_Strict):
    """Points when a fit attribute of the lead matches: ``in`` a list, in a ``range``, or ``is``."""

    name: str
    attribute: str
    in_: tuple[Annotated[str, Strict()], ...] | None = Field(default=None, alias="in")
    range: Range | None = None
    is_: Annotated[bool, Strict()] | None = Field(default=None, alias="is")
    points: Number
    group: str | None = None

    @field_validator("name", "group")
    @classmethod
    def _valid_name(cls, value: str | None) -> str | None:
        return value if value is None else check_name(value)

    @field_validator("in_", mode="before")
    @classmethod
    def _one_value_is_a_list(cls, value: Any) -> Any:
        return _as_tuple(value)

    @field_validator("attribute")
    @classmethod
    def _known_attribute(cls, value: str) -> str:
        return check_attribute(value)

    @field_validator("in_")
    @classmethod
    def _in_fits_attribute(cls, values: tuple[str, ...] | None, info: ValidationInfo):
        attribute = info.data.get("attribute")
        if values is not None and attribute is not None:
            check_in(attribute, values, _settings(info))
        return values

    @field_validator("range")
    @classmethod
    def _range_fits_attribute(cls, value: Range | None, info: ValidationInfo):
        attribute = info.data.get("attribute")
        if value is not None and attribute is not None:
            check_range(attribute)
        return value

    @field_validator("is_")
    @classmethod
    def _is_fits_attribute(cls, value: bool | None, info: ValidationInfo):
        attribute = info.data.get("attribute")
        if value is not None and attribute is not None:
            check_is(attribute)
        return value

    @model_validator(mode="after")
    def _one_condition(self) -> FitRule:
        given = [k for k, v in (("in", self.in_), ("range", self.range), ("is", self.is_))
                 if v is not None]  # fmt: skip
        if len(given) != 1:
            raise ValueError(
                "a fit rule needs exactly one condition of 'in', 'range' and 'is'"
                + (f" (got {' and '.join(given)})" if given else "")
            )
        return self


class EngagementRule(_Strict):
    """Points per event of the given canonical types or buying stages, with caps and decay; or,
    with ``inactive_days``, points once when the lead has had such events but none in the last
    ``inactive_days`` days (a CRM's "no activity in 90 days": a lead never engaged is not
    inactive)."""

    name: str
    event_type: tuple[str, ...] | None = None
    buying_stage: tuple[str, ...] | None = None
    points: Number
    cap: Positive | None = None
    window_days: Positive | None = None
    decay: Decay | None = None  # None: the section's default decay
    inactive_days: Positive | None = None
    group: str | None = None

    @field_validator("name", "group")
    @classmethod
    def _valid_name(cls, value: str | None) -> str | None:
        return value if value is None else check_name(value)

    @field_validator("event_type", "buying_stage", mode="before")
    @classmethod
    def _one_value_is_a_list(cls, value: Any) -> Any:
        return _as_tuple(value)

    @field_validator("decay", mode="before")
    @classmethod
    def _none_means_no_decay(cls, value: Any) -> Any:
        return _decay_before(value)

    @field_validator("event_type")
    @classmethod
    def _known_event_types(cls, values: tuple[str, ...] | None, info: ValidationInfo):
        if values is not None:
            check_event_types(values, _settings(info))
        return values

    @field_validator("buying_stage")
    @classmethod
    def _known_stages(cls, values: tuple[str, ...] | None):
        if values is not None:
            check_buying_stages(values)
        return values

    @model_validator(mode="after")
    def _one_selector(self) -> EngagementRule:
        if (self.event_type is None) == (self.buying_stage is None):
            raise ValueError("an engagement rule needs exactly one of 'event_type' and "
                             "'buying_stage'")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _inactivity_counts_nothing(self) -> EngagementRule:
        counting = [k for k, v in (("cap", self.cap), ("window_days", self.window_days),
                                   ("decay", self.decay)) if v is not None]  # fmt: skip
        if self.inactive_days is not None and counting:
            raise ValueError(f"an 'inactive_days' rule counts no events, it gives its points "
                             f"once: leave out {' and '.join(counting)}")  # fmt: skip
        return self


class Group(_Strict):
    """Rules whose points add up to at most ``cap`` (either way: negative groups are floored)."""

    cap: Positive


class FitSection(_Strict):
    cap: Positive | None = None
    rules: tuple[FitRule, ...] = ()


class EngagementSection(_Strict):
    cap: Positive | None = None
    decay: Decay = Field(default_factory=Decay)
    rules: tuple[EngagementRule, ...] = ()

    @field_validator("decay", mode="before")
    @classmethod
    def _none_means_no_decay(cls, value: Any) -> Any:
        return _decay_before(value)


class Grades(_Strict):
    """Bands of the fit score (letters) and of the engagement score (numbers).

    A lead's grade is its fit label followed by its engagement label, e.g. ``B2``.
    """

    fit: dict[str, Interval]
    engagement: dict[str, Interval]

    @field_validator("fit", "engagement", mode="before")
    @classmethod
    def _labels_as_text(cls, value: Any) -> Any:
        # YAML reads the engagement labels 1, 2, 3 as numbers.
        if isinstance(value, Mapping):
            return {str(k): v for k, v in value.items()}
        return value

    @field_validator("fit", "engagement")
    @classmethod
    def _bands_tile_the_line(cls, bands: dict[str, Interval]) -> dict[str, Interval]:
        if not bands:
            raise ValueError("needs at least one band")
        problems = []
        for label, band in bands.items():
            if band.from_ is not None and band.below is not None and band.from_ >= band.below:
                problems.append(f"band {label} {band}: 'from' must be less than 'below'")
        if problems:
            raise ValueError("; ".join(problems))
        ordered = sorted(bands.items(), key=lambda kv: -math.inf if kv[1].from_ is None
                         else kv[1].from_)  # fmt: skip
        first_label, first = ordered[0]
        if first.from_ is not None:
            problems.append(f"scores below {first.from_:g} fall in no band (give band "
                            f"{first_label} no 'from')")  # fmt: skip
        for (a_label, a), (b_label, b) in itertools.pairwise(ordered):
            a_high = math.inf if a.below is None else a.below
            b_low = -math.inf if b.from_ is None else b.from_
            if a_high > b_low:
                problems.append(f"bands {a_label} {a} and {b_label} {b} overlap")
            elif a_high < b_low:
                problems.append(f"scores in [{a_high:g}, {b_low:g}) fall in no band "
                                f"(between {a_label} and {b_label})")  # fmt: skip
        last_label, last = ordered[-1]
        if last.below is not None:
            problems.append(f"scores of {last.below:g} and more fall in no band (give band "
                            f"{last_label} no 'below')")  # fmt: skip
        if problems:
            raise ValueError("; ".join(problems))
        return bands

    def label(self, which: Literal["fit", "engagement"], score: float) -> str:
        return next(k for k, band in getattr(self, which).items() if band.contains(score))


class Mql(_Strict):
    threshold: Number


class Rules(_Strict):
    """A validated rules file. Build one with :func:`load_rules`.

    ``fit`` and ``engagement`` hold the rules of each score, ``groups`` the shared caps,
    ``grades`` the letter and number bands and ``mql`` the threshold on the total score.
    """

    fit: FitSection = Field(default_factory=FitSection)
    engagement: EngagementSection = Field(default_factory=EngagementSection)
    groups: dict[str, Group] = Field(default_factory=dict)
    grades: Grades
    mql: Mql

    def all_rules(self) -> list[FitRule | EngagementRule]:
        return [*self.fit.rules, *self.engagement.rules]

    def kind_of(self, name: str) -> Literal["fit", "engagement"]:
        """Which score a rule or group feeds."""
        if name in RESERVED_GROUPS:
            return name  # type: ignore[return-value]
        for rule in self.fit.rules:
            if name in (rule.name, rule.group):
                return "fit"
        for rule in self.engagement.rules:
            if name in (rule.name, rule.group):
                return "engagement"
        raise KeyError(f"no rule or group named {name!r}")

    def decay_of(self, rule: EngagementRule) -> Decay:
        if rule.inactive_days is not None:
            return Decay()  # it counts no events: it looks for the latest one
        return self.engagement.decay if rule.decay is None else rule.decay

    @property
    def rises_without_events(self) -> bool:
        """Whether a lead's score can go up with nothing happening: a negative engagement rule
        whose points fade or leave a window, a positive ``inactive_days`` rule, or a fit rule on
        the lead's age."""
        rises = any(
            (r.points > 0 and r.inactive_days is not None)
            or (r.points < 0 and (r.window_days is not None or self.decay_of(r).active))
            for r in self.engagement.rules
        )
        return rises or any(r.attribute == "lead_age_days" for r in self.fit.rules)


def _settings(info: ValidationInfo) -> Settings:
    return (info.context or {}).get("settings") or Settings()
