"""`kafka.runtime: faust`: the service's batch processing inside one Faust (faust-streaming) agent.

Faust pushes messages to agents and commits what they acknowledge, so it does not fit the pull loop
of `kafka_loop.KafkaService`; its agent hands each batch to the same `process_batch` instead, so
dead letters, alerts, the one stored transaction with the offsets, the backoff while the store is
down and readiness are the same code as in the other runtimes. One agent, concurrency 1 (Faust's
offset commits misbehave above that), batching with `stream.take_events`. A batch is acknowledged
only after it is stored, so Faust commits only what is stored. Faust may hand back records the
store already covers (after a crash between our save and its commit): those are skipped by
comparing with the offsets stored with the engine state, so nothing counts twice.

Engine state is loaded once at start, not on each rebalance, so run one Faust worker per group.
Faust's per-message machinery caps a worker at ~3,800 events/s before any work (a bare agent with
`stream.take`), an order of magnitude under the default `aiokafka` runtime (README, "Kafka"); this
runtime is for teams that already operate Faust workers.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from careful_monitor.config import Config
from careful_monitor.runtime.kafka_loop import (
    CLOSE_TIMEOUT_S,
    Batch,
    KafkaService,
    ProducerFactory,
    kafka_python_producer,
)
from careful_monitor.sinks.prometheus import Metrics
from careful_monitor.store import Store

if TYPE_CHECKING:
    import faust

log = logging.getLogger(__name__)

MAX_RECORDS = 5000
#: how long the agent waits to fill a batch, seconds
BATCH_WITHIN_S = 0.5
#: pause before replacing a crashed Faust worker, seconds; doubles while it keeps crashing
RESTART_S = 5.0
RESTART_MAX_S = 60.0


def faust_credentials(cfg: Config) -> Any:
    """`kafka.security` as Faust's credentials object (None for PLAINTEXT); secrets stay out of logs."""
    import faust

    from careful_monitor.runtime.kafka_settings import aiokafka_kwargs

    kw = aiokafka_kwargs(cfg)  # validates the config and reads the password file
    protocol = kw["security_protocol"]
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(username=kw["sasl_plain_username"], password=str(kw["sasl_plain_password"]),
                                     mechanism=kw["sasl_mechanism"], ssl_context=kw.get("ssl_context"))
    if protocol == "SSL":
        return faust.SSLCredentials(kw["ssl_context"])
    return None


