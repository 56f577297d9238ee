"""The exact hidden ground truth: ``p_true(lead, T)``, the probability of reaching ``sql`` in
``(T, T + horizon]`` given the hidden state at ``T``, by multiplying daily transition matrices."""

from __future__ import annotations

import numpy as np

from leadml.synth.journeys import CONVERTED, N_TRANSIENT, transition_matrices
from leadml.synth.world import World


def exact_truth(
    lead: dict[str, np.ndarray],
    trans: dict[str, np.ndarray],
    stages: dict[str, np.ndarray],
    world: World,
) -> dict[str, np.ndarray]:
    """Exact P(SQL within the horizon | hidden state at T) for every lead open at T.

    The state distribution is pushed through the lead's daily transition matrices, day by day,
    switching to the in-window matrix on the days the account is in market and rebuilding both
    when the drift level changes; the converted state is absorbing, so its mass after ``horizon``
    steps is the answer.
    """
    created, closed, tau = lead["created"], stages["closed"], stages["tau"]
    rows_lead, rows_day = [], []
    for k in world.as_of:
        open_ = np.flatnonzero((created < k) & (closed >= k))
        rows_lead.append(open_)
        rows_day.append(np.full(len(open_), k, dtype=np.int64))
    li, day = np.concatenate(rows_lead), np.concatenate(rows_day)

    # Hidden state at the start of `day`: after the last transition on an earlier day.
    stride = world.days + 1
    keys = trans["lead"] * stride + trans["day"]
    state = lead["start_state"][li]
    if len(keys):
        pos = np.searchsorted(keys, li * stride + day, side="left") - 1
        safe = np.maximum(pos, 0)
        state = np.where((pos >= 0) & (trans["lead"][safe] == li), trans["to"][safe], state)

    p = np.zeros(len(li))
    live = np.flatnonzero(state < N_TRANSIENT)
    lv, dv = li[live], day[live]
    v = np.zeros((len(live), N_TRANSIENT))
    v[np.arange(len(live)), state[live]] = 1.0
    rates, level = lead["rates"][lv], world.level(dv)
    P_out, P_in = transition_matrices(rates, False, level), transition_matrices(rates, True, level)
    ws, we = lead["w_start"][lv], lead["w_end"][lv]
    touches = np.flatnonzero((ws < dv + world.horizon) & (we > dv))
    reached = np.zeros(len(live))
    for j in range(world.horizon):
        if not world.steady:
            now = world.level(dv + j)
            moved = np.flatnonzero(now != level)
            P_out[moved] = transition_matrices(rates[moved], False, now[moved])
            P_in[moved] = transition_matrices(rates[moved], True, now[moved])
            level = now
        nxt = np.einsum("mi,mij->mj", v, P_out)
        d = dv[touches] + j
        inside = touches[(ws[touches] <= d) & (d < we[touches])]
        if inside.size:
            nxt[inside] = np.einsum("mi,mij->mj", v[inside], P_in[inside])
        reached += nxt[:, CONVERTED]
        v = nxt[:, :N_TRANSIENT]
    p[live] = reached
    y = (tau[li] >= day) & (tau[li] < day + world.horizon)
    return {
        "lead": li,
        "day": day,
        "p": np.clip(p, 0.0, 1.0),
        "y": y,
        "state": state.astype(np.int8),
    }
