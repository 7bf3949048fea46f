"""`careful-monitor topics create`: the service's topics, idempotently, with kafka-python's admin client."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kafka import errors as kafka_errors

from careful_monitor.config import Config
from careful_monitor.errors import ConfigError
from careful_monitor.runtime.kafka_settings import kafka_python_kwargs

if TYPE_CHECKING:
    from kafka.admin import KafkaAdminClient

log = logging.getLogger(__name__)

#: broker answers that mean the config asks for something the cluster refuses: key and fix
_CONFIG_ERRORS = {
    kafka_errors.InvalidReplicationFactorError: ("kafka.replication_factor", "at most the number of brokers"),
    kafka_errors.InvalidPartitionsError: ("kafka.partitions", "a positive number of partitions"),
    kafka_errors.InvalidTopicError: ("kafka.topics", "a legal topic name (letters, digits, '.', '_', '-')"),
    kafka_errors.InvalidConfigurationError: ("kafka.retention_ms", "a retention the broker accepts"),
    kafka_errors.PolicyViolationError: ("kafka.topics", "settings the cluster's create-topic policy allows"),
}


def service_topics(cfg: Config) -> list[str]:
    """Events, alerts and dead-letter topic names, in that order, without repeats."""
    t = cfg.kafka.topics
    return list(dict.fromkeys((t.events, t.alerts, t.dead_letters)))


def create_topics(cfg: Config, *, admin: KafkaAdminClient | None = None) -> dict[str, str]:
    """Create the events, alerts and dead-letter topics; return topic -> 'created' | 'exists'.

    Idempotent: a topic that exists is left as it is (a differing partition count is logged, not
    changed). Returns once created topics have a leader for every partition, so a producer can use
    them at once. Pass `admin` to reuse a client; otherwise one is opened and closed here.
    """
    k = cfg.kafka
    own = admin is None
    if admin is None:
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=k.bootstrap.split(","), client_id="careful-monitor-admin",
                                 **kafka_python_kwargs(cfg))
    try:
        spec = {name: {"num_partitions": k.partitions, "replication_factor": k.replication_factor,
                       "configs": {"retention.ms": str(k.retention_ms)}}
                for name in service_topics(cfg)}
        response = admin.create_topics(spec, raise_errors=False)
        status: dict[str, str] = {}
        for topic in response["topics"]:
            name, error = topic["name"], kafka_errors.for_code(topic["error_code"])
            if error is kafka_errors.NoError:
                status[name] = "created"
            elif error is kafka_errors.TopicAlreadyExistsError:
                status[name] = "exists"
            else:
                _raise(name, error, topic.get("error_message"))
        created = [name for name, s in status.items() if s == "created"]
        admin.wait_for_topics(created, timeout_ms=30_000)
        _warn_on_partition_mismatch(admin, [name for name, s in status.items() if s == "exists"], k.partitions)
        return {name: status[name] for name in spec}
    finally:
        if own:
            admin.close()


def _raise(topic: str, error: type[kafka_errors.KafkaError], message: str | None) -> None:
    problem = f"the broker refused to create topic {topic!r}: {message or error.__name__}"
    for cls, (key, need) in _CONFIG_ERRORS.items():
        if issubclass(error, cls):
            raise ConfigError(key, problem, f"use {need}")
    raise error(problem)


def _warn_on_partition_mismatch(admin: KafkaAdminClient, topics: list[str], partitions: int) -> None:
    if not topics:
        return
    for t in admin.describe_topics(topics):
        have = len(t.get("partitions") or [])
        if have and have != partitions:
            log.warning("topic %s exists with %d partitions, the config asks for %d; left unchanged",
                        t["name"], have, partitions)