def partition_fetch_bytes(cfg: Config) -> int:
    """Faust's `consumer_max_fetch_size`: `kafka.fetch_max_bytes` shared by the topic's partitions.

    Faust bounds a fetch only per partition (aiokafka's `max_partition_fetch_bytes`; its default,
    1 MiB, starves batches of `MAX_RECORDS`) and leaves aiokafka's bound of the whole fetch at its
    default, 50 MiB. A worker holding every partition so fetches at most `kafka.fetch_max_bytes` (and
    50 MiB), as the other runtimes do; never less than one event of `limits.max_event_bytes`.

    >>> from careful_monitor.config import load_config
    >>> partition_fetch_bytes(load_config(None, environ={})) // 1024
    10922
    """
    return max(cfg.kafka.fetch_max_bytes // cfg.kafka.partitions, cfg.limits.max_event_bytes + 1024)


def faust_app(cfg: Config) -> faust.App:
    """The real Faust app from the config: the group as its id, no web server, in-memory tables only."""
    import faust

    k = cfg.kafka
    return faust.App(k.group, broker=[f"kafka://{b}" for b in k.bootstrap.split(",")], web_enabled=False,
                     broker_credentials=faust_credentials(cfg),
                     store="memory://", consumer_auto_offset_reset="earliest", stream_buffer_maxsize=65536,
                     broker_max_poll_records=MAX_RECORDS, consumer_max_fetch_size=partition_fetch_bytes(cfg),
                     topic_partitions=k.partitions, topic_allow_declare=False, producer_acks=-1)


class FaustService(KafkaService):
    """The Kafka service as one Faust agent (`kafka.runtime: faust`); `app` builds the Faust app."""

    def __init__(self, cfg: Config, store: Store, metrics: Metrics, *, clock: Callable[[], float] = time.time,
                 app: Callable[[Config], faust.App] = faust_app,
                 producer: ProducerFactory = kafka_python_producer) -> None:
        super().__init__(cfg, store, metrics, clock=clock, producer=producer)
        self.app_factory = app

    def run(self, stop: threading.Event) -> None:
        """Run Faust workers until `stop` is set: a worker that crashes is replaced, not-ready meanwhile.

        Faust crashes its worker on errors a pull loop would retry (an offset commit refused while the
        brokers reject our login, a producer error): the worker then exits 1. `run` logs one line,
        stays up and not-ready, and starts a new worker (on a new event loop: a worker closes its own)
        after RESTART_S, doubling up to RESTART_MAX_S while it keeps crashing; each new worker resumes
        from the offsets stored with the engine state, so nothing is lost or counted twice.
        """
        self._stop = stop
        if not self.connect_producer(stop):  # gives way to a SIGTERM while the broker does not answer
            return
        assert self.producer is not None
        pause = RESTART_S
        try:
            while not stop.is_set():
                crash = self._run_worker(stop)
                if crash is None or stop.is_set():
                    break
                log.error("not ready: the Faust worker stopped on an error (%s); starting a new one in %.0f s",
                          crash, pause)
                stop.wait(pause)
                pause = min(pause * 2, RESTART_MAX_S)
        finally:
            self.credentials.stop()
            self.producer.flush(CLOSE_TIMEOUT_S)
            self.producer.close(CLOSE_TIMEOUT_S)
            log.info("stopped after %d events", self.processed)

    def _run_worker(self, stop: threading.Event) -> str | None:
        """One Faust worker until it stops: None when asked to (or Faust stopped cleanly), else why it crashed."""
        import faust

        asyncio.set_event_loop(asyncio.new_event_loop())  # the previous worker, if any, closed its loop
        stored = self._restore()  # Faust's rebalances do not reload it (one worker per group)
        app = self.app_factory(self.cfg)
        topic = app.topic(self.topic, key_serializer="raw", value_serializer="raw")
        service = self

        @app.agent(topic, concurrency=1)
        async def process(stream: Any) -> None:
            async for events in stream.take_events(MAX_RECORDS, within=BATCH_WITHIN_S):
                batch = Batch()
                for ev in events:
                    msg = ev.message
                    if msg.offset < stored.get(msg.partition, 0):
                        continue  # already covered by the stored engine state
                    batch.add(msg.tp, msg.offset, msg.value,
                              msg.timestamp if msg.timestamp and msg.timestamp > 0 else None)
                if batch.lines:
                    ok = await asyncio.get_running_loop().run_in_executor(None, service.process_batch, batch)
                    if not ok:
                        break
                    for tp, off in batch.offsets.items():
                        stored[tp.partition] = off
                if stop.is_set():
                    break

        async def watch_stop() -> None:  # `stop` set by the caller: stop the whole worker, as its SIGTERM does
            while not stop.is_set():
                await asyncio.sleep(0.2)
            await worker.stop()

        watchers: list[asyncio.Future[None]] = []  # a reference: the event loop keeps only weak ones

        @app.task
        async def _stopper() -> None:
            watchers.append(asyncio.ensure_future(watch_stop()))

        self._running = True
        self._set_ready(True)
        self.credentials.start()  # not ready while the brokers refuse our credentials
        log.info("consuming %s as group %s from %s (faust)", self.topic, self.group, self.cfg.kafka.bootstrap)
        worker = faust.Worker(app, loglevel="warning", quiet=True, override_logging=False)
        try:
            worker.execute_from_commandline()
        except SystemExit as exc:
            if exc.code in (0, None):
                return None
            reason = worker.crash_reason or app.crash_reason
            return f"{type(reason).__name__}: {reason}" if reason is not None else f"exit status {exc.code}"
        except Exception as exc:  # Faust re-raises the crash reason after closing its loop
            return f"{type(exc).__name__}: {exc}"
        finally:
            self._running = False
            self._set_ready(False)
        return None
