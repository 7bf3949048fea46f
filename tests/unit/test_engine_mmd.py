"""The multivariate test (random-Fourier-feature MMD, Hotelling/F null): calibrated on stationary
windows, and it sees dependence that leaves marginals and correlation unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from careful_monitor.config import MinEffect
from careful_monitor.engine.comparisons.joint import JointCorrelation
from careful_monitor.engine.comparisons.mmd import MMD
from careful_monitor.engine.evaluate import evaluate_window
from careful_monitor.engine.profile import build_profile

FLOORS = MinEffect().model_dump()


def _law(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Three features: a normal, a skewed one that depends on it, an independent one."""
    x0 = rng.normal(size=n)
    return {"inputs.a": x0, "inputs.b": 0.5 * x0 + rng.gamma(2.0, 1.0, n), "inputs.c": rng.normal(size=n)}


@pytest.mark.parametrize("n", [200, 1000])  # window.min_size and window.size of the default config
def test_stationary_mmd_p_values_are_uniform(n: int) -> None:
    rng = np.random.default_rng(500 + n)
    p = []
    # over anchors as well as windows: with one anchor every window shares its sampling error
    # (1/N of the variance), so p-values are uniform only averaged over anchors
    for _ in range(15):
        anchor = build_profile("a", "real", {k: v.tolist() for k, v in _law(rng, 5000).items()}, rng=rng)
        p += [MMD().compare_window(anchor, _law(rng, n)).p_value for _ in range(40)]
    p_ = np.array(p)
    # uniform under the null: a KS check at 1 % (measured p = 0.59 at n = 200, 0.66 at n = 1000), and at
    # most 2.5 % of 600 windows below 0.01 (1 % expected, binomial sd 0.4 %; measured 2.0 % and 0.7 %)
    assert stats.kstest(p_, "uniform").pvalue > 0.01
    assert (p_ < 0.01).mean() <= 0.025
    assert p_.min() > 1e-6  # no stray extreme p-value (measured 1.0e-3): BH at 0.01 over ~100 tests rejects near 1e-4


def test_random_sign_dependence_is_flagged_by_mmd_not_by_correlation() -> None:
    rng = np.random.default_rng(15)
    n_ref = 20_000
    anchor = build_profile("a", "real", {"inputs.x": rng.normal(size=n_ref).tolist(),
                                         "inputs.y": rng.normal(size=n_ref).tolist()}, rng=rng)
    features = {"inputs.x": "numeric", "inputs.y": "numeric"}
    for window in range(3):
        x = rng.normal(size=500)
        y = x * rng.choice([-1.0, 1.0], 500)  # normal marginals, zero correlation, |y| = |x|
        ev = evaluate_window({"inputs.x": x.tolist(), "inputs.y": y.tolist()}, features, anchor, {}, fdr=0.01,
                             min_effect=FLOORS, joint_features=frozenset(features))
        by_test = {t.test: t for t in ev.tests if t.feature == "joint"}
        # every window is flagged, the first included: measured p = 3e-26 .. 4e-54 and an MMD of 0.05-0.08
        # (floor 0.01); the marginal tests see nothing (only `joint` is flagged). The correlation
        # test is not what finds it: the population correlation is 0 (its sample value only wanders
        # with sd sqrt(3/n) instead of the 1/sqrt(n) its Fisher z assumes)
        assert by_test["mmd"].flagged, (window, by_test["mmd"])
        assert by_test["mmd"].result.p_value < 1e-20 and by_test["mmd"].result.effect > 0.03
        assert ev.flagged_features == ("joint",)
    same = MMD().compare_window(anchor, {"inputs.x": rng.normal(size=500), "inputs.y": rng.normal(size=500)})
    assert same is not None and same.p_value > 1e-3


def test_mmd_is_deterministic_across_profile_round_trips() -> None:
    rng = np.random.default_rng(4)
    anchor = build_profile("a", "real", {k: v.tolist() for k, v in _law(rng, 5000).items()}, rng=rng)
    window = _law(rng, 300)
    again = type(anchor).from_bytes(anchor.to_bytes())  # frequencies and bandwidth re-derived from the profile
    assert MMD().compare_window(anchor, window) == MMD().compare_window(again, window)
    assert JointCorrelation().compare_window(anchor, window) is not None
