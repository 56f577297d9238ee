"""Figures of the funnel report and of the notebooks, in the colours of
:data:`leadml.modeling.plots.PALETTE` (the model blue, the rule score orange, the CRM's record
purple, everywhere).

Pure functions: tables in, :class:`matplotlib.figure.Figure` out, no ``pyplot``.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, PercentFormatter

from leadml.modeling.plots import LABELS, PALETTE, figure
from leadml.reports._cohorts import DEFINITION_LABELS, DEFINITIONS

#: :data:`PALETTE` and the report's own definitions: the learned rules green (Okabe-Ito), a
#: score taken at the rules' volume a lighter shade of its own colour.
COLOURS = PALETTE | {"learned": "#009E73", "learned_at_volume": "#66C5AB",
                     "model_at_volume": "#56B4E9"}  # fmt: skip

#: Segments shown in a figure (the largest by leads); tables list them all.
TOP_SEGMENTS = 12
#: A segment's value is cut to this many characters on an axis: a CRM's free text can be a page.
LABEL_LIMIT = 40
_STAGE_NAMES = {
    "leads": "Lead",
    "mql": "MQL",
    "sal": "SAL (accepted)",
    "sql": "SQL",
    "opportunity": "Opportunity",
    "won": "Won",
}
_SEGMENT_NAMES = {
    "lead_source": "lead source",
    "industry": "industry",
    "company_size_band": "company size (employees)",
    "revenue_band": "annual revenue",
    "country": "country",
    "region": "region",
    "seniority": "seniority",
    "department": "department",
}


def segment_name(segment: str) -> str:
    """How a segment column is named for people, e.g. ``company size (employees)``."""
    return _SEGMENT_NAMES.get(segment, segment.replace("_", " "))


def thousands(ax, axis: str = "y") -> None:
    formatter = FuncFormatter(lambda v, _: f"{v:,.0f}")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(formatter)


def funnel_figure(funnel: pd.Series | pd.DataFrame) -> Figure:
    """Leads reaching each stage, lead to won, with each step's conversion rate."""
    row = funnel.iloc[0] if isinstance(funnel, pd.DataFrame) else funnel
    stages = list(_STAGE_NAMES)
    counts = np.array([float(row[s]) for s in stages])
    fig, (ax,) = figure(8.0, 4.2)
    y = np.arange(len(stages))[::-1]
    ax.barh(y, counts, color=PALETTE["recorded"], height=0.6)
    for i, (position, count) in enumerate(zip(y, counts, strict=True)):
        step = (
            ""
            if i == 0 or counts[i - 1] == 0
            else f"  ({count / counts[i - 1]:.1%} of the step before)"
        )
        ax.text(count, position, f" {count:,.0f}{step}", va="center", fontsize=9)
    ax.set_yticks(y, [_STAGE_NAMES[s] for s in stages])
    ax.set_xlim(0, max(counts.max(), 1) * 1.45)
    thousands(ax, "x")
    ax.set_xlabel("Leads that reached the stage (leads)")
    ax.set_title("The funnel as recorded in the CRM")
    ax.grid(False, axis="y")
    return fig


