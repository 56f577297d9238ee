"""Learned points: a rules file fitted to outcomes, run by the rules engine, against the hand
rules on the same test rows."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from leadml.data.asof import open_leads
from leadml.modeling.points import forward_rules, learn_points, windowed_pairs
from leadml.modeling.points_candidates import rule_name
from leadml.modeling.points_file import _value
from leadml.rules import load_rules, rule_scores
from leadml.rules._checks import check_name

KEYS = ["lead_id", "as_of"]


@pytest.fixture(scope="module")
def small(sample_data):
    return learn_points(sample_data, max_rules=8)


def test_the_learned_file_loads_with_the_rules_loader_and_is_what_was_learned(
    small, sample_data, tmp_path
):
    path = small.write(tmp_path / "learned.yaml")
    rules = load_rules(path, sample_data.settings)
    assert rules == small.rules
    assert load_rules(yaml.safe_load(path.read_text())) == rules


def test_the_table_is_small_integer_and_monotone(small, sample_data):
    rules = small.rules.all_rules()
    assert 0 < len(rules) <= 8
    assert all(float(r.points).is_integer() and r.points != 0 for r in rules)
    stage_of = sample_data.settings.data.buying_stage_lookup()
    for rule in small.rules.engagement.rules:
        stages = set(rule.buying_stage or ()) | {stage_of[t] for t in rule.event_type or ()}
        if rule.inactive_days is not None:  # going quiet only loses points; an action ends it
            assert rule.points < 0 and "none" not in stages, rule.name
            continue
        # More of an action never loses points: positive engagement rules only add.
        assert (rule.points < 0) == (stages == {"none"}), rule.name
        assert rule.cap is not None and rule.cap >= abs(rule.points)
    assert float(small.rules.mql.threshold).is_integer()


def test_an_unsubscribe_or_a_bounce_never_raises_a_candidate_s_points(sample_dir, sample_data):
    """Every candidate, with points of the sign its meaning allows, scores no lead higher after
    one more unsubscribe or bounce: not even a quiet lead, whose spell such an event does not
    end. Candidates over every event made a quiet lead's bounce worth the points going quiet had
    taken away."""
    from leadml import load_data
    from leadml.modeling.points_candidates import candidate_rules, rule_sign

    settings = sample_data.settings
    spine = open_leads(sample_data, "2026-03-02")
    candidates = candidate_rules(sample_data, spine.assign(label=0))
    signed = [r | {"points": sign} for r in candidates.values()
              if (sign := rule_sign(r, settings)) != 0]  # fmt: skip
    table = {"engagement": {"rules": signed}, "mql": {"threshold": 0},
             "grades": {"fit": {"a": {}}, "engagement": {"1": {}}}}  # fmt: skip
    before = rule_scores(sample_data, spine, table, explain=False)["rule_score"]
    tables = {t: pd.read_parquet(sample_dir / f"{t}.parquet")
              for t in ("accounts", "leads", "events", "stages")}  # fmt: skip
    for event_type in ("email_bounce", "unsubscribe"):
        extra = spine.assign(
            event_type=event_type, occurred_at=spine["as_of"] - pd.Timedelta(hours=1)
        )
        events = pd.concat([tables["events"], extra.drop(columns="as_of")], ignore_index=True)
        after = rule_scores(load_data(tables | {"events": events}, settings), spine, table,
                            explain=False)["rule_score"]  # fmt: skip
        assert (after <= before).all(), event_type
        assert (after < before).any()  # the candidates for these events took points away


def test_every_rule_carries_its_evidence(small, sample_data):
    """Each rule's comment says, of the training window, what the engine finds: the leads and
    snapshots the file's rule fires for, and their conversion rate against the base rate."""
    pairs = windowed_pairs(sample_data)
    train = pairs[pairs["window"] == "train"]
    fired = train.merge(rule_scores(sample_data, train[KEYS], small.rules), on=KEYS)
    lines = small.text.splitlines()
    for rule in small.rules.all_rules():
        at = next(i for i, line in enumerate(lines) if line.strip() == f"- name: {rule.name}")
        flagged = lines[at - 1].strip().startswith("# (points beside the other rules")
        comment = lines[at - 1 - flagged]
        match = re.search(r"# ([\d,]+) leads \(([\d,]+) snapshots\); ([\d.]+) % converted vs "
                          r"([\d.]+) % overall", comment)  # fmt: skip
        assert match, comment
        fires = fired[fired[f"points__{rule.name}"] != 0]
        assert int(match[1].replace(",", "")) == fires["lead_id"].nunique() > 0
        assert int(match[2].replace(",", "")) == len(fires)
        assert float(match[3]) == pytest.approx(100 * fires["label"].mean(), abs=0.051)
        assert float(match[4]) == pytest.approx(100 * fired["label"].mean(), abs=0.051)


