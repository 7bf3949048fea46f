"""`careful-monitor replay`: the engine over JSONL files or stdin, as the Kafka service would run it."""

from __future__ import annotations

import time
from pathlib import Path

import click
import orjson

from careful_monitor.cli.common import config_option, example, handle_errors, load, log_serving
from careful_monitor.cli.render import progress


@click.command("replay", epilog=example("careful-monitor replay --config cfg.yaml --flush events.jsonl"))
@config_option
@click.argument("files", nargs=-1, required=True)
@click.option("--flush", is_flag=True, help="At the end, close the open window if it holds window.min_size events.")
@click.option("--port", type=int, default=None,
              help="HTTP port for /metrics and the API (default: http.port; 0 = any free port).")
@click.option("--no-http", is_flag=True, help="Do not serve HTTP while replaying.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary instead of a table; no progress bar.")
@handle_errors
def replay(config_path: str | None, files: tuple[str, ...], flush: bool, port: int | None, no_http: bool,
           as_json: bool) -> None:
    """Run the engine over JSONL event FILES (or - for stdin), as the Kafka service would.

    Rejected lines go to the dead-letter file (dead_letters.path) with their reason. Windows left
    open at the end are kept in the store and continued by the next replay or run.
    """
    from careful_monitor.app import build
    from careful_monitor.runtime.replay import input_bytes
    from careful_monitor.runtime.replay import replay as run_replay

    for f in files:
        if f != "-" and not Path(f).is_file():
            raise click.BadParameter(f"file {f!r} does not exist", param_hint="FILES")
    cfg = load(config_path)
    with build(cfg, port=port, http=not no_http) as app:
        if app.server is not None:
            log_serving(app.server.url)
        t0 = time.perf_counter()
        total = input_bytes(files)  # None with stdin: an indeterminate bar counting events
        with progress(not as_json, in_bytes=total is not None) as bar:
            if total is None:
                task = bar.add_task("events", total=None)
                stats = run_replay(app.pipeline, files, flush=flush, on_progress=lambda n: bar.advance(task, n))
            else:
                task = bar.add_task("replay", total=total)
                stats = run_replay(app.pipeline, files, flush=flush, on_bytes=lambda n: bar.advance(task, n))
    elapsed = time.perf_counter() - t0
    open_events = {m: mon.open_events for m, mon in app.pipeline.monitors.items()}
    summary = {"lines": stats.lines, "accepted": stats.accepted, "rejected": stats.rejected, "windows": stats.windows,
               "alerts": [a.alert_id for a in stats.alerts], "seconds": round(elapsed, 3),
               "open_window_events": open_events,
               "dead_letters": str(cfg.dead_letters_path), "store": app.store.url}
    if as_json:
        click.echo(orjson.dumps(summary).decode())
        return
    rej = sum(stats.rejected.values())
    click.echo(f"replayed {stats.lines} lines in {elapsed:.1f}s: {stats.accepted} accepted, {rej} rejected "
               f"({', '.join(f'{k}={v}' for k, v in sorted(stats.rejected.items())) or 'none'}), "
               f"{stats.windows} windows closed, {len(stats.alerts)} alerts")
    for m, n in open_events.items():
        if n:
            click.echo(f"  {m}: {n} events in the open window (continued by the next replay; --flush closes it)")
    for a in stats.alerts:
        click.secho(f"  ALERT {a.alert_id}: {a.action}", fg="red")
    if rej:
        click.echo(f"  dead letters: {cfg.dead_letters_path}")
