"""The composition root: `build(cfg)` wires the store, metrics, pipeline and HTTP server once.

Every command that runs the engine (`replay`, `run`, `demo`, `bench`) gets its adapters here; the
commands only parse flags and render. The Kafka service is made by `runtime.make_service` from an
App's store and metrics, and served with `App.serve(is_ready=...)`.

Adapters are imported when first needed, so commands that only open the store (`alerts list`,
`db prune`) start without the engine, aiohttp or prometheus_client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from careful_monitor.config import Config
    from careful_monitor.runtime.http import ServerThread
    from careful_monitor.runtime.pipeline import Pipeline
    from careful_monitor.sinks.deadletters import DeadLetterFile
    from careful_monitor.sinks.prometheus import Metrics
    from careful_monitor.store import Store


def open_store(cfg: Config) -> Store:
    """The configured store, migrated first; with `store.auto_migrate: false` a behind schema is refused.

    The refusal (a StoreError) says to run `careful-monitor db upgrade`.
    """
    from careful_monitor.store import Store

    return Store(cfg.store_url, auto_migrate=cfg.store.auto_migrate)


def _loopback(host: str) -> bool:
    """True for a loopback address or `localhost` (the only hosts safe without a token)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class App:
    """What a running command holds; `close()` (or leaving a `with`) releases it all."""

    cfg: Config
    store: Store
    metrics: Metrics
    dead_letters: DeadLetterFile | None = None
    server: ServerThread | None = None
    _pipeline: Pipeline | None = field(default=None, repr=False)

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline of `replay`, the demo and the benchmarks (not built for the Kafka service)."""
        if self._pipeline is None:
            raise RuntimeError("this App was built with pipeline=False")
        return self._pipeline

    def serve(self, port: int | None = None, *, is_ready: Callable[[], bool] = lambda: True,
              not_ready_reason: Callable[[], str | None] = lambda: None) -> ServerThread:
        """Serve /metrics, /healthz, /readyz and /api on http.host, port `port` (default http.port; 0 = any free).

        Raises OSError when the port cannot be bound.
        """
        import logging

        from careful_monitor.runtime.auth import HttpAuth, warn_if_readable
        from careful_monitor.runtime.http import ServerThread, make_app

        http = self.cfg.http
        auth = HttpAuth.from_file(http.auth_token_file, protect_metrics=http.protect_metrics)
        log = logging.getLogger("careful_monitor.http")
        if (warning := warn_if_readable(http.auth_token_file)) is not None:
            log.warning(warning)
        if not auth.enabled and not _loopback(http.host):
            log.warning("http.host is %s but no http.auth_token_file is set: /api is open to the network and "
                        "write endpoints are disabled; set a token (README \"HTTP API and security\")", http.host)
        web = make_app(self.metrics, self.store, is_ready=is_ready, auth=auth, cfg=self.cfg,
                       max_body_bytes=http.max_body_bytes, not_ready_reason=not_ready_reason)
        self.server = ServerThread(web, http.host, http.port if port is None else port, limits=http).start()
        return self.server

    def close(self) -> None:
        if self.dead_letters is not None:
            self.dead_letters.close()
        if self.server is not None:
            self.server.stop()
            self.server = None
        self.store.close()

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build(cfg: Config, *, store: Store | None = None, port: int | None = None, http: bool = True,
          pipeline: bool = True, dead_letters: bool = True) -> App:
    """Open the store (or take `store`), then metrics, the pipeline and, with `http`, the HTTP server.

    `dead_letters` writes the pipeline's rejected events to `dead_letters.path` (replay); `pipeline=False`
    is for the Kafka service, which makes its own. A `store` passed in is closed by `App.close()`.
    """
    from careful_monitor.runtime.pipeline import Pipeline
    from careful_monitor.sinks.deadletters import DeadLetterFile
    from careful_monitor.sinks.prometheus import Metrics

    app = App(cfg, open_store(cfg) if store is None else store, Metrics(versions_kept=cfg.limits.versions_per_model))
    try:
        if pipeline:
            if dead_letters:
                app.dead_letters = DeadLetterFile(cfg.dead_letters_path)
                app._pipeline = Pipeline(cfg, app.store, app.metrics, on_reject=app.dead_letters.write)
            else:
                app._pipeline = Pipeline(cfg, app.store, app.metrics)
        if http:
            app.serve(port)
    except BaseException:
        app.close()
        raise
    return app
