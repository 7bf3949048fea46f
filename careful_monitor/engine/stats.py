"""Small vectorised statistics shared by the window tests and signatures."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import special


def two_sided_normal(z: float) -> float:
    """Two-sided p-value of a standard normal statistic."""
    return float(2.0 * special.ndtr(-abs(z))) if math.isfinite(z) else 0.0


def two_sided_normal_many(z: np.ndarray) -> np.ndarray:
    """`two_sided_normal` of every element (0 where z is not finite)."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(z), 2.0 * special.ndtr(-np.abs(z)), 0.0)


def binomial_two_sided_many(k: np.ndarray, n: np.ndarray, p0: np.ndarray) -> np.ndarray:
    """`binomial_two_sided` of every (k, n, p0), n >= 1."""
    p0 = np.clip(p0, 1e-12, 1 - 1e-12)
    hi = np.where(k > 0, special.bdtrc(np.maximum(k - 1, 0), n, p0), 1.0)
    return np.minimum(1.0, 2.0 * np.minimum(special.bdtr(k, n, p0), hi))


def binomial_greater_many(k: np.ndarray, n: np.ndarray, p0: np.ndarray) -> np.ndarray:
    """`binomial_greater` of every (k, n, p0), n >= 1."""
    return np.where(k > 0, special.bdtrc(np.maximum(k - 1, 0), n, np.clip(p0, 1e-12, 1 - 1e-12)), 1.0)


def binomial_two_sided(k: int, n: int, p0: float) -> float:
    """Two-sided binomial p-value (doubled smaller tail), exact and fast enough per window."""
    if n <= 0:
        return 1.0
    p0 = min(max(p0, 1e-12), 1 - 1e-12)
    lo = special.bdtr(k, n, p0)
    hi = special.bdtrc(k - 1, n, p0) if k > 0 else 1.0
    return float(min(1.0, 2.0 * min(lo, hi)))


def binomial_greater(k: int, n: int, p0: float) -> float:
    if n <= 0:
        return 1.0
    return float(special.bdtrc(k - 1, n, min(max(p0, 1e-12), 1 - 1e-12))) if k > 0 else 1.0


class HistogramRow(NamedTuple):
    """One pair's chi-square, PSI and JS as Python numbers (what the comparisons read)."""

    stat: float
    p: float
    effect: float
    dof: int
    psi: float
    js: float
    ref_total: float  # the reference's count (PSI's bias term)


@dataclass(frozen=True, slots=True)
class HistogramTests:
    """Chi-square, PSI and Jensen-Shannon of P window histograms, each against its own reference (arrays of P)."""

    stat: np.ndarray
    p: np.ndarray
    effect: np.ndarray  # Cohen's w, chi-square bias removed
    dof: np.ndarray
    psi: np.ndarray  # PSI with the empty-bin floor `psi_eps`
    js: np.ndarray  # Jensen-Shannon divergence in bits

    ref_total: np.ndarray

    def row(self, i: int) -> tuple[float, float, float, int]:
        """(statistic, p-value, effect, dof) of pair i, as `chi2_homogeneity` returns them."""
        return float(self.stat[i]), float(self.p[i]), float(self.effect[i]), int(self.dof[i])

    def rows(self) -> list[HistogramRow]:
        """Every pair's numbers, converted to Python once (one `tolist` per array, not a scalar per read)."""
        return [HistogramRow(*r) for r in zip(self.stat.tolist(), self.p.tolist(), self.effect.tolist(),
                                              self.dof.tolist(), self.psi.tolist(), self.js.tolist(),
                                              self.ref_total.tolist(), strict=True)]


