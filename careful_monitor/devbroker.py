"""A throw-away local Kafka broker for `demo --kafka` and `bench --kafka`, from a source checkout.

It runs `deploy/kafka/broker.sh` (a single KRaft node, no Docker) on free ports with its logs and
data under a work folder, and returns once the broker answers an admin client. Not for production:
`run` connects to the broker of `kafka.bootstrap`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _script() -> Path | None:
    for root in (Path.cwd(), Path(__file__).resolve().parents[1]):
        script = root / "deploy" / "kafka" / "broker.sh"
        if script.exists():
            return script
    return None


@dataclass
class LocalBroker:
    """A started broker: `bootstrap` to connect, `stop()` (idempotent) to shut it down."""

    bootstrap: str
    _script: Path
    _env: dict[str, str] = field(repr=False)
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            subprocess.run([str(self._script), "stop"], env=self._env, capture_output=True, timeout=120)


def start_local_broker(workdir: Path, *, needed_by: str = "bench --kafka") -> LocalBroker:
    """Start deploy/kafka/broker.sh on free ports, logs and data in `workdir`/kafka; wait until it answers."""
    script = _script()
    if script is None:
        raise RuntimeError(f"{needed_by} needs deploy/kafka/broker.sh (run it from a source checkout) or --bootstrap")
    port = _free_port()
    env = {**os.environ, "PORT": str(port), "CONTROLLER_PORT": str(_free_port()), "LOG_DIR": str(workdir / "kafka")}
    subprocess.run([str(script), "start"], env=env, check=True, capture_output=True, timeout=600)
    broker = LocalBroker(f"127.0.0.1:{port}", script, env)
    from kafka.admin import KafkaAdminClient

    deadline = time.monotonic() + 120
    while True:
        try:
            KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=3000).close()
            return broker
        except Exception:
            if time.monotonic() > deadline:
                broker.stop()
                raise
            time.sleep(0.3)
