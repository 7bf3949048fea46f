"""The long-running parts: the Kafka service loop, the replay runner and the HTTP server."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from careful_monitor.config import Config
    from careful_monitor.runtime.kafka_loop import KafkaService
    from careful_monitor.sinks.prometheus import Metrics
    from careful_monitor.store import Store


def make_service(cfg: Config, store: Store, metrics: Metrics, *,
                 clock: Callable[[], float] = time.time) -> KafkaService:
    """The Kafka service of `kafka.runtime` (aiokafka, consumer or faust); `.run(stop)` runs it."""
    # imported here: only the configured runtime's client library is loaded (faust is slow to import)
    Service: type[KafkaService]
    if cfg.kafka.runtime == "faust":
        from careful_monitor.runtime.faust_app import FaustService as Service
    elif cfg.kafka.runtime == "aiokafka":
        from careful_monitor.runtime.aiokafka_loop import AioKafkaService as Service
    else:
        from careful_monitor.runtime.consumer import ConsumerService as Service
    return Service(cfg, store, metrics, clock=clock)
