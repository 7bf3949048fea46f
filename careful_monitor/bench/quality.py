"""`careful-monitor bench --quality`: detection delay and false alarms, side by side with river.

Every stream is seeded; careful-monitor's detectors and the peers see the very same values.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from careful_monitor.engine.detectors.cusum import AnchorCUSUM
from careful_monitor.engine.detectors.river_adapter import RiverDetector

if TYPE_CHECKING:
    from careful_monitor.scenarios.gaussian import Regime

Echo = Callable[[str], None] | None
CHANGE_AT = 5000


def _detectors() -> dict[str, Callable[[], Any]]:
    return {
        "careful-monitor CUSUM (k=0.25, h=20)": lambda: AnchorCUSUM(mean=0.0, sd=1.0, threshold=20.0, drift=0.25),
        "river ADWIN (defaults)": lambda: RiverDetector("adwin"),
        "river PageHinkley (defaults)": lambda: RiverDetector("page_hinkley"),
        "river KSWIN (defaults)": lambda: RiverDetector("kswin"),
    }


def detector_delays(shift: float, seeds: int = 20, change_at: int = CHANGE_AT, after: int = 3000,
                    names: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Median delay after a mean shift at `change_at` (a detection before it is a false alarm)."""
    out: dict[str, dict[str, float]] = {}
    for name, make in _detectors().items():
        if names and name not in names:
            continue
        delays, early, missed = [], 0, 0
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            x = np.r_[rng.normal(0, 1, change_at), rng.normal(shift, 1, after)]
            hits = make().update_many(x)
            before = [h for h in hits if h < change_at]
            early += len(before)
            late = [h for h in hits if h >= change_at]
            if late:
                delays.append(late[0] - change_at)
            else:
                missed += 1
        out[name] = {"median_delay": statistics.median(delays) if delays else float("nan"),
                     "missed": missed, "false_alarms_before_change": early, "seeds": seeds}
    return out


def false_alarms(events: int = 200_000, seeds: int = 10,
                 names: list[str] | None = None) -> dict[str, tuple[float, int]]:
    """Detections per 100,000 stationary N(0,1) events, and how many events that rate rests on.

    KSWIN runs one scipy KS test per event (~0.2 ms), so it gets 100,000 events in all.
    """
    out = {}
    for name, make in _detectors().items():
        if names and name not in names:
            continue
        n_seeds, n_events = (1, min(events, 100_000)) if "KSWIN" in name else (seeds, events)
        total = 0
        for seed in range(n_seeds):
            x = np.random.default_rng(1000 + seed).normal(0, 1, n_events)
            total += len(make().update_many(x))
        out[name] = (total / n_seeds * (100_000 / n_events), n_seeds * n_events)
    return out


def run_quality(*, quick: bool = False, echo: Echo = print) -> dict[str, Any]:
    say = echo or (lambda s: None)
    seeds = 5 if quick else 20
    fa_events = 20_000 if quick else 200_000
    names = None if not quick else ["careful-monitor CUSUM (k=0.25, h=20)", "river ADWIN (defaults)",
                                    "river PageHinkley (defaults)"]
    results: dict[str, Any] = {"detectors": {}}
    say(f"per-event detectors: N(0,1) -> N(shift,1) at t={CHANGE_AT}, {seeds} seeds; "
        "false alarms per 100,000 stationary events")
    fa = false_alarms(fa_events, 3 if quick else 10, names)
    rows = []
    for shift in (0.25, 0.5, 1.0):
        d = detector_delays(shift, seeds, names=names)
        results["detectors"][str(shift)] = d
        for name, r in d.items():
            rows.append((f"mean shift {shift} sd", name, r["median_delay"], r["missed"], fa[name][0], fa[name][1]))
    results["false_alarms_per_100k"] = fa
    say(f"  {'scenario':<18} {'detector':<38} {'median delay':>12} {'missed':>7} "
        f"{'false alarms/100k':>18} {'(over events)':>14}")
    for scen, name, delay, missed, f, n in rows:
        say(f"  {scen:<18} {name:<38} {delay:>12.0f} {missed:>7} {f:>18.2f} {n:>14,}")
    results["windows"] = run_windows(quick=quick, echo=echo)
    from careful_monitor.bench.coverage import run_coverage

    results["coverage"] = run_coverage(quick=quick, echo=echo)
    return results


# --- window-level experiments -----------------------------------------------------------------------

NUMERIC = 20
CATS = 3
N_CAT_LEVELS = 30


