"""Run the benchmarks and print a table of medians: ``python bench/run.py [-k WORDS]``.

Each case runs in a fresh process: one warm-up run (which also builds cached data sets), then
the timed runs. Wall time covers the whole case; peak memory is the process's maximum RSS.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from bench.harness import CASES, Case, Skip  # noqa: E402


def load_cases() -> list[Case]:
    for path in sorted(ROOT.glob("bench_*.py")):
        importlib.import_module(f"bench.{path.stem}")
    return CASES


def run_child(index: int) -> None:
    case = load_cases()[index]
    start = time.perf_counter()
    try:
        extra = case.func() or {}
    except Skip as skip:
        print(json.dumps({"skipped": str(skip)}))
        return
    seconds = time.perf_counter() - start
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_gib": peak_gib, **extra}))


def measure(index: int) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(index)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-k", default="", help="run only cases whose name contains these words")
    parser.add_argument("--repeats", type=int, help="timed runs per case (default: the case's)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        run_child(args.child)
        return 0
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    rows, failed = [], False
    for index, case in enumerate(load_cases()):
        if args.k.lower() not in case.name.lower():
            continue
        print(f"running: {case.name} ...", file=sys.stderr, flush=True)
        try:
            warm_up = measure(index)
            if "skipped" in warm_up:
                rows.append((case.name, "-", "-", case.target, "skipped", warm_up["skipped"]))
                continue
            runs = [measure(index) for _ in range(args.repeats or case.repeats)]
        except RuntimeError as exc:
            rows.append((case.name, "error", "", case.target, str(exc).splitlines()[-1], ""))
            failed = True
            continue
        seconds = statistics.median(r["seconds"] for r in runs)
        peak = max(r["peak_gib"] for r in runs)
        ok = (case.max_seconds is None or seconds <= case.max_seconds) and (
            case.max_gib is None or peak <= case.max_gib
        )
        failed |= not ok
        extra = {k: v for k, v in runs[-1].items() if k not in ("seconds", "peak_gib")}
        notes = ", ".join(
            f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in extra.items()
        )
        rows.append(
            (
                case.name,
                f"{seconds:.2f}",
                f"{peak:.2f}",
                case.target,
                "ok" if ok else "MISSED",
                notes,
            )
        )
    header = ("case", "median s", "peak GiB", "target", "verdict", "notes")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
