"""New MQLs in a window of snapshots: a lead is sent once.

In a CRM a lead that became an MQL stays one (its lifecycle stage does not go back), so within
a window a lead is a new MQL at a cut of a score at most once: at its first snapshot at or above
the cut, when at the snapshot before it was below or not open. A lead that dips below the cut
and comes back is not sent again, and neither is a lead at or above the cut at the snapshot
before its first in the window (it was sent already). Its outcome is that first snapshot's.

All of it is one number per row, :func:`highest_before`: the lead is new at cut c at the one
row where ``highest_before < c <= score``, so a table of every cut stays one pass over the rows
(:func:`leadml.modeling.thresholds.cut_table`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def highest_before(rows: pd.DataFrame, score, previous) -> np.ndarray:
    """For each of ``rows`` (``lead_id``, ``as_of``: every open lead at each snapshot of a
    window), the highest ``score`` of its lead before it: at the lead's earlier rows and, for
    its first, ``previous`` (its score at the snapshot before; -inf when it was not open then).

    Examples
    --------
    Lead A scores 5, 2, then 6 (0 the snapshot before); B is new, at 3:

    >>> t = pd.to_datetime(["2026-01-05", "2026-01-12", "2026-01-19"], utc=True)
    >>> rows = pd.DataFrame({"lead_id": ["A", "B", "A", "A"], "as_of": t[[2, 0, 0, 1]]})
    >>> highest_before(rows, [6, 3, 5, 2], [2, -np.inf, 0, 5]).tolist()
    [5.0, -inf, 0.0, 5.0]
    """
    lead = pd.factorize(rows["lead_id"])[0].astype(np.int64)
    at = pd.factorize(rows["as_of"], sort=True)[0]
    order = np.argsort(lead * (at.max(initial=0) + 1) + at, kind="stable")  # by lead, then time
    lead = lead[order]
    before = np.roll(np.asarray(score, dtype=float)[order], 1)  # the row before, in that order
    start = np.diff(lead, prepend=-1) != 0  # a lead's first row: its score the snapshot before
    before[start] = np.asarray(previous, dtype=float)[order][start]
    highest = np.empty(len(lead))
    highest[order] = pd.Series(before).groupby(lead, sort=False).cummax().to_numpy()
    return highest


def first_crossings(rows: pd.DataFrame, score, previous, cut: float) -> np.ndarray:
    """Flags the rows where a lead becomes a new MQL at ``cut`` of ``score`` (``previous``: at
    the snapshot before, as for :func:`highest_before`): once a lead at most, the first time.

    Examples
    --------
    >>> t = pd.to_datetime(["2026-01-05", "2026-01-12", "2026-01-19"], utc=True)
    >>> rows = pd.DataFrame({"lead_id": ["A", "A", "A", "B", "B"], "as_of": t[[0, 1, 2, 0, 1]]})
    >>> first_crossings(rows, [5, 2, 6, 4, 9], [0, 5, 2, 7, 4], cut=4).tolist()  # B: sent before
    [True, False, False, False, False]
    """
    score = np.asarray(score, dtype=float)
    return (score >= cut) & (highest_before(rows, score, previous) < cut)
