"""The dataset registry: validate a CAREFUL card, profile its data, store card + profile."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from careful_monitor import isolation
from careful_monitor.cards import Card, data_relative, load_card
from careful_monitor.config import Config
from careful_monitor.engine.comparisons.embedding_mmd import (
    ANCHOR_SAMPLE_SEED,
    TextEmbedder,
    TextSample,
    embedding_profile,
)
from careful_monitor.engine.profile import (
    TEXT,
    CategoricalProfile,
    FeatureProfile,
    NumericProfile,
    ProbsProfile,
    ReferenceProfile,
    TextProfile,
)
from careful_monitor.errors import ManifestError, RegistryError
from careful_monitor.lineage import check_parent
from careful_monitor.sources.columns import profile_file
from careful_monitor.sources.datasets import DataFormatError, file_sha256, iter_batches
from careful_monitor.store import DatasetRecord, Store

log = logging.getLogger(__name__)


@dataclass
class Registered:
    record: DatasetRecord
    profile: ReferenceProfile
    warnings: list[str]


def kinds_for(cfg: Config, dataset: str) -> dict[str, str]:
    """Feature kinds from the config's models that use this dataset (later models do not override)."""
    kinds: dict[str, str] = {}
    for m in cfg.models.values():
        if dataset == m.anchor or dataset in m.training_mix or dataset in m.evaluation:
            for f, k in m.features.items():
                kinds.setdefault(f, k)
    return kinds


def kind_changes(cfg: Config, name: str, profile: ReferenceProfile) -> dict[str, tuple[str, str]]:
    """feature -> (stored kind, configured kind) where the config's models kind `name`'s features otherwise."""
    return {f: (str(p.kind), k) for f, k in kinds_for(cfg, name).items()
            if (p := profile.features.get(f)) is not None and p.kind != k}


def missing_features(cfg: Config, name: str, profile: ReferenceProfile) -> dict[str, list[str]]:
    """feature -> the models with `name` in their mix that monitor it, for features its profile lacks."""
    out: dict[str, list[str]] = {}
    for model, m in cfg.models.items():
        if name in m.synthetic_sets:
            for f in m.features:
                if f not in profile.features:
                    out.setdefault(f, []).append(model)
    return out


def embedded_features(cfg: Config, profile: ReferenceProfile) -> list[str]:
    """The text features of a real dataset whose embeddings its profile keeps (`embeddings.enabled`)."""
    if not cfg.embeddings.enabled or profile.role != "real":
        return []
    wanted = set(cfg.embeddings.features)
    return [f for f, p in profile.features.items() if p.kind == TEXT and (not wanted or f in wanted)]


def add_embeddings(cfg: Config, profile: ReferenceProfile, data_path: Path,
                   embedder: TextEmbedder | None = None) -> None:
    """Store a uniform sample of `embeddings.anchor_sample` embeddings of each of `embedded_features` in the
    profile (a second streaming pass over the data reads the texts; only the vectors are kept). The
    embedder is the configured packaged model unless one is given."""
    features = embedded_features(cfg, profile)
    if not features:
        return
    if embedder is None:
        from careful_monitor.embeddings import load_embedder  # imports torch: only when embeddings are enabled

        embedder = load_embedder(cfg.embeddings)
    samples = {f: TextSample(cfg.embeddings.anchor_sample, np.random.default_rng([ANCHOR_SAMPLE_SEED, i]))
               for i, f in enumerate(features)}
    for cols, _ in iter_batches(data_path):
        for f, sample in samples.items():
            if f in cols:
                sample.add(cols[f])
    for f, sample in samples.items():
        texts = sample.texts()
        if texts:
            profile.embeddings[f] = embedding_profile(texts, embedder)
            log.info("%s: kept %d embeddings of %s (%s, %s)", profile.name, len(texts), f, embedder.model,
                     embedder.revision)


def _same_grid(a: FeatureProfile, p: FeatureProfile) -> bool:
    if isinstance(a, ProbsProfile) and isinstance(p, ProbsProfile):
        return a.labels == p.labels and _same_grid(a.confidence, p.confidence)
    if isinstance(a, NumericProfile) and isinstance(p, NumericProfile):
        return bool(np.array_equal(np.r_[a.edges, a.tail_lo, a.tail_hi, a.support_lo, a.support_hi],
                                   np.r_[p.edges, p.tail_lo, p.tail_hi, p.support_lo, p.support_hi], equal_nan=True))
    if isinstance(a, CategoricalProfile) and isinstance(p, CategoricalProfile):
        return a.categories == p.categories
    if isinstance(a, TextProfile) and isinstance(p, TextProfile):
        return a.tokens == p.tokens
    return False


