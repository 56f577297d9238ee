"""The rules file: its strict schema and a validator that reports every problem at once.

A rules file is checked against the settings it will run with (the canonical event types are
configurable), so ``load_rules`` takes the settings. Every problem is reported with its key path
(``engagement.rules[3].event_type``), the rule's name when it has one, and a suggestion for typos.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from leadml.config import Settings
from leadml.data.attributes import ATTRIBUTES, count_label, money_label
from leadml.errors import ConfigError

#: The rules file shipped with leadml, used when none is given.
DEFAULT_RULES = Path(__file__).resolve().parents[3] / "configs" / "rules.yaml"

BUYING_STAGES = ("awareness", "consideration", "decision", "none")
NUMERIC_ATTRIBUTES = frozenset({"employee_count", "annual_revenue", "lead_age_days"})
BOOLEAN_ATTRIBUTES = frozenset({"is_free_mail", "is_student", "is_competitor", "has_account"})
TEXT_ATTRIBUTES = frozenset(ATTRIBUTES) - NUMERIC_ATTRIBUTES - BOOLEAN_ATTRIBUTES
#: Group names that would collide with the section-cap columns ``cap__fit``/``cap__engagement``.
RESERVED_GROUPS = frozenset({"fit", "engagement"})

_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
Number = Annotated[float, Strict()]
Positive = Annotated[float, Strict(), Field(gt=0)]


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: use lower-case letters, digits and single "
            "underscores, starting with a letter (e.g. demo_request)"
        )
    return value


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
        return value if value is None else _check_name(value)

    @field_validator("in_", mode="before")
    @classmethod
    def _one_value_is_a_list(cls, value: Any) -> Any:
        return _as_tuple(value)

    @field_validator("attribute")
    @classmethod
    def _known_attribute(cls, value: str) -> str:
        if value not in ATTRIBUTES:
            raise ValueError(f"unknown attribute {value!r}{_suggest(value, ATTRIBUTES)}; "
                             f"known: {', '.join(sorted(ATTRIBUTES))}")  # fmt: skip
        return value

    @field_validator("in_")
    @classmethod
    def _in_fits_attribute(cls, values: tuple[str, ...] | None, info: ValidationInfo):
        attribute = info.data.get("attribute")
        if values is None or attribute is None:
            return values
        if attribute not in TEXT_ATTRIBUTES:
            use = "range" if attribute in NUMERIC_ATTRIBUTES else "is"
            raise ValueError(f"'in' needs a text attribute; {attribute} is "
                             f"{_kind(attribute)}: use '{use}'")  # fmt: skip
        if not values:
            raise ValueError("the list is empty: the rule would never fire")
        known = _known_values(attribute, _settings(info))
        if attribute == "country":
            bad = [v for v in values if not re.fullmatch(r"[A-Za-z]{2}", v.strip())]
            if bad:
                raise ValueError(f"{bad[0]!r} is not an ISO-3166 alpha-2 country code")
        if known is not None:
            unknown = [v for v in values if v.strip().lower() not in known]
            if unknown:
                hint = (f"; add it to attributes.{attribute} in the settings if your CRM uses it"
                        if attribute in ("seniority", "department") else "")  # fmt: skip
                raise ValueError(
                    f"{unknown[0]!r} is not a {attribute} value"
                    f"{_suggest(unknown[0].strip().lower(), known)}; known: "
                    f"{', '.join(sorted(known))}{hint}"
                )
        return values

    @field_validator("range")
    @classmethod
    def _range_fits_attribute(cls, value: Range | None, info: ValidationInfo):
        attribute = info.data.get("attribute")
        if value is not None and attribute is not None and attribute not in NUMERIC_ATTRIBUTES:
            use = "in" if attribute in TEXT_ATTRIBUTES else "is"
            raise ValueError(f"'range' needs a numeric attribute; {attribute} is "
                             f"{_kind(attribute)}: use '{use}'")  # fmt: skip
        return value

    @field_validator("is_")
    @classmethod
    def _is_fits_attribute(cls, value: bool | None, info: ValidationInfo):
        attribute = info.data.get("attribute")
        if value is not None and attribute is not None and attribute not in BOOLEAN_ATTRIBUTES:
            use = "range" if attribute in NUMERIC_ATTRIBUTES else "in"
            raise ValueError(f"'is' needs a yes/no attribute; {attribute} is "
                             f"{_kind(attribute)}: use '{use}'")  # fmt: skip
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
    """Points per event of the given canonical types or buying stages, with caps and decay."""

    name: str
    event_type: tuple[str, ...] | None = None
    buying_stage: tuple[str, ...] | None = None
    points: Number
    cap: Positive | None = None
    window_days: Positive | None = None
    decay: Decay | None = None  # None: the section's default decay
    group: str | None = None

    @field_validator("name", "group")
    @classmethod
    def _valid_name(cls, value: str | None) -> str | None:
        return value if value is None else _check_name(value)

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
        if values is None:
            return values
        known = {*_settings(info).data.event_types, "other"}
        for value in values:
            if value not in known:
                raise ValueError(
                    f"unknown event type {value!r}{_suggest(value, known)}; canonical types are "
                    f"{', '.join(sorted(known))} (settings data.event_types)"
                )
        if not values:
            raise ValueError("the list is empty: the rule would never fire")
        return values

    @field_validator("buying_stage")
    @classmethod
    def _known_stages(cls, values: tuple[str, ...] | None):
        for value in values or ():
            if value not in BUYING_STAGES:
                raise ValueError(f"unknown buying stage {value!r}{_suggest(value, BUYING_STAGES)}"
                                 f"; known: {', '.join(BUYING_STAGES)}")  # fmt: skip
        if values is not None and not values:
            raise ValueError("the list is empty: the rule would never fire")
        return values

    @model_validator(mode="after")
    def _one_selector(self) -> EngagementRule:
        if (self.event_type is None) == (self.buying_stage is None):
            raise ValueError("an engagement rule needs exactly one of 'event_type' and "
                             "'buying_stage'")  # fmt: skip
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
        return self.engagement.decay if rule.decay is None else rule.decay

    @property
    def rises_without_events(self) -> bool:
        """Whether a lead's score can go up with nothing happening: a negative engagement rule
        whose points fade or leave a window, or a fit rule on the lead's age."""
        negative_fades = any(
            r.points < 0 and (r.window_days is not None or self.decay_of(r).active)
            for r in self.engagement.rules
        )
        return negative_fades or any(r.attribute == "lead_age_days" for r in self.fit.rules)