def test_points_against_a_rule_s_own_evidence_say_why():
    from leadml.modeling.points_file import _evidence_lines

    def lines(points, rate):
        row = pd.Series({"leads": 88, "snapshots": 300, "points": points,
                         "conversion_rate": rate, "base_rate": 0.049})  # fmt: skip
        return _evidence_lines(row)

    # With the evidence (or at the base rate): one line.
    assert len(lines(12, 0.08)) == len(lines(-8, 0.02)) == len(lines(5, 0.049)) == 1
    assert lines(17, 0.029)[1].endswith("they give these leads less than they earn)")
    assert lines(-8, 0.057)[1].endswith("they give these leads more than they earn)")


def test_the_comparison_is_the_engine_on_the_test_rows(small, sample_data):
    test = small.scores
    again = rule_scores(sample_data, test[KEYS], small.rules, explain=False)
    merged = test.merge(again, on=KEYS)
    np.testing.assert_allclose(merged["learned_score"], merged["rule_score_y"])
    auc = roc_auc_score(merged["label"], merged["rule_score_y"])
    assert small.metrics["rules_learned_roc_auc"] == pytest.approx(auc)
    assert (merged["learned_mql"] == merged["rule_mql_y"]).all()
    # At each table's own threshold: new MQLs (a lead sent once, when it first crosses) and the
    # conversions among them, as counted lead by lead here.
    hand = load_rules(None, sample_data.settings)
    for who, rules, flag in (("hand", hand, "rule_new_mql"),
                             ("learned", small.rules, "learned_new_mql")):  # fmt: skip
        sent = _new_mqls(sample_data, test, rules, rules.mql.threshold)
        row = small.comparison.loc[who]
        assert row["new_mqls"] == len(sent) == test[flag].sum() > 0
        flagged = test.loc[test[flag], KEYS].sort_values(KEYS, ignore_index=True)
        pd.testing.assert_frame_equal(flagged, sent.sort_values(KEYS, ignore_index=True))
        assert row["new_mql_conversions"] == test.loc[test[flag], "label"].sum()
        weeks = test["as_of"].nunique() * sample_data.settings.trainset.cadence_days / 7
        assert row["new_mqls_per_week"] == pytest.approx(len(sent) / weeks)


def _new_mqls(data, window: pd.DataFrame, rules, threshold: float) -> pd.DataFrame:
    """The (lead, snapshot) pairs of ``window`` (every open lead at each of its snapshots) where
    a lead is sent: its first snapshot with a score at or above ``threshold``, unless it was at
    or above it the snapshot before the window already (sent then)."""
    cadence = pd.Timedelta(days=data.settings.trainset.cadence_days)
    start = window["as_of"].min()
    before = open_leads(data, start - cadence)[KEYS]
    spine = pd.concat([before, window[KEYS]], ignore_index=True)
    scored = rule_scores(data, spine, rules, explain=False).sort_values(KEYS, ignore_index=True)
    above = scored["rule_score"] >= threshold
    already = scored.loc[above & (scored["as_of"] < start), "lead_id"]
    sent = scored[above & (scored["as_of"] >= start) & ~scored["lead_id"].isin(already)]
    return sent.drop_duplicates("lead_id")[KEYS]  # by lead, then time: its first


