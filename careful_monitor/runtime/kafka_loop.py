"""The Kafka service loop, written once: poll a batch -> engine -> publish -> store with offsets -> commit.

At-least-once without duplicates: each polled batch is decoded and run through the same pipeline as
`replay`; bad messages go, unchanged, to the dead-letter topic with `reason` and `detail` headers;
alerts are published as JSON to the alerts topic; then window results, alerts, engine state *and
the offsets they cover* are stored in one transaction, and only then are the offsets committed to
Kafka. On partition assignment the worker reloads engine state from the store and seeks to the
stored offsets, so a restart or rebalance resumes exactly where the last save left off. While the
store is down the loop stops consuming, retries with backoff and reports not-ready; it loses
nothing. Every `PRUNE_EVERY_S` it applies `store.retention_days`; every `LAG_EVERY_S` it exports
`consumer_lag{topic,partition}`.

A runtime supplies only its client: a `ConsumerClient` adapter (kafka-python's `poll` in
`consumer.py`, aiokafka's `getmany` in `aiokafka_loop.py`) and a `Producer`. Both are built by
factories handed to `KafkaService` (the defaults build the real clients from the config through
`kafka_settings`), so a caller or a test can hand in its own. The loop is a coroutine so aiokafka
fits as it is; kafka-python's blocking calls run inside it unchanged, as nothing else shares that
event loop. Faust's agents push batches instead of being polled, so `faust_app.py` calls
`process_batch` from its agent: publishing, storing and readiness are the same code there too.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

import orjson
from kafka.errors import KafkaTimeoutError

from careful_monitor.config import Config
from careful_monitor.errors import StoreError
from careful_monitor.runtime.pipeline import Pipeline
from careful_monitor.sinks.prometheus import Metrics
from careful_monitor.sources.decode import Rejected
from careful_monitor.store import Store

log = logging.getLogger(__name__)

POLL_MS = 500
LAG_EVERY_S = 5.0
PRUNE_EVERY_S = 3600.0
#: producer flush and close on shutdown, seconds
CLOSE_TIMEOUT_S = 10
#: longest wait for one broker call (commit, lag, close): a broker that is reconnecting must not
#: hold the loop past a SIGTERM; an offset commit that times out is harmless, since the offsets
#: stored with the engine state are what a restart seeks to
BROKER_CALL_TIMEOUT_S = 5.0

T = TypeVar("T")


# --- what a runtime supplies ------------------------------------------------------------------------
class Partition(Protocol):
    """The client's own topic-partition object (kafka-python's and aiokafka's `TopicPartition`)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...


class Record(Protocol):
    """One consumed message as both clients give it."""

    @property
    def offset(self) -> int: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def timestamp(self) -> int | None: ...  # milliseconds since the epoch; -1 or None when unknown


#: called inside the client's rebalance with the partitions assigned (or revoked); may `seek`
OnRebalance = Callable[[Collection[Partition]], None]


class ConsumerClient(Protocol):
    """The consumer-group calls the loop makes; one adapter per client library."""

    name: str  # for log lines

    async def start(self, topic: str, on_assigned: OnRebalance, on_revoked: OnRebalance) -> None:
        """Subscribe to `topic` as the configured group and connect."""

    async def poll(self, timeout_ms: int) -> Mapping[Partition, Sequence[Record]]:
        """The next batch (the adapter's own maximum of records), empty after `timeout_ms`."""

    async def commit(self, offsets: Mapping[Partition, int]) -> None:
        """Commit the next offset to read of each partition."""

    def seek(self, partition: Partition, offset: int) -> None: ...

    def assignment(self) -> Collection[Partition]: ...

    async def end_offsets(self, partitions: Sequence[Partition]) -> Mapping[Partition, int]: ...

    async def position(self, partition: Partition) -> int: ...

    async def close(self) -> None:
        """Leave the group without committing anything more."""


class Producer(Protocol):
    """The producer calls the service makes (kafka-python's `KafkaProducer` is one)."""

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
             headers: list[tuple[str, bytes]] | None = None) -> Any: ...

    def flush(self, timeout: float | None = None) -> None: ...

    def close(self, timeout: float | None = None) -> None: ...


#: build a client from the config; called by `run`, inside its event loop (aiokafka binds to it)
ConsumerFactory = Callable[[Config], ConsumerClient]
ProducerFactory = Callable[[Config], Producer]


def kafka_python_producer(cfg: Config) -> Producer:
    """The producer of dead letters and alerts: kafka-python, all replicas acknowledge, flushed per batch."""
    from kafka import KafkaProducer

    from careful_monitor.runtime.kafka_settings import kafka_python_kwargs

    return KafkaProducer(acks="all", linger_ms=5, retries=10, client_id="careful-monitor",
                         max_request_size=max(1_048_576, cfg.limits.max_event_bytes * 2),
                         bootstrap_servers=cfg.kafka.bootstrap.split(","), **kafka_python_kwargs(cfg))


