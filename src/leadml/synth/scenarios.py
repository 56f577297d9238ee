"""Scenarios: how a sample history departs from the default one (drift, a real CRM's records).

Examples
--------
>>> sorted(SCENARIOS), SCENARIOS["drift"].drift
(['default', 'drift', 'sparse-crm'], (0.35, 5.0))
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    """How a sample history departs from the default one (the defaults change nothing).

    Attributes
    ----------
    drift : (float, float)
        Drift level at the start and at the end of the history: buying windows open more often
        and journeys move faster as it rises (1 throughout: no drift).
    created_share : float
        Leads are created only in this first share of the history; the rest is outcomes arriving.
    pace : float
        Multiplies every daily rate of the hidden journeys: below 1, journeys last longer (the
        same chance to convert, later), so outcomes arrive up to a year after creation.
    activity : float
        Multiplies each lead's rates of web sessions, e-mail opens and paid or social touches.
    firmographics_share : float
        Share of accounts whose firmographics (industry, size, revenue, country, tech stack) the
        CRM holds; the others keep the columns, with nulls in them.
    account_share : float
        Share of the leads with a company whose account the CRM records (the hidden journey still
        depends on the company; only ``leads.account_id`` is left null).
    sales_review : bool
        Whether the CRM records the sales review (``sal``, ``srl``, a recycled ``mql`` and the
        early disqualification of unfit leads). Without it, leads go ``lead -> mql -> sql`` and a
        lead that never converts keeps its last stage for ever.
    """

    drift: tuple[float, float] = (1.0, 1.0)
    created_share: float = 1.0
    pace: float = 1.0
    activity: float = 1.0
    firmographics_share: float = 1.0
    account_share: float = 1.0
    sales_review: bool = True


SCENARIOS = {
    "default": Scenario(),
    # The market heats up: the base rate of conversion grows about tenfold over the history.
    "drift": Scenario(drift=(0.35, 5.0)),
    # A real CRM's funnel: thin records, slow deals, leads that never close.
    "sparse-crm": Scenario(
        created_share=0.7,
        pace=0.6,
        activity=0.1,
        firmographics_share=0.2,
        account_share=0.72,
        sales_review=False,
    ),
}
