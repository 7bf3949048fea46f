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

from collections.abc import Sequence

import numpy as np

from careful_monitor.engine.column import WindowColumn, count_outside
from careful_monitor.engine.profile import NUMERIC, FeatureProfile, numeric_part
from careful_monitor.engine.stats import binomial_two_sided_many
from careful_monitor.engine.types import TestResult


class TailMassRatio:
    name = "tail_mass_ratio"
    kinds = (NUMERIC,)
    effect_key = "tail_mass_ratio"

    def compare(self, ref: FeatureProfile, window: WindowColumn) -> TestResult | None:
        return self.compare_many([(ref, window)])[0]

    def compare_many(self, pairs: Sequence[tuple[FeatureProfile, WindowColumn]]) -> list[TestResult | None]:
        """Every (anchor, column) pair at once: tail counts of all columns from one stacked array."""
        out: list[TestResult | None] = [None] * len(pairs)
        refs = [numeric_part(r) for r, _ in pairs]
        # below 5 expected tail events there are too few to say anything
        use = [i for i, (r, (_, w)) in enumerate(zip(refs, pairs, strict=True)) if w.n >= 20 and r.tail_mass * w.n >= 5]
        if not use:
            return out
        used = [refs[i] for i in use]
        cols = [pairs[i][1] for i in use]
        k = count_outside(cols, np.array([r.tail_lo for r in used]), np.array([r.tail_hi for r in used]))
        n = np.array([c.n for c in cols], dtype=np.int64)
        expected = np.array([r.tail_mass for r in used])
        ratio = (k / n) / expected
        for i, q, p in zip(use, ratio.tolist(), binomial_two_sided_many(k, n, expected).tolist(), strict=True):
            out[i] = TestResult(self.name, q, p, abs(q - 1.0))
        return out
