"""The dataset registry: validate a CAREFUL card, profile its data, store card + profile."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from careful_monitor import isolation
from careful_monitor.cards import Card, data_relative, load_card
from careful_monitor.config import Config
from careful_monitor.engine.profile import ReferenceProfile, build_profile
from careful_monitor.errors import ManifestError, RegistryError
from careful_monitor.lineage import check_parent
from careful_monitor.sources.datasets import DataFormatError, file_sha256, read_dataset
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


def _replacing(cfg: Config, store: Store, manifest: str | Path, card: Card, replace: bool) -> list[str]:
    """Re-registering a name with another role or anchor needs `replace`; then warn what depends on it."""
    old = store.get_dataset(card.name)
    if old is None or (old.role == card.role and old.anchored_by == card.anchored_by):
        return []
    change = (f"role {old.role} -> {card.role}" if old.role != card.role
              else f"anchored_by {old.anchored_by} -> {card.anchored_by}")
    if not replace:
        raise RegistryError(
            f"{manifest}: '{card.name}' is registered with another {change.split()[0]} ({change}); "
            f"to replace it on purpose run `careful-monitor datasets register --replace {manifest}`")
    dependants = sorted(r.name for r in store.list_datasets() if r.anchored_by == card.name and r.name != card.name)
    warnings = [f"{card.name} replaced ({change})"]
    if dependants:
        warnings.append(f"{card.name} is the anchor of {', '.join(dependants)}: their profiles are binned on the old "
                        f"grid; re-register them (careful-monitor datasets register <their manifests>)")
    return warnings


def _unused_evaluation(cfg: Config, card: Card) -> list[str]:
    if card.role != "evaluation" or any(card.name in m.evaluation for m in cfg.models.values()):
        return []
    return [f"evaluation set {card.name} is not in any model's evaluation list "
            f"(add it to models.<model>.evaluation in the config)"]


def register(cfg: Config, store: Store, manifest: str | Path, *, by: str, seed: int = 0,
             replace: bool = False, allow_outside: bool = False) -> Registered:
    card, raw, data_path = load_card(manifest, cfg.governance.use_limits, allow_outside=allow_outside)
    early = _replacing(cfg, store, manifest, card, replace) + _unused_evaluation(cfg, card)
    anchor: ReferenceProfile | None = None
    if card.role == "synthetic" or (card.role == "evaluation" and card.anchored_by):
        rec = store.get_dataset(card.anchored_by or "")
        if rec is None:
            raise RegistryError(
                f"{manifest}: anchored_by '{card.anchored_by}' is not registered; register the anchor first "
                f"(careful-monitor datasets register <its manifest>)")
        if rec.role != "real":
            raise RegistryError(f"{manifest}: anchored_by '{card.anchored_by}' has role {rec.role}, must be real")
        anchor = ReferenceProfile.from_bytes(rec.profile)
    check_parent(store, str(manifest), card)  # after the anchor: a missing anchor is the first thing to fix
    try:
        columns = read_dataset(data_path)
    except (DataFormatError, OSError, ValueError) as exc:
        raise ManifestError(str(manifest), "data", f"cannot read {data_path.name}: {exc}") from None
    if not columns:
        raise ManifestError(str(manifest), "data", f"{data_path.name} has no inputs.* or outputs.* columns")
    kinds = kinds_for(cfg, card.name)
    warnings = list(early)
    if anchor is not None:
        missing = sorted(set(anchor.features) - set(columns))
        for f in missing:
            warnings.append(f"{card.name} lacks feature {f} of its anchor; it is skipped for this reference")
    profile = build_profile(
        card.name, card.role, columns, kinds=kinds, anchor=anchor, anchored_by=card.anchored_by,
        bins=cfg.profile.bins, quantiles=cfg.profile.quantiles, max_categories=cfg.profile.max_categories,
        joint_sample=cfg.profile.joint_sample, rng=np.random.default_rng(seed),
    )
    for w in warnings:
        log.warning(w)
    card_doc = {k: v for k, v in raw.items()}
    card_doc["data"] = data_relative(manifest, data_path)  # relative to the card's folder, never absolute
    sha256 = file_sha256(data_path)
    record = store.put_dataset(name=card.name, role=card.role, anchored_by=card.anchored_by, card=card_doc,
                               profile=profile.to_bytes(), n_rows=profile.n_rows, data_sha256=sha256, by=by)
    # row hashes and MinHash signatures, streamed from the file; an evaluation set is also checked (warns)
    late = isolation.at_registration(cfg, store, card.name, data_path, role=card.role, kinds=kinds,
                                     data_sha256=sha256, manifest=str(manifest))
    from careful_monitor import gates  # pre-flight report of a synthetic set against its anchor (warns, stored)

    late += gates.at_registration(cfg, store, record, profile, columns, anchor=anchor)
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
