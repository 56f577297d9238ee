"""Steps timed and logged as they finish, so a long job shows where it is and where the time
went: ``validate: input valid: leads 5,000 (2.1 s)`` on the ``leadml.*`` loggers (the CLI sends
them to stderr)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

#: progress(step, done, total): called as a job's steps or chunks finish (a terminal's bar).
Progress = Callable[[str, int, int], None]


class StepClock:
    """Times the steps of one job; :meth:`lap` ends a step, logs it and keeps its seconds.

    Examples
    --------
    >>> clock = StepClock(logging.getLogger("leadml.example"))
    >>> clock.lap("read", "%d rows", 3)
    >>> list(clock.seconds)
    ['read']
    """

    def __init__(self, log: logging.Logger, progress: Progress | None = None, steps: int = 0):
        self.log, self.progress, self.steps = log, progress, steps
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, step: str, message: str = "", *args) -> None:
        """End ``step`` (its time adds up if it comes again) and log ``message % args``."""
        now = time.perf_counter()
        self.seconds[step] = round(self.seconds.get(step, 0.0) + now - self._last, 3)
        self._last = now
        self.log.info("%s: " + (message or "done") + " (%.1f s)", step, *args, self.seconds[step])
        if self.progress is not None:  # ``steps`` of them in all
            self.progress(step, len(self.seconds), max(self.steps, len(self.seconds)))
