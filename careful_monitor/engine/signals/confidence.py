"""Confidence and predictive entropy of `outputs.probs`, against the anchor's.

Self-training on synthetic data sharpens a model: mean confidence (max class probability) rises
and predictive entropy falls. Both are z-tests of the window mean against the anchor's mean and
sd. Effects: |confidence difference| and |entropy ratio - 1|.

>>> import numpy as np
>>> from careful_monitor.engine.profile import probs_profile
>>> from careful_monitor.engine.column import summarise
>>> rng = np.random.default_rng(9)
>>> def probs(n, t):
...     z = rng.normal(size=(n, 3)) / t; p = np.exp(z); p /= p.sum(1, keepdims=True)
...     return [dict(zip("abc", row)) for row in p.tolist()]
>>> ref = probs_profile(probs(20000, 1.0), anchor=None, bins=20, quantiles=512)
>>> r = Confidence().compare(ref, summarise(probs(1000, 0.5), ref))
>>> r.effect > 0.1 and r.p_value < 1e-10
True
"""

from __future__ import annotations

import math

from careful_monitor.engine.column import WindowColumn
from careful_monitor.engine.profile import PROBS, FeatureProfile, ProbsProfile
from careful_monitor.engine.stats import mean_ratio_z, two_sided_normal
from careful_monitor.engine.types import TestResult


class Confidence:
    name = "confidence"
    kinds = (PROBS,)
    effect_key = "confidence"

    def compare(self, ref: FeatureProfile, window: WindowColumn) -> TestResult | None:
        assert isinstance(ref, ProbsProfile)
        if window.n < 20:
            return None
        m = float(window.x.mean())
        c = ref.confidence
        z = (m - c.mean) / (max(c.std, 1e-6) / math.sqrt(window.n))
        return TestResult(self.name, m, two_sided_normal(z), abs(m - c.mean))


class PredictiveEntropy:
    name = "entropy"
    kinds = (PROBS,)
    effect_key = "entropy_ratio"

    def compare(self, ref: FeatureProfile, window: WindowColumn) -> TestResult | None:
        assert isinstance(ref, ProbsProfile)
        if window.n < 20 or ref.entropy_mean <= 0:
            return None
        ratio, p = mean_ratio_z(window.extra["entropy"], ref.entropy_mean, ref.entropy_std)
        return TestResult(self.name, ratio, p, abs(ratio - 1.0))