def _features() -> dict[str, str]:
    f = {f"inputs.x{i}": "numeric" for i in range(NUMERIC)}
    f.update({f"inputs.c{j}": "categorical" for j in range(CATS)})
    f["inputs.t"] = "text"
    return f


class World:
    """Anchor + two synthetic sets over 20 numeric, 3 categorical and 1 text feature, profiled once.

    - anchor: x ~ N(0, 1) iid, categories Zipf(1.1) over 30 levels, text from a bigram model;
    - `collapsed`: the same chain many generations later: sd 0.7, only the 10 most common
      categories, text from generation 5 of recursive bigram refitting (distinct-2 down ~60 %);
    - `biased`: a generator with a systematic error: x0..x9 shifted +0.6 sd, uniform categories.
    """

    def __init__(self, seed: int = 0, anchor_rows: int = 20_000, synth_rows: int = 8_000) -> None:
        from careful_monitor.engine.profile import build_profile
        from careful_monitor.scenarios.text import recursive_text

        rng = np.random.default_rng(seed)
        self.features = _features()
        self.levels = [f"k{i}" for i in range(N_CAT_LEVELS)]
        p = 1.0 / np.arange(1, N_CAT_LEVELS + 1) ** 1.1
        self.cat_p = p / p.sum()
        self.text_models = recursive_text(rng, generations=5, sentences_per_generation=1000)
        self.anchor = build_profile("anchor", "real", self.columns(rng, anchor_rows), kinds=self.features, rng=rng)
        self.synthetic = {
            "collapsed": build_profile("collapsed", "synthetic",
                                       self.columns(rng, synth_rows, sd=0.7, top=10, text_gen=5),
                                       kinds=self.features, anchor=self.anchor, anchored_by="anchor", rng=rng),
            "biased": build_profile("biased", "synthetic",
                                    self.columns(rng, synth_rows, shift=0.6, shift_cols=10, uniform=True),
                                    kinds=self.features, anchor=self.anchor, anchored_by="anchor", rng=rng),
        }

    def columns(self, rng: np.random.Generator, n: int, *, sd: float = 1.0, shift: float = 0.0, shift_cols: int = 0,
                top: int | None = None, uniform: bool = False, text_gen: int = 0, corr: float = 0.0) -> dict[str, list]:
        from careful_monitor.scenarios.text import sample_texts

        x = rng.normal(0.0, 1.0, (n, NUMERIC))
        if corr:
            x[:, 1] = corr * x[:, 0] + np.sqrt(1 - corr ** 2) * x[:, 1]  # marginals stay N(0, 1)
        x *= sd
        if shift_cols:
            x[:, :shift_cols] += shift
        cols: dict[str, list] = {f"inputs.x{i}": x[:, i].tolist() for i in range(NUMERIC)}
        p = np.full(N_CAT_LEVELS, 1.0 / N_CAT_LEVELS) if uniform else self.cat_p.copy()
        if top is not None:
            p[top:] = 0
            p /= p.sum()
        for j in range(CATS):
            cols[f"inputs.c{j}"] = np.array(self.levels)[rng.choice(N_CAT_LEVELS, n, p=p)].tolist()
        cols["inputs.t"] = sample_texts(rng, self.text_models[text_gen], n)
        return cols

    def monitor(self, **spec):
        from careful_monitor.config import MinEffect
        from careful_monitor.engine.monitor import ModelMonitor, MonitorSpec

        return ModelMonitor("q", MonitorSpec(features=self.features, min_effect=MinEffect().model_dump(), **spec),
                            self.anchor, self.synthetic)


def window_batch(cols: dict[str, list], start: int):
    """Columns of n events as the engine's batch: timestamps start, start + 1, ... (floats), model version "1"."""
    from careful_monitor.engine.monitor import ModelBatch

    n = len(next(iter(cols.values())))
    return ModelBatch([float(start + i) for i in range(n)], ["1"] * n, cols)


def _run(world: World, mon, rng, windows: int, size: int = 1000, start_window: int = 0, **law):
    outs = []
    for w in range(windows):
        outs += mon.process(window_batch(world.columns(rng, size, **law), (start_window + w) * size), now=0.0)
    return outs


def stationary(world: World, windows: int, seed: int = 1) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    mon = world.monitor()
    flagged = alerts = 0
    for chunk in range(0, windows, 50):
        for o in _run(world, mon, rng, min(50, windows - chunk), start_window=chunk):
            flagged += o.result.flagged
            alerts += len(o.alerts)
    # BH controls the chance of any false flag in a window at q under the global null
    from scipy import stats

    upper = stats.binom.ppf(0.99, windows, 0.01) / windows
    return {"windows": windows, "flagged_windows": flagged, "flag_rate": flagged / windows,
            "flag_rate_99pct_bound": upper, "alerts": alerts}


