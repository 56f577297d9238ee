"""How sure the comparison at equal volume is, and what it cannot credit.

The rules' new MQLs and a score's top leads at their volume are two cohorts of the same size
that share many leads, so the difference of their conversions is measured on the leads: a
bootstrap that draws, with replacement, from the leads in either cohort, each with what it did
in both. Counts of a few dozen conversions move by ten or more between two draws of the same
leads; a difference whose interval holds zero is no verdict either way.

A lead counts once per cohort, on the first night of the period that cohort flags it, and as a
conversion only within one horizon of that night. A score that sends a future converter to
sales earlier -- before the period, or more than one horizon before the lead converts -- is not
credited with it, while a score that flags it later is: the *head start* counts those leads.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

#: Bootstrap draws of the difference (the interval's bounds move by well under one conversion).
DRAWS = 4000


@dataclass(frozen=True)
class Difference:
    """``definition``'s conversions minus ``versus``'s, at the same MQL volume."""

    definition: str
    versus: str
    difference: int
    low: int  # 95 % bootstrap interval over the leads, in whole conversions
    high: int
    leads: int  # leads in either cohort (mature)
    #: ``versus``'s conversions among leads ``definition`` had sent on an earlier night (the
    #: baseline night included) and that count as no conversion of ``definition``'s.
    head_start: int = 0
    #: The same the other way: ``definition``'s conversions among leads ``versus`` sent first.
    head_start_versus: int = 0

    @property
    def settled(self) -> bool:
        """The interval leaves out zero: the sign of the difference is beyond chance."""
        return self.low > 0 or self.high < 0


def _converted(outcomes: pd.DataFrame, definition: str) -> pd.Series:
    rows = outcomes[(outcomes["definition"] == definition) & outcomes["mature"]]
    return rows.set_index("lead_id")["converted"].astype(bool)


def difference_interval(
    outcomes: pd.DataFrame,
    definition: str,
    versus: str = "rules",
    *,
    draws: int = DRAWS,
    seed: int = 0,
) -> Difference:
    """The difference of conversions between two cohorts (mature MQLs of ``outcomes``,
    :func:`leadml.reports.compare_mqls`) with its 95 % interval by a paired bootstrap over
    the leads in either cohort.

    Each lead adds +1 (a conversion of ``definition``'s only), -1 (``versus``'s only) or 0,
    so a draw of ``n`` leads is a draw of three counts: the bootstrap is exact and costs
    nothing however many leads there are.

    Examples
    --------
    >>> outcomes = pd.DataFrame({"lead_id": list("abcdab"), "mature": True,
    ...     "definition": ["model"] * 4 + ["rules"] * 2,
    ...     "converted": [True, True, True, False, True, False]})
    >>> d = difference_interval(outcomes, "model")
    >>> d.difference, d.leads, d.low <= d.difference <= d.high, d.settled
    (2, 4, True, False)
    """
    mine, theirs = _converted(outcomes, definition), _converted(outcomes, versus)
    leads = mine.index.union(theirs.index)
    step = mine.reindex(leads, fill_value=False).astype(int) - theirs.reindex(
        leads, fill_value=False
    ).astype(int)
    n = len(leads)
    shares = [float((step == 1).mean()), float((step == -1).mean())] if n else [0.0, 0.0]
    shares.append(max(0.0, 1.0 - sum(shares)))
    counts = np.random.default_rng(seed).multinomial(n, shares, size=draws)
    drawn = counts[:, 0] - counts[:, 1]
    # Whole conversions, the interval widened rather than narrowed to reach them.
    low = np.percentile(drawn, 2.5, method="lower")
    high = np.percentile(drawn, 97.5, method="higher")
    return Difference(definition, versus, int(step.sum()), int(low), int(high), n)


def head_start(outcomes: pd.DataFrame, first_sent: pd.Series, definition: str, versus: str) -> int:
    """``versus``'s conversions among leads ``definition`` had sent to sales on an earlier
    night (``first_sent``: its first night per lead, the baseline night included) and that
    are no conversion of ``definition``'s in the period: what the count cannot credit to the
    score that found them first."""
    theirs = outcomes[(outcomes["definition"] == versus) & outcomes["mature"]
                      & outcomes["converted"].astype(bool)]  # fmt: skip
    earlier = theirs["lead_id"].map(first_sent) < theirs["flagged_at"]
    credited = set(_converted(outcomes, definition).loc[lambda s: s].index)
    return int((earlier & ~theirs["lead_id"].isin(credited)).sum())


def differences(
    outcomes: pd.DataFrame, first_sent: dict[str, pd.Series] | None = None
) -> dict[str, Difference]:
    """Each score at the rules' volume against the rules' new MQLs, by definition."""
    first_sent = first_sent or {}
    found = {}
    for definition in ("model_at_volume", "learned_at_volume"):
        if not (outcomes["definition"] == definition).any():
            continue
        found[definition] = difference_interval(outcomes, definition)
        if definition in first_sent and "rules" in first_sent:
            found[definition] = replace(
                found[definition],
                head_start=head_start(outcomes, first_sent[definition], definition, "rules"),
                head_start_versus=head_start(outcomes, first_sent["rules"], "rules", definition),
            )
    return found


def difference_table(found: dict[str, Difference]) -> pd.DataFrame:
    """:func:`differences` as a table, one row per definition (``tables/mql_difference.csv``)."""
    rows = [d.__dict__ | {"settled": d.settled} for d in found.values()]
    return pd.DataFrame(rows).set_index("definition")


_WHO = {"model_at_volume": "the model", "learned_at_volume": "the learned rules"}


def difference_words(d: Difference, days: int) -> str:
    """One sentence: how sure the difference is, and what the count cannot credit."""
    sign = f"{d.difference:+,}"
    interval = (f"95 % interval {d.low:+,} to {d.high:+,} by a bootstrap over the "
                f"{d.leads:,} leads either sent")  # fmt: skip
    if d.settled:
        words = (f"The difference, {sign} conversions ({interval}), is beyond chance for "
                 "this count of new MQLs.")  # fmt: skip
    else:
        words = (f"The difference, {sign} conversions ({interval}), is within what chance "
                 "gives on counts this small: no verdict either way.")  # fmt: skip
    if d.head_start or d.head_start_versus:
        who = _WHO[d.definition]
        words += (f" {d.head_start:,} of the rules' conversions are leads {who} had sent to "
                  f"sales on an earlier night (before the period, or more than {days} days "
                  f"before they converted), and {d.head_start_versus:,} of {who}'s the other way "
                  "round: a conversion counts for whoever flags the lead in the period and "
                  "within one horizon, not for who found it first.")  # fmt: skip
    return words
