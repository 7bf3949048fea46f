"""The dataset registry: validate a CAREFUL card, profile its data, store card + profile."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from careful_monitor.cards import load_card
from careful_monitor.config import Config
from careful_monitor.engine.profile import ReferenceProfile, build_profile
from careful_monitor.errors import ManifestError, RegistryError
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
        if dataset == m.anchor or dataset in m.training_mix:
            for f, k in m.features.items():
                kinds.setdefault(f, k)
    return kinds


def register(cfg: Config, store: Store, manifest: str | Path, *, by: str, seed: int = 0) -> Registered:
    card, raw, data_path = load_card(manifest)
    anchor: ReferenceProfile | None = None
    if card.role == "synthetic":
        rec = store.get_dataset(card.anchored_by or "")
        if rec is None:
            raise RegistryError(
                f"{manifest}: anchored_by '{card.anchored_by}' is not registered; register the anchor first "
                f"(careful-monitor datasets register <its manifest>)")
        if rec.role != "real":
            raise RegistryError(f"{manifest}: anchored_by '{card.anchored_by}' has role {rec.role}, must be real")
        anchor = ReferenceProfile.from_bytes(rec.profile)
    try:
        columns = read_dataset(data_path)
    except (DataFormatError, OSError, ValueError) as exc:
        raise ManifestError(str(manifest), "data", f"cannot read {data_path.name}: {exc}") from None
    if not columns:
        raise ManifestError(str(manifest), "data", f"{data_path.name} has no inputs.* or outputs.* columns")
    kinds = kinds_for(cfg, card.name)
    warnings = []
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
    card_doc["data"] = str(data_path)
    record = store.put_dataset(name=card.name, role=card.role, anchored_by=card.anchored_by, card=card_doc,
                               profile=profile.to_bytes(), n_rows=profile.n_rows,
                               data_sha256=file_sha256(data_path), by=by)
    return Registered(record, profile, warnings)
