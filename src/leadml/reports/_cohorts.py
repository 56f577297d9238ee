"""MQL definitions compared on what happened to the leads: the CRM's recorded MQLs, the rules'
and the model's, over the same period, each MQL followed for one target horizon.

Each definition makes a *cohort*: the leads it made MQLs in the period, each at the first time it
did. What became of them comes from the stages table through :func:`leadml.data.asof.follow_up`:
accepted or rejected by sales, converted (the target stage within the horizon), opportunity, won.
An MQL whose horizon runs past the end of the data is left out (and counted), never read as a
lead that did not convert.

This is an estimate, not an experiment: the leads only the model picks were not all worked by
sales, and being worked can change what a lead does. Acceptance is measured on the leads sales
reviewed. Every rate comes with a 95 % Wilson interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadml.data import LeadData
from leadml.data.asof import follow_up
from leadml.reports._scores import ScoreHistory
from leadml.rules import rule_mql_history

DEFINITIONS = ("recorded", "rules", "model")
#: How each definition is named for people.
DEFINITION_LABELS = {
    "recorded": "Recorded in the CRM",
    "rules": "Rule score",
    "model": "Model",
}


def wilson_interval(successes, trials, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson score interval of a proportion (95 % by default); missing where trials is 0.

    Examples
    --------
    >>> low, high = wilson_interval(8, 10)
    >>> round(float(low), 3), round(float(high), 3)
    (0.49, 0.943)
    >>> bool(np.all(wilson_interval(0, np.arange(1, 401))[0] <= 0))
    True
    >>> bool(np.all(wilson_interval(np.arange(1, 401), np.arange(1, 401))[1] >= 1))
    True
    """
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    empty = n <= 0
    # The interval contains the rate; rounding can put a bound a hair past a rate of 0 or 1.
    low, high = np.minimum(centre - half, p), np.maximum(centre + half, p)
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


@dataclass
class Period:
    """The instants ``[start, end)`` whose MQLs are compared, and why it is that period."""

    start: pd.Timestamp
    end: pd.Timestamp
    nights: pd.DatetimeIndex | None = None  # the scored nights used, if any
    note: str = ""


def choose_period(
    data_end: pd.Timestamp,
    follow_up_days: int,
    period_days: int,
    nights: pd.DatetimeIndex | None = None,
) -> Period:
    """The last ``period_days`` whose MQLs can be followed up for ``follow_up_days`` by the end
    of the data -- ending after the last such scored night when there are nights.

    Examples
    --------
    >>> p = choose_period(pd.Timestamp("2026-06-30", tz="UTC"), 90, 91)
    >>> f"{p.start:%Y-%m-%d} .. {p.end:%Y-%m-%d}"
    '2025-12-31 .. 2026-04-01'
    """
    latest = data_end - pd.Timedelta(days=follow_up_days)  # the last instant with known outcomes
    if nights is None or not len(nights):
        end = latest.floor("D")
        return Period(end - pd.Timedelta(days=period_days), end)
    mature = nights[nights <= latest]
    if not len(mature):
        end = latest.floor("D")
        note = (
            f"The scored nights ({nights[0]:%Y-%m-%d} to {nights[-1]:%Y-%m-%d}) are all less than "
            f"{follow_up_days} days before the end of the data ({data_end:%Y-%m-%d}): what became "
            "of the model's MQLs is not known yet. Score older nights, or run the report again "
            "later."
        )
        return Period(end - pd.Timedelta(days=period_days), end, nights[:0], note)
    end = mature[-1].floor("D") + pd.Timedelta(days=1)
    start = end - pd.Timedelta(days=period_days)
    used = mature[mature >= start]
    note = ""
    if len(used) < len(nights):
        note = (f"{len(nights) - len(used)} scored night(s) outside this period are not used "
                f"(older than it, or less than {follow_up_days} days before the end of the "
                "data).")  # fmt: skip
    return Period(start, end, used, note)


