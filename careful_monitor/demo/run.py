"""`careful-monitor demo`: the seeded scenario end to end on the embedded default (files + SQLite)."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml

from careful_monitor.app import App, build, open_store
from careful_monitor.config import Config, load_config
from careful_monitor.contracts import window_json
from careful_monitor.demo import scenario
from careful_monitor.demo.files import write_scenario
from careful_monitor.explain import explain
from careful_monitor.ui.pages import alert_href

if TYPE_CHECKING:
    from careful_monitor.store import Store

MARKER = ".careful-demo"
MODEL_NAME = scenario.MODEL


def _prepare(workdir: Path) -> None:
    if workdir.exists():
        if any(workdir.iterdir()) and not (workdir / MARKER).exists():
            raise click.UsageError(f"{workdir} is not empty and was not made by `careful-monitor demo`; "
                                   "pass --workdir to an empty or new folder")
        shutil.rmtree(workdir)
    (workdir / "datasets").mkdir(parents=True)
    (workdir / MARKER).write_text("made by careful-monitor demo; cleared by the next demo run\n")


def _window_line(r: dict[str, Any]) -> str:
    """One window as a table row, from its JSON document (stored, or `window_json` of a fresh result)."""
    att = {a["dataset"]: a for a in r["attribution"]}
    c = att.get(scenario.COLLAPSED, {})
    share = "  -  " if c.get("share") is None else f"{c['share']:.2f}"
    top = ", ".join(f"{e['feature'].split('.', 1)[-1]}:{e['signal']}" for e in r["evidence"][:3]) or "-"
    states = " ".join(f"{k.replace('tickets-', '')}={v}" for k, v in r["states"].items() if v != "ok") or "all ok"
    return (f"{r['window']:>4} v{r['version'] or '?':<3} {len(r['flagged_features']):>2} flagged  "
            f"collapsed share {share} affinity {c.get('affinity', 0):+.2f}  {states:<38} {top}")


def _through_kafka(cfg_path: Path, app: App, events: Path, windows: int, bootstrap: str | None,
                   workdir: Path) -> Config:
    """Produce the stream to a broker and run the Kafka service on it until every window is stored."""
    import uuid

    from careful_monitor.devbroker import start_local_broker
    from careful_monitor.runtime import make_service
    from careful_monitor.runtime.producer import produce_lines
    from careful_monitor.runtime.topics import create_topics

    broker = None
    if bootstrap is None:
        click.echo("   starting a local Kafka broker (deploy/kafka/broker.sh) ...")
        broker = start_local_broker(workdir, needed_by="demo --kafka")
        bootstrap = broker.bootstrap
    tag = uuid.uuid4().hex[:6]
    doc = yaml.safe_load(cfg_path.read_text())
    doc["kafka"] = {"bootstrap": bootstrap, "group": f"careful-demo-{tag}", "runtime": "aiokafka",
                    "topics": {"events": f"careful.demo.{tag}.events", "alerts": f"careful.demo.{tag}.alerts",
                               "dead_letters": f"careful.demo.{tag}.dead-letters"}}
    cfg_path.write_text("# written by careful-monitor demo --kafka\n" + yaml.safe_dump(doc, sort_keys=False))
    kcfg = load_config(cfg_path, environ={})
    try:
        create_topics(kcfg)
        lines = [line for line in events.read_bytes().splitlines() if line.strip()]
        n = produce_lines(kcfg, lines)
        click.echo(f"   produced {n} messages to {kcfg.kafka.topics.events} on {bootstrap}; "
                   "consuming with `run`'s service")
        # the demo's store and metrics (already served), with the Kafka settings just written
        service = make_service(kcfg, app.store, app.metrics)
        stop = threading.Event()
        thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
        thread.start()
        shown = 0
        deadline = time.monotonic() + 300
        while shown < windows and time.monotonic() < deadline:
            for w in app.store.last_windows(MODEL_NAME, 10_000)[shown:]:
                click.echo("   " + _window_line(w))
                shown += 1
            time.sleep(0.2)
        stop.set()
        thread.join(60)
    finally:
        if broker is not None:
            broker.stop()
    return kcfg


def _register(cfg: Config, store: Store, paths: dict[str, Path]) -> None:
    from careful_monitor.registry import register

    for name in (scenario.ANCHOR, scenario.COLLAPSED, scenario.FAITHFUL):
        reg = register(cfg, store, paths[f"card:{name}"], by="demo")
        click.echo(f"   {name:<26} {reg.record.role:<9} {reg.record.n_rows:>6} rows  "
                   f"profile {len(reg.record.profile) / 1024:6.1f} KiB")


def run_demo(workdir: Path, *, serve: bool, port: int | None, seed: int, windows: int, kafka: bool = False,
             bootstrap: str | None = None) -> None:
    t0 = time.perf_counter()
    workdir = workdir.resolve()
    _prepare(workdir)
    click.echo(f"careful-monitor demo in {workdir} (seed {seed})")
    paths = write_scenario(workdir, seed, windows)
    # the demo ignores the environment's store and Kafka settings, but honours its HTTP ones
    # (CAREFUL_MONITOR_HTTP__AUTH_TOKEN_FILE, __HOST, ...)
    cfg = load_config(paths["config"], environ={k: v for k, v in os.environ.items()
                                                if k.upper().startswith("CAREFUL_MONITOR_HTTP__")})
    store = open_store(cfg)
    click.echo("\n1. registering the datasets (CAREFUL cards + reference profiles)")
    _register(cfg, store, paths)
    # the pipeline loads the profiles just registered; HTTP is optional here, so started apart
    with build(cfg, store=store, http=False) as app:
        try:
            app.serve(port)
        except OSError as exc:
            click.secho(f"   (HTTP not served: {exc})", fg="yellow")  # the message says --port 0
        _stream(app, paths, workdir, windows=windows, kafka=kafka, bootstrap=bootstrap, serve=serve, t0=t0)


def _stream(app: App, paths: dict[str, Path], workdir: Path, *, windows: int, kafka: bool, bootstrap: str | None,
            serve: bool, t0: float) -> None:
    """Steps 2 to 4: the stream through replay (or Kafka), the alerts, where things are; then serve if asked."""
    from careful_monitor.runtime.replay import replay

    cfg, store, server = app.cfg, app.store, app.server
    click.echo(f"\n2. replaying {paths['events'].name}: {windows} windows of 1,000 events; "
               f"the stream starts like the anchor, then (model version 8) drifts toward {scenario.COLLAPSED}")
    click.echo("   win ver  flagged  attribution to the collapsed set          "
               "states                             top evidence")
    if kafka:
        kcfg = _through_kafka(paths["config"], app, paths["events"], windows, bootstrap, workdir)
        alerts = store.list_alerts()
        click.echo(f"\n   bad messages went to the dead-letter topic {kcfg.kafka.topics.dead_letters} "
                   "with a reason header")
    else:
        stats = replay(app.pipeline, [str(paths["events"])],
                       on_window=lambda o: click.echo("   " + _window_line(window_json(o.result))))
        alerts = app.pipeline.alert_docs(stats.alerts)
        rejected = sum(stats.rejected.values())
        click.echo(f"\n   {stats.accepted} events accepted, {rejected} rejected "
                   f"({', '.join(f'{k}={v}' for k, v in sorted(stats.rejected.items()))}) "
                   f"-> {cfg.dead_letters_path.name}")
    click.echo("\n3. alerts")
    if not alerts:
        click.echo("   none")
    for a in alerts:
        for line in explain(a):
            click.secho("   " + line, fg="red" if line.startswith("ALERT") else None)
    last = store.last_windows(scenario.MODEL, 1)
    states = last[0]["states"] if last else app.pipeline.monitors[scenario.MODEL].states()
    click.echo(f"\n   final states: {', '.join(f'{k}={v}' for k, v in states.items())}")
    click.echo(f"\n4. where things are (demo took {time.perf_counter() - t0:.1f}s)")
    click.echo(f"   config:        {paths['config']}   (pass --config {paths['config']} to later commands)")
    click.echo(f"   database:      {store.url}")
    if not kafka:
        click.echo(f"   dead letters:  {cfg.dead_letters_path}")
    click.echo(f"   alerts:        careful-monitor alerts list --config {paths['config']}")
    if server is not None:
        click.echo(f"   metrics / API: {server.url}/metrics  {server.url}/api/alerts  "
                   f"{server.url}/api/models/{scenario.MODEL}/windows?last=5")
        base = cfg.http.public_url or server.url
        for a in alerts:
            click.echo(f"   evidence page: {base}{alert_href(a['alert_id'])}")
    if serve and server is not None:
        click.echo("\n   serving until Ctrl-C (or SIGTERM) ...")
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        # `datasets retire|reactivate` from another shell shows in dataset_state within poll_seconds
        while not stop.wait(cfg.governance.poll_seconds):
            app.pipeline.poll_lifecycle()
        click.echo("   stopped")
