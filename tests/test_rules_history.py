"""MQL history: which leads the rules would have made MQLs in a period, and exactly when."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from leadml import rule_mql_history, rule_scores
from leadml.common.sql import sql_str
from leadml.data.asof import as_spine, open_pairs, registered, to_utc
from leadml.rules import load_rules, score_sql
from leadml.rules._engine import event_types_of
from leadml.rules._history import _TRIGGERS, _scored_instants
from leadml.rules._timeline import engagement_timeline
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
    assert rule_mql_history(history_data, T0 - 10 * DAY, T0 - 5 * DAY, RULES).empty  # no lead yet
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


# --- one pass per lead: the same crossings as scoring each instant in SQL ------------------------


def reference_history(data, start, end, rules, *, open_only=True):
    """rule_mql_history as it was before its one pass per lead: every candidate instant scored by
    the SQL plan, which sums all of the lead's events at each one (events x instants per lead)."""
    rules = load_rules(rules, data.settings)
    frame = reference_instants(data, to_utc(start), to_utc(end), rules, open_only=open_only)
    above = frame["rule_score"] >= rules.mql.threshold
    first = frame["lead_id"].ne(frame["lead_id"].shift())
    before = above.shift(fill_value=False).where(~first, False)
    crossed = frame[above & ~before & frame["trigger"].ne("start")].copy()
    crossed = crossed.rename(columns={"happened": "crossed_at"})
    crossed["crossing"] = crossed.groupby("lead_id").cumcount() + 1
    crossed["rule_grade"] = crossed["rule_grade"].astype("str")
    return crossed.sort_values(["crossed_at", "lead_id"]).reset_index(drop=True)


def reference_instants(data, start, end, rules, *, open_only=True):
    """The reference's instants where the lead exists (and is open), scored, by lead and time."""
    candidates = reference_candidates(data, rules, start, end)
    with registered(data, candidates[["lead_id", "as_of"]]) as name:
        keep = f"JOIN ({open_pairs(data, name)}) o USING (lead_id, as_of)" if open_only else ""
        scores = data.con.execute(
            f"SELECT sc.* FROM ({score_sql(data, name, rules, explain=False)}) sc {keep}"
        ).df()
    frame = scores.merge(candidates, on=["lead_id", "as_of"])
    return frame.sort_values(["lead_id", "as_of"], ignore_index=True)


def reference_candidates(data, rules, start, end):
    """The instants the reference evaluates, in SQL: (lead_id, as_of, happened, trigger)."""

    def ts(value):
        return f"TIMESTAMPTZ '{value.isoformat()}'"

    window = f"occurred_at >= {ts(start)} AND occurred_at < {ts(end)}"
    rising = [r for r in rules.engagement.rules
              if (r.points < 0 if r.inactive_days is not None else r.points > 0)]  # fmt: skip
    parts = [
        f"SELECT lead_id, {ts(start)}, {ts(start)}, 'start', 0 "
        f"FROM leads WHERE created_at < {ts(start)}",
        f"SELECT lead_id, created_at + INTERVAL 1 MICROSECOND, created_at, 'created', 1 "
        f"FROM leads WHERE created_at >= {ts(start)} AND created_at < {ts(end)}",
    ]
    if rising:
        types = sorted({t for r in rising for t in event_types_of(r, data.settings)})
        events = f"FROM events WHERE {window} AND event_type IN ({', '.join(map(sql_str, types))})"
        parts += [
            f"SELECT lead_id, occurred_at, occurred_at, 'time', 3 {events}",
            f"SELECT lead_id, occurred_at + INTERVAL 1 MICROSECOND, occurred_at, 'event', 2 "
            f"{events}",
        ]
    midnights = pd.DataFrame({"m": pd.date_range(start.floor("D") + DAY, end, freq="D",
                                                 inclusive="left").as_unit("us")})  # fmt: skip
    with data.registered("days", midnights) as days:
        if rules.rises_without_events:
            parts.append(f"SELECT l.lead_id, d.m, d.m, 'time', 4 FROM leads l JOIN {days} d "
                         f"ON l.created_at < d.m")  # fmt: skip
        return data.con.execute(
            f"""
            SELECT lead_id, as_of, min(happened) AS happened, arg_min(why, p) AS "trigger"
            FROM ({" UNION ALL ".join(parts)}) c(lead_id, as_of, happened, why, p)
            GROUP BY lead_id, as_of ORDER BY lead_id, as_of
            """
        ).df()


