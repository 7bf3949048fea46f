"""Lineage: which datasets, with what shares, trained each version of a model (the one source of truth).

`lineage record` writes a version's mix once (`Store.put_lineage`); `lineage show` and
`/api/models/<model>/lineage` serve `lineage_doc`. Per dataset it computes the generation depth
(0 for a real set; a synthetic set is 1 + the depth of its `provenance.parent` when that is
registered, else 1) and per version the fresh-real share: the mix share of real datasets registered
after the previous version was recorded (for the first version, every real dataset counts as fresh).
Alerts carry `trained_versions` from `trained_versions` (computed here, never by the engine).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from careful_monitor.cards import Card
from careful_monitor.config import Config
from careful_monitor.errors import ManifestError, RegistryError
from careful_monitor.store import DatasetRecord, LineageRecord, Store
from careful_monitor.store.repository import iso_utc

#: how far from 1 the shares of a mix may sum
SUM_TOLERANCE = 0.01


class LineageError(RegistryError):
    """A lineage record is refused (bad --mix, unknown or retired dataset, a version recorded differently)."""


def parse_mix(items: Sequence[str]) -> dict[str, float]:
    """`name=share` items as a mix; LineageError names the bad item, share or sum (exit 2)."""
    if not items:
        raise LineageError("--mix: give at least one name=share (e.g. --mix tickets-real=0.6)")
    mix: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise LineageError(f"--mix {item!r}: expected name=share, e.g. tickets-real=0.6")
        if name in mix:
            raise LineageError(f"--mix names {name} twice: give each dataset once")
        try:
            share = float(value)
        except ValueError:
            raise LineageError(f"--mix {item!r}: share {value!r} is not a number") from None
        if not (0.0 < share <= 1.0):
            raise LineageError(f"--mix {name}={value}: share must be in (0, 1]")
        mix[name] = share
    total = sum(mix.values())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise LineageError(f"--mix shares sum to {total:.4g}, must sum to 1 (within {SUM_TOLERANCE})")
    return mix


def record(store: Store, model: str, version: str, mix: Mapping[str, float], *, by: str) -> bool:
    """Record `model` `version` trained on `mix`; False when it was already recorded identically (a no-op)."""
    if not model.strip() or not version.strip():
        raise LineageError("MODEL and VERSION must not be empty")
    datasets = {r.name: r for r in store.list_datasets()}
    unknown = [name for name in mix if name not in datasets]
    if unknown:
        raise LineageError(f"--mix names {', '.join(unknown)}, not registered: register it first "
                           "(careful-monitor datasets register <its manifest>) or correct the name")
    recorded = {r.dataset: r.share for r in store.lineage(model) if r.version == version}
    if not recorded:  # a version already recorded is judged by what was true then, not now
        retired = [name for name in mix if datasets[name].state == "retired"]
        if retired:
            raise LineageError(
                f"governance violation: model {model} version {version} would train on retired dataset(s) "
                f"{', '.join(retired)}: remove them from --mix, or run `careful-monitor datasets reactivate "
                f"{retired[0]} --by WHO --reason WHY` first")
    try:
        return store.put_lineage(model, version, mix, by=by)
    except LineageError:
        raise
    except RegistryError as exc:
        raise LineageError(str(exc)) from None


def _parent(rec: DatasetRecord) -> str | None:
    provenance = rec.card.get("provenance")
    parent = provenance.get("parent") if isinstance(provenance, dict) else None
    return parent if isinstance(parent, str) and parent else None


def generation(datasets: Mapping[str, DatasetRecord], name: str) -> int:
    """0 for a real (or evaluation) set; a synthetic set: 1 + its registered parent's depth, else 1."""
    depth, seen = 0, set()
    current: str | None = name
    while current is not None and current in datasets and current not in seen:
        rec = datasets[current]
        if rec.role != "synthetic":
            break
        seen.add(current)
        depth += 1
        current = _parent(rec)
    return depth


