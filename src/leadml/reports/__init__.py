"""Reports: the funnel as recorded, and the MQLs of the CRM, the rules and the model compared on
what became of the leads; as tables and figures for notebooks, or as a static HTML page
(``leadml report``).

Layers: :mod:`._funnel` (each lead's journey, funnel metrics), :mod:`._scores` (reading nightly
scores), :mod:`._nights` (new MQLs on scored nights, a score at another's volume),
:mod:`._cohorts` (MQL definitions and their outcomes), :mod:`._chance` (how sure the comparison
at equal volume is), :mod:`._model` (the model on the scored nights), :mod:`._figures` and
:mod:`._model_figures`, :mod:`._report` (the report's tables) and :mod:`._html` (the page).
"""

from leadml.reports._cohorts import (
    DEFINITION_LABELS,
    DEFINITIONS,
    MqlComparison,
    Period,
    choose_period,
    cohort_table,
    compare_mqls,
    wilson_interval,
)
from leadml.reports._figures import (
    comparison_figure,
    comparison_segment_figure,
    comparison_weekly_figure,
    drift_figure,
    engagement_figure,
    funnel_figure,
    nightly_figure,
    probability_figure,
    segment_figure,
    speed_to_lead_figure,
    weekly_figure,
)
from leadml.reports._funnel import (
    FUNNEL,
    engagement_over_time,
    funnel_counts,
    funnel_table,
    lead_journeys,
)
from leadml.reports._model import ModelEvidence, model_evidence
from leadml.reports._nights import at_volume, new_mqls
from leadml.reports._report import FunnelReport, build_report, write_report
from leadml.reports._scores import (
    ScoreHistory,
    nightly_counts,
    read_scores,
    read_summary,
    score_partitions,
    training_scores,
)

__all__ = [
    "DEFINITIONS",
    "DEFINITION_LABELS",
    "FUNNEL",
    "FunnelReport",
    "ModelEvidence",
    "MqlComparison",
    "Period",
    "ScoreHistory",
    "at_volume",
    "build_report",
    "choose_period",
    "cohort_table",
    "compare_mqls",
    "comparison_figure",
    "comparison_segment_figure",
    "comparison_weekly_figure",
    "drift_figure",
    "engagement_figure",
    "engagement_over_time",
    "funnel_counts",
    "funnel_figure",
    "funnel_table",
    "lead_journeys",
    "model_evidence",
    "new_mqls",
    "nightly_counts",
    "nightly_figure",
    "probability_figure",
    "read_scores",
    "read_summary",
    "score_partitions",
    "segment_figure",
    "speed_to_lead_figure",
    "training_scores",
    "weekly_figure",
    "wilson_interval",
    "write_report",
]
