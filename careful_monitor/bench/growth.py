"""`careful-monitor bench --growth`: how the daemon's cost grows, one axis at a time from the base workload.

The base workload is the daemon window of `bench`: anchor + 2 synthetic sets, 20 numeric features,
windows of 1,000 events, one model. Each axis varies one of them and keeps the others at the base:

- synthetic references (1, 2, 5, 10), features (20, 100, 500), window size (1k, 10k, 100k): ms to
  close one window through `ModelMonitor.process` (the batch appended to the open window, every
  comparison, joint/MMD, BH, attribution, the typed result), exactly as in `bench`'s daemon window;
- models per worker (1, 10, 100): µs per event of `Pipeline.handle` (decode, id dedup, every model's
  monitor, metrics) on the replay workload (15 numeric + probs, anchor + 2 synthetic sets), its events
  spread round-robin over N models configured on one worker, in batches of 4,096 lines as replay reads
  them; the same many events whatever N, so every cell includes its share of window closes;
- persist: ms per batch of `Pipeline.persist` after each of those batches (window results, every touched
  model's engine snapshot and the batch's new dedup ids, one SQLite transaction), per N models.

The values of an axis are timed in interleaved rounds (`speed.interleave`), medians reported.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from careful_monitor.bench.speed import _closer, interleave
from careful_monitor.bench.workload import (
    SYNTHETIC_SDS,
    Echo,
    bench_app,
    bench_profiles,
    event_lines,
    model_names,
    quiet_logs,
)
from careful_monitor.engine.profile import ReferenceProfile, build_profile

#: the full table's axes (issue 13) and the base workload each axis varies from
AXES: dict[str, tuple[int, ...]] = {"synthetic": (1, 2, 5, 10), "features": (20, 100, 500),
                                    "window": (1_000, 10_000, 100_000), "models": (1, 10, 100)}
QUICK_AXES: dict[str, tuple[int, ...]] = {"synthetic": (1, 2), "features": (20, 100), "window": (1_000, 10_000),
                                          "models": (1, 10)}
BASE: dict[str, int] = {"synthetic": 2, "features": 20, "window": 1_000, "models": 1}
#: lines per `Pipeline.handle` call (replay's batch)
BATCH_LINES = 4096
LABELS = {"synthetic": "synthetic references", "features": "numeric features", "window": "window size",
          "models": "models/worker: handle", "persist": "persist (N models)"}


class _Profiles:
    """Anchor and synthetic profiles per feature count, built once (reference `rows` rows, seed 21)."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self._anchor: dict[int, ReferenceProfile] = {}
        self._synthetic: dict[int, list[ReferenceProfile]] = {}

    def get(self, features: int, synthetic: int) -> tuple[ReferenceProfile, dict[str, ReferenceProfile],
                                                          dict[str, str]]:
        names = [f"inputs.x{i}" for i in range(features)]
        kinds = {n: "numeric" for n in names}
        rng = np.random.default_rng(21 + features)
        if features not in self._anchor:
            self._anchor[features] = build_profile("ref", "real", {n: rng.normal(size=self.rows).tolist()
                                                                   for n in names}, kinds=kinds, rng=rng)
        anchor, sets = self._anchor[features], self._synthetic.setdefault(features, [])
        while len(sets) < synthetic:
            k = len(sets)
            sd = SYNTHETIC_SDS[k % len(SYNTHETIC_SDS)]
            sets.append(build_profile(f"synth-{k + 1}", "synthetic", {n: rng.normal(0, sd, self.rows).tolist()
                                                                      for n in names},
                                      kinds=kinds, anchor=anchor, anchored_by="ref", rng=rng))
        return anchor, {p.name: p for p in sets[:synthetic]}, kinds


