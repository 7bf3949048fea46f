"""Anchor-aware two-sided CUSUM on a standardised scalar (Page 1954).

The anchor is the known pre-change distribution, so each value is standardised with the anchor's
mean and sd, z = (x - mean) / sd, and Page's statistics S+ = max(0, S+ + z - k) and
S- = max(0, S- - z - k) accumulate evidence of an upward or downward shift. A detection fires when
either exceeds h, and both reset. k (`drift`) is half the shift (in anchor sd) tuned for; h
(`threshold`) trades delay for false alarms. The default k = 0.25, h = 20 measured 0.45 false
alarms per 100,000 N(0,1) events and a median delay of 60 events for a 0.5 sd shift
(`careful-monitor bench --quality`). Unlike ADWIN, which must learn the pre-change mean from the stream itself, this
uses the reference it already knows. A batch is processed without a Python loop per event,
using S_t = C_t - min(0, min_{s<=t} C_s) with C the cumulative sum (Lindley's recursion).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> d = AnchorCUSUM(mean=0.0, sd=1.0, threshold=20.0, drift=0.25)
>>> d.update_many(rng.normal(size=5000))
[]
>>> hits = d.update_many(rng.normal(0.5, 1, 2000))
>>> 0 < hits[0] < 300
True
>>> again = AnchorCUSUM(mean=0.0, sd=1.0, threshold=20.0, drift=0.25); again.restore(d.state())
>>> again.state() == d.state()
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _first_crossing(s0: float, steps: np.ndarray, h: float) -> tuple[int, np.ndarray]:
    c = s0 + np.cumsum(steps)
    s = c - np.minimum(np.minimum.accumulate(c), 0.0)
    over = np.nonzero(s > h)[0]
    return (int(over[0]) if len(over) else -1), s


class AnchorCUSUM:
    def __init__(self, *, mean: float, sd: float, threshold: float = 20.0, drift: float = 0.25) -> None:
        self.mean, self.sd = float(mean), float(sd) if sd > 0 else 1.0
        self.threshold, self.drift = float(threshold), float(drift)
        self.pos = 0.0
        self.neg = 0.0
        self.drift_detected = False
        self.direction = 0  # +1 upward shift, -1 downward, at the last detection

    def update(self, x: float) -> None:
        self.update_many([x])

    def state(self) -> dict[str, Any]:
        return {"pos": self.pos, "neg": self.neg, "direction": self.direction}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.pos, self.neg, self.direction = float(state["pos"]), float(state["neg"]), int(state["direction"])

    def update_many(self, xs: Sequence[float] | np.ndarray) -> list[int]:
        z = (np.asarray(xs, dtype=float) - self.mean) / self.sd
        z = z[np.isfinite(z)]
        hits: list[int] = []
        self.drift_detected = False
        offset = 0
        while len(z):
            i_pos, s_pos = _first_crossing(self.pos, z - self.drift, self.threshold)
            i_neg, s_neg = _first_crossing(self.neg, -z - self.drift, self.threshold)
            cand = [i for i in (i_pos, i_neg) if i >= 0]
            if not cand:
                self.pos, self.neg = float(s_pos[-1]), float(s_neg[-1])
                break
            i = min(cand)
            self.direction = 1 if i == i_pos else -1
            hits.append(offset + i)
            self.drift_detected = True
            self.pos = self.neg = 0.0
            z = z[i + 1:]
            offset += i + 1
        return hits
