"""Nightly scoring on Spark against one process, on the same machine, in one run."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from bench.bench_scoring import scoring_model
from bench.harness import case, dataset

NIGHT = "2026-06-29"


@case("score: Spark local[2] vs one process, 1 M leads (target: Spark ≤ 2× one process)",
      repeats=1)  # fmt: skip
def spark_against_one_process():
    """Both runs end to end: Spark's time includes starting the session (JVM, Python workers)
    and joining the shards."""
    from leadml.scoring import score_to
    from leadml.spark import score_night, session

    model, data = scoring_model(), dataset(1_000_000)
    out = Path(tempfile.mkdtemp(prefix="leadml-bench-spark-"))
    try:
        started = time.perf_counter()
        single = score_to(data, NIGHT, out / "one", model, track=False)
        one_process = time.perf_counter() - started

        started = time.perf_counter()
        spark = session("local[2]")
        night = score_night(spark, str(data), NIGHT, out / "spark", model, track=False)
        on_spark = time.perf_counter() - started
        spark.stop()
        assert night.summary["open_leads"] == len(single.scores)
        shard_seconds = sum(night.summary["shard_seconds"].values())
        return {
            "one_process_s": round(one_process, 1),
            "spark_s": round(on_spark, 1),
            "ratio": round(on_spark / one_process, 2),
            "shards": night.shards,
            "leads_per_task_s": round(len(single.scores) / shard_seconds),
            "finish_s": round(sum(night.summary["timings_seconds"].values()), 1),
        }
    finally:
        shutil.rmtree(out, ignore_errors=True)


@case("score: one shard of two, 1 M leads (what a Spark task does)", repeats=1)
def one_shard():
    """The per-task figures: one shard's seconds and memory, its cut of the input included."""
    from leadml.scoring import score_shard

    out = Path(tempfile.mkdtemp(prefix="leadml-bench-shard-"))
    try:
        done = score_shard(dataset(1_000_000), NIGHT, out, "0/2", scoring_model())
        return {"open_leads": done.rows, **{f"{k}_s": round(v, 1) for k, v in done.timings.items()}}
    finally:
        shutil.rmtree(out, ignore_errors=True)
