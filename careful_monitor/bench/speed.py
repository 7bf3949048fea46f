"""`careful-monitor bench`: speed and memory side by side with the baselines, in one run.

Each comparison is timed in interleaved rounds in one process (`interleave`): round r runs every case
in turn, starting from the r-th, so load from the rest of a shared machine falls on all of them; the
figures are medians over every timed call and each ratio is median ours / median baseline (for rates,
ours / baseline rate), printed beside the target from issue 13 with PASS or MISS.

- daemon window: anchor + 2 synthetic sets, 20 numeric features, window 1,000 with +0.5 sd in 5
  columns, closed by `ModelMonitor.process` as the daemon closes it (every comparison, joint/MMD, BH,
  attribution, result), against scipy's `ks_2samp(method='asymp')` over the 20 columns (anchor only)
  and the numpy sorted-reference floor (the vectorised KS statistic and p-value a numpy user would write);
- categorical window: 5 categorical columns through `ModelMonitor.process`, against strings -> codes for
  the 5 columns + one vectorised chi-square against the same 3 references;
- replay end to end (15 numeric + probs, anchor + 2 synthetic sets, SQLite, metrics) against
  `orjson.loads` alone and orjson + column extraction over the same lines;
- text-only replay, the multivariate test, profile size and (with --memory) the RSS soak, each with its
  target.

Every figure printed comes from this run. `careful-monitor bench --growth` (`bench.growth`) measures how
the cost grows with references, features, window size and models.
"""

from __future__ import annotations

import gc
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

from careful_monitor.bench.workload import (
    TEXT_WINDOW,
    Echo,
    bench_app,
    bench_profiles,
    event_lines,
    quiet_logs,
    text_bench_app,
    text_event_lines,
    text_models,
)
from careful_monitor.engine.profile import CategoricalProfile, build_profile

#: the targets of issue 13 (ratios in one run): name -> (comparison, bound)
TARGETS: dict[str, tuple[str, float]] = {
    "daemon_window_vs_ks_asymp": ("<=", 0.15),
    "categorical_window_vs_codes_chi2": ("<=", 3.0),
    "replay_vs_orjson_rate": (">=", 0.19),
    "text_replay_events_per_s": (">=", 40_000.0),
    "mmd_window_ms": ("<=", 1.0),
    "profile_kib_per_feature": ("<=", 64.0),
    "memory_growth_pct": ("<=", 10.0),
}


# --- interleaved rounds ------------------------------------------------------------------------
@dataclass(frozen=True)
class Timings:
    """Seconds of every timed call of each case, round by round, as `interleave` measured them."""

    order: list[list[str]]  # the order the cases ran in, per round
    seconds: dict[str, list[list[float]]]  # case -> round -> seconds of each call

    def calls(self, case: str) -> list[float]:
        return [t for rnd in self.seconds[case] for t in rnd]

    def median(self, case: str) -> float:
        """Median seconds of one call of `case`, over every round."""
        return statistics.median(self.calls(case))

    def ratio(self, ours: str, baseline: str) -> float:
        """median(ours) / median(baseline): below 1 when ours takes less time."""
        return self.median(ours) / self.median(baseline)

    def round_ratios(self, ours: str, baseline: str) -> list[float]:
        """The same ratio within each round (its spread shows how much the machine moved)."""
        return [statistics.median(a) / statistics.median(b)
                for a, b in zip(self.seconds[ours], self.seconds[baseline], strict=True)]

    def summary(self, unit: float = 1000.0) -> dict[str, Any]:
        """Medians (ms by default) and the number of timed calls, for JSON."""
        return {case: {"median": self.median(case) * unit, "calls": len(self.calls(case))} for case in self.seconds}


