"""Training on a flat export: read → roles → leakage guard → sufficiency → search → calibrate →
evaluate, returning the same :class:`~leadml.modeling.training.TrainingResult` as the event
history, so :func:`leadml.tracking.log_training` records and registers it the same way.

Validation:

- **with a time column**, by time like the event history: train on the earliest rows,
  calibrate on the next ``flat.calibration_share``, test on the latest ``flat.test_share``;
- **without one**, stratified ``flat.cv_folds``-fold cross-validation: every row is predicted by
  a model (searched, fitted and calibrated) that never saw it; the registered model is the same
  recipe run on all rows (its calibration share held out of its fit).

The registered model is one scikit-learn pipeline that takes the export's columns as read:
:class:`~leadml.flat.preprocess.FlatPreprocessor`, then the calibrated candidate
(``CalibratedClassifierCV(FrozenEstimator(...))``, as for the event history), so scoring a new
export applies the very same column handling.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from leadml.config import Settings
from leadml.errors import DataError
from leadml.flat.preprocess import FlatPreprocessor, clean_text, parse_dates
from leadml.flat.read import FlatExport, read_flat
from leadml.flat.roles import ColumnPlan, plan_columns, unknown_column
from leadml.flat.summary import FlatSummary
from leadml.modeling.calibration import (
    calibrate,
    calibrated_log_odds,
    prior_shift,
    shift_log_odds,
    shift_of,
)
from leadml.modeling.evaluation import evaluate
from leadml.modeling.leakage import LeakageReport, check_leakage, name_words
from leadml.modeling.models import fit_robustly, search_folds, time_folds
from leadml.modeling.sufficiency import insufficiency
from leadml.modeling.training import TrainingResult, assess_result
from leadml.modeling.windows import WINDOWS, with_base_rates

# An export has no horizon: folds by time need only keep a date out of both sides.
_NO_GAP = pd.Timedelta(microseconds=1)
# Below this many rows training is many small fits (outer folds, search folds, calibration), on
# which BLAS and OpenMP threads only add overhead: X Education (9,240 rows) took 58 s on one
# thread and 207 s with the default threads on 2 shared cores, with identical results.
_ONE_THREAD_BELOW = 200_000


def flat_settings(settings: Settings) -> Settings:
    """``settings`` with the registry name of flat models (``flat.model_name``) as the model
    name, so registry, export and promotion keep them apart from the event-history model."""
    tracking = settings.tracking.model_copy(update={"model_name": settings.flat.model_name})
    return settings.model_copy(update={"tracking": tracking})


def train_flat(
    source: str | Path | pd.DataFrame | FlatExport,
    target: str,
    *,
    id: str | None = None,
    time: str | None = None,
    exclude: Collection[str] = (),
    allow: Collection[str] = (),
    positive: str | None = None,
    settings: Settings | None = None,
) -> TrainingResult:
    """Train, calibrate and validate a model on a flat export (one row per lead).

    Parameters
    ----------
    source
        A CSV or Parquet file, a DataFrame, or an export read by :func:`read_flat`.
    target
        The converted flag: two values (1/0, yes/no, true/false, or any two with ``positive``).
    id
        The lead's key (kept out of the features; names the rows of score files).
    time
        The lead's date (created, first touch): validation by time instead of by folds.
    exclude
        Columns to leave out.
    allow
        Columns the leakage guard flags that are kept on purpose.
    positive
        The target value that means converted, when it is not yes/true/1.
    settings
        ``flat``, ``leakage``, ``model`` and ``evaluation`` sections are used.

    Returns
    -------
    TrainingResult
        With ``inputs`` (a :class:`FlatSummary`: roles and data quality) and ``leakage`` set;
        ``cold_start`` says why no model was trained when the export is too small.

    Raises
    ------
    DataError
        The file or a named column is missing, the target is not binary, or no column is left to
        learn from; nothing is trained or written.
    """
    settings = flat_settings(settings or Settings())
    export = source if isinstance(source, FlatExport) else read_flat(source)
    plan = plan_columns(
        export,
        target,
        id=id,
        time=time,
        exclude=exclude,
        positive=positive,
        settings=settings.flat,
        leakage=settings.leakage,
    )
    _check_allowed(export, plan, allow)
    kept = plan.label.index
    if plan.times is not None:
        kept = kept[plan.times.loc[kept].notna().to_numpy()]
    raw = export.frame.loc[kept].reset_index(drop=True)
    y = plan.label.loc[kept].to_numpy(dtype="int64")
    times = None if plan.times is None else plan.times.loc[kept].reset_index(drop=True)
    leakage = _guard(raw, y, plan, settings, allow)
    # Identifiers are model inputs only when kept on purpose (--allow-column).
    kept_ids = [r.name for r in plan.roles if r.role == "identifier" and r.name in leakage.allowed]
    chosen = {*plan.used, *kept_ids} - set(leakage.excluded)
    inputs = [c for c in raw.columns if c in chosen]  # the export's order
    summary = _summary(export, plan, leakage, len(raw), exclude, inputs)
    if not inputs:
        raise DataError(
            f"{export.source}: no column is left to learn from ({len(plan.used)} usable "
            f"column(s), {len(leakage.excluded)} left out by the leakage guard)\n"
            + leakage.format()
        )
    prep = _preprocessor(plan, inputs, settings)
    small = len(raw) < _ONE_THREAD_BELOW
    with threadpool_limits(limits=1) if small else contextlib.nullcontext():
        if times is not None:
            return _by_time(raw, y, times, prep, settings, leakage, summary)
        return _by_folds(raw, y, prep, settings, leakage, summary)


def _check_allowed(export: FlatExport, plan: ColumnPlan, allow: Collection[str]) -> None:
    for name in allow:
        if name not in export.frame.columns:
            raise unknown_column(export.source, export.frame, name, "--allow-column")
        role = plan.role(name)
        if not role.used and role.role != "identifier":
            raise DataError(
                f"{export.source}: --allow-column {name!r}: the column is not a model input "
                f"(role {role.role}: {role.note}); --allow-column only overrides the leakage "
                "guard"
            )


def _preprocessor(plan: ColumnPlan, names, settings: Settings) -> FlatPreprocessor:
    """The column handling of ``names``, as the plan and the ``flat`` settings say."""
    return FlatPreprocessor(
        plan.spec(names),
        placeholders=list(settings.flat.placeholders),
        true_values=list(settings.flat.true_values),
        false_values=list(settings.flat.false_values),
        time_column=plan.time,
        time_format=plan.time_format or "ISO8601",
    )


def _guard(raw, y, plan: ColumnPlan, settings: Settings, allow) -> LeakageReport:
    """The guard sees every candidate input as the model would (parsed), plus the identifiers
    (as text) so that the report names them, and, for the date columns (model inputs only with
    a time column), the calendar days from the row's time to each date."""
    placeholders = settings.flat.placeholders
    parsed = _preprocessor(plan, plan.used, settings).fit_transform(raw)
    for role in plan.roles:
        if role.role == "identifier":
            parsed[role.name] = clean_text(raw[role.name], placeholders)
    parsed = parsed[[c for c in raw.columns if c in parsed.columns]]
    days_after = None
    if plan.time is not None:

        def day(name: str, fmt: str) -> pd.Series:
            return parse_dates(clean_text(raw[name], placeholders), fmt).dt.floor("D")

        # Whole days: a date on the row's own day is not after it, whatever the hours say.
        start = day(plan.time, plan.time_format or "ISO8601")
        dates = [r for r in plan.roles if r.role == "date" and r.used]
        days_after = pd.DataFrame(
            {
                r.name: (day(r.name, r.params["format"]) - start) / pd.Timedelta(days=1)
                for r in dates
            },
            index=raw.index,
        )
    return check_leakage(
        parsed,
        y,
        settings.leakage,
        allow=allow,
        days_after=days_after,
        random_state=settings.model.random_state,
    )


