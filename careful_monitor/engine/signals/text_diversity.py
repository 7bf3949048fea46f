"""Text diversity at a matched sample size (distinct-2) and text length, against the anchor.

Distinct-n falls with the number of texts, so the window's distinct-2 over its n texts is compared
with the anchor's distinct-2 *over n texts* (a curve measured at profile time by subsampling),
z-tested with the subsampling sd (floored at 2 % of the mean). Repetitive generator text drops it.

>>> import numpy as np
>>> from careful_monitor.engine.profile import text_profile
>>> from careful_monitor.engine.column import summarise
>>> rng = np.random.default_rng(8)
>>> words = [f"w{i}" for i in range(500)]
>>> rich = [" ".join(rng.choice(words, 8)) for _ in range(3000)]
>>> ref = text_profile(rich, anchor=None, rng=rng)
>>> dull = [" ".join(rng.choice(words[:15], 8)) for _ in range(500)]
>>> r = DistinctRatio().compare(ref, summarise(dull, ref))
>>> r.statistic < 0.6 and r.p_value < 1e-6
True
"""

from __future__ import annotations

from careful_monitor.engine.column import WindowColumn
from careful_monitor.engine.profile import TEXT, FeatureProfile, TextProfile
from careful_monitor.engine.stats import mean_ratio_z, two_sided_normal
from careful_monitor.engine.text import matched
from careful_monitor.engine.types import TestResult


class DistinctRatio:
    name = "distinct_ratio"
    kinds = (TEXT,)
    effect_key = "distinct_ratio"

    def compare(self, ref: FeatureProfile, window: WindowColumn) -> TestResult | None:
        assert isinstance(ref, TextProfile)
        if window.n < 20:
            return None
        mean = matched(ref.distinct_sizes, ref.distinct_mean, window.n)
        sd = max(matched(ref.distinct_sizes, ref.distinct_std, window.n), 0.02 * mean, 1e-6)
        if mean <= 0:
            return None
        d = window.extra["distinct2"]
        ratio = d / mean
        return TestResult(self.name, ratio, two_sided_normal((d - mean) / sd), abs(ratio - 1.0))


class LengthRatio:
    name = "length_ratio"
    kinds = (TEXT,)
    effect_key = "length_ratio"

    def compare(self, ref: FeatureProfile, window: WindowColumn) -> TestResult | None:
        assert isinstance(ref, TextProfile)
        if window.n < 20 or ref.len_mean <= 0:
            return None
        ratio, p = mean_ratio_z(window.extra["lengths"], ref.len_mean, ref.len_std)
        return TestResult(self.name, ratio, p, abs(ratio - 1.0))
