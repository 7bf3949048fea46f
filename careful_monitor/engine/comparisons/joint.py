"""Joint test: has the dependence between numeric features changed, even with unchanged marginals?

Linear time in the window: each numeric feature is mapped to normal scores through the anchor's
own CDF (a Gaussian copula), the window's correlation matrix of those scores is compared with the
anchor's pair by pair with Fisher's z (variance 1/(n-3) holds for normal scores whatever the
marginals), and the largest standardised difference gives a Bonferroni p-value over the pairs.
Effect: the largest absolute change of a correlation (floor `min_effect.joint`). Reported as
feature `joint`, test `joint`, and part of the window's BH family.

>>> import numpy as np
>>> from careful_monitor.engine.profile import build_profile
>>> rng = np.random.default_rng(10)
>>> ref = build_profile("a", "real", {"inputs.x": rng.normal(size=5000).tolist(),
...                                    "inputs.y": rng.normal(size=5000).tolist()}, rng=rng)
>>> x = rng.normal(size=1000); y = 0.6 * x + 0.8 * rng.normal(size=1000)
>>> r = JointCorrelation().compare_window(ref, {"inputs.x": x, "inputs.y": y})
>>> r.effect > 0.4 and r.p_value < 1e-10
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy import special

from careful_monitor.engine.comparisons.copula import copula_scores
from careful_monitor.engine.profile import ReferenceProfile
from careful_monitor.engine.types import TestResult


class JointCorrelation:
    """Largest change of a copula correlation between two numeric features, Bonferroni over the pairs."""

    name = "joint"
    effect_key = "joint"

    def compare_window(self, reference: ReferenceProfile, window: Mapping[str, np.ndarray]) -> TestResult | None:
        found = copula_scores(reference, window)
        if found is None:
            return None
        joint, names, z = found
        n = len(z)
        idx = [joint.features.index(f) for f in names]
        ref_corr = joint.corr[np.ix_(idx, idx)]
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.corrcoef(z, rowvar=False)
        corr = np.nan_to_num(corr)
        iu = np.triu_indices(len(names), k=1)
        r_w = np.clip(corr[iu], -0.999999, 0.999999)
        r_a = np.clip(ref_corr[iu], -0.999999, 0.999999)
        n_ref = len(joint.sample)
        se = math.sqrt(1.0 / (n - 3) + 1.0 / max(n_ref - 3, 1))
        zz = np.abs(np.arctanh(r_w) - np.arctanh(r_a)) / se
        k = int(zz.argmax())
        pairs = len(zz)
        p = float(min(1.0, pairs * 2.0 * special.ndtr(-zz[k])))
        return TestResult(self.name, float(zz[k]), p, float(abs(r_w[k] - r_a[k])))

