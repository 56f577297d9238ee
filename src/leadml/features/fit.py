"""Fit features: who the lead is and what its company looks like (see
:mod:`leadml.data.attributes`).

The attributes are shared with the fit rules, so a job title or an e-mail domain is read the same
way by both; the raw e-mail never becomes a feature, only the three domain flags. An attribute the
input cannot supply (no accounts table, say) is no feature at all, rather than a column of nulls.
"""

from __future__ import annotations

from leadml.data import LeadData
from leadml.data.attributes import ATTRIBUTES, available, lead_attributes
from leadml.features._spec import Feature, Kind

_NUMBERS = {"employee_count", "annual_revenue", "lead_age_days"}
_FLAGS = {"is_free_mail", "is_student", "is_competitor", "has_account"}


def _kind(name: str) -> Kind:
    return "number" if name in _NUMBERS else "flag" if name in _FLAGS else "category"


def catalogue(data: LeadData | None = None) -> list[Feature]:
    """The fit features (of the attributes ``data``'s input supplies; None: all of them)."""
    names = list(ATTRIBUTES) if data is None else available(data, list(ATTRIBUTES))
    return [Feature(name, ATTRIBUTES[name], _kind(name)) for name in names]


def sql(data: LeadData, spine: str) -> str:
    """SQL: one row per pair of ``spine`` whose lead existed at as_of -- the base of every row."""
    return lead_attributes(data, spine)
