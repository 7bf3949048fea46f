"""Issue 11: the start-up SIGTERM handler raises SystemExit only where unwinding is safe.

A SystemExit raised in the middle of a psycopg query left the connection ACTIVE; SQLAlchemy's
clean-up then failed ("can't change 'autocommit' now") and that error replaced the SystemExit:
exit 1 instead of 0 (CI, fault suite, busy cores). Inside an import or the store's libraries the
handler records the signal and has it sent again a moment later instead.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import ClassVar

import pytest

import careful_monitor
from careful_monitor import TERMINATING, exit_if_terminating, exit_on_sigterm


class Resend:
    """Stands in for threading.Timer: records the re-sent signal instead of signalling pytest itself."""

    sent: ClassVar[list[tuple[float, tuple]]] = []

    def __init__(self, interval: float, _function: object, args: tuple) -> None:
        self.interval, self.args, self.daemon = interval, args, False

    def start(self) -> None:
        Resend.sent.append((self.interval, self.args))


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch) -> Iterator[None]:
    monkeypatch.setattr(threading, "Timer", Resend)
    monkeypatch.setattr(careful_monitor, "_raised", False)
    Resend.sent = []
    TERMINATING.clear()
    yield
    TERMINATING.clear()


def _frame_in(module: str) -> FrameType:
    """A real frame whose code runs as a function of `module` (what the handler sees mid-call)."""
    namespace: dict = {"__name__": module, "sys": sys}
    exec("def here():\n    return sys._getframe()\n", namespace)
    return namespace["here"]()


@pytest.mark.parametrize("module", ["sqlalchemy.engine.base", "psycopg.cursor", "alembic.runtime.migration"])
def test_inside_the_store_libraries_the_signal_is_deferred_not_raised(module: str) -> None:
    exit_on_sigterm(signal.SIGTERM, _frame_in(module))  # returns: no SystemExit mid-query
    assert TERMINATING.is_set()
    assert [interval for interval, _ in Resend.sent] == [careful_monitor.RETRY_S]
    with pytest.raises(SystemExit) as exited:  # and the next stage boundary leaves, exit 0
        exit_if_terminating()
    assert exited.value.code == 0


def test_in_the_service_s_own_code_it_unwinds_at_once() -> None:
    with pytest.raises(SystemExit) as exited:
        exit_on_sigterm(signal.SIGTERM, _frame_in("careful_monitor.app"))
    assert exited.value.code == 0
    assert TERMINATING.is_set() and Resend.sent == []


def test_a_second_signal_while_unwinding_does_not_interrupt_the_unwinding() -> None:
    with pytest.raises(SystemExit):
        exit_on_sigterm(signal.SIGTERM, _frame_in("careful_monitor.app"))
    exit_on_sigterm(signal.SIGTERM, _frame_in("careful_monitor.app"))  # returns quietly


def test_a_package_merely_named_like_a_store_library_is_not_deferred() -> None:
    with pytest.raises(SystemExit):
        exit_on_sigterm(signal.SIGTERM, _frame_in("sqlalchemy_utils_lookalike"))
