"""Small vectorised statistics shared by the window tests and signatures."""

from __future__ import annotations

import math

import numpy as np
from scipy import special


def two_sided_normal(z: float) -> float:
    """Two-sided p-value of a standard normal statistic."""
    return float(2.0 * special.ndtr(-abs(z))) if math.isfinite(z) else 0.0


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


def chi2_homogeneity(window: np.ndarray, ref: np.ndarray, min_expected: float = 5.0) -> tuple[float, float, float, int]:
    """Chi-square of a window histogram against a (large) reference histogram.

    Bins whose expected window count is below `min_expected` are pooled so the asymptotic p-value
    holds. Returns (statistic, p-value, Cohen's w with chi-square bias removed, degrees of freedom).
    Cohen's w is what Cramér's V reduces to for one sample against known proportions.
    """
    n, m = window.sum(), ref.sum()
    if n == 0 or m == 0:
        return 0.0, 1.0, 0.0, 0
    q = ref / m
    expected = n * q
    small = expected < min_expected
    if small.any():
        w = np.append(window[~small], window[small].sum())
        r = np.append(ref[~small], ref[small].sum())
    else:
        w, r = window, ref
    keep = (w + r) > 0
    w, r = w[keep].astype(float), r[keep].astype(float)
    dof = len(w) - 1
    if dof < 1:
        return 0.0, 1.0, 0.0, 0
    tot = n + m
    col = w + r
    e_w, e_r = col * n / tot, col * m / tot
    stat = float(((w - e_w) ** 2 / e_w).sum() + ((r - e_r) ** 2 / e_r).sum())
    p = float(special.chdtrc(dof, stat))
    n_eff = n * m / tot
    effect = math.sqrt(max(0.0, (stat - dof) / n_eff))
    return stat, p, effect, dof


def mean_ratio_z(values: np.ndarray, ref_mean: float, ref_sd: float) -> tuple[float, float]:
    """(window mean / reference mean, two-sided p of the window mean against the reference's mean and sd)."""
    m = float(values.mean())
    z = (m - ref_mean) / (max(ref_sd, 1e-6) / math.sqrt(len(values)))
    return m / ref_mean, two_sided_normal(z)