def weekly_figure(weekly: pd.DataFrame, complete_before: pd.Timestamp | None = None) -> Figure:
    """Per creation week: leads and MQLs (left) and the funnel's rates (right).

    Weeks starting at or after ``complete_before`` are shaded: their leads have had less than one
    horizon to move through the funnel, so their rates are still rising.
    """
    fig, (volume, rates) = figure(12.0, 4.4, ncols=2)
    weeks = pd.DatetimeIndex(weekly.index).tz_convert("UTC").tz_localize(None)
    width = pd.Timedelta(days=6)
    volume.bar(
        weeks, weekly["leads"], width=width, align="edge", color="#dddddd", label="Leads created"
    )
    volume.bar(
        weeks,
        weekly["mql"],
        width=width,
        align="edge",
        color=PALETTE["recorded"],
        label="... of which became MQLs",
    )
    # A week holds few leads: rates over the last four weeks' counts are readable, weekly ones
    # are mostly noise (the table has them).
    rolling = weekly[["leads", "mql", "sal", "sql"]].rolling(4, min_periods=1).sum()
    for (numerator, denominator), name, style in (
        (("mql", "leads"), "Lead → MQL", "-"),
        (("sal", "mql"), "MQL acceptance (SAL)", "--"),
        (("sql", "mql"), "MQL → SQL", ":"),
    ):
        rate = rolling[numerator] / rolling[denominator].where(rolling[denominator] > 0)
        rates.plot(
            weeks, rate, linestyle=style, color=PALETTE["recorded"], linewidth=1.8, label=name
        )
    if complete_before is not None:
        shade_from = pd.Timestamp(complete_before).tz_convert("UTC").tz_localize(None)
        for ax in (volume, rates):
            if len(weeks) and shade_from <= weeks.max():
                ax.axvspan(
                    shade_from,
                    weeks.max() + pd.Timedelta(days=7),
                    color="#f2f2f2",
                    zorder=0,
                    label="Still maturing",
                )
    thousands(volume)
    volume.set_ylabel("Leads created in the week (leads)")
    volume.set_xlabel("Week the leads were created (UTC, Monday)")
    volume.set_title("Leads and MQLs per week of creation")
    volume.legend(loc="upper left")
    rates.yaxis.set_major_formatter(PercentFormatter(1.0))
    rates.set_ylim(0, 1.02)
    rates.set_ylabel("Rate (%)")
    rates.set_xlabel("Week the leads were created (UTC, Monday)")
    rates.set_title("Funnel rates per week of creation (4-week rolling)")
    rates.legend(loc="upper left", fontsize=8)
    for ax in (volume, rates):
        for label in ax.get_xticklabels():
            label.set_rotation(30)
            label.set_horizontalalignment("right")
    return fig


def speed_to_lead_figure(hours: pd.Series) -> Figure:
    """How long MQLs waited for sales: a histogram of hours from MQL to the first sales touch."""
    values = pd.Series(hours, dtype="float64").dropna()
    values = values[values >= 0]
    fig, (ax,) = figure(7.5, 4.2)
    if len(values):
        edges = np.geomspace(
            max(values[values > 0].min(), 0.1) if (values > 0).any() else 0.1,
            max(values.max(), 1.0) * 1.05,
            30,
        )
        ax.hist(values.clip(lower=edges[0]), bins=edges, color=PALETTE["recorded"])
        ax.set_xscale("log")
        median = float(values.median())
        ax.axvline(
            median,
            color="#333333",
            linestyle="--",
            label=f"Median {median:,.1f} h; {(values <= 24).mean():.0%} within a day",
        )
        ax.axvline(24, color=PALETTE["reference"], linestyle=":", label="One day")
        ax.legend(loc="upper right")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("Hours from MQL to the first sales touch (hours, log scale)")
    ax.set_ylabel("MQLs (leads)")
    ax.set_title(f"Speed to lead ({len(values):,} MQLs touched by sales)")
    return fig


def tick_label(value: object, limit: int = LABEL_LIMIT) -> str:
    """A segment value as an axis shows it: on one line, at most ``limit`` characters.

    >>> tick_label("Software\tand services " + "x" * 60)
    'Software and services xxxxxxxxxxxxxxxxx…'
    """
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def segment_figure(table: pd.DataFrame, segment: str) -> Figure:
    """Per value of a segment (the largest :data:`TOP_SEGMENTS`): lead → MQL and MQL → SQL."""
    shown = table.sort_values("leads", ascending=False).head(TOP_SEGMENTS).iloc[::-1]
    fig, (mql_ax, sql_ax) = figure(11.0, 1.4 + 0.32 * max(len(shown), 1), ncols=2)
    labels = [
        f"{tick_label(value)} ({leads:,})"
        for value, leads in zip(shown.index, shown["leads"], strict=True)
    ]
    y = np.arange(len(shown))
    mql_ax.barh(y, shown["lead_to_mql"], color=PALETTE["recorded"])
    sql_ax.barh(y, shown["mql_to_sql"], color=PALETTE["recorded"])
    mql_ax.set_yticks(y, labels)
    sql_ax.set_yticks(y, [""] * len(y))
    name = segment_name(segment)
    for ax, what in ((mql_ax, "Lead → MQL"), (sql_ax, "MQL → SQL")):
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"{what} rate (%)")
        ax.grid(False, axis="y")
    mql_ax.set_title(f"Lead → MQL by {name} (leads in brackets)")
    sql_ax.set_title(f"MQL → SQL by {name}")
    return fig


