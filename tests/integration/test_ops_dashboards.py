"""Grafana dashboards: schema checks, and every panel's PromQL run on a real Prometheus scraping the demo."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml

from tests.integration.test_ops_prometheus import _free_port, _get, served_demo, tools  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
SUBST = {"$model": "ticket-router", "$dataset": "tickets-synth-collapsed|tickets-synth-faithful|tickets-real",
         "$__rate_interval": "1m", "$__interval": "15s"}
#: exported only by the Kafka runtime, not by the demo's file replay
NOT_IN_DEMO = {"careful_monitor_consumer_lag"}


def dashboard_queries(path: Path, subst: dict[str, str] = SUBST) -> list[tuple[str, str]]:
    out = []
    for p in json.loads(path.read_text())["panels"]:
        for t in p["targets"]:
            expr = t["expr"]
            for k in sorted(subst, key=len, reverse=True):
                expr = expr.replace(k, subst[k])
            out.append((p["title"], expr))
    return out


def _exported_metric_names() -> set[str]:
    src = (ROOT / "careful_monitor" / "sinks" / "prometheus.py").read_text()
    names = set()
    for kind, name in re.findall(r'(Counter|Gauge|Histogram)\(P \+ "([a-z_]+)"', src):
        full = "careful_monitor_" + name
        names |= {full + "_total"} if kind == "Counter" else {full + s for s in ("_bucket", "_sum", "_count")} if kind == "Histogram" else {full}
    return names


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_schema(path: Path) -> None:
    d = json.loads(path.read_text())
    assert d["schemaVersion"] >= 36 and d["uid"] and d["title"]
    assert [i["name"] for i in d["__inputs"]] == ["DS_PROMETHEUS"]
    variables = {v["name"] for v in d["templating"]["list"]}
    assert {"DS_PROMETHEUS", "model"} <= variables
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    exported = _exported_metric_names()
    for p in d["panels"]:
        assert {"x", "y", "w", "h"} <= set(p["gridPos"]) and p["description"]
        assert p["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        for t in p["targets"]:
            assert t["refId"] and t["datasource"]["uid"] == "${DS_PROMETHEUS}"
            for metric in re.findall(r"careful_monitor_[a-z_]+", t["expr"]):
                assert metric in exported, f"{p['title']}: {metric} is not exported"
            for var in re.findall(r"\$(\w+)", t["expr"]):
                assert var in variables or var.startswith("__"), f"{p['title']}: ${var} undefined"
    provisioning = yaml.safe_load((ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "careful.yml").read_text())
    assert provisioning["providers"][0]["type"] == "file"


def test_every_panel_query_returns_data(tools, served_demo, tmp_path) -> None:  # noqa: F811 - fixture
    port = _free_port()
    cfg = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
           "scrape_configs": [{"job_name": "careful-monitor", "static_configs": [{"targets": [served_demo]}]}]}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        queries = [(d.name, title, expr) for d in DASHBOARDS for title, expr in dashboard_queries(d)]
        pending = [q for q in queries if not any(m in q[2] for m in NOT_IN_DEMO)]
        assert len(pending) >= len(queries) - 1
        deadline = time.monotonic() + 90
        while pending and time.monotonic() < deadline:
            still = []
            for q in pending:
                try:
                    body = json.loads(_get(f"http://127.0.0.1:{port}/api/v1/query?query={urllib.parse.quote(q[2])}"))
                    assert body["status"] == "success", body
                    if not body["data"]["result"]:
                        still.append(q)
                except OSError:
                    still.append(q)
            pending = still
            time.sleep(1)
        assert not pending, f"panels without data: {pending}"
    finally:
        proc.terminate()
        proc.wait(30)
