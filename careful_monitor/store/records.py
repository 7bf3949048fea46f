"""What the store hands back for the registry: plain frozen records, detached from any session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class DatasetRecord:
    """A registered dataset: CAREFUL card, reference profile (opaque bytes) and lifecycle state."""

    name: str
    role: str
    anchored_by: str | None
    state: str
    card: dict[str, Any]
    profile: bytes
    n_rows: int
    data_sha256: str
    registered_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One entry of the registry's append-only audit log."""

    id: int
    dataset: str
    action: str
    from_state: str | None
    to_state: str
    by: str
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class LineageRecord:
    """One dataset of one recorded model version's training mix, with its share, time and actor."""

    model: str
    version: str
    dataset: str
    share: float
    recorded_at: datetime
    recorded_by: str
