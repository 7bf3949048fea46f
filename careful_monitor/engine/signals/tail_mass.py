"""Tail mass ratio: the window's mass beyond the anchor's 1 % / 99 % quantiles, over the anchor's.

Collapse thins tails first (Shumailov et al. 2024). Tested with an exact two-sided binomial test
against the anchor's own tail mass; effect |ratio - 1|.

>>> import numpy as np
>>> from careful_monitor.engine.profile import numeric_profile
>>> from careful_monitor.engine.column import summarise
>>> rng = np.random.default_rng(5)
>>> ref = numeric_profile(rng.normal(size=20000).tolist(), anchor=None, bins=20, quantiles=1024)
>>> r = TailMassRatio().compare(ref, summarise(rng.normal(0, 0.8367, 1000).tolist(), ref))
>>> r.statistic < 0.6 and r.p_value < 1e-3
True
"""

from __future__ import annotations

import numpy as np

from careful_monitor.engine.column import WindowColumn
from careful_monitor.engine.profile import NUMERIC, FeatureProfile, NumericProfile
from careful_monitor.engine.stats import binomial_two_sided
from careful_monitor.engine.types import TestResult


class TailMassRatio:
    name = "tail_mass_ratio"
    kinds = (NUMERIC,)
    effect_key = "tail_mass_ratio"

    def compare(self, ref: FeatureProfile, window: WindowColumn) -> TestResult | None:
        assert isinstance(ref, NumericProfile)
        expected = ref.tail_mass
        if window.n < 20 or expected * window.n < 5:
            return None  # too few expected tail events to say anything
        x = window.x
        k = int(np.searchsorted(x, ref.tail_lo, side="left") + (len(x) - np.searchsorted(x, ref.tail_hi, side="right")))
        ratio = (k / window.n) / expected
        return TestResult(self.name, ratio, binomial_two_sided(k, window.n, expected), abs(ratio - 1.0))
