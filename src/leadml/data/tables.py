"""Loading: read, validate and normalise the four tables into one in-process database.

After :func:`load_data` every table is canonical: ids are text, timestamps are UTC, event types and
lifecycle stages carry their canonical names, each event has its buying stage, and optional columns
and tables exist (null, or empty, when the input lacked them), so SQL never has to ask what the
input looked like. What the input lacks is recorded once, in :attr:`LeadData.missing_inputs`: the
features and rules that would read it are left out, rather than read from nulls.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from leadml.common.sql import sql_str
from leadml.config import Settings
from leadml.config.contract import TABLES, MissingInput
from leadml.data.readers import RawTables, Source, read_raw
from leadml.data.shards import Shard, restrict
from leadml.data.validation import DataValidationError, ValidationReport, validate_raw
from leadml.errors import DataError

_SQL_TYPES = {"id": "VARCHAR", "text": "VARCHAR", "number": "DOUBLE", "timestamp": "TIMESTAMPTZ"}


@dataclass
class LeadData:
    """The canonical tables ``accounts``, ``leads``, ``events`` and ``stages`` in ``con``.

    ``report`` holds the warnings validation found; ``extra_columns`` the input columns beyond the
    contract, per table, which feature builders may pass through by configuration;
    ``missing_inputs`` the optional inputs the data lacks (no accounts table, no job titles, ...),
    each with what is left out without it.
    """

    con: duckdb.DuckDBPyConnection
    settings: Settings
    report: ValidationReport
    extra_columns: dict[str, list[str]]
    missing_inputs: list[MissingInput] = field(default_factory=list)
    # The shard of the input these tables hold (load_data's ``shard``), and the whole input's
    # (first lead created, end), by which outcomes are known.
    shard: Shard | None = None
    span: tuple[pd.Timestamp, pd.Timestamp] | None = None

    @property
    def unavailable(self) -> frozenset[str]:
        """The fit attributes the input cannot supply: left out of features, rules and reports."""
        return frozenset(a for m in self.missing_inputs for a in m.attributes)

    @property
    def has_accounts(self) -> bool:
        """Whether leads can be grouped by account (the account feature family)."""
        return not any(m.account_features for m in self.missing_inputs)

    @property
    def notes(self) -> list[str]:
        """Validation's warnings, one sentence each: what the input lacks and what is left out
        for it, values counted otherwise (an unknown event type as 'other'), and the like."""
        return [p.describe() for p in self.report.warnings]

    def table(self, name: str) -> pd.DataFrame:
        """One canonical table as a DataFrame (for notebooks and tests; avoid on 50 M events).

        Sorted by its columns in order (ids, then time), so the same data gives the same frame
        whatever the order of the input's rows.
        """
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}; expected one of {list(TABLES)}")
        return self.con.execute(f"SELECT * FROM {name} ORDER BY ALL").df()

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
        """The latest timestamp in the data: outcomes after it are not known yet (of the whole
        history, for data read as a shard)."""
        return self.span[1] if self.span else input_span(self.con)[1]

    def first_created(self) -> pd.Timestamp:
        """When the first lead was created (of the whole history, for data read as a shard)."""
        return self.span[0] if self.span else input_span(self.con)[0]

    @contextmanager
    def registered(self, prefix: str, frame: pd.DataFrame) -> Iterator[str]:
        """Make ``frame`` queryable under a unique name starting with ``prefix`` for the
        duration of a block; yields the name."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self.con.register(name, frame)
        try:
            yield name
        finally:
            self.con.unregister(name)

    @contextmanager
    def in_memory(self, name: str) -> Iterator[None]:
        """Hold one canonical table in DuckDB's memory for the duration of a block.

        For work that reads a table many times, such as a training set's weekly snapshots
        (100 k leads, a year of snapshots: 114 s -> 85 s, measured with other jobs running), at
        the cost of the table's size in memory; DuckDB spills to disk past its memory limit.
        Nested blocks hold it once.
        """
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}; expected one of {list(TABLES)}")
        (definition,) = self.con.execute(
            "SELECT sql FROM duckdb_views() WHERE view_name = ? AND NOT internal", [name]
        ).fetchall()[0]
        if "_held_" in definition:
            yield
            return
        held = f"{name}_held_{uuid.uuid4().hex[:12]}"
        self.con.execute(f"CREATE TEMP TABLE {held} AS SELECT * FROM {name}")
        self.con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {held}")
        try:
            yield
        finally:
            self.con.execute(definition.replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1))
            self.con.execute(f"DROP TABLE {held}")

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
    shard: Shard | str | None = None,
) -> LeadData:
    """Read, validate and normalise a data folder, a database URI, an object-store prefix, or a
    mapping of tables (DataFrames, Arrow tables or record batches, DuckDB relations, file paths);
    see :data:`leadml.data.readers.Source`.

    Settings: an explicit ``settings`` argument wins, everywhere in leadml; without one, a
    :class:`LeadData` keeps its own and anything else is read with the defaults. (A
    :class:`LeadData` given other settings keeps its tables as they were normalised: event types
    and stages read with the settings it was loaded with.)

    With ``shard`` (``"I/N"``), only the rows of that shard are read and validated (see
    :mod:`leadml.data.shards`); a :class:`LeadData` is returned whole.

    Raises
    ------
    DataValidationError
        When validation finds errors; its ``report`` lists every problem, and nothing is loaded.
    """
    if isinstance(source, LeadData):
        if settings is None or settings is source.settings:
            return source
        return dataclasses.replace(source, settings=settings)
    settings = settings or Settings()
    raw = read_raw(source, tables=settings.data.tables)
    span, shard = None, None if shard is None else Shard.parse(shard)
    if shard is not None:
        # Outcomes are known until the whole history's end, not the shard's; input that cannot
        # be read this far is for validation to describe.
        with contextlib.suppress(duckdb.Error):
            span = input_span(raw.con)
        restrict(raw, shard)
    report = validate_raw(raw, settings, now=now)
    if not report.ok:
        raise DataValidationError(report)
    if shard is not None and span is None:
        raise DataError(f"{source}: the whole history's time span could not be read, so shard "
                        f"{shard} cannot tell when outcomes are known")  # fmt: skip
    _normalise(raw, settings, report.names.get("events", []))
    contract = {name: {c.name for c in spec.columns} for name, spec in TABLES.items()}
    extra = {
        name: [c for c in cols if c not in contract[name]] for name, cols in raw.columns.items()
    }
    return LeadData(raw.con, settings, report, extra, list(report.missing_inputs), shard, span)


