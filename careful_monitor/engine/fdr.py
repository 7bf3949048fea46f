"""Benjamini-Hochberg over one window's family of anchor tests.

>>> benjamini_hochberg([0.001, 0.02, 0.03, 0.5], 0.05).tolist()
[True, True, True, False]
>>> benjamini_hochberg([0.01, 0.02, 0.03, 0.04], 0.05).tolist()
[True, True, True, True]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def benjamini_hochberg(p_values: Sequence[float], q: float) -> np.ndarray:
    """Which hypotheses are rejected at false-discovery rate q (step-up)."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(p, kind="stable")
    below = p[order] <= q * np.arange(1, m + 1) / m
    reject = np.zeros(m, dtype=bool)
    if below.any():
        k = int(np.nonzero(below)[0].max())
        reject[order[: k + 1]] = True
    return reject
