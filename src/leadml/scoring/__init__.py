"""Nightly batch scoring: every lead open at a date gets a calibrated probability, a tier, its
top reasons in words, and the rule score beside them; a partition per date, written atomically,
with a run summary (tiers, agreement with the rules, expected conversions, drift) in MLflow.

``score`` computes (nothing written); ``score_to`` is the nightly job behind ``leadml score``.
"""

from leadml.errors import ModelMismatchError, OutputError, OutputLockedError
from leadml.scoring._core import AGREEMENT, ScoringResult, assign_tiers, prepare, run, score
from leadml.scoring._explain import Explainer, top_reasons
from leadml.scoring._model import ScoringModel, resolve_model
from leadml.scoring._nightly import score_to
from leadml.scoring._output import PARQUET_FILE, SUMMARY_JSON, partition_lock, partition_name
from leadml.scoring._snapshots import snapshot_tiers, tier_cut

__all__ = [
    "AGREEMENT",
    "PARQUET_FILE",
    "SUMMARY_JSON",
    "Explainer",
    "ModelMismatchError",
    "OutputError",
    "OutputLockedError",
    "ScoringModel",
    "ScoringResult",
    "assign_tiers",
    "partition_lock",
    "partition_name",
    "prepare",
    "resolve_model",
    "run",
    "score",
    "score_to",
    "snapshot_tiers",
    "tier_cut",
    "top_reasons",
]
