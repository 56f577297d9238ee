"""Point-in-time features: one row per (lead_id, as_of), computed only from data before as_of.

Five families, each a small module that returns SQL over the canonical views of
:class:`~leadml.data.LeadData` and goes through :mod:`leadml.data.asof` for every time rule:

=========== ==============================================================================
fit         who the lead is and its company (shared with the fit rules: ``data.attributes``)
engagement  the lead's own events: counts per type and buying stage per window, recency,
            active days, distinct content, trend, e-mail ratios
lifecycle   the lead's own stage history before as_of
account     the buying committee: the other leads at the account, their events and stages
passthrough extra input columns named in ``features.passthrough``
=========== ==============================================================================

Everything runs in DuckDB over the canonical views, one instant at a time, so events stay in
Parquet/CSV (or the caller's DataFrame) and only the feature table is materialised; the
engagement and account counts come from one fetch of every lead's recent events per instant,
reduced to small integers and counted by compiled loops (:mod:`leadml.features._events`).
Numbers come back as float32, flags as bool, categories as text; :data:`FEATURES` lists every
name with its meaning. A feature whose input the data lacks (no accounts table, no job titles:
:attr:`~leadml.data.LeadData.missing_inputs`) is left out, not filled: :func:`feature_specs` of
the data lists what is built.
"""

from __future__ import annotations

from contextlib import nullcontext

import pandas as pd

from leadml.common.sql import sql_ident, sql_str
from leadml.config import Settings
from leadml.data import LeadData, load_data
from leadml.data.asof import as_spine, instant, open_leads, registered
from leadml.data.readers import Source
from leadml.features import account, engagement, fit, lifecycle, passthrough
from leadml.features._events import LeadRows, RecentEvents, numbered_leads
from leadml.features._spec import SQL_TYPE, Feature, check_unique, identifier

__all__ = [
    "FEATURES",
    "build_features",
    "feature_catalogue",
    "feature_specs",
    "features_as_of",
    "features_of_checked_spine",
    "identifier",
]

_FAMILIES = ("fit", "engagement", "lifecycle", "account", "passthrough")


def _by_family(settings: Settings, data: LeadData | None) -> dict[str, list[Feature]]:
    return {
        "fit": fit.catalogue(data),
        "engagement": engagement.catalogue(settings),
        "lifecycle": lifecycle.catalogue(settings),
        "account": account.catalogue(settings, data),
        "passthrough": passthrough.catalogue(settings, data),
    }


def feature_specs(settings: Settings | None = None, data: LeadData | None = None) -> list[Feature]:
    """Every feature column, in output order, for these settings (and this input's types and
    optional inputs: without an accounts table, say, no firmographic or account feature)."""
    families = _by_family(settings or Settings(), data)
    return check_unique([f for family in _FAMILIES for f in families[family]])


def feature_catalogue(settings: Settings | None = None) -> dict[str, str]:
    """Feature name -> one-line meaning, in output order, for ``settings`` (default: built-in)."""
    return {f.name: f.meaning for f in feature_specs(settings)}


#: Feature name -> meaning under the built-in settings (configured windows and event types and
#: passthrough columns change the list; see :func:`feature_catalogue`).
FEATURES: dict[str, str] = feature_catalogue()


def build_features(data: LeadData | Source, spine: pd.DataFrame) -> pd.DataFrame:
    """Features of each (lead_id, as_of) pair of ``spine``, seeing only data before its as_of.

    Parameters
    ----------
    data
        Loaded data, or anything :func:`leadml.load_data` accepts.
    spine
        Columns ``lead_id`` and ``as_of`` (any number of distinct instants).

    Returns
    -------
    DataFrame
        ``lead_id``, ``as_of`` and the columns of :func:`feature_specs`, sorted by as_of then
        lead_id. Pairs whose lead had not been created by as_of are left out.

    Examples
    --------
    >>> import pandas as pd
    >>> from leadml.synth import generate_history
    >>> h = generate_history(n_leads=50, seed=1, history_days=200)
    >>> spine = pd.DataFrame({"lead_id": ["L0000001"], "as_of": [h.end]})
    >>> frame = build_features(h.tables(), spine)
    >>> list(frame.columns[:2]), len(frame), str(frame["events_30d"].dtype)
    (['lead_id', 'as_of'], 1, 'float32')
    """
    data = load_data(data)
    return features_of_checked_spine(data, as_spine(spine))


