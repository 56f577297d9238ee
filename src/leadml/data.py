"""Loading: read, validate and normalise the four tables into one in-process database.

After :func:`load_data` every table is canonical: ids are text, timestamps are UTC, event types and
lifecycle stages carry their canonical names, each event has its buying stage, and optional columns
exist (null when the input lacked them), so no later step has to ask what the input looked like.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from leadml.config import Settings
from leadml.contract import TABLES
from leadml.errors import DataValidationError
from leadml.readers import RawTables, Source, read_raw
from leadml.validation import ValidationReport, sql_str, validate_raw

_SQL_TYPES = {"id": "VARCHAR", "text": "VARCHAR", "number": "DOUBLE", "timestamp": "TIMESTAMPTZ"}


@dataclass
class LeadData:
    """The canonical tables ``accounts``, ``leads``, ``events`` and ``stages`` in ``con``.

    ``report`` holds the warnings validation found; ``extra_columns`` the input columns beyond the
    contract, per table, which feature builders may pass through by configuration.
    """

    con: duckdb.DuckDBPyConnection
    settings: Settings
    report: ValidationReport
    extra_columns: dict[str, list[str]]

    def table(self, name: str) -> pd.DataFrame:
        """One canonical table as a DataFrame (for notebooks and tests; avoid on 50 M events)."""
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}; expected one of {list(TABLES)}")
        return self.con.execute(f"SELECT * FROM {name}").df()

    @property
    def accounts(self) -> pd.DataFrame:
        return self.table("accounts")

    @property
    def leads(self) -> pd.DataFrame:
        return self.table("leads")

    @property
    def events(self) -> pd.DataFrame:
        return self.table("events")

    @property
    def stages(self) -> pd.DataFrame:
        return self.table("stages")

    def end(self) -> pd.Timestamp:
        """The latest timestamp in the data: outcomes after it are not known yet."""
        # .df() rather than fetchall(): DuckDB needs pytz to hand out aware Python datetimes.
        return (
            self.con.execute(
                "SELECT greatest((SELECT max(created_at) FROM leads),"
                " (SELECT max(occurred_at) FROM events),"
                " (SELECT max(entered_at) FROM stages)) AS end"
            )
            .df()["end"]
            .iloc[0]
        )

    def row_counts(self) -> dict[str, int]:
        return {
            name: self.con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
            for name in TABLES
        }


def load_data(
    source: Source | LeadData,
    settings: Settings | None = None,
    *,
    now: pd.Timestamp | str | None = None,
) -> LeadData:
    """Read, validate and normalise a data folder or a mapping of DataFrames or file paths.

    Raises
    ------
    DataValidationError
        When validation finds errors; its ``report`` lists every problem, and nothing is loaded.
    """
    if isinstance(source, LeadData):
        return source
    settings = settings or Settings()
    raw = read_raw(source)
    report = validate_raw(raw, settings, now=now)
    if not report.ok:
        raise DataValidationError(report)
    _normalise(raw, settings)
    contract = {name: {c.name for c in spec.columns} for name, spec in TABLES.items()}
    extra = {
        name: [c for c in cols if c not in contract[name]] for name, cols in raw.columns.items()
    }
    return LeadData(raw.con, settings, report, extra)


def _normalise(raw: RawTables, settings: Settings) -> None:
    # Lookups are CASE expressions, not joins: they keep the input's row order, need no hash table.
    event_types = settings.data.event_type_lookup()
    stage_of = settings.data.buying_stage_lookup()
    event_type = _lookup("t.event_type", event_types, "'other'")
    buying_stage = _lookup(
        "t.event_type",
        {raw: stage_of[canonical] for raw, canonical in event_types.items()},
        "'none'",
    )
    stage = _lookup("t.stage", settings.data.stage_lookup(), "NULL")
    for name, spec in TABLES.items():
        present = raw.columns[name]
        select = []
        for column in spec.columns:
            if name == "events" and column.name == "event_type":
                select += [f"{event_type} AS event_type", f"{buying_stage} AS buying_stage"]
            elif name == "stages" and column.name == "stage":
                select.append(f"{stage} AS stage")
            elif column.name in present:
                select.append(
                    f"CAST(t.{column.name} AS {_SQL_TYPES[column.kind]}) AS {column.name}"
                )
            else:
                select.append(f"CAST(NULL AS {_SQL_TYPES[column.kind]}) AS {column.name}")
        contract = {c.name for c in spec.columns}
        select += [f't."{c}"' for c in present if c not in contract]
        # A view, not a table: each query streams the input again instead of holding 50 M
        # normalised events in memory.
        raw.con.execute(
            f"CREATE OR REPLACE VIEW {name} AS SELECT {', '.join(select)} FROM raw_{name} t"
        )


def _lookup(column: str, mapping: dict[str, str], default: str) -> str:
    """SQL mapping a text column, compared lower-cased and trimmed, through ``mapping``."""
    key = f"lower(trim(CAST({column} AS VARCHAR)))"
    cases = " ".join(f"WHEN {sql_str(k)} THEN {sql_str(v)}" for k, v in mapping.items())
    return f"CASE {key} {cases} ELSE {default} END"
