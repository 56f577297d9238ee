"""The leakage guard: each kind of leak is flagged with its reason, honest columns are not, and
the event path runs it on the training window (passthrough columns get every check)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadml import Settings, generate_history
from leadml.config import LeakageSettings
from leadml.errors import DataError
from leadml.modeling.leakage import check_leakage, matching_name
from leadml.modeling.training import train

GUARD = LeakageSettings()


def leads(n: int = 1_000, rate: float = 0.2, seed: int = 0):
    """An honest frame (a strong signal, a weak one, a segment that never converts) and y."""
    rng = np.random.default_rng(seed)
    student = rng.random(n) < 0.25
    visits = rng.poisson(3, n).astype(float)
    logit = np.log(rate / (1 - rate)) + 0.5 * (visits - 3) - 8 * student
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame(
        {
            "visits": visits,
            "seconds_on_site": rng.integers(0, 10_000, n).astype(float),
            "occupation": np.where(student, "Student", rng.choice(["Employed", "Unemployed"], n)),
            "opted_in": rng.random(n) < 0.5,
        }
    )
    return frame, y, rng


def checks(report, column: str) -> set[str]:
    return {f.check for f in report.reasons(column)}


def test_honest_columns_pass_even_a_segment_that_never_converts():
    frame, y, _ = leads()
    report = check_leakage(frame, y, GUARD)
    assert report.flagged == [], report.format()
    assert report.columns.set_index("column").loc["visits", "single_column_auc"] > 0.6
    assert "0 of 4 columns flagged" in report.format()


def test_a_column_that_predicts_the_target_alone_is_flagged_with_its_auc():
    frame, y, rng = leads()
    frame["rep_verdict"] = np.where(y == 1, "go", "no go")
    frame.loc[rng.random(len(y)) < 0.02, "rep_verdict"] = "go"
    report = check_leakage(frame, y, GUARD)
    assert report.excluded == ["rep_verdict"]
    (finding,) = [f for f in report.reasons("rep_verdict") if "ROC AUC" in f.reason]
    assert finding.check == "single_column"
    auc = report.columns.set_index("column").loc["rep_verdict", "single_column_auc"]
    assert auc > 0.95 and f"{auc:.3f}" in finding.reason


def test_values_that_almost_always_convert_are_flagged_even_when_the_rest_is_noise():
    frame, y, rng = leads()
    # "Closed by partner" marks 60% of the conversions; the other values are uninformative.
    closed = (y == 1) & (rng.random(len(y)) < 0.6)
    frame["outcome_note"] = np.where(closed, "Closed by partner", rng.choice(["a", "b"], len(y)))
    report = check_leakage(frame, y, GUARD.model_copy(update={"post_outcome_names": ()}))
    assert report.excluded == ["outcome_note"]
    reason = report.reasons("outcome_note")[0].reason
    assert "of the converted leads have values that are converted at least 95%" in reason
    assert "'Closed by partner'" in reason


def test_a_column_filled_in_almost_only_for_one_class_is_flagged():
    frame, y, rng = leads()
    amount = rng.lognormal(8, 1, len(y))
    frame["deal_amount"] = np.where((y == 1) & (rng.random(len(y)) < 0.5), amount, np.nan)
    frame["lost_reason"] = np.where(y == 0, rng.choice(["price", "timing"], len(y)), None)
    frame.loc[rng.random(len(y)) < 0.3, "lost_reason"] = None
    report = check_leakage(frame, y, GUARD.model_copy(update={"post_outcome_names": ()}))
    assert set(report.excluded) == {"deal_amount", "lost_reason"}
    assert checks(report, "deal_amount") == {"presence"}
    reason = report.reasons("deal_amount")[0].reason
    assert reason.startswith("filled in for") and "of converted leads but 0.0% of the others" in (
        reason
    )


def test_presence_is_not_judged_on_a_handful_of_rows():
    frame, y, _ = leads()
    rare = np.full(len(y), np.nan)
    rare[np.flatnonzero(y == 0)[:15]] = 1.0  # 15 rows, all non-converted: could be chance
    frame["webinar_score"] = rare
    assert check_leakage(frame, y, GUARD).flagged == []


def test_identifiers_are_flagged_but_not_measurements():
    frame, y, rng = leads()
    frame["Prospect ID"] = [f"P-{i:06d}" for i in rng.permutation(len(y))]
    frame["Lead Number"] = 600_000 + rng.permutation(len(y))
    frame["revenue"] = rng.lognormal(10, 1, len(y))  # all distinct, but a measurement
    report = check_leakage(frame, y, GUARD)
    assert set(report.excluded) == {"Prospect ID", "Lead Number"}
    assert checks(report, "Prospect ID") == {"identifier"}
    assert "100% of its present values are distinct" in report.reasons("Lead Number")[0].reason


@pytest.mark.parametrize(
    ("name", "word"),
    [
        ("Lead Status", "status"),
        ("lifecycleStage", "stage"),
        ("Tags", "tag"),
        ("lead_quality", "quality"),
        ("Closed Date", "closed"),
        ("deal_won_at", "won"),
        ("Lost Reason", "lost"),
        ("Call Duration (s)", "duration"),
        ("Last Notable Activity", "last"),
        ("Visits", None),
        ("Stagecoach route", None),
        ("Lead Source", None),
    ],
)
def test_post_outcome_names_match_whole_words_in_any_spelling(name, word):
    assert matching_name(name, GUARD.post_outcome_names) == word


def test_a_post_outcome_name_is_flagged_even_without_a_signal():
    frame, y, rng = leads()
    frame["Lead Stage"] = rng.choice(["new", "working"], len(y))
    report = check_leakage(frame, y, GUARD)
    assert report.excluded == ["Lead Stage"] and checks(report, "Lead Stage") == {"name"}
    assert "'stage'" in report.reasons("Lead Stage")[0].reason
    assert "leakage.post_outcome_names" in report.reasons("Lead Stage")[0].reason


def test_allowed_columns_are_kept_and_the_report_says_so():
    frame, y, rng = leads()
    frame["Lead Stage"] = rng.choice(["new", "working"], len(y))
    frame["Tags"] = np.where(y == 1, "won", "lost")
    report = check_leakage(frame, y, GUARD, allow=["Lead Stage"])
    assert report.flagged == ["Lead Stage", "Tags"]
    assert report.excluded == ["Tags"]
    text = report.format()
    assert "Lead Stage: KEPT (allowed)" in text and "Tags: excluded" in text
    assert "1 kept on purpose" in text
    table = report.to_frame()
    assert set(table.loc[table["column"] == "Lead Stage", "action"]) == {"kept (allowed)"}
    assert report.to_dict()["allowed"] == ["Lead Stage"]
    assert "| Tags | excluded |" in report.markdown()
    # Allowed in the settings works the same way.
    assert check_leakage(frame, y, GUARD.model_copy(update={"allow": ("Tags",)})).excluded == [
        "Lead Stage"
    ]


def test_allowing_a_column_that_is_not_there_is_an_error_naming_it():
    frame, y, _ = leads()
    with pytest.raises(DataError, match=r"--allow-column names column\(s\) .*\['Tagz'\]"):
        check_leakage(frame, y, GUARD, allow=["Tagz"])


def test_trusted_columns_get_only_the_single_column_check():
    frame, y, rng = leads()
    frame["days_since_last_event"] = np.where(rng.random(len(y)) < 0.5, 3.0, np.nan)
    frame["days_since_unsubscribe"] = np.where((y == 0) & (rng.random(len(y)) < 0.4), 5.0, np.nan)
    frame["current_stage"] = np.where(y == 1, "sql", "lead")  # a bug would look like this
    trusted = ["days_since_last_event", "days_since_unsubscribe", "current_stage"]
    report = check_leakage(frame, y, GUARD, trusted=trusted)
    assert report.excluded == ["current_stage"]
    assert checks(report, "current_stage") == {"single_column"}
    untrusted = check_leakage(frame, y, GUARD)
    assert set(untrusted.excluded) == set(trusted)


def test_identifiers_are_counted_per_lead_when_leads_repeat():
    rng = np.random.default_rng(1)
    lead = np.repeat(np.arange(300), 4)  # 4 snapshots per lead
    y = rng.integers(0, 2, len(lead))
    frame = pd.DataFrame({"crm_key": [f"K{i}" for i in lead], "visits": rng.poisson(2, len(lead))})
    assert check_leakage(frame, y, GUARD).excluded == []  # 25% distinct per row
    report = check_leakage(frame, y, GUARD, groups=lead)
    assert report.excluded == ["crm_key"]


@pytest.mark.slow
def test_training_on_the_event_history_leaves_out_a_leaking_passthrough_column():
    history = generate_history(n_leads=400, seed=3)
    tables = history.tables()
    stages = tables["stages"]
    reached = set(stages.loc[stages["stage"].isin(["sql", "opportunity", "customer"]), "lead_id"])
    tables["leads"]["crm_status"] = np.where(
        tables["leads"]["lead_id"].isin(reached), "Qualified", "Open"
    )
    owners = np.random.default_rng(0).choice(["ann", "bob"], len(tables["leads"]))
    tables["leads"]["crm_owner"] = owners
    settings = Settings.model_validate(
        {
            "features": {"passthrough": {"leads": ["crm_status", "crm_owner"]}},
            "trainset": {"cadence_days": 42},
            # Stop right after the guard: a cold start keeps the test quick.
            "model": {"min_training_positives": 10**6},
        }
    )
    result = train(tables, settings)
    assert result.leakage.excluded == ["lead_crm_status"]
    assert checks(result.leakage, "lead_crm_status") >= {"name", "single_column"}
    assert "lead_crm_status" not in result.feature_names
    assert "lead_crm_owner" in result.feature_names
    # leadml's own features keep names like current_stage and days_since_last_event.
    assert {"current_stage", "days_since_last_event"} <= set(result.feature_names)
    assert result.leakage.rows == int(result.windows.loc["train", "rows"])
    assert "in the training window" in result.cold_start
    assert result.cold_start.endswith("the rule score remains the answer")
