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
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadml.common.safe_text import md_text
from leadml.config import LeakageSettings
from leadml.errors import DataError

CHECKS = ("single_column", "presence", "identifier", "name", "after_time")
#: Words that make an integer column with distinct values an identifier (text needs no name).
ID_WORDS = frozenset({"id", "ids", "uuid", "guid", "key", "number", "no", "num", "nr"})
_BINS = 20  # quantile bins of a numeric column
_MAX_VALUES = 200  # most frequent values of a text column kept apart; the rest are pooled
_SMOOTHING = 10.0  # rows of prior weight in the out-of-fold conversion rate of a value


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


def _is_number(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


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
    if _is_number(values):
        numbers = present.to_numpy(dtype="float64")
        named = bool(ID_WORDS & set(name_words(name)))
        if not named or not np.all(np.mod(numbers, 1) == 0):
            return None
    share = distinct_share(values, groups)
    return share if share >= settings.identifier_unique_share else None


@dataclass(frozen=True)
class Finding:
    """One reason to distrust one column."""

    column: str
    check: str  # one of CHECKS
    reason: str


@dataclass
class LeakageReport:
    """What the guard found: ``findings`` (one per column and check), the columns ``allowed``
    although flagged, and ``columns``: the figures of every column examined."""

    findings: list[Finding]
    columns: pd.DataFrame
    allowed: list[str] = field(default_factory=list)
    rows: int = 0
    positives: int = 0

    @property
    def flagged(self) -> list[str]:
        """Flagged columns, in the order of the frame."""
        names = {f.column for f in self.findings}
        return [c for c in self.columns["column"] if c in names]

    @property
    def excluded(self) -> list[str]:
        """Flagged columns left out of the model (flagged and not allowed)."""
        return [c for c in self.flagged if c not in self.allowed]

    def reasons(self, column: str) -> list[Finding]:
        return [f for f in self.findings if f.column == column]

    def to_frame(self) -> pd.DataFrame:
        """One row per finding: column, check, action (excluded or kept), reason."""
        rows = [
            {
                "column": f.column,
                "check": f.check,
                "action": "kept (allowed)" if f.column in self.allowed else "excluded",
                "reason": f.reason,
            }
            for f in self.findings
        ]
        return pd.DataFrame(rows, columns=["column", "check", "action", "reason"])

    def to_dict(self) -> dict:
        """JSON-ready: counts, and per flagged column its action and reasons."""
        return {
            "rows": self.rows,
            "positives": self.positives,
            "columns_checked": len(self.columns),
            "excluded": self.excluded,
            "allowed": [c for c in self.allowed if c in self.flagged],
            "flagged": {
                c: {
                    "action": "kept (allowed)" if c in self.allowed else "excluded",
                    "reasons": [{"check": f.check, "reason": f.reason} for f in self.reasons(c)],
                }
                for c in self.flagged
            },
        }

    def format(self) -> str:
        """The report in plain words, one block per flagged column."""
        kept = [c for c in self.flagged if c in self.allowed]
        head = (
            f"Leakage guard: {len(self.flagged)} of {len(self.columns)} columns flagged on "
            f"{self.rows:,} rows ({self.positives:,} converted); {len(self.excluded)} left out"
            + (f", {len(kept)} kept on purpose (allowed)" if kept else "")
            + "."
        )
        lines = [head]
        for column in self.flagged:
            action = "KEPT (allowed)" if column in self.allowed else "excluded"
            lines.append(f"  {column}: {action}")
            lines += [f"    - {f.check}: {f.reason}" for f in self.reasons(column)]
        return "\n".join(lines)

    def markdown(self) -> str:
        """The report as Markdown (for the model card and the MLflow artifact)."""
        if not self.flagged:
            return (
                f"No column flagged among {len(self.columns)} examined on {self.rows:,} rows "
                f"({self.positives:,} converted)."
            )
        lines = [
            f"{len(self.flagged)} of {len(self.columns)} columns flagged on {self.rows:,} rows "
            f"({self.positives:,} converted):",
            "",
            "| column | action | why |",
            "|---|---|---|",
        ]
        for column in self.flagged:
            action = "kept (allowed)" if column in self.allowed else "excluded"
            why = "; ".join(f"{f.check}: {f.reason}" for f in self.reasons(column))
            lines.append(f"| {md_text(column)} | {action} | {md_text(why, 1000)} |")
        return "\n".join(lines)


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
    keep = _sample(len(features), settings.max_rows, random_state)
    frame, y = _take(features, keep), _take(y, keep)
    groups = None if groups is None else _take(np.asarray(groups), keep)
    days_after = None if days_after is None else _take(days_after, keep)
    rng = np.random.default_rng(random_state)
    fold = _folds(y, groups, settings.folds, rng)
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


def _sample(rows: int, max_rows: int, random_state: int) -> np.ndarray | None:
    """The rows the statistics use: all (None), or a sorted random ``max_rows`` of them."""
    if rows <= max_rows:
        return None
    return np.sort(np.random.default_rng(random_state).choice(rows, max_rows, replace=False))


def _take(values, keep: np.ndarray | None):
    """``values`` (a frame or an array) at the sampled rows, a frame renumbered from 0."""
    if isinstance(values, pd.DataFrame):
        return (values if keep is None else values.iloc[keep]).reset_index(drop=True)
    return values if keep is None else values[keep]


def _folds(y: np.ndarray, groups, k: int, rng: np.random.Generator) -> np.ndarray:
    """Fold of each row: stratified by class, or by lead when rows share one."""
    if groups is not None:
        codes = pd.factorize(pd.Series(np.asarray(groups)))[0]
        return rng.permutation(codes.max() + 1)[codes] % k
    fold = np.empty(len(y), dtype="int64")
    for cls in (0, 1):
        rows = np.flatnonzero(y == cls)
        rng.shuffle(rows)
        fold[rows] = np.arange(len(rows)) % k
    return fold


def _codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer code per row and a label per code: quantile bins of numbers, the most frequent
    values of anything else (the rest pooled), and missing as a value of its own."""
    missing = values.isna().to_numpy()
    codes = np.zeros(len(values), dtype="int64")
    if _is_number(values):
        x = values.to_numpy(dtype="float64", na_value=np.nan)
        present = x[~missing]
        edges = (
            np.unique(np.quantile(present, np.linspace(0, 1, _BINS + 1)[1:-1]))
            if len(present)
            else np.array([])
        )
        codes[~missing] = np.searchsorted(edges, present, side="right")
        bounds = [-np.inf, *edges, np.inf]
        labels = [_range(bounds[i], bounds[i + 1], present) for i in range(len(edges) + 1)]
    else:
        text = values[~missing].astype("str")
        factor, uniques = pd.factorize(text)
        counts = np.bincount(factor, minlength=len(uniques)) if len(uniques) else np.array([])
        top = np.argsort(-counts, kind="stable")[:_MAX_VALUES]
        remap = np.full(len(uniques), len(top), dtype="int64")
        remap[top] = np.arange(len(top))
        codes[~missing] = remap[factor] if len(factor) else factor
        labels = [repr(str(uniques[i])) for i in top] + ["(other values)"]
    codes[missing] = len(labels)
    return codes, [*labels, "(missing)"]


def _range(low: float, high: float, present: np.ndarray) -> str:
    inside = present[(present >= low) & (present < high)] if len(present) else present
    if not len(inside):
        return "(empty bin)"
    a, b = inside.min(), inside.max()
    return f"{a:g}" if a == b else f"{a:g} to {b:g}"


def _out_of_fold_auc(codes: np.ndarray, y: np.ndarray, fold: np.ndarray, k: int) -> float:
    """ROC AUC of each row's value's conversion rate, learnt on the other folds.

    Every row of one (fold, value) cell gets the same score, so the AUC is computed from the
    cells' counts (Mann-Whitney with ties) rather than by sorting every row.
    """
    positives, total = int(y.sum()), len(y)
    if positives in (0, total):
        return float("nan")
    size = int(codes.max()) + 1
    cell = fold * size + codes
    rows = np.bincount(cell, minlength=k * size).reshape(k, size).astype("float64")
    hits = np.bincount(cell, weights=y, minlength=k * size).reshape(k, size)
    train_rows, train_hits = rows.sum(axis=0) - rows, hits.sum(axis=0) - hits
    prior = train_hits.sum(axis=1, keepdims=True) / np.maximum(
        train_rows.sum(axis=1, keepdims=True), 1
    )
    score = ((train_hits + _SMOOTHING * prior) / (train_rows + _SMOOTHING)).ravel()
    pos, neg = hits.ravel(), (rows - hits).ravel()
    order = np.argsort(score, kind="stable")
    score, pos, neg = score[order], pos[order], neg[order]
    # Pool cells with equal scores: their rows are tied.
    _, level = np.unique(score, return_inverse=True)
    pos = np.bincount(level, weights=pos)
    neg = np.bincount(level, weights=neg)
    below = np.cumsum(neg) - neg
    return float((pos * (below + 0.5 * neg)).sum() / (positives * (total - positives)))


def _check_column(column, values, y, fold, settings, groups, *, trusted):
    positives, total = int(y.sum()), len(y)
    rare = 1 if positives <= total - positives else 0  # the rarer outcome
    rare_word = "converted" if rare == 1 else "not converted"
    rare_rows = positives if rare == 1 else total - positives
    present = values.notna().to_numpy()
    codes, labels = _codes(values)
    size = len(labels)
    rows = np.bincount(codes, minlength=size)
    with_rare = np.bincount(codes, weights=(y == rare), minlength=size)
    rate = np.divide(with_rare, rows, out=np.zeros(size), where=rows > 0)
    pure = (rows >= settings.min_rows_per_value) & (rate >= settings.purity)
    pure_share = with_rare[pure].sum() / rare_rows if rare_rows else 0.0
    auc = _out_of_fold_auc(codes, y, fold, settings.folds)
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
        "after_time_share": _share(after, present),
        "after_time_converted": _share(after & (y == 1), present & (y == 1)),
        "after_time_others": _share(after & (y == 0), present & (y == 0)),
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


def _share(part: np.ndarray, whole: np.ndarray) -> float:
    total = int(whole.sum())
    return float(part.sum() / total) if total else float("nan")
