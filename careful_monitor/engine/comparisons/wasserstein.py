"""Wasserstein-1 distance between a window and a reference, in units of the anchor's sd.

W1 is the area between the two quantile functions, computed on the reference's quantile grid.
It has no cheap exact p-value; it shares the KS p-value of the same comparison, so it is flagged
only when the distributions differ significantly *and* the mass moved far enough to matter.

>>> import numpy as np
>>> from careful_monitor.engine.profile import numeric_profile
>>> from careful_monitor.engine.column import summarise
>>> rng = np.random.default_rng(2)
>>> ref = numeric_profile(rng.normal(size=20000).tolist(), anchor=None, bins=20, quantiles=1024)
>>> r = Wasserstein().compare(ref, summarise(rng.normal(0.5, 1, 2000).tolist(), ref))
>>> 0.4 < r.effect < 0.6
True
"""

from __future__ import annotations

import numpy as np

from careful_monitor.engine.column import WindowColumn
from careful_monitor.engine.comparisons.ks import MIN_N, ks_test
from careful_monitor.engine.profile import NUMERIC, PROBS, FeatureProfile, NumericProfile, ProbsProfile
from careful_monitor.engine.types import TestResult


def w1_quantiles(window_q: np.ndarray, ref_q: np.ndarray) -> float:
    """Area between two quantile functions sampled on the same uniform grid (trapezoid rule)."""
    diff = np.abs(window_q - ref_q)
    return float(((diff[1:] + diff[:-1]) / 2).sum() / (len(diff) - 1))


class Wasserstein:
    """W1 in units of the anchor's sd (`WindowColumn.scale`, whichever reference), with the KS p-value."""

    name = "wasserstein"
    kinds = (NUMERIC, PROBS)
    effect_key = "wasserstein_sd"

    def compare(self, ref: FeatureProfile, window: WindowColumn) -> TestResult | None:
        assert isinstance(ref, (NumericProfile, ProbsProfile))
        if window.n < MIN_N:
            return None
        r = ref.confidence if isinstance(ref, ProbsProfile) else ref
        w1 = window.extra.get(("_w1", id(r)))  # `stacked.score_numeric` computed every pair of the window at once
        if w1 is None:
            w1 = w1_quantiles(window.quantiles(len(r.quantiles)), r.quantiles)
        _, p = ks_test(window, r)  # the KS test of the same pair already computed it
        return TestResult(self.name, w1, p, w1 / window.scale)
