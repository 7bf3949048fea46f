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

from collections.abc import Sequence

import numpy as np

from careful_monitor.engine.column import WindowColumn, stack_values
from careful_monitor.engine.profile import NUMERIC, FeatureProfile, numeric_part
from careful_monitor.engine.stats import two_sided_normal_many
from careful_monitor.engine.types import TestResult


class SpreadRatio:
    name = "spread_ratio"
    kinds = (NUMERIC,)
    effect_key = "spread_ratio"

    def compare(self, ref: FeatureProfile, window: WindowColumn) -> TestResult | None:
        return self.compare_many([(ref, window)])[0]

    def compare_many(self, pairs: Sequence[tuple[FeatureProfile, WindowColumn]]) -> list[TestResult | None]:
        """Every (anchor, column) pair at once: the columns' means and variances from one stacked array."""
        out: list[TestResult | None] = [None] * len(pairs)
        use = [i for i, (r, w) in enumerate(pairs) if w.n >= 20 and numeric_part(r).std > 0]
        if not use:
            return out
        refs = [numeric_part(pairs[i][0]) for i in use]
        x, starts, n, seg = stack_values([pairs[i][1] for i in use])
        d = x - (np.add.reduceat(x, starts) / n)[seg]
        var = np.add.reduceat(d * d, starts) / (n - 1)
        ratio_var = var / np.array([r.std for r in refs]) ** 2
        z = (ratio_var - 1.0) / np.sqrt(np.maximum(np.array([r.kurtosis for r in refs]) - 1.0, 0.1) / n)
        sd_ratio = np.sqrt(ratio_var)
        for i, sd, p in zip(use, sd_ratio.tolist(), two_sided_normal_many(z).tolist(), strict=True):
            out[i] = TestResult(self.name, sd, p, abs(sd - 1.0))
        return out
