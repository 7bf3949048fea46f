"""The HTTP server: /metrics, /healthz, /readyz, the JSON API and its two write endpoints, on aiohttp.

`ServerThread` runs it beside a synchronous command (replay, demo, run) on its own event loop.
Authentication (`runtime.auth`) is one middleware; the server limits header size, header count,
body size and idle time (`http.*`), and logs a client's error as one line.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_exceptions import HTTPException
from prometheus_client import CONTENT_TYPE_LATEST

from careful_monitor.contracts import public_card
from careful_monitor.errors import HttpBindError, NotFoundError, RegistryError
from careful_monitor.runtime.auth import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, HttpAuth
from careful_monitor.sinks.prometheus import Metrics
from careful_monitor.store import Store

if TYPE_CHECKING:
    from careful_monitor.config import Config, HttpConfig

log = logging.getLogger(__name__)


def _json(data, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY),
                        content_type="application/json", headers=headers)


def _error(status: int, message: str, **extra: Any) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="careful-monitor"'} if status == 401 else None
    return _json({"error": message, **extra}, status, headers)


#: the application's HttpAuth, for pages that render forms (the CSRF token)
AUTH_KEY = web.AppKey("auth", HttpAuth)
#: the longest `by` and `reason` a write endpoint accepts (the store's columns hold 200 / any)
MAX_BY, MAX_REASON = 200, 2000


async def _fields(request: web.Request) -> dict[str, str]:
    """The body's fields, from JSON or a form (url-encoded or multipart); cached on the request.

    Raises HTTPBadRequest for another content type, bad JSON, or a non-string field.
    """
    if "fields" in request:
        return request["fields"]
    ctype = request.content_type
    if ctype == "application/json":
        try:
            doc = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            raise web.HTTPBadRequest(text='{"error": "the body is not valid JSON"}',
                                     content_type="application/json") from None
        if not isinstance(doc, dict):
            raise web.HTTPBadRequest(text='{"error": "the body must be a JSON object"}',
                                     content_type="application/json")
        raw: dict[str, Any] = doc
    elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data", ""):
        raw = dict(await request.post())
    else:
        raise web.HTTPUnsupportedMediaType(text='{"error": "send application/json or a form"}',
                                           content_type="application/json")
    if not all(isinstance(v, str) for v in raw.values()):
        raise web.HTTPBadRequest(text='{"error": "every field must be a string"}', content_type="application/json")
    request["fields"] = raw
    return raw


def _text_field(fields: dict[str, str], name: str, limit: int) -> str:
    """A required, non-blank, printable field of at most `limit` characters (HTTPBadRequest otherwise)."""
    value = fields.get(name, "")
    problem = ("is required and must not be blank" if not value.strip() else
               f"is longer than {limit} characters" if len(value) > limit else
               "must not contain control characters" if not value.isprintable() else None)
    if problem:
        raise web.HTTPBadRequest(text=orjson.dumps({"error": f"field '{name}' {problem}"}).decode(),
                                 content_type="application/json")
    return value.strip()


def _guard(auth: HttpAuth) -> Callable[..., Any]:
    """The authentication middleware (see `careful_monitor.runtime.auth` for the rules)."""
    open_paths = ("/metrics", "/healthz", "/readyz")

    @web.middleware
    async def guard(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        path = request.path
        write = request.method not in ("GET", "HEAD", "OPTIONS")
        if path in ("/ui/login", "/ui/static/style.css") or (path in open_paths and not auth.protect_metrics):
            return await handler(request)
        if write and not auth.enabled:
            return _error(403, "write endpoints are disabled: set http.auth_token_file to enable them")
        if not auth.enabled:
            return await handler(request)
        if auth.bearer_ok(request.headers.get("Authorization")):
            return await handler(request)
        sid = auth.session_id(request.cookies.get(SESSION_COOKIE))
        if sid is None and not write and (path == "/ui" or path.startswith("/ui/")):
            from careful_monitor.ui.routes import login_redirect

            raise login_redirect(request.path_qs)  # a browser: to the login form, and back afterwards
        if sid is None:
            log.info("http: 401 %s %s from %s (no valid bearer token or session)", request.method,
                     path[:200], request.remote)
            return _error(401, "authentication required: send 'Authorization: Bearer <token>' "
                               "(the token in http.auth_token_file)")
        if write:
            token = request.headers.get(CSRF_HEADER) or (await _fields(request)).get(CSRF_FIELD)
            if not auth.csrf_ok(sid, token):
                log.info("http: 403 %s %s from %s (missing or wrong CSRF token)", request.method, path[:200],
                         request.remote)
                return _error(403, f"a session needs the CSRF token ({CSRF_FIELD} field or {CSRF_HEADER} header)")
        request["session"] = sid
        return await handler(request)

    return guard


def _dataset_doc(rec) -> dict:
    return {"name": rec.name, "role": rec.role, "anchored_by": rec.anchored_by, "state": rec.state,
            "n_rows": rec.n_rows, "data_sha256": rec.data_sha256, "card": public_card(rec.card),
            "registered_at": rec.registered_at.isoformat(), "updated_at": rec.updated_at.isoformat()}


def make_app(metrics: Metrics, store: Store, *, is_ready: Callable[[], bool] = lambda: True,
             models: Callable[[], list[str]] = lambda: [], auth: HttpAuth | None = None,
             cfg: Config | None = None, max_body_bytes: int = 65_536,
             not_ready_reason: Callable[[], str | None] = lambda: None) -> web.Application:
    """The application; `cfg` (when given) names the models and is checked before a retirement.

    `not_ready_reason` says why `is_ready` is false (served as `reason` in the 503 body of /readyz).
    """
    auth = auth or HttpAuth()
    if cfg is not None:
        models = lambda: list(cfg.models)  # noqa: E731
    async def metrics_handler(_: web.Request) -> web.Response:
        body = await asyncio.to_thread(metrics.exposition)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return _json({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        store_ok = await asyncio.to_thread(store.ping)
        ready = store_ok and is_ready()
        metrics.ready.set(1 if ready else 0)
        if ready:
            return _json({"ready": True, "store": store_ok})
        doc: dict[str, Any] = {"ready": False, "store": store_ok}
        reason = not_ready_reason() if store_ok else "the store is unreachable"
        if reason:
            doc["reason"] = reason
        return _json(doc, 503)

    async def alerts(req: web.Request) -> web.Response:
        q = req.query
        rows = await asyncio.to_thread(store.list_alerts, state=q.get("state"), model=q.get("model"),
                                       dataset=q.get("dataset"))
        return _json(rows)

    async def datasets(_: web.Request) -> web.Response:
        rows = await asyncio.to_thread(store.list_datasets)
        return _json([_dataset_doc(r) for r in rows])

    async def windows(req: web.Request) -> web.Response:
        model = req.match_info["model"]
        known = models()
        if known and model not in known:
            return web.Response(status=404, body=orjson.dumps({"error": f"unknown model {model!r}", "models": known}),
                                content_type="application/json")
        try:
            last = max(1, min(int(req.query.get("last", "10")), 1000))
        except ValueError:
            return web.Response(status=400, body=b'{"error": "last must be an integer"}',
                                content_type="application/json")
        rows = await asyncio.to_thread(store.last_windows, model, last)
        return _json(rows)

    async def lineage(req: web.Request) -> web.Response:
        from careful_monitor.lineage import lineage_doc

        doc = await asyncio.to_thread(lineage_doc, store, req.match_info["model"])
        return _json(doc)  # the same JSON as `lineage show --json`, `versions: []` for a model with none recorded

    def answer(fields: dict[str, str], doc: Any, done: str) -> web.Response:
        """JSON for an API client; a form with `next` (the evidence pages) is sent back to its page."""
        target = fields.get("next")
        if target:
            from careful_monitor.ui.routes import safe_next

            raise web.HTTPSeeOther(safe_next(target) + f"?done={done}")
        return _json(doc)

    async def isolation(_: web.Request) -> web.Response:
        from careful_monitor.isolation import isolation_doc

        return _json(await asyncio.to_thread(isolation_doc, store))  # as `datasets isolation --json` stores it

    async def ack(req: web.Request) -> web.Response:
        fields = await _fields(req)
        by = _text_field(fields, "by", MAX_BY)
        alert_id = req.match_info["alert_id"]
        try:
            doc = await asyncio.to_thread(store.ack_alert, alert_id, by=by, at=datetime.now(UTC))
        except NotFoundError as exc:
            return _error(404, str(exc))
        log.info("http: alert %s acknowledged by %r", alert_id, by)
        return answer(fields, doc, "acked")

    async def retire(req: web.Request) -> web.Response:
        from careful_monitor.registry import check_retire

        fields = await _fields(req)
        by, reason = _text_field(fields, "by", MAX_BY), _text_field(fields, "reason", MAX_REASON)
        name = req.match_info["name"]
        try:
            if cfg is not None:
                check_retire(cfg, name)
            rec = await asyncio.to_thread(store.set_dataset_state, name, "retire", by=by, reason=reason)
        except NotFoundError as exc:
            return _error(404, str(exc))
        except RegistryError as exc:
            return _error(409, str(exc))
        log.info("http: dataset %s retired by %r (%s)", name, by, reason)
        return answer(fields, _dataset_doc(rec), "retired")

    async def login(req: web.Request) -> web.Response:
        if not auth.enabled:
            return _error(403, "no http.auth_token_file is configured: there is nothing to log in to")
        fields = await _fields(req)
        browser = "text/html" in req.headers.get("Accept", "")
        if not auth.bearer_ok("Bearer " + fields.get("token", "")):
            log.info("http: 401 POST /ui/login from %s (wrong token)", req.remote)
            if browser:
                from careful_monitor.ui.pages import render
                from careful_monitor.ui.routes import safe_next

                return web.Response(status=401, content_type="text/html", text=render(
                    "login.html.j2", report=False, inline_css=None, session=False, csrf_token="", enabled=True,
                    error="Wrong token.", next=safe_next(fields.get("next"))))
            return _error(401, "wrong token")
        cookie = auth.new_session()
        if browser:
            from careful_monitor.ui.routes import safe_next

            redirect = web.HTTPSeeOther(safe_next(fields.get("next")))
            redirect.set_cookie(SESSION_COOKIE, cookie, httponly=True, samesite="Strict", path="/")
            raise redirect
        resp = _json({"csrf_token": auth.csrf_for(auth.session_id(cookie) or "")})
        resp.set_cookie(SESSION_COOKIE, cookie, httponly=True, samesite="Strict", path="/")
        return resp

    app = web.Application(middlewares=[_guard(auth)], client_max_size=max_body_bytes)
    app[AUTH_KEY] = auth
    app.add_routes([web.get("/metrics", metrics_handler), web.get("/healthz", healthz), web.get("/readyz", readyz),
                    web.get("/api/alerts", alerts), web.get("/api/datasets", datasets),
                    web.get("/api/models/{model}/windows", windows),
                    web.get("/api/models/{model}/lineage", lineage), web.get("/api/isolation", isolation),
                    web.post("/api/alerts/{alert_id}/ack", ack),
                    web.post("/api/datasets/{name}/retire", retire),
                    web.post("/ui/login", login)])
    from careful_monitor.ui.routes import add_routes

    add_routes(app, store, auth, cfg)
    return app


class _ServerLog:
    """aiohttp's server logger, with a client's malformed request as one WARNING line instead of an ERROR traceback.

    aiohttp logs every request it cannot parse with `logger.exception` (log flooding by any client);
    a failure in our own handler keeps its full traceback at ERROR.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("aiohttp.server")

    def debug(self, msg: str, *args: object, **kw: Any) -> None:
        kw.pop("exc_info", None)
        self._log.debug(msg, *args, **kw)

    def exception(self, msg: str, *args: object, exc_info: Any = True, **kw: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(exc, HttpProcessingError) and not isinstance(exc, HTTPException):
            self._log.warning("%s: %s (%s)", msg % args if args else msg, type(exc).__name__,
                              str(exc).replace("\n", " ")[:200])
        else:
            self._log.error(msg, *args, exc_info=exc_info, **kw)


class ServerThread:
    """An aiohttp server on its own loop in a daemon thread; `stop()` shuts it down cleanly."""

    def __init__(self, app: web.Application, host: str, port: int, *, limits: HttpConfig | None = None) -> None:
        self.app, self.host, self.port = app, host, port
        self._handler_args: dict[str, Any] = {} if limits is None else {
            "keepalive_timeout": limits.idle_timeout_seconds, "max_line_size": limits.max_header_bytes,
            "max_field_size": limits.max_header_bytes, "max_headers": limits.max_headers}
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, name="careful-http", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            # keepalive_timeout also closes a connection that never completes its headers (slowloris)
            self._runner = web.AppRunner(self.app, access_log=None, logger=_ServerLog(), **self._handler_args)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, self.host, self.port)
            self._loop.run_until_complete(site.start())
            addresses = self._runner.addresses  # the bound port when 0 was asked
            if addresses:
                self.port = addresses[0][1]
        except BaseException as exc:  # reported to the caller
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def start(self) -> ServerThread:
        self._thread.start()
        self._started.wait(30)
        if self._error is not None:
            err = self._error
            if isinstance(err, OSError) and err.errno == errno.EADDRINUSE:
                raise HttpBindError(f"port {self.port} on {self.host} is in use: pass --port 0 or another port")
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise HttpBindError(f"cannot serve HTTP on {self.host}:{self.port}: {reason}")
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
