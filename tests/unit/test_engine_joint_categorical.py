"""Categorical features in the joint sample, the `mmd` test and attribution's joint block (issue 15, item 4).

The law (`scenarios.sample_categorical_dependence`): x1 ~ N(+1, 1) when c = "a", N(-1, 1) when c = "b", N(0, 1)
when c = "c" (c drawn 0.4 / 0.4 / 0.2), x2 an independent N(0, 1). A naive per-column generator draws c and x1
from the same marginals independently, so every marginal histogram, and the correlation of the numeric features,
is unchanged: only a test on the joint law of (c, x1) can tell them apart, and only a joint block that holds c
can blame the naive set.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from careful_monitor.bench import coverage
from careful_monitor.engine.comparisons.copula import WindowRows, category_codes
from careful_monitor.engine.comparisons.mmd import MMD
from careful_monitor.engine.monitor import WindowOutcome
from careful_monitor.engine.profile import CategoricalProfile, JointProfile, ReferenceProfile, build_profile
from careful_monitor.engine.types import PolicyState
from careful_monitor.runtime.pipeline import older_format
from careful_monitor.scenarios import sample_categorical_dependence

FEATURES = {"inputs.c": "categorical", "inputs.x1": "numeric", "inputs.x2": "numeric"}
WINDOW = 1000
CHANGE = 4  # the first window drawn partly from the naive generator
SEEDS = range(10)


def _columns(cols: dict[str, np.ndarray]) -> dict[str, list]:
    return {f"inputs.{k}": v.tolist() for k, v in cols.items()}


@pytest.fixture(scope="module")
def profiles() -> tuple[ReferenceProfile, dict[str, ReferenceProfile]]:
    """Anchor 20,000 rows of the real law; a naive set and a faithful set of 8,000 rows each."""
    world = coverage.categorical_dependence_world()
    return world.anchor, world.sets


def _run(anchor: ReferenceProfile, synthetic: dict[str, ReferenceProfile], seed: int, shares: list[float]
         ) -> list[WindowOutcome]:
    """One window of 1,000 events per entry of `shares` (each event naive with that probability)."""
    return coverage.DependenceWorld(sample_categorical_dependence, FEATURES, anchor, synthetic).run(seed, shares)


def _ramp(windows: int = 12) -> list[float]:
    """Stationary until CHANGE, then a quarter more of the naive generator each window: 0.25, 0.5, 0.75, 1, 1, ..."""
    return coverage.ramp(windows, CHANGE)


def _mmd(o: WindowOutcome):
    return next(t for t in o.result.tests if t.feature == "joint" and t.test == "mmd")


def test_the_joint_sample_codes_the_categorical_feature_on_the_anchors_categories(profiles) -> None:
    anchor, sets = profiles
    cat = anchor.features["inputs.c"]
    assert isinstance(cat, CategoricalProfile) and anchor.joint is not None
    # the numeric part is as before (what the correlation test and the DCR gate read); c joins as codes:
    # its 3 categories + "other"
    assert anchor.joint.features == ["inputs.x1", "inputs.x2"] and anchor.joint.categorical == ["inputs.c"]
    assert anchor.joint.levels == [4] and anchor.joint.codes.shape == (5000, 1)
    a = cat.categories.index("a")

    def mean_x1_given_a(j: JointProfile) -> float:
        return float(j.sample[j.codes[:, 0] == a, 0].mean())

    # x1's normal score given c = "a": ~ +0.75 in the real law (E[Phi^-1(F(x1)) | a] for the mixture), ~0 in the
    # naive set (c independent of x1): each set's codes are the anchor's, so the same code means the same category
    assert mean_x1_given_a(anchor.joint) > 0.6
    for name, prof in sets.items():
        j = prof.joint
        assert j is not None and j.categorical == ["inputs.c"] and j.levels == [4] and j.codes.shape == (5000, 1)
        assert set(np.unique(j.codes).tolist()) == {0, 1, 2}  # no "other": every value is an anchor category
        assert (mean_x1_given_a(j) > 0.6) if name == "faithful" else (abs(mean_x1_given_a(j)) < 0.1), name
    restored = ReferenceProfile.from_bytes(sets["naive"].to_bytes())
    assert restored.joint is not None and restored.joint.levels == [4]
    assert np.array_equal(restored.joint.codes, sets["naive"].joint.codes)
    # a window's values: the anchor's codes, "other" for a value the anchor lacks, NaN (a dropped row) for null
    codes = category_codes(["a", "zzz", None, "c"], cat, 4)
    assert codes[0] == a and codes[1] == 3 and np.isnan(codes[2]) and codes[3] == cat.categories.index("c")


def test_dependence_change_between_a_categorical_and_a_numeric_feature_is_flagged_by_mmd_at_once(profiles) -> None:
    """The stream switches to the naive generator at window 4; marginals and correlations never move.

    `mmd` is flagged in every changed window of every seed, the first included (measured p <= 1e-177: at
    n = 1,000 a conditional mean shift of 2 sd between the groups is enormous), and the naive set is retired
    at window 6 = 4 + retire_after - 1 in every seed. The correlation test (numeric features only: x1 and x2
    stay independent) is flagged in none of the 80 windows. No stationary window is flagged (measured 0 of
    40; bound 2: ~1 % per window); marginal tests ride along in 2 of the 40 changed windows (bound 4, as in
    `test_engine_dependence`: once `mmd` is rejected BH's next threshold is 2q/m).
    """
    anchor, sets = profiles
    stationary_flags = marginal_flags = 0
    for seed in SEEDS:
        outs = _run(anchor, sets, seed, [0.0] * CHANGE + [1.0] * 4)
        stationary_flags += sum(o.result.flagged for o in outs[:CHANGE])
        for o in outs[CHANGE:]:
            mmd = _mmd(o)
            assert mmd.flagged and mmd.result.p_value < 1e-150, (seed, o.result.window, mmd.result)
            marginal_flags += any(t.flagged and t.feature != "joint" for t in o.result.tests)
        assert not any(t.flagged for o in outs for t in o.result.tests if t.test == "joint"), seed
        alerts = [(a.window, a.dataset, a.state) for o in outs for a in o.alerts]
        assert alerts == [(CHANGE + 2, "naive", PolicyState.RETIRE_RECOMMENDED)], (seed, alerts)
    assert stationary_flags <= 2 and marginal_flags <= 4, (stationary_flags, marginal_flags)


def test_a_stream_drifting_toward_the_naive_set_retires_it_never_the_faithful_one(profiles) -> None:
    """Ramp 0.25, 0.5, 0.75, then 1 of the naive generator from window 4, 10 seeds.

    `mmd` flags from window 4 (share 0.25; measured p 2e-12 to 2e-6, so 7 seeds flag it, 3 miss it on the effect
    floor or BH) and every window from share 0.5 on; the joint block, which embeds c's one-hot block with the
    numeric scores, puts them on the naive set. Retirement comes at window 6 (6 seeds) or 7 (4), i.e. within
    CHANGE + 3; the faithful set stays `ok` and the anchor is never called stale. The share follows the ramp:
    measured within 0.11 of it (0.15-0.25 at 0.25, 0.46-0.56 at 0.5, 0.67-0.84 at 0.75, then 0.91-1).
    """
    anchor, sets = profiles
    ramp = _ramp()
    for seed in SEEDS:
        outs = _run(anchor, sets, seed, ramp)
        alerts = [(a.window, a.dataset, a.state) for o in outs for a in o.alerts]
        assert len(alerts) == 1, (seed, alerts)
        window, dataset, state = alerts[0]
        assert dataset == "naive" and state == PolicyState.RETIRE_RECOMMENDED and window <= CHANGE + 3, (seed, alerts)
        assert all(o.result.states["faithful"] == PolicyState.OK for o in outs), seed
        assert all(o.result.states["real"] != PolicyState.ANCHOR_STALE for o in outs), seed
        assert all(_mmd(o).flagged for o in outs[CHANGE + 1:]), seed  # from share 0.5 on: every window
        assert all("naive" in o.result.blamed for o in outs if o.result.window > CHANGE and o.result.flagged), seed
        for o, truth in zip(outs[CHANGE:], ramp[CHANGE:], strict=True):
            share = o.result.attribution_of("naive").share
            assert share is not None and abs(share - truth) <= 0.15, (seed, o.result.window, share, truth)


def test_without_categorical_joint_columns_the_same_stream_is_called_a_changed_world(profiles) -> None:
    """The control: the sets as format 2 stored them (numeric joint columns only). The joint block then embeds
    x1 and x2 alone, where the naive set is the anchor's law, so it is not identifiable and the flagged windows
    can only say the anchor is stale (measured: anchor_stale at window 6 in each seed, the naive set never
    blamed). The anchor keeps c, so `mmd` still flags."""
    anchor, sets = profiles

    def numeric_only(p: ReferenceProfile) -> ReferenceProfile:
        assert p.joint is not None
        return dataclasses.replace(p, joint=JointProfile(p.joint.features, p.joint.sample, p.joint.corr), format=2)

    stripped = {name: numeric_only(p) for name, p in sets.items()}
    for seed in range(3):
        outs = _run(anchor, stripped, seed, _ramp())
        alerts = [(a.dataset, a.state) for o in outs for a in o.alerts]
        assert alerts == [("real", PolicyState.ANCHOR_STALE)], (seed, alerts)
        assert not any(o.result.attribution_of("naive").identifiable for o in outs)
    # what `replay`/`run` say of such a set when they load it: one warning naming what it lacks and the fix
    said = older_format("naive", stripped["naive"], anchor)
    assert said is not None and "format 2" in said and "inputs.c" in said and "re-register" in said
    no_joint = older_format("naive", dataclasses.replace(sets["naive"], joint=None, format=1), anchor)
    assert no_joint is not None and "format 1" in no_joint and "no joint sample" in no_joint
    assert older_format("naive", sets["naive"], anchor) is None  # the current format: nothing to say


@pytest.mark.parametrize("n", [200, 1000])
def test_mmd_p_values_with_a_categorical_feature_are_uniform_on_stationary_windows(n: int) -> None:
    """4 anchors x 100 stationary windows of n rows (the window sizes' ends, `window.min_size` and `window.size`).

    Measured: 6 (n = 200) and 4 (n = 1,000) of 400 p-values below 0.01, KS p 0.51 and 0.80. Bounds: at most
    10 below 0.01 (Binomial(400, 0.01) exceeds 10 with probability 0.003) and KS p above 0.01.
    """
    ps = []
    for a in range(4):
        rng = np.random.default_rng(300 + a)
        anchor = build_profile("real", "real", _columns(sample_categorical_dependence(rng, 20_000)), kinds=FEATURES,
                               rng=rng)
        cat = anchor.features["inputs.c"]
        assert isinstance(cat, CategoricalProfile) and anchor.joint is not None
        for _ in range(100):
            c = sample_categorical_dependence(rng, n)
            rows = WindowRows({"inputs.x1": c["x1"], "inputs.x2": c["x2"],
                               "inputs.c": category_codes(c["c"].tolist(), cat, anchor.joint.levels[0])})
            r = MMD().compare_window(anchor, rows)
            assert r is not None
            ps.append(r.p_value)
    p = np.array(ps)
    assert int((p < 0.01).sum()) <= 10, np.sort(p)[:12]
    assert stats.kstest(p, "uniform").pvalue > 0.01
