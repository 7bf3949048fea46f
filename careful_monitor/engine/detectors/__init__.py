"""Streaming detectors on per-event scalars: `update(x)`, then read `drift_detected`.

They follow river's protocol (`river.base.DriftDetector`), and add `update_many(xs)` which returns
the positions in `xs` where drift was detected (each detection resets the detector), so the
monitor feeds a whole batch at once.
"""

from __future__ import annotations

from typing import Protocol, Sequence


class StreamingDetector(Protocol):
    drift_detected: bool

    def update(self, x: float) -> None: ...

    def update_many(self, xs: Sequence[float]) -> list[int]: ...


def make_detector(kind: str, *, mean: float, sd: float, threshold: float, drift: float):
    """Build the detector named by `policy.detector` for a signal whose anchor mean/sd are known."""
    from careful_monitor.engine.detectors.cusum import AnchorCUSUM
    from careful_monitor.engine.detectors.river_adapter import RiverDetector

    if kind == "cusum":
        return AnchorCUSUM(mean=mean, sd=sd, threshold=threshold, drift=drift)
    if kind in ("adwin", "page_hinkley", "kswin"):
        return RiverDetector(kind)
    if kind == "none":
        return None
    raise ValueError(f"unknown detector {kind!r}")
