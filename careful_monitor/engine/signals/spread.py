"""Spread ratio: window sd / anchor sd, tested as a variance ratio robust to non-normal data.

Under the anchor, the sample variance s^2 of n values has variance sigma^4 (kurtosis - 1) / n
(delta method), so z = (s^2/sigma^2 - 1) / sqrt((kurtosis - 1)/n) is asymptotically normal
without assuming normality (the F / chi-square variance test is badly anti-conservative for
heavy-tailed features). Effect: |sd ratio - 1|. Collapse shrinks spread (ratio < 1).

>>> import numpy as np
>>> from careful_monitor.engine.profile import numeric_profile
>>> from careful_monitor.engine.column import summarise
>>> rng = np.random.default_rng(4)
>>> ref = numeric_profile(rng.normal(size=20000).tolist(), anchor=None, bins=20, quantiles=1024)
>>> r = SpreadRatio().compare(ref, summarise(rng.normal(0, 0.8367, 1000).tolist(), ref))  # variance 70 %
>>> round(r.statistic, 1), r.p_value < 1e-6
(0.8, True)
"""

from __future__ import annotations

import math

from careful_monitor.engine.column import WindowColumn
from careful_monitor.engine.profile import NUMERIC, FeatureProfile, NumericProfile
from careful_monitor.engine.stats import two_sided_normal
from careful_monitor.engine.types import TestResult


class SpreadRatio:
    name = "spread_ratio"
    kinds = (NUMERIC,)
    effect_key = "spread_ratio"

    def compare(self, ref: FeatureProfile, window: WindowColumn) -> TestResult | None:
        assert isinstance(ref, NumericProfile)
        if window.n < 20 or ref.std <= 0:
            return None
        d = window.x - window.x.mean()
        var = float(d @ d) / (window.n - 1)
        ratio_var = var / (ref.std ** 2)
        z = (ratio_var - 1.0) / math.sqrt(max(ref.kurtosis - 1.0, 0.1) / window.n)
        sd_ratio = math.sqrt(ratio_var)
        return TestResult(self.name, sd_ratio, two_sided_normal(z), abs(sd_ratio - 1.0))
