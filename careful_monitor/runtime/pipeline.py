"""The processing pipeline shared by `replay` and `run`: decode -> id dedup -> engine -> metrics -> store.

It owns one engine monitor per configured model, built from the registered profiles and restored
from the engine snapshots in the store, so windows continue across replays and restarts. Next to
each monitor it keeps the model's last `limits.dedup_ids` event ids (`runtime.dedup`), loaded from
the store: an event whose `id` is among them is dropped before the engine and counted as
`events_total{outcome="duplicate"}`. The ids a batch adds are stored by `persist` in the transaction
that stores the engine state counting those events, so the stored set never runs ahead of, or
behind, what the stored windows and open window hold.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import compress
from typing import Any

from careful_monitor import governance, lineage
from careful_monitor.config import Config
from careful_monitor.contracts import alert_json
from careful_monitor.engine.comparisons.embedding_mmd import TextEmbedder
from careful_monitor.engine.monitor import ModelBatch, ModelMonitor, MonitorSpec, WindowOutcome
from careful_monitor.engine.profile import PROFILE_FORMAT, ReferenceProfile
from careful_monitor.engine.state import StaleStateError
from careful_monitor.engine.types import Alert, LifecycleState, PolicyState
from careful_monitor.errors import ConfigError, StoreError
from careful_monitor.evidence import plots_for
from careful_monitor.runtime.dedup import SeenIds, id_hashes
from careful_monitor.sinks.prometheus import Metrics
from careful_monitor.sources.decode import EventDecoder, Rejected
from careful_monitor.store import Store

log = logging.getLogger(__name__)


def monitor_spec(cfg: Config, model: str) -> MonitorSpec:
    m, w, p = cfg.models[model], cfg.window, cfg.policy
    return MonitorSpec(
        features=dict(m.features), window_size=w.size, max_seconds=w.max_seconds, min_size=w.min_size,
        fdr=p.fdr, watch_after=p.watch_after, retire_after=p.retire_after, clear_after=p.clear_after,
        min_effect=p.min_effect.model_dump(), min_affinity=p.attribution.min_affinity,
        min_share=p.attribution.min_share, max_share_se=p.attribution.max_share_se, detector=p.detector,
        cusum_threshold=p.cusum_threshold, cusum_drift=p.cusum_drift, versions_per_model=cfg.limits.versions_per_model,
        embedding_sample=cfg.embeddings.window_sample,
    )


def _register_command(cfg: Config) -> str:
    """The `datasets register` command a message tells the operator to run, with this config's path."""
    return f"careful-monitor datasets register{f' --config {cfg.source}' if cfg.source else ''}"


def older_format(name: str, profile: ReferenceProfile, anchor: ReferenceProfile) -> str | None:
    """What a synthetic set registered by an older careful-monitor lacks in the joint block, or None.

    Format 1 has no joint sample (joint attribution leaves the set out); format 2 has one of the numeric
    features only (the categorical features of the anchor's joint sample are left out of its joint block).
    Either way re-registering its card adds what is missing.
    """
    if profile.format >= PROFILE_FORMAT:
        return None
    if profile.joint is None:
        return (f"dataset {name} was registered by an older careful-monitor (profile format {profile.format}): it "
                "has no joint sample, so joint attribution leaves it out; re-register its card to include it")
    missing = [f for f in (anchor.joint.categorical if anchor.joint else []) if f not in profile.joint.categorical]
    if missing:
        return (f"dataset {name} was registered by an older careful-monitor (profile format {profile.format}): its "
                f"joint sample has no categorical columns, so joint attribution does not see {', '.join(missing)} "
                "in it; re-register its card to include them")
    return None


