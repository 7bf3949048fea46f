"""One model's monitor: columns of events -> windows -> comparisons -> flags -> attribution -> policy -> alerts.

The steps live in their own modules: `window` buffers the open window, `evaluate` runs the
comparisons, BH and effect floors, `attribution` points drift at synthetic sets, `policy` turns
evidence into states. This module orchestrates them and builds the typed `WindowResult` and
`Alert`s. Pure: wall-clock time (`now`, for `created_at`) is passed in, event time comes from
the events, and the state is snapshotted to a data-only codec (`engine.state`) and restored, so
a window left open by one replay is continued by the next, and a Kafka worker resumes where the
last one saved.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from careful_monitor.engine.attribution import AttributionModel, JointReferences
from careful_monitor.engine.column import reference_counts
from careful_monitor.engine.comparisons.embedding_mmd import TextEmbedder, embedding_tests
from careful_monitor.engine.detectors import StreamingDetector, make_detector
from careful_monitor.engine.evaluate import evaluate_window
from careful_monitor.engine.policy import Policy, Transition
from careful_monitor.engine.profile import CATEGORICAL, NUMERIC, PROBS, TEXT, ProbsProfile, ReferenceProfile
from careful_monitor.engine.state import decode_state, encode_state
from careful_monitor.engine.types import Alert, Attribution, PolicyState, WindowResult
from careful_monitor.engine.window import ModelBatch, OpenWindow

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
    attribution_seed: int = 20261202  # the joint attribution block's random features (same in every process)
    #: optional semantic embeddings (`comparisons.embedding_mmd`, used only when an embedder is handed in): at
    #: most this many texts of a window are embedded, drawn by a generator seeded with (seed, window index)
    embedding_sample: int = 256
    embedding_seed: int = 20261204


@dataclass(frozen=True, slots=True)
class WindowOutcome:
    """What closing one window produced: its result, the policy transitions and the alerts they raised."""

    result: WindowResult
    transitions: tuple[Transition, ...]
    alerts: tuple[Alert, ...]


class ModelMonitor:
    def __init__(self, model: str, spec: MonitorSpec, anchor: ReferenceProfile,
                 synthetic: dict[str, ReferenceProfile], snapshot: bytes | None = None, *,
                 embedder: TextEmbedder | None = None) -> None:
        self.model, self.spec, self.anchor, self.synthetic = model, spec, anchor, synthetic
        self.embedder = embedder
        self.features = {f: k for f, k in spec.features.items() if f in anchor.features}
        self.skipped = sorted(set(spec.features) - set(self.features))
        self._ref_feats = {name: {f: p for f, p in prof.features.items() if f in self.features}
                           for name, prof in synthetic.items()}
        self.attribution = AttributionModel(
            {f: reference_counts(anchor.features[f]) for f in self.features},
            {name: {f: reference_counts(p) for f, p in feats.items()} for name, feats in self._ref_feats.items()},
            max_share_se=spec.max_share_se,
            joint=JointReferences.from_profiles(anchor, synthetic,
                                                [f for f, k in self.features.items() if k in (NUMERIC, CATEGORICAL)]),
            rng=np.random.default_rng(spec.attribution_seed),
        )
        self._joint_features = frozenset(f for f in (anchor.joint.names if anchor.joint else [])
                                         if f in self.features)
        # the monitored text features whose anchor embedding sample this embedder can be compared with
        self.embedded = {f: e for f, e in anchor.embeddings.items()
                         if embedder is not None and self.features.get(f) == TEXT
                         and (e.model, e.revision) == (embedder.model, embedder.revision)}
        self.detector_feature = next((f for f, k in self.features.items() if k == PROBS), None)
        # the open window and everything that must survive a restart
        self.window_index = 0
        self.events_seen = 0
        self._pending_detector: int | None = None  # direction of a detection not yet acted on
        self.last_ts: float | None = None
        self.window = self._new_window()
        self.policy = Policy(list(synthetic), anchor.name, spec.watch_after, spec.retire_after, spec.clear_after)
        self.detector: StreamingDetector | None = None
        self.version_order: list[str] = []
        if self.detector_feature:
            conf = anchor.features[self.detector_feature]
            assert isinstance(conf, ProbsProfile)
            self.detector = make_detector(spec.detector, mean=conf.confidence.mean, sd=conf.confidence.std,
                                          threshold=spec.cusum_threshold, drift=spec.cusum_drift)
        self.detector_baseline = self._baseline()
        if snapshot is not None:
            self.restore(snapshot)

    # --- state -------------------------------------------------------------------------------
    def _new_window(self) -> OpenWindow:
        return OpenWindow(list(self.features), self.detector_feature)

    def _baseline(self) -> str | None:
        """A digest of what the per-event detector is calibrated on: the anchor's profile of its signal."""
        if self.detector_feature is None:
            return None
        conf = self.anchor.features[self.detector_feature]
        assert isinstance(conf, ProbsProfile)
        c = conf.confidence
        h = hashlib.blake2b(f"{self.anchor.name}\0{c.n}\0{c.mean!r}\0{c.std!r}\0".encode(), digest_size=16)
        h.update(np.ascontiguousarray(c.quantiles, dtype="<f8").tobytes())
        return h.hexdigest()

    def snapshot(self) -> bytes:
        """Everything that must survive a restart, in the data-only codec of `engine.state`."""
        return encode_state({
            "window_index": self.window_index, "events_seen": self.events_seen, "last_ts": self.last_ts,
            "window": self.window.state(), "policy": self.policy.state(),
            "detector": None if self.detector is None else {"kind": self.spec.detector, **self.detector.state()},
            "version_order": self.version_order, "pending_detector": self._pending_detector,
            "detector_baseline": self.detector_baseline,
        })

    def restore(self, blob: bytes) -> None:
        state = decode_state(blob, self.model)
        self.window_index, self.events_seen, self.last_ts = (state["window_index"], state["events_seen"],
                                                             state["last_ts"])
        self.window = OpenWindow.from_state(state["window"], list(self.features), self.detector_feature)
        self.policy.restore(state["policy"])
        saved = state["detector"]
        self.version_order = list(state["version_order"])
        if state.get("detector_baseline") != self.detector_baseline:
            # the anchor was replaced (or the snapshot predates the digest): what the detector accumulated,
            # and a detection not yet acted on, measured the live stream against the old anchor
            self.window.detector_hits = 0
            return
        if saved is not None and self.detector is not None and saved.get("kind") == self.spec.detector:
            self.detector.restore(saved)
        self._pending_detector = state["pending_detector"]

    @property
    def open_events(self) -> int:
        return self.window.n

    @property
    def n_open(self) -> int:
        return self.window.n

    def apply_lifecycle(self, retired: set[str]) -> list[str]:
        """The registry's retired datasets become `retired` (no evidence, no alert; still attributed); others
        leave `retired` for `ok`. Returns the datasets whose state changed."""
        return self.policy.set_retired(retired)

    def states(self) -> dict[str, PolicyState]:
        return {name: st.state for name, st in self.policy.states.items()}

    # --- ingestion ---------------------------------------------------------------------------
    def _fill_ts(self, ts: Sequence[float | None]) -> np.ndarray:
        if None not in ts:  # one C-level scan, no per-event Python
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
        for v in dict.fromkeys(versions):  # first-appearance order (a set would be arbitrary)
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
            w = self.window
            first = w.first_ts if w.first_ts is not None else float(ts[i])
            seg = ts[i:i + size - w.n]
            late = (seg - first) > max_s
            late &= (w.n + np.arange(len(seg))) >= min_size
            j = int(np.argmax(late)) if late.any() else len(seg)
            if j > 0:
                self._append(batch, i, i + j, ts)
            i += j
            if late.any() or self.window.n >= size:
                out.append(self._close(now))
        return out

    def _append(self, batch: ModelBatch, lo: int, hi: int, ts: np.ndarray) -> None:
        conf = self.window.append(batch, lo, hi, ts)
        if self.detector is not None and conf is not None:
            hits = self.detector.update_many(conf)
            if hits:
                self.window.detector_hits += len(hits)
                self._pending_detector = self.detector.direction

    def flush(self, now: float) -> list[WindowOutcome]:
        """Close the open window if it holds at least `min_size` events (end of a replay)."""
        if self.window.n >= self.spec.min_size:
            return [self._close(now)]
        return []

    # --- one window --------------------------------------------------------------------------
    def _close(self, now: float) -> WindowOutcome:
        spec, w, index = self.spec, self.window, self.window_index
        embedded = (embedding_tests(w.cols, self.embedded, self.embedder, sample=spec.embedding_sample,
                                    rng=np.random.default_rng([spec.embedding_seed, index]))
                    if self.embedder is not None and self.embedded else [])
        ev = evaluate_window(
            w.cols, self.features, self.anchor, self._ref_feats, fdr=spec.fdr, min_effect=spec.min_effect,
            probs_feature=self.detector_feature,
            probs_parts=w.probs_parts if self.detector_feature and w.probs_parts_complete() else None,
            joint_features=self._joint_features, embedded=embedded)
        joint = self.attribution.joint_columns(ev.joint_features, ev.joint_scores, ev.joint_codes)
        attributions = tuple(self.attribution.attribute(ev.window_counts, joint_scores=joint[0] if joint else None,
                                                        joint_codes=joint[1] if joint else None))
        blamed = self._blame(ev.flagged, attributions)
        transitions: list[Transition] = []
        if self._pending_detector is not None:
            transitions += self.policy.detector_watch(index, self._detector_suspects(self._pending_detector))
            self._pending_detector = None
        transitions += self.policy.step(index, blamed)
        versions = tuple(sorted(w.versions))
        evidence = ev.evidence[:MAX_EVIDENCE]
        result = WindowResult(
            model=self.model, window=index, window_start=w.first_ts or 0.0, window_end=w.last_ts or 0.0,
            n_events=w.n, model_versions=versions, version=w.dominant_version(), flagged=ev.flagged,
            flagged_features=ev.flagged_features, evidence=evidence, tests=ev.tests, quality=ev.quality,
            attribution=attributions, blamed=tuple(sorted(blamed)), states=self.states(),
            detector_hits=w.detector_hits,
            counts={f: tuple(ev.window_counts[f].tolist()) for f in ev.flagged_features if f in ev.window_counts})
        alerts = tuple(self._alert(t, result, now) for t in transitions if t.alerting)
        self.window_index += 1
        self.window = self._new_window()
        return WindowOutcome(result, tuple(transitions), alerts)

    def _blame(self, flagged: bool, attributions: Sequence[Attribution]) -> set[str]:
        """The datasets a window is evidence for: synthetic sets that explain it, else the anchor."""
        if not flagged:
            return set()
        spec = self.spec
        blamed = {a.dataset for a in attributions
                  if a.identifiable and a.affinity >= spec.min_affinity and (a.share or 0.0) >= spec.min_share}
        # a group of sets the window cannot tell apart is blamed as a whole: its joint share passes
        # min_share and every member points the window's way (affinity >= min_affinity)
        by_name = {a.dataset: a for a in attributions}
        for a in attributions:
            if a.group_share is None or a.group_share < spec.min_share:
                continue
            members = [a, *(by_name[o] for o in a.indistinguishable_from if o in by_name)]
            if all(m.affinity >= spec.min_affinity for m in members):
                blamed.add(a.dataset)
        return blamed or {self.anchor.name}

    def _alert(self, t: Transition, result: WindowResult, now: float) -> Alert:
        is_anchor = t.dataset == self.anchor.name
        a = None if is_anchor else result.attribution_of(t.dataset)
        return Alert(
            alert_id=f"{self.model}:{t.dataset}:{result.window}:{t.to_state}", model=self.model, dataset=t.dataset,
            state=t.to_state, since_window=t.since_window, window=result.window, window_end=result.window_end,
            created_at=now, model_versions=result.model_versions, evidence=result.evidence,
            affinity=None if a is None else a.affinity, share=None if a is None else a.share,
            share_identifiable=False if a is None else a.identifiable,
            action=action_text(self.model, t.dataset, is_anchor),
            group_share=None if a is None else a.group_share,
            indistinguishable_from=() if a is None else a.indistinguishable_from)

    def _detector_suspects(self, direction: int) -> list[str]:
        """Which datasets a confidence shift points at: synthetic sets whose confidence moved that way."""
        f = self.detector_feature
        assert f is not None
        a = self.anchor.features[f]
        assert isinstance(a, ProbsProfile)
        out = []
        for name, feats in self._ref_feats.items():
            s = feats.get(f)
            if isinstance(s, ProbsProfile) and direction * (s.confidence.mean - a.confidence.mean) > 0.02:
                out.append(name)
        return out or [self.anchor.name]


def action_text(model: str, dataset: str, is_anchor: bool) -> str:
    """The recommended action of an alert, in words on-call can follow."""
    if is_anchor:
        return (f"refresh the anchor {dataset}: register a current real dataset and set models.{model}.anchor "
                f"to it; live data moved away from it in a way no synthetic set explains")
    return f"retire {dataset} from the next training mix of {model}"


__all__ = ["MAX_EVIDENCE", "ModelBatch", "ModelMonitor", "MonitorSpec", "WindowOutcome", "action_text"]

