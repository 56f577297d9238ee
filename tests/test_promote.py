"""Promotion: the gate compares challenger and champion on the challenger's test rows; every
decision is recorded; ``--version`` rolls back without the gate. A real SQLite store, no mocks."""

from __future__ import annotations

import dataclasses
import json

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from leadml.cli import app
from leadml.config import Settings
from leadml.errors import PromotionRefused, TrackingError
from leadml.tracking import log_training, promote, promotion_history
from tracking_helpers import make_result

# Plots are tested in test_tracking.py; here they would only cost time.


@pytest.fixture(scope="module")
def good():
    return make_result(Settings())


@pytest.fixture(scope="module")
def worse():
    """The same test rows, a model trained on mostly scrambled labels."""
    return make_result(Settings(), seed=1, scramble=0.8)


def _champion(settings: Settings) -> int:
    client = MlflowClient(tracking_uri=settings.tracking.uri)
    return int(client.get_model_version_by_alias(settings.tracking.model_name, "champion").version)


def _exported_aliases(settings: Settings) -> dict:
    path = settings.tracking.export_dir + f"/{settings.tracking.model_name}/aliases.json"
    return json.loads(open(path).read())


def test_gate_passes_refuses_and_rollback_moves_the_champion(good, worse, store):
    with pytest.raises(TrackingError, match="no challenger"):
        promote(store)

    # v1: no champion yet; it beats the rules, so it becomes the first champion.
    log_training(dataclasses.replace(good, settings=store), plots=False)
    first = promote(store)
    assert first.promoted and first.version == 1 and first.previous is None
    assert "first champion" in first.reason
    assert _champion(store) == 1 and _exported_aliases(store) == {"challenger": 1, "champion": 1}

    # v2: as good as the champion on the same test rows (the champion is scored at training).
    tracked = log_training(dataclasses.replace(good, settings=store), plots=False)
    assert tracked.champion_version == 1
    assert tracked.champion_metrics["roc_auc"] == pytest.approx(
        good.evaluation.metrics["model_roc_auc"]
    )
    second = promote(store)
    assert second.promoted and second.previous == 1 and _champion(store) == 2
    assert second.checks["passed"].all() and set(second.checks["metric"]) >= {"roc_auc", "log_loss"}

    # v3: clearly worse than v2 on the same rows: refused, with the metric named; v2 stays.
    log_training(dataclasses.replace(worse, settings=store), plots=False)
    with pytest.raises(PromotionRefused, match=r"roc_auc .* worse than the champion's") as refused:
        promote(store)
    assert "version 3 was not promoted" in str(refused.value)
    assert not refused.value.promotion.promoted and _champion(store) == 2
    client = MlflowClient(tracking_uri=store.tracking.uri)
    v3 = client.get_model_version(store.tracking.model_name, "3")
    assert v3.tags["leadml.promotion.status"] == "refused"
    assert "roc_auc" in v3.tags["leadml.promotion.reason"]

    # Rollback to v1 without the gate.
    back = promote(store, version=1)
    assert back.promoted and back.explicit and back.previous == 2
    assert _champion(store) == 1 and _exported_aliases(store)["champion"] == 1

    # v3 was compared with v2, not with today's champion v1: refused until retrained.
    with pytest.raises(PromotionRefused, match="compared at training time with champion version 2"):
        promote(store)

    history = promotion_history(store)
    assert list(history["action"]) == ["promoted", "promoted", "refused", "explicit", "refused"]
    assert list(history["champion_after"]) == [1, 2, 2, 1, 1]
    refusal = history.iloc[2]
    failed = [c for c in refusal["checks"] if not c["passed"]]
    assert {c["metric"] for c in failed} >= {"roc_auc"}

    with pytest.raises(TrackingError, match="no version 9"):
        promote(store, version=9)


def test_a_challenger_that_does_not_beat_the_rules_is_refused(store):
    hopeless = make_result(store, seed=2, scramble=1.0)  # labels are noise: AUC about 0.5
    log_training(hopeless, plots=False)
    with pytest.raises(PromotionRefused, match="does not beat the rule score"):
        promote(store)
    client = MlflowClient(tracking_uri=store.tracking.uri)
    assert client.get_registered_model(store.tracking.model_name).aliases == {"challenger": 1}


def test_promote_command_reports_the_decision_and_exits_non_zero_on_refusal(good, store, tmp_path):
    config = tmp_path / "settings.yaml"
    config.write_text(
        f"tracking:\n  uri: {store.tracking.uri}\n  export_dir: {store.tracking.export_dir}\n"
    )
    runner = CliRunner()
    missing = runner.invoke(app, ["promote", "--config", str(config)])
    assert missing.exit_code == 5 and "no challenger" in missing.output

    log_training(dataclasses.replace(good, settings=store), plots=False)
    done = runner.invoke(app, ["promote", "--config", str(config)])
    assert done.exit_code == 0, done.output
    assert "version 1" in done.output and "champion" in done.output

    again = runner.invoke(app, ["promote", "--config", str(config), "--version", "1"])
    assert again.exit_code == 0 and "explicitly" in again.output


def test_a_check_that_does_not_apply_says_so_and_does_not_block():
    from leadml.tracking import gate_checks

    flat = {"leadml.input": "flat", "leadml.challenger.roc_auc": "0.81"}
    (check,) = gate_checks(flat, Settings(), None).to_dict("records")
    assert check["check"] == "beats the rule score" and check["status"] == "not applicable"
    assert check["passed"]  # nothing to beat: the challenger may be promoted
    events = {"leadml.input": "events", "leadml.challenger.roc_auc": "0.6",
              "leadml.rules.roc_auc": "0.7"}  # fmt: skip
    (check,) = gate_checks(events, Settings(), None).to_dict("records")
    assert (check["status"], check["passed"]) == ("failed", False)