def input_span(con: duckdb.DuckDBPyConnection) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(first lead created, latest timestamp) of the input tables ``raw_*`` of ``con``."""
    # From the input tables, cast as the views cast them: a Parquet file answers min() and
    # max() from its statistics, where the events view's join to the event-type map reads every
    # row (0.01 s instead of 0.6 s on 53 M events).
    ts = _SQL_TYPES["timestamp"]
    latest = ", ".join(
        f"(SELECT max(CAST({TABLES[name].timestamps[0]} AS {ts})) FROM raw_{name})"
        for name in ("leads", "events", "stages")
    )
    first = f"(SELECT min(CAST(created_at AS {ts})) FROM raw_leads)"
    # .df() rather than fetchall(): DuckDB needs pytz to hand out aware Python datetimes.
    found = con.execute(f"SELECT {first} AS first, greatest({latest}) AS end").df().iloc[0]
    return found["first"], found["end"]


def _normalise(raw: RawTables, settings: Settings, event_types: list[str]) -> None:
    stage = _lookup("t.stage", settings.data.stage_lookup(), "NULL")
    _register_event_types(raw, settings, event_types)
    for name, spec in TABLES.items():
        # An optional table the input lacks is an empty one, with every column.
        present = raw.columns.get(name, [])
        source = f"raw_{name} t" if name in raw.columns else "(SELECT 1) t WHERE false"
        select = []
        for column in spec.columns:
            if name == "events" and column.name == "event_type":
                select += [
                    "coalesce(m.event_type, 'other') AS event_type",
                    "coalesce(m.buying_stage, 'none') AS buying_stage",
                ]
                source += f" LEFT JOIN {EVENT_TYPES} m ON m.raw = CAST(t.event_type AS VARCHAR)"
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
            f"CREATE OR REPLACE VIEW {name} AS SELECT {', '.join(select)} FROM {source}"
        )


#: The table mapping each raw event type of the input to its canonical type and buying stage.
EVENT_TYPES = "event_type_map"


def _register_event_types(raw: RawTables, settings: Settings, seen: list[str]) -> None:
    """Map the input's distinct raw event types (``seen``, as validation found them) once, in
    Python, into a small table.

    The events view joins it instead of evaluating a text CASE per row: on 50 M events a filter
    on the buying stage then costs a hash probe, not ~10 s of string comparisons.
    """
    lookup, stage_of = settings.data.event_type_lookup(), settings.data.buying_stage_lookup()
    rows = []
    for value in seen:
        canonical = lookup.get(value.strip().lower(), "other")
        rows.append((value, canonical, stage_of.get(canonical, "none")))
    raw.con.execute(
        f"CREATE OR REPLACE TEMP TABLE {EVENT_TYPES} "
        "(raw VARCHAR PRIMARY KEY, event_type VARCHAR, buying_stage VARCHAR)"
    )
    if rows:
        raw.con.executemany(f"INSERT INTO {EVENT_TYPES} VALUES (?, ?, ?)", rows)


def _lookup(column: str, mapping: dict[str, str], default: str) -> str:
    """SQL mapping a text column, compared lower-cased and trimmed, through ``mapping``."""
    key = f"lower(trim(CAST({column} AS VARCHAR)))"
    cases = " ".join(f"WHEN {sql_str(k)} THEN {sql_str(v)}" for k, v in mapping.items())
    return f"CASE {key} {cases} ELSE {default} END"
