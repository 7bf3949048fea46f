"""What every command shares: logging, the --config option, error handling and the config loader."""

from __future__ import annotations

import functools
import getpass
import logging
import sys
from collections.abc import Callable
from typing import Any

import click
import orjson

from careful_monitor.config import Config, load_config
from careful_monitor.errors import CarefulError

log = logging.getLogger("careful_monitor")


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
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for noisy in ("alembic", "aiokafka", "kafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


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