def recorded_flags(data: LeadData, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Leads the CRM made MQLs in ``[start, end)``, each at its first MQL entry in the period."""
    flags = data.con.execute(
        """
        SELECT lead_id, min(entered_at) AS flagged_at FROM stages
        WHERE stage = 'mql' AND entered_at >= $start AND entered_at < $end GROUP BY lead_id
        """,
        {"start": start, "end": end},
    ).df()
    return flags.assign(definition="recorded")[["lead_id", "definition", "flagged_at"]]


def rules_flags(data: LeadData, start: pd.Timestamp, end: pd.Timestamp, rules) -> pd.DataFrame:
    """Leads the rules made MQLs in ``[start, end)``, at the exact time each first crossed the
    threshold (:func:`leadml.rule_mql_history`)."""
    history = rule_mql_history(data, start, end, rules)
    first = history[history["crossing"] == 1]
    return pd.DataFrame({
        "lead_id": first["lead_id"].astype("str"), "definition": "rules",
        "flagged_at": first["crossed_at"],
    })  # fmt: skip


def mql_outcomes(
    data: LeadData, flags: pd.DataFrame, follow_up_days: int, journeys: pd.DataFrame
) -> pd.DataFrame:
    """Each flag (``lead_id``, ``definition``, ``flagged_at``) with what became of its lead
    (:func:`leadml.data.asof.follow_up`), the week it was flagged and the lead's segments."""
    flags = flags.astype({"lead_id": "str"}).reset_index(drop=True)
    flags["flagged_at"] = pd.to_datetime(flags["flagged_at"], utc=True).astype(
        "datetime64[us, UTC]"
    )
    spine = (
        flags[["lead_id", "flagged_at"]].drop_duplicates().rename(columns={"flagged_at": "as_of"})
    )
    outcomes = follow_up(data, spine, follow_up_days).rename(columns={"as_of": "flagged_at"})
    frame = flags.merge(outcomes, on=["lead_id", "flagged_at"], how="left", validate="m:1")
    at = frame["flagged_at"]
    frame["week"] = (at.dt.floor("D") - pd.to_timedelta(at.dt.day_of_week, unit="D")).astype(
        "datetime64[us, UTC]"
    )
    segments = [c for c in data.settings.report.segments if c in journeys.columns]
    frame = frame.merge(journeys[["lead_id", *segments]], on="lead_id", how="left")
    return frame


def cohort_table(outcomes: pd.DataFrame, by: str | list[str] | None = None) -> pd.DataFrame:
    """Per definition (and ``by``): the mature MQLs and what became of them.

    Columns: ``mqls``; ``reviewed``, ``accepted``, ``acceptance`` (accepted / reviewed) with its
    95 % interval ``acceptance_low``/``acceptance_high``; ``converted``, ``conversion`` with
    ``conversion_low``/``conversion_high``; ``opportunity``, ``won``; ``touched`` (sales touched
    the lead within the follow-up) and ``speed_to_lead_hours`` (median hours from the flag to
    that touch, for leads sales had not touched before); ``immature`` (flags left out).
    """
    keys = ["definition"] + ([] if by is None else [by] if isinstance(by, str) else list(by))
    columns = ["mqls", "reviewed", "accepted", "acceptance", "acceptance_low", "acceptance_high",
               "converted", "conversion", "conversion_low", "conversion_high", "opportunity",
               "won", "touched", "speed_to_lead_hours", "immature"]  # fmt: skip
    if not len(outcomes):
        index = (pd.MultiIndex.from_arrays([[]] * len(keys), names=keys) if len(keys) > 1
                 else pd.Index([], name="definition"))  # fmt: skip
        return pd.DataFrame(columns=columns, index=index)
    frame = outcomes.assign(
        reviewed=outcomes["accepted"] | outcomes["rejected"],
        touched=outcomes["touch_hours"].notna(),
        fresh_touch=outcomes["touch_hours"].where(~outcomes["touched_before"]),
    )
    mature = frame[frame["mature"]]
    grouped = mature.groupby(keys, observed=True, sort=False)
    table = grouped.agg(
        mqls=("lead_id", "size"),
        reviewed=("reviewed", "sum"),
        accepted=("accepted", "sum"),
        converted=("converted", "sum"),
        opportunity=("reached_opportunity", "sum"),
        won=("reached_customer", "sum"),
        touched=("touched", "sum"),
        speed_to_lead_hours=("fresh_touch", "median"),
    )
    immature = (~frame["mature"]).groupby([frame[k] for k in keys], observed=True).sum()
    table = table.join(immature.rename("immature"), how="outer").fillna({"immature": 0})
    counts = ["mqls", "reviewed", "accepted", "converted", "opportunity", "won", "touched",
              "immature"]  # fmt: skip
    table[counts] = table[counts].fillna(0).astype("int64")
    with np.errstate(invalid="ignore", divide="ignore"):
        table["acceptance"] = table["accepted"] / table["reviewed"].where(table["reviewed"] > 0)
        table["conversion"] = table["converted"] / table["mqls"].where(table["mqls"] > 0)
    table["acceptance_low"], table["acceptance_high"] = wilson_interval(
        table["accepted"], table["reviewed"]
    )
    table["conversion_low"], table["conversion_high"] = wilson_interval(
        table["converted"], table["mqls"]
    )
    # Definitions in their fixed order (CRM, rules, model), then by key.
    table["rank"] = table.index.get_level_values("definition").map(DEFINITIONS.index)
    return table.sort_values(["rank", *keys[1:]])[columns]


def agreement_table(outcomes: pd.DataFrame) -> pd.DataFrame | None:
    """Leads the model and the rules both make MQLs, only one of them does: how many, and how
    many converted (each lead followed from the earlier of its flags). None without both."""
    both_defs = outcomes[outcomes["definition"].isin(["rules", "model"]) & outcomes["mature"]]
    if both_defs["definition"].nunique() < 2:
        return None
    earliest = both_defs.sort_values("flagged_at").groupby("lead_id", sort=False)
    per_lead = earliest.agg(definitions=("definition", frozenset), converted=("converted", "first"))
    group = per_lead["definitions"].map(
        lambda d: "both" if len(d) == 2 else ("model_only" if "model" in d else "rules_only")
    )
    table = per_lead.groupby(group)["converted"].agg(leads="size", converted="sum")
    table = table.reindex(["both", "model_only", "rules_only"], fill_value=0).astype("int64")
    with np.errstate(invalid="ignore", divide="ignore"):
        table["conversion"] = table["converted"] / table["leads"].where(table["leads"] > 0)
    table["conversion_low"], table["conversion_high"] = wilson_interval(
        table["converted"], table["leads"]
    )
    table.index.name = "agreement"
    return table


@dataclass
class MqlComparison:
    """The MQLs of each definition over one period and what became of them."""

    period: Period
    follow_up_days: int
    target: str
    sources: dict[str, str]  # definition -> where its MQLs came from, in words
    outcomes: pd.DataFrame  # one row per flag: see mql_outcomes
    summary: pd.DataFrame  # cohort_table(outcomes), one row per definition
    agreement: pd.DataFrame | None
    notes: list[str] = field(default_factory=list)

    @property
    def weeks(self) -> float:
        return (self.period.end - self.period.start) / pd.Timedelta(days=7)

    def headline(self) -> str:
        """The comparison in one careful paragraph (plain text)."""
        s = self.summary
        span = f"{self.period.start:%d %b %Y} to {self.period.end - pd.Timedelta(days=1):%d %b %Y}"
        if "model" not in s.index or "rules" not in s.index or not s.loc["model", "mqls"]:
            known = [d for d in ("recorded", "rules") if d in s.index]
            parts = [f"{_OWNER[d]}: {_cohort_words(s.loc[d], self)}" for d in known]
            text = f"From {span}, " + "; ".join(parts) + "." if parts else ""
            return (text + " No model MQLs to compare with: give nightly scores (--scores) of "
                    "nights whose outcomes are known.").strip()  # fmt: skip
        model, rules = s.loc["model"], s.loc["rules"]
        n = {f"{who}_{k}": int(row[k]) for who, row in (("model", model), ("rules", rules))
             for k in ("mqls", "converted", "reviewed")}  # fmt: skip
        return (
            f"From {span}, the rules made {n['rules_mqls']:,} leads MQLs and the model "
            f"{n['model_mqls']:,}. Had sales worked the model's MQLs instead of the rules', then, "
            f"judging by what actually happened to those leads, {_pct(model['acceptance'])} of "
            f"the ones sales reviewed would have been accepted (rules: "
            f"{_pct(rules['acceptance'])}) and {_pct(model['conversion'])} would have reached "
            f"{self.target.upper()} within {self.follow_up_days} days (rules: "
            f"{_pct(rules['conversion'])}): {n['model_converted']:,} conversions instead of "
            f"{n['rules_converted']:,}. This is an estimate on observed outcomes, not an "
            f"experiment: leads only the model picks were not all worked by sales, and being "
            f"worked can change what a lead does; acceptance is known only for the leads sales "
            f"reviewed ({n['model_reviewed']:,} of the model's {n['model_mqls']:,}, "
            f"{n['rules_reviewed']:,} of the rules' {n['rules_mqls']:,}). 95 % intervals: "
            f"conversion {_interval(model, 'conversion')} for the model, "
            f"{_interval(rules, 'conversion')} for the rules."
        )


_OWNER = {"recorded": "the CRM recorded", "rules": "the rules made", "model": "the model made"}


def _cohort_words(row: pd.Series, comparison: MqlComparison) -> str:
    return (f"{int(row['mqls']):,} MQLs, {_pct(row['acceptance'])} of those reviewed accepted, "
            f"{_pct(row['conversion'])} reached {comparison.target.upper()} within "
            f"{comparison.follow_up_days} days")  # fmt: skip


def _pct(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.1%}"


def _interval(row: pd.Series, rate: str) -> str:
    return f"{_pct(row[f'{rate}_low'])} to {_pct(row[f'{rate}_high'])}"


def compare_mqls(
    data: LeadData,
    journeys: pd.DataFrame,
    scores: ScoreHistory | None = None,
    *,
    rules=None,
) -> MqlComparison:
    """Compare the MQLs of the CRM, the rules and (with ``scores``) the model over the last
    ``report.period_days`` whose outcomes are known (see :func:`choose_period`).

    With scores, the rules' and the model's MQLs are read from the same scored nights (same
    leads, same instants: like with like); without, or when no scored night is old enough, the
    rules' MQLs are the exact crossings of :func:`leadml.rule_mql_history`.
    """
    settings = data.settings
    days = settings.target.horizon_days
    period = choose_period(
        data.end(), days, settings.report.period_days, None if scores is None else scores.nights
    )
    sources = {"recorded": "the stages table: each lead's first MQL entry in the period"}
    parts = [recorded_flags(data, period.start, period.end)]
    notes = [period.note] if period.note else []
    if period.nights is not None and len(period.nights):
        flags = scores.first_flags(period.start, period.end)
        parts.append(flags)
        nights = f"{len(period.nights)} scored night(s) from {scores.source}"
        sources["rules"] = f"rule MQLs ({nights}): each lead's first night as an MQL"
        sources["model"] = f"model MQLs ({nights}): each lead's first night in an MQL tier"
    else:
        parts.append(rules_flags(data, period.start, period.end, rules))
        sources["rules"] = "the rules file: the exact time each lead first crossed the threshold"
    parts = [p for p in parts if len(p)]
    flags = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame({"lead_id": [], "definition": [], "flagged_at": []})
    )
    outcomes = mql_outcomes(data, flags, days, journeys)
    summary = cohort_table(outcomes)
    immature = int(summary["immature"].sum()) if len(summary) else 0
    if immature:
        notes.append(f"{immature:,} MQL(s) flagged less than {days} days before the end of the "
                     "data are left out: their outcomes are not known yet.")  # fmt: skip
    return MqlComparison(
        period, days, settings.target.stage, sources, outcomes, summary,
        agreement_table(outcomes), notes,
    )  # fmt: skip
