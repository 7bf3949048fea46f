"""Text helpers: tokenisation and distinct-n diversity at a matched sample size.

Diversity (distinct bigrams / bigrams) falls with sample size, so a window of 300 texts must be
compared with the anchor's diversity *at 300 texts*; the profile keeps that curve.

>>> distinct2([["a", "b", "a", "b"], ["a", "b"]])
0.5
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np


def tokenize_many(texts: Sequence[str]) -> list[list[str]]:
    return [t.lower().split() for t in texts]


def distinct2(token_lists: Sequence[Sequence[str]]) -> float:
    """Distinct bigrams over all bigrams of the texts (0 when there are none)."""
    seen: set[tuple[str, str]] = set()
    total = 0
    for toks in token_lists:
        pairs = list(pairwise(toks))
        total += len(pairs)
        seen.update(pairs)
    return len(seen) / total if total else 0.0


def distinct_curve(token_lists: list[list[str]], sizes: np.ndarray, rng: np.random.Generator,
                   draws: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd of distinct-2 over `draws` random subsets of each size (without replacement)."""
    n = len(token_lists)
    means, sds = [], []
    for s in sizes:
        s = int(min(s, n))
        vals = ([distinct2([token_lists[i] for i in rng.choice(n, size=s, replace=False)]) for _ in range(draws)]
                if s else [0.0])
        means.append(float(np.mean(vals)))
        sds.append(float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0)
    return np.array(means), np.array(sds)


def matched(sizes: np.ndarray, values: np.ndarray, n: int) -> float:
    """Interpolate a curve over sample sizes at n (log scale), clamped to the measured range."""
    if len(sizes) == 1:
        return float(values[0])
    return float(np.interp(np.log(max(n, 1)), np.log(sizes), values))
