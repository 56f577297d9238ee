"""Sample-history scenarios: the default one unchanged, a drifting one whose base rate grows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from leadml import synth
from leadml.data import load_data
from leadml.data.asof import label_pairs, open_leads
from leadml.synth import SampleHistory, generate_history
from synth_helpers import digest

N = 4_000
SEED = 7
# sha256 of generate_history(4_000, 7) made by the code before scenarios existed (commit 7bad354).
DEFAULT_DIGEST = "35269f1857c8642468a0490f530bf7d9ddbc826a2e77b5f84ad948e6ffc31b23"


def base_rate_by_quarter(history: SampleHistory) -> pd.Series:
    """Share of the weekly open-lead snapshots (mature ones) whose lead reaches sql in 90 days.

    The snapshots of a training set with the default settings (every 7 days back from the end,
    from 30 days after the first lead), grouped by the calendar quarter of the snapshot.
    """
    data = load_data(history.tables())
    first = history.leads["created_at"].min() + pd.Timedelta(days=30)
    dates = pd.date_range(start=data.end().floor("D"), end=first, freq="-7D")
    pairs = label_pairs(data, open_leads(data, list(dates)))
    pairs = pairs[pairs["mature"]]
    quarter = pairs["as_of"].dt.tz_localize(None).dt.to_period("Q")
    return pairs["label"].astype(float).groupby(quarter).mean()


@pytest.fixture(scope="module")
def default() -> SampleHistory:
    return generate_history(N, SEED)


@pytest.fixture(scope="module")
def drift() -> SampleHistory:
    return generate_history(N, SEED, scenario="drift")


def test_default_scenario_is_unchanged(default: SampleHistory) -> None:
    assert default.scenario == "default"
    assert digest(default) == DEFAULT_DIGEST


def test_drift_base_rate_grows_fivefold(default: SampleHistory, drift: SampleHistory) -> None:
    rates = base_rate_by_quarter(drift)
    assert len(rates) >= 6
    assert 0.003 < rates.iloc[0] < 0.05  # the first quarter still converts, rarely
    assert rates.iloc[-1] >= 5 * rates.iloc[0]
    assert rates.iloc[-1] > 0.08
    assert (rates.diff().iloc[2:] > 0).all()  # a steady rise, not one jump
    # Without drift the base rate does not rise (old open leads pile up and rarely convert).
    steady = base_rate_by_quarter(default)
    assert steady.iloc[-1] < steady.iloc[0]


def test_drift_keeps_the_journeys_readable(drift: SampleHistory) -> None:
    """p_true stays calibrated and sharp; recent engagement still tells converters apart."""
    truth = drift.truth
    assert drift.scenario == "drift"
    for _, rows in truth.groupby("as_of"):
        p, y = rows["p_true"].to_numpy(), rows["converted"].to_numpy()
        assert abs(p.mean() - y.mean()) < 4 * np.sqrt((p * (1 - p)).sum()) / len(p) + 0.01
    assert roc_auc_score(truth["converted"], truth["p_true"]) > 0.85
    assert truth.groupby(truth["as_of"].dt.year)["converted"].mean().is_monotonic_increasing
    # Events in the 30 days before the as-of instant rank the outcome well above chance.
    events = drift.events.merge(truth[["lead_id", "as_of"]], on="lead_id")
    recent = events["occurred_at"].between(
        events["as_of"] - pd.Timedelta(days=30), events["as_of"], inclusive="left"
    )
    counts = events[recent].groupby(["lead_id", "as_of"]).size()
    n_recent = truth.set_index(["lead_id", "as_of"]).index.map(counts).fillna(0)
    assert roc_auc_score(truth["converted"], n_recent) > 0.7


def test_drift_same_seed_same_history() -> None:
    first = generate_history(800, 3, history_days=300, horizon_days=30, scenario="drift")
    again = generate_history(800, 3, history_days=300, horizon_days=30, scenario="drift")
    for name, frame in {**first.tables(), "truth": first.truth}.items():
        pd.testing.assert_frame_equal(frame, getattr(again, name), obj=name)
    plain = generate_history(800, 3, history_days=300, horizon_days=30)
    assert not first.stages.equals(plain.stages)


def test_p_true_is_exact_under_drift() -> None:
    """p_true for one lead equals the conversion frequency of many copies while the level moves."""
    rng = np.random.default_rng(1)
    drifting = (0.5, 3.0)
    world = synth.World(400, 0, 60, np.array([100]), np.array([0.0]), ("2024-01",), drifting)
    assert len(np.unique(world.level(np.arange(100, 160)))) >= 8  # it moves within the horizon
    n = 40_000
    base = {"fit": np.full(n, 1.2), "engage": np.full(n, 1.5), "interest": np.full(n, 1.1)}
    lead = {
        **base,
        "rates": synth.daily_rates(base),
        "w_start": np.full(n, 125),
        "w_end": np.full(n, 140),
        "start_state": np.full(n, synth.CONSIDERING),
    }
    simulated = synth.simulate_journeys(rng, {**lead, "created": np.full(n, 100.0)}, world)
    converted = simulated["day"][simulated["to"] == synth.CONVERTED]
    frequency = (converted < 100 + world.horizon).sum() / n

    no_moves = {"lead": np.zeros(0, np.int64), "day": np.zeros(0, np.int64)}
    no_moves["to"] = np.zeros(0, np.int8)
    stages = {"closed": np.full(n, np.inf), "tau": np.full(n, np.inf)}
    created = {**lead, "created": np.full(n, 99.5)}
    p = synth.exact_truth(created, no_moves, stages, world)["p"][0]
    assert 0.05 < p < 0.95
    assert abs(frequency - p) < 4 * np.sqrt(p * (1 - p) / n)
    # The same lead without drift (level 1 throughout) converts with another probability.
    steady = synth.World(400, 0, 60, np.array([100]), np.array([0.0]), ("2024-01",))
    assert abs(synth.exact_truth(created, no_moves, stages, steady)["p"][0] - p) > 0.02


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(synth.SynthError, match="scenario must be one of default, drift"):
        generate_history(10, scenario="boom")