async def _bounded(call: Awaitable[Any], what: str) -> None:
    """Await a broker call for at most BROKER_CALL_TIMEOUT_S; a timeout is logged, not raised."""
    try:
        await asyncio.wait_for(call, BROKER_CALL_TIMEOUT_S)
    except TimeoutError:
        log.warning("could not %s within %.0f s (broker unreachable?); carrying on", what, BROKER_CALL_TIMEOUT_S)


# --- one batch ----------------------------------------------------------------------------------
@dataclass
class Batch:
    """One batch as the pipeline takes it: raw values, fallback event times, next offset per partition."""

    lines: list[bytes] = field(default_factory=list)
    fallback: list[float | None] = field(default_factory=list)  # the message timestamp, seconds
    offsets: dict[Partition, int] = field(default_factory=dict)

    @classmethod
    def of(cls, polled: Mapping[Partition, Sequence[Record]]) -> Batch:
        """A batch from a client's poll result (timestamps in milliseconds)."""
        batch = cls()
        for tp, records in polled.items():
            if not records:
                continue
            batch.lines.extend([r.value if r.value is not None else b"" for r in records])
            batch.fallback.extend([r.timestamp / 1000.0 if r.timestamp is not None and r.timestamp >= 0 else None
                                   for r in records])
            batch.offsets[tp] = records[-1].offset + 1
        return batch

    def add(self, tp: Partition, offset: int, value: bytes | None, timestamp_s: float | None) -> None:
        """One message whose timestamp is already in seconds (Faust's)."""
        self.lines.append(value if value is not None else b"")
        self.fallback.append(timestamp_s)
        self.offsets[tp] = offset + 1


class _Stopping(Exception):
    """Asked to stop while the store is down: give up the call, store and commit nothing."""


