"""`demo --serve`: /metrics, /healthz, /readyz and the JSON API over real HTTP, then a clean SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture(scope="module")
def served_demo(tmp_path_factory):
    work = tmp_path_factory.mktemp("served") / "demo"
    proc = subprocess.Popen([sys.executable, "-m", "careful_monitor.cli", "demo", "--workdir", str(work), "--port", "0",
                             "--serve", "--windows", "14"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    url = None
    lines = []
    while time.monotonic() < deadline and proc.poll() is None:
        line = proc.stdout.readline().decode()
        lines.append(line)
        m = re.search(r"metrics / API: (http://\S+)/metrics", line)
        if m:
            url = m.group(1)
        if "serving until Ctrl-C" in line:
            break
    assert url, "demo did not report its URL:\n" + "".join(lines) + proc.stderr.read().decode()
    yield url, proc, work
    if proc.poll() is None:
        proc.kill()


def test_metrics_and_api(served_demo) -> None:
    url, _, _ = served_demo
    status, body = _get(url + "/metrics")
    text = body.decode()
    assert status == 200
    for name in ("careful_monitor_events_total", "careful_monitor_windows_total", "careful_monitor_drift_statistic",
                 "careful_monitor_drift_p_value", "careful_monitor_drift_detected", "careful_monitor_collapse_signal",
                 "careful_monitor_synthetic_affinity", "careful_monitor_synthetic_share",
                 "careful_monitor_dataset_state", "careful_monitor_retirement_alerts_total",
                 "careful_monitor_dead_letters_total",
                 "careful_monitor_event_lag_seconds", "careful_monitor_collapse_signal_by_version",
                 "careful_monitor_window_processing_seconds_bucket", "careful_monitor_build_info"):
        assert name in text, name
    assert 'careful_monitor_dataset_state{dataset="tickets-synth-collapsed",model="ticket-router"} 2.0' in text
    assert 'careful_monitor_dataset_state{dataset="tickets-synth-faithful",model="ticket-router"} 0.0' in text
    assert 'careful_monitor_events_total{model="ticket-router",outcome="accepted"} 14000.0' in text
    assert 'fraud-scorer' not in text  # an unknown model never becomes a label
    assert _get(url + "/healthz")[0] == 200
    status, body = _get(url + "/readyz")
    assert status == 200 and json.loads(body)["ready"] is True
    alerts = json.loads(_get(url + "/api/alerts")[1])
    assert [a["dataset"] for a in alerts] == ["tickets-synth-collapsed"]
    datasets = json.loads(_get(url + "/api/datasets")[1])
    assert {d["name"] for d in datasets} == {"tickets-real", "tickets-synth-collapsed", "tickets-synth-faithful"}
    windows = json.loads(_get(url + "/api/models/ticket-router/windows?last=3")[1])
    assert [w["window"] for w in windows] == [11, 12, 13] and windows[-1]["evidence"]
    assert _get(url + "/api/models/nope/windows")[0] == 404
    assert _get(url + "/api/models/ticket-router/windows?last=x")[0] == 400


def test_retire_resolves_the_page_on_the_live_metric(served_demo) -> None:
    """`datasets retire` from another process: dataset_state 2 -> 4 within governance.poll_seconds (2 s in the demo)."""
    url, _, work = served_demo
    series = 'careful_monitor_dataset_state{dataset="tickets-synth-collapsed",model="ticket-router"}'
    assert f"{series} 2.0" in _get(url + "/metrics")[1].decode()
    cfg = ["--config", str(work / "config.yaml")]

    def lifecycle(action: str, reason: str, value: str, meaning: str) -> None:
        r = subprocess.run([sys.executable, "-m", "careful_monitor.cli", "datasets", action, *cfg,
                            "tickets-synth-collapsed", "--by", "oncall", "--reason", reason],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode()
        deadline = time.monotonic() + 20
        while f"{series} {value}" not in _get(url + "/metrics")[1].decode():
            assert time.monotonic() < deadline, f"dataset_state did not {meaning}"
            time.sleep(0.5)

    lifecycle("retire", "alert", "4.0", "become 4 (retired)")
    lifecycle("reactivate", "regen", "0.0", "go back to 0 (ok)")


def test_sigterm_exits_zero(served_demo) -> None:
    _, proc, _ = served_demo
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
