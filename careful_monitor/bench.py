"""`careful-monitor bench`: speed and memory side by side with the peers, in one run.

Workloads follow ../shared/PEERS.md: reference 10,000 x 20 numeric columns, window 1,000 x 20 with a
+0.5 sd shift in 5 columns (seeded). Every figure printed comes from this run.
"""

from __future__ import annotations

import gc
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from careful_monitor.engine.column import summarise
from careful_monitor.engine.profile import build_profile
from careful_monitor.engine.tests.registry import for_kind

Echo = Callable[[str], None] | None


def _median_ms(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bench_window(repeat: int = 30) -> dict[str, float]:
    """ms to score one 1,000 x 20 window against one reference, ours vs scipy loops."""
    from scipy import stats

    rng = np.random.default_rng(42)
    ref = rng.normal(size=(10_000, 20))
    win = rng.normal(size=(1_000, 20))
    win[:, :5] += 0.5
    names = [f"inputs.x{i}" for i in range(20)]
    prof = build_profile("ref", "real", {n: ref[:, i].tolist() for i, n in enumerate(names)},
                         kinds={n: "numeric" for n in names}, rng=np.random.default_rng(0))
    tests = for_kind("numeric", anchor=True)
    cols = {n: win[:, i].tolist() for i, n in enumerate(names)}

    def ours() -> None:
        for n in names:
            col = summarise(cols[n], prof.features[n])
            for t in tests:
                t.compare(prof.features[n], col)

    def ks_asymp() -> None:
        for i in range(20):
            stats.ks_2samp(win[:, i], ref[:, i], method="asymp")

    def ks_auto() -> None:
        for i in range(20):
            stats.ks_2samp(win[:, i], ref[:, i])

    def wasserstein() -> None:
        for i in range(20):
            stats.wasserstein_distance(win[:, i], ref[:, i])

    return {"careful_monitor_all_tests_ms": _median_ms(ours, repeat),
            "scipy_ks_2samp_asymp_ms": _median_ms(ks_asymp, repeat),
            "scipy_ks_2samp_auto_ms": _median_ms(ks_auto, max(3, repeat // 5)),
            "scipy_wasserstein_ms": _median_ms(wasserstein, repeat),
            "tests_per_column": len(tests)}


FEATURES_15 = {**{f"inputs.x{i}": "numeric" for i in range(15)}, "outputs.probs": "probs"}


def _event_lines(rng: np.random.Generator, n: int, start: int, shift: float = 0.0, numeric: int = 15) -> list[bytes]:
    import orjson

    x = np.round(rng.normal(shift, 1.0, (n, numeric)), 4).tolist()
    z = rng.normal(size=(n, 3))
    p = np.exp(z)
    p = np.round(p / p.sum(axis=1, keepdims=True), 4).tolist()
    dumps = orjson.dumps
    return [dumps({"model": "bench", "model_version": "1", "ts": float(start + i), "id": f"e{start + i}",
                   "inputs": {f"x{j}": v for j, v in enumerate(x[i])},
                   "outputs": {"probs": {"a": p[i][0], "b": p[i][1], "c": p[i][2]}}}) for i in range(n)]


def _rows(rng: np.random.Generator, n: int, sd: float = 1.0, numeric: int = 15) -> dict[str, list]:
    cols: dict[str, list] = {f"inputs.x{i}": rng.normal(0, sd, n).tolist() for i in range(numeric)}
    z = rng.normal(size=(n, 3))
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    cols["outputs.probs"] = [dict(zip("abc", r)) for r in p.tolist()]
    return cols


def _pipeline(workdir: Path, numeric: int = 15, overrides: dict | None = None):
    from careful_monitor.config import load_config
    from careful_monitor.engine.profile import ReferenceProfile
    from careful_monitor.runtime.pipeline import Pipeline
    from careful_monitor.sinks.prometheus import Metrics
    from careful_monitor.store import Store

    rng = np.random.default_rng(1)
    features = {**{f"inputs.x{i}": "numeric" for i in range(numeric)}, "outputs.probs": "probs"}
    cfg = load_config(None, environ={}, overrides={
        "models": {"bench": {"anchor": "bench-real", "training_mix": {"bench-real": 0.5, "bench-synth": 0.5},
                             "features": features}},
        "store": {"url": f"sqlite:///{workdir / 'bench.db'}"}, **(overrides or {})})
    store = Store(cfg.store_url)
    anchor = build_profile("bench-real", "real", _rows(rng, 20_000, numeric=numeric), kinds=features, rng=rng)
    synth = build_profile("bench-synth", "synthetic", _rows(rng, 10_000, 0.7, numeric=numeric), kinds=features, anchor=anchor,
                          anchored_by="bench-real", rng=rng)
    for prof in (anchor, synth):
        store.put_dataset(name=prof.name, role=prof.role, anchored_by=prof.anchored_by, card={"name": prof.name},
                          profile=prof.to_bytes(), n_rows=prof.n_rows, data_sha256="-", by="bench")
    _ = ReferenceProfile
    return Pipeline(cfg, store, Metrics()), store, cfg


def bench_replay(events: int) -> dict[str, float]:
    """End-to-end replay rate (decode, window, all tests vs 2 references, metrics, store) from a file."""
    import json

    import orjson

    from careful_monitor.runtime.replay import replay

    rng = np.random.default_rng(5)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        lines = _event_lines(rng, events, 0)
        path.write_bytes(b"\n".join(lines) + b"\n")
        t0 = time.perf_counter()
        for line in lines:
            json.loads(line)
        json_rate = events / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for line in lines:
            orjson.loads(line)
        orjson_rate = events / (time.perf_counter() - t0)
        del lines
        pipeline, store, _ = _pipeline(Path(tmp))
        t0 = time.perf_counter()
        stats = replay(pipeline, [str(path)])
        elapsed = time.perf_counter() - t0
        store.close()
    return {"events": events, "windows": stats.windows, "replay_events_per_s": events / elapsed,
            "stdlib_json_decode_only_per_s": json_rate, "orjson_decode_only_per_s": orjson_rate}


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def bench_memory(events: int, echo: Echo) -> dict[str, float]:
    """Resident size after 100,000 events and at the end of a long replay (generated in batches)."""
    rng = np.random.default_rng(9)
    batch = 10_000
    with tempfile.TemporaryDirectory() as tmp:
        pipeline, store, _ = _pipeline(Path(tmp))
        rss_100k = peak = None
        done = 0
        t0 = time.perf_counter()
        while done < events:
            lines = _event_lines(rng, batch, done)
            report = pipeline.handle(lines)
            pipeline.persist(report.outcomes)
            done += batch
            if done == 100_000:
                gc.collect()
                rss_100k = _rss_mib()
            if rss_100k is not None:
                peak = max(peak or 0.0, _rss_mib())
            if echo and done % 500_000 == 0:
                echo(f"    memory soak: {done:,} events, RSS {_rss_mib():.0f} MiB, {done / (time.perf_counter() - t0):,.0f} ev/s")
        gc.collect()
        end = _rss_mib()
        store.close()
    return {"events": events, "rss_after_100k_mib": rss_100k, "rss_end_mib": end, "rss_peak_mib": peak,
            "growth_pct": 100.0 * ((peak or end) - rss_100k) / rss_100k if rss_100k else None}


def bench_profile_size(rows: int) -> dict[str, float]:
    """Stored profile size of a large anchor, per feature."""
    rng = np.random.default_rng(3)
    cols: dict[str, list] = {f"inputs.x{i}": rng.normal(size=rows).tolist() for i in range(5)}
    cols["inputs.c"] = rng.choice([f"c{i}" for i in range(50)], rows).tolist()
    z = rng.normal(size=(rows, 3))
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    cols["outputs.probs"] = [dict(zip("abc", r)) for r in p.tolist()]
    t0 = time.perf_counter()
    prof = build_profile("big", "real", cols, rng=rng)
    seconds = time.perf_counter() - t0
    size = prof.size_bytes()
    return {"rows": rows, "features": len(prof.features), "profile_bytes": size,
            "kib_per_feature": size / 1024 / len(prof.features), "build_seconds": seconds}


def run_bench(*, quick: bool = False, memory_events: int = 0, kafka: bool = False, bootstrap: str | None = None,
              echo: Echo = print) -> dict[str, Any]:
    say = echo or (lambda s: None)
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}}
    if kafka:
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
    say("window scoring: reference 10,000 x 20 numeric, window 1,000 x 20 (+0.5 sd in 5 columns), one reference")
    w = bench_window(10 if quick else 30)
    results["window"] = w
    ratio = w["careful_monitor_all_tests_ms"] / w["scipy_ks_2samp_asymp_ms"]
    say(f"  careful-monitor, all {w['tests_per_column']} tests + signatures per column: {w['careful_monitor_all_tests_ms']:.2f} ms")
    say(f"  scipy ks_2samp(method='asymp') loop:                  {w['scipy_ks_2samp_asymp_ms']:.2f} ms   (ratio {ratio:.2f}, target <= 0.20)")
    say(f"  scipy ks_2samp default (exact) loop:                  {w['scipy_ks_2samp_auto_ms']:.2f} ms")
    say(f"  scipy wasserstein_distance loop:                      {w['scipy_wasserstein_ms']:.2f} ms")
    results["window"]["ratio_to_ks_asymp"] = ratio
    n = 50_000 if quick else 300_000
    say(f"replay end to end: {n:,} events (15 numeric + 3-class probs), windows of 1,000, anchor + 1 synthetic, SQLite, metrics")
    r = bench_replay(n)
    results["replay"] = r
    say(f"  careful-monitor replay:       {r['replay_events_per_s']:>10,.0f} events/s  (target >= 50,000)")
    say(f"  orjson decode only (limit):   {r['orjson_decode_only_per_s']:>10,.0f} events/s")
    say(f"  stdlib json decode only:      {r['stdlib_json_decode_only_per_s']:>10,.0f} events/s")
    rows = 100_000 if quick else 1_000_000
    say(f"profile size: anchor of {rows:,} rows")
    p = bench_profile_size(rows)
    results["profile"] = p
    say(f"  {p['profile_bytes'] / 1024:.1f} KiB for {p['features']} features = {p['kib_per_feature']:.1f} KiB/feature "
        f"(target <= 64), built in {p['build_seconds']:.1f}s")
    if memory_events:
        say(f"memory: replay of {memory_events:,} generated events")
        m = bench_memory(memory_events, echo)
        results["memory"] = m
        say(f"  RSS after 100k: {m['rss_after_100k_mib']:.0f} MiB, peak after: {m['rss_peak_mib']:.0f} MiB, "
            f"growth {m['growth_pct']:.1f} % (target <= 10 %)")
    return results


# --- Kafka ----------------------------------------------------------------------------------------

def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _local_broker(workdir: Path):
    """Start deploy/kafka/broker.sh on free ports (from a source checkout); returns (bootstrap, stop)."""
    import subprocess

    script = Path.cwd() / "deploy" / "kafka" / "broker.sh"
    if not script.exists():
        script = Path(__file__).resolve().parents[1] / "deploy" / "kafka" / "broker.sh"
    if not script.exists():
        raise RuntimeError("bench --kafka needs deploy/kafka/broker.sh (run it from a source checkout) or --bootstrap")
    port = _free_port()
    env = {**os.environ, "PORT": str(port), "CONTROLLER_PORT": str(_free_port()), "LOG_DIR": str(workdir / "kafka")}
    subprocess.run([str(script), "start"], env=env, check=True, capture_output=True, timeout=600)
    from kafka.admin import KafkaAdminClient

    deadline = time.monotonic() + 120
    while True:
        try:
            KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=3000).close()
            break
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    return f"127.0.0.1:{port}", lambda: subprocess.run([str(script), "stop"], env=env, capture_output=True, timeout=120)


