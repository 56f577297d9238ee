"""The sparse-crm scenario: a real CRM's funnel (thin records, slow deals, leads never closed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from leadml.cli import app
from leadml.synth import SampleHistory, generate_history, write_history
from synth_helpers import digest

N = 3_000
SEED = 7
FIRMOGRAPHICS = ["industry", "employee_count", "annual_revenue", "country", "tech_stack"]
CLOSING = ["sql", "opportunity", "customer", "lost", "disqualified"]
# sha256 of generate_history(1_500, 7, scenario="drift") made by the code before sparse-crm
# existed (commit 9735c55).
DRIFT_DIGEST = "073e9a6d9c62d57287652ec7d277f54a377fe3bc3b8fe69035221c7fa8a69d00"


def _first_stage(history: SampleHistory) -> pd.DataFrame:
    """First time each lead entered each stage: one row per lead, one column per stage."""
    first = history.stages.groupby(["lead_id", "stage"])["entered_at"].min().unstack()
    return first.reindex(index=history.leads["lead_id"], columns=[*CLOSING, "mql"])


def _events_per_lead(history: SampleHistory) -> pd.Series:
    counts = history.events.groupby("lead_id").size()
    return counts.reindex(history.leads["lead_id"], fill_value=0)


@pytest.fixture(scope="module")
def sparse() -> SampleHistory:
    return generate_history(N, SEED, scenario="sparse-crm")


@pytest.fixture(scope="module")
def default() -> SampleHistory:
    return generate_history(N, SEED)


def test_records_are_thin(sparse: SampleHistory, default: SampleHistory) -> None:
    accounts, leads = sparse.accounts, sparse.leads
    assert list(accounts.columns) == list(default.accounts.columns)  # the columns stay, null
    no_firmographics = accounts[FIRMOGRAPHICS].isna().all(axis=1).mean()
    assert 0.7 < no_firmographics < 0.9
    assert accounts[FIRMOGRAPHICS].notna().all(axis=1).mean() == pytest.approx(
        1 - no_firmographics
    )  # an account has all its firmographics or none
    assert 0.28 < leads["account_id"].isna().mean() < 0.4
    assert default.leads["account_id"].isna().mean() < 0.12
    # Every recorded account id exists (the contract's foreign key).
    assert leads["account_id"].dropna().isin(accounts["account_id"]).all()
    assert 2 <= _events_per_lead(sparse).median() <= 8 < _events_per_lead(default).median()


def test_leads_arrive_early_and_convert_late(sparse: SampleHistory) -> None:
    leads, span = sparse.leads, sparse.end - sparse.start
    created = (leads["created_at"] - sparse.start) / span
    assert created.max() <= 0.7 < created.max() + 0.02  # created up to the cut-off, not beyond
    first = _first_stage(sparse)
    delay = (first["sql"] - leads.set_index("lead_id")["created_at"]).dt.days.dropna()
    assert 0.08 < len(delay) / len(leads) < 0.2
    assert delay.median() > 60
    assert (delay > 180).mean() > 0.25  # a good share of outcomes arrive half a year later
    assert delay.quantile(0.95) > 365 * 0.9  # ... and some about a year later
    # About one MQL in ten is won in the end.
    assert 0.04 < first["customer"].notna().sum() / first["mql"].notna().sum() < 0.2


def test_non_converters_never_close(sparse: SampleHistory, default: SampleHistory) -> None:
    first = _first_stage(sparse)
    never = first[first["sql"].isna()]
    assert len(never) > 0.8 * N
    assert never[["lost", "disqualified"]].isna().all(axis=1).mean() > 0.95
    # No sales review is recorded, so a non-converter stays at lead or mql.
    assert not sparse.stages["stage"].isin(["sal", "srl"]).any()
    assert default.stages["stage"].isin(["sal", "srl"]).any()


def test_truth_is_consistent_with_the_tables(sparse: SampleHistory) -> None:
    """Truth rows are the leads open at as_of; `converted` is sql within the horizon."""
    truth, leads = sparse.truth, sparse.leads.set_index("lead_id")
    first = _first_stage(sparse)
    closed = first[CLOSING].min(axis=1)
    horizon = pd.Timedelta(days=sparse.horizon_days)
    for as_of, rows in truth.groupby("as_of"):
        open_ = leads.index[(leads["created_at"] < as_of) & ~(closed.to_numpy() < as_of)]
        assert set(rows["lead_id"]) == set(open_)
        sql = first["sql"].reindex(rows["lead_id"]).to_numpy()
        expected = (sql >= as_of) & (sql < as_of + horizon)
        np.testing.assert_array_equal(rows["converted"].to_numpy(), expected)
        p, y = rows["p_true"].to_numpy(), rows["converted"].to_numpy()
        assert abs(p.mean() - y.mean()) < 4 * np.sqrt((p * (1 - p)).sum()) / len(p) + 0.01
    assert roc_auc_score(truth["converted"], truth["p_true"]) > 0.8


def test_same_seed_same_history() -> None:
    first = generate_history(600, 3, history_days=400, horizon_days=30, scenario="sparse-crm")
    again = generate_history(600, 3, history_days=400, horizon_days=30, scenario="sparse-crm")
    for name, frame in {**first.tables(), "truth": first.truth}.items():
        pd.testing.assert_frame_equal(frame, getattr(again, name), obj=name)
    other = generate_history(600, 4, history_days=400, horizon_days=30, scenario="sparse-crm")
    assert not first.events.equals(other.events)


def test_drift_is_unchanged() -> None:
    """The default is pinned in test_synth_drift.py; drift here, both made before sparse-crm."""
    assert digest(generate_history(1_500, SEED, scenario="drift")) == DRIFT_DIGEST


def test_validate_accepts_it(sparse: SampleHistory, tmp_path) -> None:
    write_history(sparse, tmp_path / "api")
    runner = CliRunner()
    made = runner.invoke(
        app, ["synth", "--out", str(tmp_path / "cli"), "--leads", "800", "--scenario", "sparse-crm"]
    )
    assert made.exit_code == 0, made.output
    for folder in ("api", "cli"):
        result = runner.invoke(app, ["validate", "--data", str(tmp_path / folder)])
        assert result.exit_code == 0, result.output
        assert "0 error(s)" in result.output
