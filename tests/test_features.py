"""Hand-computed features on tiny tables, one test per family, including the window edges."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from leadml import ConfigError, DataError, Settings, load_data, load_settings
from leadml.data.asof import first_window
from leadml.features import FEATURES, build_features, feature_catalogue, features_as_of

T = pd.Timestamp("2025-06-01", tz="UTC")
SECOND = pd.Timedelta(seconds=1)
DAY = pd.Timedelta(days=1)


def at(*offsets: pd.Timedelta) -> pd.Series:
    return pd.Series([T - o for o in offsets]).astype("datetime64[us, UTC]")


@pytest.fixture
def tables() -> dict[str, pd.DataFrame]:
    accounts = pd.DataFrame(
        {
            "account_id": ["A1", "A2"],
            "industry": ["Software", "education"],
            "employee_count": [250, 12],
            "annual_revenue": [40e6, 1.5e6],
            "country": ["US", "GB"],
            "tech_stack": ["hubspot", "none"],
        }
    )
    leads = pd.DataFrame(
        {
            "lead_id": ["L1", "L2", "L3", "L4", "L5"],
            "created_at": at(151 * DAY, 140 * DAY, 120 * DAY, 0 * DAY, 12 * DAY),
            "lead_source": ["paid_search", "referral", "organic", "webinar", "event"],
            "account_id": ["A1", "A1", "A2", "A1", "A1"],
            "job_title": ["VP Marketing", "Data Engineer", "Student", "CEO", "IT Manager"],
            "email": ["ann@acme.com", "bob@gmail.com", "cy@uni.edu", "d@acme.com", "e@acme.com"],
            "score_band": ["a", "b", "c", "d", "e"],
        }
    )
    events = pd.DataFrame(
        {
            "lead_id": ["L1"] * 9 + ["L2", "L5"],
            "occurred_at": at(
                0 * DAY,  # exactly at T: not seen
                SECOND,
                7 * DAY,  # exactly 7 days before T: inside the 7-day window
                30 * DAY,  # exactly 30 days before T: inside the 30-day window
                45 * DAY,
                45 * DAY - pd.Timedelta(hours=1),  # same UTC day as the one before
                90 * DAY,  # exactly 90 days: inside the 90-day window
                120 * DAY,
                90 * DAY + SECOND,  # just outside the 90-day window
                10 * DAY,
                2 * DAY,
            ),
            "event_type": [
                "page_view",
                " Demo_Request",
                "email_open",
                "email_click",
                "page_view",
                "page_view",
                "blog_view",
                "unsubscribe",
                "case_study_view",
                "webinar_attended",
                "contact_request",
            ],
            "content_id": [None, None, None, "C1", "C1", "C2", None, None, "C9", None, None],
        }
    )
    stages = pd.DataFrame(
        {
            "lead_id": ["L1", "L1", "L1", "L1", "L2", "L2", "L2", "L5"],
            "stage": ["lead", "mql", "sal", "sql", "lead", "mql", "sql", "mql"],
            "entered_at": at(
                151 * DAY, 50 * DAY, 40 * DAY, 0 * DAY, 140 * DAY, 30 * DAY, 20 * DAY, 0 * DAY
            ),
        }
    )
    return {"accounts": accounts, "leads": leads, "events": events, "stages": stages}


@pytest.fixture
def features(tables) -> pd.DataFrame:
    spine = pd.DataFrame({"lead_id": ["L1", "L2", "L3", "L4", "L5"], "as_of": [T] * 5})
    return build_features(tables, spine).set_index("lead_id")


def test_columns_dtypes_and_rows(features):
    assert list(features.columns) == ["as_of", *FEATURES]
    # L4 was created exactly at T: it did not exist yet, so it has no row.
    assert list(features.index) == ["L1", "L2", "L3", "L5"]
    kinds = {str(features[c].dtype) for c in FEATURES}
    assert kinds <= {"float32", "bool", "str"}
    assert features["events_7d"].dtype == np.float32
    assert "email" not in features.columns and not any("@" in str(v) for v in features.loc["L1"])


def test_engagement_counts_and_window_edges(features):
    l1 = features.loc["L1"]
    expected = {
        # the event at exactly T is excluded; the one exactly 7 days before is included
        "events_7d": 2, "decision_actions_7d": 1, "demo_request_7d": 1, "email_open_7d": 1,
        "awareness_actions_7d": 1, "page_view_7d": 0,
        # exactly 30 days before T is inside [T - 30d, T)
        "events_30d": 3, "email_click_30d": 1, "consideration_actions_30d": 1,
        # exactly 90 days before is inside, 90 days and one second is not
        "events_90d": 6, "page_view_90d": 2, "blog_view_90d": 1, "case_study_view_90d": 0,
        "active_days_7d": 2, "active_days_30d": 3, "active_days_90d": 5,
        "distinct_content_7d": 0, "distinct_content_30d": 1, "distinct_content_90d": 2,
        "events_total": 8, "decision_actions_total": 1, "negative_actions_total": 1,
        "negative_actions_90d": 0, "events_prev_30d": 2, "trend_30d": (3 - 2) / 5,
        "email_click_per_open_90d": 1.0, "unsubscribe_per_email_open_90d": 0.0,
    }  # fmt: skip
    for name, value in expected.items():
        assert l1[name] == pytest.approx(value), name
    assert l1["days_since_last_event"] == pytest.approx(1 / 86400, rel=1e-3)
    assert l1["days_since_first_event"] == pytest.approx(120)
    assert l1["days_since_last_decision_action"] == pytest.approx(1 / 86400, rel=1e-3)
    assert l1["days_since_last_negative_action"] == pytest.approx(120)
    assert l1["days_since_last_action"] == pytest.approx(1 / 86400, rel=1e-3)


def test_an_unsubscribe_or_a_bounce_is_an_event_but_not_an_action(tables):
    """Going quiet is measured in actions: a bounce yesterday does not make a lead quiet for
    ten days active again."""
    bounce = pd.DataFrame({"lead_id": ["L2"], "occurred_at": at(DAY),
                           "event_type": ["email_bounce"], "content_id": [None]})  # fmt: skip
    tables["events"] = pd.concat([tables["events"], bounce], ignore_index=True)
    frame = build_features(tables, pd.DataFrame({"lead_id": ["L2", "L3"], "as_of": [T] * 2}))
    l2, l3 = frame.set_index("lead_id").loc[["L2", "L3"]].to_dict("records")
    assert l2["days_since_last_event"] == pytest.approx(1)
    assert l2["days_since_last_action"] == pytest.approx(10)  # the webinar
    assert math.isnan(l3["days_since_last_action"])  # never engaged


def test_the_window_of_a_fetched_event_follows_the_sql_rule_to_the_microsecond():
    # first_window is in_window for events already in numpy: w days old exactly is inside.
    micro = pd.Timedelta(microseconds=1)
    ages = [micro, 7 * DAY, 7 * DAY + micro, 30 * DAY, 90 * DAY, 90 * DAY + micro]
    occurred_us = np.array([(T - a).value // 1000 for a in ages])
    assert first_window(occurred_us, T, [7, 30, 90]).tolist() == [0, 0, 1, 1, 2, 3]


def test_a_blank_text_value_is_missing_not_a_category(tables):
    """A CRM export writes '' or spaces for an unknown value: the attribute is missing (a
    lead's blank country falls back to its account's), not a category of its own that a
    learned rule could give points to."""
    tables["accounts"]["industry"] = ["   ", ""]
    tables["leads"]["lead_source"] = ["", " ", "organic", "webinar", "event"]
    tables["leads"]["country"] = ["", "  ", None, "DE", "fr "]
    spine = pd.DataFrame({"lead_id": ["L1", "L2", "L3", "L4", "L5"], "as_of": [T] * 5})
    frame = build_features(tables, spine).set_index("lead_id")
    assert frame["industry"].isna().all()
    # L4 is created at T: not yet a lead.
    assert frame["lead_source"].isna().tolist() == [True, True, False, False]
    assert frame["country"].tolist() == ["US", "US", "GB", "FR"]  # L1, L2: account A1's


def test_a_lead_without_events_gets_zero_counts_and_missing_recency(features):
    l3 = features.loc["L3"]
    assert l3["events_90d"] == 0 and l3["events_total"] == 0 and l3["trend_30d"] == 0
    assert math.isnan(l3["days_since_last_event"])
    assert math.isnan(l3["email_click_per_open_90d"])


def test_leads_without_any_account_get_no_buying_committee(tables):
    tables["leads"]["account_id"] = None
    frame = build_features(tables, pd.DataFrame({"lead_id": ["L1", "L2"], "as_of": [T] * 2}))
    assert frame["account_other_leads"].tolist() == [0, 0]
    assert frame["account_events_90d"].tolist() == [0, 0]


def test_lifecycle(features):
    l1, l3 = features.loc["L1"], features.loc["L3"]
    # L1's SQL at exactly T is not seen: at T it is still a sales-accepted lead.
    assert l1["current_stage"] == "sal" and l1["funnel_rank"] == 2
    assert l1["days_in_current_stage"] == pytest.approx(40)
    assert l1["days_since_mql"] == pytest.approx(50)
    assert l1["sales_accepted"] and not l1["sales_rejected"] and l1["stage_changes"] == 3
    assert l3["current_stage"] == "lead" and l3["funnel_rank"] == 0 and l3["stage_changes"] == 0
    assert math.isnan(l3["days_since_mql"])


def test_account_buying_committee(features):
    l1, l2, l3 = features.loc["L1"], features.loc["L2"], features.loc["L3"]
    # L1's peers at T: L2 and L5 (L4 is created exactly at T, so not yet a peer).
    assert l1["account_other_leads"] == 2
    assert l1["account_events_30d"] == 2 and l1["account_decision_actions_30d"] == 1
    assert l1["account_active_leads_30d"] == 2
    # L5's MQL at exactly T is not seen; L2 reached SQL 20 days before.
    assert l1["account_leads_mql"] == 1 and l1["account_leads_sql"] == 1
    assert l1["account_leads_opportunity"] == 0
    # L2's peers: L1 (its 6 events in 90 days, 3 in 30) and L5 (one decision event).
    assert l2["account_events_30d"] == 4 and l2["account_decision_actions_30d"] == 2
    assert l2["account_events_90d"] == 7
    assert l2["account_leads_mql"] == 1 and l2["account_leads_sql"] == 0  # L1 was MQL, not SQL
    assert l3["account_other_leads"] == 0 and l3["account_events_90d"] == 0


def test_fit(features):
    l1, l2, l3 = features.loc["L1"], features.loc["L2"], features.loc["L3"]
    assert (l1["seniority"], l1["department"]) == ("vp", "marketing")
    assert l2["is_free_mail"] and not l1["is_free_mail"] and l3["is_student"]
    assert l1["industry"] == "software" and l1["company_size_band"] == "201-1000"
    assert l1["employee_count"] == 250 and l1["region"] == "north_america"
    assert l1["lead_age_days"] == pytest.approx(151)


def test_passthrough_is_configured_and_typed(tables, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "features:\n  passthrough:\n    leads: [score_band]\n    accounts: [tech_stack]\n"
    )
    data = load_data(tables, load_settings(config))
    frame = features_as_of(data, T).set_index("lead_id")
    assert frame.loc["L1", "lead_score_band"] == "a"
    assert frame.loc["L3", "account_tech_stack"] == "none"
    assert list(frame.columns[-2:]) == ["lead_score_band", "account_tech_stack"]


def test_passthrough_of_a_missing_column_names_it(tables, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("features:\n  passthrough:\n    leads: [budget]\n")
    data = load_data(tables, load_settings(config))
    with pytest.raises(DataError, match=r"features.passthrough.leads: column 'budget'"):
        features_as_of(data, T)


def test_pii_can_never_be_passed_through(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("features:\n  passthrough:\n    leads: [email]\n")
    with pytest.raises(ConfigError, match="PII column"):
        load_settings(config)


def test_windows_come_from_settings(tables, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("features:\n  windows_days: [14, 3]\n  account_windows_days: [60]\n")
    settings = load_settings(config)
    assert settings.features.windows_days == (3, 14)
    frame = features_as_of(load_data(tables, settings), T).set_index("lead_id")
    assert list(frame.columns[1:]) == list(feature_catalogue(settings))
    assert frame.loc["L1", "events_3d"] == 1 and frame.loc["L1", "events_14d"] == 2
    assert "account_events_60d" in frame.columns and "events_7d" not in frame.columns


def test_a_daily_window_for_half_a_year_counts_like_a_single_one(tables, tmp_path):
    # 180 windows: more than a byte of window numbers; one more event, 150 days old.
    config = tmp_path / "c.yaml"
    config.write_text(f"features:\n  windows_days: {list(range(1, 181))}\n")
    old = pd.DataFrame({"lead_id": ["L1"], "occurred_at": at(150 * DAY),
                        "event_type": ["page_view"], "content_id": ["C7"]})  # fmt: skip
    tables["events"] = pd.concat([tables["events"], old], ignore_index=True)
    frame = features_as_of(load_data(tables, load_settings(config)), T).set_index("lead_id")
    l1 = frame.loc["L1"]
    assert (l1["events_1d"], l1["events_7d"], l1["events_30d"], l1["events_90d"]) == (1, 2, 3, 6)
    assert (l1["events_149d"], l1["events_150d"], l1["events_180d"]) == (8, 9, 9)
    assert (l1["active_days_149d"], l1["active_days_150d"]) == (7, 8)
    assert (l1["distinct_content_90d"], l1["distinct_content_150d"]) == (2, 4)


def test_features_as_of_scores_only_open_leads(tables):
    frame = features_as_of(tables, T)
    # L2 reached SQL before T; L4 did not exist yet; L1's SQL at exactly T leaves it open.
    assert sorted(frame["lead_id"]) == ["L1", "L3", "L5"]


def test_the_catalogue_describes_every_feature():
    assert len(FEATURES) > 100
    assert all(isinstance(m, str) and m for m in FEATURES.values())
    assert feature_catalogue(Settings()) == FEATURES


def test_an_empty_spine_gives_an_empty_frame_with_every_column(tables):
    frame = build_features(tables, pd.DataFrame({"lead_id": [], "as_of": []}))
    assert frame.empty and list(frame.columns) == ["lead_id", "as_of", *FEATURES]


def test_a_spine_with_a_repeated_pair_is_refused_with_an_example(tables):
    t = pd.Timestamp("2025-06-01", tz="UTC")
    spine = pd.DataFrame({"lead_id": ["L1", "L2", "L1", "L1"], "as_of": [t, t, t + T_DAY, t]})
    with pytest.raises(DataError, match=r"1 duplicate \(lead_id, as_of\) rows \(e.g. 'L1' at"):
        build_features(tables, spine)


T_DAY = pd.Timedelta(days=1)
