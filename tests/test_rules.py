"""The rule engine, by hand-computed examples: one test per rule kind, cap, decay form and band."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadml import fired_rules, load_rules, rule_scores, rule_scores_as_of
from leadml.rules import DEFAULT_RULES, SCORE_COLUMNS
from rules_helpers import AS_OF, DAY, T0, ago, make_data, make_rules, spine


def score(data, rules, as_of=AS_OF, lead="L1", **kwargs) -> pd.Series:
    frame = rule_scores(data, spine((lead, as_of)), rules, **kwargs)
    assert len(frame) == 1
    return frame.iloc[0]


def fit_rule(name, attribute, points, **condition):
    return {"name": name, "attribute": attribute, "points": points, **condition}


def eng_rule(name, points, event_type="page_view", **extra):
    return {"name": name, "event_type": event_type, "points": points, **extra}


# --- fit rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lead", "rule", "points"),
    [
        (
            {"job_title": "VP Marketing"},
            fit_rule("r", "seniority", 25, **{"in": ["c_level", "vp"]}),
            25,
        ),
        ({"job_title": "Marketing Manager"}, fit_rule("r", "seniority", 25, **{"in": ["vp"]}), 0),
        ({"job_title": "VP Marketing"}, fit_rule("r", "department", 15, **{"in": "MARKETING"}), 15),
        ({}, fit_rule("r", "industry", 10, **{"in": ["software"]}), 10),  # account says "Software"
        ({}, fit_rule("r", "country", 5, **{"in": ["us"]}), 5),
        ({"country": "DE"}, fit_rule("r", "country", 5, **{"in": ["US"]}), 0),  # lead's own wins
        ({}, fit_rule("r", "region", 7, **{"in": ["north_america"]}), 7),
        ({}, fit_rule("r", "company_size_band", 8, **{"in": ["201-1000"]}), 8),
        ({}, fit_rule("r", "revenue_band", 9, **{"in": ["10M-50M"]}), 9),
        ({"lead_source": "Referral"}, fit_rule("r", "lead_source", 15, **{"in": ["referral"]}), 15),
        ({}, fit_rule("r", "employee_count", 12, range={"from": 250}), 12),  # from is included
        ({}, fit_rule("r", "employee_count", 12, range={"below": 250}), 0),  # below is not
        ({}, fit_rule("r", "employee_count", 12, range={"from": 200, "below": 251}), 12),
        ({}, fit_rule("r", "annual_revenue", 6, range={"from": 5e7}), 0),
        ({"account_id": None}, fit_rule("r", "employee_count", 12, range={"below": 1e9}), 0),
        ({"account_id": None}, fit_rule("r", "has_account", -5, is_=False), -5),
        ({}, fit_rule("r", "lead_age_days", 3, range={"from": 151, "below": 152}), 3),
    ],
)
def test_fit_rule_conditions(lead, rule, points):
    if "is_" in rule:
        rule["is"] = rule.pop("is_")
    data = make_data([{"lead_id": "L1", **lead}])
    row = score(data, make_rules(fit=[rule]))
    assert row["rule_fit_score"] == points
    assert row["points__r"] == points
    assert row["rule_engagement_score"] == 0


def test_negative_fit_rules_for_students_competitors_and_free_mail():
    from leadml import Settings
    from leadml.config import DomainSettings

    rules = make_rules(fit=[
        fit_rule("vp", "seniority", 25, **{"in": ["vp"]}),
        fit_rule("student", "is_student", -50, **{"is": True}),
        fit_rule("competitor", "is_competitor", -100, **{"is": True}),
        fit_rule("free_mail", "is_free_mail", -15, **{"is": True}),
    ])  # fmt: skip
    data = make_data([
        {"lead_id": "L1", "job_title": "VP Sales", "email": "a@gmail.com"},
        {"lead_id": "L2", "job_title": "VP Sales", "email": "b@cs.uni.edu"},
        {"lead_id": "L3", "job_title": "VP Sales", "email": "c@rival.io"},
        {"lead_id": "L4", "job_title": "VP Sales", "email": "d@acme.com"},
    ], settings=Settings(domains=DomainSettings(competitor=("rival.io",))))  # fmt: skip
    frame = rule_scores(data, spine(*[(f"L{i}", AS_OF) for i in range(1, 5)]), rules)
    assert frame["rule_fit_score"].tolist() == [10, -25, -75, 25]
    assert "email" not in frame.columns


# --- engagement rules -----------------------------------------------------------------------------


def test_points_per_event_of_a_type_and_of_a_buying_stage():
    data = make_data(events=[
        ("L1", ago(1), "page_view"), ("L1", ago(2), "page_view"), ("L1", ago(3), "Page_View "),
        ("L1", ago(4), "demo_request"), ("L1", ago(5), "trial_signup"),
        ("L1", ago(6), "blog_view"),
    ])  # fmt: skip
    rules = make_rules(engagement=[
        eng_rule("views", 2, "page_view"),
        {"name": "hand_raise", "buying_stage": ["decision"], "points": 30},
    ])  # fmt: skip
    row = score(data, rules)
    assert row["points__views"] == 6
    assert row["points__hand_raise"] == 60
    assert row["rule_engagement_score"] == 66
    assert row["rule_score"] == 66


def test_negative_engagement_rules_for_unsubscribes_and_bounces():
    data = make_data(
        events=[
            ("L1", ago(10), "unsubscribe"),
            ("L1", ago(9), "unsubscribe"),
            ("L1", ago(8), "email_bounce"),
            ("L1", ago(1), "pricing_page_view"),
        ]
    )
    rules = make_rules(engagement=[
        eng_rule("pricing", 10, "pricing_page_view"),
        eng_rule("unsubscribed", -30, "unsubscribe", cap=30),
        eng_rule("bounced", -40, "email_bounce"),
    ])  # fmt: skip
    row = score(data, rules)
    assert (row["points__unsubscribed"], row["points__bounced"]) == (-30, -40)
    assert row["rule_engagement_score"] == 10 - 30 - 40


def test_events_at_or_after_as_of_do_not_count():
    data = make_data(
        events=[
            ("L1", AS_OF, "page_view"),
            ("L1", AS_OF + DAY, "page_view"),
            ("L1", AS_OF - pd.Timedelta(microseconds=1), "page_view"),
        ]
    )
    assert score(data, make_rules(engagement=[eng_rule("views", 5)]))["points__views"] == 5


def test_window_keeps_events_of_the_last_n_days_boundary_included():
    data = make_data(
        events=[
            ("L1", ago(10), "page_view"),
            ("L1", ago(30), "page_view"),
            ("L1", ago(30.001), "page_view"),
        ]
    )
    row = score(data, make_rules(engagement=[eng_rule("views", 5, window_days=30)]))
    assert row["points__views"] == 10


def test_inactivity_takes_points_from_a_lead_gone_quiet_but_not_from_one_never_engaged():
    """'No page view in 30 days: -10': the latest view 30 days old is inside the window (as a
    window counts it), one a moment older is not; a lead with no view at all is not inactive,
    and other event types do not count. The same tonight (one instant: the compiled pass) and
    over several instants (the SQL plan)."""
    quiet = make_rules(engagement=[eng_rule("quiet", -10, inactive_days=30)])
    leads = ("L1", "L2", "L3", "L4")
    data = make_data([{"lead_id": lead} for lead in leads], events=[
        ("L1", ago(30), "page_view"), ("L1", ago(90), "page_view"),
        ("L2", ago(30.001), "page_view"), ("L2", ago(60), "page_view"),
        ("L4", ago(1), "demo_request"), ("L4", ago(45), "page_view"),
    ])  # fmt: skip
    expected = [0, -10, 0, -10]
    tonight = spine(*((lead, AS_OF) for lead in leads))
    assert rule_scores(data, tonight, quiet)["points__quiet"].tolist() == expected
    several = rule_scores(data, pd.concat([tonight, spine(("L1", AS_OF - DAY))]), quiet)
    assert several.loc[several["as_of"] == AS_OF, "points__quiet"].tolist() == expected


def test_a_type_counted_within_a_window_by_one_rule_and_always_by_another():
    """Events no rule counts are skipped before grouping; one rule's window must not hide an
    event from another rule counting the same type over all of the past."""
    data = make_data(
        events=[
            ("L1", ago(10), "page_view"),
            ("L1", ago(100), "page_view"),
            ("L1", ago(200), "blog_view"),
            ("L1", ago(5), "webinar_attended"),  # counted by no rule
        ]
    )
    rules = make_rules(engagement=[
        eng_rule("recent_views", 5, window_days=30),
        eng_rule("all_views", 1, "page_view"),
        eng_rule("blogs", 3, "blog_view", window_days=300),
    ])  # fmt: skip
    row = score(data, rules)
    assert (row["points__recent_views"], row["points__all_views"], row["points__blogs"]) == (
        5,
        2,
        3,
    )
    assert row["rule_engagement_score"] == 10


def test_per_rule_cap_limits_positive_and_negative_rules():
    data = make_data(
        events=[("L1", ago(d), "page_view") for d in range(1, 6)]
        + [("L1", ago(d), "unsubscribe") for d in range(1, 4)]
    )
    rules = make_rules(
        engagement=[eng_rule("views", 10, cap=25), eng_rule("unsub", -20, "unsubscribe", cap=30)]
    )
    row = score(data, rules)
    assert (row["points__views"], row["points__unsub"]) == (25, -30)
    assert row["rule_engagement_score"] == -5


def test_group_cap_applies_to_the_sum_and_shows_as_an_adjustment():
    data = make_data(
        events=[
            ("L1", ago(1), "page_view"),
            ("L1", ago(2), "blog_view"),
            ("L1", ago(3), "unsubscribe"),
            ("L1", ago(4), "email_bounce"),
        ]
    )
    rules = make_rules(
        engagement=[eng_rule("views", 15, group="web"),
                    eng_rule("blogs", 15, "blog_view", group="web"),
                    eng_rule("unsub", -30, "unsubscribe", group="bad"),
                    eng_rule("bounce", -30, "email_bounce", group="bad")],
        groups={"web": {"cap": 20}, "bad": {"cap": 40}},
    )  # fmt: skip
    row = score(data, rules)
    assert (row["points__views"], row["points__blogs"], row["cap__web"]) == (15, 15, -10)
    assert (row["points__unsub"], row["points__bounce"], row["cap__bad"]) == (-30, -30, 20)
    assert row["rule_engagement_score"] == 20 - 40


def test_fit_group_cap_and_section_caps():
    rules = make_rules(
        fit=[fit_rule("industry", "industry", 30, **{"in": ["software"]}, group="firmo"),
             fit_rule("size", "employee_count", 30, range={"from": 200}, group="firmo"),
             fit_rule("region", "region", 30, **{"in": ["north_america"]})],
        engagement=[eng_rule("views", 50)],
        groups={"firmo": {"cap": 40}}, fit_cap=60, engagement_cap=80,
    )  # fmt: skip
    data = make_data(events=[("L1", ago(1), "page_view"), ("L1", ago(2), "page_view")])
    row = score(data, rules)
    assert row["cap__firmo"] == -20  # 60 -> 40
    assert row["cap__fit"] == -10  # 40 + 30 = 70 -> 60
    assert row["rule_fit_score"] == 60
    assert (row["points__views"], row["cap__engagement"], row["rule_engagement_score"]) == (
        100, -20, 80)  # fmt: skip


def test_half_life_decay():
    data = make_data(events=[("L1", ago(10), "demo_request"), ("L1", ago(20), "demo_request")])
    rules = make_rules(
        engagement=[eng_rule("demo", 40, "demo_request", decay={"half_life_days": 10})]
    )
    assert score(data, rules)["points__demo"] == pytest.approx(40 * (0.5 + 0.25))


def test_linear_lifespan_decay():
    data = make_data(
        events=[
            ("L1", ago(10), "demo_request"),
            ("L1", ago(30), "demo_request"),
            ("L1", ago(50), "demo_request"),
        ]
    )
    rules = make_rules(
        engagement=[eng_rule("demo", 40, "demo_request", decay={"lifespan_days": 40})]
    )
    assert score(data, rules)["points__demo"] == pytest.approx(40 * (0.75 + 0.25 + 0))


def test_section_decay_is_the_default_and_a_rule_can_switch_it_off():
    data = make_data(events=[("L1", ago(7), "page_view"), ("L1", ago(7), "unsubscribe")])
    rules = make_rules(
        engagement=[eng_rule("views", 8), eng_rule("unsub", -8, "unsubscribe", decay="none")],
        decay={"half_life_days": 7},
    )
    row = score(data, rules)
    assert (row["points__views"], row["points__unsub"]) == (4, -8)


def test_decay_then_window_then_cap():
    data = make_data(events=[("L1", ago(d), "page_view") for d in (5, 10, 20, 40)])
    rules = make_rules(
        engagement=[eng_rule("views", 10, window_days=30, cap=12, decay={"lifespan_days": 20})]
    )
    # 10 * (0.75 + 0.5 + 0 + out of window) = 12.5, capped at 12
    assert score(data, rules)["points__views"] == 12


# --- grades and the threshold ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fit", "engagement", "grade", "mql"),
    [(60, 60, "A1", True), (59.5, 59.5, "B2", True), (40, 30, "B2", False), (20, 10, "C3", False),
     (19, 9, "D4", False), (-50, 0, "D4", False), (100, 0, "A4", True), (0, 100, "D1", True)],
)  # fmt: skip
def test_grades_from_bands_and_the_mql_threshold(fit, engagement, grade, mql):
    data = make_data([{"lead_id": "L1", "job_title": "VP"}], events=[("L1", ago(1), "page_view")])
    rules = make_rules(
        fit=[fit_rule("f", "seniority", fit, **{"in": ["vp"]})],
        engagement=[eng_rule("e", engagement)],
        threshold=100,
    )
    row = score(data, rules)
    assert (row["rule_score"], row["rule_grade"], bool(row["rule_mql"])) == (
        fit + engagement, grade, mql)  # fmt: skip


# --- the spine, explanations and the default file -------------------------------------------------


def test_pairs_before_the_lead_existed_are_dropped_and_each_pair_sees_its_own_past():
    data = make_data(
        [{"lead_id": "L1"}, {"lead_id": "L2", "created_at": AS_OF}],
        events=[("L1", T0 + DAY, "page_view"), ("L1", T0 + 3 * DAY, "page_view")],
    )
    pairs = spine(("L1", T0 + 2 * DAY), ("L1", T0 + 4 * DAY), ("L2", AS_OF), ("L2", AS_OF + DAY))
    frame = rule_scores(data, pairs, make_rules(engagement=[eng_rule("views", 1)]))
    assert frame[["lead_id", "rule_score"]].values.tolist() == [["L1", 1], ["L1", 2], ["L2", 0]]
    assert list(frame.columns[: 2 + len(SCORE_COLUMNS)]) == ["lead_id", "as_of", *SCORE_COLUMNS]


def test_explanation_columns_add_up_and_fired_rules_lists_them():
    rules = make_rules(
        fit=[fit_rule("vp", "seniority", 25, **{"in": ["vp"]}),
             fit_rule("free", "is_free_mail", -15, **{"is": True})],
        engagement=[eng_rule("views", 15, group="web"),
                    eng_rule("blogs", 15, "blog_view", group="web")],
        groups={"web": {"cap": 20}},
    )  # fmt: skip
    data = make_data(
        [{"lead_id": "L1", "job_title": "VP IT", "email": "x@gmail.com"}],
        events=[("L1", ago(1), "page_view"), ("L1", ago(2), "blog_view")],
    )
    frame = rule_scores(data, spine(("L1", AS_OF)), rules)
    parts = frame.filter(regex="^(points|cap)__")
    assert parts.sum(axis=1).iloc[0] == frame["rule_score"].iloc[0] == 30
    fired = fired_rules(frame, rules)
    assert fired[["kind", "rule", "points"]].values.tolist() == [
        ["fit", "vp", 25], ["fit", "free", -15], ["engagement", "views", 15],
        ["engagement", "blogs", 15], ["engagement", "cap:web", -10],
    ]  # fmt: skip
    assert rule_scores(data, spine(("L1", AS_OF)), rules, explain=False).shape[1] == 7


def test_default_rules_file_scores_the_open_leads(tiny_tables):
    from leadml import load_data

    data = load_data(tiny_tables, now="2026-01-01")
    frame = rule_scores_as_of(data, "2025-03-01", DEFAULT_RULES)
    # L1 reached sql on 2025-02-05, so only L2 and L3 are open.
    assert frame["lead_id"].tolist() == ["L2", "L3"]
    assert frame[list(SCORE_COLUMNS)].notna().all().all()
    assert frame["rule_grade"].str.fullmatch(r"[A-D][1-4]").all()
    student = frame.set_index("lead_id").loc["L3"]
    assert student["points__student"] == -50 and student["points__student_title"] == -30
    assert len(load_rules().all_rules()) == frame.columns.str.startswith("points__").sum()


def test_one_instant_at_a_time_or_all_at_once_gives_the_same_scores(tiny_tables):
    """Each pair sees its own past, whichever other pairs share the query; one instant at a time
    takes the nightly plan (events aggregated per lead first), all at once the general one."""
    from leadml import load_data
    from leadml.data.asof import open_leads

    data = load_data(tiny_tables, now="2026-01-01")
    spine_all = open_leads(data, ["2025-01-20", "2025-02-10", "2025-03-01"])
    at_once = rule_scores(data, spine_all, DEFAULT_RULES)
    one_by_one = pd.concat(
        [rule_scores(data, pairs, DEFAULT_RULES) for _, pairs in spine_all.groupby("as_of")],
        ignore_index=True,
    )
    assert spine_all["as_of"].nunique() == 3 and len(at_once) == len(spine_all)
    assert at_once["rule_engagement_score"].gt(0).any()
    pd.testing.assert_frame_equal(at_once, one_by_one)


# --- the dangerous property -----------------------------------------------------------------------

_EVENT_TYPES = ["page_view", "pricing_page_view", "demo_request", "unsubscribe", "webinar_attended"]
_PROPERTY_RULES = make_rules(
    fit=[fit_rule("vp", "seniority", 20, **{"in": ["vp"]}),
         fit_rule("age", "lead_age_days", 5, range={"from": 30})],
    engagement=[
        eng_rule("views", 2, "page_view", window_days=20, group="web"),
        eng_rule("pricing", 10, "pricing_page_view", decay={"lifespan_days": 15}, group="web"),
        {"name": "hand", "buying_stage": "decision", "points": 50, "cap": 80},
        eng_rule("unsub", -30, "unsubscribe", decay="none"),
        eng_rule("webinar", 15, "webinar_attended"),
        {"name": "quiet", "buying_stage": ["awareness", "consideration"], "inactive_days": 15,
         "points": -12},
    ],
    groups={"web": {"cap": 25}}, decay={"half_life_days": 10}, threshold=60,
)  # fmt: skip


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    past=st.lists(st.tuples(st.integers(1, 60 * 24 * 60), st.sampled_from(_EVENT_TYPES)),
                  max_size=8),
    future=st.lists(st.tuples(st.integers(0, 60 * 24 * 60), st.sampled_from(_EVENT_TYPES)),
                    min_size=1, max_size=8),
)  # fmt: skip
def test_events_at_or_after_as_of_never_change_the_score(past, future):
    """Twin leads share their past; only the second has events at or after as_of (minute 0 is
    as_of itself). Their scores and every explanation column must be identical."""
    as_of = T0 + 80 * DAY
    before = [(lead, as_of - pd.Timedelta(minutes=m), t) for m, t in past for lead in ("L1", "L2")]
    after = [("L2", as_of + pd.Timedelta(minutes=m), t) for m, t in future]
    leads = [{"lead_id": lead, "job_title": "VP Sales"} for lead in ("L1", "L2")]
    data = make_data(leads, events=before + after)
    frame = rule_scores(data, spine(("L1", as_of), ("L2", as_of)), _PROPERTY_RULES)
    seen, everything = (frame.iloc[[i]].drop(columns="lead_id").reset_index(drop=True)
                        for i in (0, 1))  # fmt: skip
    pd.testing.assert_frame_equal(seen, everything)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(st.tuples(st.sampled_from(["L1", "L2", "L3"]),
                              st.integers(0, 40 * 24) | st.sampled_from([15 * 24, 20 * 24]),
                              st.sampled_from(_EVENT_TYPES)), max_size=12),
)  # fmt: skip
def test_the_compiled_nightly_pass_agrees_with_the_sql_plan(events):
    """One instant sums the engagement weights in a compiled pass, several in SQL: the same
    scores, window edges (events exactly 15 and 20 days old), decay forms and caps included."""
    as_of = T0 + 80 * DAY
    leads = [{"lead_id": lead, "job_title": "VP Sales"} for lead in ("L1", "L2", "L3")]
    data = make_data(leads, [(lead, as_of - pd.Timedelta(hours=h), t) for lead, h, t in events])
    tonight = spine(*((lead, as_of) for lead in ("L1", "L2", "L3")))
    compiled = rule_scores(data, tonight, _PROPERTY_RULES)
    in_sql = rule_scores(data, pd.concat([tonight, spine(("L1", as_of - DAY))]), _PROPERTY_RULES)
    in_sql = in_sql[in_sql["as_of"] == as_of].reset_index(drop=True)
    pd.testing.assert_frame_equal(compiled, in_sql, rtol=1e-9)
