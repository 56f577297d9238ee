"""The checks of a rule's values: names, attributes and the values they can take, event types and
buying stages.

Each check raises ``ValueError`` with the message a person reads in the rules file's problem list
(the validators of :mod:`leadml.rules._schema` call them), with a suggestion for typos.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from leadml.config import Settings
from leadml.data.attributes import ATTRIBUTES, count_label, money_label

BUYING_STAGES = ("awareness", "consideration", "decision", "none")
NUMERIC_ATTRIBUTES = frozenset({"employee_count", "annual_revenue", "lead_age_days"})
BOOLEAN_ATTRIBUTES = frozenset({"is_free_mail", "is_student", "is_competitor", "has_account"})
TEXT_ATTRIBUTES = frozenset(ATTRIBUTES) - NUMERIC_ATTRIBUTES - BOOLEAN_ATTRIBUTES

_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: use lower-case letters, digits and single "
            "underscores, starting with a letter (e.g. demo_request)"
        )
    return value


def check_attribute(value: str) -> str:
    if value not in ATTRIBUTES:
        raise ValueError(f"unknown attribute {value!r}{suggest(value, ATTRIBUTES)}; "
                         f"known: {', '.join(sorted(ATTRIBUTES))}")  # fmt: skip
    return value


def check_in(attribute: str, values: tuple[str, ...], settings: Settings) -> None:
    """A fit rule's ``in`` list: a text attribute, and values it can take."""
    if attribute not in TEXT_ATTRIBUTES:
        use = "range" if attribute in NUMERIC_ATTRIBUTES else "is"
        raise ValueError(f"'in' needs a text attribute; {attribute} is "
                         f"{kind(attribute)}: use '{use}'")  # fmt: skip
    if not values:
        raise ValueError("the list is empty: the rule would never fire")
    known = known_values(attribute, settings)
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
                f"{suggest(unknown[0].strip().lower(), known)}; known: "
                f"{', '.join(sorted(known))}{hint}"
            )


def check_range(attribute: str) -> None:
    """A fit rule's ``range``: a numeric attribute."""
    if attribute not in NUMERIC_ATTRIBUTES:
        use = "in" if attribute in TEXT_ATTRIBUTES else "is"
        raise ValueError(f"'range' needs a numeric attribute; {attribute} is "
                         f"{kind(attribute)}: use '{use}'")  # fmt: skip


def check_is(attribute: str) -> None:
    """A fit rule's ``is``: a yes/no attribute."""
    if attribute not in BOOLEAN_ATTRIBUTES:
        use = "range" if attribute in NUMERIC_ATTRIBUTES else "in"
        raise ValueError(f"'is' needs a yes/no attribute; {attribute} is "
                         f"{kind(attribute)}: use '{use}'")  # fmt: skip


def check_event_types(values: tuple[str, ...], settings: Settings) -> None:
    """Canonical event types of the settings (``data.event_types``), or ``other``."""
    known = {*settings.data.event_types, "other"}
    for value in values:
        if value not in known:
            raise ValueError(
                f"unknown event type {value!r}{suggest(value, known)}; canonical types are "
                f"{', '.join(sorted(known))} (settings data.event_types)"
            )
    if not values:
        raise ValueError("the list is empty: the rule would never fire")


def check_buying_stages(values: tuple[str, ...]) -> None:
    for value in values:
        if value not in BUYING_STAGES:
            raise ValueError(f"unknown buying stage {value!r}{suggest(value, BUYING_STAGES)}"
                             f"; known: {', '.join(BUYING_STAGES)}")  # fmt: skip
    if not values:
        raise ValueError("the list is empty: the rule would never fire")


def suggest(value: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``candidates``, or nothing."""
    match = difflib.get_close_matches(value, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def kind(attribute: str) -> str:
    if attribute in NUMERIC_ATTRIBUTES:
        return "a number"
    return "yes/no" if attribute in BOOLEAN_ATTRIBUTES else "text"


def known_values(attribute: str, settings: Settings) -> set[str] | None:
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
