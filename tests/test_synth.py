"""The sample-history generator: contract, time order, realism and an exact, calibrated truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from leadml import synth
from leadml.synth import SampleHistory, generate_history, write_history

N = 4_000
SEED = 7
DECISION = ["demo_request", "contact_request", "trial_signup", "consultation_request"]
CONTRACT = {
    "accounts": ["account_id", "industry", "employee_count", "annual_revenue", "country"],
    "leads": [
        "lead_id",
        "created_at",
        "lead_source",
        "account_id",
        "job_title",
        "country",
        "email",
    ],
    "events": ["lead_id", "occurred_at", "event_type", "channel", "campaign", "content_id", "url"],
    "stages": ["lead_id", "stage", "entered_at", "reason"],
}


@pytest.fixture(scope="module")
def history() -> SampleHistory:
    return generate_history(N, SEED)


@pytest.fixture(scope="module")
def reached(history: SampleHistory) -> pd.DataFrame:
    """First time each lead entered each stage (NaT if never), one row per lead."""
    first = history.stages.pivot_table(
        index="lead_id", columns="stage", values="entered_at", aggfunc="min"
    )
    return first.reindex(history.leads["lead_id"])


def _kind(leads: pd.DataFrame) -> pd.Series:
    domain = leads["email"].str.split("@").str[1]
    return pd.Series(
        np.select(
            [
                domain.isin(synth.FREE_MAIL_DOMAINS),
                domain.isin(synth.STUDENT_DOMAINS),
                domain.isin([d for _, d in synth.COMPETITORS]),
            ],
            ["free_mail", "student", "competitor"],
            "corporate",
        ),
        index=leads["lead_id"],
    )


# --- determinism ---------------------------------------------------------------------------


def test_same_seed_same_history(history: SampleHistory) -> None:
    again = generate_history(N, SEED)
    for name, frame in {**history.tables(), "truth": history.truth}.items():
        pd.testing.assert_frame_equal(frame, getattr(again, name), obj=name)


def test_other_seed_other_history(history: SampleHistory) -> None:
    other = generate_history(N, SEED + 1)
    assert not history.events.equals(other.events)
    assert not history.leads["created_at"].equals(other.leads["created_at"])


# --- contract ------------------------------------------------------------------------------


@pytest.mark.parametrize("table", list(CONTRACT))
def test_contract_columns_and_dtypes(history: SampleHistory, table: str) -> None:
    frame = history.tables()[table]
    assert set(CONTRACT[table]) <= set(frame.columns)
    for column in frame.columns:
        dtype = frame[column].dtype
        assert not isinstance(dtype, pd.CategoricalDtype), column
        if column.endswith(("_at", "as_of")):
            assert str(dtype) == "datetime64[us, UTC]", column
        elif column.endswith("_id") or not pd.api.types.is_numeric_dtype(dtype):
            assert dtype == "str", column
    key = {"accounts": "account_id", "leads": "lead_id"}.get(table)
    if key:
        assert frame[key].is_unique and frame[key].notna().all()


def test_ids_and_vocabularies(history: SampleHistory) -> None:
    assert history.leads["lead_id"].str.fullmatch(r"L\d{7}").all()
    assert history.accounts["account_id"].str.fullmatch(r"A\d{6}").all()
    assert set(history.events["event_type"]) <= set(synth.EVENT_TYPES)
    assert set(history.stages["stage"]) <= set(synth.LIFECYCLE_STAGES)
    assert history.leads["country"].str.fullmatch(r"[A-Z]{2}").all()
    assert history.leads["email"].str.fullmatch(r"[a-z]+\.[a-z]+\d*@[a-z0-9.\-]+\.[a-z.]+").all()
    content = history.events["content_id"].dropna()
    assert content.str.fullmatch(r"C\d{4}").all()


def test_references_exist(history: SampleHistory) -> None:
    lead_ids = set(history.leads["lead_id"])
    assert set(history.events["lead_id"]) <= lead_ids
    assert set(history.stages["lead_id"]) <= lead_ids
    assert set(history.truth["lead_id"]) <= lead_ids
    accounts = history.leads["account_id"].dropna()
    assert accounts.isin(history.accounts["account_id"]).all()
    # A few percent of leads have no company (students, personal addresses).
    assert 0.02 < history.leads["account_id"].isna().mean() < 0.15


def test_everything_inside_the_history(history: SampleHistory) -> None:
    leads = history.leads.set_index("lead_id")
    assert leads["created_at"].between(history.start, history.end, inclusive="left").all()
    for frame, column in ((history.events, "occurred_at"), (history.stages, "entered_at")):
        created = frame["lead_id"].map(leads["created_at"])
        assert (frame[column] >= created).all(), f"{column} before its lead was created"
        assert (frame[column] < history.end).all(), f"{column} at or after end"


def test_events_sorted_by_lead_then_time(history: SampleHistory) -> None:
    events = history.events
    assert events["lead_id"].is_monotonic_increasing
    same = events["lead_id"].to_numpy()[1:] == events["lead_id"].to_numpy()[:-1]
    step = events["occurred_at"].diff().iloc[1:]
    assert (step[same] >= pd.Timedelta(0)).all()


# --- lifecycle -----------------------------------------------------------------------------


def test_stage_transitions_are_ordered_and_allowed(history: SampleHistory) -> None:
    stages = history.stages
    leads = history.leads.set_index("lead_id")
    first = stages.groupby("lead_id", sort=False).head(1)
    assert (first["stage"] == "lead").all() and len(first) == len(leads)
    assert (
        first["entered_at"].to_numpy() == leads.loc[first["lead_id"], "created_at"].to_numpy()
    ).all()
    assert stages["lead_id"].is_monotonic_increasing
    same = stages["lead_id"].to_numpy()[1:] == stages["lead_id"].to_numpy()[:-1]
    assert (stages["entered_at"].diff().iloc[1:][same] >= pd.Timedelta(0)).all()
    pairs = set(
        zip(
            stages["stage"].to_numpy()[:-1][same], stages["stage"].to_numpy()[1:][same], strict=True
        )
    )
    allowed = {(a, b) for a, bs in synth.ALLOWED_TRANSITIONS.items() for b in bs}
    assert pairs <= allowed, pairs - allowed
    assert stages.groupby("lead_id")["stage"].apply(lambda s: (s == "sql").sum()).max() <= 1


def test_funnel_rates_are_plausible(history: SampleHistory, reached: pd.DataFrame) -> None:
    has = reached.notna()
    reviewed = has["sal"] | has["srl"]
    assert 0.08 <= has["sql"].mean() <= 0.16  # ever reach sql
    assert 0.20 <= has["mql"].mean() <= 0.38  # lead -> mql
    assert 0.70 <= has["sal"][reviewed].mean() <= 0.90  # mql acceptance
    assert 0.50 <= has["opportunity"][has["sql"]].mean() <= 0.75  # sql -> opportunity
    assert 0.12 <= has["customer"][has["opportunity"]].mean() <= 0.35  # opportunity -> won


def test_students_and_competitors_never_convert(history: SampleHistory, reached) -> None:
    kind = _kind(history.leads)
    sql = reached["sql"].notna()
    assert kind.value_counts()[["student", "competitor"]].min() > 20
    assert sql[kind.isin(["student", "competitor"])].sum() == 0
    assert sql[kind == "free_mail"].mean() < 0.6 * sql[kind == "corporate"].mean()
    truth = history.truth.assign(kind=history.truth["lead_id"].map(kind))
    assert (truth.loc[truth["kind"].isin(["student", "competitor"]), "p_true"] == 0).all()


def test_lead_sources_differ_in_quality(history: SampleHistory, reached) -> None:
    sql = reached["sql"].notna().to_numpy()
    rate = pd.Series(sql).groupby(history.leads["lead_source"].to_numpy()).mean()
    assert rate["referral"] > 2 * rate["purchased_list"]


def test_decision_events_come_before_sql(history: SampleHistory) -> None:
    events = history.events
    sql = history.stages.loc[history.stages["stage"] == "sql"].set_index("lead_id")["entered_at"]
    decision = events.loc[events["event_type"].isin(DECISION)]
    when = decision["lead_id"].map(sql)
    converted = when.notna()
    # Every SQL is preceded by a hand-raise, and converted leads raise no hand afterwards.
    assert set(sql.index) <= set(decision["lead_id"])
    assert (decision.loc[converted, "occurred_at"] < when[converted]).all()
    # A decision event is a strong, not a perfect, signal: many come from leads that never convert.
    assert 0.25 < converted.mean() < 0.8


# --- realism -------------------------------------------------------------------------------


def test_engagement_is_heavy_tailed_and_weekly(history: SampleHistory) -> None:
    per_lead = (
        history.events.groupby("lead_id").size().reindex(history.leads["lead_id"], fill_value=0)
    )
    assert 30 <= per_lead.mean() <= 75
    assert per_lead.quantile(0.99) > 8 * per_lead.median()
    weekday = history.events["occurred_at"].dt.day_of_week
    assert (weekday >= 5).mean() < 0.5 * 2 / 7  # weekends are quiet
    buying_stage = history.events["event_type"].map(synth.BUYING_STAGE)
    assert buying_stage.value_counts(normalize=True)["awareness"] > 0.3


def test_accounts_are_skewed(history: SampleHistory) -> None:
    per_account = history.leads["account_id"].value_counts()
    assert per_account.max() >= 10 and per_account.median() <= 3  # buying committees, long tail
    employees = history.accounts["employee_count"]
    assert employees.mean() > 2 * employees.median()
    assert np.corrcoef(np.log(employees), np.log(history.accounts["annual_revenue"]))[0, 1] > 0.8
    assert history.accounts["industry"].value_counts(normalize=True).iloc[0] > 0.15


def test_job_titles_follow_keyword_rules(history: SampleHistory) -> None:
    titles = history.leads["job_title"].dropna().str.lower()
    assert titles.str.contains(r"\b(?:vp|vice president|svp)\b").any()
    assert titles.str.contains(r"\b(?:student|intern)\b").any()
    for title, seniority in zip(synth.JOB_TITLES, synth.TITLE_SENIORITY, strict=True):
        lowered = title.lower()
        if any(w in lowered for w in ("intern", "student", "candidate")):
            assert synth.SENIORITIES[seniority] == "student", title
        elif lowered.startswith(("vp", "vice president", "svp")):
            assert synth.SENIORITIES[seniority] == "vp", title


# --- the truth -----------------------------------------------------------------------------


def test_truth_rows_are_the_open_leads(history: SampleHistory, reached) -> None:
    leads = history.leads.set_index("lead_id")
    sql = reached["sql"]
    closed = reached[["sql", "customer", "lost", "disqualified"]].min(axis=1)
    truth = history.truth
    for as_of, rows in truth.groupby("as_of"):
        is_open = (leads["created_at"] < as_of) & ~(closed < as_of)
        assert set(rows["lead_id"]) == set(is_open[is_open].index)
        horizon_end = as_of + pd.Timedelta(days=history.horizon_days)
        hit = sql.reindex(rows["lead_id"])
        expected = ((hit > as_of) & (hit <= horizon_end)).to_numpy()
        assert (rows["converted"].to_numpy() == expected).all()
    assert truth["as_of"].nunique() == 12
    assert (truth["as_of"] + pd.Timedelta(days=history.horizon_days) <= history.end).all()


def test_truth_is_calibrated(history: SampleHistory) -> None:
    truth = history.truth
    p, y = truth["p_true"].to_numpy(), truth["converted"].to_numpy()
    assert ((p >= 0) & (p <= 1)).all()
    assert abs(p.mean() - y.mean()) < 3 * np.sqrt((p * (1 - p)).sum()) / len(p) + 1e-3
    # Binned expected vs observed, within binomial error (rows of one lead are correlated,
    # so allow 4 standard errors).
    positive = p > 0
    bins = pd.qcut(p[positive], 8, labels=False, duplicates="drop")
    for b in np.unique(bins):
        pb, yb = p[positive][bins == b], y[positive][bins == b]
        se = np.sqrt((pb * (1 - pb)).sum()) / len(pb)
        assert abs(pb.mean() - yb.mean()) < 4 * se + 0.005, (b, pb.mean(), yb.mean())
    assert y[~positive].sum() == 0  # p = 0 is exact: those leads cannot convert
    brier = np.mean((p - y) ** 2)
    assert brier < 0.85 * np.mean((y.mean() - y) ** 2)
    edges = np.quantile(p, np.linspace(0, 1, 11))
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, 9)
    ece = sum(abs(p[which == b].sum() - y[which == b].sum()) for b in range(10)) / len(p)
    assert ece < 0.01
    assert roc_auc_score(y, p) > 0.85


def test_p_true_matches_simulated_journeys() -> None:
    """Exactness: p_true for one lead equals the conversion frequency of many simulated copies."""
    rng = np.random.default_rng(0)
    world = synth.World(400, 0, 60, np.array([100]), np.array([0.0]), ("2024-01",))
    n = 40_000
    base = {"fit": np.full(n, 1.4), "engage": np.full(n, 2.0), "interest": np.full(n, 1.3)}
    lead = {
        **base,
        "rates": synth.daily_rates(base),
        "w_start": np.full(n, 120),
        "w_end": np.full(n, 140),  # window opens mid-horizon
        "start_state": np.full(n, synth.CONSIDERING),
    }
    simulated = synth.simulate_journeys(rng, {**lead, "created": np.full(n, 100.0)}, world)
    converted = simulated["day"][simulated["to"] == synth.CONVERTED]
    frequency = (converted < 100 + world.horizon).sum() / n

    no_moves = {
        "lead": np.zeros(0, np.int64),
        "day": np.zeros(0, np.int64),
        "to": np.zeros(0, np.int8),
    }
    stages = {"closed": np.full(n, np.inf), "tau": np.full(n, np.inf)}
    truth = synth.exact_truth({**lead, "created": np.full(n, 99.5)}, no_moves, stages, world)
    p = truth["p"][0]
    assert np.allclose(truth["p"], p)
    assert 0.05 < p < 0.95
    assert abs(frequency - p) < 4 * np.sqrt(p * (1 - p) / n)
    # Without the window the probability is clearly lower: the timing matters and is used.
    no_window = {
        **lead,
        "created": np.full(n, 99.5),
        "w_start": np.full(n, 10**9),
        "w_end": np.full(n, 10**9),
    }
    assert synth.exact_truth(no_window, no_moves, stages, world)["p"][0] < p - 0.02


def test_several_chunks_give_consistent_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synth.history, "CHUNK_LEADS", 400)  # where it is read
    h = generate_history(1_000, 3, history_days=300, horizon_days=30)
    assert h.leads["lead_id"].is_unique
    assert set(h.events["lead_id"]) <= set(h.leads["lead_id"])
    assert h.events["lead_id"].is_monotonic_increasing
    assert h.stages.groupby("lead_id").size().size == len(h.leads)
    assert h.truth["lead_id"].isin(h.leads["lead_id"]).all()


# --- arguments and files -------------------------------------------------------------------


def test_custom_truth_dates_and_bad_arguments() -> None:
    h = generate_history(
        300,
        1,
        end="2025-01-01",
        history_days=200,
        horizon_days=30,
        truth_as_of=["2024-10-01", pd.Timestamp("2024-11-15", tz="UTC")],
    )
    assert h.end == pd.Timestamp("2025-01-01", tz="UTC")
    assert sorted(h.truth["as_of"].dt.strftime("%Y-%m-%d").unique()) == ["2024-10-01", "2024-11-15"]
    with pytest.raises(synth.SynthError, match="horizon"):
        generate_history(100, truth_as_of=["2026-06-01"])
    with pytest.raises(synth.SynthError, match="midnight"):
        generate_history(100, end="2026-06-30 12:00")
    with pytest.raises(synth.SynthError, match="n_leads"):
        generate_history(0)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_write_history_round_trips(tmp_path, fmt: str) -> None:
    h = generate_history(200, 5, history_days=200, horizon_days=30)
    paths = write_history(h, tmp_path / "out", format=fmt)
    assert list(paths) == ["accounts", "leads", "events", "stages", "truth"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{name}.{fmt}" for name in paths
    )  # fmt: skip  (no temporary files left behind)
    read = pd.read_parquet if fmt == "parquet" else pd.read_csv
    events = read(paths["events"])
    assert len(events) == len(h.events)
    if fmt == "parquet":
        pd.testing.assert_frame_equal(events, h.events)
        pd.testing.assert_frame_equal(read(paths["truth"]), h.truth)
    else:
        stamps = pd.to_datetime(events["occurred_at"], utc=True, format="ISO8601")
        assert (stamps.dt.as_unit("us") == h.events["occurred_at"]).all()
