"""A window's joint features as copula normal scores: computed once, shared by every window-level test.

Each numeric feature of the anchor's joint sample is mapped to normal scores through the anchor's own
CDF (a Gaussian copula), so the joint tests see dependence rather than re-testing marginals. Rows with
a missing or non-finite value are dropped. The scores cost more than the tests themselves (one
interpolation per feature and row), so a `WindowRows` keeps them per reference: the correlation test
and the MMD test of one window compute them once.

>>> import numpy as np
>>> from careful_monitor.engine.profile import build_profile
>>> rng = np.random.default_rng(0)
>>> ref = build_profile("a", "real", {"inputs.x": rng.normal(size=2000).tolist(),
...                                    "inputs.y": rng.normal(size=2000).tolist()}, rng=rng)
>>> rows = WindowRows({"inputs.x": rng.normal(size=100), "inputs.y": np.r_[np.nan, rng.normal(size=99)]})
>>> _, names, z = copula_scores(ref, rows)
>>> names, z.shape, copula_scores(ref, rows)[2] is z
(['inputs.x', 'inputs.y'], (99, 2), True)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from careful_monitor.engine.profile import JointProfile, NumericProfile, ReferenceProfile, normal_scores

#: fewer complete rows than this and no window-level test runs
MIN_ROWS = 30

Scores = tuple[JointProfile, list[str], np.ndarray] | None


class WindowRows(dict[str, np.ndarray]):
    """Row-aligned float columns of a window's joint features; remembers their copula scores per reference."""

    def __init__(self, columns: Mapping[str, np.ndarray]) -> None:
        super().__init__(columns)
        self.scores: dict[int, Scores] = {}


def copula_scores(reference: ReferenceProfile, window: Mapping[str, np.ndarray]) -> Scores:
    """(joint profile, feature names, rows x features normal scores) of the reference's joint features, or None when
    the reference has no joint sample, fewer than two of its features are in the window, or fewer
    than MIN_ROWS rows are complete."""
    cache = window.scores if isinstance(window, WindowRows) else None
    if cache is not None and id(reference) in cache:
        return cache[id(reference)]
    out = _scores(reference, window)
    if cache is not None:
        cache[id(reference)] = out
    return out


def _scores(reference: ReferenceProfile, window: Mapping[str, np.ndarray]) -> Scores:
    joint = reference.joint
    if joint is None:
        return None
    names = [f for f in joint.features if f in window]
    if len(names) < 2:
        return None
    m = np.column_stack([window[f] for f in names])
    m = m[np.isfinite(m).all(axis=1)]
    if len(m) < MIN_ROWS:
        return None
    profiles = [reference.features[f] for f in names]
    assert all(isinstance(p, NumericProfile) for p in profiles)  # the joint sample holds numeric features only
    return joint, names, np.column_stack([normal_scores(m[:, j], p) for j, p in enumerate(profiles)])  # type: ignore[arg-type]
