"""`careful-monitor bench --kafka`: each Kafka runtime against the bare loop of its own client, in one run.

Every round reads the same topic with, in turn: replay of the same events from a file; then for each
runtime the bare loop of its own client, built with the runtime's own settings (aiokafka `getmany`
for `aiokafka`, kafka-python `poll` for `consumer`, a Faust agent with `stream.take_events` and the
same fetch size for `faust`), each value decoded with orjson and nothing else, right before
`careful-monitor run` end to end with that runtime (events/s between the first and the last stored
window). A runtime's ratio is taken within a round, next to its own bare loop, so a machine shared
with other work moves both sides; the summary is the median over rounds.

Without --bootstrap a local broker is started from deploy/kafka (careful_monitor.devbroker).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from careful_monitor.bench.workload import Echo, bench_app, event_lines
from careful_monitor.config import Config

RUNTIMES = ("aiokafka", "consumer", "faust")
#: what each runtime is measured against
BARE_LOOP = {"aiokafka": "aiokafka getmany + orjson", "consumer": "kafka-python poll + orjson",
             "faust": "Faust agent, take_events + orjson"}
TOPICS = {"events": "bench-ev", "alerts": "bench-al", "dead_letters": "bench-dl"}
WINDOW = 1000
#: longest wait for one measured pass over the topic, seconds
PASS_DEADLINE_S = 900.0


def run_kafka(*, quick: bool = False, bootstrap: str | None = None, echo: Echo = print,
              rounds: int | None = None) -> dict[str, Any]:
    say = echo or (lambda s: None)
    n = 50_000 if quick else 200_000
    rounds = rounds if rounds is not None else (1 if quick else 2)
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load_1m_at_start": os.getloadavg()[0]}}
    say(f"Kafka: {n:,} events (19 numeric + probs) on one local broker, windows of {WINDOW:,}, anchor + 1 "
        f"synthetic set; {rounds} round(s), each runtime right after the bare loop of its own client")
    k = bench_kafka(n, bootstrap, echo, rounds=rounds)
    results["kafka"] = k
    results["machine"]["load_1m_at_end"] = os.getloadavg()[0]
    say(f"  {'path':<30} {'events/s':>10}   {'bare loop of its client':<34} {'events/s':>10}  "
        f"{'of bare':>7}  {'of replay':>9}")
    say(f"  {'replay (file, same events)':<30} {k['replay_per_s']:>10,.0f}")
    for runtime in RUNTIMES:
        s = k["runtimes"][runtime]
        default = " (default)" if runtime == "aiokafka" else ""
        say(f"  {'run, ' + runtime + default:<30} {s['run_per_s']:>10,.0f}   {BARE_LOOP[runtime]:<34} "
            f"{s['bare_per_s']:>10,.0f}  {s['of_bare']:>7.0%}  {s['of_replay']:>9.0%}")
    say(f"  (medians over {rounds} round(s); load average {results['machine']['load_1m_at_start']:.1f} at the "
        f"start, {results['machine']['load_1m_at_end']:.1f} at the end, on {os.cpu_count()} CPUs)")
    return results


# --- the bare loops: the runtime's own client and settings, orjson, nothing else ----------------
class _Meter:
    """Counts decoded events; the clock starts after the first batch (the group joined, the first fetch in)."""

    def __init__(self, events: int) -> None:
        self.events, self.n, self.first, self.t0 = events, 0, 0, 0.0
        self.deadline = time.monotonic() + PASS_DEADLINE_S

    def add(self, values: Sequence[bytes | None]) -> bool:
        """Decode one batch; True once `events` are read."""
        import orjson

        for v in values:
            orjson.loads(v or b"null")
        if values and not self.first:
            self.first, self.t0 = len(values), time.perf_counter()
        self.n += len(values)
        if self.n < self.events and time.monotonic() > self.deadline:
            raise RuntimeError(f"the bare loop read {self.n:,} of {self.events:,} events in {PASS_DEADLINE_S:.0f} s")
        return self.n >= self.events

    def rate(self) -> float:
        elapsed = time.perf_counter() - self.t0
        return (self.n - self.first) / elapsed if self.n > self.first and elapsed > 0 else float("nan")


def bare_kafka_python(cfg: Config, events: int) -> float:
    """The `consumer` runtime's client (its own factory: the same fetch settings), `poll` + orjson."""
    from careful_monitor.runtime.consumer import kafka_python_consumer
    from careful_monitor.runtime.kafka_loop import POLL_MS

    client = kafka_python_consumer(cfg)
    client.consumer.subscribe([cfg.kafka.topics.events])
    meter = _Meter(events)
    try:
        while not meter.add([r.value for recs in client.consumer.poll(timeout_ms=POLL_MS,
                                                                      max_records=client.max_records).values()
                             for r in recs]):
            pass
    finally:
        client.consumer.close(autocommit=False)
    return meter.rate()


