"""A `run` whose first Faust worker crashes once it has stored a batch (test_faust_crash.py spawns it).

Usage: python -m tests.integration.faust_crash_worker CONFIG WINDOWS. It stops once WINDOWS windows
are stored.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time

from careful_monitor.app import build
from careful_monitor.cli.common import setup_logging
from careful_monitor.config import load_config
from careful_monitor.runtime.faust_app import FaustService, faust_app


def main(config: str, windows: int) -> None:
    setup_logging("info", "text")
    cfg = load_config(config)
    stop = threading.Event()
    with build(cfg, http=False, pipeline=False) as app:
        built: list[object] = []

        def crashing_once(c):  # the real Faust app; the first one crashes after its first stored batch
            fa = faust_app(c)
            built.append(fa)
            if len(built) == 1:
                @fa.task
                async def crash_after_a_batch() -> None:
                    while service.processed == 0:
                        await asyncio.sleep(0.05)
                    logging.getLogger("faust_crash_worker").info("injecting a crash")
                    await fa.crash(RuntimeError("injected crash"))
            return fa

        service = FaustService(cfg, app.store, app.metrics, app=crashing_once)

        def watch() -> None:
            while not stop.is_set():
                if len(app.store.last_windows("ticket-router", 10_000)) >= windows:
                    stop.set()
                    return
                time.sleep(0.3)

        threading.Thread(target=watch, daemon=True).start()
        service.run(stop)
        print(f"workers built: {len(built)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
