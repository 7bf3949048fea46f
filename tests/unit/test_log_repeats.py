"""Issue 11: a Kafka client retrying against a down broker logs one line a minute, not several a second."""

from __future__ import annotations

import logging

from careful_monitor.cli.common import QuietRepeats


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_client_line_repeated_with_other_numbers_is_logged_once_a_minute_with_the_count_dropped() -> None:
    clock = Clock()
    f = QuietRepeats(60, clock=clock)
    passed = []
    for i in range(120):  # two a second for a minute, then once more
        clock.now = i * 0.5
        r = _record("kafka.net.manager", "Bootstrap connection to bootstrap-0 failed (backoff %.2f secs)", i / 7)
        if f.filter(r):
            passed.append(r.getMessage())
    clock.now = 60.0
    last = _record("kafka.net.manager", "Bootstrap connection to bootstrap-0 failed (backoff %.2f secs)", 27.68)
    assert f.filter(last)
    assert len(passed) == 1  # the first; the other 119 within the minute are dropped
    assert last.getMessage().endswith("(backoff 27.68 secs) (and 119 similar lines in the last 60 s)")


def test_different_lines_levels_and_the_services_own_loggers_are_not_held_back() -> None:
    clock = Clock()
    f = QuietRepeats(60, clock=clock)
    assert f.filter(_record("aiokafka.conn", "Connection lost"))
    assert f.filter(_record("aiokafka.conn", "Authentication failed"))  # another line
    assert f.filter(_record("aiokafka.conn", "Connection lost", level=logging.WARNING))  # another level
    for _ in range(5):  # the service's own lines always pass (one per window, per alert, per refusal)
        assert f.filter(_record("careful_monitor.runtime.kafka_loop", "not ready: Kafka refuses the credentials"))
    assert not f.filter(_record("aiokafka.conn", "Connection lost"))


def test_a_client_traceback_becomes_one_line() -> None:
    f = QuietRepeats(60, clock=Clock())
    try:
        raise RuntimeError("commit refused")
    except RuntimeError:
        import sys

        r = logging.LogRecord("mode.services", logging.ERROR, __file__, 1, "Crashed reason=%r", ("x",), sys.exc_info())
    assert f.filter(r)
    assert r.exc_info is None
    assert logging.Formatter().format(r) == "Crashed reason='x' (RuntimeError: commit refused)"


def test_an_exception_log_without_an_exception_prints_no_nonetype_line() -> None:
    r = logging.LogRecord("mode.services", logging.ERROR, __file__, 1, "Crashed", None, (None, None, None))
    assert QuietRepeats(60, clock=Clock()).filter(r)
    assert logging.Formatter().format(r) == "Crashed"
