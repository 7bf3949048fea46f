"""One model's monitor: columns of events -> windows -> tests -> flags -> attribution -> policy -> alerts.

Pure: time (`now`, wall clock for `created_at`) is passed in, event time comes from the events, and
the state can be snapshotted to bytes and restored, so a window left open by one replay is
continued by the next, and a Kafka worker resumes where the last one saved.
"""

from __future__ import annotations

import pickle
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

import numpy as np

from careful_monitor.engine.attribution import AttributionModel
from careful_monitor.engine.column import WindowColumn, reference_counts, summarise, summarise_probs
from careful_monitor.engine.detectors import make_detector
from careful_monitor.engine.fdr import benjamini_hochberg
from careful_monitor.engine.policy import STATE_CODES, Policy, Transition
from careful_monitor.engine.profile import CATEGORICAL, NUMERIC, PROBS, ProbsProfile, ReferenceProfile, probs_to_arrays
from careful_monitor.engine.tests import TestResult
from careful_monitor.engine.tests.joint import JointCorrelation
from careful_monitor.engine.tests.registry import SIGNATURE_NAMES, for_kind
from careful_monitor.engine.tests.wasserstein import Wasserstein

SNAPSHOT_VERSION = 1
MAX_EVIDENCE = 12


@dataclass(frozen=True)
class MonitorSpec:
    """What the monitor needs from the configuration (the engine never sees the config object)."""

    features: dict[str, str]
    window_size: int = 1000
    max_seconds: float = 3600.0
    min_size: int = 200
    fdr: float = 0.01
    watch_after: int = 1
    retire_after: int = 3
    clear_after: int = 10
    min_effect: dict[str, float] = field(default_factory=dict)
    min_affinity: float = 0.5
    min_share: float = 0.1
    max_share_se: float = 0.1
    detector: str = "cusum"
    cusum_threshold: float = 20.0
    cusum_drift: float = 0.25
    versions_per_model: int = 5


@dataclass
class ModelBatch:
    """Columnar events of one model: parallel lists, one entry per accepted event."""

    ts: list[float | None]
    versions: list[str | None]
    columns: dict[str, list[Any]]

    def __len__(self) -> int:
        return len(self.ts)