def off_grid(anchor: ReferenceProfile, ref: ReferenceProfile) -> list[str]:
    """Features of `ref` not binned on `anchor`'s profile as stored now (another kind, edges, categories,
    vocabulary or labels): `ref` was profiled on an earlier profile of its anchor."""
    return sorted(f for f, p in ref.features.items()
                  if (a := anchor.features.get(f)) is None or not _same_grid(a, p))


def _registered_data(rec: DatasetRecord, folder: Path) -> tuple[Path | None, str]:
    """`rec`'s data file as its stored card names it, looked up in `folder` (cards of one registry share a
    folder), and checked against the stored sha256: (path, "") or (None, what is wrong)."""
    data = str(rec.card.get("data", ""))
    path = Path(data) if Path(data).is_absolute() else folder / data
    if not data or not path.exists():
        return None, f"its data {data or '(none)'} is not found in {folder}"
    sha = file_sha256(path)
    if sha != rec.data_sha256:
        return None, (f"its data {path} has changed since it was registered "
                      f"(sha256 {sha[:12]}, registered {rec.data_sha256[:12]})")
    return path, ""


def _reprofile(cfg: Config, store: Store, rec: DatasetRecord, data_path: Path, anchor: ReferenceProfile | None, *,
               by: str, seed: int, embedder: TextEmbedder | None = None) -> tuple[ReferenceProfile, list[str]]:
    """Profile a registered dataset again from its (sha256-checked) data with the config's kinds, on
    `anchor`'s grid; store it under the same card and data. Returns the profile and warnings."""
    kinds = kinds_for(cfg, rec.name)
    keep = anchor.joint.features if anchor is not None and anchor.joint is not None else []
    streamed = profile_file(  # as `register` does: one streaming pass, rows kept only for the DCR gate
        data_path, name=rec.name, role=rec.role, kinds=kinds, anchor=anchor, anchored_by=rec.anchored_by,
        bins=cfg.profile.bins, quantiles=cfg.profile.quantiles, max_categories=cfg.profile.max_categories,
        joint_sample=cfg.profile.joint_sample, seed=seed, keep_rows=keep if rec.role == "synthetic" else [])
    profile, columns = streamed.profile, streamed.columns
    add_embeddings(cfg, profile, data_path, embedder)
    old = ReferenceProfile.from_bytes(rec.profile)
    new = store.put_dataset(name=rec.name, role=rec.role, anchored_by=rec.anchored_by, card=rec.card,
                            profile=profile.to_bytes(), n_rows=profile.n_rows, data_sha256=rec.data_sha256, by=by)
    warnings: list[str] = []
    if {f: p.kind for f, p in old.features.items()} != {f: p.kind for f, p in profile.features.items()}:
        # text features (near-duplicate signatures) follow the kinds
        warnings += isolation.at_registration(cfg, store, rec.name, data_path, role=rec.role, kinds=kinds,
                                              data_sha256=rec.data_sha256, manifest=str(rec.card.get("data")))
    from careful_monitor import gates

    warnings += gates.at_registration(cfg, store, new, profile, columns, anchor=anchor)
    return profile, warnings


def _rebin_dependants(cfg: Config, store: Store, anchor: ReferenceProfile, folder: Path, *, by: str, seed: int,
                      skip: str | None = None) -> list[str]:
    """Re-profile every set anchored by `anchor` that is not on its grid now, from its registered data
    (looked up in `folder`, sha256-checked); warnings say which were re-binned and name exactly those
    that must be re-registered by hand."""
    dependants = [r for r in store.list_datasets()
                  if r.anchored_by == anchor.name and r.name not in (anchor.name, skip)]
    if anchor.role != "real":
        names = ", ".join(r.name for r in dependants)
        return [f"{anchor.name} is no longer real but anchors {names}: re-register them anchored by a real dataset "
                f"(careful-monitor datasets register --replace <their cards>)"] if dependants else []
    done: list[str] = []
    todo: list[str] = []
    warnings: list[str] = []
    for rec in dependants:
        if not off_grid(anchor, ReferenceProfile.from_bytes(rec.profile)):
            continue
        path, why = _registered_data(rec, folder)
        if path is None:
            todo.append(f"{rec.name} ({why})")
            continue
        _, more = _reprofile(cfg, store, rec, path, anchor, by=by, seed=seed)
        done.append(rec.name)
        warnings += more
    if done:
        warnings.insert(0, f"re-binned {', '.join(done)} on the new grid of {anchor.name} (from their registered data)")
    if todo:
        warnings.append(f"{anchor.name} changed, but these sets it anchors are still binned on its old grid and "
                        f"must be re-registered (`replay`/`run` refuse until then): {'; '.join(todo)}; "
                        f"run `careful-monitor datasets register <their cards>`")
    return warnings


