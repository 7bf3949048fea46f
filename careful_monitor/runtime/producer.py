"""`careful-monitor simulate`: produce JSONL events to the events topic, keyed by model."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import orjson

from careful_monitor.config import Config
from careful_monitor.errors import CarefulError
from careful_monitor.runtime.kafka_settings import kafka_python_kwargs

if TYPE_CHECKING:
    from kafka import KafkaProducer

#: throughput settings: batches of up to 512 KiB, filled for up to 20 ms
PRODUCER_SETTINGS = {"acks": "all", "linger_ms": 20, "batch_size": 512 * 1024, "max_request_size": 4 * 1024 * 1024,
                     "client_id": "careful-monitor-simulate"}
PROGRESS_EVERY = 1000


def event_key(line: bytes) -> bytes | None:
    """The message key: the event's `model`, or None when the line is no event with a string model.

    >>> event_key(b'{"model": "ticket-router", "inputs": {}}')
    b'ticket-router'
    >>> event_key(b'not json') is None
    True
    """
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    model = event.get("model") if isinstance(event, dict) else None
    return model.encode("utf-8") if isinstance(model, str) else None


class TokenBucket:
    """Paces events to `rate` per second, with bursts of up to `burst` events.

    `take()` spends one token and sleeps only when the debt reaches `slack` seconds' worth, so even
    at 100,000 events/s it sleeps every few milliseconds, not once per event. A pause (a slow
    broker) refills at most `burst` tokens: the producer does not race to catch up afterwards.
    """

    def __init__(self, rate: float, *, burst: float | None = None, slack: float = 0.005,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate * 0.05)
        self.debt_limit = min(max(1.0, rate * slack), self.burst)
        self.clock, self.sleep = clock, sleep
        self.tokens = 1.0
        self.last = clock()

    def take(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate) - 1.0
        self.last = now
        if -self.tokens >= self.debt_limit - 1e-9:  # float error must not skip a due pause
            self.sleep(-self.tokens / self.rate)


def produce_lines(cfg: Config, lines: Iterable[bytes], *, rate: float | None = None,
                  progress: Callable[[int], None] | None = None, producer: KafkaProducer | None = None) -> int:
    """Send each line as one message to `kafka.topics.events`; return how many were sent.

    Lines that are no valid event are sent too, without a key: the service must dead-letter
    them. Blank lines are skipped, as `replay` skips them. `rate` caps events per second;
    `progress(n)` is told every 1,000 events (and once at the end) how many were sent since its
    last call. Raises CarefulError when the broker did not accept every message.
    """
    own = producer is None
    if producer is None:
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=cfg.kafka.bootstrap.split(","), **PRODUCER_SETTINGS,
                                 **kafka_python_kwargs(cfg))
    topic = cfg.kafka.topics.events
    bucket = TokenBucket(rate) if rate else None
    failures: list[BaseException] = []
    n = reported = 0
    try:
        for line in lines:
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            if bucket is not None:
                bucket.take()
            producer.send(topic, key=event_key(line), value=line).add_errback(failures.append)
            n += 1
            if progress is not None and n - reported >= PROGRESS_EVERY:
                progress(n - reported)
                reported = n
        producer.flush()
    finally:
        if own:
            producer.close()
    if progress is not None and n > reported:
        progress(n - reported)
    if failures:
        raise CarefulError(f"{len(failures)} of {n} events were not accepted by Kafka at {cfg.kafka.bootstrap} "
                           f"(topic {topic}); first error: {failures[0]!r}")
    return n
