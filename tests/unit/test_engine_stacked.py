"""The stacked window computations give the per-pair numbers (issue 13, item 1).

`comparisons.stacked.score_numeric` computes KS and Wasserstein of every (column, reference) pair of a
window at once, and the numeric signatures score all columns from one stacked array (`compare_many`).
These tests hold them to the per-pair code on seeded data of every awkward shape: ragged column sizes,
ties on either side, values outside the reference's range, a large offset with a tiny spread, and
columns compared with another feature's reference.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from careful_monitor.engine.column import summarise
from careful_monitor.engine.comparisons.ks import ks_distance, ks_pvalue
from careful_monitor.engine.comparisons.stacked import score_numeric
from careful_monitor.engine.comparisons.wasserstein import w1_quantiles
from careful_monitor.engine.profile import numeric_profile
from careful_monitor.engine.signals.spread import SpreadRatio
from careful_monitor.engine.signals.support import OutOfSupport
from careful_monitor.engine.signals.tail_mass import TailMassRatio
from careful_monitor.engine.stats import binomial_greater, binomial_two_sided

LAWS = ("normal", "integers", "rounded", "offset")


def _draw(rng: np.random.Generator, law: str, n: int, moved: bool) -> list[float]:
    shift = rng.uniform(-1, 1) if moved else 0.0
    if law == "normal":
        x = rng.normal(shift, rng.uniform(0.1, 5), n)
    elif law == "integers":  # ties in the window and the reference
        x = rng.integers(-2 if moved else 0, 12 if moved else 10, n).astype(float)
    elif law == "rounded":
        x = np.round(rng.exponential(1.2 if moved else 1.0, n), 1)
    else:  # a large offset with a tiny spread: the stacking's keys must keep the order
        x = rng.normal(1e6, 1e-3, n)
    return x.tolist()


def _windows(seed: int):
    rng = np.random.default_rng(seed)
    laws = [LAWS[i] for i in rng.integers(0, len(LAWS), int(rng.integers(1, 6)))]
    refs = [numeric_profile(_draw(rng, law, int(rng.integers(50, 20_000)), False), anchor=None, bins=20,
                            quantiles=int(rng.choice([256, 1024]))) for law in laws]
    cols = [summarise(_draw(rng, law, int(rng.integers(20, 3_000)), True), r)
            for law, r in zip(laws, refs, strict=True)]
    # each column against its own reference and its neighbours' (other laws, other grids)
    pairs = [(c, r) for i, c in enumerate(cols) for r in refs[max(0, i - 1):i + 2]]
    return refs, cols, pairs


@pytest.mark.parametrize("seed", range(40))
def test_stacked_ks_and_wasserstein_equal_the_per_pair_code(seed: int) -> None:
    _, _, pairs = _windows(seed)
    score_numeric(pairs)
    for c, r in pairs:
        d = ks_distance(c, r)
        ks = c.extra.get(("_ks", id(r)))
        if ks is not None:  # stacked (tie-free columns); the rest is left to the per-pair code
            # the stacked interpolation runs on per-pair keys: D within float noise, the p-value with it
            assert ks[0] == pytest.approx(d, abs=1e-12)
            p = ks_pvalue(d, c.n, max(r.n, 1))
            assert ks[1] == pytest.approx(p, rel=1e-9, abs=1e-300)
        else:
            assert not bool((c.x[1:] != c.x[:-1]).all()), "a tie-free column must be stacked"
        # the quantile rows use np.interp's own formula: the same floats
        assert c.extra[("_w1", id(r))] == w1_quantiles(c.quantiles(len(r.quantiles)), r.quantiles)


def test_every_tie_free_pair_is_stacked() -> None:
    rng = np.random.default_rng(7)
    refs = [numeric_profile(rng.normal(0, s, 5_000).tolist(), anchor=None, bins=20, quantiles=1024) for s in (1, 2, 3)]
    cols = [summarise(rng.normal(size=1_000).tolist(), refs[0]) for _ in range(4)]
    pairs = [(c, r) for c in cols for r in refs]
    score_numeric(pairs)
    assert all(("_ks", id(r)) in c.extra for c, r in pairs)


@pytest.mark.parametrize("seed", range(10))
def test_numeric_signatures_score_all_columns_as_one_at_a_time(seed: int) -> None:
    refs, cols, _ = _windows(seed)
    pairs = list(zip(refs, cols, strict=True))
    for sig in (SpreadRatio(), TailMassRatio(), OutOfSupport()):
        many = sig.compare_many(pairs)
        assert many == [sig.compare(*pair) for pair in pairs]  # stacking other columns changes nothing
        for (ref, col), got in zip(pairs, many, strict=True):
            x = col.x
            if sig.name == "spread_ratio":
                want_sd = math.sqrt(float(np.var(x, ddof=1)) / ref.std ** 2)
                assert got is not None and got.statistic == pytest.approx(want_sd, rel=1e-9)
            elif sig.name == "tail_mass_ratio":
                if ref.tail_mass * col.n < 5:
                    assert got is None
                    continue
                k = int(((x < ref.tail_lo) | (x > ref.tail_hi)).sum())
                assert got is not None and got.statistic == (k / col.n) / ref.tail_mass
                assert got.p_value == pytest.approx(binomial_two_sided(k, col.n, ref.tail_mass), rel=1e-12)
            else:
                k = int(((x < ref.support_lo) | (x > ref.support_hi)).sum())
                assert got is not None and got.statistic == k / col.n
                assert got.p_value == pytest.approx(binomial_greater(k, col.n, 2.0 / (ref.n + 1)), rel=1e-12)