def bare_aiokafka(cfg: Config, events: int) -> float:
    """The `aiokafka` runtime's client (its own factory: the same fetch settings), `getmany` + orjson."""
    from careful_monitor.runtime.aiokafka_loop import aiokafka_consumer
    from careful_monitor.runtime.kafka_loop import POLL_MS

    async def main() -> float:
        client = aiokafka_consumer(cfg)  # inside the event loop: aiokafka binds to it
        await client.start(cfg.kafka.topics.events, lambda _: None, lambda _: None)
        meter = _Meter(events)
        try:
            while not meter.add([r.value for recs in (await client.poll(POLL_MS)).values() for r in recs]):
                pass
        finally:
            await client.close()
        return meter.rate()

    return asyncio.run(main())


def bare_faust(cfg_path: Path, events: int) -> float:
    """A Faust agent built as the `faust` runtime builds it (`faust_app`: same fetch size), orjson only.

    It runs in a child process, as `run` does (a Faust worker owns its process and event loop).
    """
    import signal
    import subprocess
    import sys

    out = cfg_path.with_suffix(".rate")
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from careful_monitor.bench.kafka import _faust_agent; "
                             "_faust_agent(sys.argv[1], int(sys.argv[2]), sys.argv[3])",
                             str(cfg_path), str(events), str(out)], stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + PASS_DEADLINE_S
        while not out.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError("the bare Faust agent failed:\n" + log.read().decode(errors="replace")[-2000:])
            time.sleep(0.05)
        time.sleep(0.05)  # written in one call; let it land
        return float(out.read_text())
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def _faust_agent(cfg_path: str, events: int, out: str) -> None:
    """The child of `bare_faust`: consume `events` with one agent, write events/s to `out`, wait for SIGTERM."""
    import faust

    from careful_monitor.config import load_config
    from careful_monitor.runtime.faust_app import BATCH_WITHIN_S, MAX_RECORDS, faust_app

    cfg = load_config(Path(cfg_path), environ={})
    app = faust_app(cfg)
    topic = app.topic(cfg.kafka.topics.events, key_serializer="raw", value_serializer="raw")
    meter = _Meter(events)

    @app.agent(topic, concurrency=1)
    async def bare(stream: Any) -> None:
        async for batch in stream.take_events(MAX_RECORDS, within=BATCH_WITHIN_S):
            if meter.add([ev.message.value for ev in batch]) and not Path(out).exists():
                tmp = Path(out + ".tmp")
                tmp.write_text(repr(meter.rate()))
                tmp.replace(out)

    faust.Worker(app, loglevel="warning", quiet=True, override_logging=False).execute_from_commandline()


# --- `run` end to end --------------------------------------------------------------------------
def _run_rate(cfg_path: Path, store_url: str, windows: int, window_size: int) -> float:
    """Start `careful-monitor run`; events/s between the first and the last stored window."""
    import signal
    import subprocess
    import sys

    from careful_monitor.store import Store

    store = Store(store_url)
    # the log goes to a file: a pipe nobody drains would block `run` on its own warnings
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen([sys.executable, "-m", "careful_monitor.cli", "--log-level", "warning", "run",
                             "--config", str(cfg_path), "--port", "0"],
                            stdout=subprocess.DEVNULL, stderr=log)
    first = last = None
    try:
        deadline = time.monotonic() + PASS_DEADLINE_S
        while time.monotonic() < deadline:
            n = store.count_windows("bench")
            now = time.perf_counter()
            if n >= 1 and first is None:
                first = (now, n)
            if n >= windows:
                last = (now, n)
                break
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(log.read().decode(errors="replace")[-2000:])
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()
        store.close()
    if first is None or last is None or last[1] == first[1]:
        return float("nan")
    return (last[1] - first[1]) * window_size / (last[0] - first[0])