def features_of_checked_spine(
    data: LeadData, spine: pd.DataFrame, *, attributes: str | None = None
) -> pd.DataFrame:
    """:func:`build_features` for a spine already checked by :func:`~leadml.data.asof.as_spine`:
    the engine's entry point for callers that score many pairs at once and hold the spine's
    :func:`~leadml.data.attributes.attributes_table` (``attributes``) for the rules too, as the
    nightly scorer does."""
    passthrough.check(data)
    specs = feature_specs(data.settings, data)
    instants = spine["as_of"].unique()
    many = len(instants) > 1
    # One instant needs no groupby (a copy of every pair); no pair at all still gives the columns.
    groups = spine.groupby("as_of", sort=True) if many else [
        (instants[0] if len(instants) else pd.Timestamp(0, tz="UTC"), spine)
    ]  # fmt: skip
    with numbered_leads(data) as leads, data.in_memory("events") if many else nullcontext():
        # One pass per instant: each aggregates per lead before joining (see asof.visible_at),
        # so a training spine costs what its snapshots would cost one by one, nightly.
        parts = [
            _at_instant(data, leads, pairs, as_of, specs, attributes) for as_of, pairs in groups
        ]
    return pd.concat(parts, ignore_index=True) if many else parts[0]


_COUNTED = {"engagement": engagement, "account": account}  # counted from the recent events


def _at_instant(
    data: LeadData,
    leads: LeadRows,
    pairs: pd.DataFrame,
    as_of: pd.Timestamp,
    specs: list[Feature],
    attributes: str | None,
) -> pd.DataFrame:
    with registered(data, pairs, checked=True) as name:
        sql = features_sql(data, name, leads.name, as_of, specs, attributes=attributes)
        # Through Arrow: pandas 3 takes its text columns as they are (.df() copies them).
        table = data.con.sql(sql).to_arrow_table()
    frame = table.to_pandas()
    rows = frame.pop("row").to_numpy()
    recent = RecentEvents.at(data, leads, as_of)
    columns = {c: frame[c] for c in frame.columns}
    for family in _COUNTED.values():
        columns.update(family.compute(data, leads, recent, rows, as_of))
    return pd.DataFrame({c: columns[c] for c in ["lead_id", "as_of", *(f.name for f in specs)]})


def features_sql(
    data: LeadData,
    spine: str,
    numbered: str,
    as_of: pd.Timestamp,
    specs: list[Feature],
    *,
    attributes: str | None = None,
) -> str:
    """The query behind :func:`build_features` for the families not counted from the recent
    events (fit, lifecycle, passthrough), for a registered spine whose pairs are all at one
    instant, with each lead's ``row`` in the table of :func:`numbered_leads` ``numbered`` and
    sorted by it (that is, by lead_id); ``attributes``: the
    :func:`~leadml.data.attributes.attributes_table` of this spine (of these very pairs: it is not
    checked), instead of computing them."""
    settings = data.settings
    kinds = {f.name: f.kind for f in specs}
    held = f"SELECT * FROM {attributes} WHERE as_of = {instant(as_of)}" if attributes else None
    parts = {
        "fit": held or fit.sql(data, spine),
        "lifecycle": lifecycle.sql(settings, spine, as_of),
        "passthrough": passthrough.sql(data, spine, kinds),
    }
    family_of = {f.name: fam for fam, fs in _by_family(settings, data).items() for f in fs}
    select = []
    for f in specs:
        if family_of[f.name] in _COUNTED:
            continue
        value = f"{family_of[f.name]}.{sql_ident(f.name)}"
        if f.fill is not None:
            value = f"coalesce({value}, {_literal(f.fill)})"
        select.append(f"CAST({value} AS {SQL_TYPE[f.kind]}) AS {sql_ident(f.name)}")
    joins = "\n".join(
        f"LEFT JOIN ({sql}) {family} USING (lead_id, as_of)"
        for family, sql in parts.items()
        if family != "fit" and sql is not None
    )
    return f"""
        SELECT i.row, fit.lead_id, fit.as_of, {", ".join(select)}
        FROM ({parts["fit"]}) fit
        JOIN {numbered} i USING (lead_id)
        {joins}
        ORDER BY i.row
    """


def _literal(value: float | bool | str) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return sql_str(value) if isinstance(value, str) else repr(value)


def features_as_of(data: LeadData | Source, as_of: pd.Timestamp | str) -> pd.DataFrame:
    """Features of the leads open at ``as_of``: what nightly scoring feeds the model."""
    data = load_data(data)
    return features_of_checked_spine(
        data, open_leads(data, as_of)
    )  # one pair per open lead: nothing to check
