"""Settings of modeling: the time windows, the competing models and their fitness gate, flat
exports, the leakage guard and the test-window evaluation."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from leadml.config._base import Strict
from leadml.config.vocabularies import NO_ANSWER_PLACEHOLDERS, POST_OUTCOME_WORDS

#: ``points``: the points table learned from the training window (leadml.modeling.points_model),
#: preferred when within the promotion tolerances of the best searched family.
ModelFamily = Literal["logistic", "hist_gradient_boosting", "points"]
CalibrationMethod = Literal["sigmoid", "isotonic", "temperature"]


class SplitSettings(Strict):
    """Time windows, by snapshot date: train | gap | calibrate | gap | test (latest), sized by
    their share of the mature conversions.

    Each gap is one horizon, so no training label peeks into the calibration window and no
    calibration label into the test window.
    """

    # "auto": the calendar windows below (test: the last test_days of snapshots, calibration:
    # calibration_days before it) while each holds enough conversions, else windows sized by
    # their share of the mature conversions (a young CRM's first months may hold none, its last
    # ones only outcomes arriving); "days" or "conversions" to force one.
    placement: Literal["auto", "days", "conversions"] = "auto"
    calibration_days: int = Field(default=91, gt=0)
    test_days: int = Field(default=91, gt=0)
    test_share: float = Field(default=0.25, gt=0, lt=0.5)
    calibration_share: float = Field(default=0.2, gt=0, lt=0.5)
    # A calibration or test window needs at least this many conversions (and as many leads that
    # did not convert). Without enough for a calibration window, calibration is cross-fitted
    # inside the training window; without enough for a test window, it is a cold start.
    min_window_positives: int = Field(default=30, ge=1)


class FitnessSettings(Strict):
    """The fitness gate at training time: a model that fails it is logged with the reasons but
    not registered or exported (``leadml train`` exits 10; ``--force`` registers it anyway). A
    learned points table is held to it too (``leadml rules learn`` writes none that fails)."""

    # The lower bound of the bootstrap interval of the test ROC AUC must exceed this.
    min_roc_auc_lower_bound: float = Field(default=0.5, ge=0, lt=1)
    # Where a rule score exists, the model's test ROC AUC must be at least the rules' + this.
    min_roc_auc_over_rules: float = Field(default=0.0, ge=-1, le=1)
    # Resamples of the bootstrap intervals (leads resampled whole) and their level.
    bootstrap_resamples: int = Field(default=200, ge=20)
    interval_level: float = Field(default=0.95, gt=0.5, lt=1)


class ModelSettings(Strict):
    """Which models compete, how they are searched and calibrated, and when not to trust one."""

    candidates: tuple[ModelFamily, ...] = Field(
        default=("logistic", "hist_gradient_boosting"), min_length=1
    )

    @field_validator("candidates")
    @classmethod
    def _one_searched(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        if not set(values) - {"points"}:
            raise ValueError("'points' competes with a searched family: add logistic or "
                             "hist_gradient_boosting")  # fmt: skip
        return values

    # Time-ordered folds inside the training window for the hyper-parameter search.
    search_folds: int = Field(default=3, ge=2)
    # The search runs on at most this many training rows (sampled by lead); the winner is then
    # refitted on the whole training window.
    search_max_rows: int = Field(default=100_000, gt=0)
    calibration_methods: tuple[CalibrationMethod, ...] = Field(
        default=("sigmoid", "isotonic", "temperature"), min_length=1
    )
    # Isotonic calibration overfits on few positives; below this many it is not tried.
    isotonic_min_positives: int = Field(default=500, ge=0)
    # Data sufficiency (both inputs): with fewer rows or fewer conversions (or non-conversions)
    # than this to train on, no model is registered and the rule score remains the answer.
    min_training_rows: int = Field(default=500, ge=1)
    min_training_positives: int = Field(default=100, ge=1)
    # Prior shift: when the conversion rate of the latest mature snapshots (the last
    # prior_shift_days of a window, widened back until they hold prior_shift_min_positives
    # conversions) differs from what calibration expects by more than chance, an intercept on
    # the calibrated log-odds follows it. The ranking is unchanged.
    prior_shift: bool = True
    prior_shift_days: int = Field(default=28, gt=0)
    prior_shift_min_positives: int = Field(default=50, ge=1)
    fitness: FitnessSettings = Field(default_factory=FitnessSettings)
    random_state: int = 0


Role = Literal["numeric", "categorical", "boolean", "date", "identifier", "free_text", "ignore"]


class FlatSettings(Strict):
    """Flat CRM exports (``leadml train --flat``): one row per lead, its attributes, aggregated
    activity columns and a converted flag.

    Column roles are inferred from the values; ``roles`` overrides them by column name.
    """

    # Column -> role (numeric, categorical, boolean, date, identifier, free_text, ignore).
    roles: dict[str, Role] = Field(default_factory=dict)
    placeholders: tuple[str, ...] = NO_ANSWER_PLACEHOLDERS
    # Spellings of yes/no (ignoring case): a column whose values are all among them is boolean.
    true_values: tuple[str, ...] = ("yes", "y", "true", "t", "1")
    false_values: tuple[str, ...] = ("no", "n", "false", "f", "0")
    # A column is numeric (or a date) when at least this share of its present values parse as
    # one; the others are mixed types, reported and read as missing.
    parse_min_share: float = Field(default=0.95, gt=0.5, le=1)
    # Text whose values average at least this many characters, mostly distinct, is free text
    # (notes, comments): reported, not modelled.
    free_text_min_length: int = Field(default=40, ge=1)
    # Validation without a time column: stratified folds, every row predicted out of fold.
    cv_folds: int = Field(default=5, ge=2)
    # Share of the rows a model is calibrated on (held out from its fit), and, with a time
    # column, share of the latest rows it is tested on.
    calibration_share: float = Field(default=0.2, gt=0, lt=0.5)
    test_share: float = Field(default=0.2, gt=0, lt=0.5)
    # The prior-shift correction (model.prior_shift) on exports validated by time. Off by
    # default: an export's converted flag is read when it is exported, so its newest leads have
    # not all had time to convert, and a correction would read that as a falling rate. Turn it on
    # for exports that hold only leads whose outcome is known.
    prior_shift: bool = False
    # Models trained on flat exports are registered under their own name: they take an export's
    # columns, not the event features, so they must never become the nightly scorer's champion.
    model_name: str = "leadml-mql-flat"

    @model_validator(mode="after")
    def _yes_is_not_no(self) -> FlatSettings:
        both = {v.lower() for v in self.true_values} & {v.lower() for v in self.false_values}
        if both:
            raise ValueError(f"true_values and false_values share {sorted(both)}")
        return self


class LeakageSettings(Strict):
    """The leakage guard, run before every training (flat exports and the event features).

    A flagged column is left out unless listed in ``allow`` (or ``--allow-column``).
    """

    # Out-of-fold ROC AUC of one column's values alone at or above this: "almost perfect".
    max_single_column_auc: float = Field(default=0.95, gt=0.5, le=1)
    # Values whose rows have the rarer outcome at least this often are "pure"; a column whose
    # pure values hold at least max_pure_share of all rows with that outcome is flagged.
    purity: float = Field(default=0.95, gt=0.5, le=1)
    max_pure_share: float = Field(default=0.25, gt=0, le=1)
    # Filled in for one class at most this fraction as often as for the other (e.g. 0.05: a
    # deal amount present for 30% of converted leads and under 1.5% of the others).
    presence_ratio: float = Field(default=0.05, ge=0, lt=1)
    # A value (or a presence pattern) needs this many rows before it can count as evidence.
    min_rows_per_value: int = Field(default=20, ge=1)
    # (Almost) one value per lead: an identifier, which lets a model memorise rows.
    identifier_unique_share: float = Field(default=0.95, gt=0.5, le=1)
    # Whole words of column names (ignoring case and a plural s); phrases match word runs.
    post_outcome_names: tuple[str, ...] = POST_OUTCOME_WORDS
    # Flat exports with --time: a date column more than this share of whose present dates fall
    # on a later day than the row's own time (a close date) is post-outcome; 1 turns it off.
    max_after_time_share: float = Field(default=0.05, ge=0, le=1)
    # Columns kept although flagged: a knowing decision, recorded in the report.
    allow: tuple[str, ...] = ()
    # The statistics use at most this many rows (sampled) and this many folds.
    max_rows: int = Field(default=200_000, ge=1_000)
    folds: int = Field(default=5, ge=2)


class EvaluationSettings(Strict):
    """What the test-window comparison of model and rules reports."""

    # Sales capacity as a share of the scored leads, and as leads per weekly snapshot.
    capacity_fractions: tuple[float, ...] = (0.05, 0.10, 0.20)
    capacity_per_week: tuple[int, ...] = (100,)
    segments: tuple[str, ...] = ("industry", "company_size_band", "lead_source")
    calibration_bins: int = Field(default=10, ge=2)
    # A points table learned from the training window (leadml rules learn) with at most this many
    # rules is compared with the model and the hand rules on the test window; 0: none.
    learned_rules: int = Field(default=15, ge=0)

    @field_validator("capacity_fractions")
    @classmethod
    def _fractions(cls, values: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 < v <= 1 for v in values):
            raise ValueError(f"capacity fractions must be in (0, 1], got {list(values)}")
        return values
