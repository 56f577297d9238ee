"""The CRM's stage history, recorded from the hidden journeys and the emitted events.

``mql`` when the marketing-automation score crosses its threshold (a hand-raise always does),
``sal``/``srl`` after a sales review, ``sql`` exactly when the journey converts, then deals.
"""

from __future__ import annotations

import numpy as np

from leadml.config import LIFECYCLE_STAGES
from leadml.synth.journeys import CONVERTED
from leadml.synth.vocabulary import (
    COMPETITOR,
    DECISION_EVENTS,
    EVENT_TYPES,
    STAGE_REASONS,
    STUDENT,
)
from leadml.synth.world import World

_S = {name: i for i, name in enumerate(LIFECYCLE_STAGES)}
_R = {name: i for i, name in enumerate(STAGE_REASONS)}

# Points of the marketing-automation score that promotes a lead to MQL (no decay, as most
# tools); a hand-raise reaches the threshold on its own.
MQL_THRESHOLD = 180.0
_POINTS = {"newsletter_signup": 3, "email_click": 3, "content_download": 6, "case_study_view": 5,
           "webinar_registration": 5, "webinar_attended": 10, "pricing_page_view": 5,
           "product_page_view": 2, "demo_request": 180, "contact_request": 180,
           "trial_signup": 150, "consultation_request": 180, "unsubscribe": -30,
           "email_bounce": -20}  # fmt: skip
EVENT_POINTS = np.array([_POINTS.get(e, 1) for e in EVENT_TYPES], dtype=np.float64)


