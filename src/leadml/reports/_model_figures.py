"""Figures of the model on the report's scored nights (:mod:`leadml.reports._model`): its
reliability diagram, the gains of every score on the same lead-nights, the score distribution by
tier and the feature importance. Pure functions, in the report's colours
(:data:`leadml.reports._figures.COLOURS`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from leadml.modeling.evaluation import Evaluation
from leadml.modeling.plots import (
    figure,
    gains_chart,
    importance_figure,
    reliability_figure,
)
from leadml.reports._figures import COLOURS, thousands

_SCORE_LABELS = {"model": "Model (calibrated)", "rules": "Rule score", "learned": "Learned rules"}


def model_reliability_figure(reliability: pd.DataFrame, ece: float, where: str) -> Figure:
    """The model's reliability diagram (:func:`leadml.plots.reliability_figure`) on ``where``."""
    evaluation = Evaluation({"model_ece": ece}, {"reliability_model": reliability})
    fig = reliability_figure(evaluation)
    fig.axes[0].set_title(f"Calibration on {where}")
    return fig


def gains_figure(gains: dict[str, pd.DataFrame]) -> Figure:
    """Lift by decile (left) and cumulative gains (right) of each score (``gains_table`` per
    ``model``, ``rules``, ``learned``) on the same (lead, night) pairs."""
    return gains_chart(gains, _SCORE_LABELS, COLOURS, "lead-nights")


def tier_figure(histogram: pd.DataFrame) -> Figure:
    """The model's probabilities on the scored nights (log-spaced bins), stacked by tier."""
    fig, (ax,) = figure(9.0, 4.2)
    edges = np.append(histogram.index.to_numpy(dtype=float), 1.0)
    widths = np.diff(edges)
    bottom = np.zeros(len(histogram))
    shades = ["#08306B", "#2171B5", "#6BAED6", "#C6DBEF", "#DEEBF7"]  # tier A darkest
    for i, tier in enumerate(histogram.columns):
        counts = histogram[tier].to_numpy(dtype=float)
        ax.bar(edges[:-1], counts, width=widths, align="edge", bottom=bottom,
               color=shades[min(i, len(shades) - 1)], edgecolor="white", linewidth=0.3,
               label=f"Tier {tier}")  # fmt: skip
        bottom += counts
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v * 100:g}%"))
    thousands(ax)
    ax.set_xlabel("Model's conversion probability (%, log scale)")
    ax.set_ylabel("Open leads on the scored nights (lead-nights)")
    ax.set_title(f"Score distribution by tier ({int(bottom.sum()):,} lead-nights)")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def report_importance_figure(table: pd.DataFrame, kind: str) -> Figure:
    """The feature importance (:func:`leadml.plots.importance_figure`); for ``kind="reasons"``
    the mean absolute effect among the scored leads' top reasons."""
    fig = importance_figure(table)
    if kind == "reasons":
        ax = fig.axes[0]
        leads = table.attrs.get("leads")
        on = f" ({leads:,} scored leads)" if leads else ""
        ax.set_xlabel(f"Mean |effect| in the top reasons{on}\n(probability points)")
        ax.set_title(f"What drives the model's scores (top {min(len(table), 15)})")
    return fig
