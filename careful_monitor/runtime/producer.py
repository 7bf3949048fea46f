"""`careful-monitor simulate`: produce JSONL events to the events topic, keyed by model."""

from __future__ import annotations

import time
from typing import Callable, Iterable

import orjson
from kafka import KafkaProducer

from careful_monitor.config import Config
from careful_monitor.runtime.kafka_settings import kafka_python_kwargs


def _key(line: bytes) -> bytes | None:
    try:
        ev = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    model = ev.get("model") if isinstance(ev, dict) else None
    return model.encode() if isinstance(model, str) else None


def produce_lines(cfg: Config, lines: Iterable[bytes], *, rate: float | None = None,
                  progress: Callable[[int], None] | None = None) -> int:
    """Send each line as one message (bad lines too: the service must dead-letter them)."""
    producer = KafkaProducer(bootstrap_servers=cfg.kafka.bootstrap.split(","), acks="all", linger_ms=10,
                             batch_size=256 * 1024, max_request_size=4 * 1024 * 1024, client_id="careful-monitor-simulate",
                             **kafka_python_kwargs(cfg))
    topic = cfg.kafka.topics.events
    n = 0
    t0 = time.monotonic()
    try:
        for line in lines:
            producer.send(topic, key=_key(line), value=line)
            n += 1
            if rate:
                ahead = n / rate - (time.monotonic() - t0)  # token bucket: sleep only when ahead of schedule
                if ahead > 0.005:
                    time.sleep(ahead)
            if progress and n % 1000 == 0:
                progress(1000)
        producer.flush()
    finally:
        producer.close()
    return n
