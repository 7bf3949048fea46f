"""Window tests: `compare(reference, window) -> TestResult(statistic, p_value, effect)`.

Every test compares one feature of one window with one reference profile. Tests run against the
anchor (and then take part in the window's Benjamini-Hochberg family) and against each synthetic
set (and then feed attribution and the dashboards). Collapse signatures in `engine.signals` follow
the same protocol, against the anchor only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from careful_monitor.engine.column import WindowColumn
from careful_monitor.engine.profile import FeatureProfile


@dataclass(frozen=True, slots=True)
class TestResult:
    """One comparison: a statistic, its p-value and an effect size judged against a floor."""

    __test__: ClassVar[bool] = False  # not a pytest test class
    test: str
    statistic: float
    p_value: float
    effect: float


class WindowTest(Protocol):
    """A two-sample test or signature of one feature: reference profile vs window column."""

    name: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]]
    effect_key: ClassVar[str]  # the key of its floor in policy.min_effect
    anchor_only: ClassVar[bool]

    def compare(self, ref: FeatureProfile, window: WindowColumn) -> TestResult | None:
        """None when the window holds too little for the test to mean anything."""
        ...
