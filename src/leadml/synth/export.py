"""The history as a CRM's flat export: one row per lead, its attributes, its activity counts and
whether it converted, the way ``leadml train --flat`` takes it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadml.synth.history import SampleHistory, SynthError
from leadml.synth.people import DEPARTMENT_OF_TITLE, SENIORITY_OF_TITLE
from leadml.synth.vocabulary import EVENT_TYPES

#: Days after its creation during which a lead's activity is counted in ``flat_export``.
FLAT_ACTIVITY_DAYS = 30
#: Activity columns of ``flat_export``: column -> the canonical event type it counts.
FLAT_ACTIVITY = {
    ("webinars_attended" if e == "webinar_attended" else f"{e}s"): e for e in EVENT_TYPES
}

_FLAT_REACHED = ("sql", "opportunity", "customer")  # sql, or a stage after it
_FLAT_CLOSING = (*_FLAT_REACHED, "lost", "disqualified")


def flat_export(
    history: SampleHistory,
    *,
    activity_days: int = FLAT_ACTIVITY_DAYS,
    horizon_days: int | None = None,
) -> pd.DataFrame:
    """The history as a CRM's flat export: one row per lead, its attributes, its activity counts
    and whether it converted, the way ``leadml train --flat`` takes it.

    Each lead is described ``activity_days`` after its creation (the instant ``seen``): its
    activity columns count its events in ``[created_at, seen)``, and ``converted`` says whether it
    reached ``sql`` (or a later stage) in ``(seen, seen + horizon_days]``. Nothing in a row is
    observed after ``seen``, so no column leaks the outcome. Leads no longer open at ``seen``
    (already ``sql``, or lost or disqualified) and leads whose outcome is not known yet
    (``seen + horizon_days`` after the end of the history) have no row. No PII (e-mail address,
    names) is exported.

    Parameters
    ----------
    history : SampleHistory
    activity_days : int
        Length of the activity window after creation (default 30).
    horizon_days : int, optional
        Horizon of ``converted`` (default: the history's, 90 days unless generated otherwise).

    Returns
    -------
    pandas.DataFrame
        ``lead_id``, ``created_at``, ``lead_source``, ``job_title``, ``seniority`` and
        ``department`` (read from the title, as CRM enrichment does), ``country``, the company's
        ``industry``, ``employee_count``, ``annual_revenue`` and ``tech_stack`` (missing for
        leads without one), one count per ``FLAT_ACTIVITY`` column, and ``converted`` (bool);
        sorted by ``lead_id``.

    Examples
    --------
    >>> from leadml.synth import generate_history
    >>> flat = flat_export(generate_history(n_leads=300, seed=1))
    >>> flat["lead_id"].is_unique, "email" in flat, flat["converted"].dtype.name
    (True, False, 'bool')
    """
    horizon = history.horizon_days if horizon_days is None else horizon_days
    if activity_days < 1 or horizon < 1:
        raise SynthError(
            f"activity_days and horizon_days must be at least 1, got {activity_days}, {horizon}"
        )
    leads, stages = history.leads, history.stages
    seen = leads.set_index("lead_id")["created_at"] + pd.Timedelta(days=activity_days)
    until = seen + pd.Timedelta(days=horizon)
    first = stages.groupby(["lead_id", "stage"])["entered_at"].min().unstack()
    first = first.reindex(index=seen.index, columns=list(_FLAT_CLOSING))
    reached, closed = first[list(_FLAT_REACHED)].min(axis=1), first.min(axis=1)
    keep = (until <= history.end) & ~(closed < seen)  # open at `seen` (NaT compares False)
    converted = (reached > seen) & (reached <= until)

    # Activity in the window, counted per (lead, event type).
    events = history.events
    lead_code = seen.index.get_indexer(events["lead_id"])
    in_window = np.asarray(events["occurred_at"].array < seen.array.take(lead_code))
    type_code = pd.Index(EVENT_TYPES).get_indexer(events["event_type"])
    counts = np.zeros((len(leads), len(EVENT_TYPES)), dtype=np.int64)
    np.add.at(counts, (lead_code[in_window], type_code[in_window]), 1)

    accounts = history.accounts.set_index("account_id")
    company = accounts.reindex(leads["account_id"])
    title = leads["job_title"]
    frame = pd.DataFrame(
        {
            "lead_id": leads["lead_id"],
            "created_at": leads["created_at"],
            "lead_source": leads["lead_source"],
            "job_title": title,
            "seniority": title.map(SENIORITY_OF_TITLE),
            "department": title.map(DEPARTMENT_OF_TITLE),
            "country": leads["country"],
            "industry": company["industry"].to_numpy(),
            "employee_count": company["employee_count"].to_numpy(),
            "annual_revenue": company["annual_revenue"].to_numpy(),
            "tech_stack": company["tech_stack"].to_numpy(),
        }
    )
    for column, etype in FLAT_ACTIVITY.items():
        frame[column] = counts[:, EVENT_TYPES.index(etype)]
    frame["converted"] = converted.to_numpy()
    return frame[keep.to_numpy()].reset_index(drop=True)
