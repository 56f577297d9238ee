"""Flat CRM exports: one row per lead, its attributes, aggregated activity columns and a
converted flag, taken as they come.

:func:`read_flat` reads the file (every column as text), :func:`plan_columns` decides each
column's role and records the mess found in a data-quality summary, :func:`train_flat` runs the
leakage guard, the sufficiency check, the search, calibration and validation, and returns the
same :class:`~leadml.modeling.training.TrainingResult` as the event history (log it with
:func:`leadml.tracking.log_training`); :func:`score_flat` scores a new export with the
registered model, which applies the very same column handling
(:class:`FlatPreprocessor`).
"""

from leadml.flat.preprocess import FlatPreprocessor
from leadml.flat.quality import DataQuality, QualityFinding
from leadml.flat.read import FlatExport, read_flat
from leadml.flat.roles import ColumnPlan, ColumnRole, plan_columns
from leadml.flat.score import FlatScores, score_flat, score_flat_to
from leadml.flat.summary import FlatSummary
from leadml.flat.train import flat_settings, train_flat

__all__ = [
    "ColumnPlan",
    "ColumnRole",
    "DataQuality",
    "FlatExport",
    "FlatPreprocessor",
    "FlatScores",
    "FlatSummary",
    "QualityFinding",
    "flat_settings",
    "plan_columns",
    "read_flat",
    "score_flat",
    "score_flat_to",
    "train_flat",
]
