"""Engagement features: what the lead itself did before ``as_of``.

Counts per canonical event type and per buying stage over the configured windows, recency, active
days, distinct content, a trend and e-mail ratios.

How, and why (measured on 1 M leads / 53 M events, 2 cores, DuckDB 2.0): DuckDB's filtered
aggregates cost ~0.7 s per ``FILTER`` per 10 M rows, and grouping by (lead, event type) with text
keys ~5 s for 10 M rows, so neither "many FILTERs" nor "per type, then pivot with FILTERs" stays
in budget. Instead each query groups by small integers only -- the lead's row in the spine, the
event type's code and the *bucket* of its age (the slices between consecutive window edges) --
with a plain ``count(*)``, and numpy turns the small result into columns: per-window counts are
cumulative sums over buckets. Recency and totals over all of the past are aggregated per lead
*before* joining the spine (:func:`leadml.asof.visible_at`).
"""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd

from leadml.asof import in_window, visible_at
from leadml.config import Settings
from leadml.data import LeadData
from leadml.features._spec import Feature, identifier
from leadml.validation import sql_str

BUYING_STAGES = {
    "awareness": "awareness",
    "consideration": "consideration",
    "decision": "decision",
    "none": "negative",  # unsubscribes, bounces: actions that signal the opposite of interest
}
EMAIL_RATIOS = {
    # name: (numerator type, denominator type, meaning)
    "email_click_per_open": ("email_click", "email_open", "e-mail clicks per e-mail open"),
    "unsubscribe_per_email_open": ("unsubscribe", "email_open", "unsubscribes per e-mail open"),
}


def event_types(settings: Settings) -> dict[str, str]:
    """Canonical event type -> buying stage, including ``other`` for unmapped raw names."""
    return {**settings.data.buying_stage_lookup(), "other": "none"}


def catalogue(settings: Settings) -> list[Feature]:
    f = settings.features
    windows, trend, widest = f.windows_days, f.trend_days, max(f.windows_days)
    types = event_types(settings)
    out: list[Feature] = []
    for w in windows:
        out.append(Feature(f"events_{w}d", f"engagement events in the last {w} days", fill=0))
        for stage, label in BUYING_STAGES.items():
            out.append(
                Feature(
                    f"{label}_actions_{w}d", f"{stage}-stage events in the last {w} days", fill=0
                )
            )
        for event_type in types:
            out.append(
                Feature(
                    f"{identifier(event_type)}_{w}d",
                    f"{event_type} events in the last {w} days",
                    fill=0,
                )
            )
        out.append(
            Feature(
                f"active_days_{w}d", f"distinct UTC days with an event in the last {w} days", fill=0
            )
        )
        out.append(
            Feature(
                f"distinct_content_{w}d",
                f"distinct content_id touched in the last {w} days",
                fill=0,
            )
        )
    out += [
        Feature("events_total", "engagement events ever, before as_of", fill=0),
        Feature("decision_actions_total", "decision-stage events ever", fill=0),
        Feature("negative_actions_total", "unsubscribes, bounces (stage none) ever", fill=0),
        Feature("days_since_last_event", "days since the latest event (missing: none yet)"),
        Feature("days_since_first_event", "days since the first event (missing: none yet)"),
        Feature(
            "days_since_last_decision_action",
            "days since the latest decision-stage event (missing: none yet)",
        ),
        Feature(
            "days_since_last_negative_action",
            "days since the latest unsubscribe/bounce (missing: none yet)",
        ),
        Feature(
            f"events_prev_{trend}d", f"events in the {trend} days before the last {trend}", fill=0
        ),
        Feature(
            f"trend_{trend}d",
            f"(last {trend}d - previous {trend}d) / (sum of both), in [-1, 1]; 0 when both are 0",
            fill=0,
        ),
    ]
    for name, (num, den, meaning) in EMAIL_RATIOS.items():
        if num in types and den in types:
            out.append(
                Feature(
                    f"{name}_{widest}d", f"{meaning} in the last {widest} days (missing: no opens)"
                )
            )
    return out


def _edges(settings: Settings) -> list[float]:
    """Upper edges of the age buckets: every window and the two halves of the trend."""
    f = settings.features
    return sorted({*f.windows_days, f.trend_days, 2 * f.trend_days})


def _bucket(edges: list[float]) -> str:
    cases = " ".join(f"WHEN {in_window(e)} THEN {i}" for i, e in enumerate(edges))
    return f"CASE {cases} END"


