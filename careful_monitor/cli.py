"""careful-monitor: the command line, and the composition root that wires adapters to the engine.

Exit codes: 0 ok, 1 runtime failure, 2 bad usage or config.
"""

from __future__ import annotations

import functools
import getpass
import logging
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import click
import orjson

from careful_monitor import __version__
from careful_monitor.config import Config, load_config
from careful_monitor.errors import CarefulError

log = logging.getLogger("careful_monitor")


# --- plumbing ---------------------------------------------------------------------------------

def _setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        class _Json(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:
                return orjson.dumps({"ts": record.created, "level": record.levelname, "logger": record.name,
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


def _load(config_path: str | None, overrides: dict[str, Any] | None = None) -> Config:
    return load_config(config_path, overrides=overrides)


def _open_store(cfg: Config):
    from careful_monitor.store import Store

    return Store(cfg.store_url, auto_migrate=cfg.store.auto_migrate)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user database in some containers
        return "unknown"


def _console(quiet: bool = False):
    from rich.console import Console

    return Console(stderr=False, quiet=quiet, highlight=False)


def _progress(total: int | None, description: str, enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    disable=not enabled or not sys.stderr.isatty(), console=None, transient=True)


# --- the group --------------------------------------------------------------------------------

@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
    _setup_logging(log_level, log_format)


# --- datasets ---------------------------------------------------------------------------------

@main.group()
def datasets() -> None:
    """The dataset registry: CAREFUL cards, reference profiles and their lifecycle."""


@datasets.command("register")
@config_option
@click.argument("manifests", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--by", default=None, help="Who registers (audit log; default: the current user).")
@click.option("--json", "as_json", is_flag=True, help="Print the registered records as JSON.")
@handle_errors
def datasets_register(config_path: str | None, manifests: tuple[str, ...], by: str | None, as_json: bool) -> None:
    """Validate CAREFUL card MANIFEST(s), profile the data, store card + profile.

    Register the anchor (role: real) before the synthetic sets that name it in `anchored_by`.
    """
    from careful_monitor.registry import register

    cfg = _load(config_path)
    store = _open_store(cfg)
    out = []
    for m in manifests:
        t0 = time.perf_counter()
        reg = register(cfg, store, m, by=by or _user())
        rec = reg.record
        if as_json:
            out.append({"name": rec.name, "role": rec.role, "rows": rec.n_rows, "features": len(reg.profile.features),
                        "profile_bytes": len(rec.profile), "warnings": reg.warnings})
        else:
            click.echo(f"registered {rec.name} ({rec.role}{', anchored by ' + rec.anchored_by if rec.anchored_by else ''}): "
                       f"{rec.n_rows} rows, {len(reg.profile.features)} features, profile {len(rec.profile) / 1024:.1f} KiB "
                       f"in {time.perf_counter() - t0:.1f}s")
            for w in reg.warnings:
                click.secho(f"  warning: {w}", fg="yellow")
    if as_json:
        click.echo(orjson.dumps(out).decode())


@datasets.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def datasets_list(config_path: str | None, as_json: bool) -> None:
    """List registered datasets with role, anchor, state and size."""
    cfg = _load(config_path)
    rows = _open_store(cfg).list_datasets()
    if as_json:
        click.echo(orjson.dumps([{"name": r.name, "role": r.role, "anchored_by": r.anchored_by, "state": r.state,
                                  "rows": r.n_rows} for r in rows]).decode())
        return
    from rich.table import Table

    t = Table("name", "role", "anchored_by", "state", "rows", "registered")
    for r in rows:
        t.add_row(r.name, r.role, r.anchored_by or "", r.state, str(r.n_rows), r.registered_at.strftime("%Y-%m-%d %H:%M"))
    _console().print(t)


@datasets.command("show")
@config_option
@click.argument("name")
@handle_errors
def datasets_show(config_path: str | None, name: str) -> None:
    """Show one dataset's card, profile summary and audit log as JSON."""
    from careful_monitor.engine.profile import ReferenceProfile
    from careful_monitor.errors import NotFoundError

    cfg = _load(config_path)
    store = _open_store(cfg)
    rec = store.get_dataset(name)
    if rec is None:
        raise NotFoundError(f"dataset '{name}' is not registered (see `careful-monitor datasets list`)")
    prof = ReferenceProfile.from_bytes(rec.profile)
    doc = {"name": rec.name, "role": rec.role, "anchored_by": rec.anchored_by, "state": rec.state, "rows": rec.n_rows,
           "data_sha256": rec.data_sha256, "card": rec.card, "profile_bytes": len(rec.profile),
           "features": {f: {"kind": p.kind, "n": p.n, "null_rate": round(p.null_rate, 6)} for f, p in prof.features.items()},
           "joint_features": prof.joint.features if prof.joint else [],
           "audit": [{"action": a.action, "from": a.from_state, "to": a.to_state, "by": a.by, "reason": a.reason,
                      "at": a.at.isoformat()} for a in store.audit_log(name)]}
    click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())


def _lifecycle(action: str, doc: str) -> None:
    @datasets.command(action, help=doc)
    @config_option
    @click.argument("name")
    @click.option("--by", required=True, help="Who decides (kept in the audit log).")
    @click.option("--reason", required=True, help="Why (kept in the audit log).")
    @handle_errors
    def cmd(config_path: str | None, name: str, by: str, reason: str) -> None:
        cfg = _load(config_path)
        rec = _open_store(cfg).set_dataset_state(name, action, by=by, reason=reason)
        click.echo(f"{rec.name}: now {rec.state}")


_lifecycle("review", "Put dataset NAME under review (active -> under_review).")
_lifecycle("retire", "Retire dataset NAME (active|under_review -> retired).")
_lifecycle("reactivate", "Reactivate dataset NAME (under_review|retired -> active).")


# --- alerts -----------------------------------------------------------------------------------

@main.group()
def alerts() -> None:
    """Dataset-retirement and stale-anchor alerts."""


@alerts.command("list")
@config_option
@click.option("--state", type=click.Choice(["retire_recommended", "anchor_stale"]), help="Only this state.")
@click.option("--model", help="Only this model.")
@click.option("--dataset", help="Only this dataset.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array of alert objects (ordered by model, window, dataset).")
@handle_errors
def alerts_list(config_path: str | None, state: str | None, model: str | None, dataset: str | None, as_json: bool) -> None:
    """List alerts, acknowledged ones included."""
    cfg = _load(config_path)
    rows = _open_store(cfg).list_alerts(state=state, model=model, dataset=dataset)
    if as_json:
        click.echo(orjson.dumps(rows).decode())
        return
    if not rows:
        click.echo("no alerts")
        return
    from rich.table import Table

    t = Table("alert_id", "state", "since", "window", "share", "top evidence", "acked")
    for a in rows:
        ev = a.get("evidence") or []
        top = ", ".join(f"{e['feature']} {e['signal']}" for e in ev[:3])
        t.add_row(a["alert_id"], a["state"], str(a["since_window"]), str(a["window"]),
                  "" if a.get("share") is None else f"{a['share']:.2f}", top, a.get("acked_by") or "")
    _console().print(t)


@alerts.command("ack")
@config_option
@click.argument("alert_id")
@click.option("--by", required=True, help="Who acknowledges.")
@handle_errors
def alerts_ack(config_path: str | None, alert_id: str, by: str) -> None:
    """Acknowledge ALERT_ID."""
    cfg = _load(config_path)
    a = _open_store(cfg).ack_alert(alert_id, by=by, at=datetime.now(timezone.utc))
    click.echo(f"acknowledged {a['alert_id']} by {a['acked_by']} at {a['acked_at']}")


# --- db ---------------------------------------------------------------------------------------

@main.group()
def db() -> None:
    """The store's schema."""


@db.command("upgrade")
@config_option
@handle_errors
def db_upgrade(config_path: str | None) -> None:
    """Apply pending schema migrations (Alembic)."""
    from careful_monitor.store import Store

    cfg = _load(config_path)
    store = Store(cfg.store_url, auto_migrate=True)
    if store.applied_migration:
        before, after = store.applied_migration
        click.echo(f"store {store.url}: upgraded schema {before or '(empty)'} -> {after}")
    else:
        click.echo(f"store {store.url}: schema already at head")


@db.command("prune")
@config_option
@handle_errors
def db_prune(config_path: str | None) -> None:
    """Delete window results and acknowledged alerts older than store.retention_days (`run` does it hourly)."""
    cfg = _load(config_path)
    store = _open_store(cfg)
    windows, alerts = store.prune(retention_days=cfg.store.retention_days, now=datetime.now(timezone.utc))
    click.echo(f"pruned {windows} window results and {alerts} acknowledged alerts older than {cfg.store.retention_days} days")


# --- replay -----------------------------------------------------------------------------------

def _serve(cfg: Config, metrics, store, pipeline=None, port: int | None = None):
    from careful_monitor.runtime.http import ServerThread, make_app

    app = make_app(metrics, store, models=lambda: list(cfg.models))
    server = ServerThread(app, cfg.http.host, cfg.http.port if port is None else port).start()
    log.info("serving /metrics, /healthz, /readyz and /api on %s", server.url)
    return server


@main.command()
@config_option
@click.argument("files", nargs=-1, required=True)
@click.option("--flush", is_flag=True, help="At the end, close the open window if it holds window.min_size events.")
@click.option("--port", type=int, default=None, help="HTTP port for /metrics and the API (default: http.port; 0 = any free port).")
@click.option("--no-http", is_flag=True, help="Do not serve HTTP while replaying.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary instead of a table; no progress bar.")
@handle_errors
def replay(config_path: str | None, files: tuple[str, ...], flush: bool, port: int | None, no_http: bool, as_json: bool) -> None:
    """Run the engine over JSONL event FILES (or - for stdin), as the Kafka service would.

    Rejected lines go to the dead-letter file (dead_letters.path) with their reason. Windows left
    open at the end are kept in the store and continued by the next replay or run.
    """
    from careful_monitor.runtime.pipeline import Pipeline
    from careful_monitor.runtime.replay import replay as run_replay
    from careful_monitor.sinks.deadletters import DeadLetterFile
    from careful_monitor.sinks.prometheus import Metrics

    for f in files:
        if f != "-" and not Path(f).is_file():
            raise click.BadParameter(f"file {f!r} does not exist", param_hint="FILES")
    cfg = _load(config_path)
    store = _open_store(cfg)
    metrics = Metrics(versions_kept=cfg.limits.versions_per_model)
    dead = DeadLetterFile(cfg.dead_letters_path)
    pipeline = Pipeline(cfg, store, metrics, on_reject=dead.write)
    server = None if no_http else _serve(cfg, metrics, store, pipeline, port)
    total = sum(Path(f).stat().st_size for f in files if f != "-") or None
    t0 = time.perf_counter()
    try:
        with _progress(None, "replay", not as_json) as progress:
            task = progress.add_task("events", total=None)
            stats = run_replay(pipeline, files, flush=flush, on_progress=lambda n: progress.advance(task, n))
    finally:
        dead.close()
        if server:
            server.stop()
    elapsed = time.perf_counter() - t0
    summary = {"lines": stats.lines, "accepted": stats.accepted, "rejected": stats.rejected, "windows": stats.windows,
               "alerts": [a["alert_id"] for a in stats.alerts], "seconds": round(elapsed, 3),
               "open_window_events": {m: mon.open_events for m, mon in pipeline.monitors.items()},
               "dead_letters": str(cfg.dead_letters_path), "store": store.url}
    del total
    if as_json:
        click.echo(orjson.dumps(summary).decode())
    else:
        rej = sum(stats.rejected.values())
        click.echo(f"replayed {stats.lines} lines in {elapsed:.1f}s: {stats.accepted} accepted, {rej} rejected "
                   f"({', '.join(f'{k}={v}' for k, v in sorted(stats.rejected.items())) or 'none'}), "
                   f"{stats.windows} windows closed, {len(stats.alerts)} alerts")
        for m, n in summary["open_window_events"].items():
            if n:
                click.echo(f"  {m}: {n} events in the open window (continued by the next replay; --flush closes it)")
        for a in stats.alerts:
            click.secho(f"  ALERT {a['alert_id']}: {a['action']}", fg="red")
        if rej:
            click.echo(f"  dead letters: {cfg.dead_letters_path}")


# --- Kafka: run, topics, simulate -------------------------------------------------------------

@main.command()
@config_option
@click.option("--port", type=int, default=None, help="HTTP port for /metrics, probes and the API (default: http.port).")
@handle_errors
def run(config_path: str | None, port: int | None) -> None:
    """The long-running Kafka service: consume events, evaluate windows, publish alerts.

    Offsets are committed only after the window results, alerts and engine state they cover are
    stored; SIGTERM finishes the current batch, persists, commits and exits 0.
    """
    import signal
    import threading

    from careful_monitor.sinks.prometheus import Metrics

    # handlers first: a SIGTERM during start-up must still mean "stop cleanly, exit 0"
    stop = threading.Event()

    def _stop(signum, _frame) -> None:
        log.info("received %s: finishing the batch, persisting, committing", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    cfg = _load(config_path)
    store = _open_store(cfg)
    metrics = Metrics(versions_kept=cfg.limits.versions_per_model)
    if cfg.kafka.runtime == "faust":
        from careful_monitor.runtime.faust_app import FaustService as Service
    elif cfg.kafka.runtime == "aiokafka":
        from careful_monitor.runtime.aiokafka_loop import AioKafkaService as Service
    else:
        from careful_monitor.runtime.consumer import ConsumerService as Service
    service = Service(cfg, store, metrics)
    from careful_monitor.runtime.http import ServerThread, make_app

    server = ServerThread(make_app(metrics, store, is_ready=lambda: service.ready, models=lambda: list(cfg.models)),
                          cfg.http.host, cfg.http.port if port is None else port).start()
    log.info("serving /metrics, /healthz, /readyz and /api on %s", server.url)
    if stop.is_set():
        server.stop()
        return
    try:
        service.run(stop)
    finally:
        server.stop()
        store.close()


@main.group()
def topics() -> None:
    """Kafka topics of the service."""


@topics.command("create")
@config_option
@handle_errors
def topics_create(config_path: str | None) -> None:
    """Create the events, alerts and dead-letter topics (partitions, replication, retention from config); idempotent."""
    from careful_monitor.runtime.topics import create_topics

    cfg = _load(config_path)
    for topic, status in create_topics(cfg).items():
        click.echo(f"{topic}: {status}")


@main.command()
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

    from careful_monitor.runtime.producer import produce_lines
    from careful_monitor.scenarios import demo as scenario

    cfg = _load(config_path)
    if files:
        lines = [line.rstrip(b"\n") for f in files for line in Path(f).read_bytes().splitlines() if line.strip()]
    else:
        lines = [orjson.dumps(e) for e in scenario.live_events(np.random.default_rng(seed), windows=windows)]
    t0 = time.perf_counter()
    n = produce_lines(cfg, lines, rate=rate)
    click.echo(f"produced {n} events to {cfg.kafka.topics.events} in {time.perf_counter() - t0:.1f}s")


# --- demo -------------------------------------------------------------------------------------

@main.command()
@click.option("--workdir", type=click.Path(file_okay=False), default="careful-demo", show_default=True,
              help="Work folder (cleared first).")
@click.option("--serve", is_flag=True, help="Keep /metrics and the API up until Ctrl-C.")
@click.option("--kafka", is_flag=True, help="Run the scenario through a Kafka broker (see `careful-monitor run`).")
@click.option("--port", type=int, default=None, help="HTTP port (default: http.port 9308; 0 = any free port).")
@click.option("--bootstrap", default=None, help="With --kafka: this broker (default: $CAREFUL_MONITOR_KAFKA__BOOTSTRAP, "
              "else a local one started from deploy/kafka).")
@click.option("--seed", type=int, default=7, show_default=True, help="Scenario seed.")
@click.option("--windows", type=int, default=20, show_default=True, help="Live windows of 1,000 events.")
@handle_errors
def demo(workdir: str, serve: bool, kafka: bool, port: int | None, bootstrap: str | None, seed: int, windows: int) -> None:
    """A seeded scenario end to end: datasets, registration, a drifting stream, the retirement alert."""
    from careful_monitor.demo import run_demo

    run_demo(Path(workdir), serve=serve, port=port, seed=seed, windows=windows, kafka=kafka,
             bootstrap=bootstrap or os.environ.get("CAREFUL_MONITOR_KAFKA__BOOTSTRAP"))


# --- bench ------------------------------------------------------------------------------------

@main.command()
@click.option("--quality", is_flag=True, help="Detection quality instead of speed: delays and false alarms vs river.")
@click.option("--kafka", "kafka", is_flag=True, help="Kafka throughput: each runtime, replay and the bare client loop on one broker.")
@click.option("--bootstrap", default=None, help="With --kafka: use this broker instead of starting deploy/kafka/broker.sh.")
@click.option("--quick", is_flag=True, help="Smaller workloads (for a smoke run).")
@click.option("--memory", "memory_events", type=int, default=0,
              help="Also run the memory soak over this many events (e.g. 5000000).")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
@handle_errors
def bench(quality: bool, kafka: bool, bootstrap: str | None, quick: bool, memory_events: int, as_json: bool) -> None:
    """Benchmarks side by side with peers in one run.

    Speed (default): window scoring vs scipy, replay throughput, memory, profile size.
    --quality: detection delay and false alarms on seeded streams, beside river's detectors.
    """
    echo = None if as_json else click.echo
    if quality:
        from careful_monitor.quality import run_quality

        results = run_quality(quick=quick, echo=echo)
    else:
        from careful_monitor.bench import run_bench

        results = run_bench(quick=quick, memory_events=memory_events, kafka=kafka, bootstrap=bootstrap, echo=echo)
    if as_json:
        click.echo(orjson.dumps(results).decode())


if __name__ == "__main__":  # pragma: no cover
    main()
