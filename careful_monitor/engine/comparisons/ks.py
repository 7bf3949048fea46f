"""Kolmogorov-Smirnov distance of a window against a reference's quantile function.

The reference is kept as a fine quantile function (1,025 points by default), so its CDF is known to
within 1/1024 and never needs the raw data; the p-value is the asymptotic two-sample Kolmogorov
distribution at the effective size n*m/(n+m) (as `scipy.stats.ks_2samp(method='asymp')`). Ties are
handled by comparing both one-sided limits of the two CDFs at every distinct window value.
Effect: the KS distance D itself.

>>> import numpy as np
>>> from careful_monitor.engine.profile import numeric_profile
>>> from careful_monitor.engine.column import summarise
>>> rng = np.random.default_rng(1)
>>> ref = numeric_profile(rng.normal(size=20000).tolist(), anchor=None, bins=20, quantiles=1024)
>>> r = KS().compare(ref, summarise(rng.normal(0.5, 1, 1000).tolist(), ref))
>>> r.effect > 0.15 and r.p_value < 1e-10
True
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from careful_monitor.engine.column import WindowColumn
from careful_monitor.engine.profile import NUMERIC, PROBS, FeatureProfile, NumericProfile, ProbsProfile, numeric_part
from careful_monitor.engine.types import TestResult

MIN_N = 20


def ks_distance(window: WindowColumn, ref: NumericProfile) -> float:
    """sup |F_window - F_ref| with F_ref interpolated from the reference's quantile function."""
    vals, w_left, w_right = window.ecdf_limits()
    uq, u_left, u_right = ref.cdf_limits()
    if len(uq) == 1:
        f_left = (vals > uq[0]).astype(float)
        f_right = (vals >= uq[0]).astype(float)
    else:
        f_right = np.interp(vals, uq, u_right)
        f_left = f_right if u_left is u_right else np.interp(vals, uq, u_left)
    return float(max(np.abs(w_right - f_right).max(), np.abs(w_left - f_left).max()))


def ks_pvalue(d: float, n: int, m: int) -> float:
    en = math.sqrt(n * m / (n + m))
    return float(special.kolmogorov(en * d))


def ks_test(window: WindowColumn, ref: NumericProfile) -> tuple[float, float]:
    """(D, p-value) of the window against one reference, computed once and shared by KS and Wasserstein."""
    key = ("_ks", id(ref))
    cached = window.extra.get(key)
    if cached is None:
        d = ks_distance(window, ref)
        cached = window.extra[key] = (d, ks_pvalue(d, window.n, max(ref.n, 1)))
    return cached


class KS:
    """Two-sample KS distance and asymptotic p-value."""

    name = "ks"
    kinds = (NUMERIC, PROBS)
    effect_key = "ks"

    def compare(self, ref: FeatureProfile, window: WindowColumn) -> TestResult | None:
        assert isinstance(ref, (NumericProfile, ProbsProfile))
        if window.n < MIN_N:
            return None
        d, p = ks_test(window, numeric_part(ref))
        return TestResult(self.name, d, p, d)


__all__ = ["KS", "ks_distance", "ks_pvalue", "ks_test", "numeric_part"]
