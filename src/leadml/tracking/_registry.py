"""The model registry: registered versions, their aliases and the promotion gate.

- **Versions**: the calibrated model is registered under ``tracking.model_name`` with the alias
  ``challenger``. Its version tags (``leadml.*``) hold the run id, the test window, the gate
  metrics of the challenger and of the rule score, and those of the champion of the time
  **scored on the challenger's own test rows** (:func:`score_champion`), so that
  :func:`promote` compares like with like.
- **Promotions**: :func:`promote` moves the alias ``champion``; every decision (promotion,
  refusal, explicit version) is tagged on the version and recorded as a small run of the
  experiment ``<experiment>-registry`` whose artifact ``promotions.json`` is the whole history
  so far (:func:`promotion_history` reads it back).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from leadml.errors import (
    ModelIntegrityError,
    ModelMismatchError,
    PromotionRefused,
    TrackingError,
)
from leadml.modeling.card import GATE_METRICS, HIGHER_IS_BETTER
from leadml.modeling.evaluation import probability_metrics
from leadml.modeling.modelfile import CHALLENGER, CHAMPION, SHA256_TAG, set_export_alias
from leadml.tracking._export import install_champion, load_version, refuse_foreign_export
from leadml.tracking._store import (
    connected,
    ensure_experiment,
    resolve_tracking_uri,
    without_credentials,
)

if TYPE_CHECKING:
    from leadml.config import Settings
    from leadml.modeling.training import TrainingResult
    from leadml.tracking._runs import TrackedRun

HISTORY_FILE = "promotions.json"


# --------------------------------------------------------------------------------------------
# Registering a training run's model


@dataclass
class Promotion:
    """One decision of :func:`promote`; ``checks`` has one row per gate check."""

    model_name: str
    version: int
    previous: int | None  # champion before the decision
    promoted: bool
    reason: str
    explicit: bool = False  # --version: no gate
    checks: pd.DataFrame = field(default_factory=pd.DataFrame)
    record_run_id: str | None = None
    export_path: Path | None = None


def frame_digest(frame: pd.DataFrame) -> str:
    """A fingerprint of the whole frame (values, column names and dtypes), 16 hex digits.

    MLflow's own pandas digest hashes only the first 10,000 rows and, like its schema
    inference, costs minutes on a million rows; this one reads every row in about a second.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    digest.update(np.int64(len(frame)).tobytes())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def tested_on(result: TrainingResult) -> str:
    """The test rows: their date span, or how they were predicted when they have none."""
    test = result.windows.loc["test"]
    first, last = test.get("first_snapshot"), test.get("last_snapshot")
    if first is None or pd.isna(first):
        return f"{getattr(result, 'validation', 'time')}, {int(test['rows']):,} rows"
    return f"{first:%Y-%m-%d}..{last:%Y-%m-%d}"


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    return f"{value:.6g}"


def _gate_tags(result: TrainingResult, run_id: str, champion: TrackedRun) -> dict[str, str]:
    metrics = result.evaluation.metrics
    tags = {
        "leadml.run_id": run_id,
        SHA256_TAG: str(champion.model_sha256),
        "leadml.family": str(result.family),
        "leadml.target": result.inputs.target_text(),
        "leadml.test_window": tested_on(result),
        "leadml.validation": getattr(result, "validation", "time"),
        "leadml.input": result.inputs.kind,
    }
    frames = getattr(result, "frames", None) or {}
    if "test" in frames:
        tags["leadml.test_digest"] = frame_digest(frames["test"])
    for metric in GATE_METRICS:
        tags[f"leadml.challenger.{metric}"] = _fmt(metrics.get(f"model_{metric}"))
        # Ranking metrics of the rules use their raw points; the others their mapped probability.
        rules_key = f"rules_points_{metric}" if metric in HIGHER_IS_BETTER else f"rules_{metric}"
        tags[f"leadml.rules.{metric}"] = _fmt(metrics.get(rules_key))
    if champion.champion_version is not None:
        tags["leadml.champion.version"] = str(champion.champion_version)
        for metric, value in (champion.champion_metrics or {}).items():
            tags[f"leadml.champion.{metric}"] = _fmt(value)
        if champion.champion_note:
            tags["leadml.champion.note"] = champion.champion_note
    else:
        tags["leadml.champion.version"] = "none"
    return tags


