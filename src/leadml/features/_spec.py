"""What every feature family shares: the description of one feature column."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from leadml.errors import ConfigError

Kind = Literal["number", "flag", "category"]

#: DuckDB type each kind of feature is returned as (compact: float32, bool, text).
SQL_TYPE = {"number": "FLOAT", "flag": "BOOLEAN", "category": "VARCHAR"}


@dataclass(frozen=True)
class Feature:
    """One feature column: its stable name, its meaning, its kind, and its value for a pair the
    family found no rows for (``0`` for counts; ``None``, i.e. missing, for recencies)."""

    name: str
    meaning: str
    kind: Kind = "number"
    fill: float | bool | str | None = None


def identifier(name: str) -> str:
    """A configured name (event type, column) as a lower-case SQL/Python identifier part."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_") or "unnamed"


def check_unique(features: list[Feature]) -> list[Feature]:
    seen: dict[str, Feature] = {}
    for feature in features:
        if feature.name in seen:
            raise ConfigError(
                f"two features would both be named {feature.name!r} "
                f"({seen[feature.name].meaning!r} and {feature.meaning!r}); rename an event type "
                "or a passthrough column"
            )
        seen[feature.name] = feature
    return features