def _us(times: pd.Series) -> np.ndarray:
    return times.to_numpy(dtype="datetime64[us]").view(np.int64)


def assert_same_crossings(history, reference):
    keys = ["lead_id", "crossed_at", "trigger", "crossing", "rule_grade"]
    assert history[keys].values.tolist() == reference[keys].values.tolist()
    for column in ("rule_score", "rule_fit_score", "rule_engagement_score"):
        np.testing.assert_allclose(history[column], reference[column], rtol=0, atol=1e-6)


_TYPES = ["page_view", "pricing_page_view", "demo_request", "webinar_attended", "unsubscribe"]


def _linear_rules(rises_without_events: bool) -> dict:
    """Every kind of kernel (window, half-life, lifespan, none) and an inactivity rule, caps per
    rule, group and section;
    windows of whole days, so that events on a 6-hour grid often sit exactly on their edges."""
    unsub = {"name": "unsub", "event_type": "unsubscribe", "points": -30, "decay": "none"}
    fit = [FIT[0]]
    if rises_without_events:  # a score that rises at midnights: "time" crossings
        unsub["window_days"] = 4
        fit.append({"name": "older", "attribute": "lead_age_days", "range": {"from": 20},
                    "points": 5})  # fmt: skip
    return make_rules(
        fit=fit,
        engagement=[
            {"name": "views", "event_type": "page_view", "points": 4, "window_days": 3,
             "decay": "none", "group": "web"},
            {"name": "pricing", "event_type": "pricing_page_view", "points": 10, "cap": 25,
             "decay": {"lifespan_days": 5}, "group": "web"},
            {"name": "demo", "event_type": "demo_request", "points": 40, "window_days": 6,
             "decay": {"half_life_days": 2}, "cap": 60},
            {"name": "webinar", "event_type": "webinar_attended", "points": 15},
            unsub,
            # Views revive a lead gone quiet: an event that raises the score by ending a penalty.
            {"name": "quiet", "event_type": ["page_view", "pricing_page_view"],
             "inactive_days": 4, "points": -10},
        ],
        groups={"web": {"cap": 12}}, decay={"half_life_days": 4}, engagement_cap=50, threshold=50,
    )  # fmt: skip


_EVENTS = st.lists(
    st.tuples(st.sampled_from(["L1", "L2", "L3"]), st.integers(-8, 52), st.sampled_from([0, 6, 12]),
              st.sampled_from([0, 0, 1]), st.sampled_from(_TYPES)),
    max_size=25,
)  # fmt: skip


def _history_data(events, created_day=20, closed_day=None):
    """L1 a VP (20 fit points), L2 no fit points, L3 a VP created inside the period; an event is
    (lead, day from START, hour, microseconds, type); L2 reaches SQL on ``closed_day``."""
    at = [(lead, START + d * DAY + h * HOUR + pd.Timedelta(microseconds=us), t)
          for lead, d, h, us, t in events]  # fmt: skip
    stages = [] if closed_day is None else [("L2", "sql", START + closed_day * DAY)]
    leads = [vp("L1"), {"lead_id": "L2"}, vp("L3", created_at=START + created_day * DAY)]
    return make_data(leads, events=at, stages=stages)


# Two demos exactly one window (6 days) apart, each crossing; a view exactly 3 days before a
# pricing visit; a demo and a view one microsecond apart (their instants meet).
@pytest.mark.slow
@example(
    events=[("L1", 1, 0, 0, "demo_request"), ("L1", 7, 0, 0, "demo_request"),
            ("L1", 7, 0, 1, "page_view"), ("L1", 20, 6, 0, "demo_request"),
            ("L2", 2, 12, 0, "page_view"), ("L2", 5, 12, 0, "pricing_page_view"),
            ("L2", 5, 12, 0, "demo_request"), ("L3", 30, 0, 0, "webinar_attended")],
    rises=True, created_day=25, closed_day=None,
)  # fmt: skip
# Three views and a pricing visit within three days: over the group's cap.
@example(
    events=[("L2", 2, 12, 0, "page_view"), ("L2", 3, 0, 0, "page_view"),
            ("L2", 3, 6, 0, "page_view"), ("L2", 3, 12, 0, "pricing_page_view")],
    rises=False, created_day=10, closed_day=None,
)  # fmt: skip
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=_EVENTS, rises=st.booleans(), created_day=st.integers(-5, 45),
       closed_day=st.none() | st.integers(0, 50))  # fmt: skip
