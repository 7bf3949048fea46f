"""The HTTP server: /metrics, /healthz, /readyz and the read-only JSON API, on aiohttp.

`ServerThread` runs it beside a synchronous command (replay, demo, run) on its own event loop.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import sys
import threading
from collections.abc import Callable
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_exceptions import HTTPException
from prometheus_client import CONTENT_TYPE_LATEST

from careful_monitor.errors import HttpBindError
from careful_monitor.sinks.prometheus import Metrics
from careful_monitor.store import Store

log = logging.getLogger(__name__)


def _json(data) -> web.Response:
    return web.Response(body=orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY), content_type="application/json")


def _public_card(card: dict) -> dict:
    """The card as served: `data` relative to the card's folder; an absolute one (older records) as its name."""
    data = card.get("data")
    if isinstance(data, str) and (PurePosixPath(data).is_absolute() or PureWindowsPath(data).is_absolute()):
        return {**card, "data": PurePosixPath(data.replace("\\", "/")).name}
    return card


def _dataset_doc(rec) -> dict:
    return {"name": rec.name, "role": rec.role, "anchored_by": rec.anchored_by, "state": rec.state,
            "n_rows": rec.n_rows, "data_sha256": rec.data_sha256, "card": _public_card(rec.card),
            "registered_at": rec.registered_at.isoformat(), "updated_at": rec.updated_at.isoformat()}


def make_app(metrics: Metrics, store: Store, *, is_ready: Callable[[], bool] = lambda: True,
             models: Callable[[], list[str]] = lambda: []) -> web.Application:
    async def metrics_handler(_: web.Request) -> web.Response:
        body = await asyncio.to_thread(metrics.exposition)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return _json({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        store_ok = await asyncio.to_thread(store.ping)
        ready = store_ok and is_ready()
        metrics.ready.set(1 if ready else 0)
        return _json({"ready": ready, "store": store_ok}) if ready else web.Response(
            status=503, body=orjson.dumps({"ready": False, "store": store_ok}), content_type="application/json")

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

    app = web.Application()
    app.add_routes([web.get("/metrics", metrics_handler), web.get("/healthz", healthz), web.get("/readyz", readyz),
                    web.get("/api/alerts", alerts), web.get("/api/datasets", datasets),
                    web.get("/api/models/{model}/windows", windows),
                    web.get("/api/models/{model}/lineage", lineage)])
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

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self.app, self.host, self.port = app, host, port
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, name="careful-http", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._runner = web.AppRunner(self.app, access_log=None, logger=_ServerLog())
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