# --- loading and validation ---------------------------------------------------------------------


def load_rules(
    source: str | Path | Mapping | Rules | None = None, settings: Settings | None = None
) -> Rules:
    """Read and validate a rules file (``None``: the default ``configs/rules.yaml``).

    ``source`` may also be an already-parsed mapping, or a :class:`Rules` (validated again
    against ``settings``, since event types are configurable).

    Raises
    ------
    ConfigError
        Listing every problem, one per line, each with its key path.

    Examples
    --------
    >>> rules = load_rules({"fit": {"rules": [
    ...     {"name": "vp", "attribute": "seniority", "in": ["vp"], "points": 15}]},
    ...     "grades": {"fit": {"A": {"from": 10}, "B": {"below": 10}},
    ...                "engagement": {"1": {}}},
    ...     "mql": {"threshold": 50}})
    >>> rules.fit.rules[0].points
    15.0
    >>> load_rules({"mql": {"treshold": 50}})
    Traceback (most recent call last):
    ...
    leadml.errors.ConfigError: rules: 3 problems
      grades: missing
      mql.threshold: missing
      mql.treshold: unknown key (did you mean 'threshold'?)
    """
    settings = settings or Settings()
    if isinstance(source, Rules):
        raw, origin = source.model_dump(by_alias=True, exclude_none=True), "rules"
    elif isinstance(source, Mapping):
        raw, origin = dict(source), "rules"
    else:
        path = DEFAULT_RULES if source is None else Path(source)
        origin = str(path)
        try:
            raw = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"rules file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if raw is None:
            raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{origin}: expected a mapping at the top level, "
                          f"got {type(raw).__name__}")  # fmt: skip
    problems = rule_problems(raw, settings)
    if problems:
        count = f"{len(problems)} problem" + ("s" if len(problems) > 1 else "")
        raise ConfigError(f"{origin}: {count}\n" + "\n".join(f"  {p}" for p in problems))
    return Rules.model_validate(raw, context={"settings": settings})


def rule_problems(raw: Mapping, settings: Settings | None = None) -> list[str]:
    """Every problem of a parsed rules file, as ``key.path: message`` lines (empty: valid)."""
    settings = settings or Settings()
    found: list[tuple[tuple, str]] = []
    try:
        Rules.model_validate(raw, context={"settings": settings})
    except ValidationError as exc:
        found += [(tuple(e["loc"]), _message(e, tuple(e["loc"]))) for e in exc.errors()]
    found += _cross_problems(raw)
    found.sort(key=lambda item: _sort_key(item[0]))
    return [f"{_path(loc, raw)}: {message}" for loc, message in found]


