"""`careful-monitor demo`: the seeded scenario end to end (see careful_monitor.demo)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from careful_monitor.cli.common import example, handle_errors


@click.command("demo", epilog=example("careful-monitor demo --workdir /tmp/careful-demo --port 0 --serve"))
@click.option("--workdir", type=click.Path(file_okay=False), default="careful-demo", show_default=True,
              help="Work folder (cleared first).")
@click.option("--serve", is_flag=True, help="Keep /metrics and the API up until Ctrl-C.")
@click.option("--kafka", is_flag=True, help="Run the scenario through a Kafka broker (see `careful-monitor run`).")
@click.option("--port", type=int, default=None, help="HTTP port (default: http.port 9308; 0 = any free port).")
@click.option("--bootstrap", default=None,
              help="With --kafka: this broker (default: $CAREFUL_MONITOR_KAFKA__BOOTSTRAP, "
              "else a local one started from deploy/kafka).")
@click.option("--seed", type=int, default=7, show_default=True, help="Scenario seed.")
@click.option("--windows", type=int, default=20, show_default=True, help="Live windows of 1,000 events.")
@handle_errors
def demo(workdir: str, serve: bool, kafka: bool, port: int | None, bootstrap: str | None, seed: int,
         windows: int) -> None:
    """A seeded scenario end to end: datasets, registration, a drifting stream, the retirement alert."""
    from careful_monitor.demo import run_demo

    run_demo(Path(workdir), serve=serve, port=port, seed=seed, windows=windows, kafka=kafka,
             bootstrap=bootstrap or os.environ.get("CAREFUL_MONITOR_KAFKA__BOOTSTRAP"))
