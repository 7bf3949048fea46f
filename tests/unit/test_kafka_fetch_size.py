"""`kafka.fetch_max_bytes`: one validated key that sizes a fetch in every runtime."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from careful_monitor.config import load_config
from careful_monitor.errors import ConfigError

MIB = 1024 * 1024


def test_default_is_64_mib_and_every_layer_sets_it(tmp_path: Path) -> None:
    assert load_config(None, environ={}).kafka.fetch_max_bytes == 64 * MIB
    f = tmp_path / "c.yaml"
    f.write_text("kafka: {fetch_max_bytes: 8388608}\n")
    assert load_config(f, environ={}).kafka.fetch_max_bytes == 8 * MIB
    env = {"CAREFUL_MONITOR_KAFKA__FETCH_MAX_BYTES": "1048576"}
    assert load_config(f, environ=env).kafka.fetch_max_bytes == MIB
    flags = {"kafka": {"fetch_max_bytes": 2 * MIB}}
    assert load_config(f, environ=env, overrides=flags).kafka.fetch_max_bytes == 2 * MIB


@pytest.mark.parametrize("value", [0, -1, "lots", True, 2.0, 1.5, None, 2**31])
def test_a_bad_value_is_a_config_error_naming_the_key(tmp_path: Path, value: object) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, environ={}, overrides={"kafka": {"fetch_max_bytes": value}})
    assert "kafka.fetch_max_bytes" in str(err.value)


def test_a_bad_value_from_the_environment_names_the_key_too() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, environ={"CAREFUL_MONITOR_KAFKA__FETCH_MAX_BYTES": "0"})
    assert "kafka.fetch_max_bytes" in str(err.value) and "greater than 0" in str(err.value)


class _Recorder:
    """Stands in for a client class: keeps the keyword settings it was built with."""

    built: ClassVar[dict[str, object]] = {}

    def __init__(self, *args: object, **kwargs: object) -> None:
        type(self).built = kwargs


def test_every_runtime_fetches_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import aiokafka
    import kafka

    from careful_monitor.runtime.aiokafka_loop import aiokafka_consumer
    from careful_monitor.runtime.consumer import kafka_python_consumer
    from careful_monitor.runtime.faust_app import faust_app, partition_fetch_bytes

    cfg = load_config(None, environ={}, overrides={"kafka": {"fetch_max_bytes": 12 * MIB, "partitions": 4}})
    monkeypatch.setattr(aiokafka, "AIOKafkaConsumer", _Recorder)
    aiokafka_consumer(cfg)
    assert _Recorder.built["fetch_max_bytes"] == 12 * MIB
    monkeypatch.setattr(kafka, "KafkaConsumer", _Recorder)
    kafka_python_consumer(cfg)
    assert _Recorder.built["fetch_max_bytes"] == 12 * MIB
    # Faust bounds a fetch per partition only: the key is shared by the topic's partitions
    assert partition_fetch_bytes(cfg) == 3 * MIB
    assert faust_app(cfg).conf.consumer_max_fetch_size == 3 * MIB
    small = cfg.model_copy(update={"kafka": cfg.kafka.model_copy(update={"fetch_max_bytes": 1000})})
    assert partition_fetch_bytes(small) == cfg.limits.max_event_bytes + 1024  # the largest event still fits
