"""The feature builders' compiled loops (numba): window counts and distinct counts over one
instant's recent events, one pass each, without sorting or hashing ten million events.

An event of age bucket ``b`` lies in every window from the ``b``-th on (the windows are nested),
so each loop adds it to all of those at once: the counts come out per window, not per bucket.

Kept apart so that numba compiles them once (cached beside the module) and only when features
are built.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def count(target, key, code, group_of, bucket):
    """Adds each event ``i`` to ``target[group_of[code[i]], bucket[i]:, key[i]]``, skipping
    events whose key or group is negative. ``target`` is ``(groups, windows, keys)``: each
    (group, window) is one contiguous column, as the features want it."""
    for i in range(len(key)):
        k = key[i]
        g = group_of[code[i]]
        if k >= 0 and g >= 0:
            for b in range(bucket[i], target.shape[1]):
                target[g, b, k] += 1


@numba.njit(cache=True)
def count_distinct(key, value, bucket, size, n_values, n_buckets):
    """Per key in ``0..size-1``: how many distinct values (``0..n_values-1``) it has in each
    window, as float32 ``(n_buckets, size)``; a value is in the windows of its youngest event.
    Events with a negative key or value are skipped.

    The events are first grouped by key (a counting sort: two passes), then each key's values
    are marked in one scratch array, which is cleared again value by value.
    """
    start = np.zeros(size + 1, np.int64)
    for i in range(len(key)):
        if key[i] >= 0 and value[i] >= 0:
            start[key[i] + 1] += 1
    for k in range(size):
        start[k + 1] += start[k]
    order = np.empty(start[size], np.int64)
    fill = start[:-1].copy()
    for i in range(len(key)):
        k = key[i]
        if k >= 0 and value[i] >= 0:
            order[fill[k]] = i
            fill[k] += 1
    out = np.zeros((n_buckets, size), np.float32)
    youngest = np.full(n_values, n_buckets, np.int16)  # n_buckets: not seen yet
    seen = np.empty(n_values, np.int64)
    for k in range(size):
        m = 0
        for j in range(start[k], start[k + 1]):
            i = order[j]
            v = value[i]
            if youngest[v] == n_buckets:
                seen[m] = v
                m += 1
            youngest[v] = min(youngest[v], bucket[i])
        for j in range(m):
            v = seen[j]
            for b in range(youngest[v], n_buckets):
                out[b, k] += 1
            youngest[v] = n_buckets
    return out
