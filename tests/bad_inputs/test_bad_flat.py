"""Bad flat CRM exports given to `leadml train --flat`: each is refused before anything is
trained or tracked, with a message naming the file, the column, the rows and an example; no
MLflow store, model folder or other file appears."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def export(n: int = 60) -> pd.DataFrame:
    """A small valid export, every value text as a CRM writes it."""
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "Lead ID": [f"X{i:03d}" for i in range(n)],
            "Created": pd.date_range("2025-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
            "Source": rng.choice(["Google", "Referral", "Direct"], n),
            "Visits": rng.integers(0, 20, n).astype(str),
            "Converted": (np.arange(n) % 3 == 0).astype(int).astype(str),
        }
    )


def set_cells(column: str, rows: list[int], value: str) -> Callable[[pd.DataFrame], None]:
    def change(frame: pd.DataFrame) -> None:
        frame.loc[rows, column] = value

    return change


def column(name: str, values: Callable[[int], list]) -> Callable[[pd.DataFrame], None]:
    def change(frame: pd.DataFrame) -> None:
        frame[name] = values(len(frame))

    return change


def truncate(keep: float = 0.5) -> Callable[[Path], None]:
    def spoil(path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])

    return spoil


def replace(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


def add_line(line: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(path.read_text() + line + "\n")


@dataclass(frozen=True)
class Case:
    id: str
    expect: tuple[str, ...]  # fragments: the file, the column, rows, an example
    change: Callable[[pd.DataFrame], None] | None = None
    spoil: Callable[[Path], None] | None = None
    name: str = "export.csv"
    args: tuple[str, ...] = ()  # beyond --flat FILE
    code: int = 3
    rows: int = 60
    options: dict = field(default_factory=lambda: {"--target": "Converted", "--id": "Lead ID"})


CASES = [
    Case("target_missing", ("export.csv", "target 'Convertd' is not a column", "60 rows",
                            "did you mean 'Converted'"),
         options={"--target": "Convertd"}),
    Case("target_not_binary", ("export.csv", "target column 'Converted' must be binary",
                               "3 distinct values", "'maybe'"),
         change=set_cells("Converted", [5, 7], "maybe")),
    Case("target_one_class", ("export.csv", "'Converted' has a single value", "'0'",
                              "all 60 rows"),
         change=column("Converted", lambda n: ["0"] * n)),
    Case("target_empty", ("export.csv", "'Converted' has no values in 60 rows",),
         change=column("Converted", lambda n: [""] * n)),
    Case("target_unclear_positive", ("export.csv", "'Converted' has the values", "'won'",
                                     "'lost'", "--positive"),
         change=column("Converted", lambda n: ["won", "lost"] * (n // 2))),
    Case("positive_not_a_value", ("--positive 'yes' is not a value of the target",),
         options={"--target": "Converted", "--positive": "yes"}),
    Case("id_unknown", ("export.csv", "--id 'LeadID' is not a column", "did you mean 'Lead ID'"),
         options={"--target": "Converted", "--id": "LeadID"}),
    Case("time_unknown", ("export.csv", "--time 'created' is not a column",
                          "did you mean 'Created'"),
         options={"--target": "Converted", "--time": "created"}),
    Case("time_unparseable", ("export.csv", "--time column 'Source' must hold dates",
                              "60 values", "e.g. '"),
         options={"--target": "Converted", "--time": "Source"}),
    Case("target_is_the_id", ("export.csv", "must be different columns"),
         options={"--target": "Converted", "--id": "Converted"}),
    Case("exclude_unknown", ("export.csv", "--exclude 'Visitz' is not a column"),
         args=("--exclude", "Visitz")),
    Case("allow_unknown", ("export.csv", "--allow-column 'Nope' is not a column"),
         args=("--allow-column", "Nope")),
    Case("inf_in_numbers", ("export.csv", "column 'Visits'", "1 row(s)", "not finite", "'inf'"),
         change=set_cells("Visits", [3], "inf")),
    Case("beyond_double_range", ("export.csv", "column 'Visits'", "2 row(s)", "'1e400'"),
         change=set_cells("Visits", [3, 9], "1e400")),
    Case("inf_in_parquet", ("export.parquet", "column 'Visits'", "1 row(s)", "'inf'"),
         name="export.parquet",
         change=column("Visits", lambda n: [np.inf] + [1.0] * (n - 1))),
    Case("empty_file", ("export.csv", "the file is empty (0 bytes)"), spoil=replace(b"")),
    Case("blank_file", ("export.csv", "holds no text"), spoil=replace(b"\n\n  \n")),
    Case("header_only", ("export.csv", "no rows", "5 columns", "'Lead ID'"),
         spoil=replace(b"Lead ID,Created,Source,Visits,Converted\n")),
    Case("ragged_row", ("export.csv", "cannot parse it as CSV", "Expected 5 fields in line 62"),
         spoil=add_line("X999,2025-03-01,Google,3,0,surprise")),
    Case("truncated_csv_gz", ("export.csv.gz", "cannot read it"), name="export.csv.gz",
         spoil=truncate(0.7)),
    Case("truncated_parquet", ("export.parquet", "cannot read it as Parquet"),
         name="export.parquet", spoil=truncate()),
    Case("file_missing", ("nothing.csv: file not found",), name="nothing.csv",
         spoil=lambda path: path.unlink()),
    Case("flat_and_data", ("either --data DIR", "or --flat FILE"), args=("--data", "."),
         code=2),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_flat_export_is_refused_before_training(case, cli, nothing_written, tmp_path,
                                                    monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)  # where an MLflow store or models/ would appear
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    frame = export(case.rows)
    if case.change:
        case.change(frame)
    path = tmp_path / case.name
    if case.name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    elif case.name.endswith(".gz"):
        big = pd.concat([frame] * 400, ignore_index=True)  # longer than the sampled head
        path.write_bytes(gzip.compress(big.to_csv(index=False).encode()))
    else:
        frame.to_csv(path, index=False)
    if case.spoil:
        case.spoil(path)
    options = [str(x) for pair in case.options.items() for x in pair]
    with nothing_written():
        code, output = cli("train", "--flat", path, *options, *case.args, "--no-plots",
                           "--no-report")  # fmt: skip
    assert code == case.code, output
    for fragment in case.expect:
        assert fragment in output, f"{fragment!r} not in:\n{output}"
