"""The report as one static HTML page: tables formatted for people, every text escaped (Jinja2
with autoescaping: a lead source named ``<script>`` shows as text) and cut to 200 characters, no
script, no external resource; a Content-Security-Policy forbids scripts even if one slipped in.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
import pandas as pd

from leadml.common.atomic import write_atomic
from leadml.common.safe_text import shorten
from leadml.reports._cohorts import DEFINITION_LABELS, HAND_RAISE_HOURS
from leadml.reports._figures import segment_name

if TYPE_CHECKING:
    from leadml.reports._report import FunnelReport

#: Column headers for people; rates end in ``%``, times in ``h``.
_COLUMNS = {
    "leads": "Leads", "mql": "MQL", "sal": "Accepted (SAL)", "srl": "Rejected (SRL)",
    "awaiting_review": "Awaiting review", "sql": "SQL", "opportunity": "Opportunity",
    "won": "Won", "lead_to_mql": "Lead → MQL", "mql_acceptance": "MQL acceptance",
    "mql_to_sql": "MQL → SQL", "sql_to_opportunity": "SQL → opportunity",
    "opportunity_to_won": "Opportunity → won", "lead_to_won": "Lead → won",
    "speed_to_lead_hours": "Speed to lead (median h)", "complete": "Complete",
    "mqls": "MQLs", "reviewed": "Reviewed by sales", "accepted": "Accepted",
    "acceptance": "Acceptance (of reviewed)", "converted": "Converted", "conversion": "Conversion",
    "touched": "Touched by sales", "immature": "Left out (too recent)",
    "conversion_interval": "Conversion 95 % interval",
    "acceptance_interval": "Acceptance 95 % interval",
    "pairs": "Lead-nights", "lowest": "Lowest probability", "median": "Median probability",
    "highest": "Highest probability",
}  # fmt: skip
_RATES = {"lead_to_mql", "mql_acceptance", "mql_to_sql", "sql_to_opportunity",
          "opportunity_to_won", "lead_to_won", "acceptance", "conversion", "lowest", "median",
          "highest"}  # fmt: skip
_SCORE_NAMES = {"model": "the model", "rules": "the rule score", "learned": "the learned rules"}
_FUNNEL_COLUMNS = ["leads", "mql", "sal", "srl", "awaiting_review", "sql", "opportunity", "won",
                   "lead_to_mql", "mql_acceptance", "mql_to_sql", "sql_to_opportunity",
                   "opportunity_to_won", "lead_to_won", "speed_to_lead_hours"]  # fmt: skip
_COHORT_COLUMNS = ["mqls", "reviewed", "accepted", "acceptance", "acceptance_interval",
                   "converted", "conversion", "conversion_interval", "opportunity", "won",
                   "touched", "speed_to_lead_hours", "immature"]  # fmt: skip


def _cell(column: str, value) -> tuple[str, str]:
    """(text, CSS class) of one table cell: ``number`` (right-aligned, on one line), ``number
    interval`` (may wrap at its dash, to keep wide tables narrow) or none."""
    if isinstance(value, tuple):  # an interval
        low, high = value
        if pd.isna(low) or pd.isna(high):
            return "–", "number"
        return f"{low:.1%} – {high:.1%}", "number interval"
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "–", "number"
    if isinstance(value, bool):
        return ("yes" if value else "no"), ""
    if column in _RATES:
        return f"{value:.1%}", "number"
    if column.endswith("_hours"):
        return f"{value:,.1f}", "number"
    if isinstance(value, int | float) or hasattr(value, "dtype"):
        number = float(value)
        return (f"{number:,.0f}" if number.is_integer() else f"{number:,.2f}"), "number"
    return shorten(str(value)), ""


def _key(level: str | None, value) -> str:
    """An index value as the page shows it: dates as dates, definitions by their names."""
    if isinstance(value, pd.Timestamp):
        return f"{value:%Y-%m-%d}"
    text = DEFINITION_LABELS.get(value, str(value)) if level == "definition" else str(value)
    return shorten(text)


def table(frame: pd.DataFrame, columns: list[str], index_names: list[str]) -> dict:
    """A DataFrame as ``{"head": [...], "rows": [[(text, CSS class), ...], ...]}``."""
    frame = frame.copy()
    for rate in ("acceptance", "conversion"):
        if f"{rate}_low" in frame:
            frame[f"{rate}_interval"] = list(
                zip(frame[f"{rate}_low"], frame[f"{rate}_high"], strict=True)
            )
    shown = [c for c in columns if c in frame.columns]
    rows = []
    for key, row in frame.iterrows():
        keys = key if isinstance(key, tuple) else (key,)
        cells = [(_key(level, k), "") for level, k in zip(frame.index.names, keys, strict=True)]
        cells += [_cell(c, row[c]) for c in shown]
        rows.append(cells)
    return {"head": [*index_names, *[_COLUMNS.get(c, c) for c in shown]], "rows": rows}


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        autoescape=True,  # every value is text to show, never markup
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(
    report: FunnelReport,
    images: dict[str, tuple[str, int, int]],
    csvs: dict[str, str],
) -> str:
    """The page's HTML. ``images``: figure stem -> (file name, width, height) in pixels;
    ``csvs``: table stem -> relative path of its CSV file."""
    from leadml import __version__

    c = report.comparison
    settings = report.settings
    segment_sections = []
    for segment, funnel in report.segments.items():
        mqls = report.comparison_segments.get(segment)
        segment_sections.append({
            "id": f"by-{segment.replace('_', '-')}",
            "name": segment_name(segment),
            "funnel": table(funnel.sort_values("leads", ascending=False), _FUNNEL_COLUMNS,
                            [segment_name(segment).capitalize()]),
            "funnel_image": images.get(f"funnel_by_{segment}"),
            "funnel_csv": csvs.get(f"funnel_by_{segment}"),
            "mqls": None if mqls is None or not len(mqls) else table(
                mqls, _COHORT_COLUMNS, ["Definition", segment_name(segment).capitalize()]),
            "mqls_image": images.get(f"mql_by_{segment}"),
            "mqls_csv": csvs.get(f"mql_by_{segment}"),
        })  # fmt: skip
    weekly = report.weekly.sort_index(ascending=False)
    context = {
        "title": report.title,
        "version": __version__,
        "generated_at": f"{report.generated_at:%Y-%m-%d %H:%M} UTC",
        "data_start": f"{report.data_start:%Y-%m-%d}",
        "data_end": f"{report.data_end:%Y-%m-%d %H:%M} UTC",
        "row_counts": report.row_counts,
        "target": c.target.upper(),
        "horizon": c.follow_up_days,
        "period_start": f"{c.period.start:%Y-%m-%d}",
        "period_end": f"{c.period.end - pd.Timedelta(days=1):%Y-%m-%d}",
        "headline": c.headline(),
        "sources": [(DEFINITION_LABELS[d], text) for d, text in c.sources.items()],
        "notes": c.notes,
        "comparison": table(c.summary, _COHORT_COLUMNS, ["Definition"]) if len(c.summary)
        else None,
        "agreement": None if c.agreement is None else table(
            c.agreement.rename(index={"both": "both", "model_only": "model only",
                                      "rules_only": "rules only"}),
            ["leads", "converted", "conversion", "conversion_interval"], ["MQL of"]),
        "funnel": table(report.funnel, _FUNNEL_COLUMNS, [""]),
        "model": None if report.model is None else {
            "pairs": report.model.pairs, "nights": report.model.nights,
            "tiers": table(report.model.tiers, ["pairs", "converted", "conversion", "lowest",
                                                "median", "highest"], ["Tier"]),
            "importance_kind": report.model.importance_kind,
            "scores": [_SCORE_NAMES[w] for w in report.model.gains],
        },
        "learned": "learned" in c.sources,
        "hand_raisers": c.hand_raisers,
        "hand_raise_hours": HAND_RAISE_HOURS,
        "weekly": table(weekly, [*_FUNNEL_COLUMNS, "complete"], ["Week of creation"]),
        "segments": segment_sections,
        "images": images,
        "csvs": csvs,
        "mql_threshold_note": settings.scoring.tiers.mql,
        "tiers_by": settings.scoring.tiers.by,
        "period_days": settings.report.period_days,
        "speed_median": None if not len(report.speed_to_lead_hours)
        else float(report.speed_to_lead_hours.median()),
    }  # fmt: skip
    template = files("leadml.reports").joinpath("report.html.j2").read_text(encoding="utf-8")
    return _environment().from_string(template).render(**context)


def write_page(path: Path, html: str) -> Path:
    """Write the page atomically: a reader sees the old page or the new one, never half."""
    return write_atomic(path, lambda staging: staging.write_text(html, encoding="utf-8"))