def interleave(cases: Mapping[str, Callable[[], Any]], rounds: int, repeat: int = 1, *,
               warmup: bool = True) -> Timings:
    """Time `cases` in rotating rounds: round r runs them in order from the r-th (A B C, B C A, C A B, ...),
    each `repeat` times in a row. A case that returns a float reports its own seconds (for work with an
    untimed set-up, e.g. a fresh store); otherwise the call is timed with perf_counter. With `warmup`, each
    case is called once, untimed, before the first round.

    >>> t = interleave({"a": lambda: 0.002, "b": lambda: 0.001}, rounds=3, repeat=2)
    >>> t.order, t.median("a"), t.ratio("a", "b")
    ([['a', 'b'], ['b', 'a'], ['a', 'b']], 0.002, 2.0)
    """
    if rounds < 1 or repeat < 1:
        raise ValueError("rounds and repeat must be >= 1")
    names = list(cases)
    if warmup:
        for name in names:
            cases[name]()
    order: list[list[str]] = []
    seconds: dict[str, list[list[float]]] = {name: [] for name in names}
    perf = time.perf_counter
    for r in range(rounds):
        k = r % len(names)
        this = names[k:] + names[:k]
        order.append(this)
        for name in this:
            fn, got = cases[name], []
            for _ in range(repeat):
                t0 = perf()
                out = fn()
                elapsed = perf() - t0
                got.append(float(out) if isinstance(out, float) else elapsed)
            seconds[name].append(got)
    return Timings(order, seconds)


def _median_ms(fn: Callable[[], Any], repeat: int) -> float:
    """Median ms of `repeat` calls after one warm-up call (one case alone; comparisons use `interleave`)."""
    return interleave({"fn": fn}, rounds=1, repeat=repeat).median("fn") * 1000


def verdict(name: str, measured: float | None) -> dict[str, Any]:
    """The target `name` beside its measured value: {"target", "op", "measured", "met", "off_by"}.

    `off_by` is how far a missed target is, as a factor (1.4 = 1.4x over an upper bound, or 1.4x short of a
    lower one); 1.0 when met.
    """
    op, bound = TARGETS[name]
    if measured is None or measured != measured:  # not measured, or NaN
        return {"target": bound, "op": op, "measured": measured, "met": None, "off_by": None}
    met = measured <= bound if op == "<=" else measured >= bound
    off = 1.0 if met else (measured / bound if op == "<=" else bound / measured if measured > 0 else float("inf"))
    return {"target": bound, "op": op, "measured": measured, "met": met, "off_by": off}


def _mark(v: dict[str, Any], unit: str = "x") -> str:
    """`<= 0.15x PASS` or `<= 0.15x MISS (1.40x off)`."""
    bound = f"{v['target']:,.2f}{unit}" if unit == "x" else f"{v['target']:,.0f}{unit}"
    if v["met"] is None:
        return f"{v['op']} {bound} not measured"
    return f"{v['op']} {bound} " + ("PASS" if v["met"] else f"MISS ({v['off_by']:.2f}x off)")