def test_one_pass_per_lead_finds_the_crossings_of_scoring_every_instant(
    events, rises, created_day, closed_day
):
    data = _history_data(events, created_day, closed_day)
    rules = load_rules(_linear_rules(rises))
    assert rules.rises_without_events == rises
    # The same instants, for the same reasons, kept when the lead exists (and is open), with
    # the same scores as the reference's SQL.
    for open_only in (True, False):
        leads, (lead, at, happened, why), score = _scored_instants(
            data, rules, START, END, open_only
        )
        expected = reference_instants(data, START, END, rules, open_only=open_only)
        assert leads["lead_id"].to_numpy()[lead].tolist() == expected["lead_id"].tolist()
        assert at.tolist() == _us(expected["as_of"]).tolist()
        assert happened.tolist() == _us(expected["happened"]).tolist()
        assert _TRIGGERS[why].tolist() == expected["trigger"].tolist()
        np.testing.assert_allclose(score, expected["rule_score"], rtol=0, atol=1e-6)
    # Every engagement rule's points at every instant.
    pairs = as_spine(reference_candidates(data, rules, START, END))
    in_sql = rule_scores(data, pairs, rules).sort_values(["lead_id", "as_of"], ignore_index=True)
    walked = engagement_timeline(data, pairs, rules)
    walked = in_sql[["lead_id", "as_of"]].merge(walked, on=["lead_id", "as_of"], how="left")
    for rule in rules.engagement.rules:
        column = f"points__{rule.name}"
        np.testing.assert_allclose(walked[column], in_sql[column], rtol=0, atol=1e-9)
    for open_only in (True, False):
        assert_same_crossings(
            rule_mql_history(data, START, END, rules, open_only=open_only),
            reference_history(data, START, END, rules, open_only=open_only),
        )


def test_a_lead_gone_quiet_crosses_again_at_the_event_that_revives_it():
    """Going quiet takes 30 points and nothing else gives them back but a page view, which
    earns no points of its own: the view is the crossing, at its exact instant."""
    quiet = {"name": "quiet", "event_type": "page_view", "inactive_days": 5, "points": -30}
    demo = {"name": "demo", "event_type": "demo_request", "points": 40, "decay": "none"}
    rules = make_rules(fit=[FIT[0]], engagement=[demo, quiet], threshold=50)
    views = [("L1", START + DAY, "page_view"), ("L1", START + 20 * DAY + HOUR, "page_view")]
    data = make_data([vp("L1")], events=[*views, ("L1", START + 2 * DAY, "demo_request")])
    history = rule_mql_history(data, START, END, rules)
    assert history["crossed_at"].tolist() == [START + 2 * DAY, START + 20 * DAY + HOUR]
    assert history["trigger"].tolist() == ["event", "event"]
    assert history["rule_score"].tolist() == [60.0, 60.0]


def test_the_example_crosses_several_times_at_window_edges():
    """The explicit example above does what it says: L1 crosses three times, its second demo
    exactly one window after the first."""
    events = [("L1", 1, 0, 0, "demo_request"), ("L1", 7, 0, 0, "demo_request"),
              ("L1", 20, 6, 0, "demo_request")]  # fmt: skip
    history = rule_mql_history(_history_data(events), START, END, _linear_rules(True))
    assert history.loc[history["lead_id"] == "L1", "crossed_at"].tolist() == [
        START + DAY,
        START + 7 * DAY,
        START + 20 * DAY + 6 * HOUR,
    ]


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=_EVENTS, cut=st.integers(0, 50 * 4), future=_EVENTS, rises=st.booleans())
def test_events_after_an_instant_never_change_the_crossings_before_it(events, cut, future, rises):
    """Crossings are as of their instant: events at or after T (here on the same 6-hour grid,
    so often exactly at T) change nothing that happened before T."""
    t = START + cut * 6 * HOUR
    later = [e for e in future if START + e[1] * DAY + e[2] * HOUR >= t]
    rules = _linear_rules(rises)
    seen = rule_mql_history(_history_data(events), START, END, rules)
    everything = rule_mql_history(_history_data(events + later), START, END, rules)
    pd.testing.assert_frame_equal(
        seen[seen["crossed_at"] < t].reset_index(drop=True),
        everything[everything["crossed_at"] < t].reset_index(drop=True),
    )


