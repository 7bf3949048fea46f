"""A real Kafka broker for the test session: fetched from Maven Central, started on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

BROKER = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "broker.sh"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory):
    port, cport = _free_port(), _free_port()
    log_dir = tmp_path_factory.mktemp("kafka")
    env = {**os.environ, "PORT": str(port), "CONTROLLER_PORT": str(cport), "LOG_DIR": str(log_dir)}
    subprocess.run([str(BROKER), "start"], env=env, check=True, timeout=600)
    bootstrap = f"127.0.0.1:{port}"
    try:
        from kafka.admin import KafkaAdminClient

        deadline = time.monotonic() + 120
        last = None
        while time.monotonic() < deadline:
            try:
                admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
                admin.list_topics()
                admin.close()
                break
            except Exception as exc:  # noqa: BLE001 - not up yet
                last = exc
                time.sleep(0.3)
        else:
            log = (log_dir / "broker.log").read_text() if (log_dir / "broker.log").exists() else ""
            raise RuntimeError(f"Kafka broker did not answer within 120 s: {last}\n{log[-3000:]}")
        yield bootstrap
    finally:
        subprocess.run([str(BROKER), "stop"], env=env, timeout=120)