def engagement_figure(engagement: pd.DataFrame, freq: str = "week") -> Figure:
    """Engagement actions per period, stacked by buying stage, and the leads active in each."""
    fig, (ax,) = figure(11.0, 4.4)
    periods = pd.DatetimeIndex(engagement.index).tz_convert("UTC").tz_localize(None)
    stages = [s for s in ("awareness", "consideration", "decision", "none") if s in engagement]
    names = {"none": "negative (unsubscribe, bounce)"}
    ax.stackplot(
        periods,
        *[engagement[s] for s in stages],
        labels=[names.get(s, s) for s in stages],
        colors=[PALETTE[s] for s in stages],
    )
    thousands(ax)
    ax.set_ylabel(f"Engagement actions per {freq} (actions)")
    ax.set_xlabel(f"{freq.capitalize()} (UTC)")
    ax.set_title(f"Engagement by buying stage over time (per {freq})")
    if "active_leads" in engagement:
        twin = ax.twinx()
        twin.plot(
            periods,
            engagement["active_leads"],
            color="#333333",
            linewidth=1.2,
            label="Active leads (right axis)",
        )
        twin.set_ylabel(f"Leads with an action in the {freq} (leads)")
        thousands(twin)
        twin.set_ylim(0, None)
        lines, labels = ax.get_legend_handles_labels()
        more, more_labels = twin.get_legend_handles_labels()
        ax.legend(lines + more, labels + more_labels, loc="upper left", fontsize=8)
    else:
        ax.legend(loc="upper left", fontsize=8)
    return fig


def _definitions(table: pd.DataFrame) -> list[str]:
    present = set(table.index.get_level_values("definition"))
    return [d for d in DEFINITIONS if d in present]


def comparison_figure(summary: pd.DataFrame, target: str = "sql", days: int = 90) -> Figure:
    """Per MQL definition: MQL volume (left), acceptance and conversion with 95 % intervals
    (right)."""
    definitions = _definitions(summary)
    fig, (volume, rates) = figure(11.0, 4.8, ncols=2)
    x = np.arange(len(definitions))
    colours = [COLOURS[d] for d in definitions]
    volume.bar(x, summary.loc[definitions, "mqls"], color=colours)
    for i, d in enumerate(definitions):
        volume.text(
            i,
            summary.loc[d, "mqls"],
            f"{summary.loc[d, 'mqls']:,}",
            ha="center",
            va="bottom",
            fontsize=9,
        )
    # Up to six definitions side by side: their names wrapped, so that they do not overlap.
    names = [textwrap.fill(DEFINITION_LABELS[d], 14) for d in definitions]
    volume.set_xticks(x, names, fontsize=8)
    thousands(volume)
    volume.set_xlabel("MQL definition")
    volume.set_ylabel("MQLs in the period (leads)")
    volume.set_title("MQLs by definition")
    width = 0.38
    for offset, rate, hatch in ((-width / 2, "acceptance", ""), (width / 2, "conversion", "//")):
        values = summary.loc[definitions, rate].to_numpy(dtype=float)
        low = summary.loc[definitions, f"{rate}_low"].to_numpy(dtype=float)
        high = summary.loc[definitions, f"{rate}_high"].to_numpy(dtype=float)
        errors = np.nan_to_num(np.vstack([values - low, high - values]))
        rates.bar(
            x + offset,
            np.nan_to_num(values),
            width=width,
            color=colours,
            hatch=hatch,
            edgecolor="white",
            yerr=errors,
            ecolor="#333333",
            capsize=3,
        )
    rates.set_xticks(x, names, fontsize=8)
    rates.yaxis.set_major_formatter(PercentFormatter(1.0))
    rates.set_ylim(0, 1.05)
    rates.set_xlabel("MQL definition")
    rates.set_ylabel("Share of the MQLs (%; bars: 95 % interval)")
    rates.set_title("Acceptance (plain) and conversion (hatched)")
    # The legend explains the hatching; the colours are the definitions', named on the axis.
    rates.legend(
        handles=[
            Patch(facecolor="#bbbbbb", label="Accepted by sales (of those reviewed)"),
            Patch(facecolor="#bbbbbb", hatch="//", edgecolor="white",
                  label=f"Reached {target.upper()} within {days} days"),
        ],
        loc="upper right",
        fontsize=8,
    )  # fmt: skip
    return fig


