"""`careful-monitor run` against a real Kafka broker: same results as replay, nothing lost or doubled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import orjson
import pytest
import yaml

from careful_monitor.demo import write_scenario
from careful_monitor.scenarios import demo as scenario

pytestmark = pytest.mark.integration
WINDOWS = 12


def cm(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREFUL_MONITOR_")}
    return subprocess.run([sys.executable, "-m", "careful_monitor.cli", *args], capture_output=True, env=env, timeout=300, **kw)


def spawn(*args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREFUL_MONITOR_")}
    return subprocess.Popen([sys.executable, "-m", "careful_monitor.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)


@pytest.fixture(scope="module")
def scenario_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("kscenario")
    (d / "datasets").mkdir()
    return write_scenario(d, seed=5, windows=WINDOWS)


def make_config(tmp: Path, paths, bootstrap: str, name: str) -> Path:
    cfg = yaml.safe_load(paths["config"].read_text())
    tag = uuid.uuid4().hex[:8]
    cfg["store"] = {"url": f"sqlite:///{tmp / (name + '.db')}"}
    cfg["dead_letters"] = {"path": str(tmp / f"{name}-dead.jsonl")}
    cfg["kafka"] = {"bootstrap": bootstrap, "group": f"g-{tag}", "runtime": "consumer", "partitions": 6,
                    "topics": {"events": f"ev-{tag}", "alerts": f"al-{tag}", "dead_letters": f"dl-{tag}"}}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    for n in (scenario.ANCHOR, scenario.COLLAPSED, scenario.FAITHFUL):
        r = cm("datasets", "register", "--config", str(path), str(paths[f"card:{n}"]))
        assert r.returncode == 0, r.stderr.decode()
    return path


def stored(cfg_path: Path) -> tuple[list[dict], list[dict]]:
    from careful_monitor.config import load_config
    from careful_monitor.store import Store

    cfg = load_config(cfg_path, environ={})
    st = Store(cfg.store_url)
    try:
        return st.last_windows(scenario.MODEL, 10_000), st.list_alerts()
    finally:
        st.close()


def wait_windows(cfg_path: Path, n: int, proc: subprocess.Popen, deadline_s: float = 180) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if len(stored(cfg_path)[0]) >= n:
            return
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        time.sleep(0.3)
    raise AssertionError(f"fewer than {n} windows stored before the deadline")


def strip(ws: list[dict]) -> list[dict]:
    return [{k: v for k, v in w.items() if k != "created_at"} for w in ws]


def strip_alerts(alerts: list[dict]) -> list[dict]:
    return [{k: v for k, v in a.items() if k not in ("created_at",)} for a in alerts]


def consume_all(bootstrap: str, topic: str, expected: int, deadline_s: float = 60):
    from kafka import KafkaConsumer

    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
                      group_id=None, consumer_timeout_ms=1000)
    out = []
    deadline = time.monotonic() + deadline_s
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for batch in c.poll(timeout_ms=500).values():
                out.extend(batch)
        # anything extra would be a duplicate: read a little longer
        for batch in c.poll(timeout_ms=1500).values():
            out.extend(batch)
    finally:
        c.close()
    return out


@pytest.fixture
def replay_reference(tmp_path, scenario_files):
    cfg = make_config(tmp_path, scenario_files, "127.0.0.1:1", "replay")
    r = cm("replay", "--config", str(cfg), "--no-http", str(scenario_files["events"]))
    assert r.returncode == 0, r.stderr.decode()
    return stored(cfg)


def test_run_matches_replay_and_routes_dead_letters(tmp_path, kafka_bootstrap, scenario_files, replay_reference) -> None:
    cfg = make_config(tmp_path, scenario_files, kafka_bootstrap, "run")
    assert cm("topics", "create", "--config", str(cfg)).returncode == 0
    again = cm("topics", "create", "--config", str(cfg))
    assert again.returncode == 0 and b"exists" in again.stdout
    r = cm("simulate", "--config", str(cfg), "--file", str(scenario_files["events"]))
    assert r.returncode == 0, r.stderr.decode()
    proc = spawn("run", "--config", str(cfg), "--port", "0")
    try:
        wait_windows(cfg, WINDOWS, proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    windows, alerts = stored(cfg)
    ref_windows, ref_alerts = replay_reference
    assert strip(windows) == strip(ref_windows)
    assert strip_alerts(alerts) == strip_alerts(ref_alerts)
    c = yaml.safe_load(cfg.read_text())["kafka"]["topics"]
    dead = consume_all(kafka_bootstrap, c["dead_letters"], 5)
    assert sorted(dict(m.headers)["reason"].decode() for m in dead) == ["decode", "schema", "schema", "too_large", "unknown_model"]
    published = [orjson.loads(m.value) for m in consume_all(kafka_bootstrap, c["alerts"], len(ref_alerts))]
    assert [a["alert_id"] for a in published] == [a["alert_id"] for a in ref_alerts]


def test_kill_9_and_restart_loses_and_duplicates_nothing(tmp_path, kafka_bootstrap, scenario_files, replay_reference) -> None:
    cfg = make_config(tmp_path, scenario_files, kafka_bootstrap, "crash")
    assert cm("topics", "create", "--config", str(cfg)).returncode == 0
    # produce slowly in the background so the crash lands mid-stream
    producer = spawn("simulate", "--config", str(cfg), "--file", str(scenario_files["events"]), "--rate", "2500")
    proc = spawn("run", "--config", str(cfg), "--port", "0")
    try:
        wait_windows(cfg, 3, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert producer.wait(timeout=120) == 0
    finally:
        for p in (proc, producer):
            if p.poll() is None:
                p.kill()
    assert len(stored(cfg)[0]) < WINDOWS, "the crash came too late to test anything"
    proc = spawn("run", "--config", str(cfg), "--port", "0")
    try:
        wait_windows(cfg, WINDOWS, proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    windows, alerts = stored(cfg)
    ref_windows, ref_alerts = replay_reference
    assert strip(windows) == strip(ref_windows)
    assert strip_alerts(alerts) == strip_alerts(ref_alerts)
