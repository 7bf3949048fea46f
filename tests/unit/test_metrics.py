"""The Prometheus sink: labels only from config and fixed sets, version trend, cached children."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from careful_monitor.demo import scenario
from careful_monitor.demo.scenario import events_to_batch
from careful_monitor.sinks.prometheus import Metrics
from tests.unit.conftest import demo_monitor


def test_window_metrics_and_version_trend(demo_profiles) -> None:
    reg = CollectorRegistry()
    m = Metrics(reg, versions_kept=3)
    mon = demo_monitor(demo_profiles)
    events = scenario.live_events(np.random.default_rng(8), windows=12, stable_windows=4)
    for o in mon.process(events_to_batch(events), now=0.0):
        m.window(scenario.MODEL, o, 0.01)
    get = reg.get_sample_value
    assert get("careful_monitor_windows_total", {"model": scenario.MODEL}) == 12
    assert get("careful_monitor_dataset_state", {"model": scenario.MODEL, "dataset": scenario.COLLAPSED}) == 2
    assert get("careful_monitor_dataset_state", {"model": scenario.MODEL, "dataset": scenario.FAITHFUL}) == 0
    # version 7 then version 8 (drifting): entropy of the class probabilities falls across versions
    v7 = get("careful_monitor_collapse_signal_by_version",
             {"model": scenario.MODEL, "version": "7", "feature": "outputs.probs", "signal": "entropy"})
    v8 = get("careful_monitor_collapse_signal_by_version",
             {"model": scenario.MODEL, "version": "8", "feature": "outputs.probs", "signal": "entropy"})
    trend = get("careful_monitor_collapse_signal_version_trend",
                {"model": scenario.MODEL, "feature": "outputs.probs", "signal": "entropy"})
    assert v8 < v7 and trend == v8 - v7 < 0
    text = m.exposition().decode()
    assert "req-" not in text  # event ids never become labels


def test_dropped_version_series_disappear() -> None:
    reg = CollectorRegistry()
    m = Metrics(reg)
    m.collapse_by_version.labels("m", "1", "f", "spread_ratio").set(1)
    m._children[(id(m.collapse_by_version), ("m", "1", "f", "spread_ratio"))] = m.collapse_by_version.labels(
        "m", "1", "f", "spread_ratio")
    m.drop_version("m", "1")
    assert reg.get_sample_value("careful_monitor_collapse_signal_by_version",
                                {"model": "m", "version": "1", "feature": "f", "signal": "spread_ratio"}) is None
