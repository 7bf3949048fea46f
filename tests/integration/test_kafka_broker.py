"""The local Kafka broker from deploy/kafka, and the service's topics and producer against it.

The fixtures (`kafka_broker`, `kafka_bootstrap`, `kafka_config`) come from
tests/integration/conftest_kafka.py, registered as a plugin in tests/conftest.py.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter, defaultdict

import orjson
import pytest

from careful_monitor.config import Config
from careful_monitor.errors import ConfigError
from careful_monitor.runtime.kafka_settings import aiokafka_kwargs
from careful_monitor.runtime.producer import TokenBucket, event_key, produce_lines
from careful_monitor.runtime.topics import create_topics
from tests.integration.conftest_kafka import BROKER_SH

MODELS = ("ticket-router", "fraud-scorer", "churn")
BAD_LINES = (b"not json", b'{"inputs": {"amount": 1}}', b'{"model": 7}', b"[1, 2]")


def events(n: int) -> list[bytes]:
    """n events over three models, each with an id that orders it within its model."""
    return [orjson.dumps({"model": MODELS[i % 3], "model_version": "1", "ts": 1_764_000_000.0 + i, "id": f"req-{i}",
                          "inputs": {"amount": float(i % 97), "country": "DE"},
                          "outputs": {"label": "billing", "probs": {"billing": 0.9, "tech": 0.1}, "score": 0.9}})
            for i in range(n)]


def consume_all(cfg: Config, topic: str, expected: int, deadline_s: float = 60.0) -> list:
    """Every record of `topic` from the beginning, polling until `expected` arrived or the deadline."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=cfg.kafka.bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", client_id="careful-monitor-tests")
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(cfg.kafka.partitions)])
        records: list = []
        deadline = time.monotonic() + deadline_s
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        # nothing beyond what was produced: a short extra poll must come back empty
        records.extend(r for batch in consumer.poll(timeout_ms=200).values() for r in batch)
        return records
    finally:
        consumer.close()


@pytest.mark.integration
def test_the_broker_is_a_single_kraft_node_that_answers(kafka_broker) -> None:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    try:
        cluster = admin.describe_cluster()
        assert [(b["host"], b["port"]) for b in cluster["brokers"]] == [("127.0.0.1", kafka_broker.port)]
        assert cluster["controller_id"] == 1
        assert admin.get_broker_version_data(1).broker_version[0] == 4
    finally:
        admin.close()
    env = {**os.environ, "PORT": str(kafka_broker.port), "LOG_DIR": str(kafka_broker.log_dir)}
    status = subprocess.run([str(BROKER_SH), "status"], env=env, capture_output=True, text=True)
    assert status.returncode == 0 and f"pid {kafka_broker.pid}" in status.stdout
    assert "Kafka Server started" in (kafka_broker.log_dir / "broker.log").read_text()
    # a second broker on the same ports is refused before Java starts, not left to die later
    clash = subprocess.run([str(BROKER_SH), "start"], capture_output=True, text=True,
                           env={**env, "LOG_DIR": str(kafka_broker.log_dir / "clash")})
    assert clash.returncode == 1 and "already in use" in clash.stderr


@pytest.mark.integration
def test_create_topics_is_idempotent_and_applies_the_config(kafka_config: Config) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    k = kafka_config.kafka
    names = [k.topics.events, k.topics.alerts, k.topics.dead_letters]
    assert create_topics(kafka_config) == dict.fromkeys(names, "created")
    assert create_topics(kafka_config) == dict.fromkeys(names, "exists")

    admin = KafkaAdminClient(bootstrap_servers=k.bootstrap)
    try:
        described = {t["name"]: t for t in admin.describe_topics(names)}
        assert {n: len(described[n]["partitions"]) for n in names} == dict.fromkeys(names, k.partitions)
        assert all(len(p["replica_nodes"]) == k.replication_factor for t in described.values() for p in t["partitions"])
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n, {"retention.ms": None})
                                          for n in names])["topic"]
        assert {n: configs[n]["retention.ms"]["value"] for n in names} == dict.fromkeys(names, str(k.retention_ms))
        # the same call through a client the caller owns leaves it open
        assert create_topics(kafka_config, admin=admin) == dict.fromkeys(names, "exists")
        assert admin.list_topics()
    finally:
        admin.close()


