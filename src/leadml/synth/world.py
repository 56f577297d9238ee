"""The calendar of the simulation: days, weekdays, months, truth instants and the drift level.

Examples
--------
>>> import numpy as np
>>> w = World(70, 0, 30, np.array([40]), np.array([0.0]), ("2024-01",), drift=(1.0, 4.0))
>>> w.level(np.array([0, 6, 7, 69])).round(2).tolist()
[1.07, 1.07, 1.23, 3.73]
>>> w.next_change(np.array([0, 6, 7])).tolist()
[7, 7, 14]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DAY_US = 86_400_000_000  # one day in microseconds, the unit of the tables' timestamps

DRIFT_STEP_DAYS = 7  # the level changes once a week, so that journeys stay exactly simulable


@dataclass(frozen=True)
class World:
    """The simulated time frame in days since the start of the history (day 0 at midnight UTC)."""

    days: int  # number of simulated days; day d covers [start + d, start + d + 1)
    weekday0: int  # weekday of day 0 (Monday = 0)
    horizon: int
    as_of: np.ndarray  # day indices of the truth as-of instants
    month_edges: np.ndarray  # first day of each calendar month (the first may be negative)
    month_labels: tuple[str, ...]  # "YYYY-MM" of each month
    drift: tuple[float, float] = (1.0, 1.0)  # drift level at the start and at the end

    def weekday(self, day: np.ndarray) -> np.ndarray:
        return (self.weekday0 + day) % 7

    def level(self, day: np.ndarray) -> np.ndarray:
        """Drift level on integer days: log-linear in time, constant within each week."""
        middle = (np.floor_divide(day, DRIFT_STEP_DAYS) + 0.5) * DRIFT_STEP_DAYS
        first, last = self.drift
        return first * (last / first) ** np.clip(middle / self.days, 0.0, 1.0)

    @property
    def steady(self) -> bool:
        """Whether there is no drift (the default scenario)."""
        return self.drift == (1.0, 1.0)

    def next_change(self, day: np.ndarray) -> np.ndarray:
        """The first day after ``day`` whose drift level differs (``days`` without drift)."""
        if self.steady:
            return np.full_like(day, self.days)
        return (np.floor_divide(day, DRIFT_STEP_DAYS) + 1) * DRIFT_STEP_DAYS
