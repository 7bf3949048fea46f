"""`careful-monitor replay`: the engine over JSONL files or stdin, as the Kafka service would run it."""

from __future__ import annotations

import sys
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
@click.option("--restart", is_flag=True,
              help="Re-read FILES from the start even if already replayed (their stored positions are overwritten); "
                   "their events are not dropped as duplicate ids.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary instead of a table; no progress bar.")
@handle_errors
def replay(config_path: str | None, files: tuple[str, ...], flush: bool, port: int | None, no_http: bool,
           restart: bool, as_json: bool) -> None:
    """Run the engine over JSONL event FILES (or - for stdin), as the Kafka service would.

    Rejected lines go to the dead-letter file (dead_letters.path) with their reason. Windows left
    open at the end are kept in the store and continued by the next replay or run.

    Each file's byte position is stored with the batch it ends: a file already replayed is skipped,
    a grown or interrupted one resumes where it stopped (--restart re-reads it, not dropping its
    events as duplicates). An event whose `id` was among the model's last limits.dedup_ids ids is
    dropped and counted as a duplicate (stdin, read from the start every time, relies on this).
    Exits 1 when lines were read and every one was rejected.
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
                stats = run_replay(app.pipeline, files, flush=flush, restart=restart,
                                   on_progress=lambda n: bar.advance(task, n))
            else:
                task = bar.add_task("replay", total=total)
                stats = run_replay(app.pipeline, files, flush=flush, restart=restart,
                                   on_bytes=lambda n: bar.advance(task, n))
    elapsed = time.perf_counter() - t0
    open_events = {m: mon.open_events for m, mon in app.pipeline.monitors.items()}
    summary = {"lines": stats.lines, "accepted": stats.accepted, "rejected": stats.rejected,
               "duplicates": stats.duplicates, "windows": stats.windows,
               "alerts": [a.alert_id for a in stats.alerts], "seconds": round(elapsed, 3),
               "open_window_events": open_events,
               "skipped": [s.path for s in stats.skipped], "resumed_at": stats.resumed_at,
               "dead_letters": str(cfg.dead_letters_path), "store": app.store.url}
    for s in stats.skipped:
        click.echo(s.message(), err=True)
    all_rejected = stats.lines > 0 and stats.accepted == 0 and stats.duplicates == 0
    if all_rejected:
        click.secho(f"error: every line was rejected ({stats.lines} lines); see the dead letters in "
                    f"{cfg.dead_letters_path}", fg="red", err=True)
    if as_json:
        click.echo(orjson.dumps(summary).decode())
        if all_rejected:
            sys.exit(1)
        return
    rej = sum(stats.rejected.values())
    click.echo(f"replayed {stats.lines} lines in {elapsed:.1f}s: {stats.accepted} accepted, {rej} rejected "
               f"({', '.join(f'{k}={v}' for k, v in sorted(stats.rejected.items())) or 'none'}), "
               f"{stats.duplicates} duplicate ids dropped, {stats.windows} windows closed, {len(stats.alerts)} alerts")
    for m, n in open_events.items():
        if n:
            click.echo(f"  {m}: {n} events in the open window (continued by the next replay; --flush closes it)")
    for f, at in stats.resumed_at.items():
        click.echo(f"  resumed {f} at byte {at}")
    for a in stats.alerts:
        click.secho(f"  ALERT {a.alert_id}: {a.action}", fg="red")
    if rej:
        click.echo(f"  dead letters: {cfg.dead_letters_path}")
    if all_rejected:
        sys.exit(1)
