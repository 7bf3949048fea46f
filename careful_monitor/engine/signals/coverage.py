"""Coverage: the share of the anchor's categories a window shows, against what the anchor would show.

Under the anchor, category i (probability p_i) appears in a window of n with probability
1 - (1 - p_i)^n; the expected count of covered categories and its variance (independence
approximation) give a one-sided test for *lost* coverage: the number of unseen categories is a sum
of rare events, compared with a Poisson law of the same mean, the signature of rare
categories vanishing under recursive resampling. Effect: relative coverage loss.

>>> import numpy as np
>>> from careful_monitor.engine.profile import categorical_profile
>>> from careful_monitor.engine.column import summarise
>>> cats = [f"c{i}" for i in range(40)]
>>> p = 1 / np.arange(1, 41); p /= p.sum()
>>> rng = np.random.default_rng(6)
>>> ref = categorical_profile(rng.choice(cats, 50000, p=p).tolist(), anchor=None, max_categories=100)
>>> lost = Coverage().compare(ref, summarise(rng.choice(cats[:20], 1000).tolist(), ref))
>>> lost.effect > 0.3 and lost.p_value < 1e-6
True
"""

from __future__ import annotations

import numpy as np
from scipy import special

from careful_monitor.engine.column import WindowColumn
from careful_monitor.engine.profile import CATEGORICAL, CategoricalProfile, FeatureProfile
from careful_monitor.engine.types import TestResult


class Coverage:
    name = "coverage"
    kinds = (CATEGORICAL,)
    effect_key = "coverage"

    def compare(self, ref: FeatureProfile, window: WindowColumn) -> TestResult | None:
        assert isinstance(ref, CategoricalProfile)
        if window.n < 20 or len(ref.categories) < 2:
            return None
        p = ref.counts[:-1] / max(ref.counts.sum(), 1)
        absent = np.exp(window.n * np.log1p(-np.minimum(p, 1 - 1e-12)))  # P(category i unseen)
        expected = float(len(p) - absent.sum())
        observed = int((window.counts[:-1] > 0).sum())
        missing = len(p) - observed
        # the count of unseen categories is a sum of rare independent events: Poisson(sum of absences)
        p_value = float(special.pdtrc(missing - 1, float(absent.sum()))) if missing > 0 else 1.0
        loss = max(0.0, (expected - observed) / expected) if expected > 0 else 0.0
        return TestResult(self.name, observed / expected if expected else 1.0, p_value, loss)
