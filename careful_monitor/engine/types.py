"""The engine's typed results: what one closed window produced, and the alerts it raised.

Frozen dataclasses and `StrEnum`s, no JSON: every adapter (store, Prometheus sink, HTTP API, alerts
topic, CLI `--json`) serialises them at its own boundary through `careful_monitor.contracts`, which
writes the JSON documents of ARCHITECTURE.md. Times are epoch seconds (floats), never strings.
Numbers are kept at full precision; rounding for display and storage happens at serialisation.

>>> FeatureKind("numeric") is FeatureKind.NUMERIC, PolicyState.ANCHOR_STALE.code, PolicyState.RETIRED.code
(True, 3, 4)
>>> PolicyState.RETIRE_RECOMMENDED.alerting, PolicyState.WATCH.alerting, PolicyState.RETIRED.alerting
(True, False, False)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar


class FeatureKind(StrEnum):
    """How a feature is profiled and compared."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    TEXT = "text"
    PROBS = "probs"


class PolicyState(StrEnum):
    """A (model, dataset) pair's state in the retirement policy; `code` is the `dataset_state` gauge value."""

    OK = "ok"
    WATCH = "watch"
    RETIRE_RECOMMENDED = "retire_recommended"
    ANCHOR_STALE = "anchor_stale"
    #: set from the dataset's lifecycle (`datasets retire`), never by evidence: no further alert for it
    RETIRED = "retired"

    @property
    def code(self) -> int:
        return _STATE_CODES[self]

    @property
    def alerting(self) -> bool:
        """Entering this state raises an alert."""
        return self in (PolicyState.RETIRE_RECOMMENDED, PolicyState.ANCHOR_STALE)


_STATE_CODES = {PolicyState.OK: 0, PolicyState.WATCH: 1, PolicyState.RETIRE_RECOMMENDED: 2, PolicyState.ANCHOR_STALE: 3,
                PolicyState.RETIRED: 4}


class DatasetRole(StrEnum):
    """What a registered dataset is in a training mix."""

    REAL = "real"
    SYNTHETIC = "synthetic"
    EVALUATION = "evaluation"


class LifecycleState(StrEnum):
    """A registered dataset's lifecycle (`datasets review|retire|reactivate`)."""

    ACTIVE = "active"
    UNDER_REVIEW = "under_review"
    RETIRED = "retired"


@dataclass(frozen=True, slots=True)
class TestResult:
    """One comparison: a statistic, its p-value and an effect size judged against a floor."""

    __test__: ClassVar[bool] = False  # a statistical test result, not a pytest test class
    test: str
    statistic: float
    p_value: float
    effect: float
    #: words the test points at (text tests): "+w" in more window documents / novel, "-w" in fewer
    tokens: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TestOutcome:
    """A comparison of one feature (or `joint`) of a window with one reference, and whether it was flagged."""

    __test__: ClassVar[bool] = False
    feature: str
    reference: str
    result: TestResult
    flagged: bool  # significant after BH and above its effect floor (anchor tests only)

    @property
    def test(self) -> str:
        return self.result.test


@dataclass(frozen=True, slots=True)
class Evidence:
    """A flagged anchor test, as an alert and a window result show it."""

    feature: str
    signal: str
    value: float
    p_value: float
    effect: float
    tokens: tuple[str, ...] = ()  # the words a text test points at (TestResult.tokens)


@dataclass(frozen=True, slots=True)
class QualityRate:
    """A data-quality rate of one feature in the window, beside the anchor's own."""

    feature: str
    signal: str  # null_rate | type_mismatch_rate | unseen_rate
    value: float
    anchor: float


@dataclass(frozen=True, slots=True)
class Attribution:
    """How the window's drift relates to one synthetic set: direction (affinity) and joint mixture share."""

    dataset: str
    affinity: float
    share: float | None  # the joint share; None when not identifiable (alone or within a group)
    share_se: float  # inf when the set cannot be told from the anchor
    identifiable: bool
    #: when the set cannot be told from other sets at this window size: the group's joint share, its SE
    group_share: float | None = None
    group_share_se: float | None = None
    indistinguishable_from: tuple[str, ...] = ()  # the group's other members


@dataclass(frozen=True, slots=True)
class WindowResult:
    """Everything the engine concluded about one closed window of one model."""

    model: str
    window: int
    window_start: float
    window_end: float
    n_events: int
    model_versions: tuple[str, ...]
    version: str | None  # the dominant model version
    flagged: bool
    flagged_features: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    tests: tuple[TestOutcome, ...]
    quality: tuple[QualityRate, ...]
    attribution: tuple[Attribution, ...]
    blamed: tuple[str, ...]
    states: Mapping[str, PolicyState]
    detector_hits: int
    #: the window's histogram on the anchor's grid of each flagged feature (numeric: the anchor's bins;
    #: categorical: its categories + other; text: its top-K tokens + other; probs: confidence bins),
    #: what the evidence pages plot against the references' stored histograms
    counts: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def attribution_of(self, dataset: str) -> Attribution | None:
        return next((a for a in self.attribution if a.dataset == dataset), None)


@dataclass(frozen=True, slots=True)
class Alert:
    """A transition into `retire_recommended` or `anchor_stale`: the dataset, the evidence, the action."""

    alert_id: str  # model:dataset:window:state, deterministic
    model: str
    dataset: str
    state: PolicyState
    since_window: int | None  # the window that entered `watch`
    window: int
    window_end: float  # event time of the window's last event
    created_at: float  # wall-clock time passed in by the caller
    model_versions: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    affinity: float | None  # None for anchor_stale
    share: float | None
    share_identifiable: bool
    action: str
    group_share: float | None = None  # the blamed group's joint share (None when the set is not grouped)
    indistinguishable_from: tuple[str, ...] = ()