# --- (a) the daemon window -----------------------------------------------------------------------
def window_workload() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The window benchmarks' workload (also handed to the peers): reference 10,000 x 20 N(0, 1), window
    1,000 x 20 with +0.5 sd in the first 5 columns (seed 42), and the feature names."""
    rng = np.random.default_rng(42)
    ref = rng.normal(size=(10_000, 20))
    win = rng.normal(size=(1_000, 20))
    win[:, :5] += 0.5
    return ref, win, [f"inputs.x{i}" for i in range(20)]


def _daemon_window(ref: np.ndarray, win: np.ndarray, names: list[str], *, synthetic: int = 2,
                   window_size: int | None = None) -> Callable[[], Any]:
    """One call closes one window as the daemon does: anchor + `synthetic` sets (sd 0.7, 1.0, ...), every
    test and signature, the joint tests, BH, attribution and the typed result (`ModelMonitor.process`, which
    also appends the batch to the open window)."""
    from careful_monitor.bench.workload import SYNTHETIC_SDS

    rng = np.random.default_rng(1)
    kinds = {n: "numeric" for n in names}
    n_ref = len(ref)
    anchor = build_profile("ref", "real", {n: ref[:, i].tolist() for i, n in enumerate(names)}, kinds=kinds,
                           rng=np.random.default_rng(0))
    sets = {}
    for k in range(synthetic):
        name = ("synth-narrow", "synth-faithful")[k] if k < 2 else f"synth-{k + 1}"
        sd = SYNTHETIC_SDS[k % len(SYNTHETIC_SDS)]
        sets[name] = build_profile(name, "synthetic", {n: rng.normal(0, sd, n_ref).tolist() for n in names},
                                   kinds=kinds, anchor=anchor, anchored_by="ref", rng=rng)
    return _closer(anchor, sets, kinds, {n: win[:, i].tolist() for i, n in enumerate(names)}, window_size)


def _closer(anchor: Any, synthetic: dict[str, Any], kinds: dict[str, str], columns: dict[str, list],
            window_size: int | None = None) -> Callable[[], Any]:
    """A call that hands one window's events to a `ModelMonitor` and checks it closed exactly one window.

    The monitor's spec is the daemon's (`runtime.pipeline.monitor_spec` of the default config with this model).
    Event times are 10 ms apart, so even a 100,000-event window closes on its size, not on `max_seconds`.
    """
    from careful_monitor.config import load_config
    from careful_monitor.engine.monitor import ModelBatch, ModelMonitor
    from careful_monitor.runtime.pipeline import monitor_spec

    n = len(next(iter(columns.values())))
    size = window_size or n
    mix = {name: 1.0 / (1 + len(synthetic)) for name in (anchor.name, *synthetic)}
    cfg = load_config(None, environ={}, overrides={
        "models": {"bench": {"anchor": anchor.name, "training_mix": mix, "features": kinds}},
        "window": {"size": size, "min_size": min(200, size)}})
    monitor = ModelMonitor("bench", monitor_spec(cfg, "bench"), anchor, synthetic)
    batch = ModelBatch([1_764_000_000.0 + i * 0.01 for i in range(n)], ["1"] * n, columns)

    def close_one() -> None:
        if len(monitor.process(batch, 0.0)) != 1:
            raise RuntimeError("a window benchmark must close exactly one window per call")

    return close_one


def ks_floor(ref_sorted: np.ndarray, win: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The numpy sorted-reference floor: two-sample KS statistic and asymptotic p-value of every column.

    `ref_sorted` (columns pre-sorted once, n x F) and the window (m x F) are stacked as one sorted array by
    shifting column j by j x span (span > the data's range), so one `searchsorted` per side finds, for every
    window value, how many reference values lie below and at it. The supremum of |F_win - F_ref| is reached
    at window values: just after each one (i + 1)/m - F_ref(x), just before it F_ref(x-) - i/m. The p-value is
    Kolmogorov's limit, `kolmogorov(sqrt(mn / (m + n)) D)`, in one call (scipy's asymp uses the finite-n
    `kstwo.sf(D, round(mn / (m + n)))`, a few % apart and ~3 ms for 20 columns, more than the rest together).

    >>> rng = np.random.default_rng(0)
    >>> ref, win = rng.normal(size=(10_000, 3)), rng.normal(0.05, 1, (1_000, 3))
    >>> from scipy import stats
    >>> d, p = ks_floor(np.sort(ref, axis=0), win)
    >>> all(np.isclose(d[j], stats.ks_2samp(win[:, j], ref[:, j], method="asymp").statistic) for j in range(3))
    True
    >>> all(np.isclose(p[j], stats.ks_2samp(win[:, j], ref[:, j], method="asymp").pvalue, rtol=0.1)
    ...     for j in range(3))
    True
    """
    from scipy import special

    n, f = ref_sorted.shape
    m = len(win)
    w = np.sort(win, axis=0)
    lo = min(ref_sorted[0].min(), w[0].min())
    span = max(ref_sorted[-1].max(), w[-1].max()) - lo + 1.0
    shift = np.arange(f) * span - lo
    flat_ref = (ref_sorted + shift).T.ravel()
    flat_win = (w + shift).T.ravel()
    base = np.repeat(np.arange(f) * n, m)
    at = (np.searchsorted(flat_ref, flat_win, side="right") - base).reshape(f, m) / n
    below = (np.searchsorted(flat_ref, flat_win, side="left") - base).reshape(f, m) / n
    i = np.arange(m)
    d = np.maximum(((i + 1) / m - at).max(axis=1), (below - i / m).max(axis=1))
    return d, special.kolmogorov(np.sqrt(m * n / (m + n)) * d)


