"""careful-monitor's command line: the `main` click group, and one module per command group.

Commands are thin: they parse flags, get their adapters from `careful_monitor.app`, and render.
Exit codes: 0 ok, 1 runtime failure, 2 bad usage or config, 3 a check failed (`datasets isolation`).
"""

from __future__ import annotations

import os

import click

from careful_monitor import __version__
from careful_monitor.cli.alerts import alerts
from careful_monitor.cli.bench import bench
from careful_monitor.cli.card import card
from careful_monitor.cli.common import example, setup_logging
from careful_monitor.cli.datasets import datasets
from careful_monitor.cli.db import db
from careful_monitor.cli.demo import demo
from careful_monitor.cli.kafka import run, simulate, topics
from careful_monitor.cli.lineage import lineage
from careful_monitor.cli.replay import replay
from careful_monitor.cli.report import report
from careful_monitor.cli.token import token


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog=example("careful-monitor --log-level debug replay --config cfg.yaml events.jsonl"))
@click.version_option(__version__, prog_name="careful-monitor")
@click.option("--log-level", default=lambda: os.environ.get("CAREFUL_MONITOR_LOG_LEVEL", "info"),
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False), show_default="info",
              help="Log verbosity (logs go to stderr).")
@click.option("--log-format", default="text", type=click.Choice(["text", "json"]), show_default=True,
              help="Log line format.")
def main(log_level: str, log_format: str) -> None:
    """Lifecycle monitoring for models trained on real + synthetic data.

    Compares live model inputs and outputs with the real anchor dataset and each synthetic
    dataset of the training mix, recognises collapse signatures, exports Prometheus metrics and
    recommends retiring a synthetic dataset (or refreshing a stale anchor) with evidence.
    Start with `careful-monitor demo`.
    """
    setup_logging(log_level, log_format)


datasets.add_command(card)  # `datasets card`, in its own module
for _command in (datasets, alerts, lineage, db, replay, run, topics, simulate, demo, bench, token, report):
    main.add_command(_command)

__all__ = ["main"]
