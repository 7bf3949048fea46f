"""river's drift detectors (ADWIN, PageHinkley, KSWIN) behind the same batch protocol.

They learn the pre-change distribution from the stream itself; selectable per model with
`policy.detector`. Seeded where river takes a seed (KSWIN).

river's detectors have no data-only state (their internals are Python objects), so the adapter
keeps the last `TAIL` values it was fed; `state()` is that tail, and `restore()` re-warms a fresh
detector on it, ignoring detections while re-warming. A restored detector therefore knows the
recent past only (at most `TAIL` values), not the whole stream: a slow drift that began before
the tail may be learnt as normal. The default detector (`cusum`) has exact state and no such limit.
The direction of a river detection is unknown (0).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> d = RiverDetector("adwin")
>>> len(d.update_many(np.r_[rng.normal(size=3000), rng.normal(2, 1, 1000)])) >= 1
True
>>> again = RiverDetector("adwin"); again.restore(d.state()); len(again.state()["tail"]) == TAIL
True
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: values kept for re-warming a restored detector
TAIL = 1000


def _build(kind: str) -> Any:
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
        self._tail: deque[float] = deque(maxlen=TAIL)

    def update(self, x: float) -> None:
        self.update_many([x])

    def update_many(self, xs: Sequence[float] | np.ndarray) -> list[int]:
        hits = []
        det = self.detector
        for i, x in enumerate(xs):
            det.update(float(x))
            if det.drift_detected:
                hits.append(i)
        self._tail.extend(float(x) for x in xs[-TAIL:])
        self.drift_detected = bool(hits)
        return hits

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "tail": list(self._tail)}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.detector = _build(self.kind)
        self._tail.clear()
        self.update_many([float(x) for x in state["tail"]])
        self.drift_detected = False
