"""The leakage guard: columns that would let a model see the outcome, found before it trains.

A lead-scoring model may only see what was known when the lead is scored. Exports, and extra
columns passed through to the features, often carry fields filled in after the outcome was known
(a sales status or tag, a lead quality set by a rep, a call duration, deal fields that exist only
for won leads). With them a model looks excellent in validation and is useless in production.
:func:`check_leakage` flags, per column:

``single_column``
    Its values alone rank the leads almost perfectly (out-of-fold ROC AUC of each value's
    conversion rate at least ``leakage.max_single_column_auc``), or values that nearly always
    have the rarer outcome (rate at least ``leakage.purity``) hold ``leakage.max_pure_share`` of
    all rows with that outcome (e.g. a tag "Closed won").
``presence``
    It is filled in (non-missing) for one class at most ``leakage.presence_ratio`` times as
    often as for the other (e.g. a deal amount that exists only for won leads).
``identifier``
    (Almost) every lead has its own value: a model would memorise rows instead of learning.
``name``
    Its name has one of ``leakage.post_outcome_names`` as a whole word (status, stage, tag, ...).
``after_time``
    A date column of a flat export trained with ``--time``: more than
    ``leakage.max_after_time_share`` of its dates fall on a later day than the row's own time
    (a close date, a last-contact date, a "converted on" date). For lead scoring such a date is
    known only after the lead was scored, whatever its values say about the outcome. Dates on
    the row's own day are not after it; missing dates do not count. Without ``--time`` a flat
    export's dates are not model inputs, so the check does not apply (see ``days_after``).

Flagged columns are left out unless allowed (``leakage.allow``, ``--allow-column``); the
:class:`LeakageReport` names each with the reason and the figures behind it. Columns computed
by leadml itself as of each snapshot are *trusted*: their names and missing values say nothing
about when they were known, so only the single-column check applies to them, as a tripwire.

Pure functions of a frame and its labels: no files, no MLflow.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

import numpy as np
import pandas as pd

from leadml.config import LeakageSettings
from leadml.errors import DataError
from leadml.modeling.leakage_report import Finding, LeakageReport
from leadml.modeling.leakage_stats import (
    folds_of,
    is_number,
    out_of_fold_auc,
    sample_rows,
    share_of,
    take_rows,
    value_codes,
)

CHECKS = ("single_column", "presence", "identifier", "name", "after_time")
#: Words that make an integer column with distinct values an identifier (text needs no name).
ID_WORDS = frozenset({"id", "ids", "uuid", "guid", "key", "number", "no", "num", "nr"})


def name_words(name: str) -> list[str]:
    """The lower-case words of a column name, whatever its casing or separators.

    Examples
    --------
    >>> name_words("Last Notable Activity"), name_words("leadStatus"), name_words("deal_won_at")
    (['last', 'notable', 'activity'], ['lead', 'status'], ['deal', 'won', 'at'])
    """
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return re.findall(r"[a-z0-9]+", spaced.lower())


def matching_name(name: str, phrases: Sequence[str]) -> str | None:
    """The first of ``phrases`` whose words appear in ``name`` as a run of whole words (a plural
    s or es allowed), or None.

    Examples
    --------
    >>> matching_name("Tags", ["status", "tag"]), matching_name("Stagecoach", ["stage"])
    ('tag', None)
    >>> matching_name("Last Notable Activity", ["last activity", "last"])
    'last'
    """
    words = name_words(name)
    for phrase in phrases:
        wanted = name_words(phrase)
        if not wanted:
            continue
        for start in range(len(words) - len(wanted) + 1):
            window = words[start : start + len(wanted)]
            if all(w in (p, p + "s", p + "es") for w, p in zip(window, wanted, strict=True)):
                return phrase
    return None


def distinct_share(values: pd.Series, groups: pd.Series | np.ndarray | None = None) -> float:
    """Distinct values per present value (per lead when ``groups`` names the lead of each row)."""
    present = values.notna().to_numpy()
    if groups is not None:
        first = ~pd.Series(np.asarray(groups)).duplicated().to_numpy()
        present = present & first
    kept = values[present]
    return kept.nunique() / len(kept) if len(kept) else 0.0


def looks_like_identifier(
    values: pd.Series,
    name: str,
    settings: LeakageSettings,
    groups: pd.Series | np.ndarray | None = None,
) -> float | None:
    """The share of distinct values if ``values`` look like an identifier, else None.

    Text (other than long text) and integers named like an id ("Lead Number", ``crm_id``) count
    when at least ``identifier_unique_share`` of the present values are distinct; measurements
    (numbers with decimals, integers named otherwise) never do, however varied.

    Examples
    --------
    >>> from leadml.config import LeakageSettings
    >>> ids = pd.Series([f"L{i:04d}" for i in range(50)])
    >>> looks_like_identifier(ids, "Prospect ID", LeakageSettings())
    1.0
    >>> looks_like_identifier(pd.Series(range(50)), "seconds_on_site", LeakageSettings()) is None
    True
    """
    present = values.dropna()
    if len(present) < settings.min_rows_per_value or pd.api.types.is_bool_dtype(values):
        return None
    if is_number(values):
        numbers = present.to_numpy(dtype="float64")
        named = bool(ID_WORDS & set(name_words(name)))
        if not named or not np.all(np.mod(numbers, 1) == 0):
            return None
    share = distinct_share(values, groups)
    return share if share >= settings.identifier_unique_share else None


def check_leakage(
    features: pd.DataFrame,
    label: pd.Series | np.ndarray,
    settings: LeakageSettings,
    *,
    trusted: Collection[str] = (),
    groups: pd.Series | np.ndarray | None = None,
    allow: Collection[str] = (),
    days_after: pd.DataFrame | None = None,
    random_state: int = 0,
) -> LeakageReport:
    """Flag the columns of ``features`` that would leak the outcome ``label`` (0/1).

    Parameters
    ----------
    features
        Candidate model inputs, one row per lead (or per lead and snapshot, with ``groups``).
        Numbers are binned by quantile; anything else counts by value; missing is a value too.
    label
        1 for converted, 0 otherwise.
    settings
        Thresholds and name list (``leakage`` section).
    trusted
        Columns computed as of each row's own instant (leadml's event features): only the
        single-column check applies to them.
    groups
        The lead of each row when a lead has several rows (snapshots): folds keep a lead's rows
        together and identifiers are counted per lead.
    allow
        Columns to keep even if flagged (added to ``settings.allow``).
    days_after
        For date columns of ``features``, row by row: the calendar days from the row's own time
        to the column's date (positive: a later day; missing: no date). Each column named here
        also gets the ``after_time`` check.

    Raises
    ------
    DataError
        When an allowed column is not among ``features``.

    Examples
    --------
    >>> from leadml.config import LeakageSettings
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 400)
    >>> frame = pd.DataFrame(
    ...     {"visits": rng.poisson(3 + y), "Lead Status": np.where(y, "Won", "Open")}
    ... )
    >>> check_leakage(frame, y, LeakageSettings()).excluded
    ['Lead Status']

    A date that falls after the row's time for half the rows is flagged, whatever its values:

    >>> later = pd.DataFrame({"Close Date": np.where(rng.random(400) < 0.5, 30.0, -3.0)})
    >>> report = check_leakage(later, y, LeakageSettings(), days_after=later)
    >>> [f.check for f in report.reasons("Close Date")]
    ['after_time']
    """
    y = np.asarray(label, dtype="int64")
    allowed = list(dict.fromkeys([*settings.allow, *allow]))
    unknown = [c for c in allow if c not in features.columns]
    if unknown:
        raise DataError(
            f"--allow-column names column(s) the training data does not have: {unknown} "
            f"(columns: {_some(features.columns)})"
        )
    if days_after is not None and len(days_after) != len(features):
        raise ValueError(f"days_after has {len(days_after)} rows, features {len(features)}")
    keep = sample_rows(len(features), settings.max_rows, random_state)
    frame, y = take_rows(features, keep), take_rows(y, keep)
    groups = None if groups is None else take_rows(np.asarray(groups), keep)
    days_after = None if days_after is None else take_rows(days_after, keep)
    rng = np.random.default_rng(random_state)
    fold = folds_of(y, groups, settings.folds, rng)
    findings, stats = [], []
    for column in frame.columns:
        values = frame[column]
        row, found = _check_column(
            str(column), values, y, fold, settings, groups, trusted=column in trusted
        )
        if days_after is not None and column in days_after.columns:
            days = days_after[column].to_numpy(dtype="float64", na_value=np.nan)
            figures, found_after = _after_time(str(column), days, y, settings)
            row |= figures
            found += found_after
        stats.append(row)
        findings += found
    report = LeakageReport(
        findings,
        pd.DataFrame(stats),
        allowed=[c for c in allowed if c in features.columns],
        rows=len(y),
        positives=int(y.sum()),
    )
    return report


def _some(columns, limit: int = 12) -> str:
    names = [str(c) for c in columns]
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _check_column(column, values, y, fold, settings, groups, *, trusted):
    positives, total = int(y.sum()), len(y)
    rare = 1 if positives <= total - positives else 0  # the rarer outcome
    rare_word = "converted" if rare == 1 else "not converted"
    rare_rows = positives if rare == 1 else total - positives
    present = values.notna().to_numpy()
    codes, labels = value_codes(values)
    size = len(labels)
    rows = np.bincount(codes, minlength=size)
    with_rare = np.bincount(codes, weights=(y == rare), minlength=size)
    rate = np.divide(with_rare, rows, out=np.zeros(size), where=rows > 0)
    pure = (rows >= settings.min_rows_per_value) & (rate >= settings.purity)
    pure_share = with_rare[pure].sum() / rare_rows if rare_rows else 0.0
    auc = out_of_fold_auc(codes, y, fold, settings.folds)
    converted = present[y == 1].mean() if positives else float("nan")
    others = present[y == 0].mean() if positives < total else float("nan")
    row = {
        "column": column,
        "trusted": trusted,
        "present_share": float(present.mean()) if total else float("nan"),
        "distinct_values": int(values.nunique()),
        "single_column_auc": auc,
        "pure_share": float(pure_share),
        "present_converted": float(converted),
        "present_others": float(others),
    }
    found = []
    if auc >= settings.max_single_column_auc:
        found.append(
            Finding(
                column,
                "single_column",
                f"its values alone rank the leads with an out-of-fold ROC AUC of {auc:.3f} "
                f"(threshold {settings.max_single_column_auc:g})",
            )
        )
    if pure_share >= settings.max_pure_share:
        shown = np.argsort(-with_rare * pure)[: min(3, int(pure.sum()))]
        examples = ", ".join(
            f"{labels[i]} ({int(with_rare[i]):,} of {int(rows[i]):,})" for i in shown
        )
        found.append(
            Finding(
                column,
                "single_column",
                f"{pure_share:.0%} of the {rare_word} leads have values that are {rare_word} "
                f"at least {settings.purity:.0%} of the time: {examples}",
            )
        )
    if trusted:
        return row, found
    found += _presence(column, present, y, settings)
    share = looks_like_identifier(values, column, settings, groups)
    row["identifier_share"] = share
    if share is not None:
        found.append(
            Finding(
                column,
                "identifier",
                f"{share:.0%} of its present values are distinct: an identifier lets a model "
                "memorise rows instead of learning",
            )
        )
    word = matching_name(column, settings.post_outcome_names)
    if word is not None:
        found.append(
            Finding(
                column,
                "name",
                f"its name contains {word!r}, which usually marks a field filled in after "
                "contact or after the outcome (leakage.post_outcome_names)",
            )
        )
    return row, found


def _presence(column, present, y, settings) -> list[Finding]:
    """Filled in for one class (almost) only: judged only when, were presence unrelated to the
    outcome, the other class would have had at least ``min_rows_per_value`` filled-in rows."""
    if present.all() or not present.any() or len(np.unique(y)) < 2:
        return []
    rate = {cls: present[y == cls].mean() for cls in (0, 1)}
    high = max(rate, key=rate.get)
    low = 1 - high
    expected = present.sum() * (y == low).mean()
    if expected < settings.min_rows_per_value or rate[low] > settings.presence_ratio * rate[high]:
        return []
    names = {1: "converted leads", 0: "the others"}
    return [
        Finding(
            column,
            "presence",
            f"filled in for {rate[high]:.1%} of {names[high]} but {rate[low]:.1%} of "
            f"{names[low]} ({int(present[y == low].sum()):,} rows where about "
            f"{expected:,.0f} were expected)",
        )
    ]


def _after_time(column, days, y, settings) -> tuple[dict, list[Finding]]:
    """The share of a date column's present dates that fall on a later day than the row's time,
    overall and by class; flagged above ``max_after_time_share``."""
    present = ~np.isnan(days)
    after = present & (days > 0)
    figures = {
        "after_time_share": share_of(after, present),
        "after_time_converted": share_of(after & (y == 1), present & (y == 1)),
        "after_time_others": share_of(after & (y == 0), present & (y == 0)),
    }
    share = figures["after_time_share"]
    if not present.any() or share <= settings.max_after_time_share:
        return figures, []
    converted, others = (
        "no dates" if np.isnan(x) else f"{x:.0%}"
        for x in (figures["after_time_converted"], figures["after_time_others"])
    )
    reason = (
        f"{share:.0%} of its dates ({int(after.sum()):,} of {int(present.sum()):,}) fall on a "
        f"later day than the row's own time (threshold {settings.max_after_time_share * 100:g}%); "
        f"by class: converted {converted}, not converted {others}. A date known only after "
        "the lead was scored"
    )
    return figures, [Finding(column, "after_time", reason)]
