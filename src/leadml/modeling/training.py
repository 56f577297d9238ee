"""Training: training set → time split → search → calibration → test against the rule score.

Nothing here knows MLflow; :mod:`leadml.tracking` records what this returns.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.isotonic import IsotonicRegression
from sklearn.pipeline import Pipeline

from leadml.common.steps import Progress, StepClock
from leadml.config import Settings
from leadml.data import LeadData, load_data
from leadml.data.profiles import population_shift
from leadml.data.readers import Source
from leadml.modeling.calibration import (
    PriorShift,
    calibrate_cross_fitted,
    calibrate_on_window,
    calibrated_log_odds,
    prior_shift,
    shift_log_odds,
    shift_of,
)
from leadml.modeling.evaluation import Evaluation, evaluate, expected_calibration_error
from leadml.modeling.fitness import Fitness, assess_fitness
from leadml.modeling.inputs import EventSummary, InputSummary
from leadml.modeling.leakage import LeakageReport, check_leakage
from leadml.modeling.models import fit_robustly, search
from leadml.modeling.trainset import TrainingSet, build_trainset
from leadml.modeling.windows import WINDOWS, describe_windows, place_windows, too_little
from leadml.rules import Rules, load_rules, rule_scores

log = logging.getLogger("leadml.training")

KEYS = ["lead_id", "as_of"]


@dataclass
class TrainingResult:
    """Everything a training run produced; ``model`` is None when there was too little history."""

    settings: Settings
    windows: pd.DataFrame  # per window: first and last snapshot, rows, positives
    feature_names: list[str]
    # A calibrated classifier taking the feature frame (a flat export's model: a Pipeline whose
    # first step reads the export's columns).
    model: CalibratedClassifierCV | Pipeline | None = None
    family: str | None = None
    params: dict = field(default_factory=dict)
    search: pd.DataFrame | None = None
    calibration: pd.DataFrame | None = None
    evaluation: Evaluation | None = None
    test: pd.DataFrame | None = None  # keys, label, both scores and the segment columns
    input_example: pd.DataFrame | None = None
    cold_start: str | None = None  # why no model was trained, in plain words
    # Per window: as_of, the features and label (no keys, no PII): for the datasets' lineage
    # and for scoring the current champion on the same test rows (leadml.tracking).
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    # What the leakage guard found before training (columns it left out, and why).
    leakage: LeakageReport | None = None
    # How the test rows were predicted: "time" (a later window than training) or
    # "cross-validation" (every row by a model that did not see it; flat exports without time).
    validation: str = "time"
    # What the model was trained on: the event history (the default), or a flat export's file,
    # target, column roles and data-quality findings. Tracking and the model card read it.
    inputs: InputSummary | None = None
    # The points table learned from the training window and compared on the test window
    # (leadml.modeling.points.LearnedPoints; None with evaluation.learned_rules 0).
    points: Any = None
    # The fitness gate's checks (None on a cold start): a model that fails is not registered.
    fitness: Fitness | None = None
    # The prior-shift corrections: "test" (fitted at the end of the calibration window, applied
    # to the test figures) and "registered" (fitted at the end of the test window, in the model).
    prior_shift: dict[str, PriorShift | None] = field(default_factory=dict)
    # Features that moved most between the training and test windows (feature, psi).
    drift: pd.DataFrame | None = None
    # What happened on the way that a reader should know: skipped search folds, calibration
    # fallbacks, a moving conversion rate. Plain sentences.
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.inputs is None:
            self.inputs = EventSummary.of(self.settings)

    @property
    def trained(self) -> bool:
        return self.model is not None


def train(
    source: Source | LeadData,
    settings: Settings | None = None,
    *,
    rules: Rules | str | Path | None = None,
    now: pd.Timestamp | str | None = None,
    trainset: TrainingSet | None = None,
    allow: Collection[str] = (),
    progress: Progress | None = None,
) -> TrainingResult:
    """Build the training set, fit and calibrate the best candidate, test it against the rules.

    ``rules`` is the rules file the model is compared with (default: ``configs/rules.yaml``);
    ``trainset`` a training set already built from the same data (e.g. to look at it first in a
    notebook), so it is not built twice.
    The leakage guard (:func:`leadml.modeling.leakage.check_leakage`) examines the training window's
    features first; passthrough columns get every check, leadml's own point-in-time features
    the single-column one. Flagged features are left out unless in ``allow`` (or
    ``leakage.allow``). ``progress(step, done, total)`` is called as each of the six steps ends
    (each is also logged with its time on the ``leadml.training`` logger).
    """
    clock = StepClock(log, progress, steps=6)
    data = load_data(source, settings, now=now)
    settings = data.settings
    rules = load_rules(rules, settings)
    clock.lap("load", "%s leads", f"{data.row_counts().get('leads', 0):,}")
    trainset = build_trainset(data) if trainset is None else trainset
    clock.lap("trainset", "%s rows, %s conversions", f"{len(trainset.frame):,}",
              f"{int(trainset.frame['label'].sum()):,}")  # fmt: skip
    frame, layout = place_windows(trainset.frame, settings)
    windows = describe_windows(frame)
    features = [c for c in frame.columns if c not in (*KEYS, "label", "window")]
    train_rows = frame[frame["window"] == "train"]
    # The guard weighs each column against the outcomes: with one outcome it has nothing to
    # weigh, and training is a cold start below.
    leakage = (
        _guard(train_rows, features, settings, allow)
        if train_rows["label"].nunique() == 2
        else None
    )
    features = [f for f in features if f not in (leakage.excluded if leakage else ())]
    features, uninformative = informative(train_rows, features)
    clock.lap("leakage guard", "%d features kept, %d left out", len(features),
              len(leakage.excluded) if leakage else 0)  # fmt: skip
    result = TrainingResult(
        settings,
        windows,
        features,
        leakage=leakage,
        notes=data.notes,
        inputs=EventSummary.of(settings),
    )
    if short := too_little(windows, settings):
        result.cold_start = (
            f"{short}: no model was trained or registered; the rule score remains the answer"
        )
        return result
    if layout:
        uninformative.insert(0, layout)

    parts = {w: frame[frame["window"] == w].reset_index(drop=True) for w in WINDOWS}
    train_part = sample_by_lead(parts["train"], settings.model.search_max_rows, settings)
    horizon = pd.Timedelta(days=settings.target.horizon_days)
    found = search(
        train_part[features], train_part["label"], train_part["as_of"], settings.model, horizon
    )
    clock.lap("search", "best %s on %s rows", found.family, f"{len(train_part):,}")
    calibration, test_part, fit_note = parts["calibration"], parts["test"], None
    if len(calibration):
        train_x, train_y = parts["train"][features], parts["train"]["label"]
        model, fit_note = fit_robustly(found.best, train_x, train_y)
        calibrated, calibration_table = calibrate_on_window(
            model, calibration, features, settings.model
        )
        mapped = calibration  # where the rule score is mapped to a probability
    else:
        calibrated, calibration_table = calibrate_cross_fitted(
            found.best,
            parts["train"][features],
            parts["train"]["label"],
            parts["train"]["lead_id"],
        )
        mapped = parts["train"]
    from leadml.modeling.points import beside_the_model, learned_table  # they build on training
    from leadml.modeling.points_model import points_as_candidate

    result.points = learned_table(data, rules, frame)
    calibrated, calibration_table = points_as_candidate(
        result.points, calibrated, calibration_table, found, parts, features, settings
    )
    clock.lap("fit and calibrate", "%s", calibration_table.attrs.get("chosen", "calibrated"))
    # The prior shift of the test figures is fitted on the history before the test window and
    # forecast to its middle; the registered model's on all of it, as far beyond the test window.
    # Every mature row is predicted once.
    mature = pd.concat([parts["train"], calibration, test_part], ignore_index=True)
    log_odds = calibrated_log_odds(calibrated, mature[features])
    before = np.arange(len(mature)) < len(mature) - len(test_part)
    used_at = test_part["as_of"].min() + (test_part["as_of"].max() - test_part["as_of"].min()) / 2
    ahead = used_at - mapped["as_of"].max()
    shifts = {
        "test": _prior_shift(log_odds[before], mature[before], used_at, settings),
        "registered": _prior_shift(log_odds, mature, test_part["as_of"].max() + ahead, settings),
    }

    rules_mapped = rule_scores(data, mapped[KEYS], rules, explain=False)
    rules_test = rule_scores(data, test_part[KEYS], rules, explain=False)
    rule_to_probability = IsotonicRegression(out_of_bounds="clip", y_min=1e-4, y_max=1 - 1e-4)
    rule_to_probability.fit(
        mapped[KEYS].merge(rules_mapped, on=KEYS)["rule_score"], mapped["label"]
    )
    test = test_part.merge(rules_test, on=KEYS, how="left", validate="one_to_one")
    test["model_probability"] = expit(log_odds[~before] + shift_of(shifts["test"]))
    test["rule_probability"] = rule_to_probability.predict(test["rule_score"])
    test = beside_the_model(result.points, mapped, test)
    segments = [s for s in settings.evaluation.segments if s in test.columns]
    learned = [c for c in ("learned_score", "learned_probability", "learned_mql",
                           "learned_new_mql", "rule_new_mql") if c in test]  # fmt: skip
    result.test = test[[*KEYS, "label", "model_probability", "rule_score", "rule_probability",
                        "rule_mql", *learned, *segments]]  # fmt: skip
    result.model = shift_log_odds(calibrated, shift_of(shifts["registered"]))
    result.family, result.params = found.family, found.params
    result.search, result.calibration = found.table, calibration_table
    result.evaluation = evaluate(result.test, settings.evaluation)
    clock.lap("test", "ROC AUC %.3f (rules %.3f) on %s rows",
              result.evaluation.metrics.get("model_roc_auc", float("nan")),
              result.evaluation.metrics.get("rules_points_roc_auc", float("nan")),
              f"{len(result.test):,}")  # fmt: skip
    result.input_example = test_part[features].head(5)
    result.frames = {w: parts[w][["as_of", *features, "label"]] for w in WINDOWS}
    assess_result(
        result,
        expit(log_odds[~before]),
        shifts,
        [*data.notes, *uninformative, *found.skipped, *([fit_note] if fit_note else [])],
        groups=test["lead_id"],
    )
    return result


def _prior_shift(log_odds, window: pd.DataFrame, at, settings: Settings) -> PriorShift | None:
    """The prior shift ``window`` (its calibrated ``log_odds``) says to expect at ``at``."""
    y = window["label"].to_numpy()
    return prior_shift(log_odds, y, window["as_of"].reset_index(drop=True), at, settings.model)


def assess_result(
    result: TrainingResult,
    uncorrected: np.ndarray,
    shifts: dict[str, PriorShift | None],
    notes: list[str],
    groups=None,
) -> None:
    """Everything after the test window is scored, shared by both inputs: calibration error
    without the prior-shift correction, the fitness gate, drift between the windows and the
    notes a reader should see."""
    settings = result.settings
    metrics = result.evaluation.metrics
    metrics["model_ece_uncorrected"] = expected_calibration_error(
        result.test["label"].to_numpy(), uncorrected, settings.evaluation.calibration_bins
    )
    calibration_note = result.calibration.attrs.get("note")
    result.fitness = assess_fitness(
        result.test,
        settings.model.fitness,
        groups=groups,
        calibration_note=calibration_note,
        random_state=settings.model.random_state,
    )
    metrics |= result.fitness.metrics
    result.prior_shift = shifts
    if "train" in result.frames and "test" in result.frames:
        features = list(result.feature_names)
        result.drift = population_shift(
            result.frames["train"][features], result.frames["test"][features]
        )
    result.notes = [
        *notes,
        *([calibration_note] if calibration_note else []),
        *[
            f"prior shift ({'test figures' if k == 'test' else 'registered model'}): "
            + shift.describe()
            for k, shift in shifts.items()
            if shift is not None
        ],
        *filter(None, [base_rate_note(result.windows, shifts.get("registered"))]),
        *filter(None, [result.points and result.points.unfit]),  # a learned table's gate
    ]


def base_rate_note(windows: pd.DataFrame, shift: PriorShift | None) -> str | None:
    """A plain sentence when the conversion rate moved by more than x2 between the training
    and test windows, else None.

    Examples
    --------
    >>> w = pd.DataFrame({"base_rate": [0.048, 0.12, 0.306]}, index=list(WINDOWS))
    >>> base_rate_note(w, None)[:79]
    'conversion rate rose from 4.8 % to 30.6 % between the training and test windows'
    """
    first, last = windows.loc["train", "base_rate"], windows.loc["test", "base_rate"]
    if not (first > 0 and last > 0) or 0.5 <= last / first <= 2:
        return None
    moved = "rose" if last > first else "fell"
    sentence = (
        f"conversion rate {moved} from {first:.1%} to {last:.1%} between the training and test "
        "windows".replace("%", " %")
    )
    if shift is None:
        return sentence + "; the prior-shift correction is off (model.prior_shift)"
    if shift.applied:
        return sentence + "; probabilities are corrected for it"
    return sentence + "; the calibrated probabilities already match the latest mature rate"


def informative(train: pd.DataFrame, features: list[str]) -> tuple[list[str], list[str]]:
    """The features that vary in the training window, and a note per one left out: a column
    that is empty there (sparse firmographics in a young CRM) or takes one value teaches the
    model nothing, and an empty one breaks gradient boosting's binning.

    Examples
    --------
    >>> frame = pd.DataFrame({"visits": [0, 3], "revenue": [None, None], "tier": ["a", "a"]})
    >>> informative(frame, ["visits", "revenue", "tier"])[0]
    ['visits']
    """
    kept, notes = [], []
    for feature in features:
        values = train[feature]
        distinct = values.nunique(dropna=True)
        if distinct == 0:
            notes.append(f"feature {feature} is empty in the training window: left out")
        elif distinct == 1 and not values.isna().any():
            notes.append(f"feature {feature} is constant in the training window: left out")
        else:
            kept.append(feature)
    return kept, notes


def _guard(
    train: pd.DataFrame, features: list[str], settings: Settings, allow: Collection[str]
) -> LeakageReport:
    """The leakage guard on the training window: only passthrough columns come from outside
    leadml's point-in-time feature code, so only they get every check."""
    from leadml.features.passthrough import columns as passthrough_columns

    outside = {name for _, _, name in passthrough_columns(settings.features.passthrough)}
    return check_leakage(
        train[features],
        train["label"],
        settings.leakage,
        trusted=[f for f in features if f not in outside],
        groups=train["lead_id"],
        allow=allow,
        random_state=settings.model.random_state,
    )


def sample_by_lead(frame: pd.DataFrame, max_rows: int, settings: Settings) -> pd.DataFrame:
    """At most about ``max_rows`` rows, keeping whole leads so folds stay honest."""
    if len(frame) <= max_rows:
        return frame
    leads = frame["lead_id"].unique()
    rng = np.random.default_rng(settings.model.random_state)
    keep = rng.choice(leads, size=int(len(leads) * max_rows / len(frame)), replace=False)
    return frame[frame["lead_id"].isin(keep)].reset_index(drop=True)
