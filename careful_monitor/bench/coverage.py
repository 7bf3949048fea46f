"""`bench --quality` rows for the detection-coverage capabilities: text, joint dependence, blended sets.

Every row runs the daemon's engine (`ModelMonitor.process`: every comparison, BH, attribution, policy) on a
seeded stream and reports what an operator would see: the window of the first flag and of the alert, who
was blamed. The worlds are the ones the unit tests hold to bounds (tests/unit/test_engine_dependence.py,
test_engine_joint_categorical.py, test_engine_text_drift.py), built here once for both.

- dependence: x2 = +-x1 with a random sign in reality, a naive per-column set that loses it and a faithful
  set (`scenarios.sample_dependence`); marginals and correlation never move;
- categorical dependence: x1's mean set by a categorical c, the naive set draws c independently
  (`scenarios.sample_categorical_dependence`);
- text: documents of the same length law from another vocabulary (`scenarios.topic_texts(other=...)`),
  and a stream drifting toward a low-diversity generated set (`scenarios.recursive_text` at temperature 0.7).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from careful_monitor.bench.quality import window_batch
from careful_monitor.engine.monitor import ModelMonitor, MonitorSpec, WindowOutcome
from careful_monitor.engine.profile import ReferenceProfile, build_profile
from careful_monitor.engine.types import PolicyState

Sampler = Callable[..., dict[str, np.ndarray]]  # (rng, n, *, naive_share) -> columns without the "inputs." prefix
Echo = Callable[[str], None] | None
CHANGE = 4  # the first window drawn partly from the drifting source
WINDOW = 1000


def _inputs(cols: dict[str, np.ndarray]) -> dict[str, list]:
    return {f"inputs.{k}": v.tolist() for k, v in cols.items()}


def _monitor(features: dict[str, str], anchor: ReferenceProfile, sets: dict[str, ReferenceProfile],
             window: int = WINDOW) -> ModelMonitor:
    from careful_monitor.config import MinEffect

    spec = MonitorSpec(features=dict(features), window_size=window, min_effect=MinEffect().model_dump())
    return ModelMonitor("m", spec, anchor, sets)


def ramp(windows: int = 12, change: int = CHANGE) -> list[float]:
    """Stationary until `change`, then a quarter more of the drifting source each window: 0.25, 0.5, 0.75, 1, 1, ..."""
    return [min(1.0, 0.25 * max(0, w - change + 1)) for w in range(windows)]


@dataclass(frozen=True)
class DependenceWorld:
    """An anchor of 20,000 rows of the real law and two synthetic sets of 8,000: "naive" and "faithful"."""

    sampler: Sampler
    features: dict[str, str]
    anchor: ReferenceProfile
    sets: dict[str, ReferenceProfile]
    options: dict[str, Any] = field(default_factory=dict)  # the sampler's other keyword arguments

    @classmethod
    def build(cls, sampler: Sampler, features: dict[str, str], seed: int = 15, **kw: Any) -> DependenceWorld:
        rng = np.random.default_rng(seed)
        anchor = build_profile("real", "real", _inputs(sampler(rng, 20_000, **kw)), kinds=features, rng=rng)
        sets = {name: build_profile(name, "synthetic", _inputs(sampler(rng, 8000, naive_share=share, **kw)),
                                    kinds=features, anchor=anchor, anchored_by="real", rng=rng)
                for name, share in (("naive", 1.0), ("faithful", 0.0))}
        return cls(sampler, features, anchor, sets, kw)

    def run(self, seed: int, shares: Sequence[float], sets: dict[str, ReferenceProfile] | None = None,
            **kw: Any) -> list[WindowOutcome]:
        """One window of 1,000 events per entry of `shares` (each event naive with that probability)."""
        kw = {**self.options, **kw}
        mon = _monitor(self.features, self.anchor, self.sets if sets is None else sets)
        rng = np.random.default_rng(100 + seed)
        cols: dict[str, list] = {f: [] for f in self.features}
        for share in shares:
            for f, v in _inputs(self.sampler(rng, WINDOW, naive_share=share, **kw)).items():
                cols[f] += v
        return mon.process(window_batch(cols, 0), now=0.0)


def dependence_world() -> DependenceWorld:
    from careful_monitor.scenarios import sample_dependence

    return DependenceWorld.build(sample_dependence, {"inputs.x1": "numeric", "inputs.x2": "numeric"}, extra=0)


def categorical_dependence_world() -> DependenceWorld:
    from careful_monitor.scenarios import sample_categorical_dependence

    return DependenceWorld.build(sample_categorical_dependence,
                                 {"inputs.c": "categorical", "inputs.x1": "numeric", "inputs.x2": "numeric"})


def _first(outs: list[WindowOutcome], test: Callable[[WindowOutcome], bool]) -> int | None:
    return next((o.result.window for o in outs if test(o)), None)


def _mmd_flagged(o: WindowOutcome) -> bool:
    return any(t.flagged and t.feature == "joint" and t.test == "mmd" for t in o.result.tests)


def drift_toward(world: DependenceWorld, seeds: int) -> dict[str, Any]:
    """The ramp toward the naive set over `seeds` seeds: windows of the first `mmd` flag and of the
    naive set's retirement, how often the faithful set or the anchor was blamed."""
    first_flag, retired, faithful, stale = [], [], 0, 0
    for seed in range(seeds):
        outs = world.run(seed, ramp())
        first_flag.append(_first(outs, lambda o: o.result.window >= CHANGE and _mmd_flagged(o)))
        alerts = [(a.window, a.dataset, a.state) for o in outs for a in o.alerts]
        retired.append(next((w for w, d, s in alerts if d == "naive" and s == PolicyState.RETIRE_RECOMMENDED), None))
        faithful += any(d == "faithful" for _, d, _ in alerts)
        stale += any(s == PolicyState.ANCHOR_STALE for _, _, s in alerts)
    return {"seeds": seeds, "change_window": CHANGE, "first_mmd_flag": _spread(first_flag),
            "naive_retired": _spread(retired), "faithful_blamed": faithful, "anchor_stale": stale}


