"""Dependence the marginals cannot see (issue 15): x2 = +-x1 with a random sign in reality, x2 independent of x1
in a naive per-column synthetic set. Normal marginals and zero correlation in both, so only the joint sample
(each synthetic set's own, on the anchor's CDFs) and the joint attribution block can point at the naive set."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from careful_monitor.bench import coverage
from careful_monitor.engine.monitor import WindowOutcome
from careful_monitor.engine.profile import (
    PROFILE_FORMAT,
    READABLE_FORMATS,
    NumericProfile,
    ProfileFormatError,
    ReferenceProfile,
    build_profile,
    normal_scores,
    normal_scores_matrix,
    numeric_profile,
)
from careful_monitor.engine.types import PolicyState
from careful_monitor.scenarios import sample_dependence

FEATURES = {"inputs.x1": "numeric", "inputs.x2": "numeric"}
WINDOW = 1000
CHANGE = 4  # the first window drawn partly from the naive generator
SEEDS = range(10)


def _columns(cols: dict[str, np.ndarray]) -> dict[str, list[float]]:
    return {f"inputs.{k}": v.tolist() for k, v in cols.items()}


@pytest.fixture(scope="module")
def profiles() -> tuple[ReferenceProfile, dict[str, ReferenceProfile]]:
    """Anchor 20,000 rows of the real law; a naive set and a faithful set of 8,000 rows each."""
    world = coverage.dependence_world()
    return world.anchor, world.sets


def _run(anchor: ReferenceProfile, synthetic: dict[str, ReferenceProfile], seed: int, shares: list[float]
         ) -> list[WindowOutcome]:
    """One window of 1,000 events per entry of `shares` (each event naive with that probability)."""
    return coverage.DependenceWorld(sample_dependence, FEATURES, anchor, synthetic).run(seed, shares, extra=0)


def _ramp(windows: int = 12) -> list[float]:
    """Stationary until CHANGE, then a quarter more of the naive generator each window: 0.25, 0.5, 0.75, 1, 1, ..."""
    return coverage.ramp(windows, CHANGE)


def test_each_synthetic_set_keeps_a_joint_sample_on_the_anchors_cdfs(profiles) -> None:
    anchor, sets = profiles
    assert anchor.joint is not None
    for prof in sets.values():
        j = prof.joint
        # the anchor's joint features, at most `joint_sample` (5,000) of the set's 8,000 rows
        assert j is not None and j.features == anchor.joint.features and j.sample.shape == (5000, 2)
        assert j.sample.dtype == np.float32
    # scored through the anchor's CDF, not the set's own: a set shifted by +1 sd has scores of mean ~1 (its own
    # CDF would give ~0), and they are exactly the anchor's normal scores of its values
    rng = np.random.default_rng(2)
    cols = sample_dependence(rng, 2000, extra=0)
    cols["x1"] = cols["x1"] + 1.0
    shifted = build_profile("shifted", "synthetic", _columns(cols), kinds=FEATURES, anchor=anchor,
                            anchored_by="real", rng=rng)
    a = anchor.features["inputs.x1"]
    assert shifted.joint is not None and isinstance(a, NumericProfile)
    assert abs(float(shifted.joint.sample[:, 0].mean()) - 1.0) < 0.1
    assert np.allclose(shifted.joint.sample[:, 0], normal_scores(cols["x1"], a).astype(np.float32))
    # the naive set's x1 and x2 are independent (|z1| and |z2| uncorrelated), the faithful set's |z2| = |z1|
    def abs_corr(p: ReferenceProfile) -> float:
        assert p.joint is not None
        z = p.joint.sample.astype(float)
        return float(np.corrcoef(np.abs(z[:, 0]), np.abs(z[:, 1]))[0, 1])
    assert abs(abs_corr(sets["naive"])) < 0.05 and abs_corr(sets["faithful"]) > 0.95
    restored = ReferenceProfile.from_bytes(sets["naive"].to_bytes())
    assert restored.joint is not None and np.array_equal(restored.joint.sample, sets["naive"].joint.sample)


def _stored_as(profile: ReferenceProfile, version: int | None) -> bytes:
    """`profile` as a careful-monitor storing format `version` wrote it (None: format 1, before synthetic
    joint samples: no version and no joint sample in a synthetic set; 2: joint samples of numeric features
    only, no categorical joint columns)."""
    with np.load(io.BytesIO(profile.to_bytes()), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(arrays["__header__"].tobytes().decode())
    assert header.pop("format") == PROFILE_FORMAT == 3
    if version is None:
        header["joint"] = None
        arrays = {k: v for k, v in arrays.items() if not k.startswith("joint:")}
    else:
        header["format"] = version
    if version == 2 and header["joint"] is not None:
        header["joint"] = {"features": header["joint"]["features"]}
        arrays.pop("joint:codes", None)
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def test_older_formats_still_load_and_a_newer_format_is_refused(profiles) -> None:
    """Format 1 (no synthetic joint sample) loads without one; format 2 (numeric joint columns only) loads
    with no categorical joint columns; format 4 is refused."""
    assert READABLE_FORMATS == (1, 2, 3)
    _, sets = profiles
    old = ReferenceProfile.from_bytes(_stored_as(sets["naive"], None))
    assert old.format == 1 and old.joint is None  # it stays out of the joint block until re-registered
    assert old.features.keys() == sets["naive"].features.keys()
    two = ReferenceProfile.from_bytes(_stored_as(sets["naive"], 2))
    assert two.format == 2 and two.joint is not None and two.joint.categorical == [] and two.joint.levels == []
    assert two.joint.codes.shape == (5000, 0) and np.array_equal(two.joint.sample, sets["naive"].joint.sample)
    with pytest.raises(ProfileFormatError, match=r"has format 4.*newer careful-monitor"):
        ReferenceProfile.from_bytes(_stored_as(sets["naive"], 4))


def test_a_stream_drifting_toward_the_naive_set_retires_it_never_the_faithful_one(profiles) -> None:
    """Ramp 0.25, 0.5, 0.75, then 1 of the naive generator from window 4, 10 seeds.

    The marginals never move; the `mmd` test flags the windows (measured: from window 5 or 6, share 0.5 or
    0.75, and every window from share 0.75 on: at n = 1,000 it needs about half the window naive) and the
    joint block of attribution puts
    them on the naive set (its histogram direction is noise only: alone it is not even identifiable).
    Retirement comes at window 7 or 8 in every seed (measured: 7 in 6 seeds, 8 in 4), i.e. by the second
    fully naive window: the first flagged window (5 or 6) + retire_after (3) - 1. The faithful set stays
    `ok` and the anchor is never called stale. The share follows the ramp: measured within 0.17 of it (share SE ~0.026).
    """
    anchor, sets = profiles
    ramp = _ramp()
    for seed in SEEDS:
        outs = _run(anchor, sets, seed, ramp)
        alerts = [(a.window, a.dataset, a.state) for o in outs for a in o.alerts]
        assert len(alerts) == 1, (seed, alerts)
        window, dataset, state = alerts[0]
        assert dataset == "naive" and state == PolicyState.RETIRE_RECOMMENDED and window <= CHANGE + 4, (seed, alerts)
        assert all(o.result.states["faithful"] == PolicyState.OK for o in outs), seed
        # (one stationary false flag, seed 3's window 1, puts the anchor in `watch` for a while: never stale)
        assert all(o.result.states["real"] != PolicyState.ANCHOR_STALE for o in outs), seed
        assert all(o.result.flagged for o in outs[CHANGE + 2:]), seed  # from share 0.75 on: every window
        assert all("naive" in o.result.blamed for o in outs if o.result.window > CHANGE and o.result.flagged), seed
        for o, truth in zip(outs[CHANGE:], ramp[CHANGE:], strict=True):
            share = o.result.attribution_of("naive").share
            assert share is not None and abs(share - truth) <= 0.2, (seed, o.result.window, share, truth)


def test_without_the_naive_sets_joint_sample_the_same_stream_is_called_a_changed_world(profiles) -> None:
    """The control: a naive set profiled without its joint sample (attribution on histograms only) is not
    identifiable (its direction is sampling noise), so the same flagged windows can only say the anchor is
    stale (measured: anchor_stale at window 7 or 8, the naive set never blamed)."""
    anchor, sets = profiles
    stripped = {**sets, "naive": dataclasses.replace(sets["naive"], joint=None)}
    for seed in range(3):
        outs = _run(anchor, stripped, seed, _ramp())
        alerts = [(a.dataset, a.state) for o in outs for a in o.alerts]
        assert alerts == [("real", PolicyState.ANCHOR_STALE)], (seed, alerts)
        assert not any(o.result.attribution_of("naive").identifiable for o in outs)


def test_dependence_change_with_unchanged_marginals_is_flagged_by_mmd_in_its_first_window(profiles) -> None:
    """The stream switches to the naive generator at window 4 (marginals N(0, 1), correlation 0 before and after).

    `mmd` is flagged in every changed window of every seed, the first included (measured p <= 1.3e-9; the
    window's BH family holds 18 anchor tests: 8 per feature and the 2 joint ones), and the naive set is
    retired at window 6 = 4 + retire_after - 1 in every seed. Marginal tests may ride along: once `mmd`'s
    tiny p-value is rejected BH's next threshold is 2q/m, and 2 of the 40 changed windows also flag a
    marginal test (bound 4: at most ~q = 1 % of each window's 16 true nulls at that threshold, 40 windows).
    Before the change, 1 of 40 stationary windows is (falsely) flagged (bound 2: ~1 % per window).
    """
    anchor, sets = profiles
    stationary_flags = marginal_flags = 0
    for seed in SEEDS:
        outs = _run(anchor, sets, seed, [0.0] * CHANGE + [1.0] * 4)
        stationary_flags += sum(o.result.flagged for o in outs[:CHANGE])
        for o in outs[CHANGE:]:
            mmd = next(t for t in o.result.tests if t.feature == "joint" and t.test == "mmd")
            assert mmd.flagged and mmd.result.p_value < 1e-8, (seed, o.result.window, mmd.result)
            marginal_flags += any(t.flagged and t.feature != "joint" for t in o.result.tests)
        alerts = [(a.window, a.dataset, a.state) for o in outs for a in o.alerts]
        assert alerts == [(CHANGE + 2, "naive", PolicyState.RETIRE_RECOMMENDED)], (seed, alerts)
    assert stationary_flags <= 2 and marginal_flags <= 4, (stationary_flags, marginal_flags)


@given(st.integers(0, 2**32 - 1), st.integers(1, 400), st.sampled_from(["normal", "ties", "constant"]))
@settings(max_examples=40, deadline=None)
def test_normal_scores_matrix_equals_normal_scores_column_by_column(seed: int, rows: int, law: str) -> None:
    """The sorted-order scores of the window path are `normal_scores`' values, bit for bit, in the rows'
    order: ties in the window and in the reference's quantiles (left and right CDF limits differ), and a
    constant reference feature (scores 0)."""
    rng = np.random.default_rng(seed)
    ref = {"a": rng.normal(size=3000), "b": np.round(rng.exponential(size=3000)),
           "c": np.full(3000, 2.0) if law == "constant" else rng.uniform(size=3000)}
    profiles = [numeric_profile(v.tolist(), anchor=None, bins=20, quantiles=1024) for v in ref.values()]
    m = rng.normal(size=(rows, 3))
    if law == "ties":
        m = np.round(m * 2) / 2
    got = normal_scores_matrix(m, profiles)
    want = np.column_stack([normal_scores(m[:, j], p) for j, p in enumerate(profiles)])
    assert got.flags.c_contiguous and np.array_equal(got, want)
