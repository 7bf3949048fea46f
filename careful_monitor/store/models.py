"""Tables of the store: the dataset registry and its audit log, window results, alerts, engine state, offsets.

The schema itself is created and changed only by the Alembic migrations in `migrations/versions`;
these models describe it for queries (a unit test checks that both agree). Column names avoid SQL
keywords (`window`, `by`, `group`, `partition`) so no dialect needs quoting.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: constraint and index names the migrations use too, so a future migration can address them
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that goes in timezone-aware and comes out timezone-aware in UTC, on every dialect.

    SQLite keeps no offset, so values are normalised to UTC before they are written and read back as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"timestamp {value.isoformat()} is naive: pass a timezone-aware datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        bytes: LargeBinary(),
    }


class DatasetRow(Base):
    """A registered dataset: its CAREFUL card, its reference profile and its lifecycle state."""

    __tablename__ = "datasets"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))
    anchored_by: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20))
    card: Mapped[dict[str, Any]]
    profile: Mapped[bytes]
    n_rows: Mapped[int] = mapped_column(BigInteger)
    data_sha256: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AuditRow(Base):
    """One append-only entry of the registry's audit log (registration or lifecycle change)."""

    __tablename__ = "dataset_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset: Mapped[str] = mapped_column(String(200), ForeignKey("datasets.name"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime]


class WindowRow(Base):
    """The result of one closed window of one model; `payload` is the engine's whole result."""

    __tablename__ = "windows"

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    window_start: Mapped[float] = mapped_column(Float)
    window_end: Mapped[float] = mapped_column(Float, index=True)
    n_events: Mapped[int] = mapped_column(Integer)
    flagged: Mapped[bool] = mapped_column(Boolean)
    payload: Mapped[dict[str, Any]]


class AlertRow(Base):
    """A retirement or stale-anchor alert; `payload` is the alert JSON, the ack lives in its own columns."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_model_window_index", "model", "window_index"),)

    alert_id: Mapped[str] = mapped_column(String(500), primary_key=True)
    model: Mapped[str] = mapped_column(String(200))
    dataset: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(30))
    since_window: Mapped[int | None] = mapped_column(Integer)
    window_index: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    acked_by: Mapped[str | None] = mapped_column(String(200))
    acked_at: Mapped[datetime | None]
    payload: Mapped[dict[str, Any]]
    #: the evidence plots of the alert's window (careful_monitor.evidence), kept after windows are pruned
    plots: Mapped[list[Any] | None] = mapped_column(JSON)


class EngineStateRow(Base):
    """The latest engine snapshot of one model (opaque bytes from the engine)."""

    __tablename__ = "engine_states"

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    snapshot: Mapped[bytes]
    updated_at: Mapped[datetime]


class OffsetRow(Base):
    """The next Kafka offset to read per consumer group, topic and partition, saved with the engine state."""

    __tablename__ = "consumer_offsets"

    consumer_group: Mapped[str] = mapped_column(String(200), primary_key=True)
    topic: Mapped[str] = mapped_column(String(200), primary_key=True)
    kafka_partition: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    next_offset: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]


class LineageRow(Base):
    """One dataset of the training mix of one recorded model version (`lineage record`); written once."""

    __tablename__ = "lineage"

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[str] = mapped_column(String(200), primary_key=True)
    dataset: Mapped[str] = mapped_column(String(200), ForeignKey("datasets.name"), primary_key=True)
    share: Mapped[float] = mapped_column(Float)
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(200))


class SeenIdRow(Base):
    """The event ids one batch recorded for one model, for id dedup (`careful_monitor.runtime.dedup`).

    `id_hashes`: 64-bit hashes as little-endian int64 bytes, the ids of seqs `first_seq..last_seq`;
    a row is deleted once all of them are older than the model's last `limits.dedup_ids`.
    """

    __tablename__ = "seen_ids"
    __table_args__ = (Index("ix_seen_ids_model_last_seq", "model", "last_seq"),)

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    first_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    id_hashes: Mapped[bytes]


class IsolationSetRow(Base):
    """The isolation signatures of one registered dataset: how they were computed (`params`) and from what."""

    __tablename__ = "isolation_sets"

    dataset: Mapped[str] = mapped_column(String(200), ForeignKey("datasets.name"), primary_key=True)
    n_rows: Mapped[int] = mapped_column(BigInteger)
    n_chunks: Mapped[int] = mapped_column(Integer)
    data_sha256: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]]
    computed_at: Mapped[datetime]


class IsolationChunkRow(Base):
    """One chunk of consecutive rows of a dataset: row hashes, word counts, MinHash signatures, sampled n-grams.

    Arrays are stored as little-endian bytes: `row_hashes` int64 per row, `words` uint32 per row (0: no
    text), `signatures` uint32 rows x num_perm, `gram_rows` uint32 (row within the chunk) and `gram_hashes`
    int64 per sampled n-gram. Never the rows themselves.
    """

    __tablename__ = "isolation_chunks"

    dataset: Mapped[str] = mapped_column(String(200), ForeignKey("datasets.name"), primary_key=True)
    chunk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    first_row: Mapped[int] = mapped_column(BigInteger)
    n_rows: Mapped[int] = mapped_column(Integer)
    row_hashes: Mapped[bytes]
    words: Mapped[bytes]
    signatures: Mapped[bytes]
    gram_rows: Mapped[bytes]
    gram_hashes: Mapped[bytes]


class IsolationResultRow(Base):
    """The last isolation check of one (evaluation set, dataset) pair; `examples` holds row numbers only."""

    __tablename__ = "isolation_results"

    evaluation: Mapped[str] = mapped_column(String(200), ForeignKey("datasets.name"), primary_key=True)
    dataset: Mapped[str] = mapped_column(String(200), ForeignKey("datasets.name"), primary_key=True)
    rows_checked: Mapped[int] = mapped_column(BigInteger)
    exact: Mapped[int] = mapped_column(BigInteger)
    near: Mapped[int] = mapped_column(BigInteger)
    rate: Mapped[float] = mapped_column(Float)
    examples: Mapped[dict[str, Any]]
    details: Mapped[dict[str, Any]]
    computed_at: Mapped[datetime]


class GateReportRow(Base):
    """The last pre-flight gate report of one dataset (careful_monitor.gates): its JSON form, replaced by each run."""

    __tablename__ = "gate_reports"

    dataset: Mapped[str] = mapped_column(String(200), ForeignKey("datasets.name"), primary_key=True)
    report: Mapped[dict[str, Any]]
    computed_at: Mapped[datetime]
