"""One bot must not hang the nightly job: the 100 k-lead history, and the same with one lead
holding 1 M events, scored and reported as ``leadml score`` does (the funnel report of the
nights scored, whose rule MQLs are the exact crossings of :func:`leadml.rule_mql_history`).

Before the MQL history walked each lead's events once, the report took 12 s / 27 s / 115 s
for a lead with 10 k / 20 k / 50 k events (on 2,000 leads) and did not finish for 500 k; its
MQL history alone took 32 s on the 100 k leads without a bot (3 s since). Measured 2026-12-06
(2 cores, shared): 7.95 s without the bot, 8.46 s with it (medians of 2).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.bench_scoring import scoring_model
from bench.harness import DATA, case, dataset

NIGHT = "2026-06-29"  # the last night of the sample histories
BOT_EVENTS = 1_000_000
#: What a bot (a link scanner, a crawler with a cookie) does, and how often.
BOT_MIX = {"page_view": 0.6, "email_open": 0.15, "email_click": 0.15, "content_download": 0.05,
           "pricing_page_view": 0.05}  # fmt: skip


def bot_dataset(n_leads: int = 100_000, n_events: int = BOT_EVENTS, seed: int = 0) -> Path:
    """:func:`~bench.harness.dataset` plus one lead, ``BOT``, created 300 days before the last
    night, with ``n_events`` events spread over its last 200 days (report period included);
    created once and cached under bench/data."""
    folder = DATA / f"leads-{n_leads}-seed-{seed}-bot-{n_events}"
    if (folder / "stages.parquet").exists():
        return folder
    source = dataset(n_leads, seed)
    night = pd.Timestamp(NIGHT, tz="UTC")
    created = night - pd.Timedelta(days=300)
    tables = {n: pd.read_parquet(source / f"{n}.parquet") for n in ("accounts", "leads", "events",
                                                                     "stages")}  # fmt: skip
    rng = np.random.default_rng(seed)
    lo, hi = ((night - pd.Timedelta(days=200)).value // 1000, night.value // 1000)
    bot = {
        "leads": tables["leads"].iloc[[0]].assign(lead_id="BOT", created_at=created),
        "events": pd.DataFrame({
            "lead_id": "BOT",
            "occurred_at": pd.to_datetime(np.sort(rng.integers(lo, hi, n_events)), unit="us",
                                          utc=True),
            "event_type": rng.choice(list(BOT_MIX), n_events, p=list(BOT_MIX.values())),
        }),
        "stages": pd.DataFrame({"lead_id": ["BOT"], "stage": ["lead"], "entered_at": [created]}),
    }  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if name in bot:
            extra = bot[name]
            frame = pd.concat([frame, extra.astype(frame.dtypes[extra.columns])], ignore_index=True)
        tmp = folder / f".{name}.{os.getpid()}.tmp"
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, folder / f"{name}.parquet")
    return folder


def _score_and_report(folder: Path) -> dict:
    """What ``leadml score --data FOLDER --as-of NIGHT`` does, tracking aside: load, score the
    night, then build and write the funnel report of the scored nights."""
    from leadml import load_data
    from leadml.reports import build_report, write_report
    from leadml.scoring import score_to

    model = scoring_model()
    out = Path(tempfile.mkdtemp(prefix="leadml-bench-bot-"))
    try:
        start = time.perf_counter()
        data = load_data(folder)
        loaded = time.perf_counter()
        result = score_to(data, NIGHT, out / "scores", model, track=False)
        scored = time.perf_counter()
        report = build_report(data, out / "scores", title="Nightly scores")
        write_report(report, out / "report")
        reported = time.perf_counter()
        return {
            "events": data.row_counts()["events"],
            "open_leads": len(result.scores),
            "rule_mqls": int(report.comparison.summary["mqls"].get("rules", 0)),
            "load_s": round(loaded - start, 1),
            "score_s": round(scored - loaded, 1),
            "report_s": round(reported - scored, 1),
        }
    finally:
        shutil.rmtree(out, ignore_errors=True)


@case("bot: nightly score + report, 100 k leads (no bot)", max_seconds=20, max_gib=2, repeats=2)
def nightly_without_bot():
    return _score_and_report(dataset(100_000))


@case("bot: nightly score + report, 100 k leads + one lead with 1 M events", max_seconds=20,
      max_gib=2, repeats=2)  # fmt: skip
def nightly_with_bot():
    return _score_and_report(bot_dataset())