def score_champion(client: MlflowClient, result: TrainingResult, tracked: TrackedRun) -> None:
    """Score the current champion, if any, on the challenger's test rows (same window, same
    labels), so that the promotion gate compares like with like."""
    name = tracked.model_name
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return  # no registered model, or no champion yet
    tracked.champion_version = int(champion.version)
    test = (getattr(result, "frames", None) or {}).get("test")
    if getattr(result, "validation", "time") == "cross-validation":
        # Out-of-fold rows are every row of the export: the champion may have trained on them,
        # so its figures on them would flatter it; there is no like-for-like comparison.
        tracked.champion_note = (
            "not compared: the challenger was validated by cross-validation on every row, which "
            "the champion may have been trained on; compare them on a later export, or promote "
            "explicitly with --version"
        )
        return
    if test is None:
        tracked.champion_note = "not compared: the training result kept no test features"
        return
    if not champion.tags.get(SHA256_TAG):
        tracked.champion_note = (
            f"not compared: version {champion.version} has no recorded SHA-256 ({SHA256_TAG}; "
            "registered before leadml recorded one), and leadml loads no model it cannot verify"
        )
        return
    try:
        exported = load_version(client, champion, Path(result.settings.tracking.export_dir))
    except ModelIntegrityError:
        raise  # a tampered champion stops the training: nothing is logged next to it
    except (TrackingError, ModelMismatchError, MlflowException, OSError) as exc:  # e.g. gone
        tracked.champion_note = f"not compared: version {champion.version} could not be loaded "
        tracked.champion_note += f"({type(exc).__name__}: {str(exc)[:200]})"
        return
    model = exported.model
    needed = list(exported.metadata.get("feature_names") or result.feature_names)
    missing = [c for c in needed if c not in test.columns]
    if missing:
        tracked.champion_note = (
            f"not compared: version {champion.version} needs {len(missing)} feature(s) this "
            f"test window lacks, e.g. {missing[0]!r}"
        )
        return
    p = model.predict_proba(test[needed])[:, 1]
    found = probability_metrics(
        test["label"].to_numpy(), p, result.settings.evaluation.calibration_bins
    )
    tracked.champion_metrics = {m: found[m] for m in GATE_METRICS}


def register(client: MlflowClient, result: TrainingResult, tracked: TrackedRun, uri: str) -> int:
    name = tracked.model_name
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(
            name,
            description="leadml: calibrated probability that an open lead converts; aliases "
            "'challenger' (latest trained) and 'champion' (what scoring uses).",
        )
    version = client.create_model_version(name, uri, run_id=tracked.run_id)
    number = int(version.version)
    metrics = result.evaluation.metrics
    client.update_model_version(
        name,
        version.version,
        description=(
            f"{result.family}, ROC AUC {metrics['model_roc_auc']:.3f} vs rules "
            f"{metrics.get('rules_points_roc_auc', math.nan):.3f}, ECE {metrics['model_ece']:.4f}"
            f" on the test rows ({tested_on(result)}); predicts {result.inputs.target_text()}"
        ),
    )
    tags = _gate_tags(result, tracked.run_id, tracked) | tracked.fitness_tags()
    for key, value in tags.items():
        client.set_model_version_tag(name, version.version, key, value)
    return number


def next_version(client: MlflowClient, name: str) -> int:
    """The version number the registry gives the next model of ``name``."""
    try:
        found = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return 1
    return max((int(v.version) for v in found), default=0) + 1


# --------------------------------------------------------------------------------------------
# Promotion


def _version_or_none(client: MlflowClient, name: str, alias: str):
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _number(tags: Mapping[str, str], key: str) -> float:
    try:
        return float(tags.get(key, "nan"))
    except ValueError:
        return math.nan


