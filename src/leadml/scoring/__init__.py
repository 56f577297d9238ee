"""Nightly batch scoring: every lead open at a date gets a calibrated probability, a tier, its
top reasons in words, and the rule score beside them; a partition per date, written atomically,
with a run summary (tiers, agreement with the rules, expected conversions, drift) in MLflow.

``score`` computes (nothing written); ``score_to`` is the nightly job behind ``leadml score``;
``score_shard`` and ``finish_night`` split a night into shards (``leadml score --shard I/N``,
then ``--finish``).
"""

from leadml.data.shards import Shard, shard_numbers
from leadml.errors import ModelMismatchError, OutputError, OutputLockedError
from leadml.scoring._core import AGREEMENT, ScoringResult, assign_tiers, prepare, run, score
from leadml.scoring._explain import Explainer, top_reasons
from leadml.scoring._model import ScoringModel, resolve_model
from leadml.scoring._nightly import score_to
from leadml.scoring._output import PARQUET_FILE, SUMMARY_JSON, partition_lock, partition_name
from leadml.scoring._shards import FinishedNight, ShardResult, finish_night, score_shard
from leadml.scoring._snapshots import snapshot_tiers, tier_cut

__all__ = [
    "AGREEMENT",
    "PARQUET_FILE",
    "SUMMARY_JSON",
    "Explainer",
    "FinishedNight",
    "ModelMismatchError",
    "OutputError",
    "OutputLockedError",
    "ScoringModel",
    "ScoringResult",
    "Shard",
    "ShardResult",
    "assign_tiers",
    "finish_night",
    "partition_lock",
    "partition_name",
    "prepare",
    "resolve_model",
    "run",
    "score",
    "score_shard",
    "score_to",
    "shard_numbers",
    "snapshot_tiers",
    "tier_cut",
    "top_reasons",
]