def mean_shift(world: World, shift: float = 0.25, seed: int = 2, windows: int = 5) -> int | None:
    """1-based window at which inputs.x0 is first flagged after a `shift` sd mean shift of x0 alone."""
    rng = np.random.default_rng(seed)
    mon = world.monitor()
    for w in range(windows):
        cols = world.columns(rng, 1000)
        cols["inputs.x0"] = (np.array(cols["inputs.x0"]) + shift).tolist()
        for o in mon.process(window_batch(cols, w * 1000), now=0.0):
            if "inputs.x0" in o.result.flagged_features:
                return w + 1
    return None


def gaussian_chain(world: World, regime: Regime, seed: int = 3, n_per_generation: int = 1000, stride: int = 20,
                   windows: int = 40) -> dict[str, Any]:
    """Live windows from successive generations of recursive Gaussian fitting (the chain's variance path).

    Window w draws every numeric feature from N(0, sigma_{stride*w}^2): the chain's spread, with its
    wandering mean left out (a mean drift is a different test). Returns the first window whose
    generation has variance <= 70 % of the anchor's, and the alerts.
    """
    from careful_monitor.scenarios.gaussian import recursive_gaussian

    rng = np.random.default_rng(seed)
    gens = recursive_gaussian(rng, generations=stride * windows, n_per_generation=n_per_generation, regime=regime)
    mon = world.monitor()
    first_70 = None
    alerts, spread_flag = [], None
    for w in range(windows):
        g = gens[stride * w]
        if first_70 is None and g.variance_ratio <= 0.7:
            first_70 = w
        for o in mon.process(window_batch(world.columns(rng, 1000, sd=g.sigma), w * 1000), now=0.0):
            alerts += [(a.window, a.dataset, str(a.state)) for a in o.alerts]
            if spread_flag is None and any(e.signal == "spread_ratio" for e in o.result.evidence):
                spread_flag = o.result.window
    return {"regime": regime, "first_window_variance_le_70pct": first_70, "alerts": alerts,
            "first_spread_flag": spread_flag, "final_variance_ratio": gens[stride * (windows - 1)].variance_ratio}


def _mixed(world: World, rng: np.random.Generator, share: float, n: int = 1000) -> dict[str, list]:
    """Each event from the collapsed law with probability `share`, else from the anchor's."""
    a = world.columns(rng, n)
    c = world.columns(rng, n, sd=0.7, top=10, text_gen=5)
    take = rng.random(n) < share
    return {f: [cv if t else av for av, cv, t in zip(a[f], c[f], take, strict=True)] for f in a}


def attribution(world: World, seeds: int = 20, windows: int = 6) -> dict[str, Any]:
    """Live data half-way to the collapsed set: retire it, never the biased set (and the mirror case)."""
    right = wrong = 0
    for seed in range(seeds):
        rng = np.random.default_rng(100 + seed)
        mon = world.monitor()
        outs = []
        for w in range(windows):
            outs += mon.process(window_batch(_mixed(world, rng, 0.5), w * 1000), now=0.0)
        blamed = {al.dataset for o in outs for al in o.alerts}
        right += blamed == {"collapsed"}
        wrong += "biased" in blamed
    return {"seeds": seeds, "right_dataset_only": right, "other_set_blamed": wrong}


def share_accuracy(world: World, shares=(0.1, 0.3, 0.5, 0.7, 0.9), seeds: int = 5) -> dict[float, float]:
    """Largest |estimated - true| share of the collapsed set over seeds, per true share (windows of 1,000)."""
    out = {}
    for share in shares:
        worst = 0.0
        for seed in range(seeds):
            rng = np.random.default_rng(200 + seed)
            mon = world.monitor(window_size=1000)
            o = mon.process(window_batch(_mixed(world, rng, share), 0), now=0.0)[0]
            est = {x.dataset: x.share for x in o.result.attribution}["collapsed"]
            worst = max(worst, abs((est or 0.0) - share))
        out[share] = worst
    return out


