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
event loop. aiokafka fetches in the background on that loop, so with it a batch is processed in one
worker thread (`ConsumerClient.batch_lock`): the fetch of batch N+1 is in flight while batch N is
scored, and still nothing is committed before the batch is stored. Faust's agents push batches
instead of being polled, so `faust_app.py` calls `process_batch` from its agent: publishing, storing
and readiness are the same code there too.

Before the service exists, `StartGate` keeps `run` up and not-ready while what it needs is not there
yet (the store's schema behind with `store.auto_migrate: false`, the store unreachable, a dataset of
a model's anchor, training mix or, with `governance.mode: enforce`, evaluation not registered): one
WARNING line names what it waits for and the fix, and it re-checks every few seconds. Connecting to
the broker at start gives way to a SIGTERM at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import orjson
from kafka.errors import KafkaTimeoutError

from careful_monitor.config import Config
from careful_monitor.errors import StoreError
from careful_monitor.runtime.kafka_settings import CredentialsWatch
from careful_monitor.runtime.pipeline import Pipeline
from careful_monitor.sinks.prometheus import Metrics
from careful_monitor.sources.decode import Rejected
from careful_monitor.store import Store

if TYPE_CHECKING:
    from careful_monitor.runtime.http import ServerThread

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

    @property
    def batch_lock(self) -> asyncio.Lock | None:
        """None when the client fetches only inside `poll` (kafka-python): the loop runs each batch inline.

        A lock when it fetches in the background on the event loop (aiokafka): the loop then runs each
        batch in one worker thread while holding it, so the fetch of the next batch is in flight while
        this one is scored, and the client's rebalance listener takes it before calling `on_assigned`
        or `on_revoked`, so engine state is never reloaded, nor partitions sought, under a running batch.
        """

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
    from aiokafka.errors import CommitFailedError as AioCommitFailed
    from kafka.errors import CommitFailedError

    try:
        await asyncio.wait_for(call, BROKER_CALL_TIMEOUT_S)
    except TimeoutError:
        log.warning("could not %s within %.0f s (broker unreachable?); carrying on", what, BROKER_CALL_TIMEOUT_S)
    except (CommitFailedError, AioCommitFailed) as exc:
        # the group was rebalanced under us (membership lost: broker restart, a long pause): the offsets
        # are in the store already, and the next assignment seeks back to them
        log.warning("could not %s: the consumer group rebalanced (%s); carrying on from the stored offsets",
                    what, type(exc).__name__)


# --- start-up ------------------------------------------------------------------------------------
#: longest pause between two checks of what `run` waits for at start (governance.poll_seconds if shorter)
STARTUP_RECHECK_S = 5.0


def unregistered_datasets(cfg: Config, store: Store) -> list[str]:
    """What keeps the service from starting that registering a card fixes: one reason per missing dataset."""
    out: list[str] = []
    for model, m in cfg.models.items():
        wanted = [(m.anchor, f"models.{model}.anchor")]
        wanted += [(name, f"models.{model}.training_mix") for name in m.training_mix if name != m.anchor]
        if cfg.governance.mode == "enforce":  # in warn mode an unregistered evaluation set is only reported
            wanted += [(name, f"models.{model}.evaluation") for name in m.evaluation]
        out += [f"dataset '{name}' of {where} is not registered" for name, where in wanted
                if store.get_dataset(name) is None]
    return out


class StartGate:
    """`run` before its service exists: up and not-ready, saying why, until what it waits for is there.

    `reason` is what it waits for (None once the service runs); `is_ready` is the `/readyz` callable
    for the whole life of `run`. Waiting sleeps with `sleep`, so a SIGTERM handler that raises
    interrupts it.
    """

    def __init__(self, cfg: Config, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.cfg, self.sleep = cfg, sleep
        self.every = min(cfg.governance.poll_seconds, STARTUP_RECHECK_S)
        self.reason: str | None = "starting"
        self.service: KafkaService | None = None
        self.port: int | None = None

    def is_ready(self) -> bool:
        return self.service is not None and self.service.ready

    def open_store(self, open_: Callable[[], T], port: int | None = None) -> T:
        """open_() (the store, and what is built on it), retried while it raises StoreError.

        Meanwhile `/healthz` and `/readyz` (503, with the reason) are served on http.host:`port`
        (default http.port), so liveness probes do not restart a worker waiting for `db upgrade`;
        `self.port` is then the port to serve on next (the one bound, when `port` is 0).
        """
        self.port = port
        probes: ServerThread | None = None
        try:
            while True:
                try:
                    return open_()
                except StoreError as exc:
                    self.note(f"store: {exc}")
                    if probes is None:
                        probes = self._serve_probes(port)
                    self.sleep(self.every)
        finally:
            if probes is not None:
                probes.stop()

    def _serve_probes(self, port: int | None) -> ServerThread:
        """/healthz and a 503 /readyz saying `self.reason`, until the store opens and the real server takes over."""
        from aiohttp import web

        from careful_monitor.runtime.http import ServerThread

        async def healthz(_: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        async def readyz(_: web.Request) -> web.Response:
            return web.json_response({"ready": False, "store": False, "reason": self.reason}, status=503)

        app = web.Application()
        app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz)])
        http = self.cfg.http
        server = ServerThread(app, http.host, http.port if port is None else port, limits=http).start()
        self.port = server.port
        log.info("serving /healthz and /readyz on %s until the store can be used", server.url)
        return server

    def until_registered(self, store: Store) -> None:
        """Return once every dataset the configured models compare with is registered."""
        while True:
            try:
                missing = unregistered_datasets(self.cfg, store)
            except StoreError as exc:
                self.wait(f"store: {exc}")
                continue
            if not missing:
                return
            self.wait("; ".join(missing) + ": register its card (`careful-monitor datasets register "
                      "--config <config> <card.yaml>`, or the compose `register` service)")

    def started(self, service: KafkaService) -> None:
        if self.reason != "starting":
            log.info("no longer waiting: %s", self.reason)
        self.reason, self.service = None, service

    def wait(self, reason: str) -> None:
        """Not ready because of `reason`; sleep until the next check."""
        self.note(reason)
        self.sleep(self.every)

    def note(self, reason: str) -> None:
        """Not ready because of `reason`: one WARNING line when it changes (not one per re-check)."""
        if reason != self.reason:
            log.warning("not ready, waiting (re-checking every %.0f s): %s", self.every, reason)
            self.reason = reason


