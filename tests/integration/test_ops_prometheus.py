"""Operations files checked by the real programs: promtool, amtool, Prometheus and Alertmanager on loopback.

A running `demo --serve` is scraped by a real Prometheus: its exposition passes `promtool check
metrics`, every Grafana panel's query returns series, and the retirement alert travels through our
rules and a real Alertmanager to a webhook this test serves. The tools come from Debian
(`deploy/services.sh install`); nothing here sleeps for a fixed time, everything polls with a deadline.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import yaml

from tests.unit.test_ops_dashboards import DASHBOARDS, dashboard_queries, promql_metric_names
from tests.unit.test_ops_runbooks import runbook_commands

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "rules" / "careful-monitor.rules.yml"
RULES_TEST = DEPLOY / "prometheus" / "tests" / "rules_test.yml"
ALERTMANAGER_YML = DEPLOY / "alertmanager" / "alertmanager.yml"
#: Grafana's template variables, as the live query test fills them in
SUBSTITUTIONS = {"model": "ticket-router", "dataset": "tickets-synth-collapsed", "$__rate_interval": "1m",
                 "$__interval": "15s", "$__range": "5m"}
#: panels whose metric the demo (a file replay) does not export, with the reason; checked to be exactly those
NOT_IN_DEMO = {
    ("careful-overview.json", "Consumer lag"):
        "careful_monitor_consumer_lag is set only by the Kafka runtime (`careful-monitor run`) "
        "from its partition assignment",
    ("careful-overview.json", "Governance violations"):
        "careful_monitor_governance_violations has a series per violation only; the demo's config breaks no rule",
    ("careful-overview.json", "Evaluation set contamination"):
        "careful_monitor_isolation_contamination_ratio comes from stored `datasets isolation` results; the demo "
        "registers no evaluation set",
}
T = TypeVar("T")


def _alertmanager_binary() -> str | None:
    return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@pytest.fixture(scope="session")
def tools() -> None:
    """promtool, amtool, prometheus and alertmanager; installs Debian's packages when they are missing."""
    if not (shutil.which("promtool") and shutil.which("amtool") and shutil.which("prometheus")
            and _alertmanager_binary()):
        subprocess.run([str(DEPLOY / "services.sh"), "install"], check=True, timeout=900)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def _poll(fn: Callable[[], T], deadline_s: float, what: str, interval: float = 0.25) -> T:
    """fn() until it returns something truthy; connection errors count as 'not yet'."""
    deadline = time.monotonic() + deadline_s
    last: Exception | None = None
    while True:
        try:
            value = fn()
            if value:
                return value
        except OSError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {deadline_s} s (last error: {last})")
        time.sleep(interval)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to this process id, SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _tail(path: Path, n: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)


# --- static checks by the real tools -------------------------------------------------------------

def test_services_sh_is_idempotent_and_leaves_no_system_daemon_running(tools) -> None:
    script = DEPLOY / "services.sh"
    assert _run("bash", "-n", str(script)).returncode == 0
    text = script.read_text()
    assert text.index("apt-get update") < text.index("apt-get install") and "DEBIAN_FRONTEND=noninteractive" in text
    r = _run(str(script), "install")
    assert r.returncode == 0 and not r.stdout + r.stderr, r.stdout + r.stderr  # tools present: a silent no-op
    assert _run(str(script)).returncode == 2
    # the Debian packages' own daemons (default ports 9090/9093) are not left running
    for svc in ("prometheus", "prometheus-alertmanager"):
        init = Path("/etc/init.d") / svc
        if init.exists() and not Path("/run/systemd/system").is_dir():
            assert _run(str(init), "status").returncode != 0, f"{svc} system service is running"
        elif shutil.which("systemctl") and Path("/run/systemd/system").is_dir():
            assert _run("systemctl", "is-active", "--quiet", svc).returncode != 0, f"{svc} system service is running"


