"""A realistic sample history (accounts, leads, events, stages) with an exact hidden ground truth.

Every lead follows a hidden buying journey: a Markov chain in daily steps over

    dormant -> considering -> deciding -> converted (absorbing)
                      \\            \\
                       +------------+---> cold (absorbing)

with back-steps (considering -> dormant, deciding -> considering). Its daily transition
probabilities are the lead's own: they depend on fit (seniority, department, company size,
industry, country, tech stack, e-mail kind), on the lead source, on a hidden per-lead interest and,
while the lead's account is *in market*, on a known account-level window that lifts every lead of
that account. Students, competitors and leads with a bad e-mail address can never convert.

What the CRM and the marketing tools see is emitted from that chain:

* engagement **events** whose rates and types depend on the hidden state (decision-stage actions
  such as demo requests come almost only from ``deciding``), with sessions of several page views,
  business hours by country, fewer actions on weekends, a fading burst after sign-up, an
  unsubscribe when interest dies, bounces for bad addresses;
* lifecycle **stages**: ``mql`` when a points score crosses a threshold (a hand-raise always does),
  ``sal``/``srl`` after a sales review, and ``sql`` *exactly* when the chain reaches ``converted``
  (hand-raisers are fast-tracked through ``sal``); then ``opportunity`` and ``customer``/``lost``.

Because the chain is known, ``p_true(lead, T)`` -- the probability of reaching ``sql`` in
``(T, T + horizon]`` given the hidden state at ``T`` and the lead's parameters -- is computed
exactly by multiplying daily transition matrices. Everything observable before ``T`` depends only
on the path before ``T`` (plus independent noise), so ``p_true`` is the best any model can do and is
calibrated against the realised labels by construction. See ``docs/sample-history.md``.

The ``"drift"`` scenario makes the market heat up over the history (journeys speed up, more
accounts in market), so that the base rate of conversion grows about tenfold. The
``"sparse-crm"`` scenario records what a real CRM holds: few firmographics, many leads without an
account, a handful of events per lead, slow journeys whose outcomes arrive up to a year later,
leads created only in the first part of the history and no sales review, so that leads that never
convert never close. ``flat_export`` turns any history into a CRM's flat export (one row per lead,
activity counts, ``converted``).

The package, one idea per module: ``vocabulary`` and ``people`` (what is recorded and who the
leads are), ``scenarios``, ``world`` (the calendar and the drift level), ``population`` (accounts
and leads), ``journeys`` (the hidden chain), ``catalogue`` and ``emission`` (events),
``lifecycle`` (stages), ``truth`` (``p_true``), ``frames`` (the tables), ``history``
(``generate_history``), ``export`` (``flat_export``) and ``files`` (writing them).

Examples
--------
>>> from leadml.synth import generate_history
>>> h = generate_history(n_leads=300, seed=1)
>>> sorted(h.tables())
['accounts', 'events', 'leads', 'stages']
>>> bool(h.truth["p_true"].between(0, 1).all())
True
"""

from leadml.config import LIFECYCLE_STAGES
from leadml.synth.export import FLAT_ACTIVITY, FLAT_ACTIVITY_DAYS, flat_export
from leadml.synth.files import FLAT_SUFFIXES, write_flat, write_history
from leadml.synth.history import CHUNK_LEADS, SampleHistory, SynthError, generate_history
from leadml.synth.journeys import CONSIDERING, CONVERTED, daily_rates, simulate_journeys
from leadml.synth.people import (
    COMPETITORS,
    FREE_MAIL_DOMAINS,
    JOB_TITLES,
    STUDENT_DOMAINS,
    TITLE_SENIORITY,
)
from leadml.synth.scenarios import SCENARIOS, Scenario
from leadml.synth.truth import exact_truth
from leadml.synth.vocabulary import ALLOWED_TRANSITIONS, BUYING_STAGE, EVENT_TYPES, SENIORITIES
from leadml.synth.world import World

__all__ = [
    "ALLOWED_TRANSITIONS",
    "BUYING_STAGE",
    "CHUNK_LEADS",
    "COMPETITORS",
    "CONSIDERING",
    "CONVERTED",
    "EVENT_TYPES",
    "FLAT_ACTIVITY",
    "FLAT_ACTIVITY_DAYS",
    "FLAT_SUFFIXES",
    "FREE_MAIL_DOMAINS",
    "JOB_TITLES",
    "LIFECYCLE_STAGES",
    "SCENARIOS",
    "SENIORITIES",
    "STUDENT_DOMAINS",
    "TITLE_SENIORITY",
    "SampleHistory",
    "Scenario",
    "SynthError",
    "World",
    "daily_rates",
    "exact_truth",
    "flat_export",
    "generate_history",
    "simulate_journeys",
    "write_flat",
    "write_history",
]
