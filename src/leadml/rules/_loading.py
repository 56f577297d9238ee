"""Loading the rules file, and a validator that reports every problem at once.

A rules file is checked against the settings it will run with (the canonical event types are
configurable), so ``load_rules`` takes the settings. Every problem is reported with its key path
(``engagement.rules[3].event_type``), the rule's name when it has one, and a suggestion for typos.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import BaseModel, ValidationError

from leadml.config import Settings
from leadml.errors import ConfigError
from leadml.rules._checks import suggest
from leadml.rules._schema import RESERVED_GROUPS, Rules

#: The rules file shipped inside the package, used when none is given (``configs/rules.yaml`` in
#: the repository is the editable copy users start from; a test keeps the two identical).
DEFAULT_RULES = files("leadml") / "configs" / "rules.yaml"


def load_rules(
    source: str | Path | Mapping | Rules | None = None, settings: Settings | None = None
) -> Rules:
    """Read and validate a rules file (``None``: the rules shipped with leadml).

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
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
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
                            f"unknown group {group!r}{suggest(group, defined)}; "
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
        return "unknown key" + suggest(str(loc[-1]), allowed)
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
