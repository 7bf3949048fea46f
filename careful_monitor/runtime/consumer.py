"""`careful-monitor run` with `kafka.runtime: consumer`: a plain kafka-python consumer-group loop.

At-least-once without duplicates: each polled batch is decoded and run through the same pipeline as
`replay`; bad messages go, unchanged, to the dead-letter topic with a `reason` header; alerts are
published as JSON to the alerts topic; then window results, alerts, engine state *and the offsets
they cover* are stored in one transaction, and only then are the offsets committed to Kafka. On
partition assignment the worker reloads engine state from the store and seeks to the stored
offsets, so a restart or rebalance resumes exactly where the last save left off. While the store
is down the loop stops consuming, retries with backoff and reports not-ready; it loses nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import orjson

from careful_monitor.config import Config
from careful_monitor.errors import StoreError
from careful_monitor.runtime.pipeline import Pipeline
from careful_monitor.sinks.prometheus import Metrics
from careful_monitor.store import Store

log = logging.getLogger(__name__)

POLL_MS = 500
MAX_RECORDS = 5000
LAG_EVERY_S = 5.0
PRUNE_EVERY_S = 3600.0


class ConsumerService:
    def __init__(self, cfg: Config, store: Store, metrics: Metrics, *, clock: Callable[[], float] = time.time) -> None:
        self.cfg, self.store, self.metrics, self.clock = cfg, store, metrics, clock
        self.topic = cfg.kafka.topics.events
        self.group = cfg.kafka.group
        self._pending_rejects: list = []
        self.pipeline = Pipeline(cfg, store, metrics, on_reject=self._pending_rejects.extend, clock=clock)
        self.ready = False
        self.consumer = None
        self.producer = None
        self.processed = 0

    # --- Kafka clients --------------------------------------------------------------------------
    def _producer(self):
        """The producer of dead letters and alerts (kafka-python, synchronous flush per batch)."""
        from kafka import KafkaProducer

        from careful_monitor.runtime.kafka_settings import kafka_python_kwargs

        return KafkaProducer(acks="all", linger_ms=5, retries=10, client_id="careful-monitor",
                             max_request_size=max(1_048_576, self.cfg.limits.max_event_bytes * 2),
                             bootstrap_servers=self.cfg.kafka.bootstrap.split(","), **kafka_python_kwargs(self.cfg))

    def _clients(self):
        from kafka import KafkaConsumer

        from careful_monitor.runtime.kafka_settings import kafka_python_kwargs

        common = {"bootstrap_servers": self.cfg.kafka.bootstrap.split(","), **kafka_python_kwargs(self.cfg)}
        consumer = KafkaConsumer(
            group_id=self.group, enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_records=MAX_RECORDS, fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=max(8 * 1024 * 1024, self.cfg.limits.max_event_bytes + 1024),
            client_id="careful-monitor", **common)
        return consumer, self._producer()

    def _on_assigned(self, partitions) -> None:
        """Reload engine state and seek to the offsets stored with it."""
        stored = self._retry(lambda: self.store.load_offsets(self.group, self.topic), "load offsets")
        states = self._retry(self.store.load_states, "load engine state")
        if stored is None or states is None:
            return
        self.pipeline.reload(states)
        for tp in partitions:
            if tp.partition in stored:
                self.consumer.seek(tp, stored[tp.partition])
        log.info("assigned partitions %s of %s; resuming at stored offsets %s", sorted(tp.partition for tp in partitions),
                 self.topic, {p: stored[p] for p in sorted(stored)})

    # --- the loop -------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        from kafka import ConsumerRebalanceListener

        service = self

        class _Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked) -> None:
                log.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))

            def on_partitions_assigned(self, assigned) -> None:
                service._on_assigned(assigned)

        self._stop = stop
        self.consumer, self.producer = self._clients()
        self.consumer.subscribe([self.topic], listener=_Listener())
        self.ready = True
        self.metrics.ready.set(1)
        last_lag = 0.0
        last_prune = time.monotonic()
        log.info("consuming %s as group %s from %s", self.topic, self.group, self.cfg.kafka.bootstrap)
        try:
            while not stop.is_set():
                polled = self.consumer.poll(timeout_ms=POLL_MS, max_records=MAX_RECORDS)
                if polled:
                    self._handle(polled)
                now = time.monotonic()
                if now - last_lag > LAG_EVERY_S:
                    self._export_lag()
                    last_lag = now
                if now - last_prune > PRUNE_EVERY_S:
                    self._prune()
                    last_prune = now
        finally:
            self.ready = False
            self.metrics.ready.set(0)
            try:
                self.producer.flush(10)
                self.producer.close(10)
            finally:
                self.consumer.close(autocommit=False)
            log.info("stopped after %d events", self.processed)

    def _handle(self, polled) -> None:
        from kafka.structs import OffsetAndMetadata

        lines, fallback, offsets = [], [], {}
        for tp, records in polled.items():
            for r in records:
                lines.append(r.value if r.value is not None else b"")
                fallback.append(r.timestamp / 1000.0 if r.timestamp is not None and r.timestamp >= 0 else None)
            offsets[tp] = records[-1].offset + 1
        if self.process_batch(lines, fallback, {(tp.topic, tp.partition): off for tp, off in offsets.items()}):
            self.consumer.commit({tp: OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()})

    def process_batch(self, lines: list[bytes], fallback: list[float | None], offsets: dict[tuple[str, int], int]) -> bool:
        """Engine, dead letters, alerts, then one stored transaction with the offsets; True when stored."""
        report = self.pipeline.handle(lines, fallback)
        dead_topic = self.cfg.kafka.topics.dead_letters
        for rej in self._pending_rejects:
            self.producer.send(dead_topic, value=rej.raw,
                               headers=[("reason", rej.reason.encode()), ("detail", rej.detail[:500].encode())])
        self._pending_rejects.clear()
        for o in report.outcomes:
            for alert in o.alerts:
                self.producer.send(self.cfg.kafka.topics.alerts, key=alert["model"].encode(), value=orjson.dumps(alert))
        self.producer.flush()
        stored = [(self.group, topic, partition, off) for (topic, partition), off in offsets.items()]
        if self._retry(lambda: self.pipeline.persist(report.outcomes, stored), "store the batch") is False:
            return False  # stopping while the store is down: nothing committed, the next start resumes from the store
        self.processed += len(lines)
        return True

    def _retry(self, fn, what: str):
        """Call fn until it succeeds, backing off while the store is down; False if asked to stop."""
        delay = 0.5
        while True:
            try:
                result = fn()
                if not self.ready and self.consumer is not None:
                    log.info("store is back; resuming")
                self.ready = self.consumer is not None
                self.metrics.ready.set(1 if self.ready else 0)
                return True if result is None else result
            except StoreError as exc:
                self.ready = False
                self.metrics.ready.set(0)
                log.warning("cannot %s (%s); not committing offsets, retrying in %.1fs", what, exc, delay)
                stop = getattr(self, "_stop", None)
                if stop is not None and stop.wait(delay):
                    return False
                if stop is None:
                    time.sleep(delay)
                delay = min(delay * 2, 30.0)

    def _prune(self) -> None:
        """Apply store.retention_days (old window results and acknowledged alerts)."""
        from datetime import datetime, timezone

        try:
            w, a = self.store.prune(retention_days=self.cfg.store.retention_days, now=datetime.fromtimestamp(self.clock(), timezone.utc))
            if w or a:
                log.info("retention: pruned %d window results and %d acknowledged alerts", w, a)
        except StoreError as exc:
            log.warning("retention pruning skipped: %s", exc)

    def _export_lag(self) -> None:
        try:
            assigned = list(self.consumer.assignment())
            if not assigned:
                return
            ends = self.consumer.end_offsets(assigned)
            for tp in assigned:
                pos = self.consumer.position(tp)
                self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(0, ends.get(tp, pos) - pos))
        except Exception as exc:  # noqa: BLE001 - lag is best effort; the loop must not die for it
            log.debug("consumer lag unavailable: %s", exc)
