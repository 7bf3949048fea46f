"""pytest plugin: a private PostgreSQL server for the test session, started by deploy/postgres/pg.sh.

Register it with `pytest_plugins = ["tests.integration.conftest_postgres"]`. Fixtures:
`postgres_server` (session: the running server), `postgres_url` (session: one database on it) and
`fresh_postgres_url` (function: a new empty database per test, dropped afterwards). PostgreSQL is
installed on first use if missing (Debian, as root); the server listens on a free port on 127.0.0.1
with its data in a fresh folder under the system temp dir, and is stopped at the end of the session.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

PG_SH = Path(__file__).resolve().parents[2] / "deploy" / "postgres" / "pg.sh"
READY_DEADLINE_S = 60.0
INSTALL_TIMEOUT_S = 900.0

_database_names = itertools.count()


@dataclass(frozen=True)
class PostgresServer:
    """A running private server: connect as the superuser `postgres` (trust auth) on 127.0.0.1:port."""

    port: int
    datadir: Path

    def url(self, database: str, *, driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def conninfo(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database} connect_timeout=5"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_sh(*args: str, timeout: float) -> None:
    result = subprocess.run(["bash", str(PG_SH), *args], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"pg.sh {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")


def _wait_ready(server: PostgresServer, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            with psycopg.connect(server.conninfo()) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                log = server.datadir / "server.log"
                tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                raise RuntimeError(f"PostgreSQL on port {server.port} not ready after {deadline_s}s: "
                                   f"{exc}\n{tail}") from exc
            time.sleep(0.05)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL server for the session, stopped and deleted at the end."""
    _pg_sh("install", timeout=INSTALL_TIMEOUT_S)
    # under the system temp dir rather than pytest's basetemp: as root the server runs as another
    # user, who can traverse /tmp but not pytest's private (0700) folders
    datadir = Path(tempfile.mkdtemp(prefix="careful-pg-"))
    last_error: Exception | None = None
    for _attempt in range(3):  # a free port can be taken between choosing it and binding it
        server = PostgresServer(port=_free_port(), datadir=datadir)
        try:
            _pg_sh("start", str(datadir), str(server.port), timeout=READY_DEADLINE_S + 30)
            break
        except RuntimeError as exc:
            last_error = exc
    else:
        shutil.rmtree(datadir, ignore_errors=True)
        raise RuntimeError(f"could not start PostgreSQL: {last_error}")
    try:
        _wait_ready(server, READY_DEADLINE_S)
        yield server
    finally:
        try:
            _pg_sh("stop", str(datadir), timeout=READY_DEADLINE_S + 30)
        finally:
            if os.environ.get("CAREFUL_KEEP_PGDATA") is None:
                shutil.rmtree(datadir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """`postgresql+psycopg://postgres@127.0.0.1:PORT/careful`: one database shared by the session."""
    return postgres_server.create_database("careful")


@pytest.fixture
def fresh_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A new empty database for one test, dropped afterwards (connections still open are cut)."""
    name = f"careful_{os.getpid()}_{next(_database_names)}"
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)
