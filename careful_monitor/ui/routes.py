"""The `/ui/` routes on the existing aiohttp server (same port as /metrics); see `careful_monitor.ui.pages`.

Pages are rendered in a worker thread (the store is synchronous). Write actions are the API's
(`POST /api/alerts/<id>/ack`, `POST /api/datasets/<name>/retire`): the forms post there with a
`next` field, and the API answers a form with a redirect back to the page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from careful_monitor.errors import NotFoundError
from careful_monitor.runtime.auth import HttpAuth
from careful_monitor.ui import pages

if TYPE_CHECKING:
    from careful_monitor.config import Config
    from careful_monitor.store import Store

DISABLED = ("Write actions are disabled: no http.auth_token_file is configured "
            "(use `careful-monitor alerts ack` / `datasets retire`, or configure a token).")


def safe_next(value: str | None, default: str = "/ui/") -> str:
    """A redirect target: only a path of this server's pages (never another host)."""
    if value and value.startswith("/ui/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8",
                        headers={"Content-Security-Policy": "default-src 'none'; style-src 'self' 'unsafe-inline'; "
                                                            "img-src 'self' data:; form-action 'self'",
                                 "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"})


def add_routes(app: web.Application, store: Store, auth: HttpAuth, cfg: Config | None) -> None:
    def common(req: web.Request) -> dict[str, Any]:
        sid = req.get("session")
        return {"report": False, "inline_css": None, "session": sid is not None,
                "csrf_token": auth.csrf_for(sid) if sid else "",
                "writable": auth.enabled, "disabled_reason": DISABLED}

    async def page(req: web.Request, template: str, build: Callable[[], dict[str, Any]]) -> web.Response:
        def work() -> str:
            return pages.render(template, **common(req), **build())

        try:
            return _html(await asyncio.to_thread(work))
        except NotFoundError as exc:
            return _html(pages.render("error.html.j2", **common(req), status=404, message=str(exc)), 404)

    async def alerts(req: web.Request) -> web.Response:
        q = req.query
        return await page(req, "alerts.html.j2", lambda: pages.alerts_context(
            store, model=q.get("model") or None, dataset=q.get("dataset") or None, state=q.get("state") or None))

    async def alert(req: web.Request) -> web.Response:
        alert_id = req.match_info["alert_id"]
        flash = {"acked": "Acknowledged.", "retired": "Dataset retired."}.get(req.query.get("done", ""))
        return await page(req, "alert.html.j2",
                          lambda: {**pages.alert_context(store, alert_id, cfg), "flash": flash})

    async def model(req: web.Request) -> web.Response:
        name = req.match_info["model"]
        if cfg is not None and name not in cfg.models:
            return _html(pages.render("error.html.j2", **common(req), status=404,
                                      message=f"unknown model '{name}'"), 404)
        return await page(req, "model.html.j2", lambda: pages.model_context(store, name))

    async def dataset(req: web.Request) -> web.Response:
        name = req.match_info["name"]
        return await page(req, "dataset.html.j2", lambda: pages.dataset_context(store, name, cfg))

    async def latest(req: web.Request) -> web.Response:
        m, d = req.match_info["model"], req.match_info["dataset"]
        rows = await asyncio.to_thread(store.list_alerts, model=m, dataset=d)
        if not rows:
            return _html(pages.render("error.html.j2", **common(req), status=404,
                                      message=f"no alert for model '{m}' and dataset '{d}'"), 404)
        newest = max(rows, key=lambda a: (a["window"], a["created_at"]))
        raise web.HTTPSeeOther(pages.alert_href(newest["alert_id"]))

    async def login_form(req: web.Request) -> web.Response:
        return _html(pages.render("login.html.j2", **common(req), enabled=auth.enabled, error=None,
                                  next=safe_next(req.query.get("next"))))

    async def logout(req: web.Request) -> web.Response:
        resp = web.HTTPSeeOther("/ui/login")
        resp.del_cookie("careful_session", path="/")
        raise resp

    async def static(_: web.Request) -> web.Response:
        return web.Response(text=pages.stylesheet(), content_type="text/css",
                            headers={"Cache-Control": "max-age=3600"})

    async def index_redirect(_: web.Request) -> web.Response:
        raise web.HTTPSeeOther("/ui/")

    app.add_routes([web.get("/ui", index_redirect), web.get("/ui/", alerts), web.get("/ui/login", login_form),
                    web.post("/ui/logout", logout), web.get("/ui/static/style.css", static),
                    web.get("/ui/alerts/{alert_id}", alert), web.get("/ui/models/{model}", model),
                    web.get("/ui/models/{model}/datasets/{dataset}/latest", latest),
                    web.get("/ui/datasets/{name}", dataset)])


def login_redirect(path_qs: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther("/ui/login?next=" + quote(safe_next(path_qs), safe=""))
