"""The store: dataset registry, window results, alerts, engine state and Kafka offsets in one SQL database.

SQLite (the embedded default) or PostgreSQL through psycopg 3. Every method opens its own short
session; `commit_batch` writes one closed batch (windows, alerts, engine snapshots, the offsets
they cover and the event ids they counted) in one transaction, idempotently, so a redelivered batch
after a crash changes nothing.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, delete, event, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, CursorResult, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from careful_monitor.contracts import window_json
from careful_monitor.engine.types import WindowResult
from careful_monitor.errors import NotFoundError, RegistryError, StoreError
from careful_monitor.store.models import (
    AlertRow,
    AuditRow,
    DatasetRow,
    EngineStateRow,
    LineageRow,
    OffsetRow,
    SeenIdRow,
    WindowRow,
)
from careful_monitor.store.records import AuditRecord, DatasetRecord, LineageRecord

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

#: action -> (states it is allowed from, state it leads to)
LIFECYCLE: Mapping[str, tuple[frozenset[str], str]] = MappingProxyType({
    "review": (frozenset({"active"}), "under_review"),
    "retire": (frozenset({"active", "under_review"}), "retired"),
    "reactivate": (frozenset({"under_review", "retired"}), "active"),
})

# execution option asking for a write transaction (SQLite: BEGIN IMMEDIATE, so two writers queue on
# the busy timeout instead of one failing when it upgrades a read lock)
_WRITE = "careful_monitor_write"
# PostgreSQL advisory lock held while migrating, so two workers starting together migrate once
_MIGRATION_LOCK = 0x63617265666C6D  # "careflm"
_SQLITE_BUSY_TIMEOUT_S = 30.0
_NO_STATES: Mapping[str, bytes] = MappingProxyType({})
_NO_IDS: Mapping[str, tuple[tuple[int, bytes] | None, int]] = MappingProxyType({})


class _NotJSONError(ValueError):
    """A payload (window result, alert, card) holds something JSON cannot represent."""


def _dumps(value: Any) -> str:
    # orjson writes NaN/inf as null (PostgreSQL's json type rejects them) and understands numpy
    try:
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError as exc:
        raise _NotJSONError(f"cannot store as JSON: {exc}") from exc


def iso_utc(at: datetime) -> str:
    """Format a timezone-aware datetime as the API's 'YYYY-MM-DDTHH:MM:SSZ'.

    >>> from datetime import timezone
    >>> iso_utc(datetime(2026, 11, 24, 11, 0, 0, 500, tzinfo=timezone(timedelta(hours=1))))
    '2026-11-24T10:00:00Z'
    """
    return _aware(at).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str | datetime) -> datetime:
    """Read an RFC 3339 timestamp ('...Z' or with an offset) as a UTC datetime; naive ones are UTC."""
    at = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"timestamp {at.isoformat()} is naive: pass a timezone-aware datetime")
    return at


def _rowcount(result: object) -> int:
    """Rows a DELETE touched: `Session.execute` runs DML into a `CursorResult` (typed as a plain `Result`)."""
    assert isinstance(result, CursorResult)
    return result.rowcount


def engine_url(url: str) -> URL:
    """Parse a store URL; plain `postgresql://` (or `postgres://`) means the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(
            "store.url is not a database URL: use e.g. sqlite:///careful.db or postgresql://user@host/db"
        ) from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(f"store.url uses {parsed.get_backend_name()}: only sqlite and postgresql are supported")
    return parsed


