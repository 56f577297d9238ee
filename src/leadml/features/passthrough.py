"""Passthrough features: extra input columns named in ``features.passthrough``, copied as they are.

Lead and account attributes carry no history in the input contract, so like the fit attributes
they are taken as known from the lead's creation on (only pairs whose lead existed are kept).
"""

from __future__ import annotations

from leadml.common.sql import sql_ident
from leadml.config import PassthroughSettings, Settings
from leadml.data import LeadData
from leadml.data.asof import existing_leads
from leadml.errors import DataError
from leadml.features._spec import Feature, identifier

_PREFIX = {"leads": "lead_", "accounts": "account_"}
_NUMERIC = {
    "DOUBLE",
    "FLOAT",
    "BIGINT",
    "INTEGER",
    "SMALLINT",
    "TINYINT",
    "HUGEINT",
    "UBIGINT",
    "UINTEGER",
    "USMALLINT",
    "UTINYINT",
    "DECIMAL",
}


def columns(passthrough: PassthroughSettings) -> list[tuple[str, str, str]]:
    """(table, input column, feature name) for every configured passthrough column."""
    return [
        (table, column, _PREFIX[table] + identifier(column))
        for table in ("leads", "accounts")
        for column in getattr(passthrough, table)
    ]


def catalogue(settings: Settings, data: LeadData | None = None) -> list[Feature]:
    out = []
    for table, column, name in columns(settings.features.passthrough):
        kind = "category" if data is None else _kind(data, table, column)
        out.append(Feature(name, f"{table}.{column} as given in the input (passthrough)", kind))
    return out


def check(data: LeadData) -> None:
    """Raise a :class:`DataError` naming any configured column the input does not have."""
    for table, column, _ in columns(data.settings.features.passthrough):
        if table not in data.extra_columns:
            raise DataError(
                f"features.passthrough.{table}: column {column!r} cannot be passed through: the "
                f"input has no {table} table (remove the setting, or add the table)"
            )
        if column not in data.extra_columns.get(table, []):
            raise DataError(
                f"features.passthrough.{table}: column {column!r} is not an extra column of the "
                f"{table} input (extra columns found: {data.extra_columns.get(table, [])})"
            )


def _kind(data: LeadData, table: str, column: str) -> str:
    """Numbers stay numbers; text that all parses as numbers (CSV input) becomes a number too."""
    col = sql_ident(column)
    typed, parsed, present = data.con.execute(
        f"SELECT any_value(typeof({col})), count(TRY_CAST({col} AS DOUBLE)), count({col}) "
        f"FROM {table}"
    ).fetchall()[0]
    if typed == "BOOLEAN":
        return "flag"
    parses = typed == "VARCHAR" and present > 0 and parsed == present
    if (typed or "").split("(")[0] in _NUMERIC or parses:
        return "number"
    return "category"


def sql(data: LeadData, spine: str, kinds: dict[str, str]) -> str | None:
    """SQL: one row per existing pair with the passthrough columns, or None if none are set."""
    cols = columns(data.settings.features.passthrough)
    if not cols:
        return None
    select = []
    for table, column, name in cols:
        source = ("l." if table == "leads" else "acc.") + sql_ident(column)
        if kinds[name] == "number":
            source = f"TRY_CAST({source} AS DOUBLE)"
        select.append(f"{source} AS {sql_ident(name)}")
    return (
        f"SELECT l.lead_id, l.as_of, {', '.join(select)} FROM ({existing_leads(spine)}) l "
        f"LEFT JOIN accounts acc ON acc.account_id = l.account_id"
    )
