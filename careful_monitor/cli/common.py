"""What every command shares: logging, the --config option, error handling and the config loader."""

from __future__ import annotations

import functools
import getpass
import logging
import re
import sys
import time
from collections.abc import Callable
from typing import Any

import click
import orjson

from careful_monitor.config import Config, load_config
from careful_monitor.errors import CarefulError

log = logging.getLogger("careful_monitor")

#: the Kafka clients' own loggers: while a broker is down or refuses a login they log the same lines
#: on every retry (several per second at first), which buries the service's own one-line reports
CLIENT_LOGGERS = ("aiokafka", "kafka", "faust", "mode")


class QuietRepeats(logging.Filter):
    """Let a client library's line through once per `every` seconds, however often it retries.

    Lines count as the same when they differ only in numbers (backoffs, ports, node ids). The first
    is logged; its repeats within `every` seconds are counted and dropped, and the next one logged
    after that says how many were dropped. A client's traceback (Faust logs one when its worker
    crashes, which `run` reports and recovers from) becomes its last line, appended to the message.
    The service's own loggers are never filtered; `--log-level debug` shows everything.
    """

    _NUMBER = re.compile(r"\d+(?:\.\d+)?")

    def __init__(self, every: float = 60.0, *, clock: Callable[[], float] = time.monotonic,
                 loggers: tuple[str, ...] = CLIENT_LOGGERS) -> None:
        super().__init__()
        self.every, self.clock, self.loggers = every, clock, loggers
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}  # key -> (last logged at, dropped since)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.split(".", 1)[0] not in self.loggers:
            return True
        if record.exc_info:  # (None, None, None) too: `log.exception` outside an except prints "NoneType: None"
            exc = record.exc_info[1]
            if exc is not None:
                record.msg, record.args = f"{record.getMessage()} ({type(exc).__name__}: {exc})", None
            record.exc_info = record.exc_text = None
        key = (record.name, record.levelno, self._NUMBER.sub("#", record.getMessage()))
        now = self.clock()
        last, dropped = self._seen.get(key, (None, 0))
        if last is not None and now - last < self.every:
            self._seen[key] = (last, dropped + 1)
            return False
        if len(self._seen) > 1000:  # bounded: forget the oldest shapes
            for old in list(self._seen)[:500]:
                del self._seen[old]
        self._seen[key] = (now, 0)
        if dropped and last is not None:
            record.msg = f"{record.getMessage()} (and {dropped} similar lines in the last {now - last:.0f} s)"
            record.args = None
        return True


def setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        class _Json(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:
                from datetime import UTC, datetime

                ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
                return orjson.dumps({"ts": ts, "level": record.levelname, "logger": record.name,
                                     "msg": record.getMessage()}).decode()
        handler.setFormatter(_Json())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    if root_level(level) > logging.DEBUG:  # `--log-level debug` shows every retry
        handler.addFilter(QuietRepeats())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(root_level(level))
    for noisy in ("alembic", *CLIENT_LOGGERS):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def root_level(level: str) -> int:
    return getattr(logging, level.upper(), logging.INFO)


def config_option(f: Callable) -> Callable:
    return click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                        help="YAML config file (default: $CAREFUL_MONITOR_CONFIG, else built-in defaults).")(f)


def handle_errors(f: Callable) -> Callable:
    """Turn careful-monitor errors into a one-line message and the documented exit code."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except CarefulError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


def nonblank(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A click callback: refuse an empty or whitespace-only value (exit 2, naming the option)."""
    if value is not None and not value.strip():
        raise click.BadParameter("must not be empty or only whitespace", ctx=ctx, param=param)
    return value


def example(command: str) -> str:
    """A `--help` epilog of one example line, kept unwrapped."""
    return f"\b\nExample: {command}"


def load(config_path: str | None, overrides: dict[str, Any] | None = None) -> Config:
    return load_config(config_path, overrides=overrides)


def log_serving(url: str) -> None:
    log.info("serving /metrics, /healthz, /readyz and /api on %s", url)


def user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
