"""A small benchmark harness: cases are functions, each timed in a fresh process.

A case is declared in a ``bench/bench_*.py`` module::

    @case("features: nightly snapshot, 1 M leads", max_seconds=15, max_gib=3)
    def nightly_features():
        data = leadml.load_data(dataset(1_000_000))
        ...
        return {"rows": len(frame)}          # optional: extra figures for the table

``bench/run.py`` runs each case in its own Python process (one warm-up run, then ``repeats``
timed runs), so peak memory is the case's own, and prints medians.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data"


@dataclass(frozen=True)
class Case:
    name: str
    func: Callable[[], dict | None]
    max_seconds: float | None
    max_gib: float | None
    repeats: int

    @property
    def target(self) -> str:
        parts = []
        if self.max_seconds is not None:
            parts.append(f"≤ {self.max_seconds:g} s")
        if self.max_gib is not None:
            parts.append(f"≤ {self.max_gib:g} GiB")
        return ", ".join(parts) or "-"


CASES: list[Case] = []


class Skip(Exception):
    """Raised by a case that cannot run here (e.g. a data file that is absent): ``bench/run.py``
    reports the message and moves on without counting it as a failure."""


def case(
    name: str,
    *,
    max_seconds: float | None = None,
    max_gib: float | None = None,
    repeats: int = 3,
) -> Callable:
    """Register a benchmark case."""

    def register(func: Callable) -> Callable:
        CASES.append(Case(name, func, max_seconds, max_gib, repeats))
        return func

    return register


def dataset(n_leads: int, seed: int = 0) -> Path:
    """A generated sample history as Parquet files, created once and cached under bench/data."""
    folder = DATA / f"leads-{n_leads}-seed-{seed}"
    if not (folder / "stages.parquet").exists():
        from leadml.synth import generate_history, write_history

        write_history(generate_history(n_leads=n_leads, seed=seed), folder)
    return folder
