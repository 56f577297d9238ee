"""The input contract: the four canonical tables, their columns and what each means.

Only ``leads``, ``events`` and ``stages`` are required. B2C and young CRMs have no accounts and
little firmographic data, so the ``accounts`` table, its firmographic columns, a lead's account,
source, title and country are optional; :func:`missing_inputs` says what leadml leaves out
without each (never filled with placeholders).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

ColumnKind = Literal["id", "text", "number", "timestamp"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: ColumnKind
    meaning: str
    required: bool = True
    pii: bool = False


@dataclass(frozen=True)
class TableSpec:
    name: str
    one_row_per: str
    columns: tuple[Column, ...]
    key: str | None = None  # unique id column, if rows have one
    optional: bool = False  # the input may lack the table (or hold it empty)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def timestamps(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.kind == "timestamp")

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


ACCOUNTS = TableSpec(
    "accounts",
    "company",
    (
        Column("account_id", "id", "unique id of the company"),
        Column("industry", "text", "industry, e.g. software, healthcare", required=False),
        Column("employee_count", "number", "number of employees", required=False),
        Column(
            "annual_revenue",
            "number",
            "annual revenue in one currency (USD in the sample)",
            required=False,
        ),
        Column(
            "country", "text", "ISO-3166 alpha-2 country code of the headquarters", required=False
        ),
    ),
    key="account_id",
    optional=True,
)
LEADS = TableSpec(
    "leads",
    "person",
    (
        Column("lead_id", "id", "unique id of the person"),
        Column("created_at", "timestamp", "when the lead was created (first known)"),
        Column(
            "lead_source",
            "text",
            "how the lead arrived, e.g. paid_search, referral",
            required=False,
        ),
        Column("account_id", "id", "the lead's company (accounts.account_id)", required=False),
        Column("job_title", "text", "free-text job title", required=False),
        Column(
            "seniority",
            "text",
            "seniority, if the CRM has it; else derived from the title",
            required=False,
        ),
        Column(
            "department",
            "text",
            "department, if the CRM has it; else derived from the title",
            required=False,
        ),
        Column("country", "text", "ISO-3166 alpha-2 country code of the person", required=False),
        Column(
            "email",
            "text",
            "e-mail address: used only to derive domain flags",
            required=False,
            pii=True,
        ),
    ),
    key="lead_id",
)
EVENTS = TableSpec(
    "events",
    "engagement action",
    (
        Column("lead_id", "id", "who acted (leads.lead_id)"),
        Column("occurred_at", "timestamp", "when the action happened"),
        Column(
            "event_type", "text", "raw action name, mapped to a canonical type by configuration"
        ),
        Column("channel", "text", "web, email, social, event, ...", required=False),
        Column("campaign", "text", "marketing campaign", required=False),
        Column("content_id", "text", "asset viewed or downloaded", required=False),
        Column("url", "text", "page address", required=False),
    ),
)
STAGES = TableSpec(
    "stages",
    "lifecycle transition",
    (
        Column("lead_id", "id", "whose stage changed (leads.lead_id)"),
        Column("stage", "text", "lifecycle stage entered, mapped to a canonical stage"),
        Column("entered_at", "timestamp", "when the stage was entered"),
        Column("reason", "text", "why, e.g. a rejection reason", required=False),
    ),
)

TABLES: dict[str, TableSpec] = {t.name: t for t in (ACCOUNTS, LEADS, EVENTS, STAGES)}
PII_COLUMNS = frozenset({"email", "first_name", "last_name", "full_name", "name", "phone"})


#: Firmographic column of ``accounts`` -> the fit attributes read from it.
FIRMOGRAPHICS = {
    "industry": ("industry",),
    "employee_count": ("employee_count", "company_size_band"),
    "annual_revenue": ("annual_revenue", "revenue_band"),
}


@dataclass(frozen=True)
class MissingInput:
    """An optional input the data lacks, and what leadml leaves out without it.

    ``column`` is None for a whole table; ``attributes`` are the fit attributes left out (with
    their features, fit rules and report segments); ``account_features``: the account family
    (the buying committee, ``account_*``) is left out too. ``message`` says it in words.
    """

    table: str
    column: str | None
    attributes: tuple[str, ...]
    message: str
    account_features: bool = False


def missing_inputs(present: Mapping[str, Collection[str]]) -> list[MissingInput]:
    """What the optional inputs missing from ``present`` (table -> its columns; a table absent
    or empty is not a key) take away, one entry per cause.

    Examples
    --------
    >>> leads = ["lead_id", "created_at", "lead_source", "job_title", "country"]
    >>> [m.message for m in missing_inputs({"leads": leads})]  # doctest: +NORMALIZE_WHITESPACE
    ['no accounts table and no leads.account_id: the account features (account_*) and the
      attributes has_account, industry, employee_count, company_size_band, annual_revenue,
      revenue_band are left out, and fit rules on them are skipped']
    """
    leads = set(present.get("leads", ()))
    accounts = None if "accounts" not in present else set(present["accounts"])
    found = []
    firmographic = tuple(a for names in FIRMOGRAPHICS.values() for a in names)
    if "account_id" not in leads:
        what = (
            "no accounts table and no leads.account_id"
            if accounts is None
            else "leads has no account_id column, so no lead can be matched to an account and "
            "the accounts table is not used"
        )
        table, column = ("accounts", None) if accounts is None else ("leads", "account_id")
        attributes = ("has_account", *firmographic)
        found.append(
            MissingInput(table, column, attributes, _left_out(what, attributes, True), True)
        )
    elif accounts is None:
        what = "no accounts table (or an empty one)"
        message = _left_out(what, firmographic) + (
            "; the account features still count the leads sharing a leads.account_id"
        )
        found.append(MissingInput("accounts", None, firmographic, message))
    else:
        for column, attributes in FIRMOGRAPHICS.items():
            if column not in accounts:
                what = f"accounts has no {column} column"
                found.append(
                    MissingInput("accounts", column, attributes, _left_out(what, attributes))
                )
    reachable = accounts is not None and "account_id" in leads
    if "country" not in leads and not (reachable and "country" in accounts):
        what = "no country (neither leads.country nor accounts.country)"
        attributes = ("country", "region")
        found.append(MissingInput("leads", "country", attributes, _left_out(what, attributes)))
    if "lead_source" not in leads:
        what = "leads has no lead_source column"
        attributes = ("lead_source",)
        found.append(MissingInput("leads", "lead_source", attributes, _left_out(what, attributes)))
    derived = tuple(a for a in ("seniority", "department") if a not in leads)
    if "job_title" not in leads and derived:
        what = "leads has no job_title column (nor " + " nor ".join(derived) + ")"
        found.append(MissingInput("leads", "job_title", derived, _left_out(what, derived)))
    return found


def _left_out(what: str, attributes: tuple[str, ...], account_features: bool = False) -> str:
    family = "the account features (account_*) and " if account_features else ""
    names = ("the attributes " if len(attributes) > 1 else "the attribute ") + ", ".join(attributes)
    many = account_features or len(attributes) > 1
    verb, them = ("are", "them") if many else ("is", "it")
    return f"{what}: {family}{names} {verb} left out, and fit rules on {them} are skipped"
