"""Jobs: the whole steps a person or a scheduler runs, each one call.

- :func:`train_and_log`: train a model (event history or flat export), log the run to MLflow,
  register and export it when it passes the fitness gate.
- :func:`score_night`: score the leads open at an instant into the night's partition (or, for
  a database URI, the night's rows of a table, replaced in one transaction), log the run and,
  for a folder, its funnel report.
- :func:`write_funnel_report`: the funnel report of a history, with the nightly scores if given.
- :func:`write_features`, :func:`write_trainset`, :func:`write_rule_scores`: a history's features
  as of T, its training set, its rule scores as of T, written to one file (:func:`write_table`).
- :func:`find_threshold`: the rules' MQL threshold that meets a sales-acceptance rate or a
  weekly capacity on the test window, next to the model's tier cut; written into the rules
  file on request.
- :func:`learn_rules`: a points table learned from a history's outcomes, written as a rules file
  and compared with the hand rules on the test window.

The CLI, the notebooks and schedulers (cron, Airflow, Dagster, a Spark driver) call these; the
CLI only parses arguments and prints. A job returns what it did and raises leadml's errors
(:mod:`leadml.errors`, each with its exit code); it never prints or exits.

Settings: an explicit ``settings`` argument wins; otherwise a :class:`~leadml.data.LeadData`
brings its own; otherwise the defaults (see :func:`leadml.data.load_data`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leadml.common.atomic import scratch_dir
from leadml.common.steps import Progress, StepClock
from leadml.config import Settings
from leadml.data import LeadData, load_data
from leadml.data.readers import Source
from leadml.errors import ColdStart, DataError, LeadmlError, ModelUnfit
from leadml.jobs.rules import (  # the rules' jobs: threshold by evidence, learned points
    check_learned_out,
    check_threshold_request,
    find_threshold,
    learn_rules,
)

log = logging.getLogger("leadml.jobs")

if TYPE_CHECKING:
    import pandas as pd

    from leadml.modeling.training import TrainingResult
    from leadml.modeling.trainset import TrainingSet
    from leadml.reports import FunnelReport
    from leadml.scoring import ScoringResult
    from leadml.tracking import TrackedRun


@dataclass
class TrainingJob:
    """What :func:`train_and_log` did: the training result, its MLflow run and registration."""

    result: TrainingResult
    tracked: TrackedRun
    seconds: float

    def summary(self) -> dict:
        """The job in plain values (``leadml train --json``): the run, the registered version,
        the test metrics of the model and the rule score, the gate's verdict."""
        result, tracked = self.result, self.tracked
        return {
            "run_id": tracked.run_id,
            "tracking_uri": tracked.tracking_uri,
            "experiment": tracked.experiment,
            "model_name": tracked.model_name,
            "model_version": tracked.model_version,
            "export_path": tracked.export_path,
            "cold_start": result.cold_start,
            "fitness": None if result.fitness is None else result.fitness.passed,
            "forced": tracked.forced,
            "metrics": dict(result.evaluation.metrics) if result.evaluation else {},
            "seconds": round(self.seconds, 1),
        }

    def raise_for_outcome(self) -> None:
        """Raise when the job did not leave a registered model: :class:`~leadml.errors.ColdStart`
        (exit 9) when there was too little history to train on, :class:`~leadml.errors.ModelUnfit`
        (exit 10) when the model failed the fitness gate (and ``force`` was not given)."""
        if self.result.cold_start:
            raise ColdStart(f"cold start: {self.result.cold_start}")
        if self.tracked.unfit and not self.tracked.forced:
            raise ModelUnfit(
                f"the model failed the fitness gate and was not registered: {self.tracked.unfit} "
                "(--force registers it anyway)"
            )


