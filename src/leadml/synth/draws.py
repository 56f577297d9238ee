"""Random draws shared by the world and the events: categories row by row, times of day."""

from __future__ import annotations

import numpy as np


def time_of_day(rng: np.random.Generator, peak: np.ndarray) -> np.ndarray:
    """Fraction of the UTC day: around local business hours, a few at any time."""
    t = peak + rng.normal(0.0, 0.11, len(peak))
    t = np.where(rng.random(len(peak)) < 0.08, rng.random(len(peak)), t)
    return np.clip(np.mod(t, 1.0), 0.001, 0.999)


def categorical(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One draw per row of a probability matrix."""
    cum = np.cumsum(p, axis=1)
    u = rng.random(len(p)) * cum[:, -1]
    return np.minimum((cum < u[:, None]).sum(axis=1), p.shape[1] - 1)
