"""Streaming detectors on per-event scalars: `update(x)`, then read `drift_detected`.

They follow river's protocol (`river.base.DriftDetector`), and add `update_many(xs)` which returns
the positions in `xs` where drift was detected (each detection resets the detector), so the
monitor feeds a whole batch at once; `direction` says which way the last detection pointed (+1 up,
-1 down, 0 unknown), and `state()` / `restore(state)` save and resume it as plain data.

>>> d = make_detector("cusum", mean=0.0, sd=1.0, threshold=5.0, drift=0.25)
>>> d.update_many([3.0] * 3), d.direction
([1], 1)
>>> make_detector("none", mean=0.0, sd=1.0, threshold=5.0, drift=0.25) is None
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np


class StreamingDetector(Protocol):
    drift_detected: bool
    direction: int  # of the last detection: +1 upward shift, -1 downward, 0 unknown

    def update(self, x: float) -> None: ...

    def update_many(self, xs: Sequence[float] | np.ndarray) -> list[int]: ...

    def state(self) -> dict[str, Any]:
        """The detector's state as JSON-able data."""
        ...

    def restore(self, state: Mapping[str, Any]) -> None:
        """Resume from `state()` of a detector built with the same parameters."""
        ...


def make_detector(kind: str, *, mean: float, sd: float, threshold: float, drift: float) -> StreamingDetector | None:
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