def _runtime_config(work: Path, cfg: Config, runtime: str, tag: str) -> tuple[Path, str]:
    """A config for `runtime` with a group and a store of its own (holding the bench's datasets)."""
    import yaml

    from careful_monitor.store import Store

    db = work / f"{tag}.db"
    doc = {"models": cfg.model_dump(mode="json")["models"], "store": {"url": f"sqlite:///{db}"},
           "kafka": {"bootstrap": cfg.kafka.bootstrap, "runtime": runtime, "group": f"bench-{tag}",
                     "partitions": cfg.kafka.partitions, "fetch_max_bytes": cfg.kafka.fetch_max_bytes,
                     "topics": TOPICS}}
    path = work / f"{tag}.yaml"
    path.write_text(yaml.safe_dump(doc))
    src, dst = Store(cfg.store_url), Store(f"sqlite:///{db}")
    try:
        for rec in src.list_datasets():
            dst.put_dataset(name=rec.name, role=rec.role, anchored_by=rec.anchored_by, card=rec.card,
                            profile=rec.profile, n_rows=rec.n_rows, data_sha256=rec.data_sha256, by="bench")
    finally:
        src.close()
        dst.close()
    return path, f"sqlite:///{db}"


def bench_kafka(events: int, bootstrap: str | None = None, echo: Echo = None, *, rounds: int = 2) -> dict[str, Any]:
    """Events/s on one broker, per round: replay, then each runtime's bare client loop and its `run`."""
    import yaml

    from careful_monitor.config import load_config
    from careful_monitor.devbroker import start_local_broker
    from careful_monitor.runtime.producer import produce_lines
    from careful_monitor.runtime.replay import replay
    from careful_monitor.runtime.topics import create_topics

    say = echo or (lambda s: None)
    out: dict[str, Any] = {"events": events, "rounds": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = None
        if bootstrap is None:
            broker = start_local_broker(work)
            bootstrap = broker.bootstrap
        try:
            rng = np.random.default_rng(5)
            lines = event_lines(rng, events, 0, numeric=19)
            path = work / "events.jsonl"
            path.write_bytes(b"\n".join(lines) + b"\n")
            kafka = {"bootstrap": bootstrap, "topics": TOPICS}
            app = bench_app(work, numeric=19, overrides={"kafka": kafka})
            cfg = app.cfg
            app.close()
            create_topics(cfg)
            t0 = time.perf_counter()
            produce_lines(cfg, lines)
            out["produce_per_s"] = events / (time.perf_counter() - t0)
            out["fetch_max_bytes"] = cfg.kafka.fetch_max_bytes
            say(f"  produced {events:,} events to {cfg.kafka.partitions} partitions at {out['produce_per_s']:,.0f}/s")
            for r in range(rounds):
                rnd: dict[str, Any] = {}
                # a fresh store each round: replay into the same one would drop every event as a duplicate id
                rdir = work / f"replay-{r}"
                rdir.mkdir()
                rapp = bench_app(rdir, numeric=19, overrides={"kafka": kafka})
                t0 = time.perf_counter()
                replay(rapp.pipeline, [str(path)])
                rnd["replay_per_s"] = events / (time.perf_counter() - t0)
                rapp.close()
                say(f"  round {r + 1}: replay {rnd['replay_per_s']:,.0f}/s")
                for runtime in RUNTIMES:
                    tag = f"{runtime}-{r}"
                    cfg_path, store_url = _runtime_config(work, cfg, runtime, tag)
                    rcfg = load_config(cfg_path, environ={})
                    bare = rcfg.model_copy(update={"kafka": rcfg.kafka.model_copy(update={"group": f"bare-{tag}"})})
                    if runtime == "aiokafka":
                        rate = bare_aiokafka(bare, events)
                    elif runtime == "consumer":
                        rate = bare_kafka_python(bare, events)
                    else:
                        bare_path = work / f"bare-{tag}.yaml"
                        bare_path.write_text(yaml.safe_dump({"kafka": bare.kafka.model_dump(mode="json")}))
                        rate = bare_faust(bare_path, events)
                    run = _run_rate(cfg_path, store_url, events // WINDOW, WINDOW)
                    rnd[runtime] = {"bare_per_s": rate, "run_per_s": run, "of_bare": run / rate,
                                    "of_replay": run / rnd["replay_per_s"]}
                    say(f"  round {r + 1}: {runtime:<8} run {run:>9,.0f}/s, {BARE_LOOP[runtime]} {rate:>9,.0f}/s "
                        f"({run / rate:.0%})")
                out["rounds"].append(rnd)
        finally:
            if broker is not None:
                broker.stop()
    rs = out["rounds"]
    out["replay_per_s"] = statistics.median(x["replay_per_s"] for x in rs)
    out["runtimes"] = {rt: {key: statistics.median(x[rt][key] for x in rs)
                            for key in ("bare_per_s", "run_per_s", "of_bare", "of_replay")} for rt in RUNTIMES}
    return out