def bench_window(rounds: int = 15, repeat: int = 5,
                 workload: tuple[np.ndarray, np.ndarray, list[str]] | None = None) -> dict[str, Any]:
    """ms of one window: the daemon's (anchor + 2 synthetic, everything) vs the scipy asymp loop and the numpy
    floor (anchor only), in interleaved rounds; on `window_workload()` unless another is given."""
    from scipy import stats

    ref, win, names = workload if workload is not None else window_workload()
    ref_sorted = np.sort(ref, axis=0)

    def ks_asymp() -> None:
        for i in range(ref.shape[1]):
            stats.ks_2samp(win[:, i], ref[:, i], method="asymp")

    t = interleave({"daemon": _daemon_window(ref, win, names), "scipy_asymp": ks_asymp,
                    "numpy_floor": lambda: ks_floor(ref_sorted, win)}, rounds, repeat)
    ratios = t.round_ratios("daemon", "scipy_asymp")
    return {"rounds": rounds, "repeat": repeat, "careful_monitor_daemon_window_ms": t.median("daemon") * 1000,
            "scipy_ks_2samp_asymp_ms": t.median("scipy_asymp") * 1000,
            "numpy_sorted_reference_floor_ms": t.median("numpy_floor") * 1000,
            "daemon_ratio_to_ks_asymp": t.ratio("daemon", "scipy_asymp"),
            "daemon_ratio_to_ks_asymp_rounds": [min(ratios), max(ratios)],
            "daemon_ratio_to_numpy_floor": t.ratio("daemon", "numpy_floor")}


# --- (b) the categorical window ------------------------------------------------------------------
CATEGORICAL_COLUMNS = 5
CATEGORIES = 30


