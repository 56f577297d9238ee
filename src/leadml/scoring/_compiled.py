"""The explainer's compiled loops (numba): the tree walk, sigmoid effects, top reasons.

Kept apart from ``_explain`` so that numba is imported (and the loops compiled, or loaded from
numba's cache) only when they are needed.

:func:`walk` does one pass over every tree of a gradient boosting model for the prediction and
the path credits together. It takes the rows a block at a time, first reducing each value to
one byte (:func:`_bytes`), chosen so that every split is a lookup of that byte in a 256-bit
table of the node -- numeric thresholds, categorical bitsets and the direction of missing values
alike. Then it walks the block through one tree after another (the tree's nodes stay in the
core's cache), eight rows at a time: a walk is a chain of dependent loads, and eight chains in
flight went 1.6 times as fast as one.
"""

from __future__ import annotations

import numba
import numpy as np

#: The byte of a missing value (and of a category outside 0..254, which sklearn treats alike).
MISSING = 255

_BLOCK = 256  # rows per block: their bytes and credits stay in the core's cache
_U = numba.uint64


@numba.njit(inline="always")
def _search(v, thresholds, start, stop):
    """How many of ``thresholds[start:stop]`` (sorted) are below ``v``: a branch-free lower
    bound, as many steps for every value."""
    base = start
    n = stop - start
    while n > 1:
        half = n >> 1
        base = base + half if thresholds[base + half] < v else base
        n -= half
    return base - start + (1 if n == 1 and thresholds[base] < v else 0)


@numba.njit(inline="always")
def _bytes(X, lo, m, kind, threshold_start, thresholds, codes):
    """Rows ``lo:lo + m`` of ``X`` as bytes, column after column (``codes[j * _BLOCK + k]``).

    Numeric column: how many of its split thresholds are below the value, so that ``value <=
    threshold number k`` exactly when the byte is at most ``k``. Categorical column: the
    category, truncated to an integer as sklearn does. Missing: :data:`MISSING`.
    """
    for j in range(X.shape[1]):
        if kind[j] == 0:  # no split on it
            continue
        column = X[lo : lo + m, j]
        out = codes[j * _BLOCK : j * _BLOCK + m]
        if kind[j] == 2:
            for k in range(m):
                v = column[k]
                out[k] = np.uint8(v) if 0.0 <= v < MISSING else MISSING
            continue
        s, e = threshold_start[j], threshold_start[j + 1]
        if e - s <= 24:  # few thresholds: count them, a vectorised pass each
            out[:] = 0
            for q in range(s, e):
                t = thresholds[q]
                for k in range(m):
                    out[k] += column[k] > t
        else:
            for k in range(m):
                out[k] = _search(column[k], thresholds, s, e)
        for k in range(m):
            if column[k] != column[k]:
                out[k] = MISSING


@numba.njit(inline="always")
def _step(node, row, credit_row, codes, meta, table, children, delta, credits):
    """One node down for block row ``row``: the child, with the change of expectation credited
    to the node's slot."""
    info = meta[node]
    c = _U(codes[(info & _U(0xFFFF)) * _U(_BLOCK) + row])
    right = ((_U(table[node * _U(8) + (c >> _U(5))]) >> (c & _U(31))) & _U(1)) ^ _U(1)
    child = _U(children[node * _U(2) + right])
    credits[credit_row + ((info >> _U(16)) & _U(0xFFFF))] += delta[child]
    return child


@numba.njit(inline="always")
def _lane(g, k, m, lo, n, row_width):
    """Block row ``g + k`` and where its credits start; a padding row past the block's end
    reads the block's last row and is credited to the spare row ``n``."""
    return _U(min(g + k, m - 1)), _U(lo + g + k if g + k < m else n) * row_width


