"""The input contract: the four canonical tables, their columns and what each means."""

from __future__ import annotations

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
        Column("industry", "text", "industry, e.g. software, healthcare"),
        Column("employee_count", "number", "number of employees"),
        Column("annual_revenue", "number", "annual revenue in one currency (USD in the sample)"),
        Column("country", "text", "ISO-3166 alpha-2 country code of the headquarters"),
    ),
    key="account_id",
)
LEADS = TableSpec(
    "leads",
    "person",
    (
        Column("lead_id", "id", "unique id of the person"),
        Column("created_at", "timestamp", "when the lead was created (first known)"),
        Column("lead_source", "text", "how the lead arrived, e.g. paid_search, referral"),
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