def test_promtool_checks_config_rules_and_rule_unit_tests(tools) -> None:
    r = _run("promtool", "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert r.returncode == 0, r.stdout + r.stderr
    r = _run("promtool", "check", "rules", str(RULES))
    assert r.returncode == 0 and "10 rules found" in r.stdout, r.stdout + r.stderr
    r = _run("promtool", "test", "rules", RULES_TEST.name, cwd=RULES_TEST.parent)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


def test_every_rule_is_unit_tested_firing_and_silent_and_has_a_runbook() -> None:
    rules = [rule for g in yaml.safe_load(RULES.read_text())["groups"] for rule in g["rules"]]
    assert {r["alert"] for r in rules} == {
        "CarefulDatasetRetireRecommended", "CarefulAnchorStale", "CarefulDatasetWatchLong", "CarefulDeadLettersRising",
        "CarefulConsumerLagHigh", "CarefulEventLagHigh", "CarefulNoEvents", "CarefulMonitorDown",
        "CarefulGovernanceViolation", "CarefulDatasetReviewOverdue"}
    cases = [t for case in yaml.safe_load(RULES_TEST.read_text())["tests"] for t in case["alert_rule_test"]]
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    for rule in rules:
        name = rule["alert"]
        mine = [t for t in cases if t["alertname"] == name]
        assert any(t["exp_alerts"] for t in mine), f"{name}: no test where it fires"
        assert any(not t["exp_alerts"] for t in mine), f"{name}: no test where it stays silent"
        assert rule["labels"]["severity"] in ("page", "ticket"), name
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), name
        page, anchor = rule["annotations"]["runbook_url"].split("#")
        assert page == "docs/runbooks.md" and anchor == name.lower(), name
        assert f'<a id="{anchor}"></a>' in runbooks, f"docs/runbooks.md has no section for {name}"
    severities = {r["alert"]: r["labels"]["severity"] for r in rules}
    assert {n for n, s in severities.items() if s == "page"} == {"CarefulDatasetRetireRecommended",
                                                                  "CarefulMonitorDown"}


def test_amtool_checks_alertmanager_config_and_routes(tools) -> None:
    r = _run("amtool", "check-config", str(ALERTMANAGER_YML))
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr
    for labels, receiver in ((["severity=page", "alertname=CarefulMonitorDown"], "pager"),
                             (["severity=ticket", "alertname=CarefulAnchorStale"], "ticket")):
        r = _run("amtool", "config", "routes", "test", f"--config.file={ALERTMANAGER_YML}",
                 f"--verify.receivers={receiver}", *labels)
        assert r.returncode == 0 and r.stdout.strip() == receiver, r.stdout + r.stderr
    cfg = yaml.safe_load(ALERTMANAGER_YML.read_text())
    assert cfg["route"]["group_by"] == ["alertname", "model", "dataset"]
    assert cfg["inhibit_rules"] == [{"source_matchers": ['alertname="CarefulDatasetRetireRecommended"'],
                                     "target_matchers": ['alertname="CarefulDatasetWatchLong"'],
                                     "equal": ["model", "dataset"]}]
    for rcv in cfg["receivers"]:
        for hook in rcv["webhook_configs"]:
            # the compose stack's logging receiver, not loopback (that is Alertmanager's own container)
            assert urllib.parse.urlsplit(hook["url"]).hostname == "webhook"


