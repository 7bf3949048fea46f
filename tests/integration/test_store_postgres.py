"""The store against a real PostgreSQL server: every behaviour test of tests/unit/test_store.py, rerun
on a fresh PostgreSQL database each (by overriding `store_url`), plus what only a server can show."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from careful_monitor.store import Store
from tests.unit.test_store import *  # noqa: F403 - collected again here, on PostgreSQL
from tests.unit.test_store import register, window

if TYPE_CHECKING:  # imported by pytest as a plugin, so that its asserts are rewritten
    from tests.integration.conftest_postgres import PostgresServer

# no-op once tests/integration/conftest.py registers the plugin; lets this module run on its own
pytest_plugins = ["tests.integration.conftest_postgres"]

pytestmark = pytest.mark.integration


@pytest.fixture
def store_url(fresh_postgres_url: str) -> str:
    """A new, empty PostgreSQL database per test."""
    return fresh_postgres_url


def test_plain_postgresql_urls_work_and_the_password_is_masked(postgres_server: PostgresServer,
                                                               fresh_postgres_url: str) -> None:
    database = fresh_postgres_url.rsplit("/", 1)[1]
    # trust authentication accepts any password, so the masking can be checked on a real connection
    url = f"postgresql://postgres:s3cret@127.0.0.1:{postgres_server.port}/{database}"
    with Store(url) as store:
        assert store.url == f"postgresql+psycopg://postgres:***@127.0.0.1:{postgres_server.port}/{database}"
        assert "s3cret" not in repr(store)
        register(store, "tickets-real")
        assert store.get_dataset("tickets-real") is not None


def test_ping_is_false_while_the_database_is_gone(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database("careful_ping")
    with Store(url) as store:
        assert store.ping()
        postgres_server.drop_database("careful_ping")
        assert not store.ping()
        postgres_server.create_database("careful_ping")
        assert store.ping()  # comes back by itself once the database is there again
    postgres_server.drop_database("careful_ping")


def test_the_session_database_is_shared(postgres_url: str) -> None:
    with Store(postgres_url) as first, Store(postgres_url) as second:
        first.commit_batch(windows=[window("shared", 0)])
        second.commit_batch(windows=[window("shared", 0, note="redelivered to another worker")])
        assert second.last_windows("shared") == [window("shared", 0)]
