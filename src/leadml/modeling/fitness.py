"""The fitness gate: may this model be registered at all?

A model is fit to ship when it ranks the test window better than chance by a margin (the lower
bound of a bootstrap interval of its ROC AUC, leads resampled whole), and at least as well as the
rule score where there is one. Whether the calibration window could be ranked is reported with
them (calibration falls back when it could not, see :func:`leadml.modeling.calibration.calibrate`),
but does not block: the test window is the judge.

Pure functions of labels and scores, shared by the event history and flat exports; tracking
decides what a failed gate means for the registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadml.config import FitnessSettings
from leadml.modeling.evaluation import auc_interval, ranking_metrics


@dataclass(frozen=True)
class Check:
    """One check of the gate: ``passed`` is None where it does not apply; only ``blocking``
    checks can fail the gate."""

    name: str
    passed: bool | None
    detail: str
    blocking: bool = True

    @property
    def status(self) -> str:
        if self.passed is None:
            return "not applicable"
        if self.passed:
            return "passed"
        return "FAILED" if self.blocking else "warning"


@dataclass
class Fitness:
    """The gate's checks and the figures they used (for the run's metrics)."""

    checks: list[Check] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.blocking and c.passed is False]

    def format(self) -> str:
        """One line per check, for the terminal and the model card."""
        return "\n".join(f"- {c.name}: {c.status}. {c.detail}" for c in self.checks)

    def reasons(self) -> str:
        """The failed checks in one sentence, or ''."""
        return "; ".join(f"{c.name}: {c.detail}" for c in self.failures)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {"check": c.name, "status": c.status, "blocking": c.blocking, "detail": c.detail}
                for c in self.checks
            ]
        )


def assess_fitness(
    test: pd.DataFrame,
    settings: FitnessSettings,
    *,
    groups: pd.Series | np.ndarray | None = None,
    calibration_note: str | None = None,
    random_state: int = 0,
) -> Fitness:
    """Check the model's test-window figures against the gate: :func:`ranking_fitness`, and
    whether the calibration window could be ranked (a warning only).

    Parameters
    ----------
    test
        ``label`` and ``model_probability`` per test row, and ``rule_score`` where the rules
        were scored on the same rows.
    groups
        The lead of each row: a lead's snapshots are resampled together.
    calibration_note
        Why calibration was skipped or fell back (:func:`leadml.modeling.calibration.calibrate`),
        or None.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 2_000)
    >>> fit = assess_fitness(pd.DataFrame({"label": y, "model_probability": y + rng.random(2_000)}),
    ...                      FitnessSettings())
    >>> fit.passed
    True
    >>> noise = pd.DataFrame({"label": y, "model_probability": rng.random(2_000)})
    >>> assess_fitness(noise, FitnessSettings()).failures[0].name
    'ranks the test window'
    """
    fitness = ranking_fitness(
        test["label"], test["model_probability"], test.get("rule_score"), settings,
        groups=groups, random_state=random_state,
    )  # fmt: skip
    fitness.checks.append(
        Check(
            "calibration window ranked",
            calibration_note is None,
            calibration_note or "the model ranks the calibration window better than chance",
            blocking=False,
        )
    )
    return fitness


def ranking_fitness(
    label: pd.Series | np.ndarray,
    score: pd.Series | np.ndarray,
    rule_score: pd.Series | np.ndarray | None,
    settings: FitnessSettings,
    *,
    groups: pd.Series | np.ndarray | None = None,
    random_state: int = 0,
    scored_by: str = "model",
) -> Fitness:
    """The gate's blocking checks, for any ``score`` of the test rows (a model's probability, a
    learned points table's points): it ranks them better than chance by a margin, and at least
    as well as the ``rule_score`` on the same rows where there is one (None: a flat export).
    ``scored_by`` names the score in the checks' details."""
    y = np.asarray(label, dtype="int64")
    level = settings.interval_level
    auc, low, high = auc_interval(
        y,
        np.asarray(score),
        groups,
        resamples=settings.bootstrap_resamples,
        level=level,
        random_state=random_state,
    )
    metrics = {"model_roc_auc_low": low, "model_roc_auc_high": high}
    bound = settings.min_roc_auc_lower_bound
    interval = f"ROC AUC {auc:.3f}, {level:.0%} interval {low:.3f}-{high:.3f}"
    if np.isnan(low):
        ranks = Check(
            "ranks the test window",
            False,
            f"the test window ({len(y):,} rows, {int(y.sum()):,} conversions) cannot measure "
            "ranking: it needs both outcomes",
        )
    else:
        ranks = Check(
            "ranks the test window",
            bool(low > bound),
            f"{interval} on {len(y):,} rows ({int(y.sum()):,} conversions); the lower bound "
            f"must exceed {bound:.2f}",
        )
    checks = [ranks]
    if rule_score is not None:
        rules = ranking_metrics(y, np.asarray(rule_score))["roc_auc"]
        margin = settings.min_roc_auc_over_rules
        metrics["rules_points_roc_auc"] = rules
        checks.append(
            Check(
                "beats the rule score",
                bool(auc >= rules + margin) if not np.isnan(rules) else None,
                f"{scored_by} ROC AUC {auc:.3f} vs rules {rules:.3f} on the same rows"
                + (f" (must be ahead by {margin:.3f})" if margin else ""),
            )
        )
    else:
        checks.append(
            Check("beats the rule score", None, "no rule score on these rows (flat export)")
        )
    return Fitness(checks, metrics)