@pytest.mark.integration
def test_a_topic_the_cluster_cannot_host_is_a_config_error(kafka_config: Config) -> None:
    impossible = kafka_config.model_copy(
        update={"kafka": kafka_config.kafka.model_copy(update={"replication_factor": 3})})
    with pytest.raises(ConfigError) as err:
        create_topics(impossible)
    assert err.value.key == "kafka.replication_factor" and "replicat" in err.value.problem


@pytest.mark.integration
def test_produced_events_come_back_keyed_by_model(kafka_config: Config) -> None:
    create_topics(kafka_config)
    good = events(6000)
    lines = good + list(BAD_LINES) + [b"", b"  \n"]  # blank lines are skipped, as replay skips them
    told: list[int] = []

    assert produce_lines(kafka_config, iter(lines), progress=told.append) == len(good) + len(BAD_LINES)
    assert sum(told) == len(good) + len(BAD_LINES) and max(told) <= 1000

    records = consume_all(kafka_config, kafka_config.kafka.topics.events, len(good) + len(BAD_LINES))
    assert Counter(r.value for r in records) == Counter(good + list(BAD_LINES))
    for r in records:
        event = orjson.loads(r.value) if r.value not in BAD_LINES else None
        assert r.key == (event["model"].encode() if event else None)
    # keyed by model: one partition per model, and each model's events in production order
    partitions, ids = defaultdict(set), defaultdict(list)
    for r in sorted((r for r in records if r.key), key=lambda r: (r.partition, r.offset)):
        partitions[r.key].add(r.partition)
        ids[r.key].append(int(orjson.loads(r.value)["id"].split("-")[1]))
    assert set(partitions) == {m.encode() for m in MODELS} and all(len(p) == 1 for p in partitions.values())
    assert all(seq == sorted(seq) and len(seq) == 2000 for seq in ids.values())


@pytest.mark.integration
def test_a_rate_paces_production(kafka_config: Config) -> None:
    create_topics(kafka_config)
    t0 = time.monotonic()
    assert produce_lines(kafka_config, events(600), rate=2000.0) == 600
    elapsed = time.monotonic() - t0
    assert elapsed >= 599 / 2000 * 0.95, elapsed  # no burst at the start: 600 events need ~0.3 s
    assert len(consume_all(kafka_config, kafka_config.kafka.topics.events, 600)) == 600


@pytest.mark.integration
def test_aiokafka_reaches_the_broker_with_our_settings(kafka_config: Config) -> None:
    """Faust runs on aiokafka: a group consumer and a producer built from aiokafka_kwargs round-trip."""
    import asyncio

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    create_topics(kafka_config)
    topic, sent = kafka_config.kafka.topics.events, events(300)

    async def round_trip() -> list:
        common = {"bootstrap_servers": kafka_config.kafka.bootstrap, **aiokafka_kwargs(kafka_config)}
        producer = AIOKafkaProducer(**common)
        await producer.start()
        try:
            for line in sent:
                await producer.send(topic, key=event_key(line), value=line)
            await producer.flush()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, group_id=kafka_config.kafka.group, auto_offset_reset="earliest",
                                    enable_auto_commit=False, **common)
        await consumer.start()
        try:
            got: list = []
            deadline = time.monotonic() + 60
            while len(got) < len(sent) and time.monotonic() < deadline:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    got.extend(batch)
            await consumer.commit()
            return got
        finally:
            await consumer.stop()

    got = asyncio.run(round_trip())
    assert Counter(r.value for r in got) == Counter(sent)
    assert all(r.key == orjson.loads(r.value)["model"].encode() for r in got)


def test_the_token_bucket_sleeps_in_slices_not_per_event() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    slow = TokenBucket(10.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(11):
        slow.take()
    assert now[0] == pytest.approx(1.0) and len(slept) == 10  # 10/s: one pause per event is the pace itself

    now[0], slept[:] = 0.0, []
    fast = TokenBucket(100_000.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(100_001):
        fast.take()
    assert now[0] == pytest.approx(1.0, rel=0.01) and len(slept) <= 250  # 5 ms slices, not 100,000 sleeps

    now[0] += 60.0  # a long stall refills at most the burst (50 ms worth), not a minute's worth
    start, n = now[0], 0
    while now[0] == start:
        fast.take()
        n += 1
    assert n <= fast.burst + fast.debt_limit + 1


def test_the_key_is_the_model_or_nothing() -> None:
    assert event_key(b'{"model": "churn", "ts": 1}') == b"churn"
    assert [event_key(line) for line in BAD_LINES] == [None] * len(BAD_LINES)
