"""Tables given in memory as pandas, Arrow or DuckDB relations load and validate alike."""

from __future__ import annotations

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from leadml.data import load_data
from leadml.data.validation import validate_data
from leadml.errors import DataError

NOW = pd.Timestamp("2025-06-01", tz="UTC")
# pyarrow reads timezone-aware columns through Series.values, which pandas 3.1 flags.
pytestmark = pytest.mark.filterwarnings("ignore:Series.values returning an ndarray")
_OTHER = duckdb.connect()  # relations from a connection that is not leadml's


def as_pandas(frame: pd.DataFrame):
    return frame


def as_arrow(frame: pd.DataFrame):
    return pa.Table.from_pandas(frame, preserve_index=False)


def as_batches(frame: pd.DataFrame):
    return as_arrow(frame).to_reader(max_chunksize=2)  # several batches for 3-4 rows


def as_relation(frame: pd.DataFrame):
    return _OTHER.from_arrow(as_arrow(frame))


KINDS = {"arrow": as_arrow, "batches": as_batches, "relation": as_relation}


def canonical(source) -> dict[str, pd.DataFrame]:
    data = load_data(source, now=NOW)
    return {name: data.table(name) for name in ("accounts", "leads", "events", "stages")}


@pytest.mark.parametrize("kind", KINDS)
def test_arrow_and_relations_load_to_the_same_canonical_tables(tiny_tables, kind):
    expected = canonical(tiny_tables)
    got = canonical({name: KINDS[kind](frame) for name, frame in tiny_tables.items()})
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(got[name], frame, check_dtype=True)
        assert len(frame) > 0


@pytest.mark.parametrize("kind", KINDS)
def test_errors_name_table_column_rows_and_example(tiny_tables, kind):
    events = tiny_tables["events"].copy()
    events.loc[[1, 2], "lead_id"] = "L404"
    tables = {**tiny_tables, "events": events}
    report = validate_data({n: KINDS[kind](f) for n, f in tables.items()}, now=NOW)
    (problem,) = [p for p in report.errors if p.table == "events" and p.column == "lead_id"]
    assert (problem.rows, problem.example) == (2, "L404")
    assert "not found in leads" in problem.message


def test_a_mixed_mapping_and_an_unknown_kind(tiny_tables):
    mixed = {
        "accounts": tiny_tables["accounts"],
        "leads": as_arrow(tiny_tables["leads"]),
        "events": as_batches(tiny_tables["events"]),
        "stages": as_relation(tiny_tables["stages"]),
    }
    assert validate_data(mixed, now=NOW).problems == []
    with pytest.raises(DataError, match="table 'leads' is a list; give a DataFrame"):
        validate_data({**tiny_tables, "leads": [1, 2]}, now=NOW)
