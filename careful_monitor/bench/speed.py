"""`careful-monitor bench`: speed and memory side by side with the peers, in one run.

Workloads follow the peers' own measurements: a reference of 10,000 x 20 numeric columns, a window of
1,000 x 20 with a +0.5 sd shift in 5 columns (seeded). Every figure printed comes from this run.
"""

from __future__ import annotations

import gc
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from careful_monitor.bench.workload import (
    TEXT_WINDOW,
    Echo,
    bench_app,
    event_lines,
    text_bench_app,
    text_event_lines,
    text_models,
)
from careful_monitor.engine.column import summarise
from careful_monitor.engine.comparisons.catalogue import for_kind
from careful_monitor.engine.profile import build_profile


def _median_ms(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def window_workload() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The window benchmarks' workload (also handed to the peers): reference 10,000 x 20 N(0, 1), window
    1,000 x 20 with +0.5 sd in the first 5 columns (seed 42), and the feature names."""
    rng = np.random.default_rng(42)
    ref = rng.normal(size=(10_000, 20))
    win = rng.normal(size=(1_000, 20))
    win[:, :5] += 0.5
    return ref, win, [f"inputs.x{i}" for i in range(20)]


def bench_window(repeat: int = 30) -> dict[str, float]:
    """ms to score one 1,000 x 20 window against one reference, ours vs scipy loops."""
    from scipy import stats

    ref, win, names = window_workload()
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
            "careful_monitor_daemon_window_ms": _median_ms(_daemon_window(ref, win, names), repeat),
            "scipy_ks_2samp_asymp_ms": _median_ms(ks_asymp, repeat),
            "scipy_ks_2samp_auto_ms": _median_ms(ks_auto, max(3, repeat // 5)),
            "scipy_wasserstein_ms": _median_ms(wasserstein, repeat),
            "tests_per_column": len(tests)}


def _daemon_window(ref: np.ndarray, win: np.ndarray, names: list[str]) -> Callable[[], Any]:
    """One call closes one window as the daemon does: anchor + 2 synthetic sets (sd 0.7 and 1.0), every
    test and signature, the joint tests, BH, attribution and the typed result."""
    from careful_monitor.config import MinEffect
    from careful_monitor.engine.monitor import ModelBatch, ModelMonitor, MonitorSpec

    rng = np.random.default_rng(1)
    kinds = {n: "numeric" for n in names}
    anchor = build_profile("ref", "real", {n: ref[:, i].tolist() for i, n in enumerate(names)}, kinds=kinds,
                           rng=np.random.default_rng(0))
    synthetic = {name: build_profile(name, "synthetic", {n: rng.normal(0, sd, 10_000).tolist() for n in names},
                                     kinds=kinds, anchor=anchor, anchored_by="ref", rng=rng)
                 for name, sd in (("synth-narrow", 0.7), ("synth-faithful", 1.0))}
    monitor = ModelMonitor("bench", MonitorSpec(features=kinds, window_size=len(win),
                                                min_effect=MinEffect().model_dump()), anchor, synthetic)
    batch = ModelBatch([1_764_000_000.0 + i for i in range(len(win))], ["1"] * len(win),
                       {n: win[:, i].tolist() for i, n in enumerate(names)})

    def close_one() -> None:
        if len(monitor.process(batch, 0.0)) != 1:
            raise RuntimeError("the daemon-window benchmark must close exactly one window per call")

    return close_one


def bench_replay(events: int) -> dict[str, float]:
    """End-to-end replay rate (decode, window, all tests vs 2 references, metrics, store) from a file."""
    import json

    import orjson

    from careful_monitor.runtime.replay import replay

    rng = np.random.default_rng(5)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        lines = event_lines(rng, events, 0)
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
        with bench_app(Path(tmp)) as app:
            t0 = time.perf_counter()
            stats = replay(app.pipeline, [str(path)])
            elapsed = time.perf_counter() - t0
    return {"events": events, "windows": stats.windows, "replay_events_per_s": events / elapsed,
            "stdlib_json_decode_only_per_s": json_rate, "orjson_decode_only_per_s": orjson_rate}


def bench_text_replay(events: int) -> dict[str, float]:
    """End-to-end replay rate of the text-only workload: one ~20-word text feature, windows of 500,
    anchor + 2 synthetic text sets, every text test (token presence, novelty, distinct and length ratios)."""
    from careful_monitor.runtime.replay import replay

    rng = np.random.default_rng(6)
    models = text_models(rng)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "text-events.jsonl"
        lines = text_event_lines(rng, models, events)
        words = sum(len(line.split(b" ")) for line in lines) / len(lines)
        path.write_bytes(b"\n".join(lines) + b"\n")
        del lines
        with text_bench_app(Path(tmp), models) as app:
            t0 = time.perf_counter()
            stats = replay(app.pipeline, [str(path)])
            elapsed = time.perf_counter() - t0
    return {"events": events, "windows": stats.windows, "words_per_event": words,
            "text_replay_events_per_s": events / elapsed}


def bench_mmd(repeat: int = 30) -> dict[str, float]:
    """ms of the window-level multivariate test on a 1,000 x 20 window: copula scores + the random-feature
    MMD against the anchor (the scores are computed afresh per call, as for each new window)."""
    from careful_monitor.engine.comparisons.copula import WindowRows
    from careful_monitor.engine.comparisons.mmd import MMD

    rng = np.random.default_rng(8)
    names = [f"inputs.x{i}" for i in range(20)]
    ref = rng.normal(size=(10_000, 20))
    win = rng.normal(size=(1_000, 20))
    anchor = build_profile("ref", "real", {n: ref[:, i].tolist() for i, n in enumerate(names)},
                           kinds={n: "numeric" for n in names}, rng=np.random.default_rng(0))
    cols = {n: win[:, i] for i, n in enumerate(names)}
    test = MMD()

    def one() -> None:
        if test.compare_window(anchor, WindowRows(cols)) is None:
            raise RuntimeError("the MMD benchmark must produce a result")

    return {"mmd_window_ms": _median_ms(one, repeat)}


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def bench_memory(events: int, echo: Echo) -> dict[str, float | None]:
    """Resident size after 100,000 events and at the end of a long replay (generated in batches)."""
    rng = np.random.default_rng(9)
    batch = 10_000
    with tempfile.TemporaryDirectory() as tmp:
        app = bench_app(Path(tmp))
        pipeline = app.pipeline
        rss_100k = peak = None
        done = 0
        t0 = time.perf_counter()
        while done < events:
            lines = event_lines(rng, batch, done)
            report = pipeline.handle(lines)
            pipeline.persist(report.outcomes)
            done += batch
            if done == 100_000:
                gc.collect()
                rss_100k = _rss_mib()
            if rss_100k is not None:
                peak = max(peak or 0.0, _rss_mib())
            if echo and done % 500_000 == 0:
                echo(f"    memory soak: {done:,} events, RSS {_rss_mib():.0f} MiB, "
                     f"{done / (time.perf_counter() - t0):,.0f} ev/s")
        gc.collect()
        end = _rss_mib()
        app.close()
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
    cols["outputs.probs"] = [dict(zip("abc", r, strict=True)) for r in p.tolist()]
    t0 = time.perf_counter()
    prof = build_profile("big", "real", cols, rng=rng)
    seconds = time.perf_counter() - t0
    size = prof.size_bytes()
    return {"rows": rows, "features": len(prof.features), "profile_bytes": size,
            "kib_per_feature": size / 1024 / len(prof.features), "build_seconds": seconds}


def run_bench(*, quick: bool = False, memory_events: int = 0, echo: Echo = print) -> dict[str, Any]:
    say = echo or (lambda s: None)
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}}
    say("window scoring: reference 10,000 x 20 numeric, window 1,000 x 20 (+0.5 sd in 5 columns), one reference")
    w = bench_window(10 if quick else 30)
    results["window"] = w
    ratio = w["careful_monitor_all_tests_ms"] / w["scipy_ks_2samp_asymp_ms"]
    say(f"  careful-monitor, all {w['tests_per_column']} tests + signatures per column: "
        f"{w['careful_monitor_all_tests_ms']:.2f} ms")
    say(f"  scipy ks_2samp(method='asymp') loop:                  {w['scipy_ks_2samp_asymp_ms']:.2f} ms   "
        f"(ratio {ratio:.2f}, target <= 0.20)")
    daemon = w["careful_monitor_daemon_window_ms"] / w["scipy_ks_2samp_asymp_ms"]
    results["window"]["daemon_ratio_to_ks_asymp"] = daemon
    say(f"  careful-monitor daemon window (anchor + 2 synthetic, joint, BH, attribution): "
        f"{w['careful_monitor_daemon_window_ms']:.2f} ms (ratio {daemon:.2f} to the asymp loop)")
    say(f"  scipy ks_2samp default (exact) loop:                  {w['scipy_ks_2samp_auto_ms']:.2f} ms")
    say(f"  scipy wasserstein_distance loop:                      {w['scipy_wasserstein_ms']:.2f} ms")
    results["window"]["ratio_to_ks_asymp"] = ratio
    n = 50_000 if quick else 300_000
    say(f"replay end to end: {n:,} events (15 numeric + 3-class probs), windows of 1,000, "
        "anchor + 1 synthetic, SQLite, metrics")
    r = bench_replay(n)
    results["replay"] = r
    say(f"  careful-monitor replay:       {r['replay_events_per_s']:>10,.0f} events/s  (target >= 50,000)")
    say(f"  orjson decode only (limit):   {r['orjson_decode_only_per_s']:>10,.0f} events/s")
    say(f"  stdlib json decode only:      {r['stdlib_json_decode_only_per_s']:>10,.0f} events/s")
    n_text = 20_000 if quick else 100_000
    say(f"text-only replay: {n_text:,} events (one text feature of ~20 words), windows of "
        f"{TEXT_WINDOW}, anchor + 2 synthetic text sets, every text test")
    t = bench_text_replay(n_text)
    results["text_replay"] = t
    say(f"  careful-monitor replay:       {t['text_replay_events_per_s']:>10,.0f} events/s  (target >= 40,000; "
        f"{t['words_per_event']:.1f} words/event)")
    mm = bench_mmd(10 if quick else 30)
    results["window"].update(mm)
    say(f"multivariate test (copula scores + RFF MMD) on a 1,000 x 20 window: {mm['mmd_window_ms']:.2f} ms "
        "(target <= 1 ms)")
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
