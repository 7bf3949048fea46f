"""`careful-monitor demo`: the seeded scenario end to end on the embedded default (files + SQLite)."""

from __future__ import annotations

import csv
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
import orjson
import yaml

from careful_monitor.config import load_config
from careful_monitor.engine.monitor import WindowOutcome
from careful_monitor.scenarios import demo as scenario

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


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("wb") as fh:
        for r in rows:
            fh.write(orjson.dumps(r) + b"\n")


def _flat(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    header = ([f"inputs.{k}" for k in rows[0]["inputs"]] + [f"outputs.{k}" for k in rows[0]["outputs"] if k != "probs"]
              + [f"outputs.probs.{k}" for k in rows[0]["outputs"]["probs"]])
    body = [[*r["inputs"].values(), *(v for k, v in r["outputs"].items() if k != "probs"), *r["outputs"]["probs"].values()]
            for r in rows]
    return header, body


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    header, body = _flat(rows)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(body)


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    header, body = _flat(rows)
    cols = list(zip(*body))
    pq.write_table(pa.table({h: list(c) for h, c in zip(header, cols)}), path)


def write_scenario(workdir: Path, seed: int, windows: int) -> dict[str, Path]:
    """Write datasets + cards, config.yaml and events.jsonl; return their paths."""
    rng = np.random.default_rng(seed)
    ds = workdir / "datasets"
    _write_jsonl(ds / "tickets_real.jsonl", scenario.sample_rows(rng, 20_000, "anchor"))
    _write_parquet(ds / "tickets_synth_collapsed.parquet", scenario.sample_rows(rng, 8_000, "collapsed"))
    _write_csv(ds / "tickets_synth_faithful.csv", scenario.sample_rows(rng, 8_000, "faithful"))
    cards = {}
    for name, card in scenario.CARDS.items():
        path = ds / f"{name}.yaml"
        path.write_text(yaml.safe_dump(card, sort_keys=False))
        cards[name] = path
    config = workdir / "config.yaml"
    config.write_text("# written by careful-monitor demo\n" + yaml.safe_dump(scenario.config_dict(), sort_keys=False))
    events = scenario.live_events(rng, windows=windows)
    lines = [orjson.dumps(e) for e in events]
    bad = scenario.bad_lines(scenario.START_TS)
    for k, b in enumerate(bad):  # sprinkle one of each kind of bad line through the stream
        lines.insert(1500 + k * 2500, b)
    (workdir / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return {"config": config, "events": workdir / "events.jsonl", **{f"card:{k}": v for k, v in cards.items()}}


def _window_line(o: WindowOutcome) -> str:
    r = o.result
    att = {a["dataset"]: a for a in r["attribution"]}
    c = att.get(scenario.COLLAPSED, {})
    share = "  -  " if c.get("share") is None else f"{c['share']:.2f}"
    top = ", ".join(f"{e['feature'].split('.', 1)[1]}:{e['signal']}" for e in r["evidence"][:3]) or "-"
    states = " ".join(f"{k.replace('tickets-', '')}={v}" for k, v in r["states"].items() if v != "ok") or "all ok"
    return (f"{r['window']:>4} v{r['version'] or '?':<3} {len(r['flagged_features']):>2} flagged  "
            f"collapsed share {share} affinity {c.get('affinity', 0):+.2f}  {states:<38} {top}")


def _explain(alert: dict[str, Any]) -> list[str]:
    lines = [f"ALERT {alert['alert_id']}", f"  state: {alert['state']} (watch since window {alert['since_window']}, "
             f"raised at window {alert['window']}, model versions {', '.join(alert['model_versions'])})"]
    if alert["state"] == "retire_recommended":
        lines.append(f"  why: live traffic has been drifting away from the real anchor for "
                     f"{alert['window'] - alert['since_window'] + 1} windows, and the drift points toward "
                     f"{alert['dataset']} (affinity {alert['affinity']:.2f}; about {alert['share'] or 0:.0%} of a window looks "
                     f"like it). The collapse fingerprints are in the evidence:")
    else:
        lines.append("  why: live traffic moved away from the anchor in a way no synthetic set explains:")
    for e in alert["evidence"][:6]:
        lines.append(f"    - {e['feature']} {e['signal']} = {e['value']:.3g} (p = {e['p_value']:.2g})")
    lines.append(f"  action: {alert['action']}")
    return lines


class _Stored:
    """A stored window result in the shape `_window_line` reads."""

    def __init__(self, result: dict[str, Any]) -> None:
        self.result = result


def _through_kafka(cfg_path: Path, cfg, store, metrics, events: Path, windows: int, bootstrap: str | None, workdir: Path):
    """Produce the stream to a broker and run the Kafka service on it until every window is stored."""
    import uuid

    from careful_monitor.bench import _local_broker
    from careful_monitor.runtime.aiokafka_loop import AioKafkaService
    from careful_monitor.runtime.producer import produce_lines
    from careful_monitor.runtime.topics import create_topics
    stop_broker = None
    if bootstrap is None:
        click.echo("   starting a local Kafka broker (deploy/kafka/broker.sh) ...")
        bootstrap, stop_broker = _local_broker(workdir)
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
        click.echo(f"   produced {n} messages to {kcfg.kafka.topics.events} on {bootstrap}; consuming with `run`'s service")
        service = AioKafkaService(kcfg, store, metrics)
        stop = threading.Event()
        thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
        thread.start()
        shown = 0
        deadline = time.monotonic() + 300
        while shown < windows and time.monotonic() < deadline:
            for w in store.last_windows(MODEL_NAME, 10_000)[shown:]:
                click.echo("   " + _window_line(_Stored(w)))  # type: ignore[arg-type]
                shown += 1
            time.sleep(0.2)
        stop.set()
        thread.join(60)
    finally:
        if stop_broker:
            stop_broker()
    return kcfg


def run_demo(workdir: Path, *, serve: bool, port: int | None, seed: int, windows: int, kafka: bool = False,
             bootstrap: str | None = None) -> None:
    from careful_monitor.registry import register
    from careful_monitor.runtime.pipeline import Pipeline
    from careful_monitor.runtime.replay import replay
    from careful_monitor.sinks.deadletters import DeadLetterFile
    from careful_monitor.sinks.prometheus import Metrics
    from careful_monitor.store import Store

    t0 = time.perf_counter()
    workdir = workdir.resolve()
    _prepare(workdir)
    click.echo(f"careful-monitor demo in {workdir} (seed {seed})")
    paths = write_scenario(workdir, seed, windows)
    cfg = load_config(paths["config"], environ={})  # the demo ignores other store settings
    store = Store(cfg.store_url)
    click.echo("\n1. registering the datasets (CAREFUL cards + reference profiles)")
    for name in (scenario.ANCHOR, scenario.COLLAPSED, scenario.FAITHFUL):
        reg = register(cfg, store, paths[f"card:{name}"], by="demo")
        click.echo(f"   {name:<26} {reg.record.role:<9} {reg.record.n_rows:>6} rows  profile {len(reg.record.profile) / 1024:6.1f} KiB")
    metrics = Metrics(versions_kept=cfg.limits.versions_per_model)
    dead = DeadLetterFile(cfg.dead_letters_path)
    pipeline = Pipeline(cfg, store, metrics, on_reject=dead.write)
    from careful_monitor.runtime.http import ServerThread, make_app

    server = ServerThread(make_app(metrics, store, models=lambda: list(cfg.models)), cfg.http.host,
                          cfg.http.port if port is None else port)
    try:
        server.start()
    except OSError as exc:
        click.secho(f"   (HTTP not served: {exc}; pass --port 0 for any free port)", fg="yellow")
        server = None
    click.echo(f"\n2. replaying {paths['events'].name}: {windows} windows of 1,000 events; "
               f"the stream starts like the anchor, then (model version 8) drifts toward {scenario.COLLAPSED}")
    click.echo("   win ver  flagged  attribution to the collapsed set          states                             top evidence")
    if kafka:
        dead.close()
        kcfg = _through_kafka(paths["config"], cfg, store, metrics, paths["events"], windows, bootstrap, workdir)
        alerts = store.list_alerts()
        click.echo(f"\n   bad messages went to the dead-letter topic {kcfg.kafka.topics.dead_letters} with a reason header")
    else:
        stats = replay(pipeline, [str(paths["events"])], on_window=lambda o: click.echo("   " + _window_line(o)))
        dead.close()
        alerts = stats.alerts
        rejected = sum(stats.rejected.values())
        click.echo(f"\n   {stats.accepted} events accepted, {rejected} rejected "
                   f"({', '.join(f'{k}={v}' for k, v in sorted(stats.rejected.items()))}) -> {cfg.dead_letters_path.name}")
    click.echo("\n3. alerts")
    if not alerts:
        click.echo("   none")
    for a in alerts:
        for line in _explain(a):
            click.secho("   " + line, fg="red" if line.startswith("ALERT") else None)
    last = store.last_windows(scenario.MODEL, 1)
    states = last[0]["states"] if last else pipeline.monitors[scenario.MODEL].states()
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
    if serve and server is not None:
        click.echo("\n   serving until Ctrl-C (or SIGTERM) ...")
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        click.echo("   stopped")
    if server is not None:
        server.stop()
    store.close()
