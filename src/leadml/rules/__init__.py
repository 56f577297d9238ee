"""Rule-based scoring: the points system marketing already uses, next to the model.

A rules file (``configs/rules.yaml``) gives fit points for attributes of the lead and its company,
engagement points per event (with caps, windows and decay), negative points, grade bands and the
MQL threshold. :func:`load_rules` validates it and reports every problem at once;
:func:`rule_scores` scores any spine of (lead_id, as_of) pairs through :mod:`leadml.data.asof`,
seeing only data strictly before each as_of; :func:`rule_mql_history` says when the rules would
have made each lead an MQL.
"""

from leadml.rules._engine import (
    SCORE_COLUMNS,
    fired_rules,
    rule_scores,
    rule_scores_as_of,
    rule_scores_of_checked_spine,
    score_sql,
)
from leadml.rules._history import rule_mql_history
from leadml.rules._loading import DEFAULT_RULES, load_rules, rule_problems
from leadml.rules._schema import Rules

__all__ = [
    "DEFAULT_RULES",
    "SCORE_COLUMNS",
    "Rules",
    "fired_rules",
    "load_rules",
    "rule_mql_history",
    "rule_problems",
    "rule_scores",
    "rule_scores_as_of",
    "rule_scores_of_checked_spine",
    "score_sql",
]
