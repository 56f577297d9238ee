"""Validation of the input contract: all problems at once, each with table, column, rows, example.

The row checks of one table run as a single SQL aggregate, so validating 50 M events costs a few
scans, not a few dozen; names (event types, stages) are checked per distinct value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import duckdb
import pandas as pd

from leadml.common.sql import sql_ident
from leadml.config import Settings
from leadml.config.contract import PII_COLUMNS, TABLES, MissingInput, missing_inputs
from leadml.data.readers import RawTables, ReadFailure, Source, parse_instant, read_raw
from leadml.errors import DataError

Severity = Literal["error", "warning"]

#: Values longer than this many characters are warned about: a category or id that long is
#: a pasted document or an attack, and it would land whole in reports.
MAX_VALUE_CHARS = 1_000
#: A lead whose events exceed both this and :data:`OUTLIER_FACTOR` times the 99th percentile of
#: events per lead is an outlier (a bot, a test account, a scraper).
OUTLIER_MIN_EVENTS = 10_000
OUTLIER_FACTOR = 100


@dataclass(frozen=True)
class Problem:
    severity: Severity
    table: str
    column: str | None
    rows: int | None
    message: str
    example: object = None

    def format(self) -> str:
        return f"{self.severity:<7} {self.describe()}"

    def describe(self) -> str:
        """Where, how many rows, what, and an example: the problem without its severity."""
        where = f"{self.table}.{self.column}" if self.column else self.table
        rows = "" if self.rows is None else f" {self.rows:,} row{'s' if self.rows != 1 else ''}:"
        example = "" if self.example is None else f" (e.g. {self.example!r})"
        return f"{where}:{rows} {self.message}{example}"


@dataclass
class ValidationReport:
    problems: list[Problem] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)
    # The distinct raw names seen ("events": event types, "stages": stages), which loading maps.
    names: dict[str, list[str]] = field(default_factory=dict)
    # The optional inputs the data lacks, and what leadml leaves out without each (a warning
    # each, too).
    missing_inputs: list[MissingInput] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def format(self) -> str:
        counts = ", ".join(f"{name} {n:,}" for name, n in self.row_counts.items())
        head = f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)" + (
            f" in {counts} rows" if counts else ""
        )
        return "\n".join([head, *(p.format() for p in self.problems)])

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([p.__dict__ for p in self.problems])


class DataValidationError(DataError):
    """Validation found errors; ``report`` holds all of them, not just the first."""

    def __init__(self, report: ValidationReport):
        self.report = report
        super().__init__(report.format())


def validate_data(
    source: Source, settings: Settings | None = None, *, now: pd.Timestamp | str | None = None
) -> ValidationReport:
    """Check a data folder, a database, an object-store prefix or a mapping of tables in memory
    (see :func:`leadml.data.load_data`) against the input contract.

    Examples
    --------
    >>> import pandas as pd
    >>> leads = pd.DataFrame({"lead_id": ["L1", "L1"], "created_at": ["2025-01-01", "2025-01-02"],
    ...                       "lead_source": ["web", "web"]})
    >>> report = validate_data({"leads": leads})
    >>> print(report.errors[0].format())
    error   events: table is missing
    >>> any("duplicate" in p.message for p in report.errors)
    True
    """
    settings = settings or Settings()
    return validate_raw(read_raw(source, tables=settings.data.tables), settings, now=now)


def validate_raw(
    raw: RawTables, settings: Settings, *, now: pd.Timestamp | str | None = None
) -> ValidationReport:
    """Validate tables already registered by :func:`leadml.data.readers.read_raw`."""
    now = pd.Timestamp.now(tz="UTC") if now is None else parse_instant(now, "now")
    latest = now + pd.Timedelta(seconds=settings.data.future_tolerance_seconds)
    report = ValidationReport()
    for name in raw.missing:
        # Where a database or object store was searched, say where (a folder's files are known).
        where = f" (looked for {raw.origins[name]})" if name in raw.origins else ""
        report.problems.append(Problem("error", name, None, None, f"table is missing{where}"))
    for name, failure in raw.unreadable.items():
        report.problems.append(_unreadable(name, failure))
    usable: set[str] = set()
    for name, present in raw.columns.items():
        spec = TABLES[name]
        absent = [c for c in spec.required if c not in present]
        for column in absent:
            report.problems.append(
                Problem("error", name, column, None, f"required column is missing; found {present}")
            )
        try:
            n = raw.con.execute(f"SELECT count(*) FROM raw_{name}").fetchall()[0][0]
        except duckdb.Error as exc:
            report.problems.append(_unreadable(name, raw.failure(name, exc)))
            continue
        report.row_counts[name] = n
        if n == 0 and not spec.optional and name not in raw.cut:
            report.problems.append(Problem("error", name, None, 0, "table is empty"))
        elif n and not absent:
            usable.add(name)
    checks = _Checks(raw, settings, latest)
    for name in ("accounts", "leads", "events", "stages"):
        if name in usable:
            # A file can break past the rows counting read (a bad byte, a cut-off gzip stream):
            # the checks read every text value, so they meet it here, not in a later step.
            try:
                report.problems.extend(checks.run(name, usable))
            except duckdb.Error as exc:
                usable.discard(name)
                report.problems.append(_unreadable(name, raw.failure(name, exc)))
    report.names = checks.names
    if report.row_counts.get("leads"):
        # An empty optional table is as good as none.
        present = {n: c for n, c in raw.columns.items() if report.row_counts.get(n)}
        report.missing_inputs = missing_inputs(present)
        for missing in report.missing_inputs:
            report.problems.append(
                Problem("warning", missing.table, missing.column, None, missing.message)
            )
    return report


def _unreadable(name: str, failure: ReadFailure) -> Problem:
    return Problem("error", name, None, failure.rows, failure.message, failure.example)


@dataclass(frozen=True)
class _Check:
    severity: Severity
    column: str
    condition: str  # SQL boolean over the table's rows (alias t; l = the lead, when joined)
    example: str  # SQL expression shown for one offending row
    message: str


class _Checks:
    """Builds and runs the per-table checks; one SQL aggregate per table."""

    def __init__(self, raw: RawTables, settings: Settings, latest: pd.Timestamp):
        self.raw = raw
        self.settings = settings
        self.latest = f"TIMESTAMPTZ '{latest.isoformat()}'"
        self.names: dict[str, list[str]] = {}

    def run(self, name: str, usable: set[str]) -> list[Problem]:
        checks = list(self._row_checks(name))
        joined = name in ("events", "stages") and "leads" in usable
        source = f"raw_{name} t"
        if joined:
            checks += self._lead_checks(name)
            source += (
                " LEFT JOIN (SELECT CAST(lead_id AS VARCHAR) AS lead_id,"
                " min(TRY_CAST(created_at AS TIMESTAMPTZ)) AS created_at"
                " FROM raw_leads GROUP BY 1) l ON CAST(t.lead_id AS VARCHAR) = l.lead_id"
            )
        if name == "leads" and "accounts" in usable and "account_id" in self.raw.columns["leads"]:
            source += (
                " LEFT JOIN (SELECT DISTINCT CAST(account_id AS VARCHAR) AS account_id"
                " FROM raw_accounts) a ON CAST(t.account_id AS VARCHAR) = a.account_id"
            )
            checks.append(
                _Check(
                    "error",
                    "account_id",
                    "t.account_id IS NOT NULL AND a.account_id IS NULL",
                    "t.account_id",
                    "account_id not found in accounts",
                )
            )
        problems = self._aggregate(name, source, checks)
        problems += self._names(name)
        key = TABLES[name].key
        if key:
            problems += self._duplicates(name, key)
        if name == "events":
            problems += self._outlier_leads()
        return problems

    def _row_checks(self, name: str):
        spec = TABLES[name]
        present = self.raw.columns[name]
        for column in spec.columns:
            if column.name not in present:
                continue
            c = f"t.{column.name}"
            if column.kind == "id" and column.required:
                yield _Check("error", column.name, f"{c} IS NULL", "NULL", "missing id")
            elif column.kind == "timestamp":
                parsed = f"TRY_CAST({c} AS TIMESTAMPTZ)"
                yield _Check("error", column.name, f"{c} IS NULL", "NULL", "missing timestamp")
                yield _Check(
                    "error",
                    column.name,
                    f"{c} IS NOT NULL AND {parsed} IS NULL",
                    f"CAST({c} AS VARCHAR)",
                    "unparseable timestamp",
                )
                yield _Check(
                    "error",
                    column.name,
                    f"{parsed} > {self.latest}",
                    f"CAST({parsed} AS VARCHAR)",
                    "timestamp in the future",
                )
            elif column.kind == "number":
                number = f"TRY_CAST({c} AS DOUBLE)"
                yield _Check(
                    "error",
                    column.name,
                    f"{c} IS NOT NULL AND {number} IS NULL",
                    f"CAST({c} AS VARCHAR)",
                    "not a number",
                )
                # DuckDB reads 'inf', 'NaN' and 1e400 as doubles; no feature or rule can use
                # them (NaN would even sort above every size band).
                yield _Check(
                    "error",
                    column.name,
                    f"NOT isfinite({number})",
                    f"CAST({c} AS VARCHAR)",
                    "not a finite number (inf, NaN or beyond ±1.8e308): leave the value empty "
                    "when it is unknown",
                )
                yield _Check(
                    "error",
                    column.name,
                    f"{number} < 0 AND isfinite({number})",
                    f"CAST({c} AS VARCHAR)",
                    "negative value",
                )
        # Only text can be long; casting timestamps to text to measure them would triple the
        # cost of validating a Parquet history.
        for column in (c for c in present if self.raw.types[name].get(c) == "VARCHAR"):
            text = f"t.{sql_ident(column)}"
            # The start of the value shows what it is, unless it is personal data.
            start = (
                "" if column.strip().lower() in PII_COLUMNS else f"left({text}, 40) || '... ' ||"
            )
            yield _Check(
                "warning",
                column,
                f"length({text}) > {MAX_VALUE_CHARS}",
                f"{start} '(' || length({text}) || ' characters)'",
                f"values longer than {MAX_VALUE_CHARS:,} characters (pasted text? an attack?)",
            )

    def _lead_checks(self, name: str):
        time = TABLES[name].timestamps[0]
        yield _Check(
            "error",
            "lead_id",
            "t.lead_id IS NOT NULL AND l.lead_id IS NULL",
            "t.lead_id",
            "lead_id not found in leads",
        )
        yield _Check(
            "warning",
            time,
            f"TRY_CAST(t.{time} AS TIMESTAMPTZ) < l.created_at",
            f"CAST(t.lead_id AS VARCHAR) || ' at '"
            f" || CAST(TRY_CAST(t.{time} AS TIMESTAMPTZ) AS VARCHAR)",
            "before the lead was created",
        )

    def _aggregate(self, name: str, source: str, checks: list[_Check]) -> list[Problem]:
        """Count every check's rows in one scan; fetch an example only for the checks that fail.

        On 50 M events, ``count_if`` over the rows is ~10x faster than pairs of filtered
        ``count`` and ``any_value``, and clean input (every night, one hopes) needs no example.
        """
        if not checks:
            return []
        counts = ", ".join(f"count_if({check.condition})" for check in checks)
        values = self.raw.con.execute(f"SELECT {counts} FROM {source}").fetchall()[0]
        problems = []
        for check, n in zip(checks, values, strict=True):
            if n:
                example = self.raw.con.execute(
                    f"SELECT {check.example} FROM {source} WHERE {check.condition} LIMIT 1"
                ).fetchall()[0][0]
                problems.append(
                    Problem(check.severity, name, check.column, n, check.message, example)
                )
        return problems

    def _names(self, name: str) -> list[Problem]:
        """Lifecycle stage and event type names not in the configuration, checked per distinct
        name (a few dozen) rather than per row."""
        data = self.settings.data
        if name == "stages":
            column, known, severity = "stage", data.stage_lookup(), "error"
            message = "unknown stage name (map it in data.stage_aliases)"
        elif name == "events":
            column, known, severity = "event_type", data.event_type_lookup(), "warning"
            message = "unknown event type, counted as 'other' (map it in data.event_types)"
        else:
            return []
        counts = self.raw.con.execute(
            f"SELECT CAST({column} AS VARCHAR), count(*) FROM raw_{name} GROUP BY 1"
        ).fetchall()
        self.names[name] = [value for value, _ in counts if value is not None]
        unknown = [(v, n) for v, n in counts if v is None or v.strip().lower() not in known]
        if not unknown:
            return []
        rows = sum(n for _, n in unknown)
        return [Problem(severity, name, column, rows, message, unknown[0][0])]

    def _outlier_leads(self) -> list[Problem]:
        """Leads with far more events than the rest (a bot, a test account): one warning.

        The bar is relative (:data:`OUTLIER_FACTOR` times the 99th percentile of events per
        lead) so that a busy history is not flagged, with a floor
        (:data:`OUTLIER_MIN_EVENTS`) so that a small one is not either.
        """
        leads, events, example, most, p99 = self.raw.con.execute(
            f"""
            WITH per_lead AS (
                SELECT CAST(lead_id AS VARCHAR) AS lead_id, count(*) AS n
                FROM raw_events WHERE lead_id IS NOT NULL GROUP BY 1
            ), bar AS (SELECT quantile_cont(n, 0.99) AS p99 FROM per_lead)
            SELECT count(*), sum(n), arg_max(lead_id, n), max(n), any_value(p99)
            FROM per_lead, bar
            WHERE n > greatest({OUTLIER_MIN_EVENTS}, {OUTLIER_FACTOR} * p99)
            """
        ).fetchall()[0]
        if not leads:
            return []
        bar = max(OUTLIER_MIN_EVENTS, OUTLIER_FACTOR * p99)
        message = (
            f"{leads:,} lead(s) with over {bar:,.0f} events each (the larger of "
            f"{OUTLIER_MIN_EVENTS:,} and {OUTLIER_FACTOR} x {p99:,.1f}, the 99th percentile of "
            "events per lead): bots or test accounts? their features and rule points are "
            "extreme; drop them if they are not people"
        )
        return [Problem("warning", "events", "lead_id", int(events), message,
                        f"{example}: {most:,} events")]  # fmt: skip

    def _duplicates(self, name: str, key: str) -> list[Problem]:
        n, example = self.raw.con.execute(
            f"SELECT sum(n), any_value(k) FROM (SELECT CAST({key} AS VARCHAR) AS k, count(*) AS n"
            f" FROM raw_{name} WHERE {key} IS NOT NULL GROUP BY 1 HAVING count(*) > 1)"
        ).fetchall()[0]
        if not n:
            return []
        return [Problem("error", name, key, int(n), "duplicate id", example)]
