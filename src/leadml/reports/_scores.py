"""Reading what nightly scoring wrote: one partition per night (``as_of=YYYY-MM-DD``), each with
its scores (``part-0.parquet``) and run summary (``_summary.json``).

Also the same nights' MQL flags as a *score history*: which leads the model and the rules made
MQLs on each night, from a scores folder or from a DataFrame (e.g. a training run's test window,
:func:`training_scores`), so a report can ask what happened to them afterwards.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leadml.common.sql import sql_str
from leadml.data.readers import connect, to_utc
from leadml.errors import DataError
from leadml.scoring import PARQUET_FILE, SUMMARY_JSON, assign_tiers

if TYPE_CHECKING:
    from leadml.modeling.training import TrainingResult

_PARTITION = re.compile(r"^as_of=(\d{4}-\d{2}-\d{2})$")
#: Columns a score history needs: one row per (lead, night) with both MQL flags.
HISTORY_COLUMNS = ("lead_id", "as_of", "model_mql", "rule_mql")
#: Columns a score history may have: the model's probability (for the model at the rules' MQL
#: volume, the reliability diagram and the gains chart), its tier and the rule score.
OPTIONAL_COLUMNS = ("mql_probability", "model_tier", "rule_score")
_REASON = re.compile(r"^reason_\d+_(feature|effect)$")


def score_partitions(folder: str | Path) -> pd.Series:
    """The nightly partitions of a scores folder: the partition folder of each night, by as-of
    instant. A night's scores are its ``*.parquet`` files: ``part-0.parquet``, or one per shard
    (``part-<shard>.parquet``, ``leadml score --shard``).

    Raises
    ------
    DataError
        The folder does not exist or holds no partition (``as_of=YYYY-MM-DD/part-0.parquet``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"scores folder {folder} does not exist or is not a folder")
    found = {}
    for path in sorted(folder.iterdir()):
        match = _PARTITION.match(path.name)
        if match and (files := score_files(path)):
            found[_night(files[0], match.group(1))] = path
    if not found:
        raise DataError(
            f"scores folder {folder}: no nightly scores in it (expected partitions "
            f"as_of=YYYY-MM-DD/{PARQUET_FILE}, as 'leadml score --out {folder}' writes them)"
        )
    return pd.Series(list(found.values()), index=pd.DatetimeIndex(list(found)), name="partition")


def score_files(partition: Path) -> list[Path]:
    """The score files of one partition (Parquet readers skip names starting with ``_`` or
    ``.``, and so does this)."""
    if not partition.is_dir():
        return []
    return sorted(p for p in partition.glob("*.parquet") if not p.name.startswith(("_", ".")))


def _night(path: Path, date: str) -> pd.Timestamp:
    """The as-of instant a partition was scored at: stored in the file, else its date."""
    try:
        stored = (pq.read_schema(path).metadata or {}).get(b"leadml.as_of")
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    return to_utc(stored.decode() if stored else date)


def _partition(folder: str | Path, as_of: pd.Timestamp | str | None) -> tuple[pd.Timestamp, Path]:
    partitions = score_partitions(folder)
    if as_of is None:
        return partitions.index[-1], partitions.iloc[-1]
    wanted = to_utc(as_of)
    same_day = partitions[partitions.index.floor("D") == wanted.floor("D")]
    if not len(same_day):
        nights = ", ".join(f"{t:%Y-%m-%d}" for t in partitions.index[-5:])
        raise DataError(f"scores folder {folder}: no scores as of {wanted:%Y-%m-%d} "
                        f"(latest nights: {nights})")  # fmt: skip
    return same_day.index[0], same_day.iloc[0]


def read_scores(folder: str | Path, as_of: pd.Timestamp | str | None = None) -> pd.DataFrame:
    """One night's scores (default: the latest night), with its ``as_of`` as a UTC timestamp.

    Examples
    --------
    >>> read_scores("no/such/folder")
    Traceback (most recent call last):
    ...
    leadml.errors.DataError: scores folder no/such/folder does not exist or is not a folder
    """
    night, partition = _partition(folder, as_of)
    scores = pd.read_parquet(partition)  # every file of the night, as any Parquet reader sees it
    scores["as_of"] = pd.Series(night, index=scores.index).astype("datetime64[us, UTC]")
    return scores


def read_summary(folder: str | Path, as_of: pd.Timestamp | str | None = None) -> dict:
    """One night's run summary (default: the latest night): tiers, agreement, drift, warnings."""
    _, partition = _partition(folder, as_of)
    summary = partition / SUMMARY_JSON
    if not summary.is_file():
        raise DataError(f"{partition}: the night's run summary {SUMMARY_JSON} is missing")
    return json.loads(summary.read_text())


def nightly_counts(folder: str | Path) -> pd.DataFrame:
    """Per night, from the run summaries: open leads, model and rule MQLs, leads both make MQLs,
    and expected conversions. Nights without a summary are left out."""
    rows = []
    for night, partition in score_partitions(folder).items():
        summary_path = partition / SUMMARY_JSON
        if not summary_path.is_file():
            continue
        summary = json.loads(summary_path.read_text())
        cells = {c["agreement"]: c["leads"] for c in summary.get("agreement", [])}
        rows.append({
            "as_of": night, "open_leads": summary["open_leads"],
            "model_mql": summary["model_mql"], "rule_mql": summary["rule_mql"],
            "both_mql": cells.get("both", 0),
            "expected_conversions": summary["expected_conversions"],
        })  # fmt: skip
    columns = ["open_leads", "model_mql", "rule_mql", "both_mql", "expected_conversions"]
    return pd.DataFrame(rows, columns=["as_of", *columns]).set_index("as_of")


