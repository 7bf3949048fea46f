"""Evidence without a browser: `alerts show`, `report` (HTML and Markdown), stored plot data, escaping (issue 12).

The real-browser checks (Chromium, axe, the forms) are in tests/browser/. Here the demo's store is
read by the CLI and by the pages rendered in-process over real HTTP.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

ALERT = "ticket-router:tickets-synth-collapsed:10:retire_recommended"
HOSTILE = '<script>window.__pwned=1</script><b>x</b>"\'&'


def _cm(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREFUL_MONITOR_")}
    return subprocess.run([sys.executable, "-m", "careful_monitor.cli", *args], capture_output=True, text=True,
                          env=env, timeout=300, cwd=cwd, check=False)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str]:
    work = tmp_path_factory.mktemp("evidence") / "demo"
    r = _cm("demo", "--workdir", str(work), "--port", "0")
    assert r.returncode == 0, r.stderr
    return work / "config.yaml", r.stdout


def test_alerts_show_prints_the_demos_explanation_and_the_page_link(demo) -> None:
    cfg, demo_out = demo
    r = _cm("alerts", "show", "--config", str(cfg), ALERT)
    assert r.returncode == 0, r.stderr
    shown = r.stdout.splitlines()
    printed = [line[3:] for line in demo_out.splitlines() if line.startswith("   ")]
    start = printed.index(f"ALERT {ALERT}")
    assert shown[:3] == printed[start:start + 3]  # the same words as the demo (shared explain())
    assert any(line.startswith("  action: retire tickets-synth-collapsed") for line in shown)
    assert shown[-1] == "  page: http://127.0.0.1:9308/ui/alerts/" + urllib.parse.quote(ALERT, safe="")
    assert "evidence page: http://127.0.0.1:" in demo_out  # the demo prints its alert's page
    missing = _cm("alerts", "show", "--config", str(cfg), "no:such:alert")
    assert missing.returncode == 2 and "no alert with id" in missing.stderr


def _plots(html: str) -> dict[str, list[str]]:
    sections = re.findall(r'<section class="evidence-feature" data-feature="([^"]+)".*?</section>', html, re.S)
    out = {}
    for feature in sections:
        body = html.split(f'data-feature="{feature}"', 1)[1].split("</section>", 1)[0]
        out[feature] = re.findall(r'<g class="series" data-series="(\w+)"', body)
    return out


def test_report_is_one_self_contained_file_with_three_series_per_feature(demo, tmp_path: Path) -> None:
    cfg, _ = demo
    out = tmp_path / "alert.html"
    r = _cm("report", "--config", str(cfg), ALERT, "-o", str(out))
    assert r.returncode == 0 and "wrote" in r.stdout, r.stderr
    html = out.read_text()
    plots = _plots(html)
    assert set(plots) == {"inputs.amount", "inputs.country", "inputs.text", "outputs.probs", "outputs.score"}
    assert all(series == ["anchor", "window", "synthetic"] for series in plots.values()), plots
    # self-contained: the stylesheet inline, no script, no link to another resource, no form
    assert "<style>" in html and "<script" not in html and "<form" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    for section in ("explanation", "trend", "timeline", "card", "lineage", "audit", "runbook"):
        assert f'id="{section}"' in html, section
    assert "CarefulDatasetRetireRecommended" in html and "trend-plot" in html
    md = tmp_path / "alert.md"
    assert _cm("report", "--config", str(cfg), ALERT, "-o", str(md), "--format", "md").returncode == 0
    text = md.read_text()
    joint = text.count("### joint (")  # one trend per joint test (mmd, joint) in the evidence
    assert text.startswith(f"# Alert {ALERT}") and joint >= 1
    assert text.count("data:image/svg+xml;base64,") == 5 + joint


def test_plots_survive_pruning_the_window_rows(demo, tmp_path: Path) -> None:
    cfg, _ = demo
    from careful_monitor.config import load_config
    from careful_monitor.store import Store

    db = tmp_path / "pruned.db"
    url = load_config(cfg, environ={}).store_url
    src = Path(url.removeprefix("sqlite:///"))
    db.write_bytes(src.read_bytes())
    with Store(f"sqlite:///{db}") as store:
        windows = store.last_windows("ticket-router", 100)
        counts_bytes = [len(json.dumps(w["counts"])) for w in windows]
        assert max(counts_bytes) < 8_000, counts_bytes  # what the window result keeps for the plots
        before = store.alert_plots(ALERT)
        store.prune(retention_days=1, now=datetime.now(UTC) + timedelta(days=3650))
        assert store.count_windows("ticket-router") == 0
        assert store.alert_plots(ALERT) == before and len(before) == 5
        from careful_monitor.cli.report import render_report

        html = render_report(store, load_config(cfg, environ={}), ALERT, "html")
    assert all(s == ["anchor", "window", "synthetic"] for s in _plots(html).values()) and _plots(html)
    assert "no window rows are kept" in html  # the trend needs the pruned rows, and says so


def test_user_strings_are_escaped_on_every_page(demo, tmp_path: Path) -> None:
    cfg, _ = demo
    from prometheus_client import CollectorRegistry

    from careful_monitor.config import load_config
    from careful_monitor.runtime.http import ServerThread, make_app
    from careful_monitor.sinks.prometheus import Metrics
    from careful_monitor.store import Store

    conf = load_config(cfg, environ={})
    db = tmp_path / "hostile.db"
    db.write_bytes(Path(conf.store_url.removeprefix("sqlite:///")).read_bytes())
    with Store(f"sqlite:///{db}") as store:
        store.ack_alert(ALERT, by=HOSTILE, at=datetime.now(UTC))
        store.set_dataset_state("tickets-synth-collapsed", "review", by=HOSTILE, reason=HOSTILE)
        server = ServerThread(make_app(Metrics(CollectorRegistry()), store, cfg=conf), "127.0.0.1", 0).start()
        try:
            quoted = urllib.parse.quote(ALERT, safe="")
            pages = {}
            for path in ("/ui/", f"/ui/alerts/{quoted}", "/ui/datasets/tickets-synth-collapsed",
                         "/ui/models/ticket-router", "/ui/?model=%3Cscript%3E"):
                with urllib.request.urlopen(server.url + path, timeout=10) as resp:
                    pages[path] = html = resp.read().decode()
                    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
                assert "<script" not in html and "<b>x</b>" not in html, path
            escaped = "&lt;script&gt;window.__pwned=1&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;"
            assert escaped in pages["/ui/"]  # the ack's `by` in the list
            # the ack's by, and the audit log's by and reason on the alert and dataset pages
            assert pages[f"/ui/alerts/{quoted}"].count(escaped) >= 3
            assert pages["/ui/datasets/tickets-synth-collapsed"].count(escaped) >= 2
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(server.url + "/ui/alerts/%3Cscript%3E", timeout=10)
            assert err.value.code == 404 and b"<script" not in err.value.read()
            latest = server.url + "/ui/models/ticket-router/datasets/tickets-synth-collapsed/latest"
            with urllib.request.urlopen(latest, timeout=10) as resp:  # follows the redirect
                assert urllib.parse.unquote(resp.url).endswith(f"/ui/alerts/{ALERT}")
        finally:
            server.stop()
