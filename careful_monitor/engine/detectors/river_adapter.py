"""river's drift detectors (ADWIN, PageHinkley, KSWIN) behind the same batch protocol.

They learn the pre-change distribution from the stream itself; selectable per model with
`policy.detector`. Seeded where river takes a seed (KSWIN).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> d = RiverDetector("adwin")
>>> len(d.update_many(np.r_[rng.normal(size=3000), rng.normal(2, 1, 1000)])) >= 1
True
"""

from __future__ import annotations

from typing import Sequence


def _build(kind: str):
    from river import drift  # imported on use: river's package init pulls in optional I/O modules

    if kind == "adwin":
        return drift.ADWIN()
    if kind == "page_hinkley":
        return drift.PageHinkley()
    if kind == "kswin":
        return drift.KSWIN(seed=7)
    raise ValueError(f"unknown river detector {kind!r}")


class RiverDetector:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.detector = _build(kind)
        self.drift_detected = False
        self.direction = 0

    def update(self, x: float) -> None:
        self.update_many([x])

    def update_many(self, xs: Sequence[float]) -> list[int]:
        hits = []
        det = self.detector
        for i, x in enumerate(xs):
            det.update(float(x))
            if det.drift_detected:
                hits.append(i)
        self.drift_detected = bool(hits)
        return hits