@dataclass
class WindowOutcome:
    """What closing one window produced: its stored result, transitions and alerts."""

    result: dict[str, Any]
    transitions: list[Transition]
    alerts: list[dict[str, Any]]
    tests: list[tuple[str, str, TestResult, bool]]  # feature, reference, result, flagged (anchor only)
    states: dict[str, str]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ModelMonitor:
    def __init__(self, model: str, spec: MonitorSpec, anchor: ReferenceProfile,
                 synthetic: dict[str, ReferenceProfile], snapshot: bytes | None = None) -> None:
        self.model, self.spec, self.anchor, self.synthetic = model, spec, anchor, synthetic
        self.features = {f: k for f, k in spec.features.items() if f in anchor.features}
        self.skipped = sorted(set(spec.features) - set(self.features))
        self._ref_feats = {name: {f: p for f, p in prof.features.items() if f in self.features}
                           for name, prof in synthetic.items()}
        self.attribution = AttributionModel(
            {f: reference_counts(anchor.features[f]) for f in self.features},
            {name: {f: reference_counts(p) for f, p in feats.items()} for name, feats in self._ref_feats.items()},
            max_share_se=spec.max_share_se,
        )
        self._joint = JointCorrelation()
        self._joint_features = [f for f in (anchor.joint.features if anchor.joint else []) if f in self.features]
        self.detector_feature = next((f for f, k in self.features.items() if k == PROBS), None)
        # the open window and everything that must survive a restart
        self.window_index = 0
        self.events_seen = 0
        self._pending_detector: int | None = None
        self.last_ts: float | None = None
        self._reset_window()
        self.policy = Policy(list(synthetic), anchor.name, spec.watch_after, spec.retire_after, spec.clear_after)
        self.detector = None
        self.version_order: list[str] = []
        if self.detector_feature:
            conf = anchor.features[self.detector_feature]
            assert isinstance(conf, ProbsProfile)
            self.detector = make_detector(spec.detector, mean=conf.confidence.mean, sd=conf.confidence.std,
                                          threshold=spec.cusum_threshold, drift=spec.cusum_drift)
        if snapshot is not None:
            self.restore(snapshot)

    # --- state -------------------------------------------------------------------------------
    def _reset_window(self) -> None:
        self.cols: dict[str, list[Any]] = {f: [] for f in self.features}
        self.n_open = 0
        self.first_ts: float | None = None
        self.open_last_ts: float | None = None
        self.versions: Counter[str] = Counter()
        self.detector_hits = 0
        # confidence / entropy of the probs feature, computed once per batch slice (detector + window)
        self.probs_parts: list[tuple[np.ndarray, np.ndarray, int, int]] = []

    def snapshot(self) -> bytes:
        state = {"v": SNAPSHOT_VERSION, "window_index": self.window_index, "events_seen": self.events_seen,
                 "last_ts": self.last_ts, "cols": self.cols, "n_open": self.n_open, "first_ts": self.first_ts,
                 "open_last_ts": self.open_last_ts, "versions": dict(self.versions),
                 "detector_hits": self.detector_hits, "policy": self.policy.states, "detector": self.detector,
                 "version_order": self.version_order, "pending_detector": self._pending_detector,
                 "probs_parts": self.probs_parts}
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, blob: bytes) -> None:
        state = pickle.loads(blob)
        if state.get("v") != SNAPSHOT_VERSION:
            raise ValueError(f"engine snapshot version {state.get('v')} is not {SNAPSHOT_VERSION}")
        self.window_index, self.events_seen, self.last_ts = state["window_index"], state["events_seen"], state["last_ts"]
        self.cols = {f: state["cols"].get(f, [None] * state["n_open"]) for f in self.features}
        self.n_open, self.first_ts, self.open_last_ts = state["n_open"], state["first_ts"], state["open_last_ts"]
        self.versions = Counter(state["versions"])
        self.detector_hits = state["detector_hits"]
        for name, st in state["policy"].items():
            if name in self.policy.states:
                self.policy.states[name] = st
        if state["detector"] is not None and self.detector is not None and type(state["detector"]) is type(self.detector):
            self.detector = state["detector"]
        self.version_order = state["version_order"]
        self._pending_detector = state.get("pending_detector")
        self.probs_parts = state.get("probs_parts", [])

    @property
    def open_events(self) -> int:
        return self.n_open

    def states(self) -> dict[str, str]:
        return {name: st.state for name, st in self.policy.states.items()}

    # --- ingestion ---------------------------------------------------------------------------
    def _fill_ts(self, ts: Sequence[float | None]) -> np.ndarray:
        if all(t is not None for t in ts):
            arr = np.asarray(ts, dtype=float)
        else:
            out, prev = [], self.last_ts
            for t in ts:
                prev = t if t is not None else prev
                out.append(prev if prev is not None else 0.0)
            arr = np.asarray(out, dtype=float)
        if len(arr):
            self.last_ts = float(arr[-1])
        return arr

    def _note_versions(self, versions: Sequence[str | None]) -> None:
        for v in set(versions):
            if v is None:
                continue
            if v in self.version_order:
                self.version_order.remove(v)
            self.version_order.append(v)
        del self.version_order[:-self.spec.versions_per_model]

    def process(self, batch: ModelBatch, now: float) -> list[WindowOutcome]:
        """Add a batch of this model's events; return the outcome of every window it closed."""
        n = len(batch)
        if n == 0:
            return []
        ts = self._fill_ts(batch.ts)
        self._note_versions(batch.versions)
        self.events_seen += n
        out: list[WindowOutcome] = []
        i = 0
        size, min_size, max_s = self.spec.window_size, self.spec.min_size, self.spec.max_seconds
        while i < n:
            first = self.first_ts if self.first_ts is not None else float(ts[i])
            room = size - self.n_open
            seg = ts[i:i + room]
            late = (seg - first) > max_s
            late &= (self.n_open + np.arange(len(seg))) >= min_size
            j = int(np.argmax(late)) if late.any() else len(seg)
            if j > 0:
                self._append(batch, i, i + j, ts)
            i += j
            if late.any() or self.n_open >= size:
                out.append(self._close(now))
        return out

    def _append(self, batch: ModelBatch, lo: int, hi: int, ts: np.ndarray) -> None:
        for f, col in self.cols.items():
            src = batch.columns.get(f)
            col.extend(src[lo:hi] if src is not None else [None] * (hi - lo))
        if self.first_ts is None:
            self.first_ts = float(ts[lo])
        self.open_last_ts = float(ts[hi - 1])
        self.n_open += hi - lo
        self.versions.update(v for v in batch.versions[lo:hi] if v is not None)
        if self.detector_feature:
            conf, ent, _, nulls, bad = probs_to_arrays(batch.columns.get(self.detector_feature, [])[lo:hi])
            self.probs_parts.append((conf, ent, nulls, bad))
        if self.detector is not None and self.detector_feature:
            hits = self.detector.update_many(conf)
            if hits:
                self.detector_hits += len(hits)
                self._pending_detector = getattr(self.detector, "direction", 0)

    def flush(self, now: float) -> list[WindowOutcome]:
        """Close the open window if it holds at least `min_size` events (end of a replay)."""
        if self.n_open >= self.spec.min_size:
            return [self._close(now)]
        return []

    # --- one window --------------------------------------------------------------------------
    def _close(self, now: float) -> WindowOutcome:
        spec = self.spec
        floors = spec.min_effect
        tests: list[tuple[str, str, TestResult]] = []
        anchor_tests: list[tuple[str, TestResult]] = []
        quality: list[dict[str, Any]] = []
        window_counts: dict[str, np.ndarray] = {}
        raw_numeric: dict[str, np.ndarray] = {}
        for f, kind in self.features.items():
            values = self.cols[f]
            aprof = self.anchor.features[f]
            if f == self.detector_feature and sum(len(p[0]) + p[2] + p[3] for p in self.probs_parts) == len(values):
                col = summarise_probs(self.probs_parts, aprof, len(values))  # type: ignore[arg-type]
            else:
                col = summarise(values, aprof)
            window_counts[f] = col.counts
            if kind == NUMERIC and f in self._joint_features:
                aligned = col.extra.get("aligned")
                raw_numeric[f] = aligned if aligned is not None else _aligned_floats(values)
            for t in for_kind(kind, anchor=True):
                r = t.compare(aprof, col)
                if r is not None:
                    anchor_tests.append((f, r))
                    tests.append((f, self.anchor.name, r))
            scale = _anchor_sd(aprof)
            for name, feats in self._ref_feats.items():
                sprof = feats.get(f)
                if sprof is None:
                    continue
                for t in for_kind(kind, anchor=False):
                    tt = Wasserstein(scale) if t.name == "wasserstein" else t
                    r = tt.compare(sprof, col)
                    if r is not None:
                        tests.append((f, name, r))
            quality.extend(_quality(f, kind, col, aprof))
        jr = self._joint.compare_rows(self.anchor, raw_numeric) if raw_numeric else None
        if jr is not None:
            anchor_tests.append(("joint", jr))
            tests.append(("joint", self.anchor.name, jr))
        rejected = benjamini_hochberg([r.p_value for _, r in anchor_tests], spec.fdr)
        flagged_set = set()
        evidence = []
        for (f, r), rej in zip(anchor_tests, rejected):
            if rej and r.effect >= floors.get(_effect_key(r.test), 0.0):
                flagged_set.add((f, r.test))
                evidence.append({"feature": f, "signal": r.test, "value": _r(r.statistic), "p_value": _p(r.p_value),
                                 "effect": _r(r.effect)})
        evidence = _interleave(evidence)
        flagged_features = sorted({f for f, _ in flagged_set})
        attributions = self.attribution.attribute(window_counts)
        blamed = set()
        if flagged_set:
            for a in attributions:
                if a.identifiable and a.affinity >= spec.min_affinity and (a.share or 0.0) >= spec.min_share:
                    blamed.add(a.dataset)
            if not blamed:
                blamed.add(self.anchor.name)
        index = self.window_index
        transitions = []
        pending = self._pending_detector
        if pending is not None:
            transitions += self.policy.detector_watch(index, self._detector_suspects(pending))
            self._pending_detector = None
        transitions += self.policy.step(index, blamed)
        versions = sorted(self.versions)
        dominant = self.versions.most_common(1)[0][0] if self.versions else None
        states = self.states()
        result = {
            "model": self.model, "window": index, "window_start": self.first_ts, "window_end": self.open_last_ts,
            "n_events": self.n_open, "model_versions": versions, "version": dominant,
            "flagged": bool(flagged_set), "flagged_features": flagged_features,
            "evidence": evidence[:MAX_EVIDENCE],
            "tests": [{"feature": f, "reference": ref, "test": r.test, "statistic": _r(r.statistic),
                       "p_value": _p(r.p_value), "effect": _r(r.effect),
                       "flagged": ref == self.anchor.name and (f, r.test) in flagged_set} for f, ref, r in tests],
            "quality": quality,
            "attribution": [a.to_dict() for a in attributions],
            "blamed": sorted(blamed), "states": states, "detector_hits": self.detector_hits,
        }
        att = {a.dataset: a for a in attributions}
        alerts = []
        for t in transitions:
            if not t.alerting:
                continue
            a = att.get(t.dataset)
            is_anchor = t.dataset == self.anchor.name
            alerts.append({
                "alert_id": f"{self.model}:{t.dataset}:{index}:{t.to_state}", "model": self.model,
                "dataset": t.dataset, "state": t.to_state, "since_window": t.since_window, "window": index,
                "window_end": iso(self.open_last_ts or 0.0), "created_at": iso(now), "model_versions": versions,
                "evidence": evidence[:MAX_EVIDENCE],
                "affinity": None if is_anchor or a is None else _r(a.affinity),
                "share": None if is_anchor or a is None or a.share is None else _r(a.share),
                "share_identifiable": False if is_anchor or a is None else a.identifiable,
                "action": _action(self.model, t.dataset, is_anchor),
                "acked_by": None, "acked_at": None,
            })
        flagged_tests = [(f, ref, r, ref == self.anchor.name and (f, r.test) in flagged_set) for f, ref, r in tests]
        self.window_index += 1
        self._reset_window()
        return WindowOutcome(result, transitions, alerts, flagged_tests, states)

    def _detector_suspects(self, direction: int) -> list[str]:
        """Which datasets a confidence shift points at: synthetic sets whose confidence moved that way."""
        f = self.detector_feature
        a = self.anchor.features[f]
        assert isinstance(a, ProbsProfile)
        out = []
        for name, feats in self._ref_feats.items():
            s = feats.get(f)
            if isinstance(s, ProbsProfile) and direction * (s.confidence.mean - a.confidence.mean) > 0.02:
                out.append(name)
        return out or [self.anchor.name]


