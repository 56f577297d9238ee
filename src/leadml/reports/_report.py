"""The funnel report: the funnel as recorded, and the MQLs of the CRM, the rules, the learned
rules and the model compared on what happened to the leads -- built from the tables
(:func:`build_report`), then written as one self-contained static HTML page, its figures
inside it, with the same figures as PNG files and its tables as CSV next to it
(:func:`write_report`).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from leadml.common.atomic import write_atomic
from leadml.common.safe_text import DISPLAY_LIMIT, to_csv
from leadml.config import Settings
from leadml.data import LeadData, load_data
from leadml.data.readers import Source
from leadml.reports import _figures as figures
from leadml.reports import _model_figures as model_figures
from leadml.reports._chance import difference_table
from leadml.reports._cohorts import MqlComparison, cohort_table, compare_mqls
from leadml.reports._funnel import funnel_table, lead_journeys
from leadml.reports._model import ModelEvidence, model_evidence
from leadml.reports._scores import ScoreHistory


@dataclass
class FunnelReport:
    """Everything the report shows, as tables; :meth:`figures` draws them.

    Only aggregates: no lead id, e-mail address or name is kept, so the whole report may be
    shared and logged to MLflow.
    """

    title: str
    settings: Settings
    data_start: pd.Timestamp
    data_end: pd.Timestamp
    row_counts: dict[str, int]
    funnel: pd.DataFrame  # funnel_table, one row
    weekly: pd.DataFrame  # funnel_table per creation week, with ``complete``
    segments: dict[str, pd.DataFrame]  # funnel_table per segment value
    speed_to_lead_hours: pd.Series  # one value per MQL touched by sales (no ids)
    comparison: MqlComparison
    comparison_weekly: pd.DataFrame  # cohort_table per definition and week
    comparison_segments: dict[str, pd.DataFrame]  # cohort_table per definition and segment
    model: ModelEvidence | None = None  # the model on the scored nights, when there are some
    generated_at: pd.Timestamp = field(default_factory=lambda: pd.Timestamp(datetime.now(UTC)))

    @property
    def complete_before(self) -> pd.Timestamp:
        """Creation weeks starting after this have had less than one horizon to convert."""
        horizon = pd.Timedelta(days=self.settings.target.horizon_days)
        return self.data_end - horizon - pd.Timedelta(days=7)

    def figures(self) -> dict[str, Figure]:
        """Every figure of the report, by file stem, in the order the page shows them."""
        target, days = self.comparison.target, self.comparison.follow_up_days
        drawn: dict[str, Figure] = {}
        if len(self.comparison.summary):
            drawn["mql_comparison"] = figures.comparison_figure(
                self.comparison.summary, target, days
            )
            drawn["mql_weekly"] = figures.comparison_weekly_figure(self.comparison_weekly, target)
            for segment, table in self.comparison_segments.items():
                drawn[f"mql_by_{segment}"] = figures.comparison_segment_figure(
                    table, segment, target
                )
        if self.model is not None:
            where = f"the {self.model.nights} scored night(s) compared"
            drawn["model_reliability"] = model_figures.model_reliability_figure(
                self.model.reliability, self.model.ece, where
            )
            drawn["model_gains"] = model_figures.gains_figure(self.model.gains)
            drawn["model_tiers"] = model_figures.tier_figure(self.model.histogram)
            if self.model.importance is not None:
                drawn["model_importance"] = model_figures.report_importance_figure(
                    self.model.importance, self.model.importance_kind
                )
        drawn["funnel"] = figures.funnel_figure(self.funnel)
        drawn["speed_to_lead"] = figures.speed_to_lead_figure(self.speed_to_lead_hours)
        drawn["weekly"] = figures.weekly_figure(self.weekly, self.complete_before)
        for segment, table in self.segments.items():
            drawn[f"funnel_by_{segment}"] = figures.segment_figure(table, segment)
        return drawn

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table of the report, by file stem (what ``tables/*.csv`` holds)."""
        tables = {
            "funnel": self.funnel,
            "funnel_weekly": self.weekly,
            "mql_comparison": self.comparison.summary,
            "mql_weekly": self.comparison_weekly,
        }
        if self.comparison.agreement is not None:
            tables["mql_agreement"] = self.comparison.agreement
        if self.comparison.differences:
            tables["mql_difference"] = difference_table(self.comparison.differences)
        if self.model is not None:
            tables["model_reliability"] = self.model.reliability
            tables["model_tiers"] = self.model.tiers
            for who, table in self.model.gains.items():
                tables[f"gains_{who}"] = table
            if self.model.importance is not None:
                tables["model_importance"] = self.model.importance
        for segment, table in self.segments.items():
            tables[f"funnel_by_{segment}"] = table
        for segment, table in self.comparison_segments.items():
            tables[f"mql_by_{segment}"] = table
        return tables