# --- the service --------------------------------------------------------------------------------
class KafkaService:
    """One worker of the consumer group: `run(stop)` consumes until `stop` is set; `ready` while it can store.

    `consumer` and `producer` build the clients from the config when `run` starts; without
    `consumer`, the runtime's `default_consumer` is used.
    """

    #: the consumer factory of this runtime (set by each runtime's subclass)
    default_consumer: ClassVar[ConsumerFactory | None] = None

    def __init__(self, cfg: Config, store: Store, metrics: Metrics, *, clock: Callable[[], float] = time.time,
                 consumer: ConsumerFactory | None = None,
                 producer: ProducerFactory = kafka_python_producer) -> None:
        self.cfg, self.store, self.metrics, self.clock = cfg, store, metrics, clock
        self.topic = cfg.kafka.topics.events
        self.group = cfg.kafka.group
        self.consumer_factory = consumer if consumer is not None else type(self).default_consumer
        self.producer_factory = producer
        self._pending_rejects: list[Rejected] = []
        self.pipeline = Pipeline(cfg, store, metrics, on_reject=self._pending_rejects.extend, clock=clock)
        self.ready = False
        self.producer: Producer | None = None
        self.client: ConsumerClient | None = None
        self.processed = 0
        self._stop = threading.Event()
        self._running = False  # between the client's start and the end of `run`: ready unless the store is down
        self._store_down = False

    # --- the loop -------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set; the batch in hand is stored and committed first."""
        asyncio.run(self._run(stop))

    async def _run(self, stop: threading.Event) -> None:
        if self.consumer_factory is None:
            raise TypeError(f"{type(self).__name__} has no consumer factory: pass consumer=...")
        self._stop = stop
        self.producer = self.producer_factory(self.cfg)
        client = None
        try:
            client = self.client = self.consumer_factory(self.cfg)
            await client.start(self.topic, self._on_assigned, self._on_revoked)
            self._running = True
            self._set_ready(True)
            log.info("consuming %s as group %s from %s (%s); store %s", self.topic, self.group,
                     self.cfg.kafka.bootstrap, client.name, self.store.url)  # Store.url masks the password
            await self._consume(client, stop)
        finally:
            self._running = False
            self._set_ready(False)
            try:
                self.producer.flush(CLOSE_TIMEOUT_S)
                self.producer.close(CLOSE_TIMEOUT_S)
            finally:
                if client is not None:
                    await _bounded(client.close(), "close the consumer")
            log.info("stopped after %d events", self.processed)

    async def _consume(self, client: ConsumerClient, stop: threading.Event) -> None:
        last_lag, last_prune = 0.0, time.monotonic()
        while not stop.is_set():
            polled = await client.poll(POLL_MS)
            if polled:
                batch = Batch.of(polled)
                if batch.lines and self.process_batch(batch):
                    await _bounded(client.commit(batch.offsets), "commit offsets to Kafka")
            else:
                self.pipeline.poll_lifecycle_if_due()  # a quiet topic still sees `datasets retire` in time
            now = time.monotonic()
            if now - last_lag > LAG_EVERY_S:
                await self._export_lag(client)
                last_lag = now
            if now - last_prune > PRUNE_EVERY_S:
                self._prune()
                last_prune = now

    def _on_assigned(self, partitions: Collection[Partition]) -> None:
        """Reload engine state and seek to the offsets stored with it."""
        try:
            stored = self._retry(self._restore, "restore engine state and offsets")
        except _Stopping:
            return
        assert self.client is not None
        for tp in partitions:
            if tp.partition in stored:
                self.client.seek(tp, stored[tp.partition])
        log.info("assigned partitions %s of %s; resuming at stored offsets %s",
                 sorted(tp.partition for tp in partitions), self.topic, {p: stored[p] for p in sorted(stored)})

    def _restore(self) -> dict[int, int]:
        """Engine state as last stored; returns the offsets stored with it (partition -> next offset)."""
        stored = self.store.load_offsets(self.group, self.topic)
        self.pipeline.reload(self.store.load_states())
        return stored

    def _on_revoked(self, partitions: Collection[Partition]) -> None:
        log.info("partitions revoked: %s", sorted(tp.partition for tp in partitions))

    # --- one batch, for every runtime -------------------------------------------------------------
    def process_batch(self, batch: Batch) -> bool:
        """Engine, dead letters, alerts, then one stored transaction with the offsets; True when stored.

        False only when asked to stop while the store is down: then nothing may be committed, and the
        next start resumes from what the store holds.
        """
        report = self.pipeline.handle(batch.lines, batch.fallback)
        docs = self.pipeline.alert_docs([a for o in report.outcomes for a in o.alerts])  # published = stored
        if not self._publish(docs):
            return False
        offsets = [(self.group, tp.topic, tp.partition, off) for tp, off in batch.offsets.items()]
        try:
            self._retry(lambda: self.pipeline.persist(report.outcomes, offsets, alert_docs=docs), "store the batch")
        except _Stopping:
            return False
        self.processed += len(batch.lines)
        return True

    def _publish(self, alert_docs: Sequence[dict[str, Any]]) -> bool:
        """Dead letters (unchanged, with their reason) and alerts, flushed before anything is stored.

        False when asked to stop before the broker took them: then nothing is stored or committed and
        the batch is read again by the next start (alerts are idempotent on alert_id).
        """
        assert self.producer is not None
        dead_topic, alert_topic = self.cfg.kafka.topics.dead_letters, self.cfg.kafka.topics.alerts
        for rej in self._pending_rejects:
            self.producer.send(dead_topic, value=rej.raw,
                               headers=[("reason", rej.reason.encode()), ("detail", rej.detail[:500].encode())])
        self._pending_rejects.clear()
        for doc in alert_docs:  # keyed by model: one model's alerts stay in order on one partition
            self.producer.send(alert_topic, key=str(doc["model"]).encode(), value=orjson.dumps(doc))
        while True:
            try:
                self.producer.flush(BROKER_CALL_TIMEOUT_S)
                return True
            except KafkaTimeoutError:
                if self._stop.is_set():
                    log.warning("stopping before the broker took this batch's alerts and dead letters: "
                                "not storing it; the next start reads it again")
                    return False
                log.warning("the broker has not taken this batch's alerts and dead letters for %.0f s; still trying",
                            BROKER_CALL_TIMEOUT_S)

    # --- the store, with backoff ------------------------------------------------------------------
    def _retry(self, fn: Callable[[], T], what: str) -> T:
        """fn(), called again with backoff while the store is down (not-ready meanwhile); _Stopping if asked to stop."""
        delay = 0.5
        while True:
            try:
                result = fn()
            except StoreError as exc:
                self._store_down = True
                self._set_ready(False)
                log.warning("cannot %s (%s); not committing offsets, retrying in %.1fs", what, exc, delay)
                if self._stop.wait(delay):
                    raise _Stopping from exc
                delay = min(delay * 2, 30.0)
                continue
            if self._store_down:
                log.info("store is back; resuming")
                self._store_down = False
            self._set_ready(self._running)
            return result

    def _set_ready(self, ready: bool) -> None:
        self.ready = ready
        self.metrics.ready.set(1 if ready else 0)

    # --- maintenance ------------------------------------------------------------------------------
    def _prune(self) -> None:
        """Apply store.retention_days (old window results and acknowledged alerts)."""
        from datetime import UTC, datetime

        try:
            w, a = self.store.prune(retention_days=self.cfg.store.retention_days,
                                    now=datetime.fromtimestamp(self.clock(), UTC))
            if w or a:
                log.info("retention: pruned %d window results and %d acknowledged alerts", w, a)
        except StoreError as exc:
            log.warning("retention pruning skipped: %s", exc)

    async def _export_lag(self, client: ConsumerClient) -> None:
        try:
            assigned = list(client.assignment())
            if not assigned:
                return
            ends = await asyncio.wait_for(client.end_offsets(assigned), BROKER_CALL_TIMEOUT_S)
            for tp in assigned:
                pos = await asyncio.wait_for(client.position(tp), BROKER_CALL_TIMEOUT_S)
                self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(0, ends.get(tp, pos) - pos))
        except Exception as exc:  # lag is best effort; the loop must not die for it
            log.debug("consumer lag unavailable: %s", exc)