def _create_engine(url: URL) -> Engine:
    options: dict[str, Any] = {"json_serializer": _dumps, "json_deserializer": orjson.loads}
    if url.get_backend_name() == "postgresql":
        connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": 10}
        # pre-ping: a connection the server dropped (restart, failover) is replaced, not reported
        return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **options)

    memory = url.database in (None, "", ":memory:")
    options["connect_args"] = {"check_same_thread": False, "timeout": _SQLITE_BUSY_TIMEOUT_S}
    if memory:
        options["poolclass"] = StaticPool  # one connection, or every session sees its own empty database
    engine = create_engine(url, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy emits BEGIN itself (below); pysqlite's own implicit transactions would get in the way
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            _use_wal(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the database file to WAL (it stays so): readers then never block the writer.

    The switch needs the file to itself and, unlike other statements, fails at once rather than
    waiting when another connection is busy, so it is retried until the busy timeout.
    """
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    deadline = time.monotonic() + _SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class Store:
    """The SQL store of careful-monitor; `Store(url)` connects and, by default, applies pending migrations."""

    def __init__(self, url: str, *, auto_migrate: bool = True) -> None:
        self._url = engine_url(url)
        self._engine = _create_engine(self._url)
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        self._alembic = Config()
        self._alembic.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
        self._head = ScriptDirectory.from_config(self._alembic).get_current_head() or ""
        #: (from, to) revisions applied when this Store was opened, None if the schema was current
        self.applied_migration: tuple[str | None, str] | None = None
        try:
            if auto_migrate:
                before, after = self.upgrade()
                if before != after:
                    self.applied_migration = (before, after)
            else:
                current = self._current_revision()
                if current != self._head:
                    raise StoreError(
                        f"database schema is at revision {current or 'none'}, needs {self._head}: "
                        "run `careful-monitor db upgrade`"
                    )
        except BaseException:
            self._engine.dispose()
            raise

    @property
    def url(self) -> str:
        """The database URL with its password masked, for logs and messages."""
        return self._url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema -------------------------------------------------------------------------------

    def upgrade(self) -> tuple[str | None, str]:
        """Apply pending migrations; returns (revision before, revision after). Safe to run concurrently."""
        with self._guard(), self._engine.connect() as plain:
            connection = plain.execution_options(**{_WRITE: True})
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
                before = self._check_known(MigrationContext.configure(connection).get_current_revision())
                if before != self._head:
                    self._alembic.attributes["connection"] = connection
                    try:
                        command.upgrade(self._alembic, "head")
                    finally:
                        self._alembic.attributes.pop("connection", None)
        return before, self._head

    def pending_migrations(self) -> bool:
        """True when the database schema is behind this version of careful-monitor."""
        return self._current_revision() != self._head

    def _current_revision(self) -> str | None:
        with self._guard(), self._engine.connect() as connection:
            return self._check_known(MigrationContext.configure(connection).get_current_revision())

    def _check_known(self, revision: str | None) -> str | None:
        if revision is None:
            return None
        script = ScriptDirectory.from_config(self._alembic)
        if revision not in {r.revision for r in script.walk_revisions()}:
            raise StoreError(
                f"database schema is at revision {revision}, which this careful-monitor does not know "
                f"(its newest is {self._head}): upgrade careful-monitor"
            )
        return revision

    def ping(self) -> bool:
        """True when the database answers `SELECT 1` (readiness)."""
        try:
            with self._engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    # -- sessions -----------------------------------------------------------------------------

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn database failures into StoreError naming the (masked) store; keeps the cause chained."""
        try:
            yield
        except SQLAlchemyError as exc:
            if isinstance(exc.__cause__, _NotJSONError):  # the caller's bug, not the store's
                raise exc.__cause__ from None
            cause = exc.orig if isinstance(exc, DBAPIError) else exc
            detail = " ".join(str(cause).split())[:500]
            raise StoreError(f"store {self.url}: {type(cause).__name__}: {detail}") from exc

    @contextmanager
    def _session(self, *, write: bool = False) -> Iterator[Session]:
        with self._guard(), self._sessions() as session, session.begin():
            if write:
                session.connection(execution_options={_WRITE: True})
            yield session

    def _insert(self, table: Any) -> Any:
        """INSERT with ON CONFLICT support for this dialect."""
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    # -- datasets -----------------------------------------------------------------------------

    def put_dataset(self, *, name: str, role: str, anchored_by: str | None, card: dict[str, Any],
                    profile: bytes, n_rows: int, data_sha256: str, by: str) -> DatasetRecord:
        """Register a dataset, or replace the card and profile of a registered one (its state is kept)."""
        now = datetime.now(UTC)
        with self._session(write=True) as session:
            if anchored_by is not None and session.get(DatasetRow, anchored_by) is None:
                raise RegistryError(
                    f"dataset '{name}' is anchored by '{anchored_by}', which is not registered: "
                    f"register '{anchored_by}' first"
                )
            values = {"role": role, "anchored_by": anchored_by, "card": card, "profile": profile,
                      "n_rows": n_rows, "data_sha256": data_sha256, "updated_at": now}
            # RETURNING, not rowcount: psycopg reports 1 for an INSERT that ON CONFLICT turned into nothing
            inserted = session.execute(
                self._insert(DatasetRow.__table__)
                .values(name=name, state="active", registered_at=now, **values)
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(DatasetRow.__table__.c.name)
            ).first()
            if inserted:
                action, from_state, state = "registered", None, "active"
                reason = f"{n_rows} rows, data sha256 {data_sha256[:12]}"
            else:
                row = session.scalars(select(DatasetRow).where(DatasetRow.name == name).with_for_update()).one()
                action, from_state, state = "re-registered", row.state, row.state
                reason = (f"{n_rows} rows, data unchanged" if row.data_sha256 == data_sha256 else
                          f"{n_rows} rows, data sha256 {row.data_sha256[:12]} -> {data_sha256[:12]}")
                for key, value in values.items():
                    setattr(row, key, value)
            session.add(AuditRow(dataset=name, action=action, from_state=from_state, to_state=state,
                                 actor=by, reason=reason, occurred_at=now))
            session.flush()
            return _dataset_record(session.get_one(DatasetRow, name))

    def get_dataset(self, name: str) -> DatasetRecord | None:
        """The registered dataset `name`, or None."""
        with self._session() as session:
            row = session.get(DatasetRow, name)
            return None if row is None else _dataset_record(row)

    def list_datasets(self) -> list[DatasetRecord]:
        """Every registered dataset, ordered by name."""
        with self._session() as session:
            return [_dataset_record(r) for r in session.scalars(select(DatasetRow).order_by(DatasetRow.name))]

    def dataset_states(self) -> dict[str, str]:
        """Every registered dataset's lifecycle state, by name (no cards or profiles loaded: cheap to poll)."""
        with self._session() as session:
            return {name: state for name, state in session.execute(select(DatasetRow.name, DatasetRow.state))}

    def set_dataset_state(self, name: str, action: str, *, by: str, reason: str) -> DatasetRecord:
        """Apply a lifecycle action ('review', 'retire', 'reactivate') and log it in the audit log."""
        if action not in LIFECYCLE:
            raise RegistryError(f"unknown lifecycle action '{action}': use one of {', '.join(LIFECYCLE)}")
        allowed_from, to_state = LIFECYCLE[action]
        with self._session(write=True) as session:
            row = session.scalars(select(DatasetRow).where(DatasetRow.name == name).with_for_update()).first()
            if row is None:
                raise NotFoundError(f"no dataset named '{name}' is registered")
            if row.state not in allowed_from:
                possible = [a for a, (sources, _) in LIFECYCLE.items() if row.state in sources]
                raise RegistryError(
                    f"dataset '{name}' is {row.state}: cannot {action} it "
                    f"(allowed from {row.state}: {', '.join(possible) or 'none'})"
                )
            now = datetime.now(UTC)
            session.add(AuditRow(dataset=name, action=action, from_state=row.state, to_state=to_state,
                                 actor=by, reason=reason, occurred_at=now))
            row.state, row.updated_at = to_state, now
            session.flush()
            return _dataset_record(row)

    def audit_log(self, name: str | None = None) -> list[AuditRecord]:
        """The registry's audit log, oldest first; only `name`'s entries when given."""
        query = select(AuditRow).order_by(AuditRow.id)
        if name is not None:
            query = query.where(AuditRow.dataset == name)
        with self._session() as session:
            return [
                AuditRecord(id=r.id, dataset=r.dataset, action=r.action, from_state=r.from_state,
                            to_state=r.to_state, by=r.actor, reason=r.reason, at=r.occurred_at)
                for r in session.scalars(query)
            ]

    # -- lineage ------------------------------------------------------------------------------

    def put_lineage(self, model: str, version: str, mix: Mapping[str, float], *, by: str) -> bool:
        """Record the training mix of one model version; True if recorded, False if it was already, identically.

        A version is recorded once: a different mix for a recorded version is a RegistryError.
        """
        now = datetime.now(UTC)
        with self._session(write=True) as session:
            query = select(LineageRow).where(LineageRow.model == model, LineageRow.version == version)
            existing = {r.dataset: r.share for r in session.scalars(query.with_for_update())}
            if existing:
                if set(existing) == set(mix) and all(abs(existing[d] - mix[d]) < 1e-9 for d in mix):
                    return False
                shown = ", ".join(f"{d}={s:g}" for d, s in sorted(existing.items()))
                raise RegistryError(
                    f"model {model} version {version} is already recorded with mix {shown}: a version is recorded "
                    "once; record the retrained model as a new version")
            missing = sorted(set(mix) - set(session.scalars(select(DatasetRow.name).where(DatasetRow.name.in_(mix)))))
            if missing:
                raise RegistryError(f"--mix names {', '.join(missing)}, not registered: register it first "
                                    "(careful-monitor datasets register <its manifest>)")
            session.add_all([LineageRow(model=model, version=version, dataset=d, share=float(mix[d]),
                                        recorded_at=now, recorded_by=by) for d in sorted(mix)])
        return True

    def lineage(self, model: str | None = None) -> list[LineageRecord]:
        """Recorded lineage rows (of `model`, or all), oldest version first, then by dataset."""
        query = select(LineageRow).order_by(LineageRow.model, LineageRow.recorded_at, LineageRow.version,
                                            LineageRow.dataset)
        if model is not None:
            query = query.where(LineageRow.model == model)
        with self._session() as session:
            return [LineageRecord(model=r.model, version=r.version, dataset=r.dataset, share=r.share,
                                  recorded_at=r.recorded_at, recorded_by=r.recorded_by)
                    for r in session.scalars(query)]

    # -- windows, alerts, engine state, offsets ------------------------------------------------

    def commit_batch(self, *, windows: Sequence[WindowResult | Mapping[str, Any]] = (),
                     alerts: Sequence[Mapping[str, Any]] = (),
                     states: Mapping[str, bytes] = _NO_STATES,
                     offsets: Sequence[tuple[str, str, int, int]] = (),
                     seen_ids: Mapping[str, tuple[tuple[int, bytes] | None, int]] = _NO_IDS) -> None:
        """Write window results, alerts, engine snapshots, consumer offsets and seen event ids in one transaction.

        Typed window results are serialised here to their JSON contract (`careful_monitor.contracts`);
        alerts come as documents, written by `Pipeline.alert_docs` with the lineage they need; a
        document's `plots` (careful_monitor.evidence) goes to its own column, not into the alert JSON.

        Windows (by model and window) and alerts (by alert_id) already stored are left as they are, so
        a redelivered batch writes nothing twice and never resets an ack; snapshots and offsets are
        replaced. `seen_ids`: model -> ((first seq, packed id hashes) this batch recorded, or None;
        the oldest seq kept): one row added (replaced if a retry stored it already), and the rows
        whose ids are all older than that deleted, so the table changes by the batch's delta only.
        Rows are written in key order, so concurrent writers lock them in the same order.
        """
        now = datetime.now(UTC)
        window_rows: dict[tuple[str, int], dict[str, Any]] = {}
        for window in windows:
            row = _window_row(window_json(window) if isinstance(window, WindowResult) else window)
            window_rows.setdefault((row["model"], row["window_index"]), row)
        alert_rows: dict[str, dict[str, Any]] = {}
        for alert in alerts:
            row = _alert_row(alert)
            alert_rows.setdefault(row["alert_id"], row)
        state_rows = [{"model": m, "snapshot": bytes(states[m]), "updated_at": now} for m in sorted(states)]
        offset_rows = {
            (str(group), str(topic), int(partition)): int(next_offset)
            for group, topic, partition, next_offset in offsets
        }
        with self._session(write=True) as session:
            if window_rows:
                session.execute(
                    self._insert(WindowRow.__table__).on_conflict_do_nothing(index_elements=["model", "window_index"]),
                    [window_rows[key] for key in sorted(window_rows)],
                )
            if alert_rows:
                session.execute(
                    self._insert(AlertRow.__table__).on_conflict_do_nothing(index_elements=["alert_id"]),
                    [alert_rows[key] for key in sorted(alert_rows)],
                )
            if state_rows:
                insert = self._insert(EngineStateRow.__table__)
                session.execute(
                    insert.on_conflict_do_update(
                        index_elements=["model"],
                        set_={"snapshot": insert.excluded.snapshot, "updated_at": insert.excluded.updated_at},
                    ),
                    state_rows,
                )
            if offset_rows:
                insert = self._insert(OffsetRow.__table__)
                session.execute(
                    insert.on_conflict_do_update(
                        index_elements=["consumer_group", "topic", "kafka_partition"],
                        set_={"next_offset": insert.excluded.next_offset, "updated_at": insert.excluded.updated_at},
                    ),
                    [
                        {"consumer_group": g, "topic": t, "kafka_partition": p, "next_offset": n, "updated_at": now}
                        for (g, t, p), n in sorted(offset_rows.items())
                    ],
                )
            for model in sorted(seen_ids):
                new, oldest = seen_ids[model]
                session.execute(delete(SeenIdRow).where(SeenIdRow.model == model, SeenIdRow.last_seq < int(oldest)),
                                execution_options={"synchronize_session": False})
                if new is not None:
                    first, packed = new
                    insert = self._insert(SeenIdRow.__table__)
                    session.execute(insert.values(model=model, first_seq=int(first),
                                                  last_seq=int(first) + len(packed) // 8 - 1, id_hashes=bytes(packed))
                                    .on_conflict_do_update(index_elements=["model", "first_seq"],
                                                           set_={"last_seq": insert.excluded.last_seq,
                                                                 "id_hashes": insert.excluded.id_hashes}))

    def load_seen_ids(self, model: str, last: int) -> list[tuple[int, bytes]]:
        """(first seq, packed id hashes) of the `seen_ids` rows holding `model`'s newest `last` ids, oldest first."""
        with self._session() as session:
            top = session.scalar(select(func.max(SeenIdRow.last_seq)).where(SeenIdRow.model == model))
            if top is None or last <= 0:
                return []
            query = (select(SeenIdRow.first_seq, SeenIdRow.id_hashes)
                     .where(SeenIdRow.model == model, SeenIdRow.last_seq > int(top) - last)
                     .order_by(SeenIdRow.first_seq))
            return [(int(first), bytes(packed)) for first, packed in session.execute(query)]

    def load_states(self) -> dict[str, bytes]:
        """Every model's latest engine snapshot."""
        with self._session() as session:
            return {r.model: r.snapshot for r in session.scalars(select(EngineStateRow))}

    def load_state(self, model: str) -> bytes | None:
        """`model`'s latest engine snapshot, or None."""
        with self._session() as session:
            row = session.get(EngineStateRow, model)
            return None if row is None else row.snapshot

    def reset_states(self, model: str | None = None) -> int:
        """Drop the stored engine state of `model` (or of every model); returns how many were dropped.

        The next window of such a model starts empty; window numbering continues from its stored windows.
        """
        query = delete(EngineStateRow)
        if model is not None:
            query = query.where(EngineStateRow.model == model)
        with self._session(write=True) as session:
            return int(_rowcount(session.execute(query, execution_options={"synchronize_session": False})))

    def next_window_index(self, model: str) -> int:
        """One past the newest stored window of `model` (0 when none is stored)."""
        query = select(func.max(WindowRow.window_index)).where(WindowRow.model == model)
        with self._session() as session:
            last = session.scalar(query)
            return 0 if last is None else int(last) + 1

    def load_offsets(self, group: str, topic: str) -> dict[int, int]:
        """partition -> next offset to read, as last committed with the engine state."""
        query = select(OffsetRow).where(OffsetRow.consumer_group == group, OffsetRow.topic == topic)
        with self._session() as session:
            return {r.kafka_partition: r.next_offset for r in session.scalars(query)}

    def group_offsets(self, group: str) -> dict[tuple[str, int], int]:
        """(topic, partition) -> next offset for every topic of `group` (replay sources: group "replay")."""
        query = select(OffsetRow).where(OffsetRow.consumer_group == group)
        with self._session() as session:
            return {(r.topic, r.kafka_partition): r.next_offset for r in session.scalars(query)}

    def last_windows(self, model: str, last: int = 10) -> list[dict[str, Any]]:
        """The newest `last` window results of `model`, oldest first."""
        query = (select(WindowRow.payload).where(WindowRow.model == model)
                 .order_by(WindowRow.window_index.desc()).limit(max(last, 0)))
        with self._session() as session:
            return list(reversed(session.scalars(query).all()))

    def count_windows(self, model: str | None = None) -> int:
        """How many window results are stored (for `model`, or all)."""
        query = select(func.count()).select_from(WindowRow)
        if model is not None:
            query = query.where(WindowRow.model == model)
        with self._session() as session:
            return int(session.scalar(query) or 0)

    def list_alerts(self, *, state: str | None = None, model: str | None = None,
                    dataset: str | None = None) -> list[dict[str, Any]]:
        """Stored alerts, acknowledged ones included, ordered by model, window, dataset."""
        query = select(AlertRow).order_by(AlertRow.model, AlertRow.window_index, AlertRow.dataset,
                                          AlertRow.alert_id)
        for column, value in ((AlertRow.state, state), (AlertRow.model, model), (AlertRow.dataset, dataset)):
            if value is not None:
                query = query.where(column == value)
        with self._session() as session:
            return [_alert_dict(r) for r in session.scalars(query)]

    def get_alert(self, alert_id: str) -> dict[str, Any]:
        """The alert `alert_id` with its current ack."""
        with self._session() as session:
            row = session.get(AlertRow, alert_id)
            if row is None:
                raise NotFoundError(f"no alert with id '{alert_id}'")
            return _alert_dict(row)

    def alert_plots(self, alert_id: str) -> list[dict[str, Any]]:
        """The plot data stored with the alert (`plots` of its document at `commit_batch`); [] when none."""
        with self._session() as session:
            plots = session.scalar(select(AlertRow.plots).where(AlertRow.alert_id == alert_id))
            return list(plots or [])

    def ack_alert(self, alert_id: str, *, by: str, at: datetime) -> dict[str, Any]:
        """Acknowledge an alert (a later ack replaces an earlier one); returns the alert."""
        at = _aware(at).astimezone(UTC).replace(microsecond=0)
        with self._session(write=True) as session:
            row = session.scalars(select(AlertRow).where(AlertRow.alert_id == alert_id).with_for_update()).first()
            if row is None:
                raise NotFoundError(f"no alert with id '{alert_id}'")
            row.acked_by, row.acked_at = by, at
            session.flush()
            return _alert_dict(row)

    def prune(self, *, retention_days: int, now: datetime) -> tuple[int, int]:
        """Delete window results and acknowledged alerts older than the retention; returns both counts.

        Unacknowledged alerts, datasets, the audit log, engine state and offsets are never deleted.
        """
        if retention_days < 0:
            raise ValueError(f"retention_days is {retention_days}: must be >= 0")
        cutoff = _aware(now) - timedelta(days=retention_days)
        with self._session(write=True) as session:
            windows = _rowcount(session.execute(
                delete(WindowRow).where(WindowRow.window_end < cutoff.timestamp()),
                execution_options={"synchronize_session": False},
            ))
            alerts = _rowcount(session.execute(
                delete(AlertRow).where(AlertRow.acked_at.is_not(None), AlertRow.created_at < cutoff),
                execution_options={"synchronize_session": False},
            ))
        return int(windows), int(alerts)


def _dataset_record(row: DatasetRow) -> DatasetRecord:
    return DatasetRecord(name=row.name, role=row.role, anchored_by=row.anchored_by, state=row.state,
                         card=row.card, profile=row.profile, n_rows=row.n_rows, data_sha256=row.data_sha256,
                         registered_at=row.registered_at, updated_at=row.updated_at)


def _require(kind: str, item: Mapping[str, Any], keys: Sequence[str]) -> None:
    missing = [k for k in keys if k not in item]
    if missing:
        raise ValueError(f"{kind} lacks {', '.join(repr(k) for k in missing)}: {dict(item)!r:.200}")


def _window_row(window: Mapping[str, Any]) -> dict[str, Any]:
    _require("window result", window, ("model", "window", "window_start", "window_end", "n_events", "flagged"))
    return {"model": str(window["model"]), "window_index": int(window["window"]),
            "window_start": float(window["window_start"]), "window_end": float(window["window_end"]),
            "n_events": int(window["n_events"]), "flagged": bool(window["flagged"]), "payload": dict(window)}


def _alert_row(alert: Mapping[str, Any]) -> dict[str, Any]:
    _require("alert", alert, ("alert_id", "model", "dataset", "state", "window", "created_at"))
    acked_at = alert.get("acked_at")
    return {"alert_id": str(alert["alert_id"]), "model": str(alert["model"]), "dataset": str(alert["dataset"]),
            "state": str(alert["state"]), "window_index": int(alert["window"]),
            "since_window": None if alert.get("since_window") is None else int(alert["since_window"]),
            "created_at": parse_iso(alert["created_at"]), "acked_by": alert.get("acked_by"),
            "acked_at": None if acked_at is None else parse_iso(acked_at),
            "payload": {k: v for k, v in alert.items() if k != "plots"}, "plots": alert.get("plots")}


def _alert_dict(row: AlertRow) -> dict[str, Any]:
    alert = dict(row.payload)
    alert["acked_by"] = row.acked_by
    alert["acked_at"] = None if row.acked_at is None else iso_utc(row.acked_at)
    return alert
