"""The Kafka commands: `run` (the long-running service), `topics create` and `simulate`."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import click
import orjson

from careful_monitor.cli.common import config_option, example, handle_errors, load, log, log_serving


@click.command("run", epilog=example("careful-monitor run --config cfg.yaml --port 9308"))
@config_option
@click.option("--port", type=int, default=None, help="HTTP port for /metrics, probes and the API (default: http.port).")
@handle_errors
def run(config_path: str | None, port: int | None) -> None:
    """The long-running Kafka service: consume events, evaluate windows, publish alerts.

    Offsets are committed only after the window results, alerts and engine state they cover are
    stored; SIGTERM finishes the current batch, persists, commits and exits 0 (before the loop
    runs, it exits 0 at once). While a dataset of a model's mix is not registered, or the store's
    schema is behind (store.auto_migrate: false), it stays up and not-ready, says what it waits
    for, and starts once that is fixed.
    """
    import signal

    from careful_monitor import TERMINATING, exit_if_terminating
    from careful_monitor.app import build
    from careful_monitor.runtime import make_service
    from careful_monitor.runtime.kafka_loop import StartGate

    # until the loop runs nothing is stored or committed: SIGTERM unwinds (closing the store and the
    # HTTP server) and exits 0; `careful_monitor/__init__.py` set the same handler at the first import.
    # Each stage below also checks TERMINATING, in case a SystemExit raised by the handler was swallowed.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    exit_if_terminating()
    cfg = load(config_path)
    gate = StartGate(cfg, sleep=_sleep_unless_terminating)
    with gate.open_store(lambda: build(cfg, http=False, pipeline=False), port) as app, _broker_errors(cfg):
        exit_if_terminating()
        log_serving(app.serve(gate.port, is_ready=gate.is_ready, not_ready_reason=lambda: gate.reason).url)
        gate.until_registered(app.store)
        service = make_service(cfg, app.store, app.metrics)  # the service builds its own pipeline
        gate.started(service)

        def _stop(signum: int, _frame: object) -> None:
            log.info("received %s: finishing the batch, persisting, committing", signal_name(signum))
            TERMINATING.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        service.run(TERMINATING)  # set already if a SIGTERM came and its SystemExit was swallowed: returns at once


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    from careful_monitor import TERMINATING, exit_on_sigterm

    if not TERMINATING.is_set():
        log.info("received %s during start-up: exiting", signal_name(signum))
    exit_on_sigterm(signum, frame)


def _sleep_unless_terminating(seconds: float) -> None:
    """StartGate's pause between checks: over at once, exiting 0, when a SIGTERM has come."""
    from careful_monitor import TERMINATING, exit_if_terminating

    TERMINATING.wait(seconds)
    exit_if_terminating()


def signal_name(signum: int) -> str:
    import signal

    return signal.Signals(signum).name


@contextlib.contextmanager
def _broker_errors(cfg) -> Iterator[None]:
    """A Kafka client error that escapes the service (broker unreachable at start, ...) as one line, exit 2."""
    import aiokafka.errors
    import kafka.errors

    from careful_monitor.errors import BrokerError

    try:
        yield
    except (kafka.errors.KafkaError, aiokafka.errors.KafkaError) as exc:
        what = str(exc) if str(exc).startswith(type(exc).__name__) else f"{type(exc).__name__}: {exc}"
        raise BrokerError(f"Kafka at {cfg.kafka.bootstrap}: {what} "
                          "(check kafka.bootstrap, kafka.security and that the broker is up)") from None


@click.group(epilog=example("careful-monitor topics create --config cfg.yaml"))
def topics() -> None:
    """Kafka topics of the service."""


@topics.command("create", epilog=example("careful-monitor topics create --config cfg.yaml"))
@config_option
@handle_errors
def topics_create(config_path: str | None) -> None:
    """Create the events, alerts and dead-letter topics (partitions, replication, retention from config); idempotent."""
    from careful_monitor.runtime.topics import create_topics

    for topic, status in create_topics(load(config_path)).items():
        click.echo(f"{topic}: {status}")


@click.command("simulate", epilog=example("careful-monitor simulate --config cfg.yaml --rate 2000 --windows 30"))
@config_option
@click.option("--file", "files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Produce the events of this JSONL file instead of the demo scenario (repeatable).")
@click.option("--rate", type=float, default=None, help="Events per second (default: as fast as possible).")
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the demo scenario.")
@click.option("--windows", type=int, default=20, show_default=True, help="Windows of the demo scenario.")
@handle_errors
def simulate(config_path: str | None, files: tuple[str, ...], rate: float | None, seed: int, windows: int) -> None:
    """Produce a seeded scenario (the demo's drifting stream) or JSONL files to the events topic, keyed by model."""
    import numpy as np

    from careful_monitor.demo import scenario
    from careful_monitor.runtime.producer import produce_lines

    cfg = load(config_path)
    if files:
        lines = [line.rstrip(b"\n") for f in files for line in Path(f).read_bytes().splitlines() if line.strip()]
    else:
        lines = [orjson.dumps(e) for e in scenario.live_events(np.random.default_rng(seed), windows=windows)]
    t0 = time.perf_counter()
    n = produce_lines(cfg, lines, rate=rate)
    click.echo(f"produced {n} events to {cfg.kafka.topics.events} in {time.perf_counter() - t0:.1f}s")
