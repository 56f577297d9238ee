"""What the marketing tools see: engagement events emitted from the hidden journeys.

Rates and types depend on the hidden state (decision-stage actions come almost only from
``deciding``), with sessions of several page views, business hours by country, fewer actions on
weekends, a fading burst after sign-up, an unsubscribe when interest dies and bounces for bad
addresses.
"""

from __future__ import annotations

import numpy as np

from leadml.synth.catalogue import event_details
from leadml.synth.draws import categorical, time_of_day
from leadml.synth.journeys import COLD, CONVERTED, DECIDING, DORMANT, HIDDEN_STATES, segments
from leadml.synth.vocabulary import DECISION_EVENTS, EVENT_CODE, column_arrays
from leadml.synth.world import DAY_US, World

# Emission rates per day (activity 1) by hidden state: dormant, considering, deciding, converted,
# cold. Web sessions hold several actions; e-mail opens may be followed by a click.
WEB_SESSIONS = np.array([0.02, 0.165, 0.37, 0.06, 0.004])
SESSION_LENGTH = np.array([1.8, 2.8, 3.4, 2.2, 1.4])  # mean actions per web session
EMAIL_OPENS = np.array([0.06, 0.13, 0.17, 0.06, 0.008])
EMAIL_CLICK_P = np.array([0.08, 0.25, 0.3, 0.15, 0.03])
TOUCHES = np.array([0.012, 0.03, 0.03, 0.006, 0.002])  # ad clicks and social engagement
ACCOUNT_WINDOW_ACTIVITY = 1.6  # every lead of an in-market account is more active
WEEKDAY_WEB = np.array([1.0, 1.05, 1.05, 1.0, 0.85, 0.3, 0.25])  # Monday first
WEEKDAY_EMAIL = np.array([0.8, 1.6, 1.0, 1.5, 0.7, 0.2, 0.2])  # sends go out on Tue/Thu

# Web action mix by hidden state: dormant, considering, deciding, converted, cold.
_WEB_TYPES, *_mix = column_arrays([
    ("page_view",            0.52,  0.30,   0.25,  0.40, 0.60),
    ("blog_view",            0.36,  0.15,   0.08,  0.15, 0.38),
    ("newsletter_signup",    0.02,  0.01,   0.0,   0.0,  0.0),
    ("content_download",     0.03,  0.09,   0.06,  0.04, 0.01),
    ("case_study_view",      0.02,  0.08,   0.10,  0.05, 0.0),
    ("webinar_registration", 0.005, 0.03,   0.02,  0.01, 0.0),
    ("webinar_attended",     0.0,   0.02,   0.03,  0.01, 0.0),
    ("pricing_page_view",    0.01,  0.11,   0.18,  0.04, 0.01),
    ("product_page_view",    0.035, 0.207,  0.24,  0.30, 0.0),
    ("demo_request",         0.0,   0.001,  0.012, 0.0,  0.0),
    ("contact_request",      0.0,   0.001,  0.008, 0.0,  0.0),
    ("trial_signup",         0.0,   0.0005, 0.008, 0.0,  0.0),
    ("consultation_request", 0.0,   0.0005, 0.003, 0.0,  0.0),
])  # fmt: skip
_WEB_TYPES = np.array([EVENT_CODE[e] for e in _WEB_TYPES])
_WEB_MIX = np.stack(_mix)
_WEB_MIX /= _WEB_MIX.sum(axis=1, keepdims=True)


