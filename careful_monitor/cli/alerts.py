"""`careful-monitor alerts`: list and acknowledge dataset-retirement and stale-anchor alerts."""

from __future__ import annotations

from datetime import UTC, datetime

import click
import orjson

from careful_monitor.cli.common import config_option, example, handle_errors, load, nonblank
from careful_monitor.cli.render import alerts_table, console, printable


@click.group(epilog=example("careful-monitor alerts list --config cfg.yaml"))
def alerts() -> None:
    """Dataset-retirement and stale-anchor alerts."""


@alerts.command("list",
                epilog=example("careful-monitor alerts list --config cfg.yaml --state retire_recommended --json"))
@config_option
@click.option("--state", type=click.Choice(["retire_recommended", "anchor_stale"]), help="Only this state.")
@click.option("--model", help="Only this model.")
@click.option("--dataset", help="Only this dataset.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON array of alert objects (ordered by model, window, dataset).")
@handle_errors
def alerts_list(config_path: str | None, state: str | None, model: str | None, dataset: str | None,
                as_json: bool) -> None:
    """List alerts, acknowledged ones included."""
    from careful_monitor.app import open_store

    rows = open_store(load(config_path)).list_alerts(state=state, model=model, dataset=dataset)
    if as_json:
        click.echo(orjson.dumps(rows).decode())
        return
    if not rows:
        click.echo("no alerts")
        return
    console().print(alerts_table(rows))


@alerts.command("ack", epilog=example("careful-monitor alerts ack --config cfg.yaml "
                                      "ticket-router:tickets-synth-v2:45:retire_recommended --by alice"))
@config_option
@click.argument("alert_id")
@click.option("--by", required=True, callback=nonblank, help="Who acknowledges (not empty).")
@handle_errors
def alerts_ack(config_path: str | None, alert_id: str, by: str) -> None:
    """Acknowledge ALERT_ID."""
    from careful_monitor.app import open_store

    a = open_store(load(config_path)).ack_alert(alert_id, by=by, at=datetime.now(UTC))
    click.echo(f"acknowledged {a['alert_id']} by {printable(a['acked_by'])} at {a['acked_at']}")


@alerts.command("show", epilog=example("careful-monitor alerts show --config cfg.yaml "
                                       "ticket-router:tickets-synth-collapsed:10:retire_recommended"))
@config_option
@click.argument("alert_id")
@handle_errors
def alerts_show(config_path: str | None, alert_id: str) -> None:
    """Explain ALERT_ID in plain words (the text of the demo and of the evidence page), with its page link."""
    from careful_monitor.app import open_store
    from careful_monitor.explain import explain
    from careful_monitor.ui.pages import alert_href

    cfg = load(config_path)
    a = open_store(cfg).get_alert(alert_id)
    for line in explain(a, evidence=12):
        click.echo(printable(line))
    acked = f"acknowledged by {printable(a['acked_by'])} at {a['acked_at']}" if a["acked_by"] else "not acknowledged"
    click.echo(f"  {acked}")
    click.echo(f"  page: {cfg.http.public_url or f'http://{cfg.http.host}:{cfg.http.port}'}{alert_href(a['alert_id'])}")
