"""Flat exports trained with --time: a date column that falls after the row's own time (a close
date) is post-outcome by construction; the leakage guard's ``after_time`` check leaves it out
with the share of rows after the time and the figure by class, unless --allow-column keeps it.
Dates before the row's time, or on its own day, are honest; without --time dates are not model
inputs, so the check does not apply."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from flat_helpers import HONEST, export_frame, fast_settings, write_csv
from leadml.cli import app
from leadml.config import LeakageSettings
from leadml.flat import train_flat
from leadml.modeling.leakage import check_leakage

FAST = fast_settings()


def dated_export(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """The honest export (``Created`` day-first) with two date columns in ISO 8601:

    - ``Close Date``: a later day for every converted lead and for about 40 % of the others (the
      rest closed on the day they were created, at some hour), blank for about 10 % of rows;
    - ``First Touch``: on the created day (in the afternoon) or days before it.
    """
    frame = export_frame(n, seed=seed, leaks=False)
    rng = np.random.default_rng(seed + 1)
    created = pd.to_datetime(frame["Created"], format="%d/%m/%Y")
    converted = (frame["Converted"] == "1").to_numpy()
    later = converted | (rng.random(n) < 0.4)
    days = np.where(later, rng.integers(1, 120, n), 0)
    hours = rng.integers(0, 24, n)
    close = created + pd.to_timedelta(days, "D") + pd.to_timedelta(hours, "h")
    frame["Close Date"] = np.where(
        later, close.dt.strftime("%Y-%m-%d"), close.dt.strftime("%Y-%m-%dT%H:%M:%S")
    )
    frame.loc[rng.random(n) < 0.1, "Close Date"] = ""
    before = np.where(rng.random(n) < 0.5, 0, rng.integers(1, 60, n))
    touch = created - pd.to_timedelta(before, "D") + pd.Timedelta(hours=15)
    frame["First Touch"] = touch.dt.strftime("%Y-%m-%dT%H:%M:%S")
    return frame


def after_shares(frame: pd.DataFrame, column: str) -> dict[str, float]:
    """The expected figures, computed from the text: later calendar day than ``Created``."""
    created = pd.to_datetime(frame["Created"], format="%d/%m/%Y")
    present = frame[column] != ""
    when = pd.to_datetime(frame[column].where(present), format="ISO8601").dt.normalize()
    after = present & (when > created)
    converted = frame["Converted"] == "1"
    return {
        "all": after[present].mean(),
        "converted": after[present & converted].mean(),
        "others": after[present & ~converted].mean(),
        "after": int(after.sum()),
        "present": int(present.sum()),
    }


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return dated_export()


@pytest.fixture(scope="module")
def by_time(frame, one_thread):
    return train_flat(frame, "Converted", id="Lead ID", time="Created", settings=FAST)


@pytest.fixture(scope="module")
def allowed(frame, one_thread):
    return train_flat(
        frame, "Converted", id="Lead ID", time="Created", allow=["Close Date"], settings=FAST
    )


def test_a_date_after_the_rows_time_is_left_out_with_the_figures_by_class(frame, by_time):
    report = by_time.leakage
    assert report.excluded == ["Close Date"], report.format()
    (finding,) = [f for f in report.reasons("Close Date") if f.check == "after_time"]
    expected = after_shares(frame, "Close Date")
    assert expected["converted"] == 1.0 and 0.3 < expected["others"] < 0.5  # the data's shape
    figures = report.columns.set_index("column").loc["Close Date"]
    assert figures["after_time_share"] == pytest.approx(expected["all"])
    assert figures["after_time_converted"] == pytest.approx(expected["converted"])
    assert figures["after_time_others"] == pytest.approx(expected["others"])
    # Blank cells are not dates: the share is of the present ones.
    assert f"({expected['after']:,} of {expected['present']:,})" in finding.reason
    assert f"{expected['all']:.0%} of its dates" in finding.reason
    assert f"converted 100%, not converted {expected['others']:.0%}" in finding.reason
    assert "threshold 5%" in finding.reason
    # Reported like the other checks: text, Markdown, JSON and the columns' fate.
    assert "Close Date: excluded\n    - after_time: " in report.format()
    assert "| Close Date | excluded | after\\_time: " in report.markdown()
    flagged = report.to_dict()["flagged"]["Close Date"]
    assert flagged["action"] == "excluded"
    assert {"check": "after_time", "reason": finding.reason} in flagged["reasons"]
    columns = by_time.inputs.columns.set_index("column")
    assert "after_time" in columns.loc["Close Date", "leakage"]
    assert not columns.loc["Close Date", "used"]
    assert "Close Date" not in by_time.feature_names and by_time.trained


def test_dates_before_the_rows_time_or_on_its_day_are_not_flagged(frame, by_time):
    # Half the first touches fall on the created day but hours after its midnight.
    assert after_shares(frame, "First Touch")["all"] == 0.0
    assert "First Touch" not in by_time.leakage.flagged
    figures = by_time.leakage.columns.set_index("column").loc["First Touch"]
    assert figures["after_time_share"] == 0.0
    assert "First Touch" in by_time.feature_names
    assert set(HONEST) <= set(by_time.feature_names)
    # Columns that are not dates get no after_time figures.
    assert np.isnan(by_time.leakage.columns.set_index("column").loc["Visits", "after_time_share"])


def test_allow_column_keeps_a_date_after_the_time_and_the_report_says_so(allowed):
    report = allowed.leakage
    assert report.allowed == ["Close Date"] and report.excluded == []
    assert "Close Date: KEPT (allowed)\n    - after_time: " in report.format()
    assert report.to_dict()["allowed"] == ["Close Date"]
    assert "| Close Date | kept (allowed) | after\\_time: " in report.markdown()
    assert "Close Date" in allowed.feature_names
    columns = allowed.inputs.columns.set_index("column")
    assert columns.loc["Close Date", "leakage"] == "flagged, kept (allowed)"


def test_without_a_time_column_dates_are_not_inputs_and_the_check_does_not_apply(frame):
    # 80 rows: a cold start, but the guard has run and reported.
    small = frame.head(80)
    result = train_flat(small, "Converted", id="Lead ID", settings=FAST)
    assert not result.trained and result.leakage is not None
    assert "Close Date" not in result.leakage.flagged
    assert "Close Date" not in set(result.leakage.columns["column"])
    assert "after_time_share" not in result.leakage.columns
    columns = result.inputs.columns.set_index("column")
    assert columns.loc["Close Date", "role"] == "date" and not columns.loc["Close Date", "used"]
    assert "without --time" in columns.loc["Close Date", "note"]


@pytest.mark.parametrize("written", ["%m/%d/%Y %H:%M", "%d.%m.%Y", "parquet"])
def test_every_date_format_the_reader_parses_is_checked(written, tmp_path):
    n = 120
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n) // 2, "D")
    close = created + pd.to_timedelta(np.where(np.arange(n) % 4 == 0, 0, 20), "D")
    frame = export_frame(n, leaks=False).drop(columns=["Created", "Lead ID"])
    if written == "parquet":
        source = tmp_path / "leads.parquet"
        frame.assign(Created=created, **{"Close Date": close}).to_parquet(source)
    else:
        source = frame.assign(
            Created=created.strftime("%Y-%m-%d"), **{"Close Date": close.strftime(written)}
        )
    # Too few rows to train (a cold start), but the guard has run.
    result = train_flat(source, "Converted", time="Created", settings=FAST)
    assert not result.trained
    figures = result.leakage.columns.set_index("column").loc["Close Date"]
    assert figures["after_time_share"] == 0.75
    assert result.leakage.excluded == ["Close Date"]


@pytest.mark.parametrize(
    ("days", "threshold", "flagged"),
    [
        ([1.0] * 5 + [0.0] * 95, 0.05, False),  # exactly 5 %: not more than the threshold
        ([1.0] * 6 + [0.0] * 94, 0.05, True),
        ([1.0] * 6 + [np.nan] * 94, 0.05, True),  # missing dates do not count: 6 of 6
        ([1.0] * 6 + [np.nan] * 94, 1.0, False),  # 1 turns the check off
        ([0.0] * 50 + [-3.0] * 50, 0.0, False),  # the row's own day is not after it
    ],
)
def test_the_threshold_is_a_share_of_the_present_dates(days, threshold, flagged):
    y = np.tile([0, 1], 50)
    dates = pd.DataFrame({"Converted On": days})
    settings = LeakageSettings(max_after_time_share=threshold)
    report = check_leakage(dates, y, settings, days_after=dates)
    assert (report.flagged == ["Converted On"]) is flagged, report.format()
    share = report.columns.set_index("column").loc["Converted On", "after_time_share"]
    present = ~np.isnan(days)
    assert share == pytest.approx(np.mean(np.asarray(days)[present] > 0))


def test_the_check_follows_the_sample_of_rows_the_guard_uses():
    n = 3_000
    y = np.arange(n) % 2
    # After the time for the converted rows only: the figures by class survive sampling.
    days = pd.DataFrame({"Close Date": np.where(y == 1, 10.0, -10.0)})
    report = check_leakage(days, y, LeakageSettings(max_rows=1_000), days_after=days)
    row = report.columns.set_index("column").loc["Close Date"]
    assert report.rows == 1_000
    assert (row["after_time_converted"], row["after_time_others"]) == (1.0, 0.0)


def test_the_cli_names_the_date_after_the_time(frame, store, tmp_path):
    config = tmp_path / "leadml.yaml"
    settings = FAST.model_dump(mode="json")
    config.write_text(
        yaml.safe_dump(
            {
                "model": settings["model"],
                "tracking": {"uri": store.tracking.uri, "export_dir": store.tracking.export_dir},
            }
        )
    )
    export = write_csv(frame, tmp_path / "leads.csv")
    args = ["train", "--flat", str(export), "--target", "Converted", "--id", "Lead ID"]
    args += ["--time", "Created", "--config", str(config), "--no-plots"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "Close Date: excluded\n    - after_time: " in done.output
    assert "First Touch" not in done.output.split("Leakage guard:")[1].split("\n\n")[0]
    client = MlflowClient(tracking_uri=store.tracking.uri)
    version = client.get_model_version_by_alias("leadml-mql-flat", "challenger")
    run = client.get_run(version.run_id)
    leakage = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/leakage.json")
    assert leakage["excluded"] == ["Close Date"]
    assert leakage["flagged"]["Close Date"]["reasons"][0]["check"] == "after_time"