def comparison_weekly_figure(weekly: pd.DataFrame, target: str = "sql") -> Figure:
    """Per week of being made MQL: MQLs (left) and their conversion (right), per definition."""
    fig, (volume, rates) = figure(12.0, 4.4, ncols=2)
    for d in _definitions(weekly):
        part = weekly.xs(d, level="definition").sort_index()
        weeks = pd.DatetimeIndex(part.index).tz_convert("UTC").tz_localize(None)
        label = DEFINITION_LABELS[d]
        volume.plot(weeks, part["mqls"], marker="o", color=COLOURS[d], label=label)
        rates.plot(weeks, part["conversion"], marker="o", color=COLOURS[d], label=label)
    thousands(volume)
    volume.set_ylim(0, None)
    volume.set_ylabel("MQLs made in the week (leads)")
    volume.set_title("MQLs per week, by definition")
    rates.yaxis.set_major_formatter(PercentFormatter(1.0))
    rates.set_ylim(0, None)
    rates.set_ylabel(f"Reached {target.upper()} within the horizon (%)")
    rates.set_title("Conversion of each week's MQLs")
    for ax in (volume, rates):
        ax.set_xlabel("Week the lead was made an MQL (UTC, Monday)")
        ax.legend(loc="upper left", fontsize=8)
        for label in ax.get_xticklabels():
            label.set_rotation(30)
            label.set_horizontalalignment("right")
    return fig


def comparison_segment_figure(table: pd.DataFrame, segment: str, target: str = "sql") -> Figure:
    """Conversion of each definition's MQLs per value of a segment (the largest values)."""
    definitions = _definitions(table)
    totals = table.groupby(level=segment)["mqls"].sum().sort_values(ascending=False)
    values = list(totals.head(TOP_SEGMENTS).index)[::-1]
    fig, (ax,) = figure(9.0, 1.6 + 0.45 * max(len(values), 1))
    height = 0.8 / max(len(definitions), 1)
    y = np.arange(len(values))
    for i, d in enumerate(definitions):
        part = table.xs(d, level="definition").reindex(values)
        # The first definition on top of each group, as in the legend.
        at = y + ((len(definitions) - 1) / 2 - i) * height
        ax.barh(
            at,
            part["conversion"].fillna(0),
            height=height,
            color=COLOURS[d],
            label=DEFINITION_LABELS[d],
        )
        for position, rate, converted, mqls in zip(
            at, part["conversion"].fillna(0), part["converted"], part["mqls"], strict=True
        ):
            if pd.notna(mqls) and mqls:
                ax.text(rate, position, f" {converted:,.0f}/{mqls:,.0f}", va="center", fontsize=7)
    ax.set_yticks(y, [tick_label(v) for v in values])
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlim(0, 1)
    ax.set_xlabel(
        f"MQLs that reached {target.upper()} within the horizon (%; labels: converted/MQLs)"
    )
    ax.set_title(f"Conversion of the MQLs by {segment_name(segment)}")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(False, axis="y")
    return fig


