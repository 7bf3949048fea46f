"""Out-of-support mass: the share of the window outside the anchor's [min, max].

Under the anchor a new value falls outside its observed range with probability about 2/(m+1);
one-sided binomial test; effect: the mass itself (floor `min_effect.out_of_support`). Drift to a
generator that extrapolates, or a broken upstream unit, shows here first.

>>> import numpy as np
>>> from careful_monitor.engine.profile import numeric_profile
>>> from careful_monitor.engine.column import summarise
>>> ref = numeric_profile(list(np.linspace(0, 1, 1001)), anchor=None, bins=10, quantiles=256)
>>> OutOfSupport().compare(ref, summarise([0.5] * 90 + [2.0] * 10, ref)).effect
0.1
"""

from __future__ import annotations

import numpy as np

from careful_monitor.engine.column import WindowColumn
from careful_monitor.engine.profile import NUMERIC, FeatureProfile, NumericProfile
from careful_monitor.engine.stats import binomial_greater
from careful_monitor.engine.types import TestResult


class OutOfSupport:
    name = "out_of_support"
    kinds = (NUMERIC,)
    effect_key = "out_of_support"

    def compare(self, ref: FeatureProfile, window: WindowColumn) -> TestResult | None:
        assert isinstance(ref, NumericProfile)
        if window.n < 20:
            return None
        x = window.x
        k = int(np.searchsorted(x, ref.support_lo, side="left")
                + (len(x) - np.searchsorted(x, ref.support_hi, side="right")))
        mass = k / window.n
        return TestResult(self.name, mass, binomial_greater(k, window.n, 2.0 / (ref.n + 1)), mass)
