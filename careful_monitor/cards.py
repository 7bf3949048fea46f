"""CAREFUL dataset cards (manifests): validated once, with errors that name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from careful_monitor.errors import ManifestError


class Provenance(BaseModel):
    model_config = ConfigDict(extra="allow")
    generator: str | None = None


class Card(BaseModel):
    """Required: name, role, data; a synthetic set also needs anchored_by and provenance.generator."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    role: Literal["real", "synthetic"]
    data: str = Field(min_length=1)
    purpose: str | None = None
    anchored_by: str | None = None
    provenance: Provenance | None = None
    evaluation_isolation: dict[str, Any] | None = None
    filtering: dict[str, Any] | None = None
    use_limits: list[str] | None = None
    lifecycle: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _synthetic_fields(self) -> Card:
        if self.role == "synthetic":
            if not self.anchored_by:
                raise ValueError("anchored_by: required for role synthetic (name the real anchor dataset)")
            if self.provenance is None or not self.provenance.generator:
                raise ValueError("provenance.generator: required for role synthetic (which generator made it)")
        return self


def load_card(path: str | Path) -> tuple[Card, dict[str, Any], Path]:
    """Parse and validate a manifest; return the card, the raw mapping and the data file path."""
    p = Path(path)
    if not p.is_file():
        raise ManifestError(str(p), "(file)", "does not exist")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ManifestError(str(p), "(file)", f"not valid YAML/JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ManifestError(str(p), "(root)", "must be a mapping of CAREFUL card fields")
    try:
        card = Card.model_validate(raw)
    except ValidationError as err:
        e = err.errors()[0]
        loc = ".".join(str(x) for x in e["loc"])
        msg = e["msg"]
        if not loc and msg.startswith("Value error, "):
            loc, _, msg = msg[len("Value error, "):].partition(": ")
        raise ManifestError(str(p), loc or "(root)", msg) from None
    data = Path(card.data)
    if not data.is_absolute():
        data = p.resolve().parent / data
    if not data.is_file():
        raise ManifestError(str(p), "data", f"file {str(data)!r} does not exist")
    return card, raw, data