def emit_events(
    rng: np.random.Generator,
    lead: dict[str, np.ndarray],
    trans: dict[str, np.ndarray],
    world: World,
) -> dict[str, np.ndarray]:
    """Observable actions emitted from the hidden journeys (sorted by lead, then time)."""
    seg_lead, seg_state, t0, t1 = segments(lead, trans, world.days)
    act = lead["activity"]
    seg_act = act[seg_lead]
    # After going cold, some leads unsubscribe (right away); they get no more e-mail.
    went_cold = (seg_state == COLD) & (t0 > lead["created"][seg_lead])
    unsub = went_cold & (rng.random(len(seg_state)) < 0.35) & ~lead["bad_email"][seg_lead]
    no_mail = lead["bad_email"][seg_lead] | unsub

    parts: list[dict[str, np.ndarray]] = []
    # Web sessions: bursts of several actions within minutes.
    s_seg, s_t = _thinned_times(
        rng,
        lead,
        seg_lead,
        seg_state,
        t0,
        t1,
        WEB_SESSIONS[seg_state] * seg_act,
        WEEKDAY_WEB,
        world,
    )
    n_act = rng.geometric(1.0 / SESSION_LENGTH[seg_state[s_seg]])
    ev_seg = np.repeat(s_seg, n_act)
    first = np.repeat(np.cumsum(n_act) - n_act, n_act)
    gaps = rng.exponential(2.5 / 1440, len(ev_seg))
    csum = np.cumsum(gaps)
    ev_t = np.repeat(s_t, n_act) + csum - csum[first]  # the first action starts the session
    ev_type = _web_types(rng, seg_state[ev_seg])
    parts.append({"seg": ev_seg, "t": ev_t, "type": ev_type})

    # E-mail: opens of newsletters and nurture mails, some followed by a click.
    mail_rate = np.where(no_mail, 0.0, EMAIL_OPENS[seg_state] * np.sqrt(seg_act))
    o_seg, o_t = _thinned_times(
        rng, lead, seg_lead, seg_state, t0, t1, mail_rate, WEEKDAY_EMAIL, world
    )
    click = rng.random(len(o_seg)) < EMAIL_CLICK_P[seg_state[o_seg]]
    parts.append({"seg": o_seg, "t": o_t, "type": np.full(len(o_seg), EVENT_CODE["email_open"])})
    parts.append(
        {
            "seg": o_seg[click],
            "t": o_t[click] + rng.exponential(3 / 1440, click.sum()),
            "type": np.full(int(click.sum()), EVENT_CODE["email_click"]),
        }
    )

    # Paid and social touches.
    a_seg, a_t = _thinned_times(
        rng, lead, seg_lead, seg_state, t0, t1, TOUCHES[seg_state] * seg_act, WEEKDAY_WEB, world
    )
    a_type = np.where(
        rng.random(len(a_seg)) < 0.6, EVENT_CODE["ad_click"], EVENT_CODE["social_engagement"]
    )
    parts.append({"seg": a_seg, "t": a_t, "type": a_type})

    # The unsubscribe itself, minutes to hours after interest died (same day).
    u_seg = np.flatnonzero(unsub)
    u_t = t0[u_seg] + (np.floor(t0[u_seg]) + 1 - t0[u_seg]) * rng.uniform(0.01, 0.9, len(u_seg))
    parts.append({"seg": u_seg, "t": u_t, "type": np.full(len(u_seg), EVENT_CODE["unsubscribe"])})

    # Bounces: the first sends to a bad address, then the list drops it.
    first_seg = np.r_[True, seg_lead[1:] != seg_lead[:-1]]
    b_lead_seg = np.flatnonzero(first_seg & lead["bad_email"][seg_lead])
    n_b = rng.integers(1, 4, len(b_lead_seg))
    b_seg = np.repeat(b_lead_seg, n_b)
    b_k = np.arange(len(b_seg)) - np.repeat(np.cumsum(n_b) - n_b, n_b)
    b_t = t0[b_seg] + rng.uniform(0.1, 3, len(b_seg)) + 7 * b_k
    parts.append({"seg": b_seg, "t": b_t, "type": np.full(len(b_seg), EVENT_CODE["email_bounce"])})

    # The action that created the lead (form fill), at the creation instant.
    c_seg = np.flatnonzero(first_seg)
    c_type = _creation_types(rng, lead["source"][seg_lead[c_seg]], seg_state[c_seg])
    keep = c_type >= 0
    parts.append({"seg": c_seg[keep], "t": t0[c_seg[keep]], "type": c_type[keep]})

    # The hand-raise that precedes every conversion, earlier the same day.
    h_seg = np.flatnonzero(seg_state == CONVERTED)
    h_lo = np.maximum(np.floor(t0[h_seg]), lead["created"][seg_lead[h_seg]])
    h_t = h_lo + (t0[h_seg] - h_lo) * rng.uniform(0.05, 0.7, len(h_seg))
    h_type = DECISION_EVENTS[categorical(rng, np.tile([0.45, 0.3, 0.15, 0.1], (len(h_seg), 1)))]
    parts.append({"seg": h_seg, "t": h_t, "type": h_type})

    seg = np.concatenate([p["seg"] for p in parts])
    t = np.concatenate([p["t"] for p in parts])
    etype = np.concatenate([p["type"] for p in parts]).astype(np.int8)
    ev_lead = seg_lead[seg]
    # Bursts and bounce schedules may spill past the end of their span: keep them in time order
    # and inside the history, but never after the hidden step that ends the span (except the
    # hand-raise, which belongs to the converted span but happens before it).
    ok = (t < world.days) & (t >= lead["created"][ev_lead])
    is_hand = np.zeros(len(seg), dtype=bool)
    is_hand[len(seg) - len(h_seg) :] = True
    ok &= is_hand | (t < t1[seg])
    t, etype, ev_lead = t[ok], etype[ok], ev_lead[ok]
    span = world.days * DAY_US
    us = np.minimum(np.round(t * DAY_US).astype(np.int64), span - 1)
    if len(lead["created"]) < np.iinfo(np.int64).max // span:  # one int64 key: fast sort
        order = np.argsort(ev_lead.astype(np.int64) * span + us, kind="stable")
    else:
        order = np.lexsort((us, ev_lead))
    t, us, etype, ev_lead = t[order], us[order], etype[order], ev_lead[order]
    campaign, content, url = event_details(rng, etype, t, lead["source"][ev_lead], world)
    hand_t = np.full(len(lead["created"]), np.inf)
    hand_t[seg_lead[h_seg]] = h_t
    return {
        "lead": ev_lead.astype(np.int64),
        "t": t,
        "us": us,
        "type": etype,
        "campaign": campaign,
        "content": content,
        "url": url,
        "hand_t": hand_t,
    }


