"""HTTP authentication, write endpoints and server limits, over real HTTP against `demo --serve` (issue 11, item 10).

The demo is started with `CAREFUL_MONITOR_HTTP__AUTH_TOKEN_FILE` (the demo honours the environment's
HTTP settings) and a 2-second idle timeout, so slow-header connections are seen being closed.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.demo_server import served_demo, write_token

TOKEN = "test-token-0123456789abcdef"
COLLAPSED = "tickets-synth-collapsed"


def _call(url: str, *, method: str = "GET", token: str | None = TOKEN, body: bytes | None = None,
          ctype: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict | str, dict]:
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, raw, hdrs = r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        status, raw, hdrs = e.code, e.read(), dict(e.headers)
    try:
        return status, json.loads(raw), hdrs
    except ValueError:
        return status, raw.decode(errors="replace"), hdrs


def _post_json(url: str, doc: dict, **kw) -> tuple[int, dict | str, dict]:
    return _call(url, method="POST", body=json.dumps(doc).encode(), ctype="application/json", **kw)


def _post_form(url: str, doc: dict, **kw) -> tuple[int, dict | str, dict]:
    return _call(url, method="POST", body=urllib.parse.urlencode(doc).encode(),
                 ctype="application/x-www-form-urlencoded", **kw)


@pytest.fixture(scope="module")
def secured_demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("secured")
    env = {"CAREFUL_MONITOR_HTTP__AUTH_TOKEN_FILE": str(write_token(root, TOKEN)),
           "CAREFUL_MONITOR_HTTP__IDLE_TIMEOUT_SECONDS": "2"}
    with served_demo(root, env) as served:
        yield served


def test_api_needs_the_token_metrics_and_probes_stay_open(secured_demo) -> None:
    url, _, _ = secured_demo
    status, body, headers = _call(url + "/api/alerts", token=None)
    assert status == 401 and "Bearer" in headers.get("WWW-Authenticate", "") and "Bearer" in body["error"]
    assert _call(url + "/api/alerts", token="wrong-token-0123456789")[0] == 401
    assert _call(url + "/api/datasets", token=None)[0] == 401
    status, alerts, _ = _call(url + "/api/alerts")
    assert status == 200 and [a["dataset"] for a in alerts] == [COLLAPSED]
    for path in ("/metrics", "/healthz", "/readyz"):
        assert _call(url + path, token=None)[0] == 200, path


def test_ack_by_json_and_form_and_bad_fields(secured_demo) -> None:
    url, _, out = secured_demo
    alert_id = _call(url + "/api/alerts")[1][0]["alert_id"]
    ack = url + "/api/alerts/" + urllib.parse.quote(alert_id, safe="") + "/ack"
    assert _post_json(ack, {"by": "alice"}, token=None)[0] == 401  # writes always need authentication
    status, doc, _ = _post_json(ack, {"by": "alice"})
    assert status == 200 and doc["acked_by"] == "alice" and doc["alert_id"] == alert_id
    status, doc, _ = _post_form(ack, {"by": "bob"})
    assert status == 200 and doc["acked_by"] == "bob"
    assert [a["acked_by"] for a in _call(url + "/api/alerts")[1]] == ["bob"]
    for bad in ({"by": ""}, {"by": "   "}, {}, {"by": "x\x1b[31m"}, {"by": "x" * 201}, {"by": 5}):
        status, doc, _ = _post_json(ack, bad)
        assert status == 400, (bad, status, doc)
    assert _call(ack, method="POST", body=b"{nope", ctype="application/json")[0] == 400
    assert _call(ack, method="POST", body=b"<by/>", ctype="application/xml")[0] == 415
    assert _post_json(url + "/api/alerts/no%3Asuch/ack", {"by": "alice"})[0] == 404
    assert "acknowledged by 'bob'" in out.read_text()


def test_retire_endpoint_refuses_the_anchor_and_retires_a_synthetic_set(secured_demo) -> None:
    url, _, _ = secured_demo
    status, doc, _ = _post_json(url + "/api/datasets/tickets-real/retire", {"by": "alice", "reason": "old"})
    assert status == 409 and "--replace" in doc["error"]
    assert _post_json(url + f"/api/datasets/{COLLAPSED}/retire", {"by": "alice"})[0] == 400  # reason required
    assert _post_json(url + "/api/datasets/nope/retire", {"by": "alice", "reason": "x"})[0] == 404
    status, doc, _ = _post_form(url + f"/api/datasets/{COLLAPSED}/retire", {"by": "alice", "reason": "collapsed"})
    assert status == 200 and doc["state"] == "retired"
    status, doc, _ = _post_json(url + f"/api/datasets/{COLLAPSED}/retire", {"by": "alice", "reason": "again"})
    assert status == 409 and "is retired" in doc["error"]
    series = f'careful_monitor_dataset_state{{dataset="{COLLAPSED}",model="ticket-router"}} 4.0'
    deadline = time.monotonic() + 20  # the running demo polls the lifecycle every 2 s
    while series not in _call(url + "/metrics", token=None)[1]:
        assert time.monotonic() < deadline, "the live metric did not show the retirement"
        time.sleep(0.5)


def test_session_cookie_needs_the_csrf_token_for_writes(secured_demo) -> None:
    url, _, _ = secured_demo
    assert _post_form(url + "/ui/login", {"token": "wrong"}, token=None)[0] == 401
    status, doc, headers = _post_form(url + "/ui/login", {"token": TOKEN}, token=None)
    assert status == 200 and "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    cookie = headers["Set-Cookie"].split(";")[0]
    csrf = doc["csrf_token"]
    status, alerts, _ = _call(url + "/api/alerts", token=None, headers={"Cookie": cookie})
    assert status == 200
    ack = url + "/api/alerts/" + urllib.parse.quote(alerts[0]["alert_id"], safe="") + "/ack"
    status, doc, _ = _post_form(ack, {"by": "carol"}, token=None, headers={"Cookie": cookie})
    assert status == 403 and "CSRF" in doc["error"]
    assert _post_form(ack, {"by": "carol", "csrf_token": "forged"}, token=None, headers={"Cookie": cookie})[0] == 403
    status, doc, _ = _post_form(ack, {"by": "carol", "csrf_token": csrf}, token=None, headers={"Cookie": cookie})
    assert status == 200 and doc["acked_by"] == "carol"
    status, doc, _ = _post_json(ack, {"by": "dave"}, token=None, headers={"Cookie": cookie, "X-CSRF-Token": csrf})
    assert status == 200 and doc["acked_by"] == "dave"
    forged_cookie = cookie.rsplit(".", 1)[0] + ".00"
    assert _call(url + "/api/alerts", token=None, headers={"Cookie": forged_cookie})[0] == 401


def test_server_limits_body_headers_and_idle_connections(secured_demo) -> None:
    url, _, out = secured_demo
    host, port = url.removeprefix("http://").rsplit(":", 1)
    alert_id = _call(url + "/api/alerts")[1][0]["alert_id"]
    ack = url + "/api/alerts/" + urllib.parse.quote(alert_id, safe="") + "/ack"
    assert _post_json(ack, {"by": "x", "pad": "y" * 70_000})[0] == 413  # http.max_body_bytes 64 KiB
    many = {f"X-H{i}": "v" for i in range(80)}  # http.max_headers 64
    assert _call(url + "/healthz", token=None, headers=many)[0] == 400
    assert _call(url + "/healthz", token=None, headers={"X-Long": "v" * 9000})[0] == 400
    # slow-header (slowloris) connections are closed after http.idle_timeout_seconds (2 s here)
    socks = []
    for _ in range(20):
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        socks.append(s)
    t0 = time.monotonic()
    for s in socks:
        s.settimeout(max(1.0, 15 - (time.monotonic() - t0)))
        assert s.recv(1000) == b"", "a slow-header connection was kept open"
        s.close()
    assert time.monotonic() - t0 < 15
    assert _call(url + "/healthz", token=None)[0] == 200
    assert "Traceback" not in out.read_text()


def test_write_endpoints_are_disabled_without_a_token(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry

    from careful_monitor.runtime.http import ServerThread, make_app
    from careful_monitor.sinks.prometheus import Metrics
    from careful_monitor.store import Store

    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        server = ServerThread(make_app(Metrics(CollectorRegistry()), store), "127.0.0.1", 0).start()
        try:
            url = server.url
            assert _call(url + "/api/alerts", token=None)[0] == 200  # reads open without a token file
            status, doc, _ = _post_json(url + "/api/alerts/a/ack", {"by": "alice"}, token=None)
            assert status == 403 and "http.auth_token_file" in doc["error"]
            assert _post_form(url + "/ui/login", {"token": "x"}, token=None)[0] == 403
        finally:
            server.stop()


def test_token_file_errors_name_the_key(tmp_path: Path) -> None:
    from careful_monitor.errors import ConfigError
    from careful_monitor.runtime.auth import HttpAuth

    with pytest.raises(ConfigError, match=r"http\.auth_token_file.*cannot read"):
        HttpAuth.from_file(str(tmp_path / "missing"))
    short = tmp_path / "short"
    short.write_text("abc\n")
    with pytest.raises(ConfigError, match="at least 16"):
        HttpAuth.from_file(str(short))
    with pytest.raises(ConfigError, match=r"http\.protect_metrics"):
        HttpAuth.from_file(None, protect_metrics=True)
    with pytest.raises(ConfigError, match="not a regular file"):
        HttpAuth.from_file(str(tmp_path))


def test_protect_metrics_closes_the_probes_too(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry

    from careful_monitor.runtime.auth import HttpAuth
    from careful_monitor.runtime.http import ServerThread, make_app
    from careful_monitor.sinks.prometheus import Metrics
    from careful_monitor.store import Store

    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        app = make_app(Metrics(CollectorRegistry()), store, auth=HttpAuth(TOKEN, protect_metrics=True))
        server = ServerThread(app, "127.0.0.1", 0).start()
        try:
            for path in ("/metrics", "/healthz", "/readyz", "/api/alerts"):
                assert _call(server.url + path, token=None)[0] == 401, path
                assert _call(server.url + path)[0] == 200, path
        finally:
            server.stop()