def world_shift(world: World, seeds: int = 20, windows: int = 6) -> dict[str, Any]:
    """x10..x19 shift by +1 sd (no synthetic set moved there): anchor_stale, nobody else blamed."""
    stale_in_time = blamed = 0
    for seed in range(seeds):
        rng = np.random.default_rng(300 + seed)
        mon = world.monitor()
        outs = []
        for w in range(windows):
            cols = world.columns(rng, 1000)
            for i in range(10, 20):
                cols[f"inputs.x{i}"] = (np.array(cols[f"inputs.x{i}"]) + 1.0).tolist()
            outs += mon.process(window_batch(cols, w * 1000), now=0.0)
        alerts = [(a.window, a.dataset) for o in outs for a in o.alerts]
        stale_in_time += any(d == "anchor" and w < 5 for w, d in alerts)
        blamed += any(d != "anchor" for _, d in alerts)
    return {"seeds": seeds, "anchor_stale_within_5": stale_in_time, "synthetic_blamed": blamed}


def correlation(world: World, seed: int = 4, windows: int = 5) -> int | None:
    """1-based window at which the joint test flags a correlation 0 -> 0.6 between x0 and x1 (marginals unchanged)."""
    rng = np.random.default_rng(seed)
    mon = world.monitor()
    for w in range(windows):
        for o in mon.process(window_batch(world.columns(rng, 1000, corr=0.6), w * 1000), now=0.0):
            if "joint" in o.result.flagged_features:
                return w + 1
    return None


def effect_floor(world: World, seed: int = 5, windows: int = 2, size: int = 50_000) -> int:
    """Flagged windows when every numeric feature shifts by 0.02 sd, windows of 50,000 (should be 0)."""
    rng = np.random.default_rng(seed)
    mon = world.monitor(window_size=size, min_size=min(200, size))
    flagged = 0
    for w in range(windows):
        cols = world.columns(rng, size, shift=0.02, shift_cols=NUMERIC)
        for o in mon.process(window_batch(cols, w * size), now=0.0):
            flagged += o.result.flagged
    return flagged


def run_windows(*, quick: bool = False, echo: Echo = print) -> dict[str, Any]:
    say = echo or (lambda s: None)
    world = World()
    res: dict[str, Any] = {}
    n_stat = 200 if quick else 2000
    seeds = 5 if quick else 20
    res["stationary"] = st = stationary(world, n_stat)
    res["mean_shift_0.25"] = ms = mean_shift(world)
    res["gaussian_replace"] = gr = gaussian_chain(world, "replace")
    res["gaussian_accumulate"] = ga = gaussian_chain(world, "accumulate")
    res["attribution"] = at = attribution(world, seeds)
    res["share_error"] = sh = share_accuracy(world, seeds=2 if quick else 5)
    res["world_shift"] = ws = world_shift(world, seeds)
    res["correlation"] = co = correlation(world)
    res["effect_floor"] = ef = effect_floor(world, windows=1 if quick else 2)
    say("window-level experiments (20 numeric + 3 categorical + 1 text feature; "
        "anchor + 2 synthetic sets; windows of 1,000)")
    say(f"  {'scenario':<46} {'careful-monitor':<44} target")
    say(f"  {'stationary, ' + format(n_stat, ',') + ' windows':<46} {st['alerts']} alerts, "
        f"flag rate {st['flag_rate']:.4f}{'':<12} 0 alerts, rate <= {st['flag_rate_99pct_bound']:.4f}")
    say(f"  {'mean shift 0.25 sd in one feature':<46} {'flagged in window ' + str(ms):<44} <= 2")
    retire = [a for a in gr["alerts"] if a[2] == "retire_recommended"]
    replace_cell = ("variance <= 70 % from window " + str(gr["first_window_variance_le_70pct"])
                    + ", alert " + str(retire[:1]))
    say(f"  {'recursive Gaussian, replace':<46} {replace_cell:<44} <= that + retire_after + 1")
    accumulate_cell = str(len([a for a in ga["alerts"] if a[2] == "retire_recommended"])) + " retirement alerts"
    say(f"  {'recursive Gaussian, accumulate':<46} {accumulate_cell:<44} 0")
    attribution_cell = str(at["right_dataset_only"]) + " right only, other set blamed " + str(at["other_set_blamed"])
    say(f"  {'attribution (50 % collapsed), ' + str(seeds) + ' seeds':<46} {attribution_cell:<44} >= {seeds - 1}, 0")
    say(f"  {'share error, true 0.1..0.9':<46} {'max ' + format(max(sh.values()), '.3f'):<44} <= 0.05")
    world_cell = str(ws["anchor_stale_within_5"]) + " anchor_stale within 5, blamed " + str(ws["synthetic_blamed"])
    say(f"  {'world shift, ' + str(seeds) + ' seeds':<46} {world_cell:<44} {seeds}, 0")
    say(f"  {'correlation 0 -> 0.6, marginals unchanged':<46} {'joint flagged in window ' + str(co):<44} <= 3")
    say(f"  {'0.02 sd shift, windows of 50,000':<46} {str(ef) + ' windows flagged':<44} 0")
    return res