def _run_rate(cfg_path: Path, store_url: str, windows: int, window_size: int) -> float:
    """Start `careful-monitor run`; events/s between the first and the last stored window."""
    import signal
    import subprocess
    import sys

    from careful_monitor.store import Store

    store = Store(store_url)
    proc = subprocess.Popen([sys.executable, "-m", "careful_monitor.cli", "--log-level", "warning", "run",
                             "--config", str(cfg_path), "--port", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
                raise RuntimeError(proc.stderr.read().decode()[-2000:])
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        store.close()
    if first is None or last is None or last[1] == first[1]:
        return float("nan")
    return (last[1] - first[1]) * window_size / (last[0] - first[0])


def bench_kafka(events: int, bootstrap: str | None = None, echo: Echo = None) -> dict[str, float]:
    """Events/s on one local broker: each runtime end to end, replay of the same file, the bare client loop."""
    import orjson
    import yaml
    from kafka import KafkaConsumer

    from careful_monitor.runtime.producer import produce_lines
    from careful_monitor.runtime.replay import replay
    from careful_monitor.runtime.topics import create_topics

    say = echo or (lambda s: None)
    out: dict[str, float] = {"events": events}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        stop = None
        if bootstrap is None:
            bootstrap, stop = _local_broker(work)
        try:
            rng = np.random.default_rng(5)
            lines = _event_lines(rng, events, 0, numeric=19)
            path = work / "events.jsonl"
            path.write_bytes(b"\n".join(lines) + b"\n")
            pipeline, store, cfg = _pipeline(work, numeric=19, overrides={
                "kafka": {"bootstrap": bootstrap, "topics": {"events": "bench-ev", "alerts": "bench-al", "dead_letters": "bench-dl"}}})
            create_topics(cfg)
            t0 = time.perf_counter()
            produce_lines(cfg, lines)
            out["produce_per_s"] = events / (time.perf_counter() - t0)
            say(f"  produced {events:,} events (19 numeric + probs = 20 features) at {out['produce_per_s']:,.0f}/s")
            t0 = time.perf_counter()
            replay(pipeline, [str(path)])
            out["replay_per_s"] = events / (time.perf_counter() - t0)
            store.close()
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
                from careful_monitor.store import Store

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
            if stop:
                stop()
    return out
