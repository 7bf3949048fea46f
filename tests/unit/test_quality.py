"""Reduced versions of `bench --quality`'s window experiments, with the same assertions."""

from __future__ import annotations

import pytest

from careful_monitor.bench import quality as q


@pytest.fixture(scope="module")
def world():
    return q.World(seed=0)


def test_stationary_no_alert_and_flag_rate_within_fdr(world) -> None:
    r = q.stationary(world, 150)
    assert r["alerts"] == 0
    assert r["flag_rate"] <= r["flag_rate_99pct_bound"]  # upper 99 % binomial bound at policy.fdr


def test_mean_shift_quarter_sd_flagged_within_2_windows(world) -> None:
    assert q.mean_shift(world, 0.25) in (1, 2)


def test_recursive_gaussian_replace_retires_accumulate_does_not(world) -> None:
    rep = q.gaussian_chain(world, "replace", windows=12)
    w70 = rep["first_window_variance_le_70pct"]
    assert w70 is not None
    retire = [w for w, d, s in rep["alerts"] if s == "retire_recommended"]
    assert retire and retire[0] <= w70 + 3 + 1 and {d for _, d, _ in rep["alerts"]} == {"collapsed"}
    assert rep["first_spread_flag"] is not None  # the spread signature sees it
    acc = q.gaussian_chain(world, "accumulate", windows=12)
    assert not [a for a in acc["alerts"] if a[2] == "retire_recommended"]


def test_attribution_and_world_shift(world) -> None:
    at = q.attribution(world, seeds=4, windows=5)
    assert at["right_dataset_only"] >= 4 - 0 and at["other_set_blamed"] == 0
    ws = q.world_shift(world, seeds=4, windows=6)
    assert ws["anchor_stale_within_5"] == 4 and ws["synthetic_blamed"] == 0


def test_share_estimate_within_005(world) -> None:
    assert max(q.share_accuracy(world, shares=(0.1, 0.5, 0.9), seeds=2).values()) <= 0.05


def test_correlation_change_flagged_by_joint_test(world) -> None:
    assert q.correlation(world) in (1, 2, 3)


def test_effect_floor_ignores_tiny_shift_at_large_windows(world) -> None:
    assert q.effect_floor(world, windows=1) == 0
