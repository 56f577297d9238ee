"""Plots of a training run: the model and the rule score side by side, readable at a glance.

Pure functions: tables and frames in, :class:`matplotlib.figure.Figure` out. Figures are built
without ``pyplot`` (no global state, no display needed, safe in a batch job); save them with
``fig.savefig(path)`` or show them in a notebook as they are. The model is always drawn in
:data:`PALETTE` ``["model"]`` and the rule score in ``["rules"]``, so a reader learns the colours
once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

if TYPE_CHECKING:
    from leadml.modeling.evaluation import Evaluation
    from leadml.modeling.training import TrainingResult

#: One colour per score or series, used by every figure of leadml (training plots, reports,
#: notebooks): blue is always the model, orange always the rule score, purple what the CRM
#: recorded. Okabe-Ito colours where they are distinct, so colour-blind readers can tell them
#: apart; the buying stages are shades of one grey-green, darker as intent grows.
PALETTE = {
    "model": "#0072B2",
    "rules": "#E69F00",
    "champion": "#009E73",
    "recorded": "#CC79A7",
    "reference": "#999999",
    "awareness": "#C7D9CF",
    "consideration": "#7FA88F",
    "decision": "#2F5E44",
    "none": "#D55E00",
}
LABELS = {
    "model": "Model (calibrated)",
    "rules": "Rule score",
    "champion": "Champion",
    "recorded": "Recorded in the CRM",
}


def figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, list]:
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    for ax in axes:
        ax.grid(True, color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
    return fig, list(axes)


def reliability_figure(evaluation: Evaluation) -> Figure:
    """Reliability diagram: mean predicted probability against the observed conversion rate.

    Points on the diagonal are honest probabilities. The rule score is shown through its
    calibration-window mapping to a probability, so both are judged on the same scale.
    """
    fig, (ax,) = figure(6.0, 5.5)
    top = 0.0
    for who in _scored(evaluation):
        table = evaluation.tables[f"reliability_{who}"]
        ece = evaluation.metrics.get(f"{who}_ece", float("nan"))
        ax.plot(
            table["predicted"],
            table["observed"],
            marker="o",
            color=PALETTE[who],
            label=f"{LABELS[who]} (ECE {ece:.3f})",
        )
        top = max(top, table["predicted"].max(), table["observed"].max())
    top = min(1.0, top * 1.08 + 1e-3)
    ax.plot(
        [0, top], [0, top], linestyle="--", color=PALETTE["reference"], label="Perfectly calibrated"
    )
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("Mean predicted conversion probability (%, per equal-count bin)")
    ax.set_ylabel("Observed conversion rate (%)")
    ax.set_title("Calibration on the test window")
    ax.legend(loc="upper left")
    return fig


def _scored(evaluation: Evaluation) -> tuple[str, ...]:
    """The model, and the rule score when it was measured (a flat export has none)."""
    return ("model", "rules") if "reliability_rules" in evaluation.tables else ("model",)


def gains_figure(evaluation: Evaluation) -> Figure:
    """Lift by decile (left) and cumulative gains (right), model and rule score."""
    tables = {who: evaluation.tables[f"gains_{who}"] for who in _scored(evaluation)}
    return gains_chart(tables, LABELS, PALETTE, "leads")


def gains_chart(tables: dict, labels: dict, colours: dict, rows: str) -> Figure:
    """Lift by decile (left) and cumulative gains (right) of each score's gains table (see
    :func:`leadml.modeling.evaluation.gains_table`), side by side; ``rows``: what a row is."""
    fig, (lift_ax, gain_ax) = figure(11.0, 4.5, ncols=2)
    width = 0.8 / max(len(tables), 1)
    for i, (who, table) in enumerate(tables.items()):
        offset = (i - (len(tables) - 1) / 2) * width
        lift_ax.bar(table["decile"] + offset, table["lift"], width=width, color=colours[who],
                    label=labels[who])  # fmt: skip
        share = np.concatenate([[0.0], table["cumulative_share_of_leads"]])
        gain = np.concatenate([[0.0], table["cumulative_gain"]])
        gain_ax.plot(share, gain, marker="o", color=colours[who], label=labels[who])
    lift_ax.axhline(1.0, linestyle="--", color=PALETTE["reference"], label="No better than random")
    lift_ax.set_xticks(range(1, 11))
    lift_ax.set_xlabel(f"Decile of score (1 = highest-scored 10% of {rows})")
    lift_ax.set_ylabel("Lift (× the average conversion rate)")
    lift_ax.set_title("Lift by decile")
    lift_ax.legend(fontsize=8)
    gain_ax.plot([0, 1], [0, 1], linestyle="--", color=PALETTE["reference"], label="Random order")
    gain_ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    gain_ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    gain_ax.set_xlim(0, 1)
    gain_ax.set_ylim(0, 1.02)
    gain_ax.set_xlabel(f"Share of {rows} worked, highest score first (%)")
    gain_ax.set_ylabel("Share of all conversions captured (%)")
    gain_ax.set_title("Cumulative gains")
    gain_ax.legend(loc="lower right", fontsize=8)
    return fig


def roc_pr_figure(test: pd.DataFrame) -> Figure:
    """ROC (left) and precision-recall (right) curves on the test window.

    ``test`` has ``label``, ``model_probability`` and ``rule_score`` (raw points: ranking is
    all these curves look at).
    """
    y = test["label"].to_numpy(dtype=int)
    fig, (roc_ax, pr_ax) = figure(11.0, 4.5, ncols=2)
    both = len(np.unique(y)) == 2
    for who, column in (("model", "model_probability"), ("rules", "rule_score")):
        if not both or column not in test.columns:  # a flat export has no rule score
            break
        score = test[column].to_numpy(dtype=float)
        fpr, tpr, _ = roc_curve(y, score)
        roc_ax.plot(
            fpr, tpr, color=PALETTE[who], label=f"{LABELS[who]} (AUC {roc_auc_score(y, score):.3f})"
        )
        precision, recall, _ = precision_recall_curve(y, score)
        pr_ax.plot(
            recall,
            precision,
            color=PALETTE[who],
            drawstyle="steps-post",
            label=f"{LABELS[who]} (AP {average_precision_score(y, score):.3f})",
        )
    roc_ax.plot([0, 1], [0, 1], linestyle="--", color=PALETTE["reference"], label="Random order")
    base = y.mean() if len(y) else 0.0
    pr_ax.axhline(base, linestyle="--", color=PALETTE["reference"], label=f"Base rate ({base:.1%})")
    for ax in (roc_ax, pr_ax):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    roc_ax.set_xlabel("False positive rate (% of non-converters flagged)")
    roc_ax.set_ylabel("True positive rate (% of converters flagged)")
    roc_ax.set_title("ROC curve")
    roc_ax.legend(loc="lower right")
    pr_ax.set_xlabel("Recall (% of all conversions captured)")
    pr_ax.set_ylabel("Precision (% of flagged leads that convert)")
    pr_ax.set_title("Precision-recall curve")
    pr_ax.legend(loc="upper right")
    return fig


def capacity_figure(
    curve: pd.DataFrame, rule_mqls: float | None = None, cadence_days: int | None = None
) -> Figure:
    """The capacity trade-off: leads sales works per snapshot against the conversions reached,
    highest score first, for the model and the rule score
    (:func:`leadml.modeling.evaluation.capacity_curve`).

    ``rule_mqls`` (the rules' MQLs per snapshot) marks today's volume; ``cadence_days`` (days
    between snapshots, ``trainset.cadence_days``) names the period in the axis labels.
    """
    fig, (ax,) = figure(7.5, 5.0)
    per = {None: "per snapshot", 7: "per week"}.get(cadence_days, f"per {cadence_days} days")
    x = curve.index.to_numpy()
    for who in ("model", "rules"):
        if who in curve:
            ax.plot(x, curve[who], color=PALETTE[who], label=LABELS[who], linewidth=2)
    ax.plot(x, curve["random"], linestyle="--", color=PALETTE["reference"], label="Random order")
    ax.axhline(curve["all_conversions"].iloc[0], linestyle=":", color="#555555",
               label="Every lead worked")  # fmt: skip
    if rule_mqls is not None:
        ax.axvline(rule_mqls, color=PALETTE["rules"], linestyle=":", linewidth=1.2,
                   label=f"Rules' MQL volume ({rule_mqls:,.0f} {per})")  # fmt: skip
    ax.set_xlim(0, max(x.max(), 1))
    ax.set_ylim(0, None)
    ax.set_xlabel(f"Leads sales works {per}, highest score first (leads)")
    ax.set_ylabel(f"Conversions reached {per} (leads)")
    ax.set_title("Capacity trade-off: leads worked vs conversions reached")
    ax.legend(loc="lower right")
    return fig


def permutation_importance_table(
    model,
    X: pd.DataFrame,
    y: pd.Series | np.ndarray,
    *,
    max_rows: int = 1_000,
    n_repeats: int = 1,
    random_state: int = 0,
    batch_rows: int = 50_000,
) -> pd.DataFrame:
    """How much the log loss worsens when one feature is shuffled, on a sample of ``X``.

    Measured on the calibrated model (what is deployed), on at most ``max_rows`` rows sampled
    at random. One row per feature, most important first: ``importance`` (mean log-loss
    increase) and ``stderr``, its standard error over the rows (and repeats). Near zero or
    negative means the model does not rely on the feature.

    The measure of :func:`sklearn.inspection.permutation_importance` with
    ``scoring="neg_log_loss"``, computed per row so that one shuffle per feature already gives
    an error bar, and with the shuffled copies stacked and predicted in batches of about
    ``batch_rows`` rows. Its cost is features × rows × repeats predictions: about 5 s for 126
    features and 1,000 rows with the logistic pipeline on this machine.
    """
    y = np.asarray(y, dtype=float)
    if len(X) > max_rows:
        picked = np.sort(
            np.random.default_rng(random_state).choice(len(X), max_rows, replace=False)
        )
        X, y = X.iloc[picked], y[picked]
    X = X.reset_index(drop=True)
    n = len(X)
    rng = np.random.default_rng(random_state)

    def row_losses(p: np.ndarray) -> np.ndarray:
        p = np.clip(p, 1e-15, 1 - 1e-15)
        return -(y * np.log(p) + (1 - y) * np.log1p(-p))

    base = row_losses(model.predict_proba(X)[:, 1])
    jobs = [(feature, repeat) for repeat in range(n_repeats) for feature in X.columns]
    per_batch = max(1, batch_rows // max(n, 1))
    increases: dict[str, list[np.ndarray]] = {feature: [] for feature in X.columns}
    for start in range(0, len(jobs), per_batch):
        batch = jobs[start : start + per_batch]
        copies = []
        for feature, _ in batch:
            shuffled = X.copy()
            # .array keeps the dtype (categories, text, nullable numbers) of the column.
            shuffled[feature] = X[feature].iloc[rng.permutation(n)].array
            copies.append(shuffled)
        p = model.predict_proba(pd.concat(copies, ignore_index=True))[:, 1]
        for k, (feature, _) in enumerate(batch):
            increases[feature].append(row_losses(p[k * n : (k + 1) * n]) - base)
    pooled = {feature: np.concatenate(parts) for feature, parts in increases.items()}
    table = pd.DataFrame(
        {
            "feature": list(pooled),
            "importance": [float(d.mean()) for d in pooled.values()],
            "stderr": [_stderr(d) for d in pooled.values()],
        }
    )
    table.attrs["rows"] = n
    table.attrs["base_log_loss"] = float(base.mean())
    return table.sort_values("importance", ascending=False, ignore_index=True)


def _stderr(values: np.ndarray) -> float:
    return float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else 0.0


def importance_figure(table: pd.DataFrame, top: int = 15) -> Figure:
    """Horizontal bars of the ``top`` features of :func:`permutation_importance_table`."""
    shown = table.head(top).iloc[::-1]
    fig, (ax,) = figure(7.5, 1.2 + 0.32 * max(len(shown), 1))
    ax.barh(
        shown["feature"],
        shown["importance"],
        xerr=shown["stderr"],
        color=PALETTE["model"],
        ecolor=PALETTE["reference"],
    )
    ax.axvline(0, color="#555555", linewidth=0.8)
    rows = table.attrs.get("rows")
    on = f" ({rows:,} test rows)" if rows else ""
    ax.set_xlabel(f"Increase in log loss when the feature is shuffled{on}; bars: ± 1 s.e.")
    ax.set_title(f"Feature importance of the calibrated model (top {len(shown)})")
    ax.grid(True, axis="x")
    ax.grid(False, axis="y")
    return fig


def feature_importance(
    model,
    X: pd.DataFrame,
    y: pd.Series | np.ndarray,
    *,
    max_rows: int = 1_000,
    n_repeats: int = 1,
    random_state: int = 0,
    top: int = 15,
) -> tuple[Figure, pd.DataFrame]:
    """:func:`permutation_importance_table` and its :func:`importance_figure`."""
    table = permutation_importance_table(
        model, X, y, max_rows=max_rows, n_repeats=n_repeats, random_state=random_state
    )
    return importance_figure(table, top=top), table


def training_figures(
    result: TrainingResult,
    test_features: pd.DataFrame | None = None,
    importance: pd.DataFrame | None = None,
) -> tuple[dict[str, Figure], pd.DataFrame | None]:
    """Every figure of a trained run, by file stem, and the feature-importance table.

    ``test_features`` (features and ``label`` of the test window) enables the importance plot;
    by default it is taken from ``result.frames["test"]`` when present. An ``importance`` table
    already computed (:func:`permutation_importance_table`) is drawn as it is.
    """
    if not result.trained or result.evaluation is None or result.test is None:
        return {}, None
    figures = {
        "calibration": reliability_figure(result.evaluation),
        "lift_gains": gains_figure(result.evaluation),
        "roc_pr": roc_pr_figure(result.test),
    }
    frames = getattr(result, "frames", None) or {}
    if test_features is None:
        test_features = frames.get("test")
    if importance is not None:
        figures["feature_importance"] = importance_figure(importance)
    elif test_features is not None and len(test_features):
        figures["feature_importance"], importance = feature_importance(
            result.model,
            test_features[result.feature_names],
            test_features["label"],
            random_state=result.settings.model.random_state,
        )
    return figures, importance
