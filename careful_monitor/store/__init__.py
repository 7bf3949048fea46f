"""The SQL store adapter (SQLAlchemy + Alembic): registry, windows, alerts, engine state, offsets."""

from careful_monitor.store.records import AuditRecord, DatasetRecord, LineageRecord
from careful_monitor.store.repository import Store

__all__ = ["AuditRecord", "DatasetRecord", "LineageRecord", "Store"]
