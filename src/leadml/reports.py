"""Reports: tables that summarise a lead history (the funnel), from the canonical tables."""

from __future__ import annotations

import pandas as pd

from leadml.data import LeadData

#: The funnel in order; each step's rate is relative to the step before it, except where noted.
FUNNEL = ("lead", "mql", "sal", "sql", "opportunity", "customer")


def funnel_counts(data: LeadData) -> pd.DataFrame:
    """Leads that ever reached each lifecycle stage, with step-to-step and lead-level rates.

    A lead counts for a stage if the stages table has that stage for it at any time; ``srl``
    (sales rejected) is reported next to ``sal`` so the MQL acceptance rate can be read off.

    Examples
    --------
    >>> from leadml.synth import generate_history
    >>> from leadml.data import load_data
    >>> h = generate_history(n_leads=300, seed=1)
    >>> table = funnel_counts(load_data(h.tables()))
    >>> int(table.loc["lead", "leads"]) == 300
    True
    """
    reached = data.con.execute(
        "SELECT stage, count(DISTINCT lead_id) AS leads FROM stages GROUP BY stage"
    ).df()
    n_leads = data.con.execute("SELECT count(*) FROM leads").fetchall()[0][0]
    counts = reached.set_index("stage")["leads"].reindex([*FUNNEL, "srl"], fill_value=0)
    counts["lead"] = n_leads  # every lead is a lead, whether or not a 'lead' row was recorded
    table = counts.to_frame("leads")
    previous = counts.reindex(
        ["lead", "lead", "mql", "sal", "sql", "opportunity", "mql"]
    ).to_numpy()
    table["rate_from_previous"] = counts.to_numpy() / previous.clip(min=1)
    table["rate_from_lead"] = counts / max(n_leads, 1)
    table.index.name = "stage"
    return table