def train_and_log(
    data: Source | LeadData | None = None,
    settings: Settings | None = None,
    *,
    flat: str | Path | None = None,
    target: str | None = None,
    id: str | None = None,
    time_column: str | None = None,
    exclude: Collection[str] = (),
    positive: str | None = None,
    allow: Collection[str] = (),
    rules: Any = None,
    now: pd.Timestamp | str | None = None,
    plots: bool = True,
    report: bool = True,
    force: bool = False,
    progress: Progress | None = None,
) -> TrainingJob:
    """Train on an event history (``data``) or a flat export (``flat`` with ``target``), log the
    run to MLflow and, when the model passes the fitness gate (or ``force``), register it as the
    challenger and export it.

    With an event history the run also carries the funnel report of the test window (the
    model's MQLs against the rules'), unless ``report`` is False. Call
    :meth:`TrainingJob.raise_for_outcome` to turn a cold start or an unfit model into an error.
    """
    from leadml.tracking import log_training

    if (data is None) == (flat is None):
        raise LeadmlError("give either data (an event history) or flat (a flat export)")
    start = time.perf_counter()
    with scratch_dir("report") as folder:
        written = importance = None
        if flat is not None:
            from leadml.flat import train_flat

            if target is None:
                raise LeadmlError("a flat export needs its target column (the converted flag)")
            result = train_flat(flat, target, id=id, time=time_column, exclude=list(exclude),
                                allow=allow, positive=positive, settings=settings)  # fmt: skip
        else:
            from leadml.modeling.training import train
            from leadml.reports import build_report, training_scores, write_report

            loaded = load_data(data, settings, now=now)
            result = train(loaded, rules=rules, allow=allow, progress=progress)
            if report and result.trained:
                scores = training_scores(result)
                importance = _importance(result) if plots else None
                page = build_report(loaded, scores, importance=importance,
                                    title="Training run: test window")  # fmt: skip
                written = write_report(page, folder / "report").parent
        source = flat if flat is not None else data
        # Lineage names a file or a folder; a database URI is no dataset source MLflow knows
        # (and would carry a password into the run).
        local = isinstance(source, (str, Path)) and "://" not in str(source)
        clock = StepClock(log)
        tracked = log_training(
            result,
            source=source if local else None,
            plots=plots,
            report=written,
            force=force,
            importance=importance,
        )
        registered = f"version {tracked.model_version}" if tracked.model_version else "none"
        clock.lap("mlflow", "run %s, registered %s", tracked.run_id, registered)
    return TrainingJob(result, tracked, time.perf_counter() - start)


def _importance(result: TrainingResult) -> pd.DataFrame | None:
    """The permutation importance of the test window, for the run's report page."""
    from leadml.modeling.plots import permutation_importance_table

    test = (getattr(result, "frames", None) or {}).get("test")
    if test is None or not len(test):
        return None
    seed = result.settings.model.random_state
    return permutation_importance_table(
        result.model, test[result.feature_names], test["label"], random_state=seed
    )


def score_night(
    data: Source | LeadData,
    as_of: pd.Timestamp | str,
    out: str | Path,
    model: Any = None,
    settings: Settings | None = None,
    *,
    rules: Any = None,
    csv: bool = False,
    track: bool = True,
    report: bool = True,
    progress=None,
    now: pd.Timestamp | str | None = None,
) -> ScoringResult:
    """Score the leads open at ``as_of`` into ``out/as_of=YYYY-MM-DD`` (see
    :func:`leadml.scoring.score_to`), log the run to MLflow unless ``track`` is False and, with
    ``report``, attach the funnel report of every night in ``out`` to that run.

    A report that cannot be made or logged is a warning in the result: the night's scores are
    written already.
    """
    from leadml.scoring import score_to

    loaded = load_data(data, settings, now=now)
    result = score_to(loaded, as_of, out, model, rules=rules, csv=csv, track=track,
                      progress=progress, now=now)  # fmt: skip
    # The report reads every night of a scores folder; a database table is the CRM's to read.
    if report and result.tracking_run_id and isinstance(result.path, Path):
        result.warnings += _log_nightly_report(loaded, Path(out), rules, result.tracking_run_id)
    return result


def _log_nightly_report(data: LeadData, scores: Path, rules, run_id: str) -> list[str]:
    from leadml.reports import build_report, write_report
    from leadml.tracking import log_report

    try:
        with scratch_dir("report") as folder:
            built = build_report(data, scores, rules=rules, title="Nightly scores")
            page = write_report(built, folder / "report")
            log_report(data.settings, run_id, page.parent)
    except LeadmlError as exc:
        return [f"the funnel report was not logged to MLflow: {exc}"]
    return []


@dataclass
class ReportJob:
    """What :func:`write_funnel_report` wrote: the report's content and its page."""

    report: FunnelReport
    page: Path


