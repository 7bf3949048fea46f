"""`careful-monitor topics create`: the service's topics, idempotently, with kafka-python's admin client."""

from __future__ import annotations

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from careful_monitor.config import Config
from careful_monitor.runtime.kafka_settings import kafka_python_kwargs


def create_topics(cfg: Config) -> dict[str, str]:
    """Create events, alerts and dead-letter topics; returns topic -> 'created' | 'exists'."""
    k = cfg.kafka
    admin = KafkaAdminClient(bootstrap_servers=k.bootstrap.split(","), client_id="careful-monitor-admin",
                             **kafka_python_kwargs(cfg))
    try:
        existing = set(admin.list_topics())
        out = {}
        for topic in (k.topics.events, k.topics.alerts, k.topics.dead_letters):
            if topic in existing:
                out[topic] = "exists"
                continue
            try:
                admin.create_topics([NewTopic(topic, num_partitions=k.partitions, replication_factor=k.replication_factor,
                                              topic_configs={"retention.ms": str(k.retention_ms)})])
                out[topic] = "created"
            except TopicAlreadyExistsError:
                out[topic] = "exists"
        return out
    finally:
        admin.close()
