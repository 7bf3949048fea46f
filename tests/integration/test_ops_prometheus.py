"""Operations files checked by the real programs: promtool, amtool, Prometheus and Alertmanager on loopback.

A running `demo --serve` is scraped by a real Prometheus loaded with our rules; the retirement alert
travels through a real Alertmanager to a webhook this test serves.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


@pytest.fixture(scope="session")
def tools() -> None:
    if not (shutil.which("promtool") and shutil.which("amtool")):
        subprocess.run([str(DEPLOY / "services.sh"), "install"], check=True, timeout=900)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def _poll(fn, deadline_s: float, what: str):
    deadline = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
        except OSError as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"{what} not seen within {deadline_s} s ({last})")


def test_promtool_checks_config_and_rules(tools) -> None:
    run = lambda *a, cwd=ROOT: subprocess.run(a, cwd=cwd, capture_output=True, text=True)  # noqa: E731
    r = run("promtool", "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert r.returncode == 0, r.stdout + r.stderr
    r = run("promtool", "check", "rules", str(DEPLOY / "prometheus" / "rules" / "careful-monitor.rules.yml"))
    assert r.returncode == 0 and "8 rules found" in r.stdout, r.stdout + r.stderr
    r = run("promtool", "test", "rules", "rules_test.yml", cwd=DEPLOY / "prometheus" / "tests")
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr
    # every rule has a unit test
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "careful-monitor.rules.yml").read_text())
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    tested = {t["alertname"] for case in yaml.safe_load((DEPLOY / "prometheus" / "tests" / "rules_test.yml").read_text())["tests"]
              for t in case["alert_rule_test"]}
    assert names == tested
    for g in rules["groups"]:
        for rule in g["rules"]:
            assert rule["labels"]["severity"] in ("page", "ticket")
            anchor = rule["annotations"]["runbook_url"].split("#")[1]
            assert f'<a id="{anchor}"></a>' in (ROOT / "docs" / "runbooks.md").read_text(), anchor


def test_amtool_checks_alertmanager_config(tools) -> None:
    r = subprocess.run(["amtool", "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml")], capture_output=True, text=True)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


@pytest.fixture(scope="module")
def served_demo(tmp_path_factory):
    work = tmp_path_factory.mktemp("ops") / "demo"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREFUL_MONITOR_")}
    proc = subprocess.Popen([sys.executable, "-m", "careful_monitor.cli", "demo", "--workdir", str(work), "--port",
                             str(port), "--serve", "--windows", "14"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        _poll(lambda: b"retire_recommended" in _get(f"http://127.0.0.1:{port}/api/alerts"), 120, "the demo's alert")
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_promtool_accepts_live_metrics(tools, served_demo) -> None:
    text = _get(f"http://{served_demo}/metrics")
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()


class _Webhook(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"path": self.path, **json.loads(body)})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_retirement_alert_reaches_the_pager_through_prometheus_and_alertmanager(tools, served_demo, tmp_path) -> None:
    hook_port, am_port, prom_port = _free_port(), _free_port(), _free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", hook_port), _Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    am_cfg = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    am_cfg["route"]["group_wait"] = "1s"  # test copy: no waiting for a group to fill
    for rcv in am_cfg["receivers"]:
        for hook in rcv["webhook_configs"]:
            hook["url"] = f"http://127.0.0.1:{hook_port}/{rcv['name']}"
    (tmp_path / "am.yml").write_text(yaml.safe_dump(am_cfg))
    shutil.copytree(DEPLOY / "prometheus" / "rules", tmp_path / "rules")
    prom_cfg = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    prom_cfg["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    prom_cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{am_port}"]
    prom_cfg["scrape_configs"][0]["static_configs"][0]["targets"] = [served_demo]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom_cfg))
    procs = [
        subprocess.Popen(["prometheus-alertmanager", f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'am'}",
                          f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                          f"--web.listen-address=127.0.0.1:{prom_port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        def paged():
            return [r for r in _Webhook.received if r["path"] == "/pager"
                    and any(a["labels"].get("alertname") == "CarefulDatasetRetireRecommended"
                            and a["labels"].get("dataset") == "tickets-synth-collapsed" for a in r["alerts"])]

        hit = _poll(paged, 90, "the retirement page at the webhook")[0]
        alert = next(a for a in hit["alerts"] if a["labels"]["alertname"] == "CarefulDatasetRetireRecommended")
        assert alert["labels"]["severity"] == "page" and alert["labels"]["model"] == "ticket-router"
        assert alert["annotations"]["runbook_url"].endswith("#carefuldatasetretirerecommended")
        # nothing pages for the faithful set or the anchor
        q = urllib.parse.quote('ALERTS{alertstate="firing",severity="page"}')
        firing = json.loads(_get(f"http://127.0.0.1:{prom_port}/api/v1/query?query={q}"))["data"]["result"]
        assert {r["metric"]["dataset"] for r in firing if "dataset" in r["metric"]} == {"tickets-synth-collapsed"}
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
        server.shutdown()