def write_funnel_report(
    data: Source | LeadData,
    out: str | Path,
    scores: str | Path | pd.DataFrame | None = None,
    settings: Settings | None = None,
    *,
    rules: Any = None,
    learned_rules: Any = None,
    now: pd.Timestamp | str | None = None,
) -> ReportJob:
    """Write the funnel report of ``data`` into the folder ``out`` (``index.html`` with its
    figures inside, the figures as PNG and ``tables/*.csv``), with the model's MQLs from
    ``scores`` (a nightly scores folder) next to the CRM's and the rules', and with
    ``learned_rules`` (a second rules file) the learned rules' next to them."""
    from leadml.reports import build_report, write_report

    built = build_report(load_data(data, settings, now=now), scores, rules=rules,
                         learned_rules=learned_rules)  # fmt: skip
    return ReportJob(built, write_report(built, out))


def write_table(frame: pd.DataFrame, out: str | Path) -> None:
    """Write ``frame`` to ``out`` (.parquet, .csv or .csv.gz) atomically: a kill or a full disk
    leaves the previous file or the new one, never half of it. CSV text a spreadsheet would run
    as a formula starts with ``'`` (leadml.common.safe_text); Parquet holds the values as they
    are."""
    from leadml.common.atomic import write_atomic
    from leadml.common.safe_text import to_csv
    from leadml.errors import OutputError

    out = Path(out)

    def write(path: Path) -> None:
        if out.name.lower().endswith(".parquet"):
            frame.to_parquet(path, index=False)
        else:
            to_csv(frame, path, index=False, compression="infer")

    try:
        write_atomic(out, write)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc}; nothing was written") from None


def write_features(
    data: Source | LeadData,
    as_of: pd.Timestamp | str,
    out: str | Path,
    settings: Settings | None = None,
    *,
    now: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """Write the point-in-time features of the leads open at ``as_of`` to ``out`` (see
    :func:`write_table`) and return them."""
    from leadml.features import features_as_of

    frame = features_as_of(load_data(data, settings, now=now), as_of)
    write_table(_some_open(frame, as_of), out)
    return frame


def write_trainset(
    data: Source | LeadData,
    out: str | Path,
    settings: Settings | None = None,
    *,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    now: pd.Timestamp | str | None = None,
    spark: Any = None,
    shards: int | None = None,
) -> TrainingSet:
    """Build the training set of ``data`` (snapshots from ``start`` to ``end``), write its rows
    to ``out`` (see :func:`write_table`) and return it. With a SparkSession ``spark``, it is
    built there, in ``shards`` tasks (:func:`leadml.spark.build_trainset`)."""
    if spark is not None:
        from leadml.spark import build_trainset as build_on_spark

        ts = build_on_spark(spark, data, settings, shards=shards, start=start, end=end, now=now)
    else:
        from leadml.modeling.trainset import build_trainset

        ts = build_trainset(load_data(data, settings, now=now), start=start, end=end)
    write_table(ts.frame, out)
    return ts


def write_rule_scores(
    data: Source | LeadData,
    as_of: pd.Timestamp | str,
    out: str | Path,
    settings: Settings | None = None,
    *,
    rules: Any = None,
    explain: bool = True,
    now: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """Write the rule scores of the leads open at ``as_of`` to ``out`` (see :func:`write_table`)
    and return them."""
    from leadml.rules import rule_scores_as_of

    scores = rule_scores_as_of(load_data(data, settings, now=now), as_of, rules, explain=explain)
    write_table(_some_open(scores, as_of), out)
    return scores


def _some_open(frame: pd.DataFrame, as_of: pd.Timestamp | str) -> pd.DataFrame:
    """``frame``, the rows of the leads open at ``as_of``; a DataError (exit 3) when there is
    none, as for the nightly scores: an --as-of before the history, or a typo, is no night."""
    import pandas as pd

    if frame.empty:
        raise DataError(f"no lead is open at {pd.Timestamp(as_of):%Y-%m-%d %H:%M} UTC: nothing "
                        "to write; nothing was written")  # fmt: skip
    return frame


__all__ = [
    "ReportJob",
    "TrainingJob",
    "check_learned_out",
    "check_threshold_request",
    "find_threshold",
    "learn_rules",
    "score_night",
    "train_and_log",
    "write_features",
    "write_funnel_report",
    "write_rule_scores",
    "write_table",
    "write_trainset",
]
