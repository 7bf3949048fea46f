"""Attribution: does a window's drift point toward a synthetic set S, and how much of S is in it?

All features' histograms (on the anchor's grid) are stacked into one vector per reference. With
delta = window - anchor and d = S - anchor:

- **share**: the least-squares mixture weight w in  window ~ (1 - w) anchor + w S, i.e.
  <delta, d> / |d|^2, with |d|^2 corrected for the sampling noise of the two references and a
  standard error from the window's multinomial variance. When that error exceeds
  `max_share_se` (S is too close to the anchor to tell apart at this window size) the share is
  not identifiable and is reported as null.
- **affinity**: the cosine between delta and d (noise-corrected), 1 when the window moved
  straight toward S, ~0 when it moved some other way. "Is the window nearer S than the anchor
  is" in direction rather than distance, so it is meaningful for any share.

>>> import numpy as np
>>> a = {"f": np.array([250, 250, 250, 250]) * 1000}; s = {"f": np.array([100, 400, 400, 100]) * 1000}
>>> model = AttributionModel(a, {"S": s})
>>> w = {"f": np.array([200, 300, 300, 200]) * 10}
>>> r = model.attribute(w)[0]
>>> round(r.share, 2), r.affinity > 0.9
(0.33, True)
"""

from __future__ import annotations

import math

import numpy as np

from careful_monitor.engine.types import Attribution


def _norm(c: np.ndarray) -> np.ndarray:
    s = c.sum()
    return c / s if s else c.astype(float)


class AttributionModel:
    """Precomputed per synthetic set: direction d per feature and its noise, once per reference."""

    def __init__(self, anchor_counts: dict[str, np.ndarray], synthetic_counts: dict[str, dict[str, np.ndarray]],
                 *, max_share_se: float = 0.1) -> None:
        self.max_share_se = max_share_se
        self.anchor = {f: _norm(c) for f, c in anchor_counts.items()}
        self.anchor_n = {f: max(int(c.sum()), 1) for f, c in anchor_counts.items()}
        self.sets: dict[str, dict[str, tuple[np.ndarray, float]]] = {}
        for name, feats in synthetic_counts.items():
            blocks = {}
            for f, c in feats.items():
                if f not in self.anchor or len(c) != len(self.anchor[f]) or c.sum() == 0:
                    continue
                pa, ps = self.anchor[f], _norm(c)
                d = ps - pa
                noise = float((pa * (1 - pa)).sum() * (1.0 / self.anchor_n[f] + 1.0 / c.sum()))
                blocks[f] = (d, noise)
            self.sets[name] = blocks

    def attribute(self, window_counts: dict[str, np.ndarray], min_n: int = 20) -> list[Attribution]:
        deltas = {}
        for f, c in window_counts.items():
            n = c.sum()
            if f in self.anchor and n >= min_n and len(c) == len(self.anchor[f]):
                deltas[f] = (c / n - self.anchor[f], n)
        out = []
        for name, blocks in self.sets.items():
            num = dd = noise_d = var = delta2 = noise_w = 0.0
            for f, (d, noise) in blocks.items():
                if f not in deltas:
                    continue
                delta, n = deltas[f]
                pa = self.anchor[f]
                num += float(delta @ d)
                dd += float(d @ d)
                noise_d += noise
                var += float((d * d * pa).sum() - (d * pa).sum() ** 2) / n
                delta2 += float(delta @ delta)
                noise_w += float((pa * (1 - pa)).sum()) / n
            signal = dd - noise_d
            if signal <= 0 or dd == 0:
                out.append(Attribution(name, 0.0, None, math.inf, False))
                continue
            share = num / signal
            se = math.sqrt(max(var, 0.0)) / signal
            drift2 = max(delta2 - noise_w, 0.25 * delta2)
            affinity = num / math.sqrt(drift2 * dd) if drift2 > 0 else 0.0
            affinity = max(-1.0, min(1.0, affinity))
            ident = se <= self.max_share_se
            out.append(Attribution(name, affinity, min(max(share, 0.0), 1.0) if ident else None, se, ident))
        return out