def load_references(cfg: Config, store: Store, model: str) -> tuple[ReferenceProfile, dict[str, ReferenceProfile]]:
    """The model's anchor and synthetic profiles, checked against the config (ConfigError names the fix)."""
    m = cfg.models[model]
    rec = store.get_dataset(m.anchor)
    if rec is None:
        raise ConfigError(f"models.{model}.anchor", f"dataset '{m.anchor}' is not registered",
                          "run `careful-monitor datasets register <manifest>` for it first")
    if rec.role != "real":
        raise ConfigError(f"models.{model}.anchor", f"dataset '{m.anchor}' has role {rec.role}",
                          "the anchor must be a real dataset")
    anchor = ReferenceProfile.from_bytes(rec.profile)
    synthetic = {}
    for name in m.synthetic_sets:
        srec = store.get_dataset(name)
        if srec is None:
            raise ConfigError(f"models.{model}.training_mix.{name}", f"dataset '{name}' is not registered",
                              "register it with `careful-monitor datasets register <manifest>`")
        if srec.role == "synthetic" and srec.anchored_by != m.anchor:
            raise ConfigError(f"models.{model}.training_mix.{name}",
                              f"'{name}' is anchored by '{srec.anchored_by}', but the model's anchor is '{m.anchor}'",
                              f"set models.{model}.anchor to '{srec.anchored_by}' "
                              f"or re-register '{name}' anchored by '{m.anchor}'")
        if srec.role == "real":
            continue  # a second real set in the mix is not a synthetic reference
        synthetic[name] = ReferenceProfile.from_bytes(srec.profile)
        if (old := older_format(name, synthetic[name], anchor)) is not None:
            log.warning("%s", old)
    from careful_monitor.registry import off_grid

    register = _register_command(cfg)
    for f, kind in m.features.items():
        prof = anchor.features.get(f)
        if prof is None:
            log.warning("model %s: feature %s is not in anchor %s; it is not monitored", model, f, m.anchor)
        elif prof.kind != kind:
            raise ConfigError(f"models.{model}.features.{f}",
                              f"configured as {kind} but anchor '{m.anchor}' profiled it as {prof.kind}",
                              f"run `{register} <card of {m.anchor}>`: it re-profiles '{m.anchor}' with the "
                              "configured kinds and re-bins its synthetic sets from their registered data")
    # a synthetic set binned on an earlier profile of the anchor (its data changed, or its kinds) would be
    # compared on the wrong grid: every such set is named, with the command that re-bins it
    stale = {name: off for name, prof in synthetic.items() if (off := off_grid(anchor, prof))}
    if stale:
        raise ConfigError(f"models.{model}.training_mix",
                          "binned on an earlier profile of anchor '" + m.anchor + "': "
                          + "; ".join(f"'{n}' ({', '.join(fs)})" for n, fs in sorted(stale.items())),
                          f"re-register exactly these: `{register} <card of {'> <card of '.join(sorted(stale))}>`")
    return anchor, synthetic


def check_embeddings(cfg: Config, model: str, anchor: ReferenceProfile, embedder: TextEmbedder) -> None:
    """With `embeddings.enabled`, the anchor must hold an embedding sample of every embedded text feature of
    the model, made by this embedder's model and revision (ConfigError naming the re-registration)."""
    m = cfg.models[model]
    wanted = set(cfg.embeddings.features)
    register = _register_command(cfg)
    for f, kind in m.features.items():
        if kind != "text" or (wanted and f not in wanted) or f not in anchor.features:
            continue
        have = anchor.embeddings.get(f)
        if have is None:
            raise ConfigError("embeddings.enabled", f"anchor '{m.anchor}' of model {model} holds no embeddings of {f} "
                              "(registered with embeddings disabled)",
                              f"run `{register} <card of {m.anchor}>` with embeddings enabled, or disable them")
        if (have.model, have.revision) != (embedder.model, embedder.revision):
            raise ConfigError("embeddings.model", f"anchor '{m.anchor}' embedded {f} with {have.model} "
                              f"({have.revision}), the installed model is {embedder.model} ({embedder.revision})",
                              f"run `{register} <card of {m.anchor}>` to embed it with the installed model")


def log_outcome(outcome: WindowOutcome) -> None:
    """One INFO line per closed window and one WARNING line per alert it raised (replay and run alike)."""
    r = outcome.result
    not_ok = {d: str(st) for d, st in r.states.items() if st != PolicyState.OK}
    log.info("window closed: model=%s window=%d events=%d flagged_features=%d not_ok=%s",
             r.model, r.window, r.n_events, len(r.flagged_features),
             ",".join(f"{d}:{st}" for d, st in sorted(not_ok.items())) or "none")
    for a in outcome.alerts:
        log.warning("alert raised: alert_id=%s dataset=%s state=%s share=%s action=%s",
                    a.alert_id, a.dataset, a.state, "n/a" if a.share is None else f"{a.share:.3f}", a.action)


