"""pytest plugin: a real Kafka broker for the test session, started by deploy/kafka/broker.sh.

Register it with `pytest_plugins = ["tests.integration.conftest_kafka"]` in the top-level conftest.
Fixtures: `kafka_broker` (session: the running broker: `bootstrap`, `log_dir`, start timings, and
`restart()` with the same ports and data, for outage tests), `kafka_bootstrap` (session:
"127.0.0.1:PORT") and `kafka_config` (function: a Config pointing at the broker, with topic and
group names of its own, and paths under the test's tmp_path); `kafka_sasl_broker` (module: a broker of
the module's own with a SASL_SSL listener too, `SaslSslBroker`).

The broker's jars come from Maven Central through deploy/kafka/fetch.sh on first use (a no-op
later); the broker runs on free ports with a fresh log folder and is stopped by its process id at the
end of the session, or by broker.sh's watcher if the test process dies first.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from careful_monitor.config import Config, load_config

KAFKA_DIR = Path(__file__).resolve().parents[2] / "deploy" / "kafka"
FETCH_SH = KAFKA_DIR / "fetch.sh"
BROKER_SH = KAFKA_DIR / "broker.sh"
FETCH_TIMEOUT_S = 900.0  # a fresh machine downloads ~45 MB from Maven Central
READY_DEADLINE_S = 120.0
START_ATTEMPTS = 3  # a free port can be taken by someone else before the broker binds it


class KafkaBroker:
    """A single-node broker on 127.0.0.1, run by broker.sh with its own ports and log folder."""

    def __init__(self, port: int, controller_port: int, log_dir: Path, fetch_seconds: float = 0.0) -> None:
        self.port, self.controller_port, self.log_dir = port, controller_port, log_dir
        self.fetch_seconds = fetch_seconds
        self.start_seconds = 0.0  # last `start`: broker.sh start until the broker answered a metadata request
        self.env = {**os.environ, "PORT": str(port), "CONTROLLER_PORT": str(controller_port), "LOG_DIR": str(log_dir),
                    "OWNER_PID": str(os.getpid())}

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while broker.sh has it running."""
        path = self.log_dir / "broker.pid"
        return int(path.read_text()) if path.exists() else None

    def start(self) -> None:
        """Start (formatting the log folder on first use) and return once it answers metadata requests."""
        t0 = time.monotonic()
        started = subprocess.run([str(BROKER_SH), "start"], env=self.env, timeout=READY_DEADLINE_S + 60,
                                 capture_output=True, text=True)
        pid = self.pid
        if started.returncode != 0 or pid is None:
            self.stop()
            raise BrokerStartError(f"broker.sh start failed (ports {self.port}/{self.controller_port}):\n"
                                   f"{started.stdout}{started.stderr}")
        try:
            _wait_until_ready(self.bootstrap, pid, t0 + READY_DEADLINE_S)
        except RuntimeError as exc:
            self.stop()
            raise BrokerStartError(f"{exc}\n{self.log_tail()}") from None
        self.start_seconds = time.monotonic() - t0

    def stop(self) -> None:
        """Stop by process id: TERM, then KILL after broker.sh's deadline."""
        pid = self.pid
        subprocess.run([str(BROKER_SH), "stop"], env=self.env, timeout=120, capture_output=True)
        if pid is not None and _pid_alive(pid):  # broker.sh could not: our own pid, our own signal
            os.kill(pid, 9)

    def restart(self) -> None:
        """Stop and start again on the same ports with the same data (topics and offsets kept)."""
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for name in ("stdout.log", "broker.log"):
            path = self.log_dir / name
            if path.exists():
                out.append(f"--- {path}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)


class BrokerStartError(RuntimeError):
    """broker.sh could not start the broker, or it did not answer in time."""


def _free_ports(n: int) -> list[int]:
    """n distinct ports free right now (held open together so the kernel cannot hand one out twice)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True


def _fetch() -> float:
    t0 = time.monotonic()
    try:
        subprocess.run([str(FETCH_SH)], check=True, timeout=FETCH_TIMEOUT_S, capture_output=True, text=True)
    except FileNotFoundError as exc:
        pytest.fail(f"cannot run {FETCH_SH}: {exc}")
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"fetching Kafka from Maven Central failed (needs Java 17+ and Maven):\n{exc.stdout}{exc.stderr}")
    return time.monotonic() - t0


def _wait_until_ready(bootstrap: str, pid: int, deadline: float) -> None:
    """Poll until the broker answers a metadata request (lists topics), or fail with its logs."""
    from kafka.admin import KafkaAdminClient

    last: Exception | None = None
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            raise RuntimeError(f"the broker (pid {pid}) exited before answering; last error: {last!r}")
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="careful-monitor-tests",
                                     request_timeout_ms=5000)
            try:
                admin.list_topics()
                return
            finally:
                admin.close()
        except Exception as exc:
            last = exc
            time.sleep(0.2)  # poll interval, bounded by the deadline
    raise RuntimeError(f"the broker did not answer metadata requests within {READY_DEADLINE_S:.0f}s: {last!r}")


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    fetch_seconds = _fetch()
    errors = []
    for _ in range(START_ATTEMPTS):
        broker = KafkaBroker(*_free_ports(2), tmp_path_factory.mktemp("kafka"), fetch_seconds)
        try:
            broker.start()
        except BrokerStartError as exc:
            errors.append(str(exc))
            continue
        (broker.log_dir / "timings.txt").write_text(
            f"fetch_seconds={fetch_seconds:.1f}\nstart_seconds={broker.start_seconds:.1f}\n")
        try:
            yield broker
        finally:
            broker.stop()
        return
    pytest.fail("could not start the Kafka broker:\n" + "\n".join(errors))


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: KafkaBroker) -> str:
    """"127.0.0.1:PORT" of the session's broker."""
    return kafka_broker.bootstrap


@pytest.fixture
def kafka_config(tmp_path: Path, kafka_bootstrap: str, request: pytest.FixtureRequest) -> Config:
    """A Config on the session's broker, with topics and group of this test only, paths under tmp_path."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")[:40].lower()
    prefix = f"test.{slug}.{uuid.uuid4().hex[:8]}"
    cfg = load_config(None, environ={}, overrides={
        "kafka": {"bootstrap": kafka_bootstrap, "group": prefix,
                  "topics": {"events": f"{prefix}.events", "alerts": f"{prefix}.alerts",
                             "dead_letters": f"{prefix}.dead-letters"}},
        "store": {"url": f"sqlite:///{tmp_path / 'careful.db'}"},
        "dead_letters": {"path": str(tmp_path / "dead-letters.jsonl")},
    })
    cfg.base_dir = tmp_path  # relative paths (password_file, data) resolve in the test's folder
    return cfg


# --- a broker with a SASL_SSL listener (tests/integration/test_kafka_sasl.py) --------------------------
class SaslSslBroker(KafkaBroker):
    """The broker with a SASL_SSL listener as well (broker.sh with CAREFUL_KAFKA_SASL_SSL=1).

    SCRAM-SHA-512 user `user`, created at format time with the password in `password_file`; the
    listener's certificate is signed by `ca_file`, a throwaway CA broker.sh writes with openssl into
    the log folder. Sessions re-authenticate every `reauth_ms`, so a deleted user is locked out soon.
    The PLAINTEXT listener (`bootstrap`) stays for the tests' own admin calls.
    """

    user = "careful"

    def __init__(self, port: int, controller_port: int, sasl_port: int, log_dir: Path, fetch_seconds: float = 0.0,
                 reauth_ms: int = 10_000) -> None:
        super().__init__(port, controller_port, log_dir, fetch_seconds)
        self.sasl_port = sasl_port
        self.env.update({"CAREFUL_KAFKA_SASL_SSL": "1", "SASL_PORT": str(sasl_port), "SASL_USER": self.user,
                         "REAUTH_MS": str(reauth_ms)})

    @property
    def sasl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_port}"

    @property
    def password_file(self) -> Path:
        return self.log_dir / "sasl-password"

    @property
    def ca_file(self) -> Path:
        return self.log_dir / "certs" / "ca.pem"

    def delete_user(self) -> None:
        """Delete the SCRAM user (what `kafka-configs.sh --alter --delete-config SCRAM-SHA-512` does)."""
        from kafka.admin import ScramMechanism, UserScramCredentialDeletion

        self._alter_user(UserScramCredentialDeletion(self.user, ScramMechanism.SCRAM_SHA_512))

    def restore_user(self) -> None:
        """Create the SCRAM user again with the password of `password_file`."""
        from kafka.admin import ScramMechanism, UserScramCredentialUpsertion

        password = self.password_file.read_text().strip()
        self._alter_user(UserScramCredentialUpsertion(self.user, ScramMechanism.SCRAM_SHA_512, password))

    def _alter_user(self, alteration: object) -> None:
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="careful-monitor-tests",
                                 request_timeout_ms=10_000)
        try:
            errors = admin.alter_user_scram_credentials([alteration])
        finally:
            admin.close()
        assert errors == {self.user: None}, errors


@pytest.fixture(scope="module")
def kafka_sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslSslBroker]:
    """A broker of the test module's own with a SASL_SSL listener (module scope: tests may delete its user)."""
    fetch_seconds = _fetch()
    errors = []
    for _ in range(START_ATTEMPTS):
        broker = SaslSslBroker(*_free_ports(3), tmp_path_factory.mktemp("kafka-sasl"), fetch_seconds)
        try:
            broker.start()
        except BrokerStartError as exc:
            errors.append(str(exc))
            continue
        try:
            yield broker
        finally:
            broker.stop()
        return
    pytest.fail("could not start the SASL_SSL Kafka broker:\n" + "\n".join(errors))