def nightly_figure(counts: pd.DataFrame) -> Figure:
    """Model and rule MQLs per scored night, and the leads both make MQLs."""
    fig, (ax,) = figure(9.0, 4.2)
    nights = pd.DatetimeIndex(counts.index).tz_convert("UTC").tz_localize(None)
    ax.plot(nights, counts["model_mql"], marker="o", color=PALETTE["model"], label=LABELS["model"])
    ax.plot(nights, counts["rule_mql"], marker="o", color=PALETTE["rules"], label=LABELS["rules"])
    ax.plot(
        nights,
        counts["both_mql"],
        marker=".",
        linestyle="--",
        color=PALETTE["reference"],
        label="Both",
    )
    thousands(ax)
    ax.set_ylim(0, None)
    ax.set_xlabel("Scored night (as-of date, UTC)")
    ax.set_ylabel("Open leads made MQLs (leads)")
    ax.set_title("MQLs per night: model and rule score")
    ax.legend(loc="upper left")
    return fig


def probability_figure(scores: pd.DataFrame) -> Figure:
    """Tonight's probabilities (log-spaced histogram) with where each tier starts, and the rule
    MQLs among them."""
    p = scores["mql_probability"].to_numpy(dtype=float)
    # Where each tier starts tonight: its lowest probability (tiers by probability or capacity).
    tiers = scores.groupby("model_tier", observed=True)["mql_probability"].min()
    fig, (ax,) = figure(9.0, 4.2)
    edges = np.geomspace(max(min(p.min(), 0.5), 1e-4), 1.0, 31)
    clipped = np.clip(p, edges[0], 1.0)
    rule_mql = scores["rule_mql"].to_numpy(dtype=bool)
    ax.hist(clipped, bins=edges, color=PALETTE["model"], label="Open leads")
    ax.hist(clipped[rule_mql], bins=edges, color=PALETTE["rules"], label="... of which rule MQLs")
    top = ax.get_ylim()[1]
    starts = list(tiers.items())[:-1]  # the last tier starts at the bottom
    for i, (tier, low) in enumerate(starts):
        ax.axvline(low, color="#333333", linestyle="--", linewidth=1)
        ax.text(low, top * (0.97 - 0.08 * i), f" tier {tier} from {low:.1%}", fontsize=8, va="top")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v * 100:g}%"))
    ax.set_xlabel("Model's conversion probability (%, log scale)")
    ax.set_ylabel("Open leads (leads)")
    ax.set_title(f"Tonight's probabilities and tiers ({len(p):,} open leads)")
    ax.legend(loc="upper left")
    return fig


def drift_figure(summary: dict) -> Figure:
    """Population stability index of the score and the main features against the training data,
    with the warning threshold."""
    drift = summary.get("drift", {})
    values = {"score (probability)": drift.get("score_psi")} | dict(drift.get("features", {}))
    values = {k: v for k, v in values.items() if v is not None}
    threshold = float(drift.get("threshold", 0.2))
    fig, (ax,) = figure(8.0, 1.4 + 0.32 * max(len(values), 1))
    names = list(values)[::-1]
    psi = np.array([values[n] for n in names], dtype=float)
    ax.barh(names, psi, color=[PALETTE["none"] if v > threshold else PALETTE["model"] for v in psi])
    ax.axvline(threshold, color="#333333", linestyle="--", label=f"Warning above {threshold:g}")
    ax.set_xlim(0, max(threshold * 1.5, float(psi.max()) * 1.1 if len(psi) else 0))
    ax.set_xlabel("Population stability index against the training data (unitless)")
    ax.set_title(f"Drift as of {str(summary.get('as_of', ''))[:10]}")
    ax.legend(loc="lower right")
    ax.grid(False, axis="y")
    if drift.get("note"):
        ax.text(
            0.5,
            0.5,
            drift["note"],
            transform=ax.transAxes,
            ha="center",
            va="center",
            wrap=True,
            fontsize=9,
        )
    return fig
