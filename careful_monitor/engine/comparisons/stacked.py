"""KS and Wasserstein of every numeric (window column, reference) pair of a window in one array computation.

A window of F numeric features compared with the anchor and S synthetic sets is P = F x (1 + S) pairs.
Done pair by pair, each costs two `interp` calls, a quantile interpolation and a dozen small reductions,
and the Python around them costs more than the arithmetic. Here the pairs are stacked instead:

1. **One interp over stacked grids.** Pair k's reference CDF grid (its distinct quantile values) and its
   window column are mapped to keys `2k + (v - lo_k) / span_k` (lo/span: the grid's range; window
   values are clipped to it first, since outside the grid the CDF is its end value, as `np.interp` has
   it). The map is monotone within a pair and the pairs' key ranges are disjoint, so one `interp` of all
   P x m window keys over all grid keys gives every F_ref. The keys cost a few ulps of the grid's range:
   D agrees with the per-pair code to 1e-12 (a test holds them to it).
2. **D per pair** is max over the row of |(i + 1)/m - F_ref(x_i)| and |i/m - F_ref(x_i-)|, as two
   row-wise maxima of a P x m array, and the asymptotic p-values one `kolmogorov` call at the effective
   sizes nm / (n + m). This reading of the window ECDF holds for columns without ties; a column with
   repeated values is left to the per-pair code (`ks.ks_test`), which compares both one-sided limits at
   each distinct value.
3. **Wasserstein-1**: the quantile functions of all columns of one size, on each grid size, as one
   matrix (np.interp's own formula on positions `linspace(0, n - 1, L)`, so the same floats), then
   |Q_window - Q_ref| and the trapezoid rule over P x L at once.

Results go into each column's cache, where the `KS` and `Wasserstein` comparisons read them
(`("_ks", id(ref))` -> (D, p), `("_w1", id(ref))` -> W1); a pair scored alone computes the same numbers
with `ks.ks_test` and `wasserstein.w1_quantiles`.

>>> from careful_monitor.engine.profile import numeric_profile
>>> from careful_monitor.engine.column import summarise
>>> from careful_monitor.engine.comparisons.ks import ks_distance
>>> rng = np.random.default_rng(0)
>>> refs = [numeric_profile(rng.normal(0, s, 5000).tolist(), anchor=None, bins=20, quantiles=1024) for s in (1, 2)]
>>> cols = [summarise(rng.normal(size=800).tolist(), r) for r in refs]
>>> score_numeric([(c, r) for c in cols for r in refs])
>>> all(abs(c.extra[("_ks", id(r))][0] - ks_distance(c, r)) < 1e-12 for c in cols for r in refs)
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import special

from careful_monitor.engine.column import WindowColumn
from careful_monitor.engine.profile import NumericProfile


def score_numeric(pairs: Sequence[tuple[WindowColumn, NumericProfile]]) -> None:
    """Fill each column's KS (D, p) and W1 cache for its references.

    KS is stacked for the columns without ties, grouped by size (the usual window: every column); a
    column with repeated values, or a reference with a one-point grid, is left to the per-pair code
    (`ks.ks_test`), which compares both one-sided limits at each distinct value.
    """
    pairs = [(c, r) for c, r in pairs if c.n >= 2]
    if not pairs:
        return
    groups: dict[int, list[int]] = {}
    tie_free: dict[int, bool] = {}
    for k, (c, r) in enumerate(pairs):
        free = tie_free.get(id(c))
        if free is None:
            free = tie_free[id(c)] = bool((c.x[1:] != c.x[:-1]).all())
        if free and len(r.cdf_limits()[0]) >= 2:
            groups.setdefault(c.n, []).append(k)
    for n, ks in groups.items():
        rows: dict[int, int] = {}
        for k in ks:
            rows.setdefault(id(pairs[k][0]), len(rows))
        x = np.stack([c.x for c in {id(pairs[k][0]): pairs[k][0] for k in ks}.values()])
        ci = np.fromiter((rows[id(pairs[k][0])] for k in ks), dtype=np.int64, count=len(ks))
        refs = [pairs[k][1] for k in ks]
        d = _ks_distances(x, ci, refs)
        m = np.array([max(r.n, 1) for r in refs], dtype=np.int64)
        p = special.kolmogorov(np.sqrt(n * m / (n + m)) * d)
        for k, dk, pk in zip(ks, d.tolist(), p.tolist(), strict=True):
            pairs[k][0].extra[("_ks", id(pairs[k][1]))] = (dk, pk)
    for (c, r), w in zip(pairs, _w1(pairs).tolist(), strict=True):
        c.extra[("_w1", id(r))] = w


def _unit_grid(ref: NumericProfile) -> tuple[float, float, np.ndarray]:
    """(lo, 1 / span, the reference's distinct quantile values mapped onto [0, 1]), once per profile."""
    cached = ref.__dict__.get("_unit_grid")
    if cached is None:
        uq = ref.cdf_limits()[0]
        lo, scale = float(uq[0]), 1.0 / float(uq[-1] - uq[0])
        cached = ref.__dict__["_unit_grid"] = (lo, scale, (uq - lo) * scale)
    return cached


def _ks_distances(x: np.ndarray, ci: np.ndarray, refs: list[NumericProfile]) -> np.ndarray:
    """sup |F_window - F_ref| of every pair (row `x[ci[k]]`, reference `refs[k]`); rows sorted, tie-free.

    Pair k's grid and window values are mapped to `2k + (v - lo_k) / span_k` (window values clipped to
    the grid first: outside it the CDF is its end value, as `np.interp` has it), one `interp` over the
    stacked grids gives every F_ref, and D = max over the row of |(i + 1)/m - F_ref(x_i)| and
    |i/m - F_ref(x_i-)|.
    """
    units = [_unit_grid(r) for r in refs]
    limits = [r.cdf_limits() for r in refs]
    shift = 2.0 * np.arange(len(refs))
    lo = np.array([u[0] for u in units])[:, None]
    scale = np.array([u[1] for u in units])[:, None]
    hi = np.array([lim[0][-1] for lim in limits])[:, None]
    gkey = np.concatenate([u[2] + s for u, s in zip(units, shift.tolist(), strict=True)])
    v = x[ci]
    vkey = ((np.minimum(np.maximum(v, lo), hi) - lo) * scale + shift[:, None]).ravel()
    shape = v.shape
    f_right = np.interp(vkey, gkey, np.concatenate([lim[2] for lim in limits])).reshape(shape)
    if any(lim[1] is not lim[2] for lim in limits):  # a reference with ties: its left limits differ
        f_left = np.interp(vkey, gkey, np.concatenate([lim[1] for lim in limits])).reshape(shape)
    else:
        f_left = f_right
    m = shape[1]
    i = np.arange(m)
    return np.maximum(np.abs((i + 1) / m - f_right).max(axis=1), np.abs(i / m - f_left).max(axis=1))


def _w1(pairs: Sequence[tuple[WindowColumn, NumericProfile]]) -> np.ndarray:
    """W1 of every pair: the area between the window's and the reference's quantile functions on the
    reference's grid (trapezoid rule), pairs grouped by (window size, grid size)."""
    out = np.empty(len(pairs))
    groups: dict[tuple[int, int], list[int]] = {}
    for k, (c, r) in enumerate(pairs):
        groups.setdefault((c.n, len(r.quantiles)), []).append(k)
    for (n, points), ks in groups.items():
        cols: dict[int, int] = {}
        for k in ks:
            cols.setdefault(id(pairs[k][0]), len(cols))
        xs = np.stack(_unique_rows(pairs, ks))  # one row per column, in the order of `cols`
        q = _quantile_rows(xs, n, points)
        rows = np.fromiter((cols[id(pairs[k][0])] for k in ks), dtype=np.int64, count=len(ks))
        ref_q = np.stack([pairs[k][1].quantiles for k in ks])
        diff = np.abs(q[rows] - ref_q)
        out[ks] = ((diff[:, 1:] + diff[:, :-1]) / 2).sum(axis=1) / (points - 1)
    return out


def _unique_rows(pairs: Sequence[tuple[WindowColumn, NumericProfile]], ks: list[int]) -> list[np.ndarray]:
    seen: dict[int, np.ndarray] = {}
    for k in ks:
        c = pairs[k][0]
        seen.setdefault(id(c), c.x)
    return list(seen.values())


def _quantile_rows(xs: np.ndarray, n: int, points: int) -> np.ndarray:
    """Each row's quantiles at linspace(0, 1, points): `np.interp(linspace(0, n - 1, points), arange(n), row)`
    for every row at once (its formula: slope (x_{j+1} - x_j) times (pos - j), plus x_j)."""
    pos = np.linspace(0.0, n - 1, points)
    j = np.minimum(pos.astype(np.int64), n - 2)
    lo, hi = xs[:, j], xs[:, j + 1]
    q = (hi - lo) * (pos - j) + lo
    exact = pos == j
    q[:, exact] = lo[:, exact]
    q[:, pos >= n - 1] = xs[:, [n - 1]]
    return q


__all__ = ["score_numeric"]
