"""`careful-monitor bench --kafka`: events/s of each Kafka runtime on one broker, beside replay and the bare client.

Without --bootstrap a local broker is started from deploy/kafka (careful_monitor.devbroker).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from careful_monitor.bench.workload import Echo, bench_app, event_lines


def run_kafka(*, quick: bool = False, bootstrap: str | None = None, echo: Echo = print) -> dict[str, Any]:
    say = echo or (lambda s: None)
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}}
    n = 50_000 if quick else 200_000
    say(f"Kafka: {n:,} events on one local broker, windows of 1,000, anchor + 1 synthetic set")
    k = bench_kafka(n, bootstrap, echo)
    results["kafka"] = k
    say(f"  bare kafka-python poll + orjson (the limit): {k['bare_kafka_python_loop_per_s']:>10,.0f} events/s")
    say(f"  replay of the same events from a file:       {k['replay_per_s']:>10,.0f} events/s")
    say(f"  run, aiokafka runtime (default):             {k['run_aiokafka_per_s']:>10,.0f} events/s "
        f"({k['run_aiokafka_per_s'] / k['replay_per_s']:.0%} of replay; target >= 25,000 and >= 70 %)")
    say(f"  run, consumer runtime (kafka-python):        {k['run_consumer_per_s']:>10,.0f} events/s "
        f"({k['run_consumer_per_s'] / k['replay_per_s']:.0%} of replay)")
    say(f"  run, faust runtime:                          {k['run_faust_per_s']:>10,.0f} events/s")
    return results


def _run_rate(cfg_path: Path, store_url: str, windows: int, window_size: int) -> float:
    """Start `careful-monitor run`; events/s between the first and the last stored window."""
    import signal
    import subprocess
    import sys
    import tempfile

    from careful_monitor.store import Store

    store = Store(store_url)
    # the log goes to a file: a pipe nobody drains would block `run` on its own warnings
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen([sys.executable, "-m", "careful_monitor.cli", "--log-level", "warning", "run",
                             "--config", str(cfg_path), "--port", "0"],
                            stdout=subprocess.DEVNULL, stderr=log)
    first = last = None
    try:
        deadline = time.monotonic() + 900
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


def bench_kafka(events: int, bootstrap: str | None = None, echo: Echo = None) -> dict[str, float]:
    """Events/s on one local broker: each runtime end to end, replay of the same file, the bare client loop."""
    import orjson
    import yaml
    from kafka import KafkaConsumer

    from careful_monitor.devbroker import start_local_broker
    from careful_monitor.runtime.producer import produce_lines
    from careful_monitor.runtime.replay import replay
    from careful_monitor.runtime.topics import create_topics
    from careful_monitor.store import Store

    say = echo or (lambda s: None)
    out: dict[str, float] = {"events": events}
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
            app = bench_app(work, numeric=19, overrides={
                "kafka": {"bootstrap": bootstrap,
                          "topics": {"events": "bench-ev", "alerts": "bench-al", "dead_letters": "bench-dl"}}})
            cfg = app.cfg
            create_topics(cfg)
            t0 = time.perf_counter()
            produce_lines(cfg, lines)
            out["produce_per_s"] = events / (time.perf_counter() - t0)
            say(f"  produced {events:,} events (19 numeric + probs = 20 features) at {out['produce_per_s']:,.0f}/s")
            t0 = time.perf_counter()
            replay(app.pipeline, [str(path)])
            out["replay_per_s"] = events / (time.perf_counter() - t0)
            app.close()
            c = KafkaConsumer("bench-ev", bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                              enable_auto_commit=False, max_poll_records=5000, fetch_max_bytes=64 << 20,
                              max_partition_fetch_bytes=8 << 20)
            n, t_start = 0, None
            while n < events:
                for recs in c.poll(timeout_ms=500).values():
                    t_start = t_start or time.perf_counter()
                    for r in recs:
                        orjson.loads(r.value)
                    n += len(recs)
            assert t_start is not None  # set by the first non-empty poll
            out["bare_kafka_python_loop_per_s"] = n / (time.perf_counter() - t_start)
            c.close()
            for runtime in ("aiokafka", "consumer", "faust"):
                db = work / f"{runtime}.db"
                doc = {"models": cfg.model_dump(mode="json")["models"],
                       "store": {"url": f"sqlite:///{db}"},
                       "kafka": {"bootstrap": bootstrap, "runtime": runtime, "group": f"bench-{runtime}",
                                 "topics": {"events": "bench-ev", "alerts": "bench-al", "dead_letters": "bench-dl"}}}
                cfg_path = work / f"{runtime}.yaml"
                cfg_path.write_text(yaml.safe_dump(doc))
                src = Store(cfg.store_url)
                dst = Store(f"sqlite:///{db}")
                for rec in src.list_datasets():
                    dst.put_dataset(name=rec.name, role=rec.role, anchored_by=rec.anchored_by, card=rec.card,
                                    profile=rec.profile, n_rows=rec.n_rows, data_sha256=rec.data_sha256, by="bench")
                src.close()
                dst.close()
                say(f"  running the {runtime} runtime over the topic ...")
                out[f"run_{runtime}_per_s"] = _run_rate(cfg_path, f"sqlite:///{db}", events // 1000, 1000)
        finally:
            if broker is not None:
                broker.stop()
    return out