@numba.njit(parallel=True, cache=True)
def walk(X, kind, threshold_start, thresholds, roots, meta, table, children, value, delta,
         baseline, raw, credits):  # fmt: skip
    """Walk every row of ``X`` (float64, column-major) through every tree.

    ``raw[i]`` becomes ``baseline`` plus each tree's leaf value, added tree after tree as
    sklearn's ``_raw_predict`` does (so the same float), and ``credits[i, s]`` the sum of
    ``delta[child]`` over the splits of slot ``s`` along the row's paths.

    Columns: ``kind`` 0 (no split), 1 (numeric: split thresholds
    ``thresholds[threshold_start[j]:threshold_start[j + 1]]``) or 2 (categorical). Nodes,
    numbered over all trees: ``meta`` = column | slot << 16 | (1 << 32 if a split); bit ``c``
    of ``table[8 * node:8 * node + 8]`` says whether byte ``c`` goes left; the children are
    ``children[2 * node]`` (left) and ``children[2 * node + 1]`` (a leaf is its own).
    ``credits`` has a spare row (for padding rows) and a spare last column (for the splits not
    explained, and for leaves).
    """
    n = X.shape[0]
    trees = roots.shape[0]
    row_width = _U(credits.shape[1])
    flat = credits.ravel()
    for b in numba.prange((n + _BLOCK - 1) // _BLOCK):
        lo = b * _BLOCK
        m = min(n, lo + _BLOCK) - lo
        codes = np.empty(_BLOCK * X.shape[1], dtype=np.uint8)
        _bytes(X, lo, m, kind, threshold_start, thresholds, codes)
        for k in range(m):
            raw[lo + k] = baseline
        for t in range(trees):
            root = _U(roots[t])
            for g in range(0, m, 8):
                z0, c0 = _lane(g, 0, m, lo, n, row_width)
                z1, c1 = _lane(g, 1, m, lo, n, row_width)
                z2, c2 = _lane(g, 2, m, lo, n, row_width)
                z3, c3 = _lane(g, 3, m, lo, n, row_width)
                z4, c4 = _lane(g, 4, m, lo, n, row_width)
                z5, c5 = _lane(g, 5, m, lo, n, row_width)
                z6, c6 = _lane(g, 6, m, lo, n, row_width)
                z7, c7 = _lane(g, 7, m, lo, n, row_width)
                n0 = n1 = n2 = n3 = n4 = n5 = n6 = n7 = root
                while (meta[n0] | meta[n1] | meta[n2] | meta[n3] | meta[n4] | meta[n5]
                       | meta[n6] | meta[n7]) >> _U(32):  # fmt: skip
                    n0 = _step(n0, z0, c0, codes, meta, table, children, delta, flat)
                    n1 = _step(n1, z1, c1, codes, meta, table, children, delta, flat)
                    n2 = _step(n2, z2, c2, codes, meta, table, children, delta, flat)
                    n3 = _step(n3, z3, c3, codes, meta, table, children, delta, flat)
                    n4 = _step(n4, z4, c4, codes, meta, table, children, delta, flat)
                    n5 = _step(n5, z5, c5, codes, meta, table, children, delta, flat)
                    n6 = _step(n6, z6, c6, codes, meta, table, children, delta, flat)
                    n7 = _step(n7, z7, c7, codes, meta, table, children, delta, flat)
                leaves = (n0, n1, n2, n3, n4, n5, n6, n7)
                for k in range(min(8, m - g)):
                    raw[lo + g + k] += value[leaves[k]]


@numba.njit(parallel=True, cache=True)
def sigmoid_effects(raw, credits, a, b):
    """Probabilities ``expit(-(a * raw + b))`` (sklearn's sigmoid calibration; ``a = -1``,
    ``b = 0`` is no calibration) and, as float32, each column's effect: the probability minus
    that with the column's credit taken out of the log-odds. The same operations as
    sklearn's and scipy's, in one pass instead of seven over the (rows, columns) array."""
    n, k = credits.shape
    p = np.empty(n)
    effects = np.empty((n, k), dtype=np.float32)
    for i in numba.prange(n):
        p[i] = 1.0 / (1.0 + np.exp(a * raw[i] + b))
        for j in range(k):
            effects[i, j] = p[i] - 1.0 / (1.0 + np.exp(a * (raw[i] - credits[i, j]) + b))
    return p, effects


@numba.njit(inline="always")
def _size(v):
    """A reason's size: its absolute value, a NaN counting as 0."""
    s = abs(v)
    return 0.0 if s != s else s


@numba.njit(parallel=True, cache=True)
def top(effects, count, index):
    """Per row, into ``index[i]``: the columns of the ``count`` largest sizes of ``effects[i]``
    (:func:`_size`), largest first; of equal sizes the earlier column first, as a stable sort
    would order them -- so the choice at the cut does not depend on the CPU."""
    n, k = effects.shape
    for i in numba.prange(n):
        kept = 0
        for j in range(k):
            s = _size(effects[i, j])
            if kept == count:
                if s <= _size(effects[i, index[i, count - 1]]):
                    continue
                kept -= 1  # the smallest kept one makes way
            q = kept  # after the kept ones at least as large (earlier columns first)
            while q > 0 and _size(effects[i, index[i, q - 1]]) < s:
                index[i, q] = index[i, q - 1]
                q -= 1
            index[i, q] = j
            kept += 1