def mixture_chain(seed: int = 6, windows: int = 30, stride: int = 2) -> dict[str, Any]:
    """Recursive Gaussian-mixture fitting (EM): live windows from successive generations of one feature.

    The anchor is generation 0; the synthetic set is a late generation (components narrowed, tails gone).
    Returns per-window tail-mass and spread signatures, and the alerts.
    """
    from careful_monitor.config import MinEffect
    from careful_monitor.engine.monitor import ModelBatch, ModelMonitor, MonitorSpec
    from careful_monitor.engine.profile import build_profile
    from careful_monitor.scenarios.mixture import recursive_mixture, sample_mixture

    rng = np.random.default_rng(seed)
    gens = recursive_mixture(rng, generations=stride * windows + 40, n_per_generation=200)
    kinds = {"inputs.x": "numeric"}
    anchor = build_profile("anchor", "real", {"inputs.x": sample_mixture(rng, gens[0], 20_000).tolist()},
                           kinds=kinds, rng=rng)
    late = build_profile("late-generation", "synthetic", {"inputs.x": sample_mixture(rng, gens[-1], 8_000).tolist()},
                         kinds=kinds, anchor=anchor, anchored_by="anchor", rng=rng)
    mon = ModelMonitor("mix", MonitorSpec(features=kinds, min_effect=MinEffect().model_dump()), anchor,
                       {late.name: late})
    series: dict[str, list[float]] = {"tail_mass_ratio": [], "spread_ratio": [], "generation_tail_mass": []}
    alerts = []
    for w in range(windows):
        g = gens[stride * w]
        x = sample_mixture(rng, g, 1000).tolist()
        batch = ModelBatch([float(w * 1000 + i) for i in range(1000)], ["1"] * 1000, {"inputs.x": x})
        for o in mon.process(batch, now=0.0):
            sig = {t.test: t.result.statistic for t in o.result.tests if t.reference == "anchor"}
            series["tail_mass_ratio"].append(sig.get("tail_mass_ratio", float("nan")))
            series["spread_ratio"].append(sig.get("spread_ratio", float("nan")))
            series["generation_tail_mass"].append(g.tail_mass)
            alerts += [(a.window, a.dataset, str(a.state)) for a in o.alerts]
    return {"series": series, "alerts": alerts, "stride": stride}


def signal_series(world: World, kind: str, seed: int = 3, windows: int = 30) -> dict[str, Any]:
    """Per-window signals for the plots: the Gaussian chains and the world shift."""
    from careful_monitor.scenarios.gaussian import recursive_gaussian

    rng = np.random.default_rng(seed)
    mon = world.monitor()
    gens = recursive_gaussian(rng, generations=20 * windows, n_per_generation=1000,
                              regime="accumulate" if kind == "accumulate" else "replace")
    out: dict[str, list] = {"spread_ratio": [], "share_collapsed": [], "affinity_collapsed": [], "state_collapsed": [],
                            "state_anchor": [], "flagged": [], "variance_ratio": []}
    for w in range(windows):
        if kind == "world_shift":
            cols = world.columns(rng, 1000)
            if w >= 5:
                for i in range(10, 20):
                    cols[f"inputs.x{i}"] = (np.array(cols[f"inputs.x{i}"]) + 1.0).tolist()
            out["variance_ratio"].append(1.0)
        else:
            g = gens[20 * w]
            cols = world.columns(rng, 1000, sd=g.sigma)
            out["variance_ratio"].append(g.variance_ratio)
        for o in mon.process(window_batch(cols, w * 1000), now=0.0):
            r = o.result
            spreads = [t.result.statistic for t in r.tests if t.test == "spread_ratio"]
            att = {a.dataset: a for a in r.attribution}["collapsed"]
            out["spread_ratio"].append(float(np.mean(spreads)))
            out["share_collapsed"].append(att.share if att.share is not None else float("nan"))
            out["affinity_collapsed"].append(att.affinity)
            out["state_collapsed"].append(r.states["collapsed"])
            out["state_anchor"].append(r.states["anchor"])
            out["flagged"].append(len(r.flagged_features))
    return out