def gate_checks(
    tags: Mapping[str, str], settings: Settings, champion_version: int | None
) -> pd.DataFrame:
    """The promotion gate for a challenger's version tags against the current champion.

    One row per check: ``check``, ``metric``, ``challenger``, ``reference`` (the champion's value
    on the challenger's test rows, or the rule score's), ``tolerance``, ``status`` ("passed",
    "failed" or "not applicable"), ``passed`` (False only for a failed check: one that does not
    apply does not block) and ``reason`` (a sentence for failed and inapplicable checks).
    Without a champion only the rules check applies.
    """
    gate = settings.tracking.promotion
    rows = []
    if champion_version is not None:
        recorded = tags.get("leadml.champion.version", "none")
        note = tags.get("leadml.champion.note")
        if recorded != str(champion_version):
            rows.append({
                "check": "same test window", "metric": "", "passed": False,
                "reason": f"the challenger was compared at training time with champion "
                f"{'version ' + recorded if recorded != 'none' else '(none)'}, but the champion "
                f"is now version {champion_version}; retrain to compare on the same rows, or "
                "promote explicitly with --version",
            })  # fmt: skip
        elif note:
            rows.append({"check": "same test window", "metric": "", "passed": False,
                         "reason": f"champion version {champion_version} {note}"})  # fmt: skip
        else:
            for metric, tolerance in gate.tolerances.items():
                new = _number(tags, f"leadml.challenger.{metric}")
                old = _number(tags, f"leadml.champion.{metric}")
                if metric in HIGHER_IS_BETTER:
                    passed, worse = new >= old - tolerance, old - new
                else:
                    passed, worse = new <= old + tolerance, new - old
                direction = "higher" if metric in HIGHER_IS_BETTER else "lower"
                rows.append({
                    "check": f"vs champion v{champion_version}", "metric": metric,
                    "challenger": new, "reference": old, "tolerance": tolerance,
                    "passed": bool(passed),
                    "reason": "" if passed else (
                        f"{metric} {new:.4f} is worse than the champion's {old:.4f} (version "
                        f"{champion_version}, same test rows) by {worse:.4f}; the tolerance is "
                        f"{tolerance:g} ({direction} is better)"
                    ),
                })  # fmt: skip
    fitness = tags.get("leadml.fitness")
    if fitness is not None:  # versions registered before the fitness gate carry no tag
        rows.append({
            "check": "fitness gate at training", "metric": "", "passed": fitness == "passed",
            "reason": "" if fitness == "passed" else (
                f"the model failed the fitness gate at training and was registered with "
                f"--force: {tags.get('leadml.fitness.reasons', '')}; promote it only "
                "explicitly with --version"
            ),
        })  # fmt: skip
    rules = _number(tags, "leadml.rules.roc_auc")
    trained_on = tags.get("leadml.input", "events")
    if gate.must_beat_rules and trained_on != "events" and math.isnan(rules):
        # Only the event history is scored by the rules: a model trained on another input (a
        # flat export) has no rule score to beat, and the table says so.
        rows.append({
            "check": "beats the rule score", "metric": "roc_auc",
            "challenger": _number(tags, "leadml.challenger.roc_auc"), "reference": rules,
            "tolerance": 0.0, "passed": True, "status": "not applicable",
            "reason": "not applicable: no rule score was measured on these rows "
            f"({trained_on} export)",
        })  # fmt: skip
    elif gate.must_beat_rules:
        new = _number(tags, "leadml.challenger.roc_auc")
        passed = new > rules
        rows.append({
            "check": "beats the rule score", "metric": "roc_auc", "challenger": new,
            "reference": rules, "tolerance": 0.0, "passed": bool(passed),
            "reason": "" if passed else (
                f"roc_auc {new:.4f} does not beat the rule score's {rules:.4f} on the same "
                "test rows (must_beat_rules)"
            ),
        })  # fmt: skip
    for row in rows:
        row.setdefault("status", "passed" if row["passed"] else "failed")
    columns = ["check", "metric", "challenger", "reference", "tolerance", "status", "passed",
               "reason"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def promote(settings: Settings, version: int | None = None, *, force: bool = False) -> Promotion:
    """Move the alias ``champion``: to the challenger if it passes the gate, or to ``version``.

    Without ``version`` the challenger must pass ``tracking.promotion`` (each metric within its
    tolerance of the champion's, both measured on the challenger's test rows; and, with
    ``must_beat_rules``, a higher ROC AUC than the rule score). With ``version`` (a rollback or
    roll-forward) the alias moves without the gate. Every decision is recorded (see the module
    docstring) and the export's ``aliases.json`` follows the champion. ``force`` replaces an
    export of the same version number that another run (another store's) wrote; without it the
    promotion is refused before anything moves.

    Raises
    ------
    PromotionRefused
        The challenger failed the gate; the message names every failed check and
        ``.promotion`` holds the decision.
    TrackingError
        No challenger, unknown version, or an unreachable store.
    ExportConflict
        The export folder of that version holds another run's model (and not ``force``).
    ModelIntegrityError
        The version's export, fetched from its run, failed its checks.
    """
    uri = resolve_tracking_uri(settings)
    name = settings.tracking.model_name
    with connected(uri) as client:
        current = _version_or_none(client, name, CHAMPION)
        previous = int(current.version) if current is not None else None
        if version is not None:
            try:
                target = client.get_model_version(name, str(version))
            except MlflowException:
                raise TrackingError(
                    f"model {name!r} has no version {version} in {without_credentials(uri)}"
                ) from None
            decision = Promotion(
                name, int(target.version), previous, promoted=True, explicit=True,
                reason=(
                    f"version {version} set as champion explicitly (no gate)"
                    + (f"; it replaces version {previous}" if previous is not None else "")
                ),
            )  # fmt: skip
            tags = target.tags
        else:
            target = _version_or_none(client, name, CHALLENGER)
            if target is None:
                raise TrackingError(
                    f"model {name!r} has no challenger in {without_credentials(uri)}: run "
                    "'leadml train' first"
                )
            number = int(target.version)
            if previous == number:
                return Promotion(
                    name, number, previous, promoted=False,
                    reason=f"version {number} is already the champion; nothing to do",
                )  # fmt: skip
            checks = gate_checks(target.tags, settings, previous)
            failed = checks[~checks["passed"]]
            if len(failed):
                reason = f"version {number} was not promoted: " + "; ".join(failed["reason"])
            else:
                reason = f"version {number} passed the gate" + (
                    f" and replaces version {previous}"
                    if previous is not None
                    else " and is the first champion"
                )
            decision = Promotion(
                name, number, previous, promoted=not len(failed), reason=reason, checks=checks
            )
            tags = target.tags
        if decision.promoted:
            folder = Path(settings.tracking.export_dir) / name / f"v{decision.version}"
            refuse_foreign_export(folder, tags.get("leadml.run_id"), uri, force)
            # Fetched and verified before anything moves: a model file that fails its checks
            # leaves the champion where it was, in the registry and in the export.
            decision.export_path = install_champion(settings, decision.version, tags, force)
            client.set_registered_model_alias(name, CHAMPION, str(decision.version))
        _record(client, settings, uri, decision, tags)
    if decision.export_path is not None:
        set_export_alias(Path(settings.tracking.export_dir), name, CHAMPION, decision.version)
    if not decision.promoted:
        raise PromotionRefused(decision.reason, decision)
    return decision


def _record(client, settings: Settings, uri: str, decision: Promotion, tags) -> None:
    """Tag the version and append the decision to the history run of ``<experiment>-registry``."""
    name, version = decision.model_name, str(decision.version)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    action = "explicit" if decision.explicit else ("promoted" if decision.promoted else "refused")
    for key, value in {
        "leadml.promotion.status": action,
        "leadml.promotion.at": now,
        "leadml.promotion.reason": decision.reason[:5000],
    }.items():
        client.set_model_version_tag(name, version, key, value)
    entry = {
        "at": now,
        "model": name,
        "version": decision.version,
        "previous_champion": decision.previous,
        "champion_after": decision.version if decision.promoted else decision.previous,
        "action": action,
        "reason": decision.reason,
        "run_id": tags.get("leadml.run_id"),
        "checks": json.loads(decision.checks.to_json(orient="records"))
        if len(decision.checks)
        else [],
    }
    experiment_id = ensure_experiment(client, f"{settings.tracking.experiment}-registry", uri)
    history = [*_history(client, experiment_id), entry]
    run = client.create_run(
        experiment_id,
        run_name=f"{action} {name} v{version}",
        tags={"leadml.action": action, "leadml.model_name": name, "leadml.version": version},
    )
    client.log_dict(run.info.run_id, history, HISTORY_FILE)
    client.set_terminated(run.info.run_id)
    decision.record_run_id = run.info.run_id


def _history(client: MlflowClient, experiment_id: str) -> list[dict]:
    """The history in the latest decision run that has one (an interrupted run may not)."""
    runs = client.search_runs(
        [experiment_id], order_by=["attributes.start_time DESC"], max_results=20
    )
    for run in runs:
        try:
            return mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/{HISTORY_FILE}")
        except Exception:  # no file in that run (interrupted): look at the one before
            continue
    return []


def promotion_history(settings: Settings) -> pd.DataFrame:
    """Every promotion decision recorded so far, oldest first (empty if none)."""
    uri = resolve_tracking_uri(settings)
    with connected(uri) as client:
        experiment = client.get_experiment_by_name(f"{settings.tracking.experiment}-registry")
        if experiment is None:
            return pd.DataFrame()
        return pd.DataFrame(_history(client, experiment.experiment_id))
