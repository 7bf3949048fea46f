"""Engine state is data, never code: the snapshot codec, old pickles refused, detectors resumed."""

from __future__ import annotations

import json
import pickle  # only to write the kind of blob the service must refuse
import re
from pathlib import Path

import numpy as np
import pytest

from careful_monitor.demo import scenario
from careful_monitor.demo.scenario import events_to_batch
from careful_monitor.engine.detectors import make_detector
from careful_monitor.engine.state import StaleStateError, decode_state, encode_state
from tests.unit.conftest import demo_monitor

PACKAGE = Path(__file__).parents[2] / "careful_monitor"


def test_snapshot_is_versioned_json_of_plain_data(demo_profiles) -> None:
    mon = demo_monitor(demo_profiles)
    mon.process(events_to_batch(scenario.live_events(np.random.default_rng(5), windows=2)[:1500]), now=0.0)
    doc = json.loads(mon.snapshot())
    assert doc["format"] == "careful-monitor/engine-state" and doc["v"] == 2
    assert doc["window"]["n"] == mon.window.n == 500
    assert set(doc["window"]["cols"]) == set(mon.features)
    assert doc["detector"]["kind"] == "cusum" and set(doc["detector"]) == {"kind", "pos", "neg", "direction"}


def test_pickle_snapshot_is_refused_naming_the_command(demo_profiles) -> None:
    old = pickle.dumps({"v": 1, "window_index": 3})
    mon = demo_monitor(demo_profiles)
    with pytest.raises(StaleStateError, match=r"careful-monitor db reset-state --model ticket-router"):
        mon.restore(old)
    for blob in (b"", b"not json", b'{"format": "other"}', encode_state({})[:-1], b'\xff\xfe'):
        with pytest.raises(StaleStateError, match="reset-state"):
            decode_state(blob)
    with pytest.raises(StaleStateError, match="version 1"):
        decode_state(json.dumps({"format": "careful-monitor/engine-state", "v": 1}).encode())


def test_codec_keeps_values_and_types_exactly() -> None:
    values = [1, 1.0, 0.1 + 0.2, -0.0, float("nan"), float("inf"), "x", True, None, {"a": 0.5}, [1, "b"]]
    back = decode_state(encode_state({"cols": {"f": values}, "arr": np.arange(3), "np": np.float64(2.5)}))
    got = back["cols"]["f"]
    assert [type(v) for v in got] == [type(v) for v in values]
    assert got[:4] == values[:4] and np.isnan(got[4]) and got[5:] == values[5:]
    assert back["arr"] == [0, 1, 2] and back["np"] == 2.5
    with pytest.raises(TypeError, match="data-only codec"):
        encode_state({"x": object()})


@pytest.mark.parametrize("kind", ["adwin", "page_hinkley", "kswin"])
def test_river_detectors_rewarm_from_their_tail(kind: str) -> None:
    rng = np.random.default_rng(3)
    stable = rng.normal(size=3000)
    d = make_detector(kind, mean=0.0, sd=1.0, threshold=20.0, drift=0.25)
    d.update_many(stable)
    state = d.state()
    assert len(state["tail"]) == 1000 and state["tail"] == stable[-1000:].tolist()
    again = make_detector(kind, mean=0.0, sd=1.0, threshold=20.0, drift=0.25)
    again.restore(json.loads(json.dumps(state)))
    assert not again.drift_detected and again.state() == state
    # a shift right after the restore is still found: the detector knows the recent past
    assert again.update_many(rng.normal(3.0, 1.0, 2000))


def test_no_pickle_in_the_package() -> None:
    found = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
             if re.search(r"^\s*(import pickle|from pickle|import cPickle)|pickle\.loads?\(", p.read_text(), re.M)]
    assert found == []
