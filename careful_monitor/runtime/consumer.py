"""`kafka.runtime: consumer`: the service loop on a plain kafka-python consumer group.

Only the client calls live here; the loop itself (store, then commit; reload and seek on assignment;
backoff while the store is down) is `kafka_loop.KafkaService`. kafka-python parses record batches
in pure Python, which caps this runtime well below the default `aiokafka` one (README, "Kafka").
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from careful_monitor.config import Config
from careful_monitor.runtime.kafka_loop import ConsumerFactory, KafkaService, OnRebalance, Partition, Record

if TYPE_CHECKING:
    from kafka import KafkaConsumer

MAX_RECORDS = 5000
#: the most bytes of one partition in one fetch (the whole fetch: `kafka.fetch_max_bytes`)
MAX_PARTITION_FETCH_BYTES = 8 * 1024 * 1024


class KafkaPythonClient:
    """`ConsumerClient` over kafka-python's `KafkaConsumer` (its calls block; the loop runs nothing else)."""

    name = "kafka-python"
    #: kafka-python fetches only inside `poll`: nothing would overlap a batch, so it runs inline
    batch_lock: asyncio.Lock | None = None

    def __init__(self, consumer: KafkaConsumer, *, max_records: int = MAX_RECORDS) -> None:
        self.consumer, self.max_records = consumer, max_records

    async def start(self, topic: str, on_assigned: OnRebalance, on_revoked: OnRebalance) -> None:
        from kafka import ConsumerRebalanceListener

        class _Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked: Any) -> None:
                on_revoked(revoked)

            def on_partitions_assigned(self, assigned: Any) -> None:
                on_assigned(assigned)

        self.consumer.subscribe([topic], listener=_Listener())  # joins the group on the first poll

    async def poll(self, timeout_ms: int) -> Mapping[Partition, Sequence[Record]]:
        from kafka.errors import SaslAuthenticationFailedError

        try:
            return self.consumer.poll(timeout_ms=timeout_ms, max_records=self.max_records)
        except SaslAuthenticationFailedError:
            # the brokers refuse us now (user deleted, password changed): kafka-python raises it from
            # poll where aiokafka retries; stay up, not-ready (kafka_settings.CredentialsWatch), and retry
            await asyncio.sleep(timeout_ms / 1000)
            return {}

    async def commit(self, offsets: Mapping[Partition, int]) -> None:
        from kafka.structs import OffsetAndMetadata

        self.consumer.commit({tp: OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()})

    def seek(self, partition: Partition, offset: int) -> None:
        self.consumer.seek(partition, offset)

    def assignment(self) -> Collection[Partition]:
        return self.consumer.assignment()

    async def end_offsets(self, partitions: Sequence[Partition]) -> Mapping[Partition, int]:
        return self.consumer.end_offsets(list(partitions))

    async def position(self, partition: Partition) -> int:
        return self.consumer.position(partition)

    async def close(self) -> None:
        self.consumer.close(autocommit=False)


def kafka_python_consumer(cfg: Config) -> KafkaPythonClient:
    """The real client from the config: manual commits, from the earliest offset when the group has none."""
    from kafka import KafkaConsumer

    from careful_monitor.runtime.kafka_settings import kafka_python_kwargs

    return KafkaPythonClient(KafkaConsumer(
        bootstrap_servers=cfg.kafka.bootstrap.split(","), group_id=cfg.kafka.group, enable_auto_commit=False,
        auto_offset_reset="earliest", max_poll_records=MAX_RECORDS, fetch_max_bytes=cfg.kafka.fetch_max_bytes,
        max_partition_fetch_bytes=max(MAX_PARTITION_FETCH_BYTES, cfg.limits.max_event_bytes + 1024),
        client_id="careful-monitor", **kafka_python_kwargs(cfg)))


class ConsumerService(KafkaService):
    """The Kafka service on kafka-python (`kafka.runtime: consumer`)."""

    default_consumer: ClassVar[ConsumerFactory | None] = staticmethod(kafka_python_consumer)
