"""Training sets: snapshots of the open leads, their point-in-time features and their labels.

A training set is a spine of (lead_id, as_of) pairs -- every ``trainset.cadence_days`` at midnight
UTC, the leads open then (:func:`leadml.data.asof.open_leads`) -- joined with the features as of
each pair (:func:`leadml.features.build_features`) and the label of each pair
(:func:`leadml.data.asof.label_pairs`: the target stage reached in ``(as_of, as_of + horizon]``).
Pairs whose horizon runs past the end of the data are immature: left out, and counted in the
report, never labelled 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from leadml.data import LeadData, load_data
from leadml.data.asof import label_pairs, open_leads, to_utc
from leadml.data.readers import Source
from leadml.errors import DataError
from leadml.features import build_features

KEYS = ["lead_id", "as_of"]


class NoMatureSnapshot(DataError):
    """No snapshot of the data has a horizon that ends before the data does."""


@dataclass
class TrainingSet:
    """``frame``: lead_id, as_of, the features and ``label`` (int8), mature pairs only.
    ``report``: one row per snapshot -- open leads, whether it is mature, rows kept, positives."""

    frame: pd.DataFrame
    report: pd.DataFrame

    @property
    def feature_names(self) -> list[str]:
        return [c for c in self.frame.columns if c not in (*KEYS, "label")]

    def summary(self) -> dict[str, int | float]:
        """Totals: snapshots, rows, positives, positive rate, immature snapshots and pairs."""
        r = self.report
        rows, positives = int(r["rows"].sum()), int(r["positives"].sum())
        return {
            "snapshots": int(r["mature"].sum()),
            "rows": rows,
            "positives": positives,
            "positive_rate": positives / rows if rows else float("nan"),
            "immature_snapshots": int((~r["mature"]).sum()),
            "immature_pairs": int(r.loc[~r["mature"], "open_leads"].sum()),
        }


def snapshot_dates(
    data: LeadData,
    *,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
) -> pd.DatetimeIndex:
    """Snapshot instants: midnight UTC every ``trainset.cadence_days``, counted back from ``end``.

    ``end`` defaults to the end of the data, ``start`` to the first lead's creation plus
    ``trainset.warmup_days``.
    """
    settings = data.settings.trainset
    last = (data.end() if end is None else to_utc(end)).floor("D")
    if start is None:
        first_lead = data.first_created()
        if pd.isna(first_lead):
            raise DataError("leads: no rows, so there is nothing to snapshot")
        first = to_utc(first_lead) + pd.Timedelta(days=settings.warmup_days)
    else:
        first = to_utc(start)
    dates = pd.date_range(start=last, end=first, freq=f"-{settings.cadence_days}D")
    return pd.DatetimeIndex(sorted(dates)).as_unit("us")


def mature_pairs(data: LeadData) -> pd.DataFrame:
    """The training set's mature pairs (``lead_id``, ``as_of``, ``label`` as int8) at every
    snapshot (:func:`snapshot_dates`), without their features; empty when none is mature."""
    dates = snapshot_dates(data)
    spine = open_leads(data, list(dates)) if len(dates) else pd.DataFrame(columns=KEYS)
    labelled = label_pairs(data, spine)
    mature = labelled[labelled["mature"]][[*KEYS, "label"]].reset_index(drop=True)
    return mature.astype({"label": "int8"})


def build_trainset(
    source: Source | LeadData,
    *,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
) -> TrainingSet:
    """Features and labels of the open leads at every snapshot (see :func:`snapshot_dates`).

    Raises
    ------
    DataError
        When no snapshot is mature (the history is shorter than warm-up + one horizon).
    """
    data = load_data(source)
    dates = snapshot_dates(data, start=start, end=end)
    spine = open_leads(data, list(dates)) if len(dates) else pd.DataFrame(columns=KEYS)
    labelled = label_pairs(data, spine)
    mature = labelled[labelled["mature"]]
    if mature.empty:
        horizon = data.settings.target.horizon_days
        raise NoMatureSnapshot(
            f"no mature snapshot: {len(dates)} snapshot(s) from {dates.min():%Y-%m-%d} to "
            f"{dates.max():%Y-%m-%d}, but outcomes are known only until {data.end():%Y-%m-%d} "
            f"and each needs a {horizon}-day horizon; pass an earlier end or more history"
            if len(dates)
            else "no snapshot date between start and end"
        )
    features = build_features(data, mature[KEYS])
    frame = features.merge(mature[[*KEYS, "label"]], on=KEYS, how="left", validate="one_to_one")
    frame["label"] = frame["label"].astype("int8")
    horizon = pd.Timedelta(days=data.settings.target.horizon_days)
    snapshots = pd.DataFrame({"as_of": dates, "mature": dates + horizon <= data.end()})
    return TrainingSet(frame, _report(snapshots, labelled, frame))


def _report(snapshots: pd.DataFrame, labelled: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    opened = labelled.groupby("as_of").agg(open_leads=("lead_id", "size"))
    kept = frame.groupby("as_of").agg(rows=("label", "size"), positives=("label", "sum"))
    report = snapshots.merge(opened, on="as_of", how="left").merge(kept, on="as_of", how="left")
    report = report[["as_of", "open_leads", "mature", "rows", "positives"]]
    report["open_leads"] = report["open_leads"].fillna(0).astype("int64")
    report[["rows", "positives"]] = report[["rows", "positives"]].fillna(0).astype("int64")
    report["positive_rate"] = report["positives"] / report["rows"].where(report["rows"] > 0)
    return report