def record_stages(
    rng: np.random.Generator,
    lead: dict[str, np.ndarray],
    trans: dict[str, np.ndarray],
    events: dict[str, np.ndarray],
    world: World,
    sales_review: bool = True,
) -> dict[str, np.ndarray]:
    """CRM stage history: score-based MQL, sales review, SQL exactly at conversion, then deals.

    Without ``sales_review`` the CRM records no review: no ``sal`` or ``srl``, no recycled
    ``mql``, no early disqualification (the random draws stay the same).
    """
    n = len(lead["created"])
    created, days = lead["created"], float(world.days)
    tau = np.full(n, np.inf)  # conversion = SQL
    conv = trans["to"] == CONVERTED
    tau[trans["lead"][conv]] = trans["t"][conv]
    hand = events["hand_t"]

    # MQL: first time the points score (fit points + cumulative action points) reaches the bar.
    ev_lead, ev_t, ev_type = events["lead"], events["t"], events["type"]
    cs = np.cumsum(EVENT_POINTS[ev_type])
    first = np.searchsorted(ev_lead, np.arange(n))
    before = np.where(first > 0, cs[np.maximum(first - 1, 0)], 0.0)
    score = cs - before[ev_lead] + lead["fit_points"][ev_lead]
    hits = np.flatnonzero(score >= MQL_THRESHOLD)
    hit_leads, pos = np.unique(ev_lead[hits], return_index=True)
    mql = np.full(n, np.inf)
    mql[hit_leads] = ev_t[hits[pos]]
    mql_by_hand = np.zeros(n, dtype=bool)
    mql_by_hand[hit_leads] = np.isin(ev_type[hits[pos]], DECISION_EVENTS)

    review = mql + 0.02 + rng.exponential(1.2, n)  # speed to lead: hours to a few days
    accept = rng.random(n) < lead["p_accept"]
    u = rng.uniform(0.2, 0.8, (3, n))
    converts = np.isfinite(tau)
    scored = mql < tau
    a = converts & scored & (review < tau) & accept  # reviewed and accepted before converting
    b = converts & scored & (review < tau) & ~accept  # rejected, then recycled by the hand-raise
    c = converts & scored & (review >= tau)  # hand-raise fast-tracked before the review
    d = converts & ~scored  # the hand-raise itself makes the MQL
    never = ~converts

    # Times of the conversion path; only read where the lead converts (finite tau and hand).
    tau_c, hand_c = np.where(converts, tau, days), np.where(converts, hand, days)
    review_c = np.minimum(review, tau_c)
    recycle = np.where(hand_c > review_c, hand_c, review_c + (tau_c - review_c) * 0.5 * u[0])
    fast_lo = np.where(c, np.maximum(np.minimum(mql, tau_c), hand_c), hand_c)
    zero_fit = lead["fit"] == 0
    kind_reason = np.select(
        [lead["kind"] == STUDENT, lead["kind"] == COMPETITOR, lead["bad_email"]],
        [_R["student"], _R["competitor"], _R["invalid_contact"]],
        rng.choice([_R["not_a_fit"], _R["no_budget"], _R["bad_timing"]], n),
    )
    disq = review + 1.0 + rng.exponential(10.0, n)
    early_disq = never & ~accept & zero_fit & (disq < days) & sales_review

    # Deals after SQL.
    opp_t = tau + 0.5 + rng.exponential(6.0, n)
    opp = converts & (rng.random(n) < 0.65)
    drop = converts & ~opp & (rng.random(n) < 0.5)
    drop_t = tau + 2.0 + rng.exponential(14.0, n)
    p_win = 0.12 + 0.18 * np.minimum(lead["fit"], 1.5) / 1.5
    won = rng.random(n) < p_win
    close_t = opp_t + 10.0 + rng.gamma(2.0, 25.0, n)
    lost_reason = rng.choice(
        [_R["price"], _R["competitor_chosen"], _R["no_decision"], _R["bad_timing"]],
        n,
        p=[0.3, 0.3, 0.25, 0.15],
    )
    deal_reason = rng.choice([_R["no_budget"], _R["no_authority"], _R["no_need"]], n)

    everyone = np.ones(n, dtype=bool)
    mql_reason = np.where(mql_by_hand, _R["hand_raise"], _R["score_threshold"])
    # (mask, time, stage, reason, rank): rank orders rows that share a timestamp.
    pieces = [
        (everyone, created, "lead", -1, 0),
        (scored & (mql < days), mql, "mql", mql_reason, 1),
        (d, hand, "mql", _R["hand_raise"], 1),
        ((a | (never & accept)) & (review < days) & sales_review, review, "sal", -1, 2),
        ((b | (never & ~accept)) & (review < days) & sales_review, review, "srl", kind_reason, 2),
        (b & sales_review, recycle, "mql", _R["recycled"], 3),
        (b & sales_review, recycle + (tau_c - recycle) * u[1], "sal", -1, 4),
        ((c | d) & sales_review, fast_lo + (tau_c - fast_lo) * u[2], "sal", -1, 4),
        (converts, tau, "sql", -1, 5),
        (early_disq, disq, "disqualified", kind_reason, 6),
        (opp & (opp_t < days), opp_t, "opportunity", -1, 6),
        (drop & (drop_t < days), drop_t, "disqualified", deal_reason, 6),
        (opp & won & (close_t < days), close_t, "customer", -1, 7),
        (opp & ~won & (close_t < days), close_t, "lost", lost_reason, 7),
    ]
    leads_, times, stages, reasons, ranks = [], [], [], [], []
    for mask, t, stage, reason, rank in pieces:
        idx = np.flatnonzero(mask)
        leads_.append(idx)
        times.append(np.broadcast_to(t, (n,))[idx])
        stages.append(np.full(len(idx), _S[stage], dtype=np.int8))
        reasons.append(np.broadcast_to(np.asarray(reason, dtype=np.int16), (n,))[idx])
        ranks.append(np.full(len(idx), rank, dtype=np.int8))
    st_lead, st_t = np.concatenate(leads_), np.concatenate(times)
    st_rank = np.concatenate(ranks)
    order = np.lexsort((st_rank, st_t, st_lead))
    # Open until SQL or a terminal stage (only never-converting leads are disqualified early).
    closed = np.where(converts, tau, np.where(early_disq, disq, np.inf))
    return {
        "lead": st_lead[order],
        "t": st_t[order],
        "stage": np.concatenate(stages)[order],
        "reason": np.concatenate(reasons)[order],
        "tau": tau,
        "closed": closed,
    }
