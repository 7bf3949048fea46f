"""Event-id dedup under `careful-monitor run` (issue 11): the same events (same ids) produced twice to
the topic, as a producer retry or a re-sent batch does, are counted once."""

from __future__ import annotations

import signal
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from careful_monitor.config import load_config
from careful_monitor.demo import scenario, write_scenario
from careful_monitor.runtime.pipeline import Pipeline
from careful_monitor.runtime.replay import replay
from careful_monitor.sinks.prometheus import Metrics
from careful_monitor.store import Store
from tests.integration.test_kafka_service import _free_port, cm, make_config, output, spawn, stored, strip

pytestmark = pytest.mark.integration
WINDOWS = 3


def _events_total(url: str) -> dict[str, float]:
    """events_total of the scenario's model by outcome, as /metrics shows it (empty while not serving)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    return {s.labels["outcome"]: s.value for f in text_string_to_metric_families(text) if f.name.endswith("events")
            for s in f.samples if s.name.endswith("_total") and s.labels.get("model") == scenario.MODEL}


def test_events_produced_twice_are_counted_once(tmp_path: Path, kafka_bootstrap: str) -> None:
    d = tmp_path / "scenario"
    (d / "datasets").mkdir(parents=True)
    paths = write_scenario(d, seed=5, windows=WINDOWS)
    cfg_path = make_config(tmp_path, paths, kafka_bootstrap, "run")
    # the reference: one replay of the file into a copy of the registered store
    cfg = load_config(cfg_path, environ={})
    ref_db = tmp_path / "ref.db"
    ref_db.write_bytes(Path(cfg.store_url.removeprefix("sqlite:///")).read_bytes())
    ref_cfg = cfg.model_copy(update={"store": cfg.store.model_copy(update={"url": f"sqlite:///{ref_db}"})})
    with Store(ref_cfg.store_url) as ref_store:
        ref = replay(Pipeline(ref_cfg, ref_store, Metrics(CollectorRegistry())), [str(paths["events"])])
        ref_windows = ref_store.last_windows(scenario.MODEL, 100)
    assert ref.duplicates == 0 and len(ref_windows) == WINDOWS

    assert cm("topics", "create", "--config", str(cfg_path)).returncode == 0
    events = str(paths["events"])
    r = cm("simulate", "--config", str(cfg_path), "--file", events, "--file", events)  # every event twice
    assert r.returncode == 0, r.stderr.decode()
    port = _free_port()
    proc = spawn("run", "--config", str(cfg_path), "--port", str(port))
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 60
        counts: dict[str, float] = {}
        while time.monotonic() < deadline and counts.get("duplicate", 0) < ref.accepted:
            assert proc.poll() is None, output(proc)[-3000:]
            time.sleep(0.3)  # poll interval, bounded by the deadline
            counts = _events_total(url)
        assert counts.get("duplicate") == ref.accepted, (counts, output(proc)[-3000:])
        assert counts.get("accepted") == ref.accepted
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, output(proc)[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    windows, _ = stored(cfg_path)
    assert strip(windows) == strip(ref_windows)  # the second copy added no window and no event