def _anchor_with_config_kinds(cfg: Config, store: Store, manifest: str | Path, anchor_rec: DatasetRecord,
                              *, by: str, seed: int, registering: str,
                              embedder: TextEmbedder | None = None) -> tuple[ReferenceProfile, list[str]]:
    """The anchor's profile with the config's kinds: re-profiled from its registered data when it was
    registered with others (before a model named it), and its other sets re-binned; else as stored."""
    anchor = ReferenceProfile.from_bytes(anchor_rec.profile)
    changes = kind_changes(cfg, anchor.name, anchor)
    if not changes:
        return anchor, []
    folder = Path(manifest).resolve().parent
    said = ", ".join(f"{f} {old} -> {new}" for f, (old, new) in sorted(changes.items()))
    path, why = _registered_data(anchor_rec, folder)
    if path is None:
        raise RegistryError(
            f"{manifest}: anchor '{anchor.name}' was profiled with other feature kinds than the config's ({said}) "
            f"and must be re-profiled first, but {why}: re-register it from its card "
            f"(careful-monitor datasets register <card of {anchor.name}>), then this set")
    anchor, warnings = _reprofile(cfg, store, anchor_rec, path, None, by=by, seed=seed, embedder=embedder)
    warnings.insert(0, f"re-profiled {anchor.name} from its registered data with the config's kinds ({said})")
    warnings += _rebin_dependants(cfg, store, anchor, folder, by=by, seed=seed, skip=registering)
    return anchor, warnings


def _replacing(cfg: Config, store: Store, manifest: str | Path, card: Card, data_path: Path,
               replace: bool) -> list[str]:
    """Re-registering a name with another role or anchor, or an anchor with other data, needs `replace`.

    An anchor is a dataset some registered set is `anchored_by`, or a configured model's anchor: new
    data moves the grid its synthetic sets are binned on and the baseline of the per-event detector.
    """
    old = store.get_dataset(card.name)
    if old is None:
        return []
    dependants = sorted(r.name for r in store.list_datasets() if r.anchored_by == card.name and r.name != card.name)
    models = sorted(m for m, c in cfg.models.items() if c.anchor == card.name)
    if old.role != card.role or old.anchored_by != card.anchored_by:
        change = (f"role {old.role} -> {card.role}" if old.role != card.role
                  else f"anchored_by {old.anchored_by} -> {card.anchored_by}")
        what = f"another {change.split()[0]} ({change})"
    elif (dependants or models) and data_path.exists() and file_sha256(data_path) != old.data_sha256:
        change = "new data"
        what = (f"other data (it is the anchor of {', '.join(models + dependants)}; its synthetic sets are "
                "re-binned on the new grid and the models' detector restarts from it)")
    else:
        return []
    if not replace:
        raise RegistryError(
            f"{manifest}: '{card.name}' is registered with {what}; "
            f"to replace it on purpose run `careful-monitor datasets register --replace {manifest}`")
    detector = (f"; the per-event detector of {', '.join(models)} restarts from its new baseline"
                if models and change == "new data" else "")
    return [f"{card.name} replaced ({change}){detector}"]


def _unused_evaluation(cfg: Config, card: Card) -> list[str]:
    if card.role != "evaluation" or any(card.name in m.evaluation for m in cfg.models.values()):
        return []
    return [f"evaluation set {card.name} is not in any model's evaluation list "
            f"(add it to models.<model>.evaluation in the config)"]