def compute(data: LeadData, pairs: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The features of :func:`catalogue` for ``pairs`` (all at ``as_of``), row for row."""
    settings = data.settings
    f = settings.features
    windows, trend = f.windows_days, f.trend_days
    types = list(event_types(settings))
    edges = _edges(settings)
    n, k, b = len(pairs), len(types), len(edges)
    stage_of = event_types(settings)

    index = f"rows_{uuid.uuid4().hex[:12]}"
    data.con.register(
        index,
        pd.DataFrame({"lead_id": pairs["lead_id"].to_numpy(), "row": np.arange(n, dtype=np.int32)}),
    )
    try:
        recent = visible_at("events", as_of, window_days=edges[-1])
        codes = "[" + ", ".join(sql_str(t) for t in types) + "]"
        run = data.con.execute

        by_type = run(
            f"SELECT i.row, coalesce(list_position({codes}, v.event_type), {k}) - 1 AS code, "
            f"{_bucket(edges)} AS bucket, count(*) AS n "
            f"FROM ({recent}) v JOIN {index} i USING (lead_id) GROUP BY ALL"
        ).fetchnumpy()
        spread = {
            name: run(
                f"SELECT row, bucket, count(*) AS n FROM ("
                f"  SELECT i.row, {key}, min({_bucket(edges)}) AS bucket "
                f"  FROM ({recent}) v JOIN {index} i USING (lead_id) "
                f"  WHERE {key} IS NOT NULL GROUP BY ALL"
                f") GROUP BY ALL"
            ).fetchnumpy()
            for name, key in (
                ("active_days", "CAST(v.occurred_at AS DATE)"),
                ("distinct_content", "v.content_id"),
            )
        }
        every = visible_at("events", as_of)
        history = run(
            f"SELECT i.row, a.* EXCLUDE (lead_id) FROM ("
            f"  SELECT lead_id, count(*) AS n, min(age_days) AS youngest, max(age_days) AS oldest"
            f"  FROM ({every}) v GROUP BY lead_id"
            f") a JOIN {index} i USING (lead_id)"
        ).fetchnumpy()
        marked = run(
            f"SELECT i.row, a.* EXCLUDE (lead_id) FROM ("
            f"  SELECT lead_id, buying_stage, count(*) AS n, min(age_days) AS youngest"
            f"  FROM ({every}) v WHERE buying_stage IN ('decision', 'none') GROUP BY ALL"
            f") a JOIN {index} i USING (lead_id)"
        ).fetchnumpy()
    finally:
        data.con.unregister(index)

    def cube(result: dict, per: int, code: np.ndarray | int) -> np.ndarray:
        flat = (result["row"].astype(np.int64) * per + code) * b + result["bucket"]
        return np.bincount(flat, weights=result["n"], minlength=n * per * b).reshape(n, per, b)

    # Counts in [T - edge_i, T) per lead and type: cumulative over the age buckets.
    counts = cube(by_type, k, by_type["code"].astype(np.int64)).cumsum(axis=2)
    at = {e: i for i, e in enumerate(edges)}
    out: dict[str, np.ndarray] = {}
    stage_mask = {stage: np.array([stage_of[t] == stage for t in types]) for stage in BUYING_STAGES}
    spreads = {name: cube(r, 1, 0)[:, 0, :].cumsum(axis=1) for name, r in spread.items()}
    for w in windows:
        in_w = counts[:, :, at[w]]
        out[f"events_{w}d"] = in_w.sum(axis=1)
        for stage, label in BUYING_STAGES.items():
            out[f"{label}_actions_{w}d"] = in_w[:, stage_mask[stage]].sum(axis=1)
        for j, t in enumerate(types):
            out[f"{identifier(t)}_{w}d"] = in_w[:, j]
        for name, cum in spreads.items():
            out[f"{name}_{w}d"] = cum[:, at[w]]

    def per_row(result: dict, column: str, fill: float, where: np.ndarray | None = None):
        values = np.full(n, fill, dtype=np.float64)
        keep = slice(None) if where is None else where
        values[result["row"][keep]] = result[column][keep]
        return values

    out["events_total"] = per_row(history, "n", 0)
    decision, negative = marked["buying_stage"] == "decision", marked["buying_stage"] == "none"
    out["decision_actions_total"] = per_row(marked, "n", 0, decision)
    out["negative_actions_total"] = per_row(marked, "n", 0, negative)
    out["days_since_last_event"] = per_row(history, "youngest", np.nan)
    out["days_since_first_event"] = per_row(history, "oldest", np.nan)
    out["days_since_last_decision_action"] = per_row(marked, "youngest", np.nan, decision)
    out["days_since_last_negative_action"] = per_row(marked, "youngest", np.nan, negative)
    last = counts[:, :, at[trend]].sum(axis=1)
    previous = counts[:, :, at[2 * trend]].sum(axis=1) - last
    out[f"events_prev_{trend}d"] = previous
    with np.errstate(invalid="ignore", divide="ignore"):
        both = last + previous
        out[f"trend_{trend}d"] = np.where(both > 0, (last - previous) / np.maximum(both, 1), 0.0)
        widest = max(windows)
        for name, (num, den, _) in EMAIL_RATIOS.items():
            if num in types and den in types:
                top = counts[:, types.index(num), at[widest]]
                bottom = counts[:, types.index(den), at[widest]]
                out[f"{name}_{widest}d"] = np.where(bottom > 0, top / np.maximum(bottom, 1), np.nan)
    names = [feature.name for feature in catalogue(settings)]
    return pd.DataFrame({name: out[name].astype(np.float32) for name in names})