def _unless_stopped(connect: Callable[[], T], stop: threading.Event) -> T | None:
    """connect() (a blocking client constructor that may wait ~30 s for a broker) unless stop is set first.

    It runs in a daemon thread, so a SIGTERM meanwhile returns None at once and the process can exit
    without waiting for the broker; its error (broker unreachable) is raised here.
    """
    done = threading.Event()
    box: list[Any] = []

    def target() -> None:
        try:
            box.append((True, connect()))
        except BaseException as exc:  # handed to the caller below
            box.append((False, exc))
        finally:
            done.set()

    threading.Thread(target=target, name="careful-connect", daemon=True).start()
    while not done.wait(0.05):
        if stop.is_set():
            return None
    ok, value = box[0]
    if not ok:
        raise value
    return value


async def _await_unless_stopped(call: Awaitable[Any], stop: threading.Event) -> bool:
    """Await call (a client's start) unless stop is set first (then it is cancelled); True when it finished."""
    task = asyncio.ensure_future(call)
    while not task.done():
        if stop.is_set():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            return False
        await asyncio.wait({task}, timeout=0.1)
    task.result()
    return True


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
        # not ready either while the brokers refuse our credentials (a user deleted, a password changed)
        self.credentials = CredentialsWatch(cfg, lambda: self._set_ready(self._running and not self._store_down))

    # --- the loop -------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set; the batch in hand is stored and committed first."""
        asyncio.run(self._run(stop))

    async def _run(self, stop: threading.Event) -> None:
        if self.consumer_factory is None:
            raise TypeError(f"{type(self).__name__} has no consumer factory: pass consumer=...")
        self._stop = stop
        if not self.connect_producer(stop):  # nothing else runs on this loop yet: blocking it is harmless
            return
        producer = self.producer
        assert producer is not None
        client = None
        try:
            client = self.client = self.consumer_factory(self.cfg)
            if not await _await_unless_stopped(client.start(self.topic, self._on_assigned, self._on_revoked), stop):
                return
            self._running = True
            self._set_ready(True)
            self.credentials.start()
            log.info("consuming %s as group %s from %s (%s); store %s", self.topic, self.group,
                     self.cfg.kafka.bootstrap, client.name, self.store.url)  # Store.url masks the password
            await self._consume(client, stop)
        finally:
            self._running = False
            self.credentials.stop()
            self._set_ready(False)
            try:
                producer.flush(CLOSE_TIMEOUT_S)
                producer.close(CLOSE_TIMEOUT_S)
            finally:
                if client is not None:
                    await _bounded(client.close(), "close the consumer")
            log.info("stopped after %d events", self.processed)

    def connect_producer(self, stop: threading.Event) -> bool:
        """Build the producer (its broker bootstrap blocks, ~30 s when unreachable) unless stop is set first.

        False when asked to stop meanwhile; every runtime calls this before it consumes.
        """
        producer = _unless_stopped(lambda: self.producer_factory(self.cfg), stop)
        if producer is None:
            log.info("stopped before the broker at %s answered; nothing consumed", self.cfg.kafka.bootstrap)
            return False
        self.producer = producer
        return True

    async def _consume(self, client: ConsumerClient, stop: threading.Event) -> None:
        last_lag, last_prune = 0.0, time.monotonic()
        # one worker thread: batches are processed one at a time and in order, as inline
        worker = None if client.batch_lock is None else ThreadPoolExecutor(1, thread_name_prefix="careful-batch")
        try:
            while not stop.is_set():
                polled = await client.poll(POLL_MS)
                if polled:
                    batch = Batch.of(polled)
                    if batch.lines and await self._process_beside_fetch(batch, client.batch_lock, worker):
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
        finally:
            if worker is not None:
                # a batch still running (the loop was cancelled or failed) ends before the clients close;
                # blocking the event loop meanwhile also keeps a rebalance listener from running beside it
                worker.shutdown(wait=True)

    async def _process_beside_fetch(self, batch: Batch, lock: asyncio.Lock | None,
                                    worker: ThreadPoolExecutor | None) -> bool:
        """process_batch(batch): inline, or in `worker` holding `lock` so the client fetches meanwhile."""
        if lock is None or worker is None:
            return self.process_batch(batch)
        async with lock:
            return await asyncio.get_running_loop().run_in_executor(worker, self.process_batch, batch)

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
        self.ready = ready and self.credentials.accepted
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