def test_the_threshold_sends_as_many_new_mqls_as_the_hand_rules_on_the_calibration_window(
    small, sample_data
):
    # Leads cross in and out of a threshold from one snapshot to the next: sales gets a lead
    # once, so the learned threshold matches the hand rules' new MQLs, not their count of
    # snapshots above it.
    pairs = windowed_pairs(sample_data)
    window = pairs[pairs["window"] == "calibration"]
    hand = load_rules(None, sample_data.settings)
    hand_mqls = len(_new_mqls(sample_data, window, hand, hand.mql.threshold))
    threshold = small.rules.mql.threshold
    learned_mqls = len(_new_mqls(sample_data, window, small.rules, threshold))
    assert hand_mqls >= 20
    # Within 15 % on this small sample, where one point of threshold moves several new MQLs; and
    # no neighbouring threshold comes closer.
    assert abs(learned_mqls - hand_mqls) <= 0.15 * hand_mqls
    for neighbour in (threshold - 1, threshold + 1):
        sent = len(_new_mqls(sample_data, window, small.rules, neighbour))
        assert abs(sent - hand_mqls) >= abs(learned_mqls - hand_mqls)
    assert f"rules ({learned_mqls:,}\n# against their {hand_mqls:,};" in small.text
    # Matching the snapshots above the threshold instead (as it once did) sends far more here.
    scores = rule_scores(sample_data, window[KEYS], small.rules, explain=False)["rule_score"]
    rows_above = (rule_scores(sample_data, window[KEYS], hand, explain=False)["rule_mql"]).sum()
    by_rows = min(range(int(scores.max()) + 2),
                  key=lambda t: (abs((scores >= t).sum() - rows_above), -t))  # fmt: skip
    assert by_rows != threshold
    assert len(_new_mqls(sample_data, window, small.rules, by_rows)) > 1.1 * hand_mqls


def test_forward_selection_keeps_the_signs_meaning_demands():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 2, size=(4_000, 4)).astype(float)
    # Column 0 lowers the odds, but its meaning says it may only add points.
    logit = -2 - 1.5 * X[:, 0] + 1.0 * X[:, 1] - 1.0 * X[:, 2]
    y = (rng.random(4_000) < 1 / (1 + np.exp(-logit))).astype(int)
    import scipy.sparse as sp

    chosen, weights = forward_rules(sp.csr_matrix(X), y, np.array([1, 1, -1, 0]), max_rules=3)
    # Column 0 has the wrong sign; 1 and 2 carry the signal and come first, 3 carries nothing.
    assert set(chosen[:2]) == {1, 2} and 0 not in chosen
    assert weights[chosen.index(1)] > 0 and weights[chosen.index(2)] < 0