def training_scores(result: TrainingResult) -> pd.DataFrame:
    """A training run's test window as a score history: the model's MQLs on each snapshot are
    the leads nightly scoring would have put in the MQL tiers (``scoring.tiers``), next to the
    rules' MQLs, so a report can compare them on outcomes the model never saw.

    Returns
    -------
    pandas.DataFrame
        ``lead_id``, ``as_of``, ``mql_probability``, ``model_tier``, ``model_mql``, ``rule_mql``,
        ``rule_score``.
    """
    if result.test is None:
        raise DataError("the training run has no test window (cold start): no model MQLs")
    test = result.test.sort_values(["as_of", "lead_id"], ignore_index=True)
    tiers = result.settings.scoring.tiers
    parts = []
    for _, night in test.groupby("as_of", sort=True):
        tier, _ = assign_tiers(
            night["model_probability"].to_numpy(), night["lead_id"].to_numpy(), result.settings
        )
        parts.append(pd.Series(np.asarray(tier.astype("str")), index=night.index))
    tier = pd.concat(parts).reindex(test.index)
    return pd.DataFrame({
        "lead_id": test["lead_id"], "as_of": test["as_of"],
        "mql_probability": test["model_probability"], "model_tier": tier,
        "model_mql": tier.isin(tiers.mql), "rule_mql": test["rule_mql"].astype(bool),
        "rule_score": test["rule_score"],
    })  # fmt: skip


@dataclass
class ScoreHistory:
    """The nights of a scores folder or score-history DataFrame, and their MQL flags on demand.

    ``nights`` are the as-of instants (UTC, sorted); :meth:`rows` reads only the nights asked for.
    """

    nights: pd.DatetimeIndex
    source: str
    files: pd.Series | None = None  # night -> its partition folder, for a scores folder
    frame: pd.DataFrame | None = None  # for a DataFrame

    @classmethod
    def of(cls, scores: str | Path | pd.DataFrame | ScoreHistory) -> ScoreHistory:
        """A score history from a scores folder or a DataFrame with :data:`HISTORY_COLUMNS`."""
        if isinstance(scores, ScoreHistory):
            return scores
        if isinstance(scores, pd.DataFrame):
            missing = [c for c in HISTORY_COLUMNS if c not in scores.columns]
            if missing:
                raise DataError(f"score history: missing column(s) {missing}; it needs "
                                f"{list(HISTORY_COLUMNS)}")  # fmt: skip
            kept = [c for c in HISTORY_COLUMNS + OPTIONAL_COLUMNS if c in scores.columns]
            frame = scores[kept].copy()
            frame["as_of"] = pd.to_datetime(frame["as_of"], utc=True)
            nights = pd.DatetimeIndex(sorted(frame["as_of"].unique()))
            return cls(nights, f"{len(nights)} scored snapshots", frame=frame)
        files = score_partitions(scores)
        return cls(files.index, f"nightly scores in {scores}", files=files)

    def rows(self, nights: pd.DatetimeIndex, reasons: bool = False) -> pd.DataFrame:
        """The (lead, night) rows of ``nights``: :data:`HISTORY_COLUMNS`, and those of
        :data:`OPTIONAL_COLUMNS` the scores have (with ``reasons``, the ``reason_<j>_feature``
        and ``reason_<j>_effect`` columns too). ``lead_id`` as text, ``as_of`` in UTC."""
        if self.frame is not None:
            rows = self.frame[self.frame["as_of"].isin(nights)]
            return rows.astype({"lead_id": "str"}).reset_index(drop=True)
        files = pd.DataFrame(
            [(str(f), night) for night, partition in self.files[nights].items()
             for f in score_files(partition)], columns=["file", "as_of"],
        )  # fmt: skip
        if not len(files):
            return pd.DataFrame(columns=list(HISTORY_COLUMNS))
        try:
            last = files["file"].iloc[-1]
            names = set(pq.read_schema(last).names)
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"{last}: not a readable Parquet file ({exc})") from None
        wanted = [c for c in HISTORY_COLUMNS + OPTIONAL_COLUMNS if c != "as_of" and c in names]
        if reasons:
            wanted += sorted(c for c in names if _REASON.match(c))
        con = connect()
        name = f"files_{uuid.uuid4().hex[:8]}"
        con.register(name, files.astype({"as_of": "datetime64[us, UTC]"}))
        listed = ", ".join(sql_str(f) for f in files["file"])
        chosen = ", ".join(f'p."{c}"' for c in wanted)
        try:
            rows = con.execute(
                f"""
                SELECT {chosen}, f.as_of
                FROM read_parquet([{listed}], filename = true, union_by_name = true) p
                JOIN {name} f ON f.file = p.filename
                """
            ).df()
        except duckdb.Error as exc:
            raise DataError(f"{self.source}: cannot read the scored nights: {exc}") from None
        finally:
            con.close()
        if "model_tier" in rows:
            rows["model_tier"] = rows["model_tier"].astype("str")
        return rows.astype({"lead_id": "str"})