def _thinned_times(
    rng: np.random.Generator,
    lead: dict[str, np.ndarray],
    seg_lead: np.ndarray,
    seg_state: np.ndarray,
    t0: np.ndarray,
    t1: np.ndarray,
    rate: np.ndarray,
    weekday_factor: np.ndarray,
    world: World,
) -> tuple[np.ndarray, np.ndarray]:
    """Times of a Poisson process per span by thinning: weekdays, account window, fading.

    Candidates are drawn at the maximal rate on whole days and kept with probability
    (weekday factor x window lift x fading) / maximum, at a business-hours time of day.
    """
    d0 = np.floor(t0)
    n_days = np.ceil(t1) - d0
    top = weekday_factor.max() * ACCOUNT_WINDOW_ACTIVITY
    count = rng.poisson(rate * top * n_days)
    cand = np.repeat(np.arange(len(t0)), count)
    day = d0[cand] + np.floor(rng.random(len(cand)) * n_days[cand])
    cl = seg_lead[cand]
    t = day + time_of_day(rng, lead["peak"][cl])
    age = t - t0[cand]
    st = seg_state[cand]
    # Interest right after sign-up fades over weeks; after going cold, over days.
    fade = np.where(
        st == DORMANT,
        0.35 + 0.65 * np.exp(-age / 21.0),
        np.where(st == COLD, 0.1 + 0.9 * np.exp(-age / 7.0), 1.0),
    )
    di = day.astype(np.int64)
    lift = np.where(
        (lead["w_start"][cl] <= di) & (di < lead["w_end"][cl]), ACCOUNT_WINDOW_ACTIVITY, 1.0
    )
    keep_p = weekday_factor[world.weekday(di)] * lift * fade / top
    keep = (rng.random(len(cand)) < keep_p) & (t >= t0[cand]) & (t < t1[cand])
    return cand[keep], t[keep]


def _web_types(rng: np.random.Generator, state: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(_WEB_MIX, axis=1)
    u = rng.random(len(state))
    idx = np.empty(len(state), dtype=np.int64)
    for s in range(len(HIDDEN_STATES)):
        sel = state == s
        idx[sel] = np.searchsorted(cdf[s], u[sel], side="right")
    return _WEB_TYPES[np.minimum(idx, len(_WEB_TYPES) - 1)]


def _creation_types(rng: np.random.Generator, source: np.ndarray, state: np.ndarray) -> np.ndarray:
    """The form that created the lead (-1 when it came from a list, a partner or a booth)."""
    by_source = np.array(
        [
            EVENT_CODE["content_download"],
            EVENT_CODE["content_download"],
            EVENT_CODE["content_download"],
            EVENT_CODE["contact_request"],
            -1,
            EVENT_CODE["webinar_registration"],
            -1,
            EVENT_CODE["content_download"],
            -1,
            EVENT_CODE["newsletter_signup"],
        ]
    )
    out = by_source[source]
    out = np.where(
        (source == 0) & (rng.random(len(source)) < 0.4), EVENT_CODE["newsletter_signup"], out
    )
    hand = DECISION_EVENTS[rng.choice(4, len(source), p=[0.5, 0.3, 0.15, 0.05])]
    return np.where((state == DECIDING) & (rng.random(len(source)) < 0.5), hand, out)