def categorical_workload(ref_rows: int = 20_000, window: int = 1_000) -> dict[str, Any]:
    """5 categorical columns of 30 categories (Zipf-like, seed 11): the anchor (`ref_rows`), a collapsed set
    without the 10 rarest categories, a faithful set (half as many rows each), and a window of `window`
    events whose first 2 columns flatten toward uniform."""
    rng = np.random.default_rng(11)
    names = [f"inputs.c{j}" for j in range(CATEGORICAL_COLUMNS)]
    cats = np.array([f"cat-{i:02d}" for i in range(CATEGORIES)])
    p = 1.0 / np.arange(1, CATEGORIES + 1)
    p /= p.sum()
    collapsed = p.copy()
    collapsed[-10:] = 0
    collapsed /= collapsed.sum()
    flat = 0.5 * p + 0.5 / CATEGORIES

    def draw(probs: np.ndarray, n: int) -> list[str]:
        return rng.choice(cats, n, p=probs).tolist()

    return {"names": names, "kinds": {n: "categorical" for n in names},
            "anchor": {n: draw(p, ref_rows) for n in names},
            "synthetic": {"synth-collapsed": {n: draw(collapsed, ref_rows // 2) for n in names},
                          "synth-faithful": {n: draw(p, ref_rows // 2) for n in names}},
            "window": {n: draw(flat if j < 2 else p, window) for j, n in enumerate(names)}}


def codes_chi2(window: Mapping[str, Sequence[str]], index: Sequence[dict[str, int]],
               expected: np.ndarray) -> np.ndarray:
    """The categorical baseline: each column's strings -> codes (dict lookup; unknown -> the last code), one
    `bincount` over the columns' codes shifted by column, and chi-square of the R x C x K counts against every
    reference's proportions `expected` (R x C x K) with one `chdtrc` call; returns the R x C p-values."""
    from scipy import special

    _, c, k = expected.shape
    codes = np.empty(c * len(next(iter(window.values()))), dtype=np.intp)
    m = len(codes) // c
    for j, values in enumerate(window.values()):
        get, other = index[j].get, k - 1
        codes[j * m:(j + 1) * m] = [get(v, other) for v in values]
        codes[j * m:(j + 1) * m] += j * k
    obs = np.bincount(codes, minlength=c * k).reshape(c, k)
    exp = expected * m
    keep = exp > 0
    stat = np.where(keep, (obs - exp) ** 2 / np.where(keep, exp, 1.0), 0.0).sum(axis=2)
    dof = keep.sum(axis=2) - 1
    return special.chdtrc(np.maximum(dof, 1), stat)


def bench_categorical(rounds: int = 15, repeat: int = 5, *, ref_rows: int = 20_000,
                      window: int = 1_000) -> dict[str, Any]:
    """ms of one categorical window through `ModelMonitor.process` vs strings -> codes + vectorised chi-square
    against the same 3 references, in interleaved rounds."""
    from careful_monitor.engine.column import reference_counts

    w = categorical_workload(ref_rows, window)
    rng = np.random.default_rng(12)
    kinds = w["kinds"]
    anchor = build_profile("cat-real", "real", w["anchor"], kinds=kinds, rng=rng)
    synthetic = {name: build_profile(name, "synthetic", cols, kinds=kinds, anchor=anchor, anchored_by="cat-real",
                                     rng=rng) for name, cols in w["synthetic"].items()}
    refs = [anchor, *synthetic.values()]
    # the baseline's precomputed part, like the daemon's profiles: category index and reference proportions
    index = []
    for n in w["names"]:
        feat = anchor.features[n]
        assert isinstance(feat, CategoricalProfile)
        index.append({c: i for i, c in enumerate(feat.categories)})
    k = max(len(ix) for ix in index) + 1
    expected = np.zeros((len(refs), len(w["names"]), k))
    for i, prof in enumerate(refs):
        for j, n in enumerate(w["names"]):
            counts = np.asarray(reference_counts(prof.features[n]), dtype=float)
            expected[i, j, :len(index[j])] = counts[:-1] / counts.sum()
            expected[i, j, k - 1] = counts[-1] / counts.sum()
    window_cols = w["window"]
    t = interleave({"daemon": _closer(anchor, synthetic, kinds, window_cols),
                    "codes_chi2": lambda: codes_chi2(window_cols, index, expected)}, rounds, repeat)
    ratios = t.round_ratios("daemon", "codes_chi2")
    return {"rounds": rounds, "repeat": repeat, "columns": len(w["names"]), "categories": CATEGORIES,
            "window_rows": window, "careful_monitor_categorical_window_ms": t.median("daemon") * 1000,
            "codes_chi2_ms": t.median("codes_chi2") * 1000, "ratio": t.ratio("daemon", "codes_chi2"),
            "ratio_rounds": [min(ratios), max(ratios)]}


# --- (c) replay end to end -----------------------------------------------------------------------
def orjson_columns(lines: Sequence[bytes], features: Sequence[str]) -> dict[str, list]:
    """The extraction baseline: orjson-decode each line and pull model, ts, id and each feature (inputs.* and
    outputs.*) into per-column lists; no validation."""
    import orjson

    loads = orjson.loads
    inputs = [f.split(".", 1)[1] for f in features if f.startswith("inputs.")]
    outputs = [f.split(".", 1)[1] for f in features if f.startswith("outputs.")]
    get_in, get_out = itemgetter(*inputs), itemgetter(*outputs)
    head = itemgetter("model", "ts", "id")
    heads, ins, outs = [], [], []
    for line in lines:
        d = loads(line)
        heads.append(head(d))
        ins.append(get_in(d["inputs"]))
        outs.append(get_out(d["outputs"]))
    cols: dict[str, list] = dict(zip(("model", "ts", "id"), map(list, zip(*heads, strict=True)), strict=True))
    if len(inputs) > 1:
        cols.update(zip((f"inputs.{k}" for k in inputs), map(list, zip(*ins, strict=True)), strict=True))
    else:
        cols[f"inputs.{inputs[0]}"] = ins
    if len(outputs) > 1:
        cols.update(zip((f"outputs.{k}" for k in outputs), map(list, zip(*outs, strict=True)), strict=True))
    else:
        cols[f"outputs.{outputs[0]}"] = outs
    return cols


def bench_replay(events: int, rounds: int = 3, *, synthetic: int = 2, ref_rows: int = 20_000) -> dict[str, Any]:
    """Events/s of replay end to end (decode, dedup, windows, every test vs anchor + `synthetic` sets, metrics,
    SQLite) from a file, vs `orjson.loads` alone and orjson + column extraction over the same lines, in
    interleaved rounds (each replay into a fresh store, its set-up untimed); the anchor has `ref_rows` rows."""
    import orjson

    from careful_monitor.bench.workload import bench_features
    from careful_monitor.runtime.replay import replay

    rng = np.random.default_rng(5)
    profiles = bench_profiles(15, synthetic, rows=ref_rows)
    features = list(bench_features(15))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        lines = event_lines(rng, events, 0)
        path.write_bytes(b"\n".join(lines) + b"\n")
        windows: list[int] = []
        runs = 0

        def replay_once() -> float:
            nonlocal runs
            runs += 1
            work = Path(tmp) / f"store-{runs}"
            work.mkdir()
            with bench_app(work, profiles=profiles) as app:
                t0 = time.perf_counter()
                stats = replay(app.pipeline, [str(path)])
                elapsed = time.perf_counter() - t0
            shutil.rmtree(work)
            windows.append(stats.windows)
            return elapsed

        def orjson_only() -> None:
            loads = orjson.loads
            for line in lines:
                loads(line)

        t = interleave({"replay": replay_once, "orjson_only": orjson_only,
                        "orjson_columns": lambda: orjson_columns(lines, features)}, rounds, warmup=False)
    rate = {case: events / t.median(case) for case in ("replay", "orjson_only", "orjson_columns")}
    per_round = [1 / r for r in t.round_ratios("replay", "orjson_only")]
    return {"events": events, "rounds": rounds, "synthetic_sets": synthetic, "windows": windows[-1],
            "replay_events_per_s": rate["replay"], "orjson_decode_only_per_s": rate["orjson_only"],
            "orjson_columns_per_s": rate["orjson_columns"],
            "replay_us_per_event": 1e6 / rate["replay"],
            "ratio_to_orjson": rate["replay"] / rate["orjson_only"],
            "ratio_to_orjson_rounds": [min(per_round), max(per_round)],
            "ratio_to_orjson_columns": rate["replay"] / rate["orjson_columns"]}


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
    MMD against the anchor (the scores are computed afresh per call, as for each new window; the target is
    on this), and the parts: the scores alone (which the daemon computes once per window and shares with the
    correlation test and attribution) and the MMD given them (what the test adds to a window)."""
    from careful_monitor.engine.comparisons.copula import WindowRows, joint_rows
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

    shared = WindowRows(cols)
    test.compare_window(anchor, shared)  # the scores, once, as the window's other joint consumers leave them
    return {"mmd_window_ms": _median_ms(one, repeat),
            "copula_scores_ms": _median_ms(lambda: joint_rows(anchor, WindowRows(cols)), repeat),
            "mmd_given_scores_ms": _median_ms(lambda: test.compare_window(anchor, shared), repeat)}


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


def _row(label: str, value: str, ratio: str = "", mark: str = "") -> str:
    """One table line: what, its median, ours / this baseline, the target and its verdict."""
    return f"  {label:<50} {value:>14}  {ratio:>9}  {mark}".rstrip()


def _head(title: str) -> list[str]:
    return [title, _row("", "median", "ours/this", "target (ratio or value)")]


def run_bench(*, quick: bool = False, memory_events: int = 0, echo: Echo = print) -> dict[str, Any]:
    """Every speed row, each comparison in interleaved rounds, with the targets' verdicts (`results["targets"]`)."""
    with quiet_logs():
        return _run_bench(quick=quick, memory_events=memory_events, echo=echo)


def _run_bench(*, quick: bool, memory_events: int, echo: Echo) -> dict[str, Any]:
    say = echo or (lambda s: None)
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load_avg_start": list(os.getloadavg())}}
    targets: dict[str, dict[str, Any]] = {}
    say(f"careful-monitor bench{' --quick' if quick else ''}: interleaved rounds in one process, medians; "
        f"load average {results['machine']['load_avg_start'][0]:.2f} on {os.cpu_count()} CPUs")

    rounds, repeat = (5, 2) if quick else (15, 5)
    for line in _head(f"(a) daemon window: anchor + 2 synthetic sets, reference 10,000 x 20 numeric, window "
                      f"1,000 x 20 (+0.5 sd in 5 columns); {rounds} rounds x {repeat} calls"):
        say(line)
    w = bench_window(rounds, repeat)
    results["window"] = w
    targets["daemon_window_vs_ks_asymp"] = v = verdict("daemon_window_vs_ks_asymp", w["daemon_ratio_to_ks_asymp"])
    lo, hi = w["daemon_ratio_to_ks_asymp_rounds"]
    say(_row("careful-monitor daemon window (ModelMonitor.process)", f"{w['careful_monitor_daemon_window_ms']:.2f} ms"))
    say(_row("scipy ks_2samp(method='asymp') x 20 columns, anchor", f"{w['scipy_ks_2samp_asymp_ms']:.2f} ms",
             f"{w['daemon_ratio_to_ks_asymp']:.2f}x", f"{_mark(v)}; rounds {lo:.2f}-{hi:.2f}x"))
    say(_row("numpy sorted-reference floor, 20 columns, anchor", f"{w['numpy_sorted_reference_floor_ms']:.2f} ms",
             f"{w['daemon_ratio_to_numpy_floor']:.1f}x", "(no target)"))

    for line in _head(f"(b) categorical window: 5 categorical columns of {CATEGORIES} categories, anchor + 2 "
                      f"synthetic sets, window 1,000; {rounds} rounds x {repeat} calls"):
        say(line)
    c = bench_categorical(rounds, repeat)
    results["categorical"] = c
    targets["categorical_window_vs_codes_chi2"] = v = verdict("categorical_window_vs_codes_chi2", c["ratio"])
    lo, hi = c["ratio_rounds"]
    say(_row("careful-monitor categorical window (ModelMonitor)",
             f"{c['careful_monitor_categorical_window_ms']:.2f} ms"))
    say(_row("strings->codes x 5 + vectorised chi-square, 3 refs", f"{c['codes_chi2_ms']:.2f} ms",
             f"{c['ratio']:.2f}x", f"{_mark(v)}; rounds {lo:.2f}-{hi:.2f}x"))

    n, r_rounds = (20_000, 2) if quick else (300_000, 3)
    say(f"(c) replay end to end: {n:,} events (15 numeric + 3-class probs), windows of 1,000, anchor + 2 "
        f"synthetic sets, SQLite, metrics; {r_rounds} rounds, a fresh store per replay")
    say(_row("", "median rate", "ours/this", "target (ratio or value)"))
    r = bench_replay(n, r_rounds)
    results["replay"] = r
    targets["replay_vs_orjson_rate"] = v = verdict("replay_vs_orjson_rate", r["ratio_to_orjson"])
    lo, hi = r["ratio_to_orjson_rounds"]
    say(_row(f"careful-monitor replay ({r['replay_us_per_event']:.1f} us/event)", f"{r['replay_events_per_s']:,.0f}/s"))
    say(_row("orjson.loads only, same lines", f"{r['orjson_decode_only_per_s']:,.0f}/s",
             f"{r['ratio_to_orjson']:.3f}x", f"{_mark(v)}; rounds {lo:.3f}-{hi:.3f}x"))
    say(_row("orjson + column extraction (per-column lists)", f"{r['orjson_columns_per_s']:,.0f}/s",
             f"{r['ratio_to_orjson_columns']:.3f}x", "(no target)"))

    n_text = 20_000 if quick else 100_000
    say("other rows (one case each, median of its calls; target on the value)")
    t = bench_text_replay(n_text)
    results["text_replay"] = t
    targets["text_replay_events_per_s"] = v = verdict("text_replay_events_per_s", t["text_replay_events_per_s"])
    say(_row(f"text-only replay, {n_text:,} x ~{t['words_per_event']:.0f} words, windows {TEXT_WINDOW}",
             f"{t['text_replay_events_per_s']:,.0f}/s", "", _mark(v, "/s")))

    mm = bench_mmd(10 if quick else 30)
    results["window"].update(mm)
    targets["mmd_window_ms"] = v = verdict("mmd_window_ms", mm["mmd_window_ms"])
    say(_row("multivariate test (copula + RFF MMD), 1,000 x 20", f"{mm['mmd_window_ms']:.2f} ms", "",
             _mark(v, " ms")))
    say(_row("  of which copula scores (shared per window)", f"{mm['copula_scores_ms']:.2f} ms", "", ""))
    say(_row("  of which MMD given the scores", f"{mm['mmd_given_scores_ms']:.2f} ms", "", "(no target)"))

    rows = 100_000 if quick else 1_000_000
    p = bench_profile_size(rows)
    results["profile"] = p
    targets["profile_kib_per_feature"] = v = verdict("profile_kib_per_feature", p["kib_per_feature"])
    say(_row(f"profile, {rows:,}-row anchor, {p['features']} features ({p['build_seconds']:.1f} s)",
             f"{p['kib_per_feature']:.1f} KiB/f", "", _mark(v, " KiB")))
    if memory_events:
        m = bench_memory(memory_events, echo)
        results["memory"] = m
        targets["memory_growth_pct"] = v = verdict("memory_growth_pct", m["growth_pct"])
        say(_row(f"RSS growth 100k -> {memory_events:,} events ({m['rss_after_100k_mib']:.0f} -> "
                 f"{m['rss_peak_mib']:.0f} MiB peak)", f"{m['growth_pct']:.1f} %", "", _mark(v, " %")))
    results["targets"] = targets
    results["machine"]["load_avg_end"] = list(os.getloadavg())
    met = [k for k, x in targets.items() if x["met"]]
    missed = [f"{k} ({x['off_by']:.2f}x off)" for k, x in targets.items() if x["met"] is False]
    say(f"targets: {len(met)} of {len(targets)} met" + (f"; missed: {', '.join(missed)}" if missed else "")
        + f". Load average at the end {results['machine']['load_avg_end'][0]:.2f}.")
    return results
