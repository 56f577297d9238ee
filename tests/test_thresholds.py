"""Thresholds by evidence (`leadml rules threshold`): the threshold found meets its target on the
test window, the figures are what the stages table says, and --write edits one value only."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from conftest import FAST_SETTINGS
from leadml import Settings, load_data
from leadml.cli import app
from leadml.errors import ColdStart, ConfigError
from leadml.jobs import find_threshold
from leadml.modeling.crossings import first_crossings
from leadml.modeling.threshold_file import set_threshold
from leadml.modeling.thresholds import (
    Evidence,
    ThresholdUnreachable,
    choose_threshold,
    cut_table,
    gather_evidence,
    rules_figures,
    threshold_table,
)
from leadml.rules import DEFAULT_RULES, load_rules

runner = CliRunner()
RULES_FILE = Path(__file__).parents[1] / "configs" / "rules.yaml"
KEYS = ["lead_id", "as_of"]


@pytest.fixture(scope="module")
def evidence(sample_data):
    return gather_evidence(sample_data)


@pytest.fixture(scope="module")
def table(evidence):
    return threshold_table(evidence)


@pytest.fixture
def no_model(tmp_path, monkeypatch):
    """A working folder without a tracking store or an export: no champion to compare."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def _sent_once(rows: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Counted here, lead by lead: the rows of ``rows`` (a window of evidence) where a lead is
    sent, its first snapshot at or above ``threshold``, unless it was at or above it already the
    snapshot before its first in the window."""
    ordered = rows.sort_values(["lead_id", "as_of"])
    before = ordered.groupby("lead_id")["previous_rule_score"].transform("first")
    return ordered[(ordered["rule_score"] >= threshold) & (before < threshold)].drop_duplicates(
        "lead_id"
    )


def test_the_table_counts_each_threshold_as_a_direct_count_does(evidence, table):
    assert len(table) > 100 and table.index.is_monotonic_increasing
    for threshold in [table.index[0], -5, 0, 37, 100, 123, 150, table.index[-1]]:
        direct = rules_figures(evidence, threshold)
        row = table.loc[threshold]
        for figure in ("mqls", "accepted", "conversions"):
            assert row[figure] == direct[figure], (threshold, figure)
        assert row["mqls_per_week"] == pytest.approx(direct["mqls_per_week"])


def test_an_mql_is_counted_the_snapshot_it_first_reaches_the_threshold(evidence):
    rows = evidence.rows
    assert rows["as_of"].nunique() == len(evidence.snapshots) == 4  # 28-day snapshots
    assert evidence.weeks == pytest.approx(16)
    # A lead open at two snapshots in a row carries its earlier score as its previous one.
    pairs = rows.merge(rows, on="lead_id", suffixes=("", "_next"))
    pairs = pairs[pairs["as_of_next"] - pairs["as_of"] == pd.Timedelta(days=28)]
    assert len(pairs) and (pairs["previous_rule_score_next"] == pairs["rule_score"]).all()
    # Below every score, the new MQLs are exactly the leads that were not open the snapshot
    # before their first one in the window.
    lowest = rules_figures(evidence, rows["rule_score"].min())
    first = rows.sort_values("as_of").drop_duplicates("lead_id")
    assert lowest["mqls"] == int(np.isinf(first["previous_rule_score"]).sum()) > 0


def _evidence(rows: list[tuple], previous: float = -np.inf) -> Evidence:
    """Evidence of a few leads: (lead, snapshot, score, accepted, converted) rows, weekly."""
    snapshots = pd.date_range("2026-01-05", periods=4, freq="7D", tz="UTC")
    frame = pd.DataFrame(rows, columns=["lead_id", "at", "rule_score", "accepted", "converted"])
    frame["as_of"] = snapshots[frame.pop("at")]
    frame = frame.sample(frac=1, random_state=0)  # the rows in no particular order
    earlier = frame.sort_values("as_of").groupby("lead_id")["rule_score"].shift()
    frame["previous_rule_score"] = earlier.fillna(previous).astype(float)
    return Evidence(frame, frame[KEYS].iloc[:0], snapshots, 7, "sal", "sql", 90)


def test_a_lead_that_dips_and_crosses_again_is_sent_once_with_its_first_outcome():
    evidence = _evidence([
        ("A", 0, 10, False, False), ("A", 1, 60, True, False), ("A", 2, 20, False, False),
        ("A", 3, 70, True, True),  # crosses 50 at 1, dips, crosses again at 3
        ("B", 1, 30, False, False), ("B", 2, 55, False, True),  # new at 2
        ("C", 0, 80, True, True),  # new at 0: not open the snapshot before
    ])  # fmt: skip
    figures = rules_figures(evidence, 50)
    assert (figures["mqls"], figures["accepted"], figures["conversions"]) == (3, 2, 2)
    assert figures["mqls_per_week"] == pytest.approx(3 / 4)
    row = threshold_table(evidence).loc[50]
    assert (row["mqls"], row["accepted"], row["conversions"]) == (3, 2, 2)
    rows = evidence.rows
    new = first_crossings(rows, rows["rule_score"], rows["previous_rule_score"], 50)
    sent = rows.loc[new, ["lead_id", "as_of"]].sort_values("lead_id")
    assert sent["lead_id"].tolist() == ["A", "B", "C"]
    assert sent["as_of"].tolist() == list(evidence.snapshots[[1, 2, 0]])
    # A lead at or above the threshold the snapshot before the window was sent already.
    already = _evidence([("A", 0, 40, False, False), ("A", 1, 90, True, True)], previous=60)
    assert rules_figures(already, 50)["mqls"] == 0 == threshold_table(already).loc[50, "mqls"]
    assert rules_figures(already, 70)["mqls"] == 1  # but not yet at a higher threshold


def test_points_in_the_billions_give_a_table_of_the_scores_own_thresholds():
    # A table of every integer from the lowest score to the highest would need 443 GiB here.
    evidence = _evidence([
        ("A", 0, -3e10, False, False), ("A", 1, 5e10, True, True),
        ("B", 1, 12.5, False, False), ("B", 2, 2e9, True, False),
    ])  # fmt: skip
    table = threshold_table(evidence)
    assert table.index.tolist() == [-30_000_000_000, 12, 2_000_000_000, 50_000_000_000]
    assert table.loc[2_000_000_000, "mqls"] == 2 == rules_figures(evidence, 2e9)["mqls"]
    assert table.loc[50_000_000_000, "conversions"] == 1


def test_every_cut_counts_each_lead_once_as_a_lead_by_lead_count_does(evidence):
    rows = evidence.rows
    leads = rows["lead_id"].drop_duplicates().sample(300, random_state=1)
    small = replace(evidence, rows=rows[rows["lead_id"].isin(leads)].reset_index(drop=True))
    score = small.rows["rule_score"]
    cuts = np.arange(np.floor(score.min()) - 1, score.max() + 2)
    previous = small.rows["previous_rule_score"]
    table = cut_table(small, score, previous, cuts)
    again = 0
    for cut in cuts:
        sent = _sent_once(small.rows, cut)
        assert table.loc[cut, "mqls"] == len(sent) == rules_figures(small, cut)["mqls"], cut
        assert table.loc[cut, "accepted"] == sent["accepted"].sum(), cut
        assert table.loc[cut, "conversions"] == sent["converted"].sum(), cut
        again += ((score >= cut) & (previous < cut)).sum() - len(sent)
    assert again > 0  # leads cross, dip and cross again here: counting crossings counts more


def test_outcomes_are_what_the_stages_table_says(sample_history, evidence):
    stages = sample_history.tables()["stages"]
    rows = evidence.rows.sample(400, random_state=0)
    horizon = pd.Timedelta(days=90)
    for row in rows.itertuples():
        lead = stages[stages["lead_id"] == row.lead_id]
        until = lead["entered_at"] <= row.as_of + horizon
        accepted = (lead["stage"].isin(["sal", "sql", "opportunity", "customer"]) & until).any()
        converted = (
            lead["stage"].isin(["sql", "opportunity", "customer"])
            & (lead["entered_at"] > row.as_of)
            & until
        ).any()
        assert (row.accepted, row.converted) == (accepted, converted), row.lead_id
    assert evidence.accepted_stage == "sal" and evidence.target_stage == "sql"


@pytest.mark.parametrize("acceptance", [0.5, 0.8])
def test_the_threshold_found_meets_the_acceptance_target(evidence, table, acceptance):
    threshold = choose_threshold(table, acceptance=acceptance)
    sent = _sent_once(evidence.rows, threshold)
    assert len(sent) >= 20
    assert sent["accepted"].mean() >= acceptance
    # No other threshold that meets the target finds more conversions.
    meets = table[(table["mqls"] >= 20) & (table["acceptance"] >= acceptance)]
    assert sent["converted"].sum() == meets["conversions"].max()
    assert threshold == meets.index[meets["conversions"] == meets["conversions"].max()][0]


def test_the_threshold_found_fits_the_weekly_capacity(evidence, table):
    threshold = choose_threshold(table, per_week=4)
    assert 0 < len(_sent_once(evidence.rows, threshold)) / evidence.weeks <= 4
    # A higher acceptance target needs a threshold at least as demanding as a lower one's.
    assert choose_threshold(table, acceptance=0.8) >= choose_threshold(table, acceptance=0.3)


def test_an_unreachable_target_names_the_best_reachable(table):
    with pytest.raises(ThresholdUnreachable, match="the best reachable is") as caught:
        choose_threshold(table, acceptance=1.0, min_mqls=50)
    best = caught.value.best
    assert best["mqls"] >= 50 and best["acceptance"] == table.loc[table["mqls"] >= 50,
                                                                   "acceptance"].max()  # fmt: skip
    assert caught.value.exit_code == 1
    with pytest.raises(ThresholdUnreachable, match="the fewest is"):
        choose_threshold(table, per_week=0.001)
    with pytest.raises(ThresholdUnreachable, match="too little evidence"):
        choose_threshold(table, acceptance=0.5, min_mqls=10**6)


@pytest.mark.parametrize(
    "targets, message",
    [({}, "give a target"), ({"acceptance": 0.8, "per_week": 50}, "not both"),
     ({"acceptance": 80}, "share in"), ({"per_week": 0}, "above 0"),
     ({"per_week": float("inf")}, "got inf"), ({"per_week": float("nan")}, "got nan"),
     ({"per_week": -5}, "got -5"), ({"acceptance": float("nan")}, "got nan")],
)  # fmt: skip
def test_a_bad_target_is_a_usage_error(table, targets, message):
    with pytest.raises(ConfigError, match=message) as caught:
        choose_threshold(table, **targets)
    assert caught.value.exit_code == 2


def test_the_job_compares_the_rules_alone_without_a_model(sample_data, no_model):
    choice = find_threshold(sample_data, acceptance=0.8)
    assert list(choice.compared.index) == ["rules, chosen", "rules, the file's threshold"]
    assert choice.compared.loc["rules, the file's threshold", "cut"] == "score >= 100"
    assert choice.compared.loc["rules, chosen", "acceptance"] >= 0.8
    assert any("no model to compare" in note for note in choice.notes)
    text = " ".join(choice.format().split())  # as read, whatever the line breaks
    assert f"MQL threshold {choice.threshold}" in text and "sales accepted it (SAL" in text
    assert choice.written is None


def test_without_sales_reviews_accepted_means_the_target_stage(sample_history, no_model):
    tables = sample_history.tables()
    stages = tables["stages"]
    tables["stages"] = stages[~stages["stage"].isin(["sal", "srl"])]
    data = load_data(tables, Settings.model_validate(FAST_SETTINGS))
    evidence = gather_evidence(data)
    assert evidence.accepted_stage == "sql"
    assert (evidence.rows["accepted"] == evidence.rows["converted"]).all()
    assert "records no sales review" in evidence.describe()


@pytest.mark.slow
def test_the_model_tier_cut_is_compared_on_the_same_test_window(sample_dir, trained_sample):
    from leadml.scoring import ScoringModel

    result = trained_sample
    model = ScoringModel(result.model, result.feature_names, "sample-model", "1")
    # Every tier an MQL tier: the model's new MQLs are the leads new since the snapshot before,
    # exactly as the rules' below every score.
    every = {**FAST_SETTINGS, "scoring": {"tiers": {"mql": ["A", "B", "C", "D"]}}}
    data = load_data(sample_dir, Settings.model_validate(every))
    choice = find_threshold(data, per_week=5, model=model)
    assert set(choice.evidence.snapshots) == set(result.test["as_of"].unique())  # train's window
    assert list(choice.compared.index) == [
        "rules, chosen", "model sample-model v1, same target", "rules, the file's threshold",
        "model sample-model v1, tier cut",
    ]  # fmt: skip
    same = choice.compared.loc["model sample-model v1, same target"]
    assert 0 < same["mqls_per_week"] <= 5 and same["cut"].startswith("probability >= ")
    row = choice.compared.loc["model sample-model v1, tier cut"]
    assert row["cut"] == "tiers A, B, C, D: probability >= 0"
    lowest = rules_figures(choice.evidence, choice.evidence.rows["rule_score"].min())
    assert row["mqls"] == lowest["mqls"] and row["conversions"] == lowest["conversions"]
    # The default cut (tiers A and B) sends fewer.
    default = find_threshold(sample_dir, per_week=5, model=model,
                             settings=Settings.model_validate(FAST_SETTINGS))  # fmt: skip
    cut = default.compared.loc["model sample-model v1, tier cut"]
    assert cut["cut"] == "tiers A, B: probability >= 0.15" and cut["mqls"] < row["mqls"]


# --- writing the threshold into the rules file --------------------------------------------------


def test_write_changes_only_the_threshold_line(sample_dir, tmp_path, no_model):
    rules = tmp_path / "my-rules.yaml"
    shutil.copy(RULES_FILE, rules)
    before = rules.read_text().splitlines()
    config = tmp_path / "settings.yaml"
    config.write_text(json.dumps(FAST_SETTINGS))
    args = ["--json", "rules", "threshold", "--data", str(sample_dir), "--rules", str(rules),
            "--acceptance", "0.8", "--config", str(config), "--write"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    threshold = document["threshold"]
    assert document["written"] == str(rules) and threshold != 100
    after = rules.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [("  threshold: 100", f"  threshold: {threshold}")]
    assert load_rules(rules).mql.threshold == threshold
    assert not list(tmp_path.glob(".tmp-*"))  # written atomically, no staging file left


def test_without_write_nothing_is_written(sample_dir, tmp_path, no_model):
    rules = tmp_path / "my-rules.yaml"
    shutil.copy(RULES_FILE, rules)
    original = rules.read_bytes()
    config = tmp_path / "settings.yaml"
    config.write_text(json.dumps(FAST_SETTINGS))
    args = ["rules", "threshold", "--data", str(sample_dir), "--rules", str(rules),
            "--per-week", "4", "--config", str(config)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert "new MQLs a week" in result.stdout and "rules, the file's threshold" in result.stdout
    assert rules.read_bytes() == original


@pytest.mark.parametrize(
    "args",
    [["--per-week", "10", "--write"], ["--per-week", "inf"], ["--per-week", "10", "--force"]],
)
def test_usage_errors_come_before_the_data_is_read(tmp_path, args):
    """A usage error is exit 2 whatever the data: an empty folder would be exit 3."""
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["rules", "threshold", "--data", str(empty), *args])
    assert result.exit_code == 2, result.stderr


@pytest.mark.parametrize(
    "args, code, message",
    [([], 2, "give a target"), (["--acceptance", "0.8", "--per-week", "9"], 2, "not both"),
     (["--acceptance", "1", "--min-mqls", "200"], 1, "best reachable"),
     (["--acceptance", "0.8", "--write"], 2, "needs the rules file")],
)  # fmt: skip
def test_the_command_exits_with_a_clear_error(sample_dir, no_model, args, code, message):
    result = runner.invoke(app, ["rules", "threshold", "--data", str(sample_dir), *args])
    assert result.exit_code == code, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not list(Path(DEFAULT_RULES).parent.glob(".tmp-*"))


def test_rules_still_scores_an_instant_and_wants_its_options(sample_dir, tmp_path):
    out = tmp_path / "scores.csv"
    args = ["rules", "--data", str(sample_dir), "--as-of", "2026-03-01", "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0 and len(pd.read_csv(out))
    missing = runner.invoke(app, ["rules", "--data", str(sample_dir)])
    assert missing.exit_code == 2 and "'--as-of', '--out'" in missing.stderr


def test_set_threshold_keeps_comments_and_refuses_what_it_cannot_edit(tmp_path):
    rules = tmp_path / "rules.yaml"
    text = RULES_FILE.read_text().replace("  threshold: 100", "  threshold: 100   # agreed in Q1")
    rules.write_text(text)
    assert set_threshold(rules, 85) == "  threshold: 100   # agreed in Q1"
    assert rules.read_text() == text.replace("threshold: 100 ", "threshold: 85 ")
    assert load_rules(rules).mql.threshold == 85
    # A flow-style section has no line of its own to edit: say so, change nothing.
    flow = tmp_path / "flow.yaml"
    head = RULES_FILE.read_text().split("\nmql:")[0]
    flow.write_text(head + "\nmql: {threshold: 100}\n")
    before = flow.read_bytes()
    with pytest.raises(ConfigError, match=r"set mql\.threshold to 85 by hand"):
        set_threshold(flow, 85)
    assert flow.read_bytes() == before


def test_a_model_asked_for_must_be_found_and_fit_the_data(sample_data, no_model):
    from sklearn.linear_model import LogisticRegression

    from leadml.errors import ModelMismatchError, TrackingError

    with pytest.raises(TrackingError, match="no model to score with") as caught:
        find_threshold(sample_data, per_week=4, model="models:/leadml-mql@champion")
    assert caught.value.exit_code == 5  # asked for by name: not silently left out
    X = pd.DataFrame({"not_a_feature": [0.0, 1.0, 2.0, 3.0]})
    alien = LogisticRegression().fit(X, [0, 0, 1, 1])
    with pytest.raises(ModelMismatchError, match="not_a_feature") as caught:
        find_threshold(sample_data, per_week=4, model=alien)
    assert caught.value.exit_code == 4


# --- a target that does not limit the MQLs, and evidence too thin to measure --------------------


def _settings_file(folder: Path) -> Path:
    config = folder / "settings.yaml"
    config.write_text(json.dumps(FAST_SETTINGS))
    return config


def test_a_capacity_above_what_any_threshold_sends_is_said_plainly(sample_dir, tmp_path, no_model):
    rules = tmp_path / "my-rules.yaml"
    shutil.copy(RULES_FILE, rules)
    config = _settings_file(tmp_path)
    args = ["--json", "rules", "threshold", "--data", str(sample_dir), "--rules", str(rules),
            "--per-week", "10000", "--config", str(config), "--write"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    other = find_threshold(sample_dir, per_week=4, settings=Settings.model_validate(FAST_SETTINGS))
    most = other.table["mqls_per_week"].max()  # the same window, whatever the target
    assert document["most_mqls_per_week"] == pytest.approx(most) and most < 10_000
    assert document["lowest_score"] == other.evidence.rows["rule_score"].min()
    [warning] = document["warnings"]
    assert warning.startswith("the capacity (10000 new MQLs a week) is more than any threshold")
    assert f"the most is {most:.1f} a week" in warning
    assert f"warning: {warning}" in " ".join(result.stderr.split())  # printed with the choice
    # The threshold found still tells leads apart: it is written, with the warning.
    assert not document["sends_every_lead"] and document["threshold"] > document["lowest_score"]
    assert load_rules(rules).mql.threshold == document["threshold"]


@pytest.fixture
def flat_rules(tmp_path) -> Path:
    """Rules that score every lead 0: every threshold at or below 0 sends every lead."""
    document = yaml.safe_load(RULES_FILE.read_text())
    document.update(fit={"rules": []}, engagement={"rules": []})
    document.pop("groups", None)
    path = tmp_path / "flat-rules.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.mark.parametrize("target", [["--per-week", "10000"], ["--acceptance", "0.01"]])
def test_write_refuses_a_threshold_that_makes_every_open_lead_an_mql(
    sample_dir, tmp_path, no_model, flat_rules, target
):
    before = flat_rules.read_bytes()
    args = ["--json", "rules", "threshold", "--data", str(sample_dir), "--rules",
            str(flat_rules), *target, "--config", str(_settings_file(tmp_path))]  # fmt: skip
    shown = runner.invoke(app, args)  # without --write: the choice, with the warning
    assert shown.exit_code == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["threshold"] == 0 == document["lowest_score"] and document["sends_every_lead"]
    assert any("every lead scoring at least 0, that is every open lead, would be an MQL" in w
               for w in document["warnings"])  # fmt: skip
    refused = runner.invoke(app, [*args, "--write"])
    assert refused.exit_code == 1 and "Traceback" not in refused.stderr
    assert "every open lead, would be an MQL" in refused.stderr
    assert "was not written (--force writes it anyway)" in refused.stderr
    assert flat_rules.read_bytes() == before and not list(tmp_path.glob(".tmp-*"))
    forced = runner.invoke(app, [*args, "--write", "--force"])
    assert forced.exit_code == 0, forced.stderr
    assert json.loads(forced.stdout)["written"] == str(flat_rules)
    assert load_rules(flat_rules).mql.threshold == 0


def test_a_history_without_conversions_is_a_cold_start(sample_dir, tmp_path, no_model):
    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    stages = pd.read_parquet(data / "stages.parquet")
    kept = stages[~stages["stage"].isin(["sql", "opportunity", "customer"])]
    kept.to_parquet(data / "stages.parquet", index=False)
    rules = tmp_path / "my-rules.yaml"
    shutil.copy(RULES_FILE, rules)
    before = rules.read_bytes()
    args = ["rules", "threshold", "--data", str(data), "--rules", str(rules), "--per-week", "20",
            "--config", str(_settings_file(tmp_path)), "--write"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 9 and "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    assert "cold start: only 0 conversions (SQL within 90 days)" in message
    assert "in the test window (" in message and "snapshots from" in message
    assert "need 30 of each" in message and "split.min_window_positives" in message
    assert rules.read_bytes() == before
    with pytest.raises(ColdStart, match="only 0 conversions") as caught:
        find_threshold(data, acceptance=0.8, settings=Settings.model_validate(FAST_SETTINGS))
    assert caught.value.exit_code == 9


def test_a_too_short_history_is_a_cold_start_for_learn_and_threshold_alike(
    tiny_tables, tmp_path, no_model
):
    data = tmp_path / "data"
    data.mkdir()
    for name, table in tiny_tables.items():
        table.to_parquet(data / f"{name}.parquet", index=False)
    learn = runner.invoke(
        app, ["rules", "learn", "--data", str(data), "--out", str(tmp_path / "learned.yaml")]
    )
    threshold = runner.invoke(app, ["rules", "threshold", "--data", str(data), "--per-week", "20"])
    assert learn.exit_code == 9 == threshold.exit_code, (learn.stderr, threshold.stderr)
    assert "leadml rules threshold: cold start: no mature snapshot" in threshold.stderr
    assert not (tmp_path / "learned.yaml").exists()