def _spread(values: list[int | None]) -> dict[str, Any]:
    found = [v for v in values if v is not None]
    return {"median": statistics.median(found) if found else None, "max": max(found) if found else None,
            "missed": len(values) - len(found)}


def mmd_calibration(anchors: int, windows: int, n: int = WINDOW) -> dict[str, float]:
    """The `mmd` p-values of stationary windows of the real dependence law over `anchors` anchors of 5,000 rows
    x `windows` windows each: uniform (KS p-value) and the share below 0.01. Over anchors as well as windows:
    with one anchor every window shares its sampling error (1/N of the variance), so p-values are uniform
    only averaged over anchors."""
    from scipy import stats

    from careful_monitor.engine.comparisons.mmd import MMD
    from careful_monitor.scenarios import sample_dependence

    rng = np.random.default_rng(600)
    test, p = MMD(), []
    for _ in range(anchors):
        anchor = build_profile("a", "real", _inputs(sample_dependence(rng, 5000)), rng=rng)
        for _ in range(windows):
            r = test.compare_window(anchor, {f"inputs.{k}": v for k, v in sample_dependence(rng, n).items()})
            assert r is not None
            p.append(r.p_value)
    p_ = np.array(p)
    return {"windows": len(p_), "anchors": anchors, "ks_uniform_p": float(stats.kstest(p_, "uniform").pvalue),
            "below_0.01": float((p_ < 0.01).mean())}


# --- text ------------------------------------------------------------------------------------------------

TEXT_FEATURE = "inputs.text"
TEXT_WINDOW = 500


def _text_monitor(anchor: ReferenceProfile, sets: dict[str, ReferenceProfile]) -> ModelMonitor:
    return _monitor({TEXT_FEATURE: "text"}, anchor, sets, TEXT_WINDOW)


def text_profiles(seed: int = 15) -> tuple[ReferenceProfile, dict[str, ReferenceProfile]]:
    """An anchor of 20,000 `topic_texts` documents and a faithful synthetic set of 8,000."""
    from careful_monitor.scenarios import topic_texts

    rng = np.random.default_rng(seed)
    kinds = {TEXT_FEATURE: "text"}
    anchor = build_profile("reviews", "real", {TEXT_FEATURE: topic_texts(rng, 20_000)}, kinds=kinds, rng=rng)
    faithful = build_profile("reviews-synth", "synthetic", {TEXT_FEATURE: topic_texts(rng, 8_000)}, kinds=kinds,
                             anchor=anchor, anchored_by=anchor.name, rng=rng)
    return anchor, {faithful.name: faithful}


