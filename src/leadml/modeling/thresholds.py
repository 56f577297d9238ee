"""Thresholds by evidence: the MQL threshold that meets a sales-acceptance rate or a weekly sales
capacity, read off the test window.

The evidence
------------
The test window is the one ``leadml train`` tests on: the latest snapshots of the open leads,
placed by the same code (:func:`leadml.modeling.windows.assign_windows`). At each snapshot every
open lead has its rule score, as of that instant. A lead becomes an MQL at a threshold at the
first snapshot of the window where its score is at or above it while, at the previous snapshot,
it was not (or the lead was not open then). A lead is sent once per window: one that stays
above, dips and comes back, or was above at the snapshot before the window, is already with
sales (:mod:`leadml.modeling.crossings`); a weekly capacity is compared with *new* MQLs, each a
different lead. Each MQL is followed for one horizon from the snapshot that made it one:

- **accepted**: sales accepted it (SAL or any later stage) by the end of the horizon, when the
  data records sales reviews (SAL or SRL rows); when it does not, accepted means the target
  stage (SQL by default) within the horizon, as *converted*;
- **converted**: it reached the target stage within the horizon (the training label).

MQLs per week are the window's new MQLs divided by the weeks its snapshots cover (snapshots x
``trainset.cadence_days`` / 7). Every figure is exact for the window, for every integer
threshold at once (:func:`threshold_table`; :func:`cut_table` for any score, e.g. a model's
probability); :func:`choose_threshold` picks one for a target
(:mod:`leadml.modeling.threshold_file` writes it into a rules file).
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from leadml.data import LeadData
from leadml.data.asof import follow_up, open_leads
from leadml.errors import ColdStart, ConfigError, DataError, LeadmlError
from leadml.modeling.crossings import first_crossings, highest_before
from leadml.modeling.trainset import mature_pairs
from leadml.modeling.windows import place_windows  # the windows as training places them
from leadml.rules import Rules, load_rules, rule_scores

KEYS = ["lead_id", "as_of"]
#: The figures of one way of picking MQLs, in the order they are printed.
FIGURES = ["mqls", "mqls_per_week", "accepted", "acceptance", "conversions", "conversion_rate"]


class ThresholdUnreachable(LeadmlError):
    """No threshold meets the target on the test window; ``best`` holds the figures of the
    threshold that comes closest."""

    def __init__(self, message: str, best: pd.Series | None = None):
        self.best = best
        super().__init__(message)


@dataclass
class Evidence:
    """The test window's open leads at each snapshot, with what became of them.

    ``rows``: ``lead_id``, ``as_of``, ``rule_score``, ``previous_rule_score`` (the lead's score
    at the previous snapshot; -inf when it was not open then), ``accepted``, ``converted``.
    ``previous``: the open leads at the snapshot before the window (``lead_id``, ``as_of``), for
    scores that need every lead of a snapshot (a model's tiers by capacity).
    """

    rows: pd.DataFrame
    previous: pd.DataFrame
    snapshots: pd.DatetimeIndex
    cadence_days: int
    accepted_stage: str  # "sal" (SAL or later), or the target stage
    target_stage: str
    horizon_days: int
    window: str = "test"  # which window of the training set: train, calibration or test

    @property
    def weeks(self) -> float:
        """The weeks the window's snapshots cover."""
        return len(self.snapshots) * self.cadence_days / 7

    def describe(self) -> str:
        """The window and what counts as accepted and converted, in plain words."""
        first, last = self.snapshots.min(), self.snapshots.max()
        accepted = (
            "sales accepted it (SAL or a later stage) by the end of the horizon"
            if self.accepted_stage == "sal"
            else "the data records no sales review (SAL/SRL), so it reached "
            f"{_stage(self.target_stage)} within the horizon"
        )
        return (
            f"{self.window} window: {len(self.snapshots)} snapshots from {first:%Y-%m-%d} to "
            f"{last:%Y-%m-%d} ({self.weeks:.1f} weeks), {len(self.rows):,} open-lead rows. "
            f"An MQL is counted once a lead, at the snapshot its score first reaches the "
            f"threshold; accepted: {accepted}; converted: reached "
            f"{_stage(self.target_stage)} within {self.horizon_days} days."
        )


def _stage(name: str) -> str:
    return name.upper() if name in ("mql", "sal", "srl", "sql") else name


def gather_evidence(data: LeadData, rules: Rules | str | Path | None = None) -> Evidence:
    """The test window of ``data`` (the one training tests on) with rule scores and outcomes.

    Raises
    ------
    ColdStart
        No snapshot is mature, the test window holds no open lead, or it holds too few
        conversions or non-conversions to measure a threshold by (``split.min_window_positives``
        of each, as ``leadml train`` and ``leadml rules learn`` need on the same window).
    """
    settings = data.settings
    rules = load_rules(rules, settings)
    mature = mature_pairs(data)
    if mature.empty:
        raise ColdStart(
            f"cold start: no mature snapshot: outcomes are known until {data.end():%Y-%m-%d} "
            f"and each needs a {settings.target.horizon_days}-day horizon; a longer history is "
            "needed"
        )
    placed, _ = place_windows(mature, settings)
    test = placed[placed["window"] == "test"]
    if test.empty:
        raise ColdStart("cold start: the test window holds no open lead: a longer history is "
                        "needed")  # fmt: skip
    evidence = window_evidence(data, test[KEYS], rules)
    hits, needed = int(evidence.rows["converted"].sum()), settings.split.min_window_positives
    if min(hits, len(evidence.rows) - hits) < needed:
        # Without conversions every threshold finds none and accepts alike: any pick is noise.
        first, last = evidence.snapshots.min(), evidence.snapshots.max()
        raise ColdStart(
            f"cold start: only {hits:,} conversions ({_stage(evidence.target_stage)} within "
            f"{evidence.horizon_days} days) and {len(evidence.rows) - hits:,} non-conversions in "
            f"the test window ({len(evidence.snapshots)} snapshots from {first:%Y-%m-%d} to "
            f"{last:%Y-%m-%d}, {len(evidence.rows):,} open-lead rows, "
            f"{int(evidence.rows['accepted'].sum()):,} accepted), need {needed} of each to measure "
            "conversions and acceptance: lengthen the history, or lower "
            "split.min_window_positives; no threshold was chosen or written"
        )
    return evidence


def window_evidence(
    data: LeadData,
    pairs: pd.DataFrame,
    rules: Rules | str | Path | None = None,
    window: str = "test",
) -> Evidence:
    """One window of snapshots with rule scores and outcomes: ``pairs`` (``lead_id``,
    ``as_of``) holds every open lead at each of the window's snapshots, as a window of the
    training set does; ``window`` names it in :meth:`Evidence.describe`. A
    :class:`~leadml.errors.DataError` when ``pairs`` is empty."""
    settings = data.settings
    rules = load_rules(rules, settings)
    if pairs.empty:
        raise DataError(f"the {window} window holds no open lead: a longer history is needed")
    snapshots = pd.DatetimeIndex(sorted(pairs["as_of"].unique()))
    cadence = settings.trainset.cadence_days
    previous = open_leads(data, snapshots.min() - pd.Timedelta(days=cadence))
    rows = _scored(data, pairs[KEYS].reset_index(drop=True), previous, rules, cadence)
    outcomes = follow_up(data, rows[KEYS], settings.target.horizon_days)  # in the rows' order
    # fetchall: a result left half-read would block the connection's next query.
    reviewed = data.con.execute(
        "SELECT count(*) FROM stages WHERE stage IN ('sal', 'srl')"
    ).fetchall()[0][0]
    stage = "sal" if reviewed else settings.target.stage
    rows["accepted"] = outcomes["accepted" if reviewed else "converted"].to_numpy(dtype=bool)
    rows["converted"] = outcomes["converted"].to_numpy(dtype=bool)
    return Evidence(rows, previous, snapshots, cadence, stage, settings.target.stage,
                    settings.target.horizon_days, window)  # fmt: skip


def rescored(data: LeadData, evidence: Evidence, rules: Rules | str | Path | None) -> Evidence:
    """``evidence`` with the scores of other ``rules``: the same window, leads and outcomes,
    so two sets of rules are compared on exactly the same rows."""
    rules = load_rules(rules, data.settings)
    scored = _scored(data, evidence.rows[KEYS], evidence.previous, rules, evidence.cadence_days)
    rows = evidence.rows.assign(**{c: scored[c].to_numpy() for c in scored if c not in KEYS})
    return replace(evidence, rows=rows)


def _scored(data, keys: pd.DataFrame, previous: pd.DataFrame, rules: Rules, cadence: int):
    """``keys`` with ``rule_score`` and ``previous_rule_score`` (-inf: not open then)."""
    spine = pd.concat([previous[KEYS], keys], ignore_index=True)
    scored = rule_scores(data, spine, rules, explain=False)[[*KEYS, "rule_score"]]
    return with_previous(keys, scored, cadence).fillna({"previous_rule_score": -np.inf})


def with_previous(rows: pd.DataFrame, scored: pd.DataFrame, cadence_days: int) -> pd.DataFrame:
    """``rows`` (``lead_id``, ``as_of``) with each column of ``scored`` (one row per lead and
    snapshot) as at that snapshot and, as ``previous_<column>``, at the snapshot
    ``cadence_days`` before (missing where the lead was not scored then).

    Examples
    --------
    >>> t = pd.to_datetime(["2026-01-05", "2026-01-12"], utc=True)
    >>> scored = pd.DataFrame({"lead_id": ["L1", "L1"], "as_of": t, "s": [10, 30]})
    >>> with_previous(scored[["lead_id", "as_of"]], scored, 7)["previous_s"].tolist()
    [nan, 10.0]
    """
    keys = rows[KEYS]
    earlier = scored.assign(as_of=scored["as_of"] + pd.Timedelta(days=cadence_days))
    earlier = earlier.rename(columns={c: f"previous_{c}" for c in scored.columns if c not in KEYS})
    found = keys.merge(scored, on=KEYS, how="left", validate="one_to_one")
    return found.merge(earlier, on=KEYS, how="left", validate="one_to_one")


def mql_figures(
    new: np.ndarray, accepted: np.ndarray, converted: np.ndarray, weeks: float
) -> dict[str, float]:
    """The :data:`FIGURES` of one way of picking MQLs: ``new`` flags the rows that became MQLs.

    Examples
    --------
    >>> f = mql_figures(np.array([1, 1, 0, 1], bool), np.array([1, 0, 0, 1], bool),
    ...                 np.array([1, 0, 1, 0], bool), weeks=2)
    >>> f["mqls_per_week"], f["acceptance"], f["conversions"], f["conversion_rate"]
    (1.5, 0.6666666666666666, 1, 0.3333333333333333)
    """
    new = np.asarray(new, dtype=bool)
    mqls, hits = int(new.sum()), int(np.asarray(converted)[new].sum())
    taken = int(np.asarray(accepted)[new].sum())
    return {
        "mqls": mqls,
        "mqls_per_week": mqls / weeks if weeks else math.nan,
        "accepted": taken,
        "acceptance": taken / mqls if mqls else math.nan,
        "conversions": hits,
        "conversion_rate": hits / mqls if mqls else math.nan,
    }


def rules_figures(evidence: Evidence, threshold: float) -> dict[str, float]:
    """The :data:`FIGURES` of the rule score at ``threshold`` on the window."""
    rows = evidence.rows
    new = first_crossings(rows, rows["rule_score"], rows["previous_rule_score"], threshold)
    return mql_figures(new, rows["accepted"], rows["converted"], evidence.weeks)


@dataclass
class ThresholdChoice:
    """The threshold chosen for a target, with the evidence behind it.

    ``compared``: one row per way of picking MQLs, its ``cut`` in words and its
    :data:`FIGURES`: the rules at the chosen threshold; when a model was given or found, the
    model held to the same target (its probability cut that meets it with the most
    conversions); the rules at the file's own threshold; the model's tier cut.
    ``table``: the figures of every threshold of the rules. ``per_week``: the capacity, when
    that is the target. :attr:`warnings` says when the target does not limit the MQLs.
    """

    threshold: int
    target: str
    evidence: Evidence
    table: pd.DataFrame
    compared: pd.DataFrame
    notes: list[str]
    written: Path | None = None
    per_week: float | None = None

    @property
    def lowest_score(self) -> float:
        """The lowest rule score in the window."""
        return float(self.evidence.rows["rule_score"].min())

    @property
    def sends_every_lead(self) -> bool:
        """At or below every score in the window: every open lead would be an MQL."""
        return self.threshold <= self.lowest_score

    @property
    def most_per_week(self) -> float:
        """The most new MQLs a week any threshold sends on the window."""
        return float(self.table["mqls_per_week"].max())

    @property
    def warnings(self) -> list[str]:
        """Why the threshold is no real choice, in plain words: a capacity above what any
        threshold sends, a threshold at or below every score."""
        found = []
        if self.per_week is not None and self.most_per_week < self.per_week:
            found.append(
                f"the capacity ({self.per_week:g} new MQLs a week) is more than any threshold "
                f"sends on the {self.evidence.window} window: the most is {self.most_per_week:.1f} "
                f"a week (threshold {self.table['mqls_per_week'].idxmax()}): it limits nothing"
            )
        if self.sends_every_lead:
            found.append(
                f"threshold {self.threshold} is at or below the lowest score in the "
                f"{self.evidence.window} window ({self.lowest_score:g}): every lead scoring at "
                f"least {self.threshold}, that is every open lead, would be an MQL"
            )
        return found

    def summary(self) -> dict:
        """The choice in plain values (``leadml rules threshold --json``)."""
        return {
            "threshold": self.threshold,
            "target": self.target,
            "accepted_stage": self.evidence.accepted_stage,
            "target_stage": self.evidence.target_stage,
            "snapshots": len(self.evidence.snapshots),
            "weeks": self.evidence.weeks,
            "lowest_score": self.lowest_score,
            "most_mqls_per_week": self.most_per_week,
            "sends_every_lead": self.sends_every_lead,
            "warnings": self.warnings,
            "compared": self.compared.reset_index().to_dict(orient="records"),
            "notes": list(self.notes),
            "written": None if self.written is None else str(self.written),
        }

    def format(self) -> str:
        """The choice, its window and the comparison, as text for people."""
        shown = pd.DataFrame(
            {
                "cut": self.compared["cut"],
                "MQLs/week": self.compared["mqls_per_week"].map("{:.1f}".format),
                "MQLs": self.compared["mqls"].map("{:,}".format),
                "accepted": self.compared["acceptance"].map(_percent),
                "conversions": self.compared["conversions"].map("{:,}".format),
                "MQL->conversion": self.compared["conversion_rate"].map(_percent),
            }
        )
        head = (
            f"MQL threshold {self.threshold}: of the thresholds with {self.target}, the one "
            "that finds the most conversions on the " + self.evidence.describe()
        )
        notes = [textwrap.fill(f"{kind}: {n}", 100, subsequent_indent="  ",
                               break_on_hyphens=False)
                 for kind, texts in (("warning", self.warnings), ("note", self.notes))
                 for n in texts]  # fmt: skip
        head = textwrap.fill(head, 100, break_on_hyphens=False)
        return "\n".join([head, "", shown.to_string(), *notes])


def _percent(value: float) -> str:
    return "-" if pd.isna(value) else f"{value:.1%}".replace("%", " %")


def threshold_table(evidence: Evidence) -> pd.DataFrame:
    """The :data:`FIGURES` of every integer threshold of the rule score, from the lowest score
    to the highest (:func:`cut_table`); of the scores' own (rounded down) when they span more
    integers than there are rows and a hundred thousand (points in the millions)."""
    rows = evidence.rows
    score = rows["rule_score"].to_numpy(dtype=float)
    low, high = (np.floor(score.min()), np.floor(score.max())) if len(score) else (0, -1)
    many = high - low > max(len(score), 100_000)
    cuts = np.unique(np.floor(score)) if many else np.arange(low, high + 1)
    table = cut_table(evidence, score, rows["previous_rule_score"], cuts)
    table.index = table.index.astype("int64").rename("threshold")
    return table


def cut_table(evidence: Evidence, score, previous, cuts) -> pd.DataFrame:
    """The :data:`FIGURES` of each of the increasing ``cuts`` of a score of ``evidence.rows``
    (``score`` now and at the snapshot before: ``previous``, -inf when the lead was not open).

    A lead is a new MQL at cut c once, at its row where ``highest < c <= score`` (``highest``:
    :func:`~leadml.modeling.crossings.highest_before`): each row adds itself to that run of
    cuts, so the whole table is one pass over the rows.
    """
    rows, cuts = evidence.rows, np.asarray(cuts, dtype=float)
    score = np.asarray(score, dtype=float)
    highest = highest_before(rows, score, previous)
    first = np.searchsorted(cuts, highest, side="right")  # the first cut above highest
    last = np.searchsorted(cuts, score, side="right") - 1  # the last cut at or below score
    counted = first <= last
    size = len(cuts) + 1

    def per_cut(weight: np.ndarray) -> np.ndarray:
        delta = np.bincount(first[counted], weight[counted], minlength=size)
        delta -= np.bincount(last[counted] + 1, weight[counted], minlength=size)
        return np.cumsum(delta)[:-1]

    mqls = per_cut(np.ones(len(rows)))
    accepted = per_cut(rows["accepted"].to_numpy(dtype=float))
    conversions = per_cut(rows["converted"].to_numpy(dtype=float))
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(
            {
                "mqls": mqls.round().astype("int64"),
                "mqls_per_week": mqls / evidence.weeks,
                "accepted": accepted.round().astype("int64"),
                "acceptance": np.where(mqls > 0, accepted / mqls, np.nan),
                "conversions": conversions.round().astype("int64"),
                "conversion_rate": np.where(mqls > 0, conversions / mqls, np.nan),
            },
            index=pd.Index(cuts, name="cut"),
        )


def probability_cuts(probability, points: int = 400) -> np.ndarray:
    """Cuts of a probability to tabulate: its quantiles, at four decimals, without repeats.

    Examples
    --------
    >>> probability_cuts(np.array([0.01, 0.2, 0.2, 0.61234]), points=4).tolist()
    [0.01, 0.1525, 0.2, 0.3031, 0.6123]
    """
    values = np.asarray(probability, dtype=float)
    return np.unique(np.round(np.quantile(values, np.linspace(0, 1, points + 1)), 4))


def check_target(acceptance: float | None, per_week: float | None) -> str:
    """The target in words; a :class:`~leadml.errors.ConfigError` (exit 2) unless exactly one
    of ``acceptance`` (a share in (0, 1]) and ``per_week`` (a finite number above 0) is given."""
    if acceptance is None and per_week is None:
        raise ConfigError(
            "give a target: --acceptance (the share of MQLs sales should accept, e.g. 0.8) or "
            "--per-week (the new MQLs sales can take a week)"
        )
    if acceptance is not None and per_week is not None:
        raise ConfigError("give one target, --acceptance or --per-week, not both")
    if acceptance is not None:
        if not 0 < acceptance <= 1:
            raise ConfigError(f"--acceptance must be a share in (0, 1], e.g. 0.8; got {acceptance}")
        return f"an acceptance of at least {acceptance:.0%}".replace("%", " %")
    if not (per_week > 0 and math.isfinite(per_week)):  # nan fails both
        raise ConfigError(f"--per-week must be a number of MQLs above 0, e.g. 100; got {per_week}")
    return f"at most {per_week:g} new MQLs a week"


def choose_threshold(
    table: pd.DataFrame,
    *,
    acceptance: float | None = None,
    per_week: float | None = None,
    min_mqls: int = 20,
) -> float:
    """The threshold (or cut of a :func:`cut_table`) that meets the target and finds the most
    conversions (of equals, the lowest: the most MQLs). The target is an ``acceptance`` rate of
    at least the given share, or at most ``per_week`` new MQLs a week. Only thresholds with at
    least ``min_mqls`` MQLs in the window count for an acceptance rate (fewer are no evidence).

    The most conversions rather than simply the lowest threshold: a threshold low enough to
    send every new lead sends many at creation, long before they are ready, so a somewhat
    higher one can find more conversions with fewer MQLs.

    Raises
    ------
    ConfigError
        Neither or both targets are given, or one is out of range.
    ThresholdUnreachable
        No threshold meets the target; the message names the best one reachable.

    Examples
    --------
    >>> t = pd.DataFrame({"mqls": [90, 40, 20], "mqls_per_week": [9.0, 4.0, 2.0],
    ...                   "acceptance": [0.6, 0.8, 0.9], "conversions": [9, 8, 8]},
    ...                  index=[10, 20, 30])
    >>> choose_threshold(t, acceptance=0.75), choose_threshold(t, per_week=5)
    (20, 20)
    >>> choose_threshold(t, per_week=10)
    10
    """
    check_target(acceptance, per_week)
    sent = table[table["mqls"] > 0]
    if acceptance is not None:
        sure = sent[sent["mqls"] >= min_mqls]
        meets = sure[sure["acceptance"] >= acceptance]
        if meets.empty:
            if sure.empty:
                raise ThresholdUnreachable(
                    f"no threshold sends {min_mqls} MQLs in the test window: too little evidence "
                    "to set a threshold by acceptance"
                )
            best = sure.loc[sure["acceptance"].idxmax()]
            raise ThresholdUnreachable(
                f"no threshold reaches an acceptance of {acceptance:.0%} on the test window "
                f"(among thresholds sending at least {min_mqls} MQLs); the best reachable is "
                f"{best['acceptance']:.1%} at threshold {best.name} "
                f"({best['mqls_per_week']:.1f} MQLs a week)".replace("%", " %"),
                best,
            )
        return _most_conversions(meets)
    meets = sent[sent["mqls_per_week"] <= per_week]
    if meets.empty:
        fewest = sent.loc[sent["mqls_per_week"].idxmin()] if len(sent) else None
        detail = (
            f"; the fewest is {fewest['mqls_per_week']:.2f} a week at threshold {fewest.name}"
            if fewest is not None
            else ""
        )
        raise ThresholdUnreachable(
            f"no threshold sends at most {per_week:g} MQLs a week on the test window{detail}",
            fewest,
        )
    return _most_conversions(meets)


def _most_conversions(meets: pd.DataFrame):
    """The lowest of the cuts that find the most conversions."""
    return meets.index[meets["conversions"] == meets["conversions"].max()][0].item()
