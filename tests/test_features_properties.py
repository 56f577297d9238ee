"""Property tests of the time rules: nothing at or after T changes what is seen as of T."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadml import load_data
from leadml.data.asof import label_pairs
from leadml.features import build_features

T = pd.Timestamp("2025-06-01", tz="UTC")
HORIZON = 90  # the default target.horizon_days
LEADS = ["L1", "L2", "L3"]
TYPES = ["page_view", "email_open", "email_click", "demo_request", "unsubscribe",
         "webinar_attended"]  # fmt: skip
STAGES = ["mql", "sal", "srl", "sql", "opportunity", "customer", "lost"]

# Offsets from T in minutes, on a grid that hits the edges: T itself, T - 7/30/60/90 days.
EDGES = [0, -7 * 1440, -30 * 1440, -60 * 1440, -90 * 1440, -(90 * 1440) - 1]
past = st.one_of(st.sampled_from(EDGES[1:]), st.integers(-200 * 1440, -1))
future = st.one_of(st.just(0), st.integers(0, 200 * 1440))


def stamp(minutes: int) -> pd.Timestamp:
    return T + pd.Timedelta(minutes=minutes)


def events(offsets, leads=LEADS):
    return st.lists(
        st.tuples(st.sampled_from(leads), offsets, st.sampled_from(TYPES),
                  st.sampled_from([None, "C1", "C2"])),
        max_size=12,
    )  # fmt: skip


def stages(offsets, leads=LEADS):
    return st.lists(st.tuples(st.sampled_from(leads), offsets, st.sampled_from(STAGES)),
                    max_size=5)  # fmt: skip


def tables(past_events, past_stages, later_events=(), later_stages=(), later_leads=0):
    new = [f"N{i}" for i in range(later_leads)]
    leads = pd.DataFrame(
        {
            "lead_id": LEADS + new,
            "created_at": [stamp(-300 * 1440), stamp(-100 * 1440), stamp(-1)]
            + [stamp(i * 60) for i in range(later_leads)],
            "lead_source": "web",
            "account_id": ["A1", "A1", "A2"] + ["A1"] * later_leads,
        }
    )
    # One old event and stage each, so that no table is ever empty (validation refuses that).
    rows = [("L1", -400 * 1440, "page_view", None), *past_events, *later_events]
    ev = pd.DataFrame(
        {
            "lead_id": [r[0] for r in rows],
            "occurred_at": pd.Series([stamp(r[1]) for r in rows], dtype="datetime64[us, UTC]"),
            "event_type": pd.Series([r[2] for r in rows], dtype="str"),
            "content_id": pd.Series([r[3] for r in rows], dtype="str"),
        }
    )
    srows = [("L1", -300 * 1440, "lead"), *past_stages, *later_stages]
    stg = pd.DataFrame(
        {
            "lead_id": pd.Series([r[0] for r in srows], dtype="str"),
            "stage": pd.Series([r[2] for r in srows], dtype="str"),
            "entered_at": pd.Series([stamp(r[1]) for r in srows], dtype="datetime64[us, UTC]"),
        }
    )
    accounts = pd.DataFrame(
        {
            "account_id": ["A1", "A2"],
            "industry": "x",
            "employee_count": 10,
            "annual_revenue": 1e6,
            "country": "US",
        }
    )
    return {"accounts": accounts, "leads": leads, "events": ev, "stages": stg}


SPINE = pd.DataFrame({"lead_id": LEADS, "as_of": [T] * 3})
FAST = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FAST
@given(events(past), stages(past), events(future), stages(future), st.integers(0, 2))
def test_nothing_at_or_after_t_changes_a_feature(pe, ps, fe, fs, new_leads):
    before = build_features(tables(pe, ps), SPINE)
    after = build_features(tables(pe, ps, fe, fs, new_leads), SPINE)
    pd.testing.assert_frame_equal(before, after)


@pytest.mark.slow
@FAST
@given(events(past), stages(past), st.data())
def test_changing_or_removing_later_rows_changes_nothing(pe, ps, data):
    later = data.draw(events(future, LEADS))
    changed = [(lead, minutes, "demo_request", "C9") for lead, minutes, _, _ in later]
    kept = build_features(tables(pe, ps, later), SPINE)
    pd.testing.assert_frame_equal(kept, build_features(tables(pe, ps, changed), SPINE))
    pd.testing.assert_frame_equal(kept, build_features(tables(pe, ps), SPINE))


@FAST
@given(stages(st.integers(-200 * 1440, 200 * 1440)))
def test_labels_see_only_the_horizon_after_t(all_stages):
    data = load_data(tables([], all_stages))
    labelled = label_pairs(data, SPINE, end=T + pd.Timedelta(days=HORIZON))
    reached = {"sql", "opportunity", "customer"}
    for lead, label in zip(labelled["lead_id"], labelled["label"], strict=True):
        expected = any(
            who == lead and stage in reached and 0 < m <= HORIZON * 1440
            for who, m, stage in all_stages
        )
        assert label == int(expected)


@FAST
@given(stages(st.integers(-200 * 1440, 200 * 1440)), st.integers(-3 * 1440, 3 * 1440))
def test_an_immature_pair_is_never_labelled_zero(all_stages, end_shift):
    data = load_data(tables([], all_stages))
    end = T + pd.Timedelta(days=HORIZON) + pd.Timedelta(minutes=end_shift)
    labelled = label_pairs(data, SPINE, end=end)
    mature = end_shift >= 0
    assert (labelled["mature"] == mature).all()
    if not mature:
        assert labelled["label"].isna().all()
    else:
        assert labelled["label"].notna().all()