def histogram_tests(window: np.ndarray, ref: np.ndarray, min_expected: float = 5.0,
                    psi_eps: float = 1e-4) -> HistogramTests:
    """Chi-square homogeneity, PSI and JS of P window histograms against P (large) reference histograms at once.

    `window` and `ref` are P x B counts, one pair per row (every feature against every reference, on
    the anchor's grid; shorter grids padded with empty bins, which change nothing: an empty bin pair is
    dropped, pooled as nothing, or contributes 0 to PSI and JS). Per row, bins whose expected window
    count is below `min_expected` are pooled into one bin so the asymptotic p-value holds, and bins
    empty on both sides are dropped; all rows go through one `chdtrc` call. Effect: Cohen's w (what
    Cramér's V reduces to for one sample against known proportions) with the chi-square bias removed.
    A row with an empty side, or fewer than two bins left, gets (0, 1, 0, 0).
    """
    w = np.asarray(window, dtype=float)
    r = np.asarray(ref, dtype=float)
    n, m = w.sum(axis=1), r.sum(axis=1)
    ok = (n > 0) & (m > 0)
    n_, m_ = np.where(ok, n, 1.0), np.where(ok, m, 1.0)
    small = n_[:, None] * (r / m_[:, None]) < min_expected
    pooled_w, pooled_r = np.where(small, w, 0.0).sum(axis=1), np.where(small, r, 0.0).sum(axis=1)
    keep = ~small & ((w + r) > 0)
    keep_pooled = small.any(axis=1) & ((pooled_w + pooled_r) > 0)
    dof = keep.sum(axis=1) + keep_pooled - 1
    tot = n_ + m_
    with np.errstate(divide="ignore", invalid="ignore"):
        def terms(wb: np.ndarray, rb: np.ndarray, nn: np.ndarray, mm: np.ndarray, tt: np.ndarray) -> np.ndarray:
            col = wb + rb
            e_w, e_r = col * nn / tt, col * mm / tt
            return (wb - e_w) ** 2 / e_w + (rb - e_r) ** 2 / e_r

        bins = np.where(keep, terms(w, r, n_[:, None], m_[:, None], tot[:, None]), 0.0).sum(axis=1)
        pooled = np.where(keep_pooled, terms(pooled_w, pooled_r, n_, m_, tot), 0.0)
    valid = ok & (dof >= 1)
    stat = np.where(valid, bins + pooled, 0.0)
    dof = np.where(valid, dof, 0)
    p = np.where(valid, special.chdtrc(np.maximum(dof, 1), stat), 1.0)
    effect = np.where(valid, np.sqrt(np.maximum(0.0, (stat - dof) / (n_ * m_ / tot))), 0.0)
    pw, pr = w / np.maximum(n, 1)[:, None], r / np.maximum(m, 1)[:, None]
    fw, fr = np.maximum(pw, psi_eps), np.maximum(pr, psi_eps)
    psi = ((fw - fr) * np.log(fw / fr)).sum(axis=1)
    mid = (pw + pr) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kp = np.where(pw > 0, pw * np.log2(pw / mid), 0.0).sum(axis=1)
        kq = np.where(pr > 0, pr * np.log2(pr / mid), 0.0).sum(axis=1)
    js = np.maximum(0.0, (kp + kq) / 2)
    return HistogramTests(stat, p, effect, dof.astype(np.int64), psi, js, m)


def chi2_homogeneity(window: np.ndarray, ref: np.ndarray, min_expected: float = 5.0) -> tuple[float, float, float, int]:
    """Chi-square of a window histogram against a (large) reference histogram: one row of `histogram_tests`.

    Returns (statistic, p-value, Cohen's w with chi-square bias removed, degrees of freedom).

    >>> stat, p, w, dof = chi2_homogeneity(np.array([30, 70]), np.array([5000, 5000]))
    >>> round(stat, 3), dof, p < 1e-4
    (15.842, 1, True)
    """
    return histogram_tests(np.asarray(window)[None, :], np.asarray(ref)[None, :], min_expected).row(0)


def mean_ratio_z(values: np.ndarray, ref_mean: float, ref_sd: float) -> tuple[float, float]:
    """(window mean / reference mean, two-sided p of the window mean against the reference's mean and sd)."""
    m = float(values.mean())
    z = (m - ref_mean) / (max(ref_sd, 1e-6) / math.sqrt(len(values)))
    return m / ref_mean, two_sided_normal(z)