def test_alertmanager_template_links_the_evidence_page(tools, tmp_path) -> None:
    """careful.tmpl builds the `latest` link from the rule's evidence_path annotation (model and dataset labels)."""
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "rules" / "careful-monitor.rules.yml").read_text())
    paths = {r["alert"]: r["annotations"].get("evidence_path") for g in rules["groups"] for r in g["rules"]}
    expected = "/ui/models/{{ $labels.model }}/datasets/{{ $labels.dataset }}/latest"
    assert paths["CarefulDatasetRetireRecommended"] == paths["CarefulAnchorStale"] == expected
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"receiver": "pager", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": "CarefulDatasetRetireRecommended", "model": "m", "dataset": "s"},
         "annotations": {"evidence_path": "/ui/models/m/datasets/s/latest"}}],
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am"}))
    r = _run("amtool", "template", "render", f"--template.glob={ALERTMANAGER_YML.parent / 'careful.tmpl'}",
             f"--template.data={data}", "--template.text={{ template \"careful.evidence_links\" . }}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "CarefulDatasetRetireRecommended m/s: http://careful-monitor:9308/ui/models/m/datasets/s/latest"


def test_amtool_commands_in_the_runbooks_are_real(tools) -> None:
    commands = runbook_commands("amtool")
    assert ("silence", "add") in commands
    for subcommand, options in commands.items():
        r = _run("amtool", *subcommand, "--help")
        assert r.returncode == 0, f"docs/runbooks.md: amtool {' '.join(subcommand)}: {r.stderr}"
        for option in options:
            assert re.search(rf"(^|\s){re.escape(option)}[=\s]", r.stdout + r.stderr), \
                f"docs/runbooks.md: amtool {' '.join(subcommand)} has no {option}"


# --- the live demo -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served_demo(tmp_path_factory) -> str:
    """`careful-monitor demo --serve --port 0`; yields the host:port it prints, SIGTERM at the end."""
    tmp = tmp_path_factory.mktemp("ops-demo")
    out, err = tmp / "demo.out", tmp / "demo.err"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREFUL_MONITOR_")}
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen([sys.executable, "-m", "careful_monitor.cli", "demo", "--workdir", str(tmp / "demo"),
                                 "--port", "0", "--serve"], stdout=o, stderr=e, env=env, cwd=tmp)
    try:
        def address() -> str | None:
            if proc.poll() is not None:
                raise AssertionError(f"demo exited with {proc.returncode}:\n{_tail(out)}\n{_tail(err)}")
            m = re.search(r"metrics / API: http://([\d.]+:\d+)/metrics", out.read_text(errors="replace"))
            return m.group(1) if m else None

        host_port = _poll(address, 120, "the demo's metrics URL on stdout")
        _poll(lambda: b"retire_recommended" in _get(f"http://{host_port}/api/alerts"), 30,
              "the demo's alert in /api/alerts")
        yield host_port
    finally:
        _stop(proc)


def test_promtool_accepts_live_metrics(tools, served_demo) -> None:
    text = _get(f"http://{served_demo}/metrics")
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=60)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), (r.stdout + r.stderr).decode()


def test_the_fields_the_runbooks_read_are_served(served_demo) -> None:
    """The jq filters and alert fields docs/runbooks.md tells an operator to read exist in the live API."""
    text = (ROOT / "docs" / "runbooks.md").read_text()
    (window_fields,) = re.findall(r"windows\?last=5' \| jq '\.\[\] \| \{([^}]+)\}'", text)
    windows = json.loads(_get(f"http://{served_demo}/api/models/ticket-router/windows?last=5"))
    assert isinstance(windows, list) and len(windows) == 5
    for w in windows:
        missing = {f.strip() for f in window_fields.split(",")} - set(w)
        assert not missing, f"docs/runbooks.md reads {sorted(missing)} from /api/models/<model>/windows"
    alerts = json.loads(_get(f"http://{served_demo}/api/alerts"))
    named = {"alert_id", "evidence", "affinity", "share", "since_window", "model_versions", "dataset"}
    assert all(f"`{f}`" in text for f in named - {"alert_id"})
    assert alerts and all(named <= set(a) for a in alerts), alerts[:1]


def _start_prometheus(tmp: Path, config: dict) -> tuple[subprocess.Popen, str, Path]:
    port = _free_port()
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    log = tmp / "prometheus.log"
    with log.open("wb") as f:
        proc = subprocess.Popen(["prometheus", f"--config.file={tmp / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=f, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}", log


def _query(prom: str, expr: str) -> list[dict]:
    body = json.loads(_get(f"{prom}/api/v1/query?query={urllib.parse.quote(expr)}"))
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_every_dashboard_panel_returns_series(tools, served_demo, tmp_path) -> None:
    cfg = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
           "scrape_configs": [{"job_name": "careful-monitor", "static_configs": [{"targets": [served_demo]}]}]}
    proc, prom, log = _start_prometheus(tmp_path, cfg)
    try:
        _poll(lambda: any(r["value"][1] == "1" for r in _query(prom, 'up{job="careful-monitor"}')), 60,
              f"Prometheus scraping the demo\n{_tail(log)}")
        queries = [(d.name, title, expr) for d in DASHBOARDS for title, expr in dashboard_queries(d, SUBSTITUTIONS)]
        assert all("$" not in q[2] for q in queries), [q for q in queries if "$" in q[2]]
        # the skipped panels are exactly those reading a metric the demo does not export
        exported = _get(f"http://{served_demo}/metrics").decode()
        absent = {q[:2] for q in queries
                  if any(not re.search(rf"^{m}[{{ ]", exported, re.M) for m in promql_metric_names(q[2]))}
        assert absent == set(NOT_IN_DEMO), f"update NOT_IN_DEMO: {absent}"
        pending = [q for q in queries if q[:2] not in NOT_IN_DEMO]

        def all_answered() -> bool:
            # rate()/increase() need two scrapes of the demo, so a panel may be empty at first
            pending[:] = [q for q in pending if not _query(prom, q[2])]
            return not pending

        try:
            _poll(all_answered, 45, "series for every panel", interval=0.5)
        except AssertionError as exc:
            raise AssertionError(f"panels without series: {pending}") from exc
    finally:
        _stop(proc)


def _webhook_server() -> tuple[http.server.ThreadingHTTPServer, list[dict]]:
    received: list[dict] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, **json.loads(body)})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received


