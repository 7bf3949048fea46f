"""Our vectorised statistics agree with scipy's reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from careful_monitor.engine.column import summarise
from careful_monitor.engine.comparisons.chi2 import Chi2
from careful_monitor.engine.comparisons.ks import KS
from careful_monitor.engine.comparisons.wasserstein import Wasserstein
from careful_monitor.engine.fdr import benjamini_hochberg
from careful_monitor.engine.profile import categorical_profile, numeric_profile
from careful_monitor.engine.stats import chi2_homogeneity


@pytest.fixture(scope="module")
def reference():
    ref = np.random.default_rng(0).normal(size=50_000)
    return ref, numeric_profile(ref.tolist(), anchor=None, bins=20, quantiles=1024)


@pytest.mark.parametrize("shift,n,seed", [(0.0, 1000, 1), (0.1, 1000, 2), (0.3, 500, 3), (0.0, 5000, 4), (0.2, 200, 5)])
def test_ks_matches_scipy_asymp(reference, shift, n, seed) -> None:
    ref, prof = reference
    win = np.random.default_rng(seed).normal(shift, 1, n)
    ours = KS().compare(prof, summarise(win.tolist(), prof))
    theirs = stats.ks_2samp(win, ref, method="asymp")
    # the reference CDF is interpolated from 1,025 quantiles: D is known to within 1/1024
    assert abs(ours.statistic - theirs.statistic) <= 2 / 1024 + 1e-3
    if theirs.pvalue > 1e-6:
        # a D error of ~1e-3 moves the asymptotic p-value by a few per cent of itself at these sizes
        assert ours.p_value == pytest.approx(theirs.pvalue, rel=0.25, abs=2e-3)
    else:
        assert ours.p_value < 1e-4


def test_chi2_matches_scipy_contingency() -> None:
    rng = np.random.default_rng(7)
    ref = rng.multinomial(20_000, [0.4, 0.3, 0.2, 0.1])
    win = rng.multinomial(1_000, [0.35, 0.3, 0.22, 0.13])
    stat, p, _, dof = chi2_homogeneity(win, ref)
    expected = stats.chi2_contingency(np.vstack([win, ref]), correction=False)
    assert stat == pytest.approx(expected.statistic, rel=1e-9)
    assert p == pytest.approx(expected.pvalue, rel=1e-9)
    assert dof == expected.dof


def test_chi2_test_on_categories_matches_scipy() -> None:
    rng = np.random.default_rng(8)
    cats = list("abcde")
    ref_vals = rng.choice(cats, 30_000, p=[0.3, 0.25, 0.2, 0.15, 0.1]).tolist()
    win_vals = rng.choice(cats, 800, p=[0.25, 0.25, 0.2, 0.15, 0.15]).tolist()
    prof = categorical_profile(ref_vals, anchor=None, max_categories=100)
    r = Chi2().compare(prof, summarise(win_vals, prof))
    table = np.vstack([[win_vals.count(c) for c in cats], [ref_vals.count(c) for c in cats]])
    expected = stats.chi2_contingency(table, correction=False)
    assert r.statistic == pytest.approx(expected.statistic, rel=1e-9)
    assert r.p_value == pytest.approx(expected.pvalue, rel=1e-9)


@pytest.mark.parametrize("shift,scale", [(0.0, 1.0), (0.5, 1.0), (0.0, 0.6), (1.0, 2.0)])
def test_wasserstein_matches_scipy(reference, shift, scale) -> None:
    ref, prof = reference
    win = np.random.default_rng(11).normal(shift, scale, 2000)
    ours = Wasserstein().compare(prof, summarise(win.tolist(), prof))
    theirs = stats.wasserstein_distance(win, ref)
    # both are the area between quantile functions; ours uses a 1,025-point grid
    assert ours.statistic == pytest.approx(theirs, rel=0.05, abs=0.01)


def test_benjamini_hochberg_matches_scipy() -> None:
    p = np.random.default_rng(3).uniform(size=200) ** 3
    for q in (0.01, 0.05, 0.2):
        ours = benjamini_hochberg(p, q)
        theirs = stats.false_discovery_control(p, method="bh") <= q
        assert (ours == theirs).all()