def text_stationary(profiles: tuple[ReferenceProfile, dict[str, ReferenceProfile]], windows: int,
                    seed: int = 2024) -> dict[str, Any]:
    """A stationary text-only stream: windows flagged (any test, and a new text test) and alerts."""
    from careful_monitor.scenarios import topic_texts

    mon = _text_monitor(*profiles)
    rng = np.random.default_rng(seed)
    flagged = alerts = new_flags = 0
    for chunk in range(0, windows, 10):
        k = min(10, windows - chunk)
        docs = topic_texts(rng, k * TEXT_WINDOW)
        for o in mon.process(window_batch({TEXT_FEATURE: docs}, chunk * TEXT_WINDOW), now=0.0):
            flagged += o.result.flagged
            alerts += len(o.alerts)
            new_flags += any(t.flagged and t.test in ("token_presence", "novelty") for t in o.result.tests)
    return {"windows": windows, "flagged_windows": flagged, "new_text_test_flags": new_flags, "alerts": alerts}


def vocabulary_shift(profiles: tuple[ReferenceProfile, dict[str, ReferenceProfile]], seeds: int,
                     other: float = 0.3) -> dict[str, Any]:
    """6 stationary windows, then `other` of the documents from another vocabulary (same length law):
    windows of the first novelty flag and of the anchor_stale alert; synthetic sets blamed."""
    from careful_monitor.scenarios import topic_texts

    stable, drifted = 6, 6
    first, stale, blamed, early = [], [], 0, 0
    for seed in range(seeds):
        rng = np.random.default_rng(77 + seed)
        docs = topic_texts(rng, stable * TEXT_WINDOW) + topic_texts(rng, drifted * TEXT_WINDOW, other=other)
        outs = _text_monitor(*profiles).process(window_batch({TEXT_FEATURE: docs}, 0), now=0.0)
        first.append(_first(outs, lambda o: o.result.window >= stable
                            and any(t.flagged and t.test == "novelty" for t in o.result.tests)))
        alerts = [(a.window, a.dataset, a.state) for o in outs for a in o.alerts]
        stale.append(next((w for w, _, s in alerts if s == PolicyState.ANCHOR_STALE), None))
        blamed += any(s == PolicyState.RETIRE_RECOMMENDED for _, _, s in alerts)
        early += any(w < stable for w, _, _ in alerts)
    return {"seeds": seeds, "change_window": stable, "first_novelty_flag": _spread(first),
            "anchor_stale": _spread(stale), "synthetic_blamed": blamed, "alerts_before_change": early}


def text_collapse(seeds: int, windows: int = 12) -> dict[str, Any]:
    """Anchor and a faithful set from a bigram model; a low-diversity set from 6 generations of refitting at
    temperature 0.7 (`scenarios.recursive_text`); live windows follow `ramp` toward the low-diversity set."""
    from careful_monitor.scenarios import recursive_text, sample_texts

    rng = np.random.default_rng(31)
    models = recursive_text(rng, generations=6, sentences_per_generation=1000, temperature=0.7)
    kinds = {TEXT_FEATURE: "text"}
    anchor = build_profile("human", "real", {TEXT_FEATURE: sample_texts(rng, models[0], 20_000)}, kinds=kinds,
                           rng=rng)
    sets = {name: build_profile(name, "synthetic", {TEXT_FEATURE: sample_texts(rng, models[g], 8000)}, kinds=kinds,
                                anchor=anchor, anchored_by="human", rng=rng)
            for name, g in (("low-diversity", len(models) - 1), ("faithful", 0))}
    retired, faithful, stale = [], 0, 0
    for seed in range(seeds):
        r = np.random.default_rng(500 + seed)
        docs: list[str] = []
        for share in ramp(windows):
            k = int(r.binomial(TEXT_WINDOW, share))
            mixed = sample_texts(r, models[-1], k) + sample_texts(r, models[0], TEXT_WINDOW - k)
            docs += [mixed[i] for i in r.permutation(TEXT_WINDOW)]
        outs = _text_monitor(anchor, sets).process(window_batch({TEXT_FEATURE: docs}, 0), now=0.0)
        alerts = [(a.window, a.dataset, a.state) for o in outs for a in o.alerts]
        retired.append(next((w for w, d, s in alerts if d == "low-diversity" and s == PolicyState.RETIRE_RECOMMENDED),
                            None))
        faithful += any(d == "faithful" for _, d, _ in alerts)
        stale += any(s == PolicyState.ANCHOR_STALE for _, _, s in alerts)
    return {"seeds": seeds, "change_window": CHANGE, "low_diversity_retired": _spread(retired),
            "faithful_blamed": faithful, "anchor_stale": stale}


