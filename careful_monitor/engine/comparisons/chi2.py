"""Chi-square test of a window's histogram against a reference's, on the anchor's bins/categories.

Bins with expected window count below 5 are pooled so the asymptotic p-value holds. Effect:
Cohen's w (what Cramér's V is for one sample against known proportions), with the chi-square
bias (dof/n) removed, so an undrifted window has effect ~0 at any window size.

>>> import numpy as np
>>> from careful_monitor.engine.profile import categorical_profile
>>> from careful_monitor.engine.column import summarise
>>> rng = np.random.default_rng(3)
>>> ref = categorical_profile(rng.choice(list("abcd"), 20000, p=[.4, .3, .2, .1]).tolist(), anchor=None,
...                           max_categories=100)
>>> same = Chi2().compare(ref, summarise(rng.choice(list("abcd"), 1000, p=[.4, .3, .2, .1]).tolist(), ref))
>>> moved = Chi2().compare(ref, summarise(rng.choice(list("abcd"), 1000, p=[.25, .25, .25, .25]).tolist(), ref))
>>> same.effect < 0.05 < moved.effect and moved.p_value < 1e-6
True
"""

from __future__ import annotations

from careful_monitor.engine.column import WindowColumn, reference_counts
from careful_monitor.engine.profile import CATEGORICAL, NUMERIC, PROBS, FeatureProfile
from careful_monitor.engine.types import TestResult

MIN_N = 20


class Chi2:
    """Chi-square homogeneity test on the anchor's grid."""

    name = "chi2"
    kinds = (NUMERIC, CATEGORICAL, PROBS)
    effect_key = "chi2_cramers_v"

    def compare(self, ref: FeatureProfile, window: WindowColumn) -> TestResult | None:
        if window.n < MIN_N:
            return None
        h = window.histogram_tests(reference_counts(ref))
        return TestResult(self.name, h.stat, h.p, h.effect)
