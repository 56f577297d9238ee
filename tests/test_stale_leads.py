"""Stale leads close: a lead silent for ``target.stale_after_days`` before T is not open at T.

Every formulation of the open rule -- :func:`open_leads` at one instant and at many,
:func:`open_pairs`, the spells of the MQL history -- against a plain-Python reading of it.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadml import Settings, build_trainset, rule_mql_history
from leadml.data.asof import (
    closing_stages,
    fresh_spells,
    is_fresh,
    label_pairs,
    open_leads,
    open_pairs,
    registered,
)
from leadml.rules import load_rules
from leadml.rules._history import _scored_instants
from rules_helpers import DAY, T0, make_data, make_rules

US = pd.Timedelta(microseconds=1)
LEADS = ["L1", "L2", "L3"]
TYPES = ["page_view", "demo_request", "email_open"]
STAGES = ["mql", "sal", "srl", "sql", "lost"]
SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]
FAST = settings(max_examples=25, deadline=None, suppress_health_check=SLOW)

# Offsets from T0 in hours, over 60 days: with a stale window of 1 to 10 days, leads go stale,
# come back and close in every order.
hours = st.integers(0, 60 * 24)
event_rows = st.lists(st.tuples(st.sampled_from(LEADS), hours, st.sampled_from(TYPES)), max_size=8)
stage_rows = st.lists(st.tuples(st.sampled_from(LEADS), hours, st.sampled_from(STAGES)), max_size=4)
created = st.lists(st.integers(0, 30 * 24), min_size=3, max_size=3)
stale_days = st.sampled_from([None, 1, 3, 10])


def at(hour: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=hour)


def history(created_hours, events, stages, stale, *, later_events=(), later_stages=()):
    config = Settings.model_validate({"target": {"stale_after_days": stale}})
    return make_data(
        [
            {"lead_id": lead, "created_at": at(h)}
            for lead, h in zip(LEADS, created_hours, strict=True)
        ],
        events=[(lead, at(h), kind) for lead, h, kind in [*events, *later_events]],
        stages=[(lead, stage, at(h)) for lead, h, stage in [*stages, *later_stages]],
        settings=config,
    )


def instants(data) -> list[pd.Timestamp]:
    """Every edge of the rule: each activity, just after it, and the end of its window."""
    stale = data.settings.target.stale_after_days or 0
    times = data.con.sql(
        "SELECT created_at FROM leads UNION SELECT occurred_at FROM events "
        "UNION SELECT entered_at FROM stages"
    ).fetchnumpy()["created_at"]
    edges = {pd.Timestamp(t, tz="UTC") for t in times}
    edges |= {t + d for t in list(edges) for d in (US, stale * DAY, stale * DAY + US)}
    return sorted(t for t in edges if T0 <= t <= T0 + 80 * DAY)


def reference(data, when: list[pd.Timestamp], *, only_fresh: bool = False) -> set[tuple]:
    """The open rule read literally, in Python: the (lead, T) open at T (``only_fresh``: the
    (lead, T) with activity in the stale window, the part of the rule the spells answer)."""
    leads = data.con.sql("SELECT lead_id, created_at FROM leads").df()
    events = data.con.sql("SELECT lead_id, occurred_at AS t FROM events").df()
    stages = data.con.sql("SELECT lead_id, entered_at AS t, stage FROM stages").df()
    closing = stages[stages["stage"].isin(closing_stages(data.settings))]
    stale = data.settings.target.stale_after_days
    active = pd.concat(
        [leads.rename(columns={"created_at": "t"}), events, stages[["lead_id", "t"]]]
    )
    found = set()
    for lead, born in zip(leads["lead_id"], leads["created_at"], strict=True):
        mine, shut = (
            active[active["lead_id"] == lead]["t"],
            closing[closing["lead_id"] == lead]["t"],
        )
        for t in when:
            recent = stale is None or ((mine < t) & (mine >= t - stale * DAY)).any()
            if recent and (only_fresh or (born < t and not (shut < t).any())):
                found.add((lead, t))
    return found


def pairs_of(frame: pd.DataFrame) -> set[tuple[str, pd.Timestamp]]:
    return set(zip(frame["lead_id"], frame["as_of"], strict=True))


@pytest.mark.slow
@FAST
@given(created, event_rows, stage_rows, stale_days)
def test_every_formulation_of_the_open_rule_agrees_with_the_rule(born, ev, sg, stale):
    data = history(born, ev, sg, stale)
    when = instants(data)
    expected = reference(data, when)
    assert pairs_of(open_leads(data, when)) == expected  # many instants: the as-of join
    one_by_one = set().union(*(pairs_of(open_leads(data, t)) for t in when))
    assert one_by_one == expected  # one instant: the semi-join of the nightly run
    spine = pd.DataFrame([(lead, t) for lead in LEADS for t in when], columns=["lead_id", "as_of"])
    with registered(data, spine) as name:
        assert pairs_of(data.con.sql(open_pairs(data, name)).df()) == expected
    if stale is not None:  # the numpy twin of the MQL history
        spells = fresh_spells(data, when[0], when[-1])
        us = spine["as_of"].astype("datetime64[us, UTC]").astype("int64")
        fresh = is_fresh(spells, spine["lead_id"].to_numpy(), us)
        assert pairs_of(spine[fresh]) == reference(data, when, only_fresh=True)


@pytest.mark.slow
@FAST
@given(created, event_rows, stage_rows, stale_days, event_rows, stage_rows, hours)
def test_later_rows_never_change_who_was_open_before(born, ev, sg, stale, later_ev, later_sg, cut):
    t = at(cut)
    early = [r for r in ev if at(r[1]) < t], [r for r in sg if at(r[1]) < t]
    later = [r for r in later_ev if at(r[1]) >= t], [r for r in later_sg if at(r[1]) >= t]
    before = history(born, *early, stale)
    after = history(born, *early, stale, later_events=later[0], later_stages=later[1])
    when = [w for w in instants(after) if w <= t]
    assert pairs_of(open_leads(after, when)) == pairs_of(open_leads(before, when))


@pytest.mark.slow
@FAST
@given(created, event_rows, stage_rows)
def test_null_keeps_every_lead_open_until_it_closes(born, ev, sg):
    data = history(born, ev, sg, None)
    when = instants(history(born, ev, sg, 1))  # the edges of a short window, to be sure
    closing = data.con.sql("SELECT lead_id, min(entered_at) AS shut FROM stages WHERE stage IN "
                           "('sql', 'opportunity', 'customer', 'lost', 'disqualified') "
                           "GROUP BY lead_id").df()  # fmt: skip
    shut = dict(zip(closing["lead_id"], closing["shut"], strict=True))
    created_at = dict(zip(LEADS, [at(h) for h in born], strict=True))
    expected = {(lead, t) for lead in LEADS for t in when
                if created_at[lead] < t and not (lead in shut and shut[lead] < t)}  # fmt: skip
    assert pairs_of(open_leads(data, when)) == expected


def test_the_window_is_strictly_before_t_and_a_new_event_reopens_the_lead():
    event = at(24)
    data = history([0, 0, 0], [("L1", 24, "page_view")], [], 3)
    l1 = [t for t in [event, event + US, event + 3 * DAY, event + 3 * DAY + US] if
          not open_leads(data, t).query("lead_id == 'L1'").empty]  # fmt: skip
    # Open until 3 days after its event (the event at exactly T - 3 days counts), not after.
    assert l1 == [event, event + US, event + 3 * DAY]
    # L2, silent since its creation at T0, is stale 3 days later; an event 10 days in reopens
    # it just after the event, until 3 days later.
    data = history([0, 0, 0], [("L2", 240, "page_view")], [], 3)
    l2 = [t for t in [at(72), at(72) + US, at(240), at(240) + US, at(312), at(312) + US]
          if not open_leads(data, t).query("lead_id == 'L2'").empty]  # fmt: skip
    assert l2 == [at(72), at(240) + US, at(312)]
    # A stage change that does not close the lead is activity too.
    data = history([0, 0, 0], [], [("L3", 240, "mql")], 3)
    assert not open_leads(data, at(240) + US).query("lead_id == 'L3'").empty


@pytest.mark.slow
@FAST
@given(created, event_rows, stage_rows, st.sampled_from([1, 3, 10]))
def test_the_mql_history_scores_only_open_instants(born, ev, sg, stale):
    data = history(born, ev, sg, stale)
    demo = {"name": "demo", "event_type": "demo_request", "points": 40}
    rules = load_rules(make_rules(engagement=[demo], threshold=30), data.settings)

    def scored(open_only: bool) -> set[tuple[str, pd.Timestamp]]:
        leads, (lead, at_us, _, _), _ = _scored_instants(data, rules, at(0), at(70 * 24), open_only)
        return set(zip(leads["lead_id"].to_numpy()[lead],
                       pd.to_datetime(at_us, unit="us", utc=True), strict=True))  # fmt: skip

    every = scored(False)
    assert scored(True) == every & reference(data, sorted({t for _, t in every}))
    # And a crossing happens only where the lead is open.
    crossed = rule_mql_history(data, at(0), at(70 * 24), rules)
    assert pairs_of(crossed.assign(as_of=crossed["crossed_at"] + US)) <= reference(
        data, sorted(set(crossed["crossed_at"] + US))
    )


@pytest.fixture(scope="module")
def stale_sample(sample_data):
    """The shared sample with a short stale window, so that many leads go stale (same tables)."""
    target = sample_data.settings.target.model_copy(update={"stale_after_days": 30})
    return replace(sample_data, settings=sample_data.settings.model_copy(update={"target": target}))


def test_a_stale_lead_is_in_no_snapshot_and_has_no_label(stale_sample):
    end = stale_sample.end().floor("D") - 120 * DAY
    trainset = build_trainset(stale_sample, start=end - 60 * DAY, end=end)
    dates = sorted(set(trainset.frame["as_of"]))
    opened = open_leads(stale_sample, dates)
    assert pairs_of(trainset.frame) == pairs_of(opened)  # every snapshot is mature here
    unbounded = replace(stale_sample, settings=stale_sample.settings.model_copy(
        update={"target": stale_sample.settings.target.model_copy(
            update={"stale_after_days": None})}))  # fmt: skip
    stale = pairs_of(open_leads(unbounded, dates)) - pairs_of(opened)
    assert stale and not stale & pairs_of(trainset.frame)
    report = trainset.report.set_index("as_of")["open_leads"]
    assert report[report > 0].to_dict() == opened.groupby("as_of").size().to_dict()
    labelled = label_pairs(stale_sample, opened)
    assert labelled["label"].notna().all() and len(labelled) == len(trainset.frame)
