"""Flat exports whose dates cannot be used, given to `leadml train --flat`: refused before
anything is trained or tracked, with a message naming the file, the column and why; no MLflow
store, model folder or other file appears."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def export(n: int = 60) -> pd.DataFrame:
    """A small export whose only candidate input is a close date, on a later day than the
    lead's creation for every row."""
    created = pd.date_range("2025-01-01", periods=n, freq="D")
    return pd.DataFrame(
        {
            "Lead ID": [f"X{i:03d}" for i in range(n)],
            "Created": created.strftime("%Y-%m-%d"),
            "Close Date": (created + pd.to_timedelta(np.arange(n) % 40 + 1, "D")).strftime(
                "%d/%m/%Y"
            ),
            "Converted": (np.arange(n) % 3 == 0).astype(int).astype(str),
        }
    )


CASES = {
    # The leakage guard leaves the close date out (after_time), and nothing else is left.
    "only_input_is_after_the_time": (
        ("--time", "Created"),
        ("export.csv", "no column is left to learn from", "Close Date: excluded", "after_time",
         "60 of 60"),
    ),
    # Without --time a date is not a model input: there is nothing for --allow-column to keep.
    "allow_a_date_without_time": (
        ("--allow-column", "Close Date"),
        ("export.csv", "--allow-column 'Close Date'", "not a model input (role date",
         "without --time"),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=str)
def test_unusable_dates_are_refused_before_training(case, cli, nothing_written, tmp_path,
                                                    monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)  # where an MLflow store or models/ would appear
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    args, expect = CASES[case]
    path = tmp_path / "export.csv"
    export().to_csv(path, index=False)
    with nothing_written():
        code, output = cli("train", "--flat", path, "--target", "Converted", "--id", "Lead ID",
                           *args, "--no-plots", "--no-report")  # fmt: skip
    assert code == 3, output
    for fragment in expect:
        assert fragment in output, f"{fragment!r} not in:\n{output}"
