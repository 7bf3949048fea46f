"""One conformance suite for every window test, collapse signature and streaming detector."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from careful_monitor.config import MinEffect
from careful_monitor.demo import scenario
from careful_monitor.demo.scenario import events_to_batch, rows_to_columns
from careful_monitor.engine.column import summarise
from careful_monitor.engine.comparisons.catalogue import SIGNATURES, TESTS, WINDOW_COMPARISONS
from careful_monitor.engine.detectors import make_detector
from careful_monitor.engine.profile import build_profile
from tests.unit.conftest import demo_monitor

FLOORS = MinEffect().model_dump()
ALL = [*TESTS, *SIGNATURES]


@pytest.fixture(scope="module")
def same_law(demo_profiles):
    """A fresh window from the anchor's own law, summarised per feature."""
    anchor, _ = demo_profiles
    cols = rows_to_columns(scenario.sample_rows(np.random.default_rng(99), 1000, "anchor"))
    return anchor, cols, {f: summarise(cols[f], anchor.features[f]) for f in cols}


@pytest.mark.parametrize("test", ALL, ids=lambda t: t.name)
def test_window_test_conformance(test, same_law) -> None:
    anchor, cols, summaries = same_law
    ran = 0
    for f, kind in scenario.FEATURES.items():
        if kind not in test.kinds:
            continue
        ref = anchor.features[f]
        r1 = test.compare(ref, summaries[f])
        if r1 is None:
            continue
        ran += 1
        # shapes: finite numbers, a probability
        assert math.isfinite(r1.statistic) and math.isfinite(r1.effect)
        assert 0.0 <= r1.p_value <= 1.0
        # identical law: no flag (a flag needs p below the BH level *and* the effect floor)
        assert r1.p_value > 1e-3 or r1.effect < FLOORS[test.effect_key], (f, r1)
        # determinism: recomputing on a fresh summary gives the same result
        assert test.compare(ref, summarise(cols[f], ref)) == r1
    assert ran, f"{test.name} ran on no feature of the demo scenario"


@pytest.mark.parametrize("test", WINDOW_COMPARISONS, ids=lambda t: t.name)
def test_joint_test_conformance(test, same_law) -> None:
    anchor, cols, _ = same_law
    raw = {f: np.array(cols[f], dtype=float) for f in anchor.joint.features}
    r = test.compare_window(anchor, raw)
    assert r is not None and 0 <= r.p_value <= 1
    assert math.isfinite(r.statistic) and math.isfinite(r.effect)
    assert r.p_value > 1e-3 or r.effect < FLOORS[test.effect_key]
    assert test.compare_window(anchor, raw) == r


@pytest.mark.parametrize("kind", ["cusum", "adwin", "page_hinkley", "kswin"])
def test_detector_conformance(kind) -> None:
    rng = np.random.default_rng(5)
    stationary = rng.normal(size=3000 if kind == "kswin" else 5000)
    det = make_detector(kind, mean=0.0, sd=1.0, threshold=20.0, drift=0.25)
    hits = det.update_many(stationary)
    if kind in ("cusum", "adwin"):
        assert hits == []  # the two detectors we recommend stay quiet on 5,000 stationary values
    shifted = rng.normal(1.5, 1.0, 1500)
    clone = make_detector(kind, mean=0.0, sd=1.0, threshold=20.0, drift=0.25)
    clone.restore(json.loads(json.dumps(det.state())))  # snapshot / restore through the data-only codec
    a, b = det.update_many(shifted), clone.update_many(shifted)
    assert len(a) >= 1 and det.drift_detected
    if kind == "cusum":
        assert a == b  # exact state
    else:
        # river's detectors re-warm on the last 1,000 values: they still find the shift, about as fast
        assert len(b) >= 1 and abs(b[0] - a[0]) <= 50, (a[:3], b[:3])  # seen: 0-5 events apart
    # determinism from scratch
    again = make_detector(kind, mean=0.0, sd=1.0, threshold=20.0, drift=0.25)
    assert again.update_many(stationary) == hits


def test_monitor_snapshot_restore_round_trip(demo_profiles) -> None:
    events = scenario.live_events(np.random.default_rng(21), windows=6, stable_windows=2)
    whole = demo_monitor(demo_profiles)
    full = [o.result for o in whole.process(events_to_batch(events), now=0.0)]
    first = demo_monitor(demo_profiles)
    part = [o.result for o in first.process(events_to_batch(events[:2500]), now=0.0)]
    blob = first.snapshot()
    second = demo_monitor(demo_profiles)
    second.restore(blob)
    part += [o.result for o in second.process(events_to_batch(events[2500:]), now=0.0)]
    assert part == full
    assert (second.window_index, second.n_open, second.states()) == (whole.window_index, whole.n_open, whole.states())
    assert (second.detector.pos, second.detector.neg) == (whole.detector.pos, whole.detector.neg)
    assert second.window.cols == whole.window.cols


def test_profile_round_trip_and_determinism() -> None:
    cols = rows_to_columns(scenario.sample_rows(np.random.default_rng(4), 3000, "anchor"))
    a = build_profile("x", "real", cols, kinds=scenario.FEATURES, rng=np.random.default_rng(0))
    b = build_profile("x", "real", cols, kinds=scenario.FEATURES, rng=np.random.default_rng(0))
    assert a.to_bytes() == b.to_bytes()
    c = type(a).from_bytes(a.to_bytes())
    assert c.to_bytes() == a.to_bytes()