@dataclass
class BatchReport:
    accepted: int = 0  # decoded and processed by the engine (duplicates excluded)
    rejected: list[Rejected] = field(default_factory=list)
    outcomes: list[WindowOutcome] = field(default_factory=list)
    duplicates: int = 0  # events dropped because their id was seen before (not dead letters)


def _select(batch: ModelBatch, keep: list[bool]) -> ModelBatch:
    """The batch without the events `keep` marks False."""
    return ModelBatch(list(compress(batch.ts, keep)), list(compress(batch.versions, keep)),
                      {f: list(compress(col, keep)) for f, col in batch.columns.items()})


class Pipeline:
    def __init__(self, cfg: Config, store: Store, metrics: Metrics, *,
                 on_reject: Callable[[Sequence[Rejected]], None] = lambda r: None,
                 clock: Callable[[], float] = time.time, poll_clock: Callable[[], float] = time.monotonic,
                 embedder: TextEmbedder | None = None) -> None:
        """`embedder` (with `embeddings.enabled`) replaces the configured packaged embedding model."""
        self.cfg, self.store, self.metrics, self.on_reject, self.clock = cfg, store, metrics, on_reject, clock
        if not cfg.models:
            raise ConfigError("models", "no model is configured", "add a model under 'models:' in the config file")
        self.embedder: TextEmbedder | None = None
        if cfg.embeddings.enabled:
            if embedder is None:
                from careful_monitor.embeddings import load_embedder  # torch: only with embeddings enabled

                embedder = load_embedder(cfg.embeddings)
            self.embedder = embedder
        self._check_governance()
        self._export_registry()
        self._trained: dict[tuple[str, str], list[str]] = lineage.trained_versions(store, list(cfg.models))
        mismatches = lineage.mix_mismatches(cfg, store)
        if mismatches:
            log.warning("training_mix differs from the recorded lineage (the monitor compares with the config; "
                        "record the deployed version with `careful-monitor lineage record`): %s",
                        "; ".join(mismatches))
        states = store.load_states()
        lifecycle = self._lifecycle()
        self.monitors: dict[str, ModelMonitor] = {}
        for model in cfg.models:
            anchor, synthetic = load_references(cfg, store, model)
            if self.embedder is not None:
                check_embeddings(cfg, model, anchor, self.embedder)
            mon = self._monitor(model, monitor_spec(cfg, model), anchor, synthetic, states.get(model))
            mon.apply_lifecycle({d for d in mon.states() if lifecycle.get(d) == LifecycleState.RETIRED})
            self.monitors[model] = mon
            metrics.init_model(model, [*synthetic, anchor.name])
            for dataset, state in mon.states().items():
                metrics.dataset_state.labels(model, dataset).set(state.code)
        self.decoder = EventDecoder({m: list(c.features) for m, c in cfg.models.items()}, cfg.limits.max_event_bytes,
                                    ts_min=cfg.limits.ts_min, ts_max=cfg.limits.ts_max)
        self.dirty: set[str] = set()
        self.seen: dict[str, SeenIds] = self._load_seen()
        self.poll_clock = poll_clock
        self._polled_at = poll_clock()

    def _check_governance(self) -> None:
        """Cards against the config: refuse (enforce) or log one line and export the violations (warn)."""
        violations = governance.check(self.cfg, self.store)
        if not violations:
            return
        if self.cfg.governance.mode == "enforce":
            raise governance.GovernanceError(violations)
        log.warning("governance.mode warn: starting with %d violation(s): %s", len(violations),
                    "; ".join(str(v) for v in violations))
        for v in violations:
            self.metrics.governance_violation(v.model, v.dataset, v.rule)

    def _export_registry(self) -> None:
        """What the registry says beside the windows, re-read on every lifecycle poll: the stored
        evaluation-isolation results (isolation_contamination_ratio) and when each dataset's review
        is due (dataset_review_due_timestamp_seconds)."""
        from careful_monitor import isolation

        try:
            self.metrics.set_isolation(isolation.rates(self.store))
            self.metrics.set_review_due(governance.review_due(self.store))
        except StoreError as exc:
            log.warning("could not read the isolation results and review dates: %s", exc)

    def _lifecycle(self) -> dict[str, str]:
        """dataset -> lifecycle state, as the registry holds it now."""
        return self.store.dataset_states()

    def poll_lifecycle(self) -> list[tuple[str, str]]:
        """Re-read the registry's lifecycle (`datasets retire|reactivate` by the CLI) and apply it to every model.

        Returns the (model, dataset) pairs whose policy state changed; their `dataset_state` is updated at once.
        """
        self._polled_at = self.poll_clock()
        self._export_registry()  # a `datasets isolation` run by CI shows on the live metric
        try:
            lifecycle = self._lifecycle()
        except StoreError as exc:  # the store being down is handled where batches are persisted
            log.warning("could not re-read the datasets' lifecycle (next try in %ss): %s",
                        self.cfg.governance.poll_seconds, exc)
            return []
        changed = []
        for model, mon in self.monitors.items():
            for dataset in mon.apply_lifecycle({d for d in mon.states() if lifecycle.get(d) == LifecycleState.RETIRED}):
                state = mon.states()[dataset]
                self.metrics.dataset_state.labels(model, dataset).set(state.code)
                log.info("lifecycle: model=%s dataset=%s is now %s", model, dataset, state)
                changed.append((model, dataset))
                self.dirty.add(model)
        return changed

    def poll_lifecycle_if_due(self) -> list[tuple[str, str]]:
        """`poll_lifecycle` when `governance.poll_seconds` have passed since the last poll."""
        if self.poll_clock() - self._polled_at >= self.cfg.governance.poll_seconds:
            return self.poll_lifecycle()
        return []

    def _monitor(self, model: str, spec: MonitorSpec, anchor: ReferenceProfile,
                 synthetic: dict[str, ReferenceProfile], snapshot: bytes | None) -> ModelMonitor:
        """A model's monitor resumed from its snapshot; without one, numbering continues after the stored windows."""
        try:
            mon = ModelMonitor(model, spec, anchor, synthetic, snapshot=snapshot, embedder=self.embedder)
        except StaleStateError as exc:
            raise StoreError(f"model {model}: {exc}") from None
        if snapshot is None:
            mon.window_index = self.store.next_window_index(model)
        return mon

    def _load_seen(self) -> dict[str, SeenIds]:
        """Each model's last `limits.dedup_ids` event ids as stored; none when dedup is off (0)."""
        n = self.cfg.limits.dedup_ids
        if n <= 0:
            return {}
        return {model: SeenIds(n, self.store.load_seen_ids(model, n)) for model in self.monitors}

    def reload(self, states: dict[str, bytes]) -> None:
        """Replace every monitor's state and seen ids with the stored ones (after a Kafka partition assignment)."""
        for model, mon in list(self.monitors.items()):
            self.monitors[model] = self._monitor(model, mon.spec, mon.anchor, mon.synthetic, states.get(model))
        self.seen = self._load_seen()  # another worker may have stored ids of these models since
        self.dirty.clear()
        self.poll_lifecycle()  # a stored snapshot may predate a retire or reactivate

    def handle(self, lines: Sequence[bytes], fallback_ts: Sequence[float | None] | None = None, *,
               dedup: bool = True) -> BatchReport:
        """Decode, drop duplicate ids and process one batch; nothing is persisted until `persist`.

        `dedup=False` (`replay --restart`): no event is dropped as a duplicate, but the ids are still
        recorded, so a later redelivery of them is.
        """
        self.poll_lifecycle_if_due()
        decoded = self.decoder.decode(lines, fallback_ts)
        report = BatchReport(accepted=decoded.accepted, rejected=decoded.rejected)
        if decoded.rejected:
            rejected_by_model: dict[str, int] = {}
            for rej in decoded.rejected:
                self.metrics.count_dead_letter(rej.reason)
                if rej.model in self.monitors:  # unknown models are counted in dead_letters_total only
                    rejected_by_model[rej.model] = rejected_by_model.get(rej.model, 0) + 1
            for model, n in rejected_by_model.items():
                self.metrics.count_events(model, 0, n)
            self.on_reject(decoded.rejected)
        now = self.clock()
        for model, batch in decoded.batches.items():
            mon = self.monitors[model]
            seen = self.seen.get(model)
            ids = decoded.ids.get(model)
            if seen is not None and ids and ids.count(None) < len(ids):
                keep = seen.admit(id_hashes(ids), check=dedup)
                self.dirty.add(model)  # its seen ids changed: stored with its state
                if False in keep:
                    duplicates = len(keep) - sum(keep)
                    report.duplicates += duplicates
                    report.accepted -= duplicates
                    self.metrics.count_events(model, 0, duplicate=duplicates)
                    batch = _select(batch, keep)
                    if not len(batch):
                        continue
            self.metrics.count_events(model, len(batch))
            t0 = time.perf_counter()
            outcomes = mon.process(batch, now)
            elapsed = time.perf_counter() - t0
            for o in outcomes:
                self.metrics.window(model, o, elapsed / len(outcomes))
                log_outcome(o)
            report.outcomes.extend(outcomes)
            self.metrics.event_time(model, mon.last_ts, now, mon.open_events)
            # export only the engine's last versions_per_model, also dropping versions that entered and
            # left the kept list within this batch (compared with what is exported, not the previous list)
            self.metrics.keep_versions(model, mon.version_order)
            self.dirty.add(model)
        return report

    def flush(self) -> list[WindowOutcome]:
        """Close every open window that holds `window.min_size` events (`replay --flush`)."""
        now = self.clock()
        out = []
        for model, mon in self.monitors.items():
            for o in mon.flush(now):
                self.metrics.window(model, o, 0.0)
                log_outcome(o)
                out.append(o)
                self.dirty.add(model)
        return out

    def alert_docs(self, alerts: Sequence[Alert]) -> list[dict[str, Any]]:
        """The alerts' JSON documents with `trained_versions` from the lineage (read once per call with alerts).

        If the store cannot be read, the lineage last read is used (the batch is stored later, when it is back).
        """
        if alerts:
            try:
                self._trained = lineage.trained_versions(self.store, list(self.cfg.models))
            except StoreError as exc:
                log.warning("could not re-read the lineage, alerts carry the one read before: %s", exc)
        return [alert_json(a, self._trained.get((a.model, a.dataset), [])) for a in alerts]

    def alert_plots(self, outcomes: Sequence[WindowOutcome]) -> dict[str, list[dict[str, Any]]]:
        """alert_id -> the plots of its evidence features: its window's counts against the anchor and the set."""
        out = {}
        for o in outcomes:
            for a in o.alerts:
                mon = self.monitors[a.model]
                out[a.alert_id] = plots_for(o.result.counts, [e.feature for e in a.evidence], mon.anchor,
                                            mon.synthetic.get(a.dataset))
        return out

    def persist(self, outcomes: Sequence[WindowOutcome], offsets: Sequence[tuple[str, str, int, int]] = (), *,
                alert_docs: Sequence[dict[str, Any]] | None = None) -> None:
        """Store window results, alerts, the touched models' engine state and new seen ids in one transaction.

        `alert_docs`: the outcomes' alerts as `alert_docs` already wrote them (the Kafka service publishes
        the same documents it stores); made here when not given.
        """
        windows = [o.result for o in outcomes]
        alerts = self.alert_docs([a for o in outcomes for a in o.alerts]) if alert_docs is None else alert_docs
        plots = self.alert_plots(outcomes)  # stored with each alert, not part of its published JSON
        alerts = [{**a, "plots": plots[a["alert_id"]]} if a["alert_id"] in plots else a for a in alerts]
        states = {m: self.monitors[m].snapshot() for m in self.dirty}
        seen = {m: self.seen[m] for m in self.dirty if m in self.seen}
        self.store.commit_batch(windows=windows, alerts=alerts, states=states, offsets=list(offsets),
                                seen_ids={m: (s.pending(), s.oldest_kept_seq) for m, s in seen.items()})
        for s in seen.values():
            s.stored()
        self.dirty.clear()
