"""leadml: predictive lead scoring with the rule score side by side.

The public API: everything a notebook, a scheduler or the README uses is importable from here;
the modules behind it may move. Names are imported on first use, so ``import leadml`` is quick
and MLflow is loaded only by the names that track (``log_training``, ``promote``, the jobs).
"""

import importlib
import os
from typing import TYPE_CHECKING

# OpenMP threads that spin while waiting make gradient boosting up to 20x slower when anything
# else runs on the machine (measured: a 200k-row fit 247 s -> 62 s on 2 busy cores). Set before
# scikit-learn loads its OpenMP runtime; an explicit setting by the user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

# name -> the module that defines it (a module name alone: the module itself).
_API = {
    # settings and errors
    "Settings": "leadml.config",
    "load_settings": "leadml.config",
    "LeadmlError": "leadml.errors",
    "ConfigError": "leadml.errors",
    "DataError": "leadml.errors",
    "DataValidationError": "leadml.data.validation",
    # data
    "LeadData": "leadml.data",
    "load_data": "leadml.data",
    "Problem": "leadml.data.validation",
    "ValidationReport": "leadml.data.validation",
    "validate_data": "leadml.data.validation",
    "SampleHistory": "leadml.synth",
    "generate_history": "leadml.synth",
    "write_history": "leadml.synth",
    # features and rules, as of T
    "FEATURES": "leadml.features",
    "build_features": "leadml.features",
    "feature_catalogue": "leadml.features",
    "features_as_of": "leadml.features",
    "Rules": "leadml.rules",
    "load_rules": "leadml.rules",
    "rule_scores": "leadml.rules",
    "rule_scores_as_of": "leadml.rules",
    "rule_mql_history": "leadml.rules",
    "fired_rules": "leadml.rules",
    # modeling
    "TrainingSet": "leadml.modeling.trainset",
    "build_trainset": "leadml.modeling.trainset",
    "LeakageReport": "leadml.modeling.leakage",
    "check_leakage": "leadml.modeling.leakage",
    "TrainingResult": "leadml.modeling.training",
    "train": "leadml.modeling.training",
    "Evaluation": "leadml.modeling.evaluation",
    "evaluate": "leadml.modeling.evaluation",
    "capacity_curve": "leadml.modeling.evaluation",
    "comparison_table": "leadml.modeling.card",
    "ThresholdChoice": "leadml.modeling.thresholds",
    "LearnedPoints": "leadml.modeling.points",
    "learn_points": "leadml.modeling.points",
    "plots": "leadml.modeling.plots",
    # tracking (MLflow)
    "log_training": "leadml.tracking",
    "promote": "leadml.tracking",
    # scoring
    "ScoringModel": "leadml.scoring",
    "ScoringResult": "leadml.scoring",
    "score": "leadml.scoring",
    "score_to": "leadml.scoring",
    # flat CRM exports
    "read_flat": "leadml.flat",
    "train_flat": "leadml.flat",
    "score_flat": "leadml.flat",
    # reports
    "build_report": "leadml.reports",
    "write_report": "leadml.reports",
    "funnel_counts": "leadml.reports",
    "funnel_table": "leadml.reports",
    "lead_journeys": "leadml.reports",
    # jobs: whole steps, as the CLI runs them
    "train_and_log": "leadml.jobs",
    "score_night": "leadml.jobs",
    "write_funnel_report": "leadml.jobs",
    "find_threshold": "leadml.jobs",
    "learn_rules": "leadml.jobs",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'leadml' has no attribute {name!r}")
    module = importlib.import_module(_API[name])
    value = module if module.__name__.endswith(f".{name}") else getattr(module, name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})


if TYPE_CHECKING:  # what type checkers and IDEs see; a test checks it matches _API
    from leadml.config import Settings, load_settings
    from leadml.data import LeadData, load_data
    from leadml.data.validation import (
        DataValidationError,
        Problem,
        ValidationReport,
        validate_data,
    )
    from leadml.errors import ConfigError, DataError, LeadmlError
    from leadml.features import FEATURES, build_features, feature_catalogue, features_as_of
    from leadml.flat import read_flat, score_flat, train_flat
    from leadml.jobs import (
        find_threshold,
        learn_rules,
        score_night,
        train_and_log,
        write_funnel_report,
    )
    from leadml.modeling import plots
    from leadml.modeling.card import comparison_table
    from leadml.modeling.evaluation import Evaluation, capacity_curve, evaluate
    from leadml.modeling.leakage import LeakageReport, check_leakage
    from leadml.modeling.points import LearnedPoints, learn_points
    from leadml.modeling.thresholds import ThresholdChoice
    from leadml.modeling.training import TrainingResult, train
    from leadml.modeling.trainset import TrainingSet, build_trainset
    from leadml.reports import (
        build_report,
        funnel_counts,
        funnel_table,
        lead_journeys,
        write_report,
    )
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
    from leadml.tracking import log_training, promote
