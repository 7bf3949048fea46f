"""Jensen-Shannon distance (base 2) on the anchor's bins, bias-corrected, with the chi-square p-value.

The divergence's sampling bias, about (bins - 1)/(8 n) nats, is removed before taking the square
root, so an undrifted window of 1,000 has effect ~0 rather than ~0.06.

>>> import numpy as np
>>> round(js_divergence(np.array([1, 0]), np.array([0, 1])), 6)
1.0
"""

from __future__ import annotations

import math

import numpy as np

from careful_monitor.engine.column import WindowColumn, reference_counts
from careful_monitor.engine.profile import CATEGORICAL, NUMERIC, PROBS, FeatureProfile
from careful_monitor.engine.types import TestResult

_LN2 = math.log(2)


def js_divergence(window: np.ndarray, ref: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (the comparison reads it from `stats.histogram_tests`: the same sum)."""
    p = window / max(window.sum(), 1)
    q = ref / max(ref.sum(), 1)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kp = np.where(p > 0, p * np.log2(p / m), 0.0).sum()
        kq = np.where(q > 0, q * np.log2(q / m), 0.0).sum()
    return float(max(0.0, (kp + kq) / 2))


class JS:
    name = "js"
    kinds = (NUMERIC, CATEGORICAL, PROBS)
    effect_key = "js"

    def compare(self, ref: FeatureProfile, window: WindowColumn) -> TestResult | None:
        if window.n < 20:
            return None
        h = window.histogram_tests(reference_counts(ref))  # computed with the chi-square of the same histograms
        bias = h.dof / (8.0 * window.n * _LN2)
        return TestResult(self.name, math.sqrt(h.js), h.p, math.sqrt(max(0.0, h.js - bias)))
