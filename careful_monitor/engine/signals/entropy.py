"""Category entropy ratio and rare-category mass, against the anchor.

Entropy: Miller-Madow corrected plug-in entropy of the window over the anchor's, z-tested with
the delta-method variance (sum p ln^2 p - H^2)/n. Rare mass: the window's share of categories
rarer than 1 % in the anchor, over the anchor's share, exact binomial test.

>>> import numpy as np
>>> from careful_monitor.engine.profile import categorical_profile
>>> from careful_monitor.engine.column import summarise
>>> rng = np.random.default_rng(7)
>>> cats = [f"c{i}" for i in range(30)]
>>> p = 1 / np.arange(1, 31) ** 1.2; p /= p.sum()
>>> ref = categorical_profile(rng.choice(cats, 50000, p=p).tolist(), anchor=None, max_categories=100)
>>> q = p ** 2; q /= q.sum()
>>> r = EntropyRatio().compare(ref, summarise(rng.choice(cats, 1000, p=q).tolist(), ref))
>>> r.statistic < 0.8 and r.p_value < 1e-6
True
"""

from __future__ import annotations

import math

import numpy as np

from careful_monitor.engine.column import WindowColumn
from careful_monitor.engine.profile import CATEGORICAL, RARE_P, CategoricalProfile, FeatureProfile
from careful_monitor.engine.stats import binomial_two_sided, two_sided_normal
from careful_monitor.engine.types import TestResult


def miller_madow(counts: np.ndarray) -> float:
    n = counts.sum()
    if n == 0:
        return 0.0
    p = counts[counts > 0] / n
    return float(-(p * np.log(p)).sum() + (len(p) - 1) / (2 * n))


class EntropyRatio:
    name = "entropy_ratio"
    kinds = (CATEGORICAL,)
    effect_key = "entropy_ratio"

    def compare(self, ref: FeatureProfile, window: WindowColumn) -> TestResult | None:
        assert isinstance(ref, CategoricalProfile)
        if window.n < 20 or ref.entropy <= 0:
            return None
        h = miller_madow(window.counts[:-1])
        z = (h - ref.entropy) / math.sqrt(max(ref.entropy_var, 1e-6) / window.n)
        ratio = h / ref.entropy
        return TestResult(self.name, ratio, two_sided_normal(z), abs(ratio - 1.0))


class RareMassRatio:
    name = "rare_mass_ratio"
    kinds = (CATEGORICAL,)
    effect_key = "rare_mass_ratio"

    def compare(self, ref: FeatureProfile, window: WindowColumn) -> TestResult | None:
        assert isinstance(ref, CategoricalProfile)
        p = ref.counts[:-1] / max(ref.counts.sum(), 1)
        rare = p < RARE_P
        expected = float(p[rare].sum())
        if window.n < 20 or expected * window.n < 5:
            return None
        k = int(window.counts[:-1][rare].sum())
        ratio = (k / window.n) / expected
        return TestResult(self.name, ratio, binomial_two_sided(k, window.n, expected), abs(ratio - 1.0))
