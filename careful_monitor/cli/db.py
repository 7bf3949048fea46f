"""`careful-monitor db`: the store's schema, retention and stored engine state."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from careful_monitor.cli.common import config_option, example, handle_errors, load


@click.group(epilog=example("careful-monitor db upgrade --config cfg.yaml"))
def db() -> None:
    """The store: schema migrations, retention and the stored engine state."""


@db.command("upgrade", epilog=example("careful-monitor db upgrade --config cfg.yaml"))
@config_option
@handle_errors
def db_upgrade(config_path: str | None) -> None:
    """Apply pending schema migrations (Alembic)."""
    from careful_monitor.store import Store

    cfg = load(config_path)
    store = Store(cfg.store_url, auto_migrate=True)
    if store.applied_migration:
        before, after = store.applied_migration
        click.echo(f"store {store.url}: upgraded schema {before or '(empty)'} -> {after}")
    else:
        click.echo(f"store {store.url}: schema already at head")


@db.command("prune", epilog=example("careful-monitor db prune --config cfg.yaml"))
@config_option
@handle_errors
def db_prune(config_path: str | None) -> None:
    """Delete window results and acknowledged alerts older than store.retention_days (`run` does it hourly)."""
    from careful_monitor.app import open_store

    cfg = load(config_path)
    windows, alerts = open_store(cfg).prune(retention_days=cfg.store.retention_days, now=datetime.now(UTC))
    click.echo(f"pruned {windows} window results and {alerts} acknowledged alerts "
               f"older than {cfg.store.retention_days} days")


@db.command("reset-state", epilog=example("careful-monitor db reset-state --config cfg.yaml --model ticket-router"))
@config_option
@click.option("--model", default=None, help="Only this model's state (default: every model's).")
@handle_errors
def db_reset_state(config_path: str | None, model: str | None) -> None:
    """Drop the stored engine state: the next window starts empty, numbered on from the stored windows.

    The open window's events, the streaming detectors and the per-dataset policy states are
    forgotten; window results, alerts, datasets and Kafka offsets are kept. Stop `run` first.
    """
    from careful_monitor.app import open_store

    store = open_store(load(config_path))
    models = sorted(m for m in store.load_states() if model is None or m == model)
    dropped = store.reset_states(model)
    if not dropped:
        click.echo(f"store {store.url}: no engine state stored{' for ' + model if model else ''}")
    else:
        click.echo(f"store {store.url}: dropped the engine state of {dropped} model{'' if dropped == 1 else 's'}: "
                   f"{', '.join(models)}")