def register(cfg: Config, store: Store, manifest: str | Path, *, by: str, seed: int = 0,
             replace: bool = False, allow_outside: bool = False, embedder: TextEmbedder | None = None) -> Registered:
    """Validate `manifest`'s card, profile its data and store both; `embedder` (with `embeddings.enabled`)
    replaces the configured packaged model for the anchor's embedding sample."""
    card, raw, data_path = load_card(manifest, cfg.governance.use_limits, allow_outside=allow_outside)
    early = _replacing(cfg, store, manifest, card, data_path, replace) + _unused_evaluation(cfg, card)
    anchor: ReferenceProfile | None = None
    if card.role == "synthetic" or (card.role == "evaluation" and card.anchored_by):
        rec = store.get_dataset(card.anchored_by or "")
        if rec is None:
            raise RegistryError(
                f"{manifest}: anchored_by '{card.anchored_by}' is not registered; register the anchor first "
                f"(careful-monitor datasets register <its manifest>)")
        if rec.role != "real":
            raise RegistryError(f"{manifest}: anchored_by '{card.anchored_by}' has role {rec.role}, must be real")
        # kinds come from the config whatever the order: an anchor registered before a model named it is
        # re-profiled from its registered data first (sha256-checked), so no feature is dropped here
        anchor, reprofiled = _anchor_with_config_kinds(cfg, store, manifest, rec, by=by, seed=seed,
                                                       registering=card.name, embedder=embedder)
        early += reprofiled
    check_parent(store, str(manifest), card)  # after the anchor: a missing anchor is the first thing to fix
    kinds = kinds_for(cfg, card.name)
    # a synthetic set's pre-flight DCR gate needs its rows of the anchor's joint features: kept as floats
    keep = anchor.joint.features if anchor is not None and anchor.joint is not None else []
    try:  # one streaming pass: batches of rows into the profile's accumulators, the file hashed on the way
        streamed = profile_file(
            data_path, name=card.name, role=card.role, kinds=kinds, anchor=anchor, anchored_by=card.anchored_by,
            bins=cfg.profile.bins, quantiles=cfg.profile.quantiles, max_categories=cfg.profile.max_categories,
            joint_sample=cfg.profile.joint_sample, seed=seed, keep_rows=keep if card.role == "synthetic" else [])
    except (DataFormatError, OSError, ValueError) as exc:
        raise ManifestError(str(manifest), "data", f"cannot read {data_path.name}: {exc}") from None
    columns = streamed.columns  # every column name; values only of the kept ones
    if not columns:
        raise ManifestError(str(manifest), "data", f"{data_path.name} has no inputs.* or outputs.* columns")
    warnings = list(early)
    profile = streamed.profile
    add_embeddings(cfg, profile, data_path, embedder)
    if anchor is not None:
        monitored = missing_features(cfg, card.name, profile)
        for f in sorted(set(monitored) | (set(anchor.features) - set(columns))):
            why = (f"its data has no column {f}" if f not in columns else
                   f"its anchor {anchor.name} has no profile of it" if f not in anchor.features else
                   f"it is {anchor.features[f].kind} in its anchor {anchor.name}")
            if f in monitored:
                warnings.append(f"{card.name} lacks feature {f}, which {', '.join(monitored[f])} monitor(s) ({why}): "
                                f"it is not compared with this set (see `careful-monitor datasets show {card.name}`)")
            else:
                warnings.append(f"{card.name} lacks feature {f} of its anchor; it is skipped for this reference")
    for w in warnings:
        log.warning(w)
    card_doc = {k: v for k, v in raw.items()}
    card_doc["data"] = data_relative(manifest, data_path)  # relative to the card's folder, never absolute
    sha256 = streamed.sha256
    record = store.put_dataset(name=card.name, role=card.role, anchored_by=card.anchored_by, card=card_doc,
                               profile=profile.to_bytes(), n_rows=profile.n_rows, data_sha256=sha256, by=by)
    # row hashes and MinHash signatures, streamed from the file; an evaluation set is also checked (warns)
    late = isolation.at_registration(cfg, store, card.name, data_path, role=card.role, kinds=kinds,
                                     data_sha256=sha256, manifest=str(manifest))
    from careful_monitor import gates  # pre-flight report of a synthetic set against its anchor (warns, stored)

    late += gates.at_registration(cfg, store, record, profile, columns, anchor=anchor)
    # a new profile of an anchor moves its grid: re-bin the sets it anchors, or name those to re-register
    late += _rebin_dependants(cfg, store, profile, Path(manifest).resolve().parent, by=by, seed=seed)
    for w in late:
        log.warning(w)
    return Registered(record, profile, warnings + late)


def check_retire(cfg: Config, name: str) -> None:
    """Refuse to retire a model's anchor: live data would have nothing real to be compared with."""
    models = [m for m, c in cfg.models.items() if c.anchor == name]
    if models:
        raise RegistryError(
            f"'{name}' is the anchor of {', '.join(models)} and cannot be retired: register its replacement "
            f"(careful-monitor datasets register --replace <new manifest>) or point models.{models[0]}.anchor at "
            "another real dataset, then retire it")