def blend_groups(windows: int = 16) -> dict[str, Any]:
    """The demo's sets plus a blend (half collapsed, half faithful rows): the largest sum of identifiable shares
    and group shares over the windows (at most 1 by construction) and how often the blend and the collapsed set
    were reported as one group."""
    from careful_monitor.demo import scenario

    anchor, synthetic = scenario.profiles(np.random.default_rng(1234))
    rng = np.random.default_rng(4321)
    rows = scenario.sample_rows(rng, 4000, "collapsed") + scenario.sample_rows(rng, 4000, "faithful")
    blend = build_profile("blend", "synthetic", scenario.rows_to_columns(rows), kinds=scenario.FEATURES,
                          anchor=anchor, anchored_by=anchor.name, rng=rng)
    mon = ModelMonitor(scenario.MODEL, MonitorSpec(features=dict(scenario.FEATURES)), anchor,
                       {**synthetic, "blend": blend})
    events = scenario.live_events(np.random.default_rng(77), windows=windows, stable_windows=windows // 2)
    outs = mon.process(scenario.events_to_batch(events), now=0.0)
    totals, grouped = [], 0
    for o in outs:
        seen: set[tuple[str, ...]] = set()
        total = 0.0
        for a in o.result.attribution:
            if a.share is not None:
                total += a.share
            elif a.group_share is not None:
                group = tuple(sorted((a.dataset, *a.indistinguishable_from)))
                if group not in seen:
                    seen.add(group)
                    total += a.group_share
        totals.append(total)
        grouped += any(a.dataset == "blend" and scenario.COLLAPSED in a.indistinguishable_from
                       for a in o.result.attribution)
    return {"windows": len(outs), "max_total_share": max(totals), "blend_grouped_with_collapsed": grouped}


def run_coverage(*, quick: bool = False, echo: Echo = print) -> dict[str, Any]:
    say = echo or (lambda s: None)
    seeds = 3 if quick else 10
    res: dict[str, Any] = {}
    dep, cat = dependence_world(), categorical_dependence_world()
    res["dependence"] = d = drift_toward(dep, seeds)
    res["categorical_dependence"] = c = drift_toward(cat, seeds)
    res["mmd_calibration"] = m = mmd_calibration(8 if quick else 20, 25)
    texts = text_profiles()
    res["text_stationary"] = ts = text_stationary(texts, 100 if quick else 500)
    res["vocabulary_shift"] = vs = vocabulary_shift(texts, seeds)
    res["text_collapse"] = tc = text_collapse(seeds)
    res["blend"] = bl = blend_groups()
    say(f"detection coverage (engine end to end; ramps start at window {CHANGE}, {seeds} seeds; "
        "median / worst window)")
    say(f"  {'scenario':<46} {'careful-monitor':<52} target")
    for name, r in (("x2 = +-x1, toward a naive set", d), ("x1 | c, toward a naive set", c)):
        cell = (f"mmd from {r['first_mmd_flag']['median']}/{r['first_mmd_flag']['max']}, retired "
                f"{r['naive_retired']['median']}/{r['naive_retired']['max']}, faithful blamed {r['faithful_blamed']}")
        say(f"  {name:<46} {cell:<52} retired <= {CHANGE + 4}, 0")
    say(f"  {'mmd p-values, ' + str(m['windows']) + ' windows, ' + str(m['anchors']) + ' anchors':<46} "
        f"{'KS p ' + format(m['ks_uniform_p'], '.2f') + ', ' + format(100 * m['below_0.01'], '.1f') + ' % < 0.01':<52}"
        " KS p > 0.01, ~1 %")
    say(f"  {'text, ' + str(ts['windows']) + ' stationary windows':<46} "
        f"{str(ts['alerts']) + ' alerts, ' + str(ts['flagged_windows']) + ' windows flagged':<52} 0 alerts, <= 2 %")
    cell = (f"novelty from {vs['first_novelty_flag']['median']}, anchor_stale {vs['anchor_stale']['median']}/"
            f"{vs['anchor_stale']['max']}, sets blamed {vs['synthetic_blamed']}")
    say(f"  {'text, 30 % from another vocabulary (window 6)':<46} {cell:<52} stale <= 8, 0")
    cell = (f"retired {tc['low_diversity_retired']['median']}/{tc['low_diversity_retired']['max']} "
            f"(missed {tc['low_diversity_retired']['missed']}), faithful blamed {tc['faithful_blamed']}")
    say(f"  {'text, toward a low-diversity generated set':<46} {cell:<52} retired <= {CHANGE + 4}, 0")
    cell = f"max shares + group shares {bl['max_total_share']:.3f}, grouped {bl['blend_grouped_with_collapsed']}"
    say(f"  {'blend of collapsed + faithful, ' + str(bl['windows']) + ' windows':<46} {cell:<52} <= 1")
    return res