def test_forward_selection_takes_the_rule_that_ranks_over_the_one_most_likely():
    """A rare hand-raise (0.5 % of rows, 90 % convert) adds far more likelihood than "gone quiet"
    (70 % of rows, 0.1 % convert), but ranks far fewer leads: the quiet rule joins first."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    raised, quiet = rng.random(20_000) < 0.005, rng.random(20_000) < 0.7
    y = (rng.random(20_000) < np.where(raised, 0.9, np.where(quiet, 0.001, 0.05))).astype(int)
    X = sp.csr_matrix(np.column_stack([raised, quiet]).astype(float))
    p = np.full(len(y), y.mean())
    centred = X.toarray() - X.toarray().T @ (p * (1 - p)) / (p * (1 - p)).sum()
    statistic = (X.T @ (y - p)) ** 2 / ((centred**2).T @ (p * (1 - p)))
    assert statistic[0] > 5 * statistic[1]  # the score test alone would take the hand-raise
    assert roc_auc_score(y, -X[:, [1]].toarray().ravel()) > roc_auc_score(y, raised)
    chosen, weights = forward_rules(X, y, np.array([0, -1]), max_rules=1)
    assert chosen == [1] and weights[0] < 0


@pytest.mark.slow
def test_a_learned_table_ranks_a_generated_history_better_than_the_hand_rules():
    from leadml import generate_history, load_data

    data = load_data(generate_history(n_leads=5_000, seed=7).tables())
    learned = learn_points(data)
    assert len(learned.rules.all_rules()) <= 15
    m = learned.metrics
    assert m["rules_learned_roc_auc"] > m["rules_hand_roc_auc"]
    assert (
        m["rules_learned_conversions_at_hand_volume"] > m["rules_hand_conversions_at_hand_volume"]
    )
    assert learned.fitness.passed and learned.unfit is None
    assert m["rules_learned_roc_auc_low"] < m["rules_learned_roc_auc"] < m[
        "rules_learned_roc_auc_high"]  # fmt: skip


# The command line: learn, then run what was learned with `leadml rules`.


def test_rules_learn_writes_a_file_that_leadml_rules_runs(sample_dir, tmp_path):
    import json

    from typer.testing import CliRunner

    from conftest import FAST_SETTINGS, with_gate
    from leadml.cli import app

    runner = CliRunner()
    config = tmp_path / "fast.yaml"
    # On the sample's 63 test conversions the table trails the hand rules within noise (0.83
    # against 0.86): this test is about the file; the gate has its own below.
    config.write_text(yaml.safe_dump(with_gate(FAST_SETTINGS, min_roc_auc_over_rules=-0.1)))
    out = tmp_path / "learned.yaml"
    args = ["--json", "rules", "learn", "--data", str(sample_dir), "--out", str(out),
            "--max-rules", "6", "--config", str(config)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] and document["path"] == str(out) and 0 < document["rules"] <= 6
    assert document["command"] == "rules learn" and document["data_warnings"] == []
    assert {row["scored_by"] for row in document["comparison"]} == {"hand", "learned"}
    assert "ROC AUC" in result.stderr and "learned" in result.stderr
    assert document["fitness"] is True and "ranks the test window: passed" in result.stderr
    learned = load_rules(out)
    assert document["threshold"] == learned.mql.threshold

    scores = tmp_path / "scores.csv"
    args = ["rules", "--data", str(sample_dir), "--as-of", "2026-03-02", "--out", str(scores),
            "--rules", str(out)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    frame = pd.read_csv(scores)
    assert {f"points__{r.name}" for r in learned.all_rules()} <= set(frame.columns)
    assert (frame["rule_mql"] == (frame["rule_score"] >= learned.mql.threshold)).all()


def test_rules_learn_refuses_an_output_it_cannot_write_before_any_work(sample_dir, tmp_path):
    from typer.testing import CliRunner

    from leadml.cli import app

    runner = CliRunner()
    for out, code in ((tmp_path / "learned.csv", 8), (tmp_path / "no" / "learned.yaml", 8)):
        result = runner.invoke(
            app, ["rules", "learn", "--data", str(sample_dir), "--out", str(out)]
        )
        assert result.exit_code == code and "nothing was written" in result.stderr
        assert not out.exists()
    result = runner.invoke(app, ["rules", "--data", str(sample_dir), "--as-of", "2026-03-02"])
    assert result.exit_code == 2 and "--out" in result.output


def test_rules_learn_writes_nothing_when_the_table_fails_the_gate_unless_forced(
    sample_dir, tmp_path
):
    from typer.testing import CliRunner

    from conftest import FAST_SETTINGS, with_gate
    from leadml.cli import app

    runner = CliRunner()
    config = tmp_path / "strict.yaml"  # no table beats the hand rules by 0.5
    config.write_text(yaml.safe_dump(with_gate(FAST_SETTINGS, min_roc_auc_over_rules=0.5)))
    out = tmp_path / "rules.yaml"
    out.write_text("# the rules in use\n")
    args = ["rules", "learn", "--data", str(sample_dir), "--out", str(out), "--max-rules", "4",
            "--config", str(config)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 10, result.stderr
    assert "failed the fitness gate: beats the rule score: learned table ROC AUC" in result.stderr
    assert "was not written (--force writes it anyway)" in result.stderr
    assert out.read_text() == "# the rules in use\n"
    result = runner.invoke(app, [*args, "--force"])
    assert result.exit_code == 0, result.stderr
    assert "beats the rule score: FAILED" in result.output
    assert "written although it failed the fitness gate (--force)" in result.output
    assert len(load_rules(out).all_rules()) <= 4


def test_a_table_learned_from_noise_cannot_rank_and_says_so(sample_data):
    pairs = windowed_pairs(sample_data)
    shuffled = np.random.default_rng(1).permutation(pairs["label"].to_numpy())
    noise = learn_points(sample_data, pairs=pairs.assign(label=shuffled), max_rules=8)
    assert "ranks the test window" in [check.name for check in noise.fitness.failures]
    assert noise.metrics["rules_learned_roc_auc_low"] <= 0.5
    assert noise.unfit.startswith("the learned points table failed the fitness gate: ranks the "
                                  "test window: ROC AUC")  # fmt: skip
    assert "learned table ROC AUC" in noise.fitness.format()


def test_pairs_without_conversions_to_learn_from_are_a_cold_start(sample_data):
    """Pairs a caller passes meet the limits ``leadml train`` applies to its own: no
    conversion in the training window says so, where scikit-learn would fail on one class."""
    from leadml.errors import ColdStart

    pairs = windowed_pairs(sample_data)
    none_converted = pairs.assign(label=pairs["label"].where(pairs["window"] != "train", 0))
    with pytest.raises(ColdStart, match="only 0 conversions in the training window"):
        learn_points(sample_data, pairs=none_converted)


# In `leadml train`: beside the model, and as a candidate model.


def test_train_puts_the_learned_rules_beside_the_model_on_the_same_rows(trained_sample):
    from leadml.modeling.card import comparison_table, model_card

    result = trained_sample
    test, m = result.test, result.evaluation.metrics
    assert m["learned_rules_points_roc_auc"] == pytest.approx(
        roc_auc_score(test["label"], test["learned_score"])
    )
    # The table's own comparison (leadml rules learn) measured the same rows.
    own = result.points.metrics
    assert m["learned_rules_conversions_at_rule_mql_volume"] == pytest.approx(
        own["rules_learned_conversions_at_hand_volume"]
    )
    # New MQLs at each table's own threshold: the same rows, the same count.
    for who, flag in (("learned_rules", "learned_new_mql"), ("rules", "rule_new_mql")):
        mine = "rules_learned" if who == "learned_rules" else "rules_hand"
        assert m[f"{who}_new_mqls"] == test[flag].sum() == own[f"{mine}_new_mqls"] > 0
        assert m[f"{who}_new_mql_conversions"] == own[f"{mine}_new_mql_conversions"]
    ordered = test.sort_values("learned_score")
    assert ordered["learned_probability"].is_monotonic_increasing  # calibration never reorders
    table = comparison_table(m)
    assert list(table.columns) == ["model", "rules", "learned rules"]
    assert table.loc["ROC AUC", "learned rules"] == m["learned_rules_points_roc_auc"]
    assert "Learned rules: a points table of" in model_card(result)


@pytest.mark.slow
def test_the_table_as_a_candidate_model_is_preferred_logged_exported_and_scored(
    sample_data, store, tmp_path
):
    from threadpoolctl import threadpool_limits

    from leadml import Settings, load_data, score
    from leadml.modeling.points_model import PointsClassifier
    from leadml.modeling.training import train
    from leadml.tracking import log_training

    values = sample_data.settings.model_dump(mode="json", exclude_unset=True)
    values["model"]["candidates"] = ["logistic", "points"]
    values["tracking"] = store.tracking.model_dump(mode="json")
    # Tolerances wide enough that the table is within them: it must then be the model.
    values["tracking"]["promotion"]["tolerances"] = {"roc_auc": 0.2, "log_loss": 0.1}
    settings = Settings.model_validate(values)
    data = load_data(sample_data, settings)
    with threadpool_limits(limits=1):
        result = train(data)
    assert result.family == "points" and "within the promotion tolerances" in result.points.choice
    inner = result.model.calibrated_classifiers_[0].estimator.estimator
    assert isinstance(inner, PointsClassifier)
    # The features give the engine's points exactly.
    np.testing.assert_allclose(
        inner.points(result.frames["test"]), result.test["learned_score"], atol=1e-6
    )
    tracked = log_training(result, plots=False, force=True)
    assert tracked.model_version == 1
    night = score(data, "2026-03-02", model=tracked.export_path)
    assert night.scores["mql_probability"].between(0, 1).all()


def test_disjoint_fit_rules_give_every_lead_the_same_points():
    from leadml.modeling.points_file import disjoint
    from leadml.modeling.points_model import PointsClassifier

    rules = [
        {"name": "a", "attribute": "seniority", "in": ["vp", "c_level", "director"], "points": 5},
        {"name": "b", "attribute": "seniority", "in": ["vp", "c_level"], "points": 9},
        {"name": "c", "attribute": "seniority", "in": ["student"], "points": -20},
        {"name": "d", "attribute": "employee_count", "range": {"from": 50}, "points": 4},
        {"name": "e", "attribute": "employee_count", "range": {"from": 200}, "points": 6},
        {"name": "f", "attribute": "employee_count", "range": {"below": 10}, "points": -7},
    ]  # fmt: skip
    rng = np.random.default_rng(0)
    X = pd.DataFrame({
        "seniority": rng.choice(["vp", "c_level", "director", "student", "manager", None], 500),
        "employee_count": rng.choice([1, 9, 10, 49, 50, 199, 200, 999, 1000, 5000, np.nan], 500),
    })  # fmt: skip
    rewritten = disjoint(rules)
    assert len(rewritten) == len(rules) and {r["name"] for r in rewritten}.isdisjoint("abcdef")
    for attribute in ("seniority", "employee_count"):
        # Per attribute, the rewritten rules never overlap.
        fired = sum(
            PointsClassifier({"fit": {"rules": [r | {"points": 1}]}}).points(X) != 0
            for r in rewritten
            if r["attribute"] == attribute
        )
        assert fired.max() <= 1
    before = PointsClassifier({"fit": {"rules": rules}}).points(X)
    after = PointsClassifier({"fit": {"rules": rewritten}}).points(X)
    np.testing.assert_array_equal(before, after)
    # Where disjoint rules would be more rules, the rules stay as they were.
    crossing = [rules[3], rules[4] | {"range": {"from": 200, "below": 1000}}, rules[5]]
    assert disjoint(crossing) == crossing
    # Values that read alike once made a name keep two names: one file holds both rules.
    alike = [{"name": "x", "attribute": "industry", "in": ["a b", "a-b"], "points": 3},
             {"name": "y", "attribute": "industry", "in": ["a b"], "points": 2}]  # fmt: skip
    assert [r["name"] for r in disjoint(alike)] == ["industry_a_b", "industry_a_b_2"]


def test_inactivity_from_the_features_is_the_engines(sample_data):
    """A points table's inactivity rules read the feature days_since_last_action: the same
    points as the rule engine's, for quiet leads, active ones and leads never engaged."""
    from leadml.features import build_features
    from leadml.modeling.points_candidates import candidate_rules
    from leadml.modeling.points_model import PointsClassifier

    spine = pd.concat(open_leads(sample_data, d) for d in ("2026-01-05", "2026-03-02"))
    candidates = candidate_rules(sample_data, spine.assign(label=0))
    quiet = [r | {"points": -(i + 1)} for i, r in enumerate(candidates.values())
             if "inactive_days" in r]  # fmt: skip
    assert len(quiet) >= 4
    mapping = {"engagement": {"rules": quiet}}
    rules = load_rules(mapping | {"grades": {"fit": {"a": {}}, "engagement": {"1": {}}},
                                  "mql": {"threshold": 0}})  # fmt: skip
    engine = rule_scores(sample_data, spine, rules)
    features = engine[KEYS].merge(build_features(sample_data, spine), on=KEYS)
    stage_of = sample_data.settings.data.buying_stage_lookup()
    from_features = PointsClassifier(mapping, stage_of).points(features)
    np.testing.assert_allclose(from_features, engine["rule_score"], atol=1e-9)
    # Every kind of lead is there: quiet ones, active ones and ones never engaged.
    engaged = features["days_since_last_action"].notna().to_numpy()
    assert (engine["rule_score"] < 0).any() and ((engine["rule_score"] == 0) & engaged).any()
    assert not engaged.all()