# --- a bot: one lead with 50,000 events -----------------------------------------------------------

BOT_DEMOS = pd.to_datetime(["2026-01-10 12:00", "2026-02-01 00:00", "2026-02-25 06:00",
                            "2026-03-20 00:00"],
                           utc=True)  # fmt: skip
BOT_RULES = make_rules(
    engagement=[
        {"name": "views", "event_type": "page_view", "points": 1, "window_days": 30,
         "decay": "none", "cap": 20},
        {"name": "demo", "event_type": "demo_request", "points": 50, "cap": 50,
         "decay": {"lifespan_days": 10}},
    ],
    threshold=60,
)  # fmt: skip


@pytest.fixture(scope="module")
def bot_dir(sample_history, tmp_path_factory):
    """The sample history plus a bot: 50,000 page views from December to April (its 20 view
    points are full within hours) and four demo requests weeks apart, each worth 50 points
    fading to nothing in 10 days. Scoring every instant in SQL took minutes on it."""
    rng = np.random.default_rng(5)
    tables = sample_history.tables()
    leads = tables["leads"]
    bot = leads.iloc[[0]].assign(lead_id="BOT", created_at=pd.Timestamp("2025-11-01", tz="UTC"))
    lo, hi = (pd.Timestamp(d, tz="UTC").value // 1000 for d in ("2025-12-01", "2026-04-20"))
    views = pd.to_datetime(np.sort(rng.integers(lo, hi, 50_000)), unit="us", utc=True)
    events = pd.DataFrame({
        "lead_id": "BOT", "occurred_at": views.append(BOT_DEMOS),
        "event_type": ["page_view"] * len(views) + ["demo_request"] * len(BOT_DEMOS),
    })  # fmt: skip
    stages = pd.DataFrame({"lead_id": ["BOT"], "stage": ["lead"], "entered_at": bot["created_at"]})
    folder = tmp_path_factory.mktemp("bot") / "data"
    folder.mkdir()
    extra = {"leads": bot, "events": events, "stages": stages}
    for name, frame in tables.items():
        if name in extra:
            frame = pd.concat([frame, extra[name].astype(frame.dtypes[extra[name].columns])])
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def test_a_bot_crosses_exactly_at_its_hand_raises(bot_dir):
    from leadml import load_data

    data = load_data(bot_dir)
    history = rule_mql_history(data, "2025-12-01", "2026-04-20", BOT_RULES)
    bot = history[history["lead_id"] == "BOT"]
    assert bot[["crossed_at", "trigger", "crossing"]].values.tolist() == [
        [demo, "event", i] for i, demo in enumerate(BOT_DEMOS, start=1)
    ]
    # The SQL plan (every event of the bot summed at each instant) agrees: below the threshold
    # as of each demo, at or above it just after.
    just = pd.Timedelta(microseconds=1)
    pairs = spine(
        *(("BOT", t) for t in bot["crossed_at"]), *(("BOT", t + just) for t in bot["crossed_at"])
    )
    scores = rule_scores(data, pairs, BOT_RULES).sort_values("as_of")
    assert scores["rule_mql"].tolist() == [False, True] * len(BOT_DEMOS)
    after = scores.iloc[1::2]
    assert after["rule_score"].tolist() == pytest.approx(bot["rule_score"].tolist())
    assert after["rule_score"].tolist() == pytest.approx([70] * len(BOT_DEMOS))


@pytest.mark.slow
def test_the_report_command_runs_on_data_with_a_bot(bot_dir, tmp_path):
    from typer.testing import CliRunner

    from leadml.cli import app

    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(BOT_RULES))
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app, ["report", "--data", str(bot_dir), "--out", str(out), "--rules", str(rules)]
    )
    assert result.exit_code == 0, result.output
    assert (out / "index.html").exists()
