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
from leadml.reports._chance import Difference, difference_words, differences
from leadml.reports._nights import NO_FLAGS, at_volume, new_mqls, night_window
from leadml.reports._scores import ScoreHistory
from leadml.rules import load_rules, rule_mql_history, rule_scores

DEFINITIONS = ("recorded", "rules", "learned", "learned_at_volume", "model", "model_at_volume")
#: How each definition is named for people.
DEFINITION_LABELS = {
    "recorded": "Recorded in the CRM",
    "rules": "Rule score",
    "learned": "Learned rules",
    "learned_at_volume": "Learned rules at the rules' volume",
    "model": "Model (MQL tiers)",
    "model_at_volume": "Model at the rules' volume",
}
#: Hours before a recorded MQL in which a decision-stage action (a demo, contact or trial
#: request) makes it a hand-raiser's.
HAND_RAISE_HOURS = 24


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
        note = (f"{len(nights) - len(used)} scored night(s) outside this period are not compared "
                f"(older than it, or less than {follow_up_days} days before the end of the "
                "data); the last older one, if any, only tells who was an MQL already when the "
                "period starts.")  # fmt: skip
    return Period(start, end, used, note)


def recorded_flags(data: LeadData, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Leads the CRM made MQLs in ``[start, end)``, each at its first MQL entry in the period,
    with ``hand_raise``: the lead had a decision-stage action (demo, contact or trial request)
    in the :data:`HAND_RAISE_HOURS` up to that entry."""
    flags = data.con.execute(
        f"""
        WITH first AS (
            SELECT lead_id, min(entered_at) AS flagged_at FROM stages
            WHERE stage = 'mql' AND entered_at >= $start AND entered_at < $end GROUP BY lead_id
        )
        SELECT f.lead_id, f.flagged_at, EXISTS (
            SELECT 1 FROM events e WHERE e.lead_id = f.lead_id AND e.buying_stage = 'decision'
            AND e.occurred_at <= f.flagged_at
            AND e.occurred_at > f.flagged_at - INTERVAL {HAND_RAISE_HOURS} HOURS
        ) AS hand_raise
        FROM first f
        """,
        {"start": start, "end": end},
    ).df()
    return flags.assign(definition="recorded")[["lead_id", "definition", "flagged_at",
                                                "hand_raise"]]  # fmt: skip


def rules_flags(
    data: LeadData, start: pd.Timestamp, end: pd.Timestamp, rules, definition: str = "rules"
) -> pd.DataFrame:
    """Leads the rules made MQLs in ``[start, end)``, at the exact time each first crossed the
    threshold (:func:`leadml.rule_mql_history`); a lead already above it at ``start`` is no new
    MQL of the period, even if it drops below and crosses again."""
    history = rule_mql_history(data, start, end, rules)
    first = history[history["crossing"] == 1]
    if len(first):
        spine = pd.DataFrame({"lead_id": first["lead_id"].to_numpy(), "as_of": start})
        at_start = rule_scores(data, spine, rules, explain=False)
        first = first[~first["lead_id"].isin(at_start.loc[at_start["rule_mql"], "lead_id"])]
    return pd.DataFrame({
        "lead_id": first["lead_id"].astype("str"), "definition": definition,
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
    #: The scored nights read (the baseline first) and their rows: lead_id, as_of, the flags,
    #: the scores the history has, ``learned_score``/``learned_mql`` with learned rules.
    nights: pd.DatetimeIndex | None = None
    rows: pd.DataFrame | None = None
    #: Each score at the rules' volume against the rules: the difference of conversions with
    #: its bootstrap interval and head start (:mod:`leadml.reports._chance`).
    differences: dict[str, Difference] = field(default_factory=dict)

    @property
    def weeks(self) -> float:
        return (self.period.end - self.period.start) / pd.Timedelta(days=7)

    @property
    def hand_raisers(self) -> int:
        """The CRM's recorded MQLs (mature) that followed a decision-stage action within
        :data:`HAND_RAISE_HOURS`."""
        recorded = self.outcomes[(self.outcomes["definition"] == "recorded")
                                 & self.outcomes["mature"]]  # fmt: skip
        return int(recorded.get("hand_raise", pd.Series(dtype=bool)).fillna(False).sum())

    def headline(self) -> str:
        """The comparison in one careful paragraph (plain text): conversions at the rules' MQL
        volume first, then each definition's rates at its own volume, then the CRM's line."""
        s = self.summary
        span = f"{self.period.start:%d %b %Y} to {self.period.end - pd.Timedelta(days=1):%d %b %Y}"
        target = f"{self.target.upper()} within {self.follow_up_days} days"
        count = {d: int(s.loc[d, "mqls"]) if d in s.index else 0 for d in DEFINITIONS}
        conv = {d: int(s.loc[d, "converted"]) if d in s.index else 0 for d in DEFINITIONS}

        def _of(d: str) -> str:  # conversions, and their share of the definition's MQLs
            return f"{conv[d]:,} ({_pct(s.loc[d, 'conversion'])})"

        parts = []
        if count["model"] or count["model_at_volume"]:
            if count["model_at_volume"]:
                learned = (f" ({_of('learned_at_volume')} for the learned rules' top leads "
                           "at that volume)" if "learned_at_volume" in s.index else "")  # fmt: skip
                parts.append(
                    f"Like with like, from {span}: the rules made {count['rules']:,} leads new "
                    f"MQLs on the scored nights. Had sales been sent the model's highest-scored "
                    f"leads instead, as many each night ({count['model_at_volume']:,} in all), "
                    f"then, judging by what actually happened to those leads, "
                    f"{_of('model_at_volume')} would have reached {target}, against "
                    f"{_of('rules')} of the rules' MQLs{learned}."
                )  # fmt: skip
                parts += [difference_words(d, self.follow_up_days)
                          for d in self.differences.values()]  # fmt: skip
            elif self.rows is not None and "mql_probability" in self.rows:
                parts.append(f"From {span}, the rules made no new MQLs on the scored nights: "
                             "nothing to compare at their volume.")  # fmt: skip
            else:
                parts.append(f"From {span}; the scores hold no model probability, so the model "
                             "cannot be compared at the rules' volume.")  # fmt: skip
            if count["model"] and count["rules"]:
                model, rules = s.loc["model"], s.loc["rules"]
                parts.append(
                    f"At their own volumes, the model's MQL tiers made {count['model']:,} new "
                    f"MQLs: {_pct(model['conversion'])} reached {target} (rules: "
                    f"{_pct(rules['conversion'])}) and {_pct(model['acceptance'])} of those "
                    f"sales reviewed were accepted (rules: {_pct(rules['acceptance'])}; "
                    f"reviewed: {int(model['reviewed']):,} of the model's, "
                    f"{int(rules['reviewed']):,} of the rules'). 95 % intervals of the "
                    f"conversion: {_interval(model, 'conversion')} for the model, "
                    f"{_interval(rules, 'conversion')} for the rules."
                )  # fmt: skip
        else:
            known = [d for d in ("rules", "learned") if d in s.index]
            words = [f"{_OWNER[d]}: {_cohort_words(s.loc[d], self)}" for d in known]
            if words:
                parts.append(f"From {span}, " + "; ".join(words) + ".")
            parts.append("No model MQLs to compare with: give nightly scores (--scores) of "
                         "nights whose outcomes are known.")  # fmt: skip
        if "recorded" in s.index:
            parts.append(
                f"The CRM recorded {count['recorded']:,} MQLs in the period "
                f"({_pct(s.loc['recorded', 'conversion'])} reached {self.target.upper()}), "
                f"{self.hand_raisers:,} of them hand-raisers made MQLs the moment they asked "
                "for sales (a demo, contact or trial request): leads no score has to find, so "
                "that line is shown for reference, not compared."
            )
        if count["model"] or count["model_at_volume"]:
            parts.append("This is an estimate on observed outcomes, not an experiment: leads "
                         "only the model picks were not all worked by sales, and being worked "
                         "can change what a lead does.")  # fmt: skip
        return " ".join(parts)


_OWNER = {"recorded": "the CRM recorded", "rules": "the rules made",
          "learned": "the learned rules made", "model": "the model made"}  # fmt: skip


def _cohort_words(row: pd.Series, comparison: MqlComparison) -> str:
    return (f"{int(row['mqls']):,} new MQLs, {_pct(row['acceptance'])} of those reviewed "
            f"accepted, {_pct(row['conversion'])} reached {comparison.target.upper()} within "
            f"{comparison.follow_up_days} days")  # fmt: skip


def _pct(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.1%}"


def _interval(row: pd.Series, rate: str) -> str:
    return f"{_pct(row[f'{rate}_low'])} to {_pct(row[f'{rate}_high'])}"


def _scored_nights(data: LeadData, scores: ScoreHistory, period: Period, learned):
    """The nights to read (baseline first), their rows, with the learned rules' scores, the
    new MQLs of each definition, and a note about the baseline."""
    nights, note = night_window(scores.nights, period.nights)
    rows = scores.rows(nights)
    if learned is not None:
        ruled = rule_scores(data, rows[["lead_id", "as_of"]], learned, explain=False)
        ruled = ruled[["lead_id", "as_of", "rule_score", "rule_mql"]].rename(
            columns={"rule_score": "learned_score", "rule_mql": "learned_mql"}
        )
        rows = rows.merge(ruled.astype({"lead_id": "str"}), on=["lead_id", "as_of"], how="left")
        rows["learned_mql"] = rows["learned_mql"].fillna(False).astype(bool)
    parts = [new_mqls(rows, "rule_mql", nights, "rules"),
             new_mqls(rows, "model_mql", nights, "model")]  # fmt: skip
    # Each lead's first night sent, the baseline night included, by definition.
    flagged = rows[rows["rule_mql"].astype(bool)]
    first_sent = {"rules": flagged.groupby("lead_id")["as_of"].min()}
    scores = {"model_at_volume": "mql_probability"} if "mql_probability" in rows else {}
    if learned is not None:
        parts.append(new_mqls(rows, "learned_mql", nights, "learned"))
        scores["learned_at_volume"] = "learned_score"
    for definition, score in scores.items():
        sent = at_volume(rows, score, "rule_mql", nights, definition, baseline=True)
        first_sent[definition] = sent.groupby("lead_id")["flagged_at"].min()
        parts.append(sent[sent["flagged_at"] > nights[0]])
    return nights, rows, parts, note, first_sent


def compare_mqls(
    data: LeadData,
    journeys: pd.DataFrame,
    scores: ScoreHistory | None = None,
    *,
    rules=None,
    learned_rules=None,
) -> MqlComparison:
    """Compare the new MQLs of the CRM, the rules, the learned rules (with ``learned_rules``, a
    second rules file) and (with ``scores``) the model over the last ``report.period_days``
    whose outcomes are known (see :func:`choose_period`).

    With scores, every score's MQLs are read from the same scored nights (same leads, same
    instants: like with like), new MQLs only (:mod:`leadml.reports._nights`), and the model and
    the learned rules are also taken at the rules' volume; without, or when no scored night is
    old enough, the rules' MQLs are the exact crossings of :func:`leadml.rule_mql_history`.
    """
    settings = data.settings
    days = settings.target.horizon_days
    learned = None if learned_rules is None else load_rules(learned_rules, settings)
    period = choose_period(
        data.end(), days, settings.report.period_days, None if scores is None else scores.nights
    )
    sources = {"recorded": "the stages table: each lead's first MQL entry in the period, "
               "whatever made it (the CRM's own score, or a hand-raise: a demo, contact or "
               "trial request makes a lead an MQL at once)"}  # fmt: skip
    parts = [recorded_flags(data, period.start, period.end)]
    notes = [period.note] if period.note else []
    nights = rows = None
    first_sent: dict[str, pd.Series] = {}
    if period.nights is not None and len(period.nights):
        nights, rows, flags, note, first_sent = _scored_nights(data, scores, period, learned)
        parts += flags
        notes += [note] if note else []
        read = f"{len(nights) - 1} scored night(s) after {nights[0]:%Y-%m-%d}, from {scores.source}"
        new = "a lead on the first night it is one and was not the night before"
        sources["rules"] = f"rule MQLs ({read}): {new}"
        sources["model"] = f"the model's MQL tiers (same nights): {new}"
        sources["model_at_volume"] = ("each night, the model's highest-probability open leads "
                                      "not sent already, as many as the rules' new MQLs that "
                                      "night")  # fmt: skip
        if learned is not None:
            sources["learned"] = f"the learned rules scored by leadml's engine (same nights): {new}"
            sources["learned_at_volume"] = ("each night, the learned rules' highest-scored open "
                                            "leads, as many as the rules' new MQLs")  # fmt: skip
    else:
        exact = "the exact time each lead crossed the threshold (already above it at the start: "
        parts.append(rules_flags(data, period.start, period.end, rules))
        sources["rules"] = f"the rules file: {exact}no new MQL)"
        if learned is not None:
            parts.append(rules_flags(data, period.start, period.end, learned, "learned"))
            sources["learned"] = f"the learned rules file: {exact}no new MQL)"
    parts = [p for p in parts if len(p)]
    flags = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(NO_FLAGS)
    outcomes = mql_outcomes(data, flags, days, journeys)
    summary = cohort_table(outcomes)
    immature = int(summary["immature"].sum()) if len(summary) else 0
    if immature:
        notes.append(f"{immature:,} MQL(s) flagged less than {days} days before the end of the "
                     "data are left out: their outcomes are not known yet.")  # fmt: skip
    found = differences(outcomes, first_sent)
    if found:
        notes.append("Why training's test window can read otherwise at the same volume: it "
                     "counts the MQLs standing on each snapshot (a lead every week it stays an "
                     "MQL), this page each lead once, when it becomes a new MQL, converting "
                     f"within {days} days of that night (docs/reports.md).")  # fmt: skip
    return MqlComparison(
        period, days, settings.target.stage, sources, outcomes, summary,
        agreement_table(outcomes), notes, nights, rows, found,
    )  # fmt: skip
