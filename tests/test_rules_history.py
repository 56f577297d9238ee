"""MQL history: which leads the rules would have made MQLs in a period, and exactly when."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadml import rule_mql_history, rule_scores
from leadml.rules import load_rules
from rules_helpers import DAY, T0, make_data, make_rules, spine

HOUR = pd.Timedelta(hours=1)
START, END = T0 + 10 * DAY, T0 + 60 * DAY

FIT = [
    {"name": "vp", "attribute": "seniority", "in": ["vp"], "points": 20},
    {"name": "referral", "attribute": "lead_source", "in": ["referral"], "points": 35},
]
HAND_RAISE = {"name": "demo", "event_type": "demo_request", "points": 40,
              "decay": {"lifespan_days": 10}}  # fmt: skip
RULES = make_rules(fit=FIT, engagement=[HAND_RAISE], threshold=50)


def vp(lead_id, **extra):
    return {"lead_id": lead_id, "job_title": "VP Sales", **extra}


@pytest.fixture(scope="module")
def history_data():
    e1, e2, e3 = T0 + 15 * DAY + 10 * HOUR, T0 + 16 * DAY, T0 + 40 * DAY
    return make_data(
        [vp("L1"), vp("L2"), vp("L3", created_at=T0 + 20 * DAY, lead_source="referral"), vp("L4")],
        events=[
            ("L1", e1, "demo_request"), ("L1", e2, "demo_request"), ("L1", e3, "demo_request"),
            ("L1", T0 + 41 * DAY, "page_view"),
            ("L2", START - 12 * HOUR, "demo_request"), ("L2", T0 + 30 * DAY, "demo_request"),
            ("L4", T0 + 20 * DAY, "demo_request"),
            ("L1", END, "demo_request"),  # at the end of the period: outside it
        ],
        stages=[("L4", "sql", T0 + 12 * DAY)],
    )  # fmt: skip


def test_crossings_at_events_creation_and_again_after_fading(history_data):
    history = rule_mql_history(history_data, START, END, RULES)
    assert history[["lead_id", "crossed_at", "trigger", "crossing"]].values.tolist() == [
        ["L1", T0 + 15 * DAY + 10 * HOUR, "event", 1],  # 20 + 40 >= 50
        # L1's second demo a day later finds it still above (20 + 36): not a crossing.
        ["L3", T0 + 20 * DAY, "created", 1],  # fit alone: 20 + 35
        # L2 was above at START (20 + 38) and faded below: its next demo crosses again.
        ["L2", T0 + 30 * DAY, "event", 1],
        ["L1", T0 + 40 * DAY, "event", 2],  # both earlier demos have faded to nothing
    ]
    assert history["rule_score"].tolist() == pytest.approx([60, 55, 60, 60])
    assert history["rule_grade"].tolist() == ["C2", "B4", "C2", "C2"]


def test_the_score_at_a_crossing_is_the_score_just_after_it(history_data):
    history = rule_mql_history(history_data, START, END, RULES)
    pairs = spine(*zip(history["lead_id"], history["crossed_at"] + pd.Timedelta(microseconds=1),
                       strict=True))  # fmt: skip
    scores = rule_scores(history_data, pairs, RULES).sort_values("as_of")
    assert scores["rule_score"].tolist() == pytest.approx(history["rule_score"].tolist())
    assert scores["rule_mql"].all()
    before = rule_scores(history_data, pairs.assign(as_of=pairs["as_of"] - pd.Timedelta(
        microseconds=1)), RULES)  # fmt: skip
    assert not before["rule_mql"].any()


def test_closed_leads_are_left_out_unless_asked(history_data):
    assert "L4" not in set(rule_mql_history(history_data, START, END, RULES)["lead_id"])
    every = rule_mql_history(history_data, START, END, RULES, open_only=False)
    assert every.loc[every["lead_id"] == "L4", "crossed_at"].tolist() == [T0 + 20 * DAY]


def test_a_score_rising_with_time_alone_is_found_at_the_next_midnight():
    unsubscribed = {"name": "unsub", "event_type": "unsubscribe", "points": -30,
                    "window_days": 10}  # fmt: skip
    rules = make_rules(fit=FIT, engagement=[HAND_RAISE, unsubscribed], threshold=50)
    assert load_rules(rules).rises_without_events
    # 55 fit points, minus 30 until the unsubscribe is more than 10 days old (T0 + 15.5 days).
    data = make_data(
        [vp("L5", lead_source="referral")], events=[("L5", T0 + 5 * DAY + 12 * HOUR, "unsubscribe")]
    )
    history = rule_mql_history(data, START, END, rules)
    assert history[["lead_id", "crossed_at", "trigger"]].values.tolist() == [
        ["L5", T0 + 16 * DAY, "time"]
    ]


def test_weekly_counts_and_an_empty_period(history_data):
    history = rule_mql_history(history_data, START, END, RULES)
    first = history[history["crossing"] == 1]
    weekly = first.set_index("crossed_at").resample("W-MON", label="left", closed="left").size()
    assert weekly.sum() == 3
    empty = rule_mql_history(history_data, T0 + 100 * DAY, T0 + 101 * DAY, RULES)
    assert empty.empty and "crossed_at" in empty.columns
    with pytest.raises(ValueError, match="must be after"):
        rule_mql_history(history_data, END, START, RULES)


def test_a_score_held_at_caps_on_the_threshold_does_not_flicker():
    """30 fit points + two groups capped at 20 and 60 = exactly the threshold while both groups
    stay above their caps: a capped sum is exact on paper but not in floating point, and
    without rounding this lead "crossed" about a hundred times."""
    rng = np.random.default_rng(1)
    types = ["page_view", "blog_view", "email_open", "ad_click", "email_click",
             "content_download", "case_study_view", "product_page_view"]  # fmt: skip
    engagement = [
        {"name": f"r{i}", "event_type": t, "points": round(float(rng.uniform(1, 12)), 1),
         "decay": {"half_life_days": round(float(rng.uniform(3, 40)), 1)},
         "group": "a" if i < 4 else "c"}
        for i, t in enumerate(types)
    ]  # fmt: skip
    fit = [*FIT[:1], {"name": "na", "attribute": "region", "in": ["north_america"], "points": 10}]
    rules = make_rules(fit=fit, engagement=engagement, groups={"a": {"cap": 20}, "c": {"cap": 60}},
                       threshold=110)  # fmt: skip
    times = [START - 5 * DAY + k * pd.Timedelta(minutes=float(rng.uniform(20, 300)))
             for k in range(300)]  # fmt: skip
    data = make_data([vp("L1")], events=[("L1", t, types[rng.integers(0, 8)]) for t in times])
    assert rule_mql_history(data, START, END, rules).empty