def check_parent(store: Store, manifest: str, card: Card) -> None:
    """`provenance.parent` must name a registered dataset, and following parents must not come back to the card."""
    parent = card.provenance.parent if card.provenance is not None else None
    if parent is None:
        return
    datasets = {r.name: r for r in store.list_datasets()}
    if parent not in datasets:
        raise ManifestError(manifest, "provenance.parent",
                            f"'{parent}' is not registered: register the parent dataset first")
    chain: list[str] = [card.name]
    current: str | None = parent
    while current is not None:
        chain.append(current)
        if current == card.name:
            raise ManifestError(manifest, "provenance.parent",
                                f"parent cycle {' -> '.join(chain)}: a dataset cannot descend from itself")
        rec = datasets.get(current)
        current = None if rec is None or current in chain[:-1] else _parent(rec)


def _versions(rows: Sequence[LineageRecord]) -> list[tuple[str, list[LineageRecord]]]:
    """Rows grouped by version, oldest first (rows come ordered by recorded_at, version, dataset)."""
    out: dict[str, list[LineageRecord]] = {}
    for r in rows:
        out.setdefault(r.version, []).append(r)
    return list(out.items())


def lineage_doc(store: Store, model: str) -> dict[str, Any]:
    """The JSON of `lineage show --json` and `/api/models/<model>/lineage`."""
    datasets = {r.name: r for r in store.list_datasets()}
    versions: list[dict[str, Any]] = []
    previous_at = None
    for version, rows in _versions(store.lineage(model)):
        mix, fresh_share = [], 0.0
        for r in rows:
            rec = datasets.get(r.dataset)
            role = rec.role if rec else None
            fresh = bool(rec and role == "real" and (previous_at is None or rec.registered_at > previous_at))
            if fresh:
                fresh_share += r.share
            mix.append({"dataset": r.dataset, "share": round(r.share, 6), "role": role,
                        "state": rec.state if rec else None, "parent": _parent(rec) if rec else None,
                        "generation": generation(datasets, r.dataset), "fresh_real": fresh})
        versions.append({"version": version, "recorded_at": iso_utc(rows[0].recorded_at),
                         "recorded_by": rows[0].recorded_by, "fresh_real_share": round(fresh_share, 6), "mix": mix})
        previous_at = rows[0].recorded_at
    return {"model": model, "versions": versions}


def _natural(version: str) -> list[Any]:
    """Sort key: digit runs compared as numbers, so version 10 comes after 9."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", version) if part]


def trained_versions(store: Store, models: Sequence[str]) -> dict[tuple[str, str], list[str]]:
    """(model, dataset) -> the recorded versions of the model whose mix includes the dataset, sorted naturally."""
    wanted = set(models)
    out: dict[tuple[str, str], list[str]] = {}
    for r in store.lineage():
        if r.model in wanted:
            out.setdefault((r.model, r.dataset), []).append(r.version)
    return {key: sorted(set(v), key=_natural) for key, v in out.items()}


def mix_mismatches(cfg: Config, store: Store) -> list[str]:
    """Models whose config `training_mix` differs from their latest recorded version's mix (shares normalised)."""
    out = []
    rows = store.lineage()
    for model, m in cfg.models.items():
        grouped = _versions([r for r in rows if r.model == model])
        if not grouped or not m.training_mix:
            continue
        version, latest = grouped[-1]
        recorded = {r.dataset: r.share for r in latest}
        total = sum(m.training_mix.values()) or 1.0
        configured = {d: w / total for d, w in m.training_mix.items() if w > 0}
        if set(configured) != set(recorded) or any(abs(configured[d] - recorded[d]) > SUM_TOLERANCE
                                                   for d in configured):
            fmt = lambda mix: ", ".join(f"{d}={s:.2f}" for d, s in sorted(mix.items()))  # noqa: E731
            out.append(f"models.{model}.training_mix ({fmt(configured)}) differs from recorded version {version} "
                       f"({fmt(recorded)})")
    return out
