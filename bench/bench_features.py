"""Point-in-time features and training sets, and the engine choice for the event aggregation."""

from __future__ import annotations

import pandas as pd

from bench.harness import case, dataset
from leadml import load_data
from leadml.features import features_as_of
from leadml.modeling.trainset import build_trainset

NIGHT = pd.Timestamp("2026-06-30", tz="UTC")  # the sample histories end here


def _load(n_leads: int):
    data = load_data(dataset(n_leads))
    data.con.execute("SET enable_progress_bar = false")  # nothing on stdout but the figures
    return data


@case("features: nightly snapshot, 1 M leads / ~50 M events", max_seconds=15, max_gib=3,
      repeats=1)  # fmt: skip
def nightly_snapshot():
    frame = features_as_of(_load(1_000_000), NIGHT)
    return {"rows": len(frame), "features": frame.shape[1] - 2}


@case("trainset: 100 k leads, weekly snapshots over a year", max_seconds=60, repeats=1)
def weekly_trainset():
    ts = build_trainset(_load(100_000), start=NIGHT - pd.Timedelta(days=365))
    summary = ts.summary()
    return {"rows": summary["rows"], "snapshots": summary["snapshots"],
            "immature_pairs": summary["immature_pairs"]}  # fmt: skip


# --- engine choice: counts per (lead, event type) over 7/30/90 days for one snapshot -----------


@case("engine: window counts per lead and type, DuckDB, 100 k leads / ~5 M events", repeats=3)
def window_counts_duckdb():
    from leadml.data.asof import open_leads
    from leadml.features._events import RecentEvents, numbered_leads
    from leadml.features.engagement import compute

    data = _load(100_000)
    spine = open_leads(data, NIGHT)
    with numbered_leads(data) as leads:
        rows = leads.ids.get_indexer(spine["lead_id"])
        recent = RecentEvents.at(data, leads, NIGHT)
        counts = pd.DataFrame(compute(data, leads, recent, rows, NIGHT))
    return {"rows": len(counts)}


@case("engine: window counts per lead and type, pandas, 100 k leads / ~5 M events", repeats=3)
def window_counts_pandas():
    folder = dataset(100_000)
    events = pd.read_parquet(folder / "events.parquet", columns=["lead_id", "occurred_at",
                                                                  "event_type"])  # fmt: skip
    leads = pd.read_parquet(folder / "leads.parquet", columns=["lead_id", "created_at"])
    open_ids = leads.loc[leads["created_at"] < NIGHT, "lead_id"]  # as in DuckDB, roughly
    recent = events[(events["occurred_at"] < NIGHT)
                    & (events["occurred_at"] >= NIGHT - pd.Timedelta(days=90))]  # fmt: skip
    recent = recent[recent["lead_id"].isin(open_ids)]
    age = (NIGHT - recent["occurred_at"]) / pd.Timedelta(days=1)
    columns = []
    for w in (7, 30, 90):
        part = recent[age <= w]
        columns.append(part.groupby(["lead_id", "event_type"]).size().unstack(fill_value=0)
                       .add_suffix(f"_{w}d"))  # fmt: skip
    counts = pd.concat(columns, axis=1).fillna(0).astype("float32")
    return {"rows": len(counts)}
