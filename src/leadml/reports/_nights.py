"""MQLs on scored nights: which are *new* in a period, and a score's MQLs at another's volume.

The *baseline* is the last scored night before the period: who was an MQL already when the
period starts. Those leads are no new MQLs of the period; every other lead is one on the first
night of the period on which the score makes it an MQL. When no night was scored before the
period, its own first night is the baseline: a lead above the threshold on the first night
ever scored may have been there for months, and counting all of them as the period's new MQLs
would credit the score that keeps the most leads above its threshold with a pile of old MQLs.

At equal volume, like with like: on each night, a second score sends sales as many new leads as
the reference score (the rules) made new MQLs that night -- its highest-scored open leads not
sent already -- starting from as many leads as the reference had MQLs on the baseline night.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadml.modeling.crossings import first_crossings

NO_FLAGS = {"lead_id": [], "definition": [], "flagged_at": []}


def night_window(
    every_night: pd.DatetimeIndex, period_nights: pd.DatetimeIndex
) -> tuple[pd.DatetimeIndex, str]:
    """The nights to read for ``period_nights``: the baseline night first, then the nights
    whose new MQLs count; and a note when the baseline is the period's own first night."""
    earlier = every_night[every_night < period_nights[0]]
    if len(earlier):
        return earlier[-1:].append(period_nights), ""
    return period_nights, (
        f"{period_nights[0]:%Y-%m-%d} is the first scored night: the leads that were MQLs on it "
        "are not counted as new MQLs of the period (nobody knows since when they were), only "
        "the leads that became MQLs on a later night."
    )


def _positions(rows: pd.DataFrame, nights: pd.DatetimeIndex) -> pd.Series:
    return rows["as_of"].map(pd.Series(np.arange(len(nights)), index=nights))


def new_mqls(
    rows: pd.DataFrame, flag: str, nights: pd.DatetimeIndex, definition: str
) -> pd.DataFrame:
    """Each lead's first night after the baseline (``nights[0]``) on which ``flag`` is true,
    for the leads whose ``flag`` was not true on the baseline night.

    Returns
    -------
    pandas.DataFrame
        ``lead_id``, ``definition``, ``flagged_at`` (the night).

    Examples
    --------
    >>> nights = pd.DatetimeIndex(["2026-01-05", "2026-01-12", "2026-01-19"], tz="UTC")
    >>> rows = pd.DataFrame({"lead_id": ["A", "A", "B", "B", "C"],
    ...                      "as_of": nights[[0, 2, 0, 2, 1]], "mql": [1, 1, 0, 1, 1]})
    >>> new_mqls(rows, "mql", nights, "rules")["lead_id"].tolist()  # A was an MQL already
    ['C', 'B']
    """
    # Sent once, as leadml rules threshold counts it (modeling.crossings): on the first night
    # the flag is up, unless it was up on an earlier night, the baseline included.
    flag_up = rows[flag].astype(float).to_numpy()
    sent = first_crossings(rows, flag_up, np.full(len(rows), -np.inf), cut=1.0)
    first = pd.DataFrame({"lead_id": rows["lead_id"], "at": _positions(rows, nights)})[sent]
    first = first[first["at"] > 0].sort_values(["at", "lead_id"])
    return pd.DataFrame({
        "lead_id": first["lead_id"].astype("str").to_numpy(), "definition": definition,
        "flagged_at": nights[first["at"].to_numpy(dtype=int)],
    })  # fmt: skip


def at_volume(
    rows: pd.DataFrame,
    score: str,
    reference: str,
    nights: pd.DatetimeIndex,
    definition: str,
    seed: int = 0,
    baseline: bool = False,
) -> pd.DataFrame:
    """``score``'s MQLs at the volume of the ``reference`` flag: on the baseline night, its top
    leads as many as the reference's MQLs then (already sent, not new: returned only with
    ``baseline``); on each later night, its top open leads not sent yet, as many as the
    reference's new MQLs that night (:func:`new_mqls`). Ties are broken at random (``seed``),
    so a coarse score (points) is neither flattered nor punished by the order of the rows.

    Examples
    --------
    >>> nights = pd.DatetimeIndex(["2026-01-05", "2026-01-12"], tz="UTC")
    >>> rows = pd.DataFrame({"lead_id": list("ABCAB"), "as_of": nights[[0, 0, 0, 1, 1]],
    ...                      "p": [.9, .2, .1, .9, .8], "mql": [1, 0, 0, 1, 1]})
    >>> at_volume(rows, "p", "mql", nights, "model")["lead_id"].tolist()
    ['B']
    """
    volume = new_mqls(rows, reference, nights, reference)["flagged_at"].value_counts()
    at = _positions(rows, nights).to_numpy()
    chosen = rows[[score, "lead_id"]].assign(
        at=at, flag=rows[reference].astype(bool).to_numpy(),
        tiebreak=np.random.default_rng(seed).random(len(rows)),
    )  # fmt: skip
    sent: set[str] = set()
    parts = []
    for position, night in enumerate(nights):
        tonight = chosen[chosen["at"] == position]
        wanted = int(tonight["flag"].sum()) if position == 0 else int(volume.get(night, 0))
        if not wanted:
            continue
        ranked = tonight.sort_values([score, "tiebreak"], ascending=False)
        picked = ranked.loc[~ranked["lead_id"].isin(sent), "lead_id"].head(wanted)
        sent.update(picked)
        if position or baseline:
            parts.append(pd.DataFrame({"lead_id": picked.astype("str").to_numpy(),
                                       "definition": definition, "flagged_at": night}))  # fmt: skip
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(NO_FLAGS)