def test_the_tuning_scores_kept_are_the_engines_scores_of_the_learned_file(small, sample_data):
    """train maps the learned score to a probability from these, instead of scoring the window
    again: they must be what `leadml rules --rules learned.yaml` gives on the same rows."""
    kept = small.tuning_scores
    assert len(kept) > 1_000 and kept["rule_score"].nunique() > 5
    engine = rule_scores(sample_data, kept[KEYS], small.rules, explain=False)
    merged = kept.merge(engine[[*KEYS, "rule_score"]], on=KEYS, validate="1:1")
    assert len(merged) == len(kept)
    np.testing.assert_array_equal(merged["rule_score_x"], merged["rule_score_y"])


# Values from the data, whatever they hold, are written so they read back as themselves.


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.floats(allow_nan=False, allow_infinity=False), st.integers(),
                 st.booleans(), st.lists(st.text(), max_size=4)))  # fmt: skip
def test_any_value_the_learned_file_writes_reads_back_as_itself(value):
    assert yaml.safe_load(f"key: {_value(value)}")["key"] == value


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(), min_size=1, max_size=4))
def test_any_parts_make_a_valid_rule_name(parts):
    assert check_name(rule_name(*parts))


def test_a_history_written_in_other_scripts_learns_a_file_that_keeps_its_values(sample_history):
    from conftest import FAST_SETTINGS
    from leadml import Settings, load_data
    from leadml.modeling.points_candidates import candidate_rules

    tables = {name: frame.copy() for name, frame in sample_history.tables().items()}
    accounts = tables["accounts"]
    industries = accounts["industry"].value_counts().index  # the most common first
    names = {
        v: f"業種{'一二三四五六七八九十'[i % 10] * (1 + i // 10)} 🚀"
        for i, v in enumerate(industries)
    }
    names[industries[0]], names[industries[1]] = "IT サービス", "IT ソフト"  # both name as "it"
    accounts["industry"] = accounts["industry"].map(names)
    data = load_data(tables, Settings.model_validate(FAST_SETTINGS))
    # Every industry common enough is a candidate of its own: named by a digest of its text, or
    # numbered when two read alike once made a name.
    pairs = windowed_pairs(data)
    candidates = candidate_rules(data, pairs[pairs["window"] == "train"])
    single = {r["in"][0] for r in candidates.values()
              if r.get("attribute") == "industry" and len(r["in"]) == 1}  # fmt: skip
    assert len(single) >= 5 and single <= {v.lower() for v in names.values()}
    assert {"it サービス", "it ソフト"} <= single
    # The file written reads back as the table learned, the values as they were.
    learned = learn_points(data, max_rules=15)
    assert load_rules(yaml.safe_load(learned.text), data.settings) == learned.rules
    written = [v for r in learned.rules.fit.rules if r.attribute == "industry" for v in r.in_]
    assert written and all(f'"{v}"' in learned.text for v in written)


