"""CAREFUL dataset cards (manifests): validated once, with errors that name the field."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from careful_monitor.errors import ManifestError
from careful_monitor.safe_yaml import UnsafeYAMLError, load_yaml

#: the built-in use-limit vocabulary (README "Governance"): slug -> which use of the dataset it forbids
USE_LIMITS = {
    "no-training": "in any model's training_mix (training or fine-tuning)",
    "no-fine-tuning": "in the training_mix of a model with training_kind: fine-tuning",
    "no-evaluation": "in any model's evaluation list",
    "no-production-monitoring": "as a reference (anchor or mix member) of a monitored model",
}


class Provenance(BaseModel):
    model_config = ConfigDict(extra="allow")
    generator: str | None = None
    #: the registered dataset this one was generated from (checked at registration; cycles refused)
    parent: str | None = None


class Card(BaseModel):
    """Required: name, role, data; a synthetic set also needs anchored_by and provenance.generator."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    role: Literal["real", "synthetic", "evaluation"]
    data: str = Field(min_length=1)
    purpose: str | None = None
    anchored_by: str | None = None
    provenance: Provenance | None = None
    evaluation_isolation: dict[str, Any] | None = None
    filtering: dict[str, Any] | None = None
    use_limits: list[str] | None = None
    lifecycle: dict[str, Any] | None = None

    @field_validator("use_limits")
    @classmethod
    def _known_limits(cls, v: list[str] | None, info: ValidationInfo) -> list[str] | None:
        """Only the built-in slugs and the config's `governance.use_limits` (passed as context `use_limits`)."""
        allowed = [*USE_LIMITS, *((info.context or {}).get("use_limits") or ())]
        for slug in v or ():
            if slug not in allowed:
                raise ValueError(f"unknown use limit '{slug}': allowed are {', '.join(allowed)} "
                                 "(declare a domain-specific no-<purpose> slug in the config's governance.use_limits)")
        return v

    @model_validator(mode="after")
    def _synthetic_fields(self) -> Card:
        if self.role == "synthetic":
            if not self.anchored_by:
                raise ValueError("anchored_by: required for role synthetic (name the real anchor dataset)")
            if self.provenance is None or not self.provenance.generator:
                raise ValueError("provenance.generator: required for role synthetic (which generator made it)")
        return self


def load_card(path: str | Path, use_limits: Sequence[str] = (), *,
              allow_outside: bool = False) -> tuple[Card, dict[str, Any], Path]:
    """Parse and validate a manifest; return the card, the raw mapping and the data file path.

    The YAML is parsed with bounds (`careful_monitor.safe_yaml`: 1 MiB, few aliases). `data` must
    stay inside the card's folder: an absolute path, `../` or a symlink resolving outside it is
    refused unless `allow_outside` (`datasets register --allow-outside`).
    """
    p = Path(path)
    if not p.is_file():
        raise ManifestError(str(p), "(file)", "does not exist")
    try:
        raw = load_yaml(p)
    except UnsafeYAMLError as exc:
        raise ManifestError(str(p), "(file)", f"refused: {exc}") from None
    except yaml.YAMLError as exc:
        raise ManifestError(str(p), "(file)", f"not valid YAML/JSON: {exc}") from None
    except OSError as exc:
        raise ManifestError(str(p), "(file)", f"cannot be read: {exc.strerror or exc}") from None
    if not isinstance(raw, dict):
        raise ManifestError(str(p), "(root)", "must be a mapping of CAREFUL card fields")
    try:
        card = Card.model_validate(raw, context={"use_limits": list(use_limits)})
    except ValidationError as err:
        e = err.errors()[0]
        loc = ".".join(str(x) for x in e["loc"])
        msg = e["msg"]
        if not loc and msg.startswith("Value error, "):
            loc, _, msg = msg[len("Value error, "):].partition(": ")
        msg = msg.removeprefix("Value error, ")
        raise ManifestError(str(p), loc or "(root)", msg) from None
    folder = p.resolve().parent
    written = Path(card.data)
    if written.is_absolute() and not allow_outside:
        raise ManifestError(str(p), "data", f"{card.data!r} is an absolute path; give it relative to the card's "
                                            "folder (or pass --allow-outside)")
    data = written if written.is_absolute() else folder / written
    try:
        resolved = data.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise ManifestError(str(p), "data", f"cannot resolve {card.data!r}: {exc}") from None
    if not allow_outside and not resolved.is_relative_to(folder):
        raise ManifestError(str(p), "data", f"{card.data!r} resolves outside the card's folder {str(folder)!r} "
                                            "('..' or a symlink); move the file next to the card "
                                            "(or pass --allow-outside)")
    if not resolved.is_file() and not resolved.is_dir():  # a folder is a Parquet dataset (sources.datasets)
        raise ManifestError(str(p), "data", f"file {card.data!r} does not exist (relative to the card's folder)")
    return card, raw, resolved


def data_relative(card_path: str | Path, data_path: Path) -> str:
    """The data path as shown to users: relative to the card's folder, never absolute."""
    return os.path.relpath(data_path, Path(card_path).resolve().parent)
