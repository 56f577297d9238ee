"""The head-to-head table and the model card: what a training run found, in words and numbers.

Pure functions of a :class:`~leadml.modeling.training.TrainingResult`; no files, no MLflow. The
card is Markdown, short enough to read before trusting a model, and carries no personal data (only
window dates, counts and metrics). Names that come from the data (a flat export's file, columns
and values) are escaped (:mod:`leadml.common.safe_text`): they cannot break the card's Markdown.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd

from leadml.common.safe_text import md_text

if TYPE_CHECKING:
    from leadml.modeling.training import TrainingResult

#: Probability metrics the promotion gate may compare; higher is better only for the first two.
GATE_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "ece")
HIGHER_IS_BETTER = frozenset({"roc_auc", "pr_auc"})

# (row label, model metric, rules metric, champion metric or None). The rule score ranks by its
# raw points; its probability metrics use the points mapped on the calibration window.
_ROWS = (
    ("ROC AUC", "model_roc_auc", "rules_points_roc_auc", "roc_auc"),
    ("PR AUC", "model_pr_auc", "rules_points_pr_auc", "pr_auc"),
    ("Brier score", "model_brier", "rules_brier", "brier"),
    ("Log loss", "model_log_loss", "rules_log_loss", "log_loss"),
    ("Expected calibration error", "model_ece", "rules_ece", "ece"),
    (
        "Conversions at the rules' MQL volume",
        "model_conversions_at_rule_mql_volume",
        "rules_conversions_at_rule_mql_volume",
        None,
    ),
    ("MQL→conversion rate", "model_mql_conversion_rate", "rules_mql_conversion_rate", None),
)


def comparison_table(
    metrics: Mapping[str, float], champion: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """Model against rule score (and the current champion, when given) on the test window.

    One row per measure; columns ``model``, ``rules`` (left out when no rule score was measured,
    as for a flat export), ``learned rules`` (the points table learned from the training window,
    when one was: ``learned_rules_*`` metrics) and, with ``champion`` (metric name → value, on
    the same test rows), ``champion``.

    Examples
    --------
    >>> table = comparison_table({"model_roc_auc": 0.81, "rules_points_roc_auc": 0.7})
    >>> table.loc["ROC AUC"].tolist()
    [0.81, 0.7]
    """
    rows = []
    for label, model_key, rules_key, champion_key in _ROWS:
        if model_key not in metrics and rules_key not in metrics:
            continue
        row = {
            "measure": label,
            "model": metrics.get(model_key, math.nan),
            "rules": metrics.get(rules_key, math.nan),
            "learned rules": metrics.get(f"learned_{rules_key}", math.nan),
        }
        if champion:
            row["champion"] = champion.get(champion_key, math.nan) if champion_key else math.nan
        rows.append(row)
    for key in sorted(metrics):
        found = re.fullmatch(r"model_(recall|precision)_at_(.+)", key)
        if found:
            what, capacity = found.groups()
            try:
                where = f"top {float(capacity):.0%}"
            except ValueError:
                where = capacity.replace("_", " ")
            row = {
                "measure": f"{what.capitalize()} at {where}",
                "model": metrics[key],
                "rules": metrics.get(f"rules_{what}_at_{capacity}", math.nan),
                "learned rules": metrics.get(f"learned_rules_{what}_at_{capacity}", math.nan),
            }
            if champion:
                row["champion"] = math.nan
            rows.append(row)
    table = pd.DataFrame(rows).set_index("measure")
    if not any(k.startswith("rules_") for k in metrics):
        table = table.drop(columns="rules")
    if not any(k.startswith("learned_rules_") for k in metrics):
        table = table.drop(columns="learned rules")
    return table


def format_value(value, floatfmt: str = ".4f") -> str:
    """A table cell as text: counts without decimals, other numbers to 4 places, dates as days.

    Examples
    --------
    >>> [format_value(v) for v in (124.0, 0.81234, float("nan"), "rules")]
    ['124', '0.8123', '–', 'rules']
    """
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        # Counts (conversions, rows) read better without decimals.
        if value.is_integer() and abs(value) >= 1:
            return f"{value:,.0f}"
        return format(value, floatfmt)
    if isinstance(value, pd.Timestamp):
        return f"{value:%Y-%m-%d}"
    return str(value)


def _markdown(table: pd.DataFrame) -> str:
    """A plain Markdown table (no dependency on ``tabulate``)."""
    frame = table.reset_index() if table.index.name else table
    header = "| " + " | ".join(md_text(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = [
        "| " + " | ".join(md_text(format_value(v)) for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body])


def windows_text(windows: pd.DataFrame) -> str:
    """The train / calibration / test windows as a Markdown table."""
    table = windows.copy()
    for column in ("first_snapshot", "last_snapshot"):
        if column in table:
            table[column] = [f"{v:%Y-%m-%d}" if pd.notna(v) else "–" for v in table[column]]
    table.index.name = "window"
    return _markdown(table)


def model_card(
    result: TrainingResult,
    *,
    name: str | None = None,
    version: int | None = None,
    run_id: str | None = None,
    champion: Mapping[str, float] | None = None,
    champion_version: int | None = None,
    champion_note: str | None = None,
) -> str:
    """A short Markdown model card: data window, target, horizon, metrics against the rules and
    the champion, and the caveats a reader must know before trusting the numbers."""
    title = f"{name} v{version}" if name and version else name or "leadml model"
    lines = [f"# Model card: {title}", ""]
    if run_id:
        lines += [f"MLflow run `{run_id}`.", ""]
    # What it predicts and the data: the input's own words, then the windows.
    lines += [*result.inputs.card_sections(result), windows_text(result.windows), ""]
    lines += _leakage(result)
    if not result.trained:
        lines += [
            "## No model",
            "",
            f"**Cold start:** {result.cold_start}.",
            "",
            "Score leads with the rule score until enough conversions have accumulated, then "
            "retrain.",
            "",
        ]
        return "\n".join(lines)
    lines += _fitness(result, version)
    lines += _model_and_test(result, champion, champion_version, champion_note)
    return "\n".join(lines + _drift(result))


def _fitness(result: TrainingResult, version: int | None) -> list[str]:
    """The fitness gate: passed, or why the model was not registered (or was, with --force)."""
    fitness = getattr(result, "fitness", None)
    if fitness is None:
        return []
    if fitness.passed:
        verdict = "Passed: the model may be registered."
    elif version is None:
        verdict = (
            "**Failed: this model was not registered or exported.** "
            f"{fitness.reasons()}. Score leads with the rule score (or the current champion)."
        )
    else:
        verdict = (
            "**Failed, registered anyway with --force.** "
            f"{fitness.reasons()}. The promotion gate will not make it champion."
        )
    return ["## Fitness gate", "", verdict, "", fitness.format(), ""]


def _drift(result: TrainingResult) -> list[str]:
    """Notes from training (skipped folds, calibration fallbacks, a moving conversion rate)
    and the features that moved most between the training and test windows."""
    lines = []
    notes = getattr(result, "notes", None) or []
    metrics = result.evaluation.metrics if result.evaluation is not None else {}
    if "model_ece_uncorrected" in metrics and getattr(result, "prior_shift", None):
        notes = [
            *notes,
            f"expected calibration error on the test window: {metrics['model_ece']:.4f} with "
            f"the prior-shift correction, {metrics['model_ece_uncorrected']:.4f} without",
        ]
    if notes:
        lines += ["## What happened in training", "", *[f"- {n}" for n in notes], ""]
    drift = getattr(result, "drift", None)
    if drift is not None and len(drift):
        lines += [
            "## Drift between the training and test windows",
            "",
            "Population stability index of the features that moved most (below 0.1 stable, "
            "0.1-0.2 moderate, above 0.2 large):",
            "",
            _markdown(drift.set_index("feature")),
            "",
        ]
    return lines


def _leakage(result: TrainingResult) -> list[str]:
    leakage = getattr(result, "leakage", None)
    if leakage is None:
        return []
    return ["## Leakage guard", "", leakage.markdown(), ""]


def _model_and_test(result, champion, champion_version, champion_note) -> list[str]:
    inputs = result.inputs
    by_time = getattr(result, "validation", "time") == "time"
    calibration = result.calibration
    method = calibration.loc[0, "method"] if calibration is not None and len(calibration) else "?"
    params = ", ".join(f"{k.split('__')[-1]}={v}" for k, v in result.params.items()) or "defaults"
    lines = [
        "## Model",
        "",
        f"- Family: {result.family} ({params}), chosen by "
        f"{'time-ordered' if by_time else 'stratified'} cross-validated "
        "log loss.",
        f"- Calibration: {method}, fitted on the calibration "
        f"{'window' if by_time else 'rows'} "
        "(`CalibratedClassifierCV` around the frozen model; never reorders leads).",
        f"- {inputs.inputs_label}: "
        f"{len(result.feature_names)} (see `metadata.json`; no e-mail, name or other personal "
        "data).",
        "",
        "## Test window: model against the rule score"
        if inputs.has_rule_score
        else "## Validation: the model on rows it never saw",
        "",
    ]
    metrics = result.evaluation.metrics
    lines += [
        f"{int(metrics.get('test_rows', 0)):,} {inputs.rows_label}, "
        f"{int(metrics.get('test_positives', 0)):,} conversions.",
        "",
        _markdown(comparison_table(metrics, champion)),
        "",
    ]
    lines += _learned(result)
    if champion_version is not None:
        lines += [f"Champion: version {champion_version}, scored on the same test rows.", ""]
    if champion_note:
        lines += [f"Champion: {champion_note}", ""]
    lines += [
        "## Caveats",
        "",
        *inputs.card_caveats(),
        "- Probabilities are calibrated on a past window; if the lead mix or the funnel changes, "
        "recheck calibration (expected calibration error) before acting on absolute values.",
        *(
            [
                "- The rule score's probability metrics use its points mapped to a probability on "
                "the calibration window; its ranking metrics use the raw points."
            ]
            if any(k.startswith("rules_") for k in metrics)
            else []
        ),
        "- Segments with few leads or conversions have noisy metrics; see `segments.csv`.",
        "- Associations, not causes: a feature that raises the score is not a lever that raises "
        "conversion.",
        f"- Trained on history up to {_last(result.windows)}; retrain regularly.",
        "",
    ]
    return lines


def _learned(result) -> list[str]:
    """What the learned points table is, beside the hand rules and the model."""
    points = getattr(result, "points", None)
    if points is None:
        return []
    m = result.evaluation.metrics
    return [
        f"Learned rules: a points table of {len(points.rules.all_rules())} rules learned from the "
        f"training window (MQL threshold {points.rules.mql.threshold:g}, set on the "
        f"{points.tuning_window} window to send as many new MQLs as the hand rules; "
        "`learned_rules.yaml` among the "
        "run's artifacts runs with `leadml rules --rules`). On the test window it sends "
        f"{m.get('learned_rules_new_mqls', math.nan):,.0f} new MQLs at its threshold (a lead is "
        "sent once, when its score reaches it), of which "
        f"{m.get('learned_rules_new_mql_conversions', math.nan):,.0f} converted within the "
        f"horizon (hand rules at theirs: {m.get('rules_new_mqls', math.nan):,.0f} and "
        f"{m.get('rules_new_mql_conversions', math.nan):,.0f}).",
        "",
        *([f"As a candidate model: {points.choice}.", ""] if points.choice else []),
    ]


def _last(windows: pd.DataFrame) -> str:
    if "last_snapshot" not in windows:
        return "the export's date"
    last = windows["last_snapshot"].max()
    return f"{last:%Y-%m-%d}" if pd.notna(last) else "?"
