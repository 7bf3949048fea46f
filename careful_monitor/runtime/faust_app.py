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


def faust_app(cfg: Config) -> faust.App:
    """The real Faust app from the config: the group as its id, no web server, in-memory tables only."""
    import faust

    k = cfg.kafka
    return faust.App(k.group, broker=[f"kafka://{b}" for b in k.bootstrap.split(",")], web_enabled=False,
                     broker_credentials=faust_credentials(cfg),
                     store="memory://", consumer_auto_offset_reset="earliest", stream_buffer_maxsize=65536,
                     broker_max_poll_records=MAX_RECORDS, topic_partitions=k.partitions, topic_allow_declare=False,
                     producer_acks=-1)


class FaustService(KafkaService):
    """The Kafka service as one Faust agent (`kafka.runtime: faust`); `app` builds the Faust app."""

    def __init__(self, cfg: Config, store: Store, metrics: Metrics, *, clock: Callable[[], float] = time.time,
                 app: Callable[[Config], faust.App] = faust_app,
                 producer: ProducerFactory = kafka_python_producer) -> None:
        super().__init__(cfg, store, metrics, clock=clock, producer=producer)
        self.app_factory = app

    def run(self, stop: threading.Event) -> None:
        import faust

        self._stop = stop
        if not self.connect_producer(stop):  # gives way to a SIGTERM while the broker does not answer
            return
        assert self.producer is not None
        stored = self._restore()  # once: Faust's rebalances do not reload it (one worker per group)
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

        async def watch_stop() -> None:
            while not stop.is_set():
                await asyncio.sleep(0.2)
            await app.stop()

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
        except SystemExit:
            pass
        finally:
            self._running = False
            self.credentials.stop()
            self._set_ready(False)
            self.producer.flush(CLOSE_TIMEOUT_S)
            self.producer.close(CLOSE_TIMEOUT_S)
            log.info("stopped after %d events", self.processed)
