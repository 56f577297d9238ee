"""The sample history as a CRM's flat export: one row per lead, counts that match the events, a
converted flag that matches the stages, no PII and nothing observed after the row's instant."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadml import synth
from leadml.cli import app
from leadml.config import Settings
from leadml.data import load_data
from leadml.data.asof import label_pairs
from leadml.flat import read_flat
from leadml.flat.roles import plan_columns
from leadml.modeling.leakage import check_leakage
from leadml.synth import FLAT_ACTIVITY, SampleHistory, flat_export, generate_history, write_flat

DAYS = synth.FLAT_ACTIVITY_DAYS


@pytest.fixture(scope="module", params=["default", "drift"])
def history(request) -> SampleHistory:
    return generate_history(3_000, 11, scenario=request.param)


@pytest.fixture(scope="module")
def flat(history: SampleHistory) -> pd.DataFrame:
    return flat_export(history)


def test_one_row_per_lead_open_at_its_instant(history: SampleHistory, flat: pd.DataFrame) -> None:
    assert flat["lead_id"].is_unique and flat["lead_id"].is_monotonic_increasing
    leads = history.leads.set_index("lead_id")
    seen = leads["created_at"] + pd.Timedelta(days=DAYS)
    closing = history.stages[
        history.stages["stage"].isin(["sql", "opportunity", "customer", "lost", "disqualified"])
    ]
    closed_before = set(
        closing.loc[closing["entered_at"] < closing["lead_id"].map(seen), "lead_id"]
    )
    known = seen + pd.Timedelta(days=history.horizon_days) <= history.end
    expected = sorted(set(leads.index[known]) - closed_before)
    assert flat["lead_id"].tolist() == expected
    assert len(flat) > 0.5 * len(leads)
    pd.testing.assert_series_equal(
        flat["created_at"], leads.loc[flat["lead_id"], "created_at"].reset_index(drop=True)
    )


def test_activity_counts_match_the_events(history: SampleHistory, flat: pd.DataFrame) -> None:
    events = history.events.merge(flat[["lead_id", "created_at"]], on="lead_id")
    window = events["occurred_at"] < events["created_at"] + pd.Timedelta(days=DAYS)
    counted = events[window].groupby(["lead_id", "event_type"]).size().unstack(fill_value=0)
    counted = counted.reindex(index=flat["lead_id"], columns=synth.EVENT_TYPES, fill_value=0)
    for column, event_type in FLAT_ACTIVITY.items():
        assert (flat[column].to_numpy() == counted[event_type].to_numpy()).all(), column
    assert sorted(FLAT_ACTIVITY.values()) == sorted(synth.EVENT_TYPES)
    assert flat["page_views"].sum() > 0 and flat["demo_requests"].sum() > 0


def test_converted_matches_the_stages(history: SampleHistory, flat: pd.DataFrame) -> None:
    """``converted`` is leadml's own label of the pair (lead, created_at + 30 days)."""
    data = load_data(history.tables())
    spine = pd.DataFrame(
        {"lead_id": flat["lead_id"], "as_of": flat["created_at"] + pd.Timedelta(days=DAYS)}
    )
    labelled = label_pairs(data, spine, end=history.end)
    assert labelled["mature"].all()
    assert (labelled["label"].to_numpy(dtype=bool) == flat["converted"].to_numpy()).all()
    assert 0.02 < flat["converted"].mean() < 0.5


def test_no_pii_and_no_leak(flat: pd.DataFrame) -> None:
    assert not {"email", "first_name", "last_name", "phone", "name"} & set(flat.columns)
    text = flat.select_dtypes(include="str")
    assert not text.apply(lambda c: c.str.contains("@", regex=False).any()).any()
    # Read as leadml reads a flat export, no column gives the outcome away.
    export = read_flat(flat)
    settings = Settings()
    plan = plan_columns(
        export, "converted", id="lead_id", time="created_at", leakage=settings.leakage
    )
    roles = {r.name: r.role for r in plan.roles}
    assert roles["lead_id"] == "id" and roles["created_at"] == "time"
    assert all(roles[c] in ("numeric", "boolean") for c in FLAT_ACTIVITY)
    assert roles["employee_count"] == "numeric" and roles["seniority"] == "categorical"
    features = flat.drop(columns=["lead_id", "created_at", "converted"])
    report = check_leakage(features, flat["converted"].to_numpy(dtype=int), settings.leakage)
    assert report.flagged == []


def test_drift_shows_in_the_flat_export() -> None:
    flat = flat_export(generate_history(3_000, 11, scenario="drift"))
    by_half = flat.groupby(flat["created_at"] < flat["created_at"].median())["converted"].mean()
    assert by_half[False] > 3 * by_half[True]  # later leads convert far more often


@pytest.mark.parametrize("name", ["flat.parquet", "flat.csv", "flat.csv.gz"])
def test_write_flat_round_trips(tmp_path, name: str) -> None:
    frame = flat_export(generate_history(300, 2, history_days=300, horizon_days=30))
    path = write_flat(frame, tmp_path / "sub" / name)
    assert [p.name for p in path.parent.iterdir()] == [name]  # no temporary file left behind
    back = read_flat(path).frame
    assert back.columns.tolist() == frame.columns.tolist() and len(back) == len(frame)
    assert back["lead_id"].tolist() == frame["lead_id"].tolist()
    assert (back["page_views"].astype(int).to_numpy() == frame["page_views"].to_numpy()).all()
    assert back["converted"].str.lower().map({"true": True, "false": False}).tolist() == (
        frame["converted"].tolist()
    )


def test_bad_flat_arguments(tmp_path) -> None:
    history = generate_history(200, 2, history_days=300, horizon_days=30)
    with pytest.raises(synth.SynthError, match=r"\.csv, \.csv\.gz or \.parquet"):
        write_flat(flat_export(history), tmp_path / "flat.xlsx")
    with pytest.raises(synth.SynthError, match="activity_days"):
        flat_export(history, activity_days=0)
    shorter = flat_export(history, activity_days=7, horizon_days=14)
    assert (
        len(shorter) > len(flat_export(history)) and np.isin(shorter.columns, ["email"]).sum() == 0
    )


def test_synth_command_writes_the_flat_file_alone_or_with_the_folder(tmp_path) -> None:
    runner = CliRunner()
    args = ["synth", "--leads", "400", "--seed", "5", "--scenario", "drift"]
    alone = runner.invoke(app, [*args, "--flat", str(tmp_path / "flat.csv")])
    assert alone.exit_code == 0, alone.output
    assert [p.name for p in tmp_path.iterdir()] == ["flat.csv"]
    expected = flat_export(generate_history(400, 5, scenario="drift"))
    assert len(pd.read_csv(tmp_path / "flat.csv")) == len(expected)
    assert f"{len(expected):,} leads" in alone.output

    both = runner.invoke(
        app, [*args, "--out", str(tmp_path / "data"), "--flat", str(tmp_path / "f.parquet")]
    )
    assert both.exit_code == 0, both.output
    assert (tmp_path / "f.parquet").is_file() and (tmp_path / "data" / "events.parquet").is_file()

    for bad in ([], ["--flat", str(tmp_path / "flat.xlsx")]):
        refused = runner.invoke(app, [*args, *bad])
        assert refused.exit_code == 2, refused.output
    assert not (tmp_path / "flat.xlsx").exists()
