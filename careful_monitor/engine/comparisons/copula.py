"""A window's joint features as copula normal scores and category codes: computed once, shared by every test.

Each numeric feature of the anchor's joint sample is mapped to normal scores through the anchor's own
CDF (a Gaussian copula), so the joint tests see dependence rather than re-testing marginals; each
categorical one to the anchor's joint category codes (`category_codes`: its top categories, every other
value "other"). Rows with a missing or non-finite value are dropped. The scores cost more than the tests
themselves (one interpolation per feature and row), so a `WindowRows` keeps them per reference: the
correlation test (`copula_scores`, numeric features only) and the MMD test (`joint_rows`, numeric and
categorical) of one window compute them once, and share them when no categorical value is missing.

>>> import numpy as np
>>> from careful_monitor.engine.profile import build_profile
>>> rng = np.random.default_rng(0)
>>> ref = build_profile("a", "real", {"inputs.x": rng.normal(size=2000).tolist(),
...                                    "inputs.y": rng.normal(size=2000).tolist()}, rng=rng)
>>> rows = WindowRows({"inputs.x": rng.normal(size=100), "inputs.y": np.r_[np.nan, rng.normal(size=99)]})
>>> _, names, z = copula_scores(ref, rows)
>>> names, z.shape, copula_scores(ref, rows)[2] is z
(['inputs.x', 'inputs.y'], (99, 2), True)
>>> joint_rows(ref, rows).codes.shape  # no categorical joint feature: the same rows, no codes
(99, 0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from typing import Any, NamedTuple, TypeVar

import numpy as np

from careful_monitor.engine.profile import (
    CategoricalProfile,
    JointProfile,
    NumericProfile,
    ReferenceProfile,
    normal_scores_matrix,
)

#: fewer complete rows than this and no window-level test runs
MIN_ROWS = 30

Scores = tuple[JointProfile, list[str], np.ndarray] | None
_STR_OR_NONE = frozenset({str, type(None)})

T = TypeVar("T")


class JointRows(NamedTuple):
    """A window's complete rows of a reference's joint features, numeric and categorical."""

    joint: JointProfile
    features: list[str]  # numeric, the columns of `scores`
    categorical: list[str]  # the columns of `codes`
    scores: np.ndarray  # rows x features, normal scores through the anchor's CDFs
    codes: np.ndarray  # rows x categorical, the anchor's joint category codes (intp)

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.features, *self.categorical)


class WindowRows(dict[str, np.ndarray]):
    """Row-aligned float columns of a window's joint features (categorical ones as `category_codes`);
    remembers their copula scores and joint rows per reference."""

    def __init__(self, columns: Mapping[str, np.ndarray]) -> None:
        super().__init__(columns)
        self.scores: dict[int, Scores] = {}
        self.rows: dict[int, JointRows | None] = {}


def category_codes(values: Sequence[Any], profile: CategoricalProfile, levels: int) -> np.ndarray:
    """Row-aligned joint codes (floats; NaN: null, or not a value) of a window's column of a categorical feature.

    Code i < levels - 1 is the anchor's i-th most frequent category, levels - 1 any other value (as in the
    stored joint sample). One dict lookup per value, run by `map` in C (no Python loop over the rows).

    >>> from careful_monitor.engine.profile import categorical_profile
    >>> prof = categorical_profile(list("aaabbc"), anchor=None, max_categories=10)
    >>> category_codes(["b", None, "z", "a", "c"], prof, 3).tolist()
    [1.0, nan, 2.0, 0.0, 2.0]
    """
    cache = profile.__dict__.setdefault("_joint_codes", {})
    lookup: dict[str | None, float] | None = cache.get(levels)
    if lookup is None:
        lookup = {c: float(min(i, levels - 1)) for i, c in enumerate(profile.categories)}
        lookup[None] = np.nan
        cache[levels] = lookup
    if not set(map(type, values)) <= _STR_OR_NONE:  # as the histogram counts them: str(v); dicts, lists are bad
        values = [None if v is None or isinstance(v, (dict, list)) else str(v) for v in values]
    return np.fromiter(map(lookup.get, values, repeat(float(levels - 1))), dtype=float, count=len(values))


def joint_rows(reference: ReferenceProfile, window: Mapping[str, np.ndarray]) -> JointRows | None:
    """The window's complete rows of the reference's joint features (numeric and categorical), or None when the
    reference has no joint sample, fewer than two of its joint features are in the window, or fewer than
    MIN_ROWS rows are complete. Without a missing categorical value the numeric scores are `copula_scores`'."""
    return _once(window.rows if isinstance(window, WindowRows) else None, reference, window, _rows)


def _rows(reference: ReferenceProfile, window: Mapping[str, np.ndarray]) -> JointRows | None:
    joint = reference.joint
    if joint is None:
        return None
    names = [f for f in joint.features if f in window]
    cats = [f for f in joint.categorical if f in window]
    if len(names) + len(cats) < 2:
        return None
    if not cats:
        found = copula_scores(reference, window)
        if found is None:
            return None
        return JointRows(joint, names, [], found[2], np.zeros((len(found[2]), 0), dtype=np.intp))
    c = np.column_stack([window[f] for f in cats])
    ok = np.isfinite(c).all(axis=1)
    if names:
        m = np.column_stack([window[f] for f in names])
        num_ok = np.isfinite(m).all(axis=1)
        if ok[num_ok].all() and len(names) >= 2:  # the numeric complete rows: share their scores
            found = copula_scores(reference, window)
            if found is None:
                return None
            return JointRows(joint, names, cats, found[2], c[num_ok].astype(np.intp))
        ok &= num_ok
        m = m[ok]
    if int(ok.sum()) < MIN_ROWS:
        return None
    profiles = [reference.features[f] for f in names]
    assert all(isinstance(p, NumericProfile) for p in profiles)
    z = normal_scores_matrix(m, profiles) if names else np.zeros((int(ok.sum()), 0))  # type: ignore[arg-type]
    return JointRows(joint, names, cats, z, c[ok].astype(np.intp))


def copula_scores(reference: ReferenceProfile, window: Mapping[str, np.ndarray]) -> Scores:
    """(joint profile, feature names, rows x features normal scores) of the reference's joint features, or None when
    the reference has no joint sample, fewer than two of its features are in the window, or fewer
    than MIN_ROWS rows are complete."""
    return _once(window.scores if isinstance(window, WindowRows) else None, reference, window, _scores)


def _once(cache: dict[int, T] | None, reference: ReferenceProfile, window: Mapping[str, np.ndarray],
          compute: Callable[[ReferenceProfile, Mapping[str, np.ndarray]], T]) -> T:
    """`compute(reference, window)`, once per reference when the window is a `WindowRows` (its `cache`)."""
    if cache is not None and id(reference) in cache:
        return cache[id(reference)]
    out = compute(reference, window)
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
    assert all(isinstance(p, NumericProfile) for p in profiles)  # `features`: the joint sample's numeric part
    return joint, names, normal_scores_matrix(m, profiles)  # type: ignore[arg-type]