def _cross_problems(raw: Mapping) -> list[tuple[tuple, str]]:
    """Checks across sections, on the raw mapping so they run even when parts fail to parse."""
    problems: list[tuple[tuple, str]] = []
    groups = raw.get("groups")
    defined = set(groups) if isinstance(groups, Mapping) else set()
    for name in sorted(defined & RESERVED_GROUPS):
        problems.append((("groups", name), f"{name!r} is reserved for the {name} score's own cap "
                                           f"(set {name}.cap instead)"))  # fmt: skip
    seen: dict[str, str] = {}
    group_kinds: dict[str, set[str]] = {}
    for kind in ("fit", "engagement"):
        section = raw.get(kind)
        rules = section.get("rules") if isinstance(section, Mapping) else None
        if not isinstance(rules, list):
            continue
        for i, rule in enumerate(rules):
            if not isinstance(rule, Mapping):
                continue
            name = rule.get("name")
            if isinstance(name, str):
                if name in seen:
                    problems.append(
                        (
                            (kind, "rules", i, "name"),
                            f"{name!r} is already the name of {seen[name]}",
                        )
                    )
                else:
                    seen[name] = f"{kind}.rules[{i}]"
            group = rule.get("group")
            if isinstance(group, str):
                group_kinds.setdefault(group, set()).add(kind)
                if group not in defined:
                    problems.append(
                        (
                            (kind, "rules", i, "group"),
                            f"unknown group {group!r}{_suggest(group, defined)}; "
                            f"define it under 'groups' with its cap",
                        )
                    )
    for group, kinds in group_kinds.items():
        if len(kinds) > 1 and group in defined:
            problems.append((("groups", group), "has both fit and engagement rules; a group "
                             "caps one score, so split it in two"))  # fmt: skip
    return problems


def _message(error: dict, loc: tuple) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        return "unknown key" + _suggest(str(loc[-1]), allowed)
    if kind == "missing":
        return "missing"
    message = re.sub(r" or instance of \w+", "", error["msg"].removeprefix("Value error, "))
    got = error.get("input")
    if kind != "value_error" and not isinstance(got, Mapping | list):
        message += f" (got {got!r})"
        if isinstance(got, bool) and (kind.endswith("_type") or kind.endswith("_parsing")):
            message += "; YAML reads yes/no/on/off (and the country NO) as true/false: quote it"
    return message


def _path(loc: tuple, raw: Mapping) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    text = text or "(top level)"
    # Name the rule, so a person need not count list items.
    if len(loc) >= 3 and loc[0] in ("fit", "engagement") and loc[1] == "rules":
        try:
            name = raw[loc[0]]["rules"][loc[2]].get("name")
        except (KeyError, IndexError, TypeError, AttributeError):
            name = None
        if isinstance(name, str):
            text += f" (rule {name})"
    return text


def _sort_key(loc: tuple) -> tuple:
    order = {"fit": 0, "engagement": 1, "groups": 2, "grades": 3, "mql": 4}
    return tuple((order.get(p, 9), f"{p:08d}" if isinstance(p, int) else str(p)) for p in loc)


def _allowed_keys(loc: tuple) -> list[str]:
    """The keys the schema accepts at ``loc`` (for 'did you mean')."""
    annotation: Any = Rules
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = next((f for n, f in annotation.model_fields.items()
                          if part in (n, f.alias)), None)  # fmt: skip
            if field is None:
                return []
            annotation = field.annotation
        elif typing.get_origin(annotation) in (tuple, list):
            annotation = typing.get_args(annotation)[0]
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or n for n, f in annotation.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0]
        else:
            return annotation


def _suggest(value: str, candidates: Iterable[str]) -> str:
    match = difflib.get_close_matches(value, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _settings(info: ValidationInfo) -> Settings:
    return (info.context or {}).get("settings") or Settings()


def _kind(attribute: str) -> str:
    if attribute in NUMERIC_ATTRIBUTES:
        return "a number"
    return "yes/no" if attribute in BOOLEAN_ATTRIBUTES else "text"


def _known_values(attribute: str, settings: Settings) -> set[str] | None:
    """The values a text attribute can take, where the settings fix them (else None)."""
    a = settings.attributes
    if attribute in ("seniority", "department"):
        return {*getattr(a, attribute), "other"}
    if attribute == "region":
        return {*a.regions, "other"}
    if attribute in ("company_size_band", "revenue_band"):
        edges, label = ((a.company_size_edges, count_label) if attribute == "company_size_band"
                        else (a.revenue_edges, money_label))  # fmt: skip
        lows = (0.0, *edges)
        highs = (*edges, None)
        return {label(lo, hi).lower() for lo, hi in zip(lows, highs, strict=True)}
    return None
