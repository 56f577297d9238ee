"""Database URIs: which engine a URI names, and a connection to it.

PostgreSQL and SQLite are reached through their ADBC drivers (Arrow in, Arrow out, installed
from the package index with ``leadml[warehouse]``); a DuckDB file through DuckDB itself. DuckDB's
own ``postgres`` extension is not used: it is downloaded at run time from DuckDB's server, which
locked-down platforms refuse.

File paths follow SQLAlchemy's spelling: ``sqlite:///scores.db`` is relative to the working
folder, ``sqlite:////srv/crm/scores.db`` absolute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from leadml.common.sql import sql_ident
from leadml.errors import LeadmlError

_ENGINES = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "sqlite": "sqlite",
    "duckdb": "duckdb",
}
_DRIVERS = {"postgresql": "adbc_driver_postgresql", "sqlite": "adbc_driver_sqlite"}
EXTRA = "leadml[warehouse]"


@dataclass(frozen=True)
class Database:
    """A database named by a URI: its ``engine`` (``postgresql``, ``sqlite`` or ``duckdb``) and
    the ``uri`` to connect with."""

    engine: str
    uri: str

    @property
    def shown(self) -> str:
        """The URI with its password masked, for messages and logs."""
        return _masked(self.uri)

    @property
    def path(self) -> str:
        """The database file of a SQLite or DuckDB URI."""
        return self.uri.split(":///", 1)[1].split("?", 1)[0] if ":///" in self.uri else ""


def database(value: object) -> Database | None:
    """The :class:`Database` a string names, or None when it is not a database URI.

    Examples
    --------
    >>> database("postgresql://crm:secret@db.example.com/sales").shown
    'postgresql://crm:***@db.example.com/sales'
    >>> database("sqlite:///history.db").path
    'history.db'
    >>> database("data/") is None
    True
    """
    if not isinstance(value, str) or "://" not in value:
        return None
    engine = _ENGINES.get(value.split("://", 1)[0].lower())
    return Database(engine, value) if engine else None


def is_object_store(value: object) -> bool:
    """Whether ``value`` is an object-store URI (``s3://``, ``gs://``) or a web prefix
    (``https://``, ``http://``), read by :mod:`leadml.data.lake`."""
    schemes = ("s3://", "gs://", "gcs://", "https://", "http://")
    return isinstance(value, str) and value.lower().startswith(schemes)


def split_table(value: str) -> tuple[Database, str] | None:
    """A database URI whose last path segment names a table (``…/schema.table``): the database
    and the table, or None when ``value`` is not a database URI.

    Examples
    --------
    >>> db, table = split_table("postgresql://crm@db/sales/marketing.lead_scores?sslmode=require")
    >>> db.uri, table
    ('postgresql://crm@db/sales?sslmode=require', 'marketing.lead_scores')
    >>> split_table("sqlite:////srv/scores.db/lead_scores")[0].path
    '/srv/scores.db'
    >>> split_table("duckdb:///scores")[1]  # a file but no table: refused by the caller
    ''
    """
    db = database(value)
    if db is None:
        return None
    scheme, netloc, path, query, fragment = urlsplit(db.uri)
    head, _, table = path.rstrip("/").rpartition("/")
    if not table or not head.strip("/"):  # no table, or no database file before it
        return db, ""
    if db.engine != "postgresql":  # sqlite:///x.db/t -> path "/x.db/t"; keep the third slash
        return Database(db.engine, f"{scheme}:///{head[1:]}"), table
    return Database(db.engine, urlunsplit((scheme, netloc, head, query, fragment))), table


def qualified(name: str) -> str:
    """A dotted table name (``schema.table``) as quoted SQL, part by part.

    Examples
    --------
    >>> print(qualified("crm.Leads"))
    "crm"."Leads"
    """
    return ".".join(sql_ident(part) for part in name.split("."))


def connect_adbc(db: Database, error: type[LeadmlError], *, autocommit: bool):
    """A DB-API connection to a PostgreSQL or SQLite database through its ADBC driver.

    Raises ``error`` naming the extra to install when the driver is missing, or with the
    driver's first line (the password masked) when the database cannot be reached.
    """
    import importlib

    module = _DRIVERS[db.engine]
    try:
        dbapi = importlib.import_module(f"{module}.dbapi")
    except ImportError:
        raise error(
            f"reading or writing {db.engine} needs the {module.replace('_', '-')} package: "
            f"pip install '{EXTRA}'"
        ) from None
    target = db.path if db.engine == "sqlite" else db.uri
    try:
        return dbapi.connect(target, autocommit=autocommit)
    except Exception as exc:  # the driver's own error types, from a module loaded just now
        raise error(f"cannot connect to {db.shown}: {first_line(exc)}") from None


def first_line(exc: Exception) -> str:
    """The first line of an error's message, with any password in a URI masked."""
    text = str(exc).strip()
    return _masked(text.splitlines()[0] if text else type(exc).__name__)


def _masked(text: str) -> str:
    text = re.sub(r"(?i)(password=)[^&\s]*", r"\1***", text)
    # Up to the last @ before the host: a password may itself hold / or @.
    return re.sub(r"(://[^:/@\s]*:)\S*@", r"\1***@", text)
