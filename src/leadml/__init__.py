"""leadml: predictive lead scoring with the rule score side by side.

The public API; modules are private to the package and may move.
"""

import os

# OpenMP threads that spin while waiting make gradient boosting up to 20x slower when anything
# else runs on the machine (measured: a 200k-row fit 247 s -> 62 s on 2 busy cores). Set before
# scikit-learn loads its OpenMP runtime; an explicit setting by the user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from leadml.config import Settings, load_settings
from leadml.data import LeadData, load_data
from leadml.errors import ConfigError, DataError, DataValidationError, LeadmlError
from leadml.features import FEATURES, build_features, feature_catalogue, features_as_of
from leadml.flat import read_flat, score_flat, train_flat
from leadml.leakage import LeakageReport, check_leakage
from leadml.reports import build_report, funnel_counts, funnel_table, lead_journeys, write_report
from leadml.rules import (
    Rules,
    fired_rules,
    load_rules,
    rule_mql_history,
    rule_scores,
    rule_scores_as_of,
)
from leadml.scoring import ScoringModel, ScoringResult, score, score_to
from leadml.synth import SampleHistory, generate_history, write_history
from leadml.trainset import TrainingSet, build_trainset
from leadml.validation import Problem, ValidationReport, validate_data

__version__ = "0.1.0"

__all__ = [
    "FEATURES",
    "ConfigError",
    "DataError",
    "DataValidationError",
    "LeadData",
    "LeadmlError",
    "LeakageReport",
    "Problem",
    "Rules",
    "SampleHistory",
    "ScoringModel",
    "ScoringResult",
    "Settings",
    "TrainingSet",
    "ValidationReport",
    "__version__",
    "build_features",
    "build_report",
    "build_trainset",
    "check_leakage",
    "feature_catalogue",
    "features_as_of",
    "fired_rules",
    "funnel_counts",
    "funnel_table",
    "generate_history",
    "lead_journeys",
    "load_data",
    "load_rules",
    "load_settings",
    "read_flat",
    "rule_mql_history",
    "rule_scores",
    "rule_scores_as_of",
    "score",
    "score_flat",
    "score_to",
    "train_flat",
    "validate_data",
    "write_history",
    "write_report",
]
