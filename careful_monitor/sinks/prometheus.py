"""Every Prometheus metric careful-monitor exports, declared once, on a registry passed in.

Label values come only from the configuration (model, feature, reference, dataset), from fixed
sets (outcome, reason, state, signal, test), from Kafka's assignment (topic, partition) or from the
last `limits.versions_per_model` model versions; never from an event id or an unknown model.
Children are cached, so a window's update is a dictionary lookup and a `set` per series.

No `*_created` series: prometheus_client 0.26 can only switch them off process-wide
(`disable_created_metrics()`), so the exposition filters them out of this registry instead and
nothing global changes. The monitor's own `process_*` (RSS, CPU, open fds) and `python_info` are on
the same registry (ProcessCollector, PlatformCollector).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector, ProcessCollector
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from careful_monitor import __version__
from careful_monitor.engine.comparisons.catalogue import SIGNATURE_NAMES
from careful_monitor.engine.monitor import WindowOutcome

NAMESPACE = "careful_monitor"


_Set = Callable[[float], None]  # a metric child's bound `set`


class _WithoutCreated(Collector):
    """A registry's collection without the `*_created` samples of counters and histograms."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        for m in self.registry.collect():
            if m.type in ("counter", "histogram", "summary", "gaugehistogram"):
                m.samples = [s for s in m.samples if not s.name.endswith("_created")]
            yield m


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None, versions_kept: int = 5) -> None:
        self.versions_kept = versions_kept
        r = self.registry = registry or CollectorRegistry(auto_describe=True)
        self.events = Counter("events",
                              "Events read, by configured model and outcome (accepted|rejected|duplicate: an "
                              "event id seen before, dropped; not a dead letter); events naming an unknown model, "
                              "or too broken to name one, are only in dead_letters_total.",
                              ["model", "outcome"], namespace=NAMESPACE, registry=r)
        self.windows = Counter("windows", "Windows closed and evaluated.", ["model"], namespace=NAMESPACE, registry=r)
        self.drift_statistic = Gauge("drift_statistic",
                                     "Last window's test statistic per feature, reference and test; each test has "
                                     "its own scale (KS, chi-square, PSI, ...), so never aggregate across `test`.",
                                     ["model", "feature", "reference", "test"], namespace=NAMESPACE, registry=r)
        self.drift_p_value = Gauge("drift_p_value", "Last window's p-value per feature, reference and test.",
                                   ["model", "feature", "reference", "test"], namespace=NAMESPACE, registry=r)
        self.drift_detected = Gauge("drift_detected",
                                    "1 when a feature was flagged (BH + effect floor) in the last window.",
                                    ["model", "feature"], namespace=NAMESPACE, registry=r)
        self.collapse_signal = Gauge("collapse_signal",
                                     "Collapse signature value in the last window, against the anchor.",
                                     ["model", "feature", "signal"], namespace=NAMESPACE, registry=r)
        self.collapse_by_version = Gauge("collapse_signal_by_version",
                                         "Collapse signature of the last window dominated by each model version.",
                                         ["model", "version", "feature", "signal"], namespace=NAMESPACE, registry=r)
        self.collapse_trend = Gauge("collapse_signal_version_trend",
                                    "Slope of a collapse signature across the model's recent versions "
                                    "(per version step).",
                                    ["model", "feature", "signal"], namespace=NAMESPACE, registry=r)
        self._per_version: dict[tuple[str, str, str], dict[str, float]] = {}
        self.data_quality = Gauge("data_quality",
                                  "Data-quality rates in the last window (null_rate, type_mismatch_rate, unseen_rate).",
                                  ["model", "feature", "signal"], namespace=NAMESPACE, registry=r)
        self.affinity = Gauge("synthetic_affinity",
                              "Cosine between the window's drift and the direction toward a synthetic set.",
                              ["model", "dataset"], namespace=NAMESPACE, registry=r)
        self.share = Gauge("synthetic_share",
                           "Estimated share of a synthetic set in the window (NaN when not identifiable).",
                           ["model", "dataset"], namespace=NAMESPACE, registry=r)
        self.share_se = Gauge("synthetic_share_stderr", "Standard error of synthetic_share.", ["model", "dataset"],
                              namespace=NAMESPACE, registry=r)
        self.group_share = Gauge("synthetic_group_share",
                                 "Joint share of the group of synthetic sets the window cannot tell this one from "
                                 "(NaN when it is not grouped; synthetic_share is then NaN).",
                                 ["model", "dataset"], namespace=NAMESPACE, registry=r)
        self.dataset_state = Gauge("dataset_state",
                                   "Policy state: 0 ok, 1 watch, 2 retire_recommended, 3 anchor_stale, 4 retired.",
                                   ["model", "dataset"], namespace=NAMESPACE, registry=r)
        self.governance_violations = Gauge("governance_violations",
                                           "1 per (model, dataset, rule) the config breaks in governance.mode: warn "
                                           "(rule: careful_monitor.governance.RULES).",
                                           ["model", "dataset", "rule"], namespace=NAMESPACE, registry=r)
        self.isolation = Gauge("isolation_contamination_ratio",
                               "Share of an evaluation set's rows that are exact or near duplicates of rows of a "
                               "dataset it must be isolated from (last `datasets isolation` or registration check).",
                               ["evaluation", "dataset"], namespace=NAMESPACE, registry=r)
        self.review_due = Gauge("dataset_review_due_timestamp_seconds",
                                "When the dataset's next review is due (unix time): its last lifecycle decision "
                                "(registration, review, reactivation) plus the card's lifecycle.review_every_days.",
                                ["dataset"], namespace=NAMESPACE, registry=r)
        self.alerts = Counter("retirement_alerts", "Alerts raised (retire_recommended and anchor_stale).",
                              ["model", "dataset"], namespace=NAMESPACE, registry=r)
        self.dead_letters = Counter("dead_letters", "Rejected events, by reason.", ["reason"], namespace=NAMESPACE,
                                    registry=r)
        self.event_lag = Gauge("event_lag", "Wall-clock time minus the event time of the model's latest event.",
                               ["model"], unit="seconds", namespace=NAMESPACE, registry=r)
        self.last_event = Gauge("last_event_timestamp", "Event time of the model's latest event.", ["model"],
                                unit="seconds", namespace=NAMESPACE, registry=r)
        self.consumer_lag = Gauge("consumer_lag",
                                  "Messages (a count, not seconds) behind the end of each assigned partition.",
                                  ["topic", "partition"], namespace=NAMESPACE, registry=r)
        self.window_seconds = Histogram("window_processing", "Time to evaluate one closed window.", unit="seconds",
                                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
                                        namespace=NAMESPACE, registry=r)
        self.open_window = Gauge("open_window_events", "Events in the model's open window.", ["model"],
                                 namespace=NAMESPACE, registry=r)
        self.ready = Gauge("ready", "1 when the service can process and persist events.", namespace=NAMESPACE,
                           registry=r)
        self.build_info = Gauge("build_info", "Build information.", ["version"], namespace=NAMESPACE, registry=r)
        self.build_info.labels(__version__).set(1)
        with contextlib.suppress(ValueError):  # a registry passed in may already hold them
            ProcessCollector(registry=r)
        with contextlib.suppress(ValueError):
            PlatformCollector(registry=r)
        for reason in ("decode", "schema", "unknown_model", "too_large"):
            self.dead_letters.labels(reason)  # present at 0 from the start, so rate() works
        self._children: dict[tuple, object] = {}
        #: (model, feature, reference, test) -> the `set` of its drift_statistic and drift_p_value children: a
        #: window sets hundreds of them, one dict lookup each (these series are never removed)
        self._test_setters: dict[tuple[str, str, str, str], tuple[_Set, _Set]] = {}
        #: per model: versions with collapse_signal_by_version series, in the order last set (insertion-ordered)
        self._versions_seen: dict[str, dict[str, None]] = {}

    def _child(self, metric, *labels):
        key = (id(metric), labels)
        c = self._children.get(key)
        if c is None:
            c = self._children[key] = metric.labels(*labels)
        return c

    def init_model(self, model: str, datasets: Iterable[str]) -> None:
        for outcome in ("accepted", "rejected", "duplicate"):
            self._child(self.events, model, outcome)
        self._child(self.windows, model)
        for d in datasets:
            self._child(self.dataset_state, model, d).set(0)
            self._child(self.alerts, model, d)

    def count_events(self, model: str, accepted: int, rejected: int = 0, duplicate: int = 0) -> None:
        if accepted:
            self._child(self.events, model, "accepted").inc(accepted)
        if rejected:
            self._child(self.events, model, "rejected").inc(rejected)
        if duplicate:
            self._child(self.events, model, "duplicate").inc(duplicate)

    def governance_violation(self, model: str, dataset: str, rule: str) -> None:
        """A violation the service started with (governance.mode: warn); labels come from the config."""
        self._child(self.governance_violations, model, dataset, rule).set(1)

    def set_isolation(self, rates: Iterable[tuple[str, str, float]]) -> None:
        """Export stored isolation results, (evaluation, dataset, rate) each (`isolation.rates(store)`).

        Replaces what was exported: a pair no longer checked disappears.
        """
        self.isolation.clear()
        for evaluation, dataset, rate in rates:
            self.isolation.labels(evaluation, dataset).set(rate)

    def set_review_due(self, due: Iterable[tuple[str, float]]) -> None:
        """Export (dataset, due unix time) pairs (`governance.review_due`), replacing what was exported."""
        self.review_due.clear()
        for dataset, at in due:
            self.review_due.labels(dataset).set(at)

    def count_dead_letter(self, reason: str, n: int = 1) -> None:
        self._child(self.dead_letters, reason).inc(n)

    def event_time(self, model: str, last_ts: float | None, now: float, open_events: int) -> None:
        if last_ts is not None:
            self._child(self.last_event, model).set(last_ts)
            self._child(self.event_lag, model).set(max(0.0, now - last_ts))
        self._child(self.open_window, model).set(open_events)

    def window(self, model: str, outcome: WindowOutcome, seconds: float) -> None:
        c = self._child
        c(self.windows, model).inc()
        self.window_seconds.observe(seconds)
        result = outcome.result
        version = result.version
        flagged_features = set(result.flagged_features)
        features: dict[str, None] = {}
        setters = self._test_setters
        for t in result.tests:
            feature, reference, r = t.feature, t.reference, t.result
            found = setters.get((model, feature, reference, r.test))
            if found is None:
                found = setters[(model, feature, reference, r.test)] = (
                    c(self.drift_statistic, model, feature, reference, r.test).set,
                    c(self.drift_p_value, model, feature, reference, r.test).set)
            found[0](r.statistic)
            found[1](r.p_value)
            features[feature] = None
            if r.test in SIGNATURE_NAMES:
                c(self.collapse_signal, model, feature, r.test).set(r.statistic)
                if version is not None:
                    self._note_version(model, version)
                    c(self.collapse_by_version, model, version, feature, r.test).set(r.statistic)
                    self._trend(model, version, feature, r.test, r.statistic)
        for feature in features:  # once per feature, not once per test of it
            c(self.drift_detected, model, feature).set(1 if feature in flagged_features else 0)
        for q in result.quality:
            c(self.data_quality, model, q.feature, q.signal).set(q.value)
        for a in result.attribution:
            c(self.affinity, model, a.dataset).set(a.affinity)
            c(self.share, model, a.dataset).set(float("nan") if a.share is None else a.share)
            c(self.share_se, model, a.dataset).set(a.share_se if a.share_se != float("inf") else float("nan"))
            c(self.group_share, model, a.dataset).set(float("nan") if a.group_share is None else a.group_share)
        for dataset, state in result.states.items():
            c(self.dataset_state, model, dataset).set(state.code)
        for alert in outcome.alerts:
            c(self.alerts, model, alert.dataset).inc()

    def _trend(self, model: str, version: str, feature: str, signal: str, value: float) -> None:
        """Least-squares slope of the signature over versions in the order they appeared."""
        per = self._per_version.setdefault((model, feature, signal), {})
        per.pop(version, None)
        per[version] = value
        while len(per) > self.versions_kept:
            per.pop(next(iter(per)))
        if len(per) >= 2:
            y = list(per.values())
            n = len(y)
            xm, ym = (n - 1) / 2, sum(y) / n
            slope = sum((i - xm) * (v - ym) for i, v in enumerate(y)) / sum((i - xm) ** 2 for i in range(n))
            self._child(self.collapse_trend, model, feature, signal).set(slope)

    def _note_version(self, model: str, version: str) -> None:
        """Keep at most `versions_kept` versions exported per model: the most recent; older ones are dropped."""
        seen = self._versions_seen.setdefault(model, {})
        if version in seen:
            if next(reversed(seen)) == version:
                return
            del seen[version]
        seen[version] = None
        while len(seen) > self.versions_kept:
            self.drop_version(model, next(iter(seen)))

    def keep_versions(self, model: str, keep: Iterable[str]) -> None:
        """Drop every exported version series of `model` not in `keep` (the engine's last versions)."""
        kept = set(keep)
        for v in [v for v in self._versions_seen.get(model, {}) if v not in kept]:
            self.drop_version(model, v)

    def exported_versions(self, model: str) -> list[str]:
        """Versions of `model` with collapse_signal_by_version series, oldest first."""
        return list(self._versions_seen.get(model, {}))

    def drop_version(self, model: str, version: str) -> None:
        """Forget series of a model version that fell out of the last `versions_per_model`."""
        for key in [k for k in self._children if k[0] == id(self.collapse_by_version) and k[1][:2] == (model, version)]:
            labels = key[1]
            with contextlib.suppress(KeyError):
                self.collapse_by_version.remove(*labels)
            del self._children[key]
        self._versions_seen.get(model, {}).pop(version, None)

    def exposition(self) -> bytes:
        return generate_latest(_WithoutCreated(self.registry))