def test_scoring_every_candidate_warns_of_nothing(sample_data):
    """The engine scores ~250 candidate rules at once without pandas' fragmentation warning,
    which `leadml rules learn` printed dozens of times on a 20,000-lead history."""
    import warnings

    from leadml.modeling.points_candidates import candidate_rules, firing_matrix

    pairs = windowed_pairs(sample_data)
    train = pairs[pairs["window"] == "train"]
    candidates = candidate_rules(sample_data, train)
    night = train[train["as_of"] == train["as_of"].max()]  # one instant: the compiled pass
    assert len(candidates) > 100
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.PerformanceWarning)
        X, _ = firing_matrix(sample_data, night, candidates)
    assert X.shape == (len(night), len(candidates)) and X.nnz


def test_an_event_type_named_like_a_buying_stage_keeps_its_own_candidates(sample_dir):
    from leadml import Settings, load_data
    from leadml.modeling.points_candidates import candidate_rules

    event_types = Settings().model_dump(mode="json")["data"]["event_types"]
    event_types["activity"] = {"stage": "consideration"}  # a CRM's own "activity" events
    data = load_data(sample_dir, Settings.model_validate({"data": {"event_types": event_types}}))
    pairs = windowed_pairs(data)
    candidates = candidate_rules(data, pairs[pairs["window"] == "train"])
    by_what = {n: r.get("event_type") or r.get("buying_stage") for n, r in candidates.items()}
    assert by_what["activity_any_7d"] == ["activity"]  # the event type, then the stages
    assert "consideration" in by_what["activity_any_7d_2"]
