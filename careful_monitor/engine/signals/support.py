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

from collections.abc import Sequence

import numpy as np

from careful_monitor.engine.column import WindowColumn, count_outside
from careful_monitor.engine.profile import NUMERIC, FeatureProfile, numeric_part
from careful_monitor.engine.stats import binomial_greater_many
from careful_monitor.engine.types import TestResult


class OutOfSupport:
    name = "out_of_support"
    kinds = (NUMERIC,)
    effect_key = "out_of_support"

    def compare(self, ref: FeatureProfile, window: WindowColumn) -> TestResult | None:
        return self.compare_many([(ref, window)])[0]

    def compare_many(self, pairs: Sequence[tuple[FeatureProfile, WindowColumn]]) -> list[TestResult | None]:
        """Every (anchor, column) pair at once: out-of-range counts of all columns from one stacked array."""
        out: list[TestResult | None] = [None] * len(pairs)
        use = [i for i, (_, w) in enumerate(pairs) if w.n >= 20]
        if not use:
            return out
        refs = [numeric_part(pairs[i][0]) for i in use]
        cols = [pairs[i][1] for i in use]
        k = count_outside(cols, np.array([r.support_lo for r in refs]), np.array([r.support_hi for r in refs]))
        n = np.array([c.n for c in cols], dtype=np.int64)
        p0 = 2.0 / (np.array([r.n for r in refs], dtype=float) + 1)
        for i, mass, p in zip(use, (k / n).tolist(), binomial_greater_many(k, n, p0).tolist(), strict=True):
            out[i] = TestResult(self.name, mass, p, mass)
        return out
