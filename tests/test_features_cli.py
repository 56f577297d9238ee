"""The features and trainset commands."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from leadml.cli import app
from leadml.features import FEATURES

runner = CliRunner()


def test_features_command_writes_one_row_per_open_lead(tiny_tables, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for name, frame in tiny_tables.items():
        frame.to_parquet(folder / f"{name}.parquet")
    out = tmp_path / "f.parquet"
    args = ["features", "--data", str(folder), "--as-of", "2025-02-03", "--out", str(out),
            "--now", "2026-01-01"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert sorted(frame["lead_id"]) == ["L1", "L2", "L3"]
    assert list(frame.columns) == ["lead_id", "as_of", *FEATURES]
    assert "3 open leads" in result.output


def test_trainset_command_reports_and_refuses_a_bad_suffix(tiny_tables, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for name, frame in tiny_tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    config = tmp_path / "c.yaml"
    config.write_text("target:\n  horizon_days: 14\ntrainset:\n  warmup_days: 0\n")
    out = tmp_path / "t.csv"
    base = ["trainset", "--data", str(folder), "--config", str(config), "--now", "2026-01-01"]
    result = runner.invoke(app, [*base, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "5 rows from 4 snapshots, 1 positives" in result.output
    assert "left out 5 immature pairs from 2 snapshots" in result.output
    assert pd.read_csv(out)["label"].sum() == 1
    bad = runner.invoke(app, [*base, "--out", str(tmp_path / "t.xlsx")])
    assert bad.exit_code != 0 and "must end in .parquet, .csv or .csv.gz" in bad.output