def _summary(export, plan, leakage, rows_used, exclude, inputs) -> FlatSummary:
    columns = plan.to_frame()
    fate = []
    for r in plan.roles:
        checks = dict.fromkeys(f.check for f in leakage.reasons(r.name))
        if r.name in leakage.excluded:
            fate.append("excluded: " + "; ".join(checks))
        elif checks:
            fate.append("flagged, kept (allowed)")
        else:
            fate.append("")
    columns["leakage"] = fate
    columns["used"] = columns["column"].isin(inputs)
    return FlatSummary(
        source=export.source,
        target=plan.target,
        positive=plan.positive,
        rows=export.rows,
        rows_used=rows_used,
        columns=columns,
        quality=export.quality,
        id=plan.id,
        time=plan.time,
        exclude=list(exclude),
        path=str(export.path) if export.path is not None else None,
    )


@dataclass
class _Fitted:
    model: Pipeline  # FlatPreprocessor, then CalibratedClassifierCV(FrozenEstimator(candidate))
    family: str
    params: dict
    search: pd.DataFrame
    calibration: pd.DataFrame
    notes: list[str] = field(default_factory=list)  # skipped folds, a fit without early stopping


def _stratified_folds(y: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    k = max(2, min(k, int(np.bincount(y, minlength=2).min())))
    return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def _search_rows(n: int, y: np.ndarray, settings: Settings) -> np.ndarray:
    """Rows the search runs on: all, or a stratified sample of ``model.search_max_rows``."""
    if n <= settings.model.search_max_rows:
        return np.arange(n)
    keep, _ = train_test_split(
        np.arange(n),
        train_size=settings.model.search_max_rows,
        stratify=y,
        random_state=settings.model.random_state,
    )
    return np.sort(keep)


def _split_fit_calibration(y: np.ndarray, settings: Settings) -> tuple[np.ndarray, np.ndarray]:
    fit, cal = train_test_split(
        np.arange(len(y)),
        test_size=settings.flat.calibration_share,
        stratify=y,
        random_state=settings.model.random_state,
    )
    return np.sort(fit), np.sort(cal)


def _recipe(raw, y, prep, settings: Settings) -> tuple[_Fitted, np.ndarray, np.ndarray]:
    """The recipe without a time column: stratified fit/calibration split, stratified search
    folds, fit, calibrate. Returns the fitted model and the fit and calibration rows."""
    fit, cal = _split_fit_calibration(y, settings)
    rows = _search_rows(len(fit), y[fit], settings)
    fit_rows = fit[rows]
    folds = _stratified_folds(y[fit_rows], settings.model.search_folds, settings.model.random_state)
    # Without a time, calibration's cross-fitting halves are simply two halves of its rows.
    order = pd.Series(np.arange(len(cal)))
    return _fit(raw, y, fit, fit_rows, folds, cal, order, prep, settings), fit, cal


def _fit(raw, y, fit, searched, folds, cal, order_cal, prep, settings: Settings) -> _Fitted:
    """Search on the ``searched`` rows' ``folds``, fit the winner on every ``fit`` row,
    calibrate it on the ``cal`` rows (in ``order_cal`` for the calibration's cross-fitting
    halves), and put the export's column handling in front.

    The column handling is fitted on the fit rows and applied once per part, not at every
    prediction the search and the calibration make.
    """
    step = clone(prep).fit(raw.iloc[fit])
    features = step.transform(raw).reset_index(drop=True)
    searched_features = features.iloc[searched].reset_index(drop=True)
    found = search_folds(searched_features, pd.Series(y[searched]), folds, settings.model)
    model, fit_note = fit_robustly(found.best, features.iloc[fit].reset_index(drop=True), y[fit])
    calibrated, table = calibrate(
        model,
        features.iloc[cal].reset_index(drop=True),
        pd.Series(y[cal]),
        order_cal,
        settings.model.calibration_methods,
        settings.model.isotonic_min_positives,
        random_state=settings.model.random_state,
    )
    # One estimator that takes the export's columns as read and returns probabilities.
    pipeline = Pipeline([("flat", step), ("calibrated", calibrated)])
    notes = [*found.skipped, *([fit_note] if fit_note else [])]
    return _Fitted(pipeline, found.family, found.params, found.table, table, notes)


def _cold(settings, windows, inputs, leakage, summary, validation, reason) -> TrainingResult:
    return TrainingResult(
        settings,
        windows,
        inputs,
        leakage=leakage,
        inputs=summary,
        validation=validation,
        cold_start=f"{reason}: no model was trained or registered",
    )


def _window_row(name: str, y: np.ndarray, times: pd.Series | None = None) -> dict:
    """One row of the windows table: with times, the first and last date and the days they
    cover (in the event history's column names, shared by tracking and the model card)."""
    row: dict = {"window": name}
    if times is not None:
        row |= {
            "first_snapshot": times.min(),
            "last_snapshot": times.max(),
            "snapshots": int(times.dt.floor("D").nunique()),
        }
    return row | {"rows": len(y), "positives": int(np.sum(y))}


def _by_folds(raw, y, prep, settings: Settings, leakage, summary) -> TrainingResult:
    inputs = _inputs(prep, raw)
    k = settings.flat.cv_folds
    short = insufficiency(len(y), int(y.sum()), settings.model, summary.source)
    fit, cal = _split_fit_calibration(y, settings) if not short else (np.arange(0), np.arange(0))
    windows = with_base_rates(
        pd.DataFrame(
            [
                _window_row("train", y[fit]),
                _window_row("calibration", y[cal]),
                _window_row("test", y),
            ]
        ).set_index("window")
    )
    windows["note"] = [
        "the registered model's fit rows",
        "the registered model's calibration rows",
        f"every row, predicted out of fold ({k}-fold stratified cross-validation)",
    ]
    if short:
        return _cold(settings, windows, inputs, leakage, summary, "cross-validation", short)

    probability = np.empty(len(y))
    fold_auc = []
    outer = StratifiedKFold(k, shuffle=True, random_state=settings.model.random_state)
    for train_rows, test_rows in outer.split(np.zeros(len(y)), y):
        part = raw.iloc[train_rows].reset_index(drop=True)
        fitted, _, _ = _recipe(part, y[train_rows], prep, settings)
        p = fitted.model.predict_proba(raw.iloc[test_rows][inputs])[:, 1]
        probability[test_rows] = p
        fold_auc.append(roc_auc_score(y[test_rows], p))
    final, fit, cal = _recipe(raw, y, prep, settings)
    test = _test_frame(raw, y, probability, settings)
    result = _result(settings, windows, inputs, leakage, summary, final, test, "cross-validation")
    result.evaluation.metrics |= {
        "model_roc_auc_fold_mean": float(np.mean(fold_auc)),
        "model_roc_auc_fold_std": float(np.std(fold_auc, ddof=1)),
        "cv_folds": float(k),
    }
    result.frames = {
        "train": _frame(raw.iloc[fit], y[fit], inputs),
        "calibration": _frame(raw.iloc[cal], y[cal], inputs),
        "test": _frame(raw, y, inputs),
    }
    result.input_example = raw[inputs].head(5).reset_index(drop=True)
    assess_result(result, probability, {}, final.notes)
    return result


def _by_time(raw, y, times, prep, settings: Settings, leakage, summary) -> TrainingResult:
    inputs = _inputs(prep, raw)
    flat = settings.flat
    cut_cal = times.quantile(1 - flat.calibration_share - flat.test_share)
    cut_test = times.quantile(1 - flat.test_share)
    window = np.where(times < cut_cal, "train", np.where(times < cut_test, "calibration", "test"))
    parts = {w: np.flatnonzero(window == w) for w in WINDOWS}
    windows = with_base_rates(
        pd.DataFrame(
            [_window_row(w, y[parts[w]], times.iloc[parts[w]]) for w in WINDOWS]
        ).set_index("window")
    )
    train, cal, test = parts["train"], parts["calibration"], parts["test"]
    short = insufficiency(
        len(train), int(y[train].sum()), settings.model, f"the training window of {summary.source}"
    )
    for name in ("calibration", "test"):
        rows = parts[name]
        if short is None and len(np.unique(y[rows])) < 2:
            short = (
                f"the {name} window ({len(rows):,} rows from {_day(times.iloc[rows].min())} on) "
                "holds only one outcome: nothing to calibrate or test with"
            )
    if short:
        return _cold(settings, windows, inputs, leakage, summary, "time", short)
    order = times.iloc[train].reset_index(drop=True)
    searched = _search_rows(len(train), y[train], settings)
    folds = list(
        time_folds(
            order.iloc[searched].reset_index(drop=True), settings.model.search_folds, _NO_GAP
        )
    )
    order_cal = times.iloc[cal].reset_index(drop=True)
    fitted = _fit(raw, y, train, train[searched], folds, cal, order_cal, prep, settings)
    # As for the event history: the test figures take the prior-shift intercept from the end of
    # the calibration window, the registered model from the end of the test window.
    step, calibrated = fitted.model.named_steps["flat"], fitted.model.named_steps["calibrated"]
    # As for the events: the test figures' prior shift is fitted on the rows before the test
    # window and forecast to its middle, the registered model's on all rows, as far beyond.
    shifting = settings.model.model_copy(
        update={"prior_shift": settings.model.prior_shift and settings.flat.prior_shift}
    )
    rows = np.concatenate([train, cal, test])
    log_odds = calibrated_log_odds(calibrated, step.transform(raw.iloc[rows][inputs]))
    known, when = y[rows], times.iloc[rows].reset_index(drop=True)
    before = np.arange(len(rows)) < len(train) + len(cal)
    used_at = times.iloc[test].median()
    ahead = used_at - times.iloc[cal].max()
    shifts = {
        "test": prior_shift(log_odds[before], known[before], when[before], used_at, shifting),
        "registered": prior_shift(log_odds, known, when, times.iloc[test].max() + ahead, shifting),
    }
    uncorrected = expit(log_odds[~before])
    probability = expit(log_odds[~before] + shift_of(shifts["test"]))
    registered = shift_log_odds(calibrated, shift_of(shifts["registered"]))
    fitted.model = Pipeline([("flat", step), ("calibrated", registered)])
    test_frame = _test_frame(raw.iloc[test].reset_index(drop=True), y[test], probability, settings)
    result = _result(settings, windows, inputs, leakage, summary, fitted, test_frame, "time")
    result.frames = {w: _frame(raw.iloc[parts[w]], y[parts[w]], inputs) for w in WINDOWS}
    result.input_example = raw.iloc[test][inputs].head(5).reset_index(drop=True)
    assess_result(result, uncorrected, shifts, fitted.notes)
    return result


def _day(value) -> str:
    return f"{value:%Y-%m-%d}" if pd.notna(value) else "?"


def _inputs(prep: FlatPreprocessor, raw: pd.DataFrame) -> list[str]:
    return list(clone(prep).fit(raw.head(1)).feature_names_in_)


def _frame(raw: pd.DataFrame, y: np.ndarray, inputs: list[str]) -> pd.DataFrame:
    return raw[inputs].assign(label=y).reset_index(drop=True)


def _test_frame(raw, y, probability, settings: Settings) -> pd.DataFrame:
    """Label and probability, plus the segment columns (matched ignoring case and separators,
    so ``Lead Source`` is the ``lead_source`` segment), cleaned as categories."""
    test = pd.DataFrame({"label": y, "model_probability": probability})
    by_words = {"_".join(name_words(c)): c for c in raw.columns}
    for segment in settings.evaluation.segments:
        column = by_words.get("_".join(name_words(segment)))
        if column is not None:
            test[segment] = clean_text(raw[column], settings.flat.placeholders).to_numpy()
    return test


def _result(settings, windows, inputs, leakage, summary, fitted: _Fitted, test, validation):
    result = TrainingResult(
        settings,
        windows,
        inputs,
        model=fitted.model,
        family=fitted.family,
        params=fitted.params,
        search=fitted.search,
        calibration=fitted.calibration,
        leakage=leakage,
        inputs=summary,
        validation=validation,
    )
    result.test = test
    result.evaluation = evaluate(test, settings.evaluation)
    return result
