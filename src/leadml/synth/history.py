"""``generate_history``: the sample world simulated in fixed-size chunks of leads, and the
``SampleHistory`` it returns (the four contract tables, the hidden truth, the time frame)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadml.errors import LeadmlError
from leadml.synth.emission import emit_events
from leadml.synth.frames import accounts_frame, events_frame, leads_frame, stages_frame, truth_frame
from leadml.synth.journeys import simulate_journeys
from leadml.synth.lifecycle import record_stages
from leadml.synth.population import make_accounts, make_leads
from leadml.synth.scenarios import SCENARIOS
from leadml.synth.truth import exact_truth
from leadml.synth.world import World


class SynthError(LeadmlError, ValueError):
    """An argument of the sample generator is out of range."""


CHUNK_LEADS = 50_000  # fixed, so the output depends only on (n_leads, seed), not on memory


@dataclass(frozen=True)
class SampleHistory:
    """A generated history: the four contract tables, the hidden truth and its time frame.

    Attributes
    ----------
    accounts, leads, events, stages : pandas.DataFrame
        The input-contract tables (timestamps ``datetime64[us, UTC]``, ids as ``str``).
    truth : pandas.DataFrame
        One row per (lead open at ``as_of``, ``as_of``): ``lead_id``, ``as_of``, ``p_true`` (exact
        probability of reaching ``sql`` in ``(as_of, as_of + horizon]``), ``converted`` (whether it
        did) and ``hidden_state`` (the hidden buying state at ``as_of``). Not an input table.
    start, end : pandas.Timestamp
        The history covers ``[start, end)``; nothing happens at or after ``end``.
    horizon_days : int
        The horizon of ``truth``.
    seed : int
        The seed that generated it.
    scenario : str
        The scenario that generated it (see :func:`generate_history`).
    """

    accounts: pd.DataFrame
    leads: pd.DataFrame
    events: pd.DataFrame
    stages: pd.DataFrame
    truth: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp
    horizon_days: int
    seed: int
    scenario: str = "default"

    def tables(self) -> dict[str, pd.DataFrame]:
        """The four input-contract tables by name (``truth`` is not one of them)."""
        return {
            "accounts": self.accounts,
            "leads": self.leads,
            "events": self.events,
            "stages": self.stages,
        }


def generate_history(
    n_leads: int = 5_000,
    seed: int = 0,
    *,
    end: str | pd.Timestamp = "2026-06-30",
    history_days: int = 730,
    horizon_days: int = 90,
    truth_as_of: Sequence[str | pd.Timestamp] | None = None,
    scenario: str = "default",
) -> SampleHistory:
    """Generate a realistic lead history whose conversion probabilities are known exactly.

    Parameters
    ----------
    n_leads : int
        Number of leads; accounts are about a third of that. About 50 events per lead.
    seed : int
        Seed of ``numpy.random.default_rng``; the same ``(n_leads, seed)`` gives identical frames.
    end : str or pandas.Timestamp
        Midnight UTC at which the history stops (exclusive); naive values are taken as UTC.
    history_days : int
        Length of the history before ``end``; leads are created over all of it (with growth).
    horizon_days : int
        Horizon of ``truth``: ``p_true`` is the probability of reaching ``sql`` within it.
    truth_as_of : sequence of timestamps, optional
        As-of instants of ``truth``, each at midnight UTC, inside the history and with its horizon
        ending on or before ``end``. Default: the first of each month over the last 12 months whose
        horizon ends by ``end`` (so every truth row is mature).
    scenario : {"default", "drift", "sparse-crm"}
        The :class:`Scenario` of that name in ``SCENARIOS``. ``"drift"``: the market heats up
        over the history. A drift level rises log-linearly in weekly steps from 0.35 to 5; the
        daily rates of every journey's forward moves are multiplied by it and those of going cold
        divided by it, and accounts' buying windows open in proportion to it (more accounts in
        market later). The base rate of conversion of the weekly open-lead snapshots grows about
        tenfold from the first quarter to the last; events, stages and ``truth`` come from these
        journeys as usual. ``"sparse-crm"``: a real CRM's records. Leads are created in the first
        70 % of the history only; their journeys run at 0.6 times the default pace (outcomes up
        to a year after creation) with a tenth of the default activity (a median of about five
        events per lead); 80 % of accounts have no firmographics (null columns) and 28 % of the
        leads with a company have no ``account_id``; no sales review is recorded, so leads go
        ``lead -> mql -> sql -> opportunity -> customer | lost`` and those that never convert
        stay open. ``truth`` stays exact: it follows the slower journeys, and recording less
        changes what is seen, not the journeys.

    Returns
    -------
    SampleHistory

    Raises
    ------
    SynthError
        If an argument is out of range (e.g. an as-of date whose horizon runs past ``end``).

    Examples
    --------
    >>> h = generate_history(n_leads=200, seed=3, history_days=400)
    >>> h.leads["lead_id"].iloc[0], str(h.events["occurred_at"].dtype)
    ('L0000001', 'datetime64[us, UTC]')
    """
    if n_leads < 1:
        raise SynthError(f"n_leads must be at least 1, got {n_leads}")
    if scenario not in SCENARIOS:
        raise SynthError(f"scenario must be one of {', '.join(SCENARIOS)}, got {scenario!r}")
    if horizon_days < 1 or history_days <= horizon_days:
        raise SynthError(
            f"need 1 <= horizon_days < history_days, got horizon_days={horizon_days}, "
            f"history_days={history_days}"
        )
    spec = SCENARIOS[scenario]
    end_ts = _utc(end, "end")
    start_ts = end_ts - pd.Timedelta(days=history_days)
    as_of = _truth_days(truth_as_of, start_ts, end_ts, horizon_days)

    # Independent streams: one for accounts and lead attributes, one per fixed-size chunk.
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    first = pd.Timestamp(year=start_ts.year, month=start_ts.month, day=1, tz="UTC")
    months = pd.date_range(first, end_ts, freq="MS")
    world = World(
        history_days,
        start_ts.day_of_week,
        horizon_days,
        as_of,
        np.array([(m - start_ts).days for m in months], dtype=np.float64),
        tuple(f"{m:%Y-%m}" for m in months),
        spec.drift,
    )
    accounts = make_accounts(rng, max(10, -(-n_leads // 3)), world, spec)
    leads = make_leads(rng, n_leads, accounts, world, spec)

    parts = []
    for i, lo in enumerate(range(0, n_leads, CHUNK_LEADS)):
        chunk_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2, i)))
        parts.append(
            _simulate_chunk(chunk_rng, leads, slice(lo, lo + CHUNK_LEADS), world, spec.sales_review)
        )
    merged = {key: np.concatenate([p.pop(key) for p in parts]) for key in list(parts[0])}
    del parts

    origin_us = start_ts.value // 1000
    return SampleHistory(
        accounts=accounts_frame(accounts),
        leads=leads_frame(leads, accounts, origin_us),
        events=events_frame(merged, n_leads, world, origin_us),  # frees the event arrays
        stages=stages_frame(merged, n_leads, world, origin_us),
        truth=truth_frame(merged, n_leads, origin_us),
        start=start_ts,
        end=end_ts,
        horizon_days=horizon_days,
        seed=seed,
        scenario=scenario,
    )


def _utc(value: str | pd.Timestamp, name: str) -> pd.Timestamp:
    """``value`` as a UTC timestamp in microseconds (naive: taken as UTC); it must be a midnight."""
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if ts != ts.normalize():
        raise SynthError(f"{name} must be a midnight UTC, got {ts.isoformat()}")
    return ts.as_unit("us")


def _truth_days(
    truth_as_of: Sequence[str | pd.Timestamp] | None,
    start: pd.Timestamp,
    end: pd.Timestamp,
    horizon: int,
) -> np.ndarray:
    """Day indices of the truth's as-of instants, each with its horizon ending by ``end``."""
    last = end - pd.Timedelta(days=horizon)
    if truth_as_of is None:
        firsts = pd.date_range(end=last, periods=12, freq="MS")
        stamps = [t for t in firsts if t > start]
    else:
        stamps = [_utc(t, "truth_as_of") for t in truth_as_of]
        bad = [t for t in stamps if not start < t <= last]
        if bad:
            raise SynthError(
                f"truth_as_of must lie in ({start:%Y-%m-%d}, {last:%Y-%m-%d}] so that the horizon "
                f"of {horizon} days ends by {end:%Y-%m-%d}; got {bad[0]:%Y-%m-%d}"
            )
    return np.unique([(t - start).days for t in stamps]).astype(np.int64)


def _simulate_chunk(
    rng: np.random.Generator,
    leads: dict[str, np.ndarray],
    rows: slice,
    world: World,
    sales_review: bool,
) -> dict[str, np.ndarray]:
    """Journeys, events, stages and truth of the leads in ``rows``, lead codes counted over all."""
    lead = {k: v[rows] for k, v in leads.items()}
    offset = rows.start
    trans = simulate_journeys(rng, lead, world)
    events = emit_events(rng, lead, trans, world)
    stages = record_stages(rng, lead, trans, events, world, sales_review)
    truth = exact_truth(lead, trans, stages, world)
    return {
        "ev_lead": events["lead"] + offset,
        "ev_us": events["us"],
        "ev_type": events["type"],
        "ev_campaign": events["campaign"],
        "ev_content": events["content"],
        "ev_url": events["url"],
        "st_lead": stages["lead"] + offset,
        "st_t": stages["t"],
        "st_stage": stages["stage"],
        "st_reason": stages["reason"],
        "tr_lead": truth["lead"] + offset,
        "tr_day": truth["day"],
        "tr_p": truth["p"],
        "tr_y": truth["y"],
        "tr_state": truth["state"],
    }
