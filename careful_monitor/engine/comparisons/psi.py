"""Population Stability Index on the anchor's bins, bias-corrected, with the chi-square p-value.

PSI = sum (p_w - p_r) ln(p_w / p_r) with a small floor on empty bins (so an empty window bin
does not flag an undrifted feature, a known flaw of some peers). Its sampling bias, about
(bins - 1)(1/n + 1/m), is removed before the effect is judged against `min_effect.psi`. PSI has no
exact test of its own; it shares the chi-square p-value of the same histogram.

>>> import numpy as np
>>> round(psi(np.array([50, 50]), np.array([500, 500])), 6)
0.0
"""

from __future__ import annotations

import numpy as np

from careful_monitor.engine.column import WindowColumn, reference_counts
from careful_monitor.engine.profile import CATEGORICAL, NUMERIC, PROBS, FeatureProfile
from careful_monitor.engine.types import TestResult

EPS = 1e-4


def psi(window: np.ndarray, ref: np.ndarray) -> float:
    """PSI of one pair of histograms (the comparison reads it from `stats.histogram_tests`, which computes the same)."""
    pw = np.maximum(window / max(window.sum(), 1), EPS)
    pr = np.maximum(ref / max(ref.sum(), 1), EPS)
    return float(((pw - pr) * np.log(pw / pr)).sum())


class PSI:
    name = "psi"
    kinds = (NUMERIC, CATEGORICAL, PROBS)
    effect_key = "psi"

    def compare(self, ref: FeatureProfile, window: WindowColumn) -> TestResult | None:
        if window.n < 20:
            return None
        h = window.histogram_tests(reference_counts(ref))  # computed with the chi-square of the same histograms
        bias = h.dof * (1.0 / window.n + 1.0 / max(h.ref_total, 1))
        return TestResult(self.name, h.psi, h.p, max(0.0, h.psi - bias))
