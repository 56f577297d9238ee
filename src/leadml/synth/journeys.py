"""The hidden buying journey: a Markov chain in daily steps over

    dormant -> considering -> deciding -> converted (absorbing)
                      \\            \\
                       +------------+---> cold (absorbing)

with back-steps (considering -> dormant, deciding -> considering). Its daily rates are the lead's
own (fit, source, interest), lifted while the lead's account is in market and scaled by the drift
level; ``simulate_journeys`` draws the paths exactly, ``transition_matrices`` gives the daily
probabilities that :mod:`leadml.synth.truth` multiplies.
"""

from __future__ import annotations

import numpy as np

from leadml.synth.world import World

# Hidden states of the buying journey.
DORMANT, CONSIDERING, DECIDING, CONVERTED, COLD = range(5)
HIDDEN_STATES = ("dormant", "considering", "deciding", "converted", "cold")
N_TRANSIENT = 3

# Moves of the hidden chain with a daily rate: how much an account's buying window multiplies
# each, and the power of the drift level that scales it (forward moves speed up, going cold slows).
_MOVES = (
    (DORMANT, CONSIDERING),
    (DORMANT, COLD),
    (CONSIDERING, DECIDING),
    (CONSIDERING, DORMANT),
    (CONSIDERING, COLD),
    (DECIDING, CONVERTED),
    (DECIDING, CONSIDERING),
    (DECIDING, COLD),
)
_WINDOW_LIFT = np.array([4.0, 0.5, 2.5, 1.0, 0.5, 1.5, 1.0, 0.5])
_DRIFT_POWER = np.array([1.0, -1.0, 1.0, 0.0, -1.0, 1.0, 0.0, -1.0])


def daily_rates(leads: dict[str, np.ndarray]) -> np.ndarray:
    """Daily rates of the moves in ``_MOVES`` per lead, outside any window and without drift."""
    fit, engage, interest = leads["fit"], leads["engage"], leads["interest"]
    no_buy = fit == 0
    return np.stack(
        [
            0.011 * engage,
            0.0065 / np.sqrt(interest),
            # Students and competitors still research (and request demos), they just never buy.
            np.where(no_buy, 0.005 * interest, 0.014 * np.sqrt(fit) * interest),
            np.full(len(fit), 0.02),
            0.005 / np.sqrt(interest),
            0.017 * fit,
            np.full(len(fit), 0.035),
            0.012 / np.sqrt(interest),
        ],
        axis=1,
    )


def transition_matrices(
    rates: np.ndarray, inside: np.ndarray | bool, level: np.ndarray
) -> np.ndarray:
    """Daily transition probabilities from each transient state, ``(n, 3, 5)``.

    Row ``i`` is the distribution of tomorrow's state given today's state ``i`` (dormant,
    considering, deciding), for leads with these ``rates`` whose account is (``inside``) or is not
    in market, at drift ``level`` (1: no drift).
    """
    lift = np.where(np.asarray(inside)[..., None], _WINDOW_LIFT, 1.0)
    scaled = rates * lift * np.asarray(level)[..., None] ** _DRIFT_POWER
    P = np.zeros((len(rates), N_TRANSIENT, 5))
    for k, (i, j) in enumerate(_MOVES):
        P[:, i, j] = np.minimum(scaled[:, k], 0.5)
    leave = P.sum(axis=2)
    P *= np.minimum(1.0, 0.9 / np.maximum(leave, 1e-12))[:, :, None]
    for i in range(N_TRANSIENT):
        P[:, i, i] = 1.0 - P[:, i].sum(axis=1)
    return P


def simulate_journeys(
    rng: np.random.Generator, lead: dict[str, np.ndarray], world: World
) -> dict[str, np.ndarray]:
    """Jump-chain simulation of the daily Markov chain, exact and vectorised over leads.

    In a regime with constant daily probabilities the days spent in a state are geometric and
    the next state is drawn in proportion to the off-diagonal row. When the account window opens
    or closes, or the drift level changes, before the jump, the draw is discarded and restarted
    at the boundary, which is exact because the geometric distribution is memoryless.
    """
    n = len(lead["created"])
    state = lead["start_state"].copy()
    day = np.floor(lead["created"]).astype(np.int64)
    ws, we = lead["w_start"], lead["w_end"]
    rows = np.arange(n)
    out_lead, out_day, out_to = [], [], []
    active = rows
    while active.size:
        s, d = state[active], day[active]
        w0, w1 = ws[active], we[active]
        inside = (w0 <= d) & (d < w1)
        boundary = np.minimum(np.where(d < w0, w0, np.where(d < w1, w1, world.days)), world.days)
        boundary = np.minimum(boundary, world.next_change(d))
        P = transition_matrices(lead["rates"][active], inside, world.level(d))[
            np.arange(active.size), s
        ]
        stay = P[np.arange(active.size), s]
        jump_day = d + rng.geometric(1.0 - stay) - 1
        jumps = jump_day < boundary
        # Next state among the off-diagonal entries.
        P[np.arange(active.size), s] = 0.0
        cum = np.cumsum(P, axis=1)
        u = rng.random(active.size) * cum[:, -1]
        to = (cum < u[:, None]).sum(axis=1)
        moved = active[jumps]
        out_lead.append(moved)
        out_day.append(jump_day[jumps])
        out_to.append(to[jumps])
        state[moved] = to[jumps]
        day[moved] = jump_day[jumps] + 1
        day[active[~jumps]] = boundary[~jumps]
        active = active[(state[active] < N_TRANSIENT) & (day[active] < world.days)]
    t_lead = np.concatenate(out_lead)
    t_day = np.concatenate(out_day)
    t_to = np.concatenate(out_to).astype(np.int8)
    order = np.lexsort((t_day, t_lead))
    t_lead, t_day, t_to = t_lead[order], t_day[order], t_to[order]
    # A transition happens during its day, after the lead was created.
    lo = np.maximum(t_day, lead["created"][t_lead])
    t_time = lo + (t_day + 1 - lo) * rng.uniform(0.05, 0.95, len(t_day))
    return {"lead": t_lead, "day": t_day, "to": t_to, "t": t_time}


def segments(
    lead: dict[str, np.ndarray], trans: dict[str, np.ndarray], days: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Spans of constant hidden state, sorted by lead and time: (lead, state, t0, t1)."""
    n = len(lead["created"])
    seg_lead = np.concatenate([np.arange(n), trans["lead"]])
    seg_state = np.concatenate([lead["start_state"], trans["to"]]).astype(np.int8)
    seg_t0 = np.concatenate([lead["created"], trans["t"]])
    order = np.lexsort((seg_t0, seg_lead))
    seg_lead, seg_state, seg_t0 = seg_lead[order], seg_state[order], seg_t0[order]
    last = np.r_[seg_lead[1:] != seg_lead[:-1], True]
    seg_t1 = np.where(last, float(days), np.r_[seg_t0[1:], 0.0])
    return seg_lead, seg_state, seg_t0, seg_t1