def build_report(
    data: LeadData | Source,
    scores: str | Path | pd.DataFrame | ScoreHistory | None = None,
    settings: Settings | None = None,
    *,
    rules=None,
    learned_rules=None,
    importance: pd.DataFrame | None = None,
    title: str = "Lead funnel report",
) -> FunnelReport:
    """Compute the funnel report of a lead history.

    Parameters
    ----------
    data
        Loaded data, or anything :func:`leadml.load_data` reads.
    scores
        Nightly scores: a scores folder (``leadml score --out``), or a DataFrame with
        ``lead_id``, ``as_of``, ``model_mql`` and ``rule_mql`` (e.g.
        :func:`leadml.reports.training_scores` of a training run). Without it, the report has
        no model MQLs and the rules' MQLs are their exact crossings of the threshold.
    settings
        Default: the data's. ``report`` sets the period and segments, ``target`` the follow-up.
    rules
        The rules file or object, for the rules' MQLs when no scored night can be used.
    learned_rules
        A second rules file or object (e.g. learned from outcomes: ``leadml rules learn``),
        scored by the same engine on the same leads and nights: its own column in the
        comparison, and at the rules' volume with scores. Without it, no such column.
    importance
        A feature-importance table (``feature``, ``importance``, ``stderr``; e.g.
        :func:`leadml.plots.permutation_importance_table` of a training run) to draw in the
        page; without it, the importance is read from the scores' reasons when they have them.

    Raises
    ------
    DataError
        The data is invalid, or the scores folder holds no readable nightly scores.

    Examples
    --------
    >>> from leadml import generate_history
    >>> report = build_report(generate_history(n_leads=400, seed=2).tables())
    >>> int(report.funnel.loc["all", "leads"])
    400
    >>> list(report.comparison.summary.index)
    ['recorded', 'rules']
    """
    history = None if scores is None else ScoreHistory.of(scores)  # fails fast, before loading
    data = load_data(data, settings)
    settings = data.settings
    journeys = lead_journeys(data)
    end = data.end()
    horizon = pd.Timedelta(days=settings.target.horizon_days)
    weekly = funnel_table(journeys, by="week")
    weekly["complete"] = weekly.index + pd.Timedelta(days=7) + horizon <= end
    comparison = compare_mqls(data, journeys, history, rules=rules, learned_rules=learned_rules)
    c = comparison
    reasons = None
    if history is not None and importance is None and c.nights is not None and len(c.nights):
        reasons = history.rows(c.nights[-1:], reasons=True)  # the period's last night
    evidence = model_evidence(data, c.rows, c.period.nights, c.follow_up_days, importance,
                              reasons)  # fmt: skip
    # Segments the input cannot supply (industry without accounts) are left out of journeys.
    segments = [s for s in settings.report.segments if s in journeys.columns]
    return FunnelReport(
        title=title,
        settings=settings,
        data_start=journeys["created_at"].min(),
        data_end=end,
        row_counts=data.row_counts(),
        funnel=funnel_table(journeys),
        weekly=weekly,
        segments={s: funnel_table(journeys, by=s) for s in segments},
        speed_to_lead_hours=journeys["speed_to_lead_hours"].dropna().reset_index(drop=True),
        comparison=comparison,
        comparison_weekly=cohort_table(comparison.outcomes, by="week"),
        comparison_segments={s: cohort_table(comparison.outcomes, by=s) for s in segments},
        model=evidence,
    )


def write_report(report: FunnelReport, out: str | Path) -> Path:
    """Write ``report`` into the folder ``out``: ``index.html`` (one self-contained static page:
    no script, no external resource, every figure inside it as a PNG image in a ``data:`` URL),
    the same PNG per figure next to it and ``tables/*.csv``. Returns the page.

    Files of an earlier report in ``out`` are replaced, each atomically; the page is written
    last, so it never refers to a figure that is not there yet. In the tables, text longer than
    200 characters is cut and text a spreadsheet would run as a formula starts with ``'``
    (:mod:`leadml.common.safe_text`).
    """
    from leadml.reports._html import render, write_page

    out = Path(out)
    try:
        (out / "tables").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from leadml.errors import LeadmlError

        raise LeadmlError(f"cannot write the report into {out}: {exc}") from None
    images = {}
    for stem, figure in report.figures().items():
        png = io.BytesIO()
        figure.savefig(png, dpi=100, format="png")
        write_atomic(out / f"{stem}.png", lambda staging, b=png: staging.write_bytes(b.getvalue()))
        width, height = (figure.get_size_inches() * 100).round().astype(int)
        # Inside the page, so that the page alone is the whole report (mailed, attached).
        url = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode("ascii")
        images[stem] = (url, int(width), int(height))
    csvs = {}
    for stem, table in report.tables().items():
        # Shown to people: long text cut, formula-like text quoted (leadml.common.safe_text).
        path = write_atomic(
            out / "tables" / f"{stem}.csv",
            lambda staging, t=table: to_csv(t, staging, limit=DISPLAY_LIMIT),
        )
        csvs[stem] = f"tables/{path.name}"
    return write_page(out / "index.html", render(report, images, csvs))