def _window_columns(features: int, size: int, seed: int = 42) -> dict[str, list]:
    """A window of `size` events, N(0, 1) with +0.5 sd in the first quarter of the features (as `bench`)."""
    rng = np.random.default_rng(seed)
    win = rng.normal(size=(size, features))
    win[:, :max(1, features // 4)] += 0.5
    return {f"inputs.x{i}": win[:, i].tolist() for i in range(features)}


def window_axes(axes: Mapping[str, Sequence[int]], base: Mapping[str, int], rounds: int, repeat: int,
                ref_rows: int = 10_000, echo: Echo = None) -> dict[str, list[dict[str, Any]]]:
    """ms per window closed by `ModelMonitor.process` for each value of the synthetic, features, window axes."""
    say = echo or (lambda s: None)
    profiles = _Profiles(ref_rows)
    out: dict[str, list[dict[str, Any]]] = {}
    for axis in ("synthetic", "features", "window"):
        values = list(axes.get(axis, ()))
        if not values:
            continue
        cases: dict[str, Callable[[], Any]] = {}
        sizes = {}
        for value in values:
            p = {**base, axis: value}
            anchor, synthetic, kinds = profiles.get(p["features"], p["synthetic"])
            cases[str(value)] = _closer(anchor, synthetic, kinds, _window_columns(p["features"], p["window"]))
            sizes[str(value)] = p["window"]
        t = interleave(cases, rounds, repeat)
        out[axis] = [{"value": int(v), "ms_per_window": t.median(v) * 1000,
                      "us_per_event": t.median(v) * 1e6 / sizes[v], "calls": len(t.calls(v))} for v in cases]
        say(f"  measured {LABELS[axis]}: {', '.join(str(v) for v in values)}")
    return out


def model_axes(models: Sequence[int], rounds: int, events: int | None = None, *, numeric: int = 15,
               synthetic: int = 2, ref_rows: int = 20_000, window: int | None = None,
               echo: Echo = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """µs per event of `Pipeline.handle` and ms per batch of `Pipeline.persist` with N models on one worker.

    Each call handles and persists `events` fresh events (new ids) spread round-robin over the N models, in
    batches of BATCH_LINES; only `handle` counts toward the per-event cost, `persist` is timed on its own.
    `events` defaults to max(models) x window, so the largest N closes one window per model per call.
    """
    say = echo or (lambda s: None)
    overrides = {"window": {"size": window, "min_size": min(200, window)}} if window else None
    size = window or 1000
    events = events or max(models) * size
    profiles = bench_profiles(numeric, synthetic, rows=ref_rows)
    persist_ms: dict[str, list[float]] = {}
    windows: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="careful-growth-") as tmp:
        apps = []
        cases: dict[str, Callable[[], Any]] = {}
        for n in models:
            work = Path(tmp) / f"models-{n}"
            work.mkdir()
            app = bench_app(work, numeric, overrides, models=n, profiles=profiles)
            apps.append(app)
            cases[str(n)] = _handle_pass(app, model_names(n), events, numeric,
                                         persist_ms.setdefault(str(n), []), windows, str(n))
        try:
            t = interleave(cases, rounds)  # the warm-up pass: each monitor's first windows, untimed
        finally:
            for app in apps:
                app.close()
    per_event = [{"value": int(v), "us_per_event": t.median(v) * 1e6 / events, "events_per_call": events,
                  "windows_per_call": windows[v], "calls": len(t.calls(v))} for v in cases]
    batch = min(events, BATCH_LINES)
    for cell in per_event:
        cell["ms_per_batch"] = cell["us_per_event"] * batch / 1000
    persist = [{"value": int(v), "ms_per_batch": statistics.median(persist_ms[v]), "batch_lines": batch,
                "batches": len(persist_ms[v])} for v in cases]
    say(f"  measured {LABELS['models']} and {LABELS['persist']}: {', '.join(str(n) for n in models)}")
    return per_event, persist


def _handle_pass(app: Any, names: list[str], events: int, numeric: int, persist_ms: list[float],
                 windows: dict[str, int], key: str) -> Callable[[], float]:
    """A call that handles (timed) and persists (timed apart) `events` new events; returns handle seconds."""
    rng = np.random.default_rng(31)
    start = 0
    pipeline = app.pipeline

    def one() -> float:
        nonlocal start
        lines = event_lines(rng, events, start, numeric=numeric, models=names)
        start += events
        handled, closed = 0.0, 0
        perf = time.perf_counter
        for lo in range(0, events, BATCH_LINES):
            t0 = perf()
            report = pipeline.handle(lines[lo:lo + BATCH_LINES])
            t1 = perf()
            pipeline.persist(report.outcomes)
            persist_ms.append((perf() - t1) * 1000)
            handled += t1 - t0
            closed += len(report.outcomes)
        windows[key] = closed
        return handled

    return one


def run_growth(*, quick: bool = False, axes: Mapping[str, Sequence[int]] | None = None,
               base: Mapping[str, int] | None = None, rounds: int | None = None, repeat: int | None = None,
               ref_rows: int | None = None, model_events: int | None = None, model_window: int | None = None,
               echo: Echo = print) -> dict[str, Any]:
    """The cost-growth table: {"axes": {axis: [cells]}, "base", "machine", ...}; `axes` and the sizes may be
    given (the unit test's tiny ones), else the full table or, with `quick`, a smoke-sized one."""
    with quiet_logs():
        return _run_growth(quick=quick, axes=axes, base=base, rounds=rounds, repeat=repeat, ref_rows=ref_rows,
                           model_events=model_events, model_window=model_window, echo=echo)


def _run_growth(*, quick: bool, axes: Mapping[str, Sequence[int]] | None, base: Mapping[str, int] | None,
                rounds: int | None, repeat: int | None, ref_rows: int | None, model_events: int | None,
                model_window: int | None, echo: Echo) -> dict[str, Any]:
    say = echo or (lambda s: None)
    axes = dict(axes if axes is not None else QUICK_AXES if quick else AXES)
    base = {**BASE, **(base or {})}
    rounds = rounds or (2 if quick else 5)
    repeat = repeat or (1 if quick else 3)
    ref_rows = ref_rows or (5_000 if quick else 10_000)
    t0 = time.perf_counter()
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load_avg_start": list(os.getloadavg())},
        "base": base, "rounds": rounds, "repeat": repeat, "reference_rows": ref_rows, "axes": {}}
    say(f"cost growth{' (--quick)' if quick else ''}: one axis at a time from the base (anchor + "
        f"{base['synthetic']} synthetic set(s), {base['features']} numeric features, windows of {base['window']:,}, "
        f"1 model); {rounds} interleaved rounds, medians; load average "
        f"{results['machine']['load_avg_start'][0]:.2f} on {os.cpu_count()} CPUs")
    results["axes"].update(window_axes(axes, base, rounds, repeat, ref_rows, echo))
    if axes.get("models"):
        per_event, persist = model_axes(axes["models"], min(rounds, 3), model_events, ref_rows=2 * ref_rows,
                                        synthetic=base["synthetic"], window=model_window, echo=echo)
        results["axes"]["models"] = per_event
        results["axes"]["persist"] = persist
    results["machine"]["load_avg_end"] = list(os.getloadavg())
    results["seconds"] = time.perf_counter() - t0
    for line in growth_table(results):
        say(line)
    return results


def growth_table(results: Mapping[str, Any]) -> list[str]:
    """The table's lines: axis, value, the cell (ms per window, µs per event or ms per batch), x the axis's first."""
    lines = [f"  {'axis':<22} {'value':>8}  {'median':>14}  {'per event':>12}  {'x first':>8}"]
    base = results["base"]
    for axis, cells in results["axes"].items():
        if not cells:
            continue
        first = cells[0]
        for i, c in enumerate(cells):
            label = LABELS[axis] if i == 0 else ""
            if axis == "persist":  # value: models per worker
                cell = f"{c['ms_per_batch']:.2f} ms/batch"
                per_event = f"{c['ms_per_batch'] * 1000 / c['batch_lines']:.2f} us"
                rel, value = c["ms_per_batch"] / first["ms_per_batch"], f"{c['value']} mod."
            elif axis == "models":
                cell, per_event = f"{c['ms_per_batch']:.2f} ms/batch", f"{c['us_per_event']:.2f} us"
                rel, value = c["us_per_event"] / first["us_per_event"], str(c["value"])
            else:
                cell = f"{c['ms_per_window']:.2f} ms/win"
                per_event, rel = f"{c['us_per_event']:.2f} us", c["ms_per_window"] / first["ms_per_window"]
                value = f"{c['value']:,}"
            lines.append(f"  {label:<22} {value:>8}  {cell:>14}  {per_event:>12}  {rel:>7.2f}x")
    m = results["machine"]
    lines.append(f"  (base: {base['synthetic']} synthetic, {base['features']} features, window {base['window']:,}, "
                 "1 model; "
                 f"models and persist: replay workload, 15 numeric + probs, batches of {BATCH_LINES:,} lines)")
    lines.append(f"  (load average {m['load_avg_start'][0]:.2f} at the start, {m['load_avg_end'][0]:.2f} at the end, "
                 f"{results['machine']['cpus']} CPUs, {results['seconds']:.0f} s)")
    return lines