def test_retirement_alert_reaches_the_pager_through_prometheus_and_alertmanager(tools, served_demo, tmp_path) -> None:
    server, received = _webhook_server()
    hook = f"http://127.0.0.1:{server.server_address[1]}"
    am_port = _free_port()
    # test copy of the Alertmanager config: webhooks at this test's server, no waiting for a group to fill
    am_cfg = yaml.safe_load(ALERTMANAGER_YML.read_text())
    am_cfg["route"]["group_wait"] = "1s"
    for rcv in am_cfg["receivers"]:
        for wh in rcv["webhook_configs"]:
            wh["url"] = f"{hook}/{rcv['name']}"
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(am_cfg, sort_keys=False))
    # the real rules file, unchanged: CarefulDatasetRetireRecommended has no `for`, so nothing needs shortening
    assert "for" not in next(r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]
                             if r["alert"] == "CarefulDatasetRetireRecommended")
    prom_cfg = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    prom_cfg["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    prom_cfg["rule_files"] = [str(RULES)]
    prom_cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{am_port}"]
    prom_cfg["scrape_configs"][0]["static_configs"][0]["targets"] = [served_demo]
    am_log = tmp_path / "alertmanager.log"
    with am_log.open("wb") as f:
        am = subprocess.Popen([_alertmanager_binary(), f"--config.file={tmp_path / 'alertmanager.yml'}",
                               f"--storage.path={tmp_path / 'am'}", f"--web.listen-address=127.0.0.1:{am_port}",
                               "--cluster.listen-address="], stdout=f, stderr=subprocess.STDOUT)
    prom, prom_url, prom_log = None, "", tmp_path / "prometheus.log"
    try:
        _poll(lambda: _get(f"http://127.0.0.1:{am_port}/-/ready"), 30, f"Alertmanager ready\n{_tail(am_log)}")
        prom, prom_url, prom_log = _start_prometheus(tmp_path, prom_cfg)

        def paged() -> list[dict]:
            return [a for r in received if r["path"] == "/pager" for a in r["alerts"]
                    if a["labels"].get("alertname") == "CarefulDatasetRetireRecommended"
                    and a["labels"].get("dataset") == "tickets-synth-collapsed"]

        alert = _poll(paged, 60, f"the retirement page at the webhook\n{_tail(prom_log)}\n{_tail(am_log)}")[0]
        assert alert["status"] == "firing"
        assert alert["labels"]["severity"] == "page" and alert["labels"]["model"] == "ticket-router"
        assert alert["annotations"]["runbook_url"] == "docs/runbooks.md#carefuldatasetretirerecommended"
        assert "tickets-synth-collapsed" in alert["annotations"]["summary"]
        # nothing else pages: not the faithful set, not the anchor, and a ticket never goes to the pager
        firing = _query(prom_url, 'ALERTS{alertstate="firing",severity="page"}')
        assert {(r["metric"]["alertname"], r["metric"].get("dataset")) for r in firing} == \
            {("CarefulDatasetRetireRecommended", "tickets-synth-collapsed")}
        assert all(a["labels"]["severity"] == "page" for r in received if r["path"] == "/pager" for a in r["alerts"])
    finally:
        if prom is not None:
            _stop(prom)
        _stop(am)
        server.shutdown()