def state_code(state: str) -> int:
    return STATE_CODES[state]


def _interleave(evidence: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Order evidence so the first items cover every flagged feature: per feature, collapse
    signatures before generic tests, then by p-value; then round-robin across features."""
    per: dict[str, list[dict[str, Any]]] = {}
    for e in sorted(evidence, key=lambda e: (e["signal"] not in SIGNATURE_NAMES, e["p_value"], -e["effect"])):
        per.setdefault(e["feature"], []).append(e)
    features = sorted(per, key=lambda f: per[f][0]["p_value"])
    out = []
    for i in range(max((len(v) for v in per.values()), default=0)):
        out.extend(per[f][i] for f in features if i < len(per[f]))
    return out


def _effect_key(test: str) -> str:
    from careful_monitor.engine.tests.registry import SIGNATURES, TESTS

    for t in (*TESTS, *SIGNATURES):
        if t.name == test:
            return t.effect_key
    return test


def _anchor_sd(prof) -> float:
    if isinstance(prof, ProbsProfile):
        return prof.confidence.std
    return getattr(prof, "std", 1.0) or 1.0


def _aligned_floats(values: list[Any]) -> np.ndarray:
    try:
        return np.array(values, dtype=float)
    except (TypeError, ValueError):
        return np.array([v if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan for v in values], dtype=float)


def _quality(f: str, kind: str, col: WindowColumn, aprof) -> list[dict[str, Any]]:
    total = max(col.total, 1)
    q = [{"feature": f, "signal": "null_rate", "value": _r(col.nulls / total), "anchor": _r(aprof.null_rate)},
         {"feature": f, "signal": "type_mismatch_rate", "value": _r(col.mismatches / total), "anchor": 0.0}]
    if kind == CATEGORICAL and col.n:
        q.append({"feature": f, "signal": "unseen_rate", "value": _r(col.counts[-1] / col.n),
                  "anchor": _r(aprof.counts[-1] / max(aprof.counts.sum(), 1))})
    return q


def _action(model: str, dataset: str, is_anchor: bool) -> str:
    if is_anchor:
        return (f"refresh the anchor {dataset}: register a current real dataset and set models.{model}.anchor "
                f"to it; live data moved away from it in a way no synthetic set explains")
    return f"retire {dataset} from the next training mix of {model}"


def _r(x: float) -> float:
    return float(round(float(x), 6))


def _p(p: float) -> float:
    return float(f"{float(p):.6g}")


__all__ = ["ModelMonitor", "MonitorSpec", "ModelBatch", "WindowOutcome", "SIGNATURE_NAMES", "state_code"]
