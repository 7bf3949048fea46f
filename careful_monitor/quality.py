"""`careful-monitor bench --quality`: detection delay and false alarms, side by side with river.

Every stream is seeded; careful-monitor's detectors and the peers see the very same values.
"""

from __future__ import annotations

import statistics
from typing import Any, Callable

import numpy as np

from careful_monitor.engine.detectors.cusum import AnchorCUSUM
from careful_monitor.engine.detectors.river_adapter import RiverDetector

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


def false_alarms(events: int = 200_000, seeds: int = 10, names: list[str] | None = None) -> dict[str, tuple[float, int]]:
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
    names = None if not quick else ["careful-monitor CUSUM (k=0.25, h=20)", "river ADWIN (defaults)", "river PageHinkley (defaults)"]
    results: dict[str, Any] = {"detectors": {}}
    say(f"per-event detectors: N(0,1) -> N(shift,1) at t={CHANGE_AT}, {seeds} seeds; false alarms per 100,000 stationary events")
    fa = false_alarms(fa_events, 3 if quick else 10, names)
    rows = []
    for shift in (0.25, 0.5, 1.0):
        d = detector_delays(shift, seeds, names=names)
        results["detectors"][str(shift)] = d
        for name, r in d.items():
            rows.append((f"mean shift {shift} sd", name, r["median_delay"], r["missed"], fa[name][0], fa[name][1]))
    results["false_alarms_per_100k"] = fa
    say(f"  {'scenario':<18} {'detector':<38} {'median delay':>12} {'missed':>7} {'false alarms/100k':>18} {'(over events)':>14}")
    for scen, name, delay, missed, f, n in rows:
        say(f"  {scen:<18} {name:<38} {delay:>12.0f} {missed:>7} {f:>18.2f} {n:>14,}")
    return results
