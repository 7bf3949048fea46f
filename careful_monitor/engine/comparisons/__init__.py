"""Window comparisons: two-sample tests of a window against a reference profile.

Two protocols, one per scope:

- `Comparison.compare(profile, window_column) -> TestResult | None` compares one feature of one
  window with one reference profile. The column was summarised on the anchor's grid and carries
  the anchor's scale (`WindowColumn.scale`), so distances such as Wasserstein come out in anchor
  units whichever reference they are measured against.
- `WindowComparison.compare_window(reference, window) -> TestResult | None` compares several
  features at once (the joint test): `window` maps each feature to its row-aligned float values.

A comparison may also offer `compare_many(pairs) -> list[TestResult | None]`, the same results for
many (profile, column) pairs from one array computation; the window calls it with every pair of the
window at once (`compare_each`).

Comparisons run against the anchor (and then take part in the window's Benjamini-Hochberg family)
and against each synthetic set (and then feed attribution and the dashboards). Collapse signatures
in `engine.signals` follow the per-feature protocol, against the anchor only. `catalogue` lists
which comparison runs on which feature kind.

>>> import numpy as np
>>> from careful_monitor.engine.comparisons.ks import KS
>>> from careful_monitor.engine.column import summarise
>>> from careful_monitor.engine.profile import numeric_profile
>>> rng = np.random.default_rng(0)
>>> ref = numeric_profile(rng.normal(size=5000).tolist(), anchor=None, bins=20, quantiles=1024)
>>> r = KS().compare(ref, summarise(rng.normal(size=1000).tolist(), ref))
>>> r.test, r.p_value > 0.01
('ks', True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from careful_monitor.engine.column import WindowColumn
from careful_monitor.engine.profile import FeatureProfile, ReferenceProfile
from careful_monitor.engine.types import TestResult


class Comparison(Protocol):
    """A two-sample test or collapse signature of one feature: reference profile vs window column.

    `name`, `kinds` and `effect_key` (the key of its floor in policy.min_effect) are plain class
    attributes of each implementation; they are read-only members here so that, for instance,
    `kinds = (NUMERIC,)` satisfies `tuple[str, ...]`.
    """

    @property
    def name(self) -> str: ...

    @property
    def kinds(self) -> tuple[str, ...]: ...

    @property
    def effect_key(self) -> str: ...

    def compare(self, ref: FeatureProfile, window: WindowColumn) -> TestResult | None:
        """None when the window holds too little for the test to mean anything."""
        ...


class WindowComparison(Protocol):
    """A test over several features of a window at once (reported as feature `joint`)."""

    @property
    def name(self) -> str: ...

    @property
    def effect_key(self) -> str: ...

    def compare_window(self, reference: ReferenceProfile, window: Mapping[str, np.ndarray]) -> TestResult | None:
        """None when the reference has no joint sample or the window too few complete rows."""
        ...


def compare_each(c: Comparison, pairs: Sequence[tuple[FeatureProfile, WindowColumn]]) -> list[TestResult | None]:
    """Every pair's result: from the comparison's vectorised `compare_many` where it has one, else pair by pair."""
    many = getattr(c, "compare_many", None)
    if many is not None:
        found: list[TestResult | None] = many(pairs)
        return found
    return [c.compare(p, w) for p, w in pairs]


__all__ = ["Comparison", "TestResult", "WindowComparison", "compare_each"]
