"""Behaviour of the store, against SQLite here; tests/integration/test_store_postgres.py reruns every
test of this module against a real PostgreSQL server by overriding the `store_url` fixture."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from careful_monitor.errors import NotFoundError, RegistryError, StoreError
from careful_monitor.store import AuditRecord, DatasetRecord, LineageRecord, Store
from careful_monitor.store.models import Base
from careful_monitor.store.repository import LIFECYCLE, engine_url

HEAD = "0006"
NOW = datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)


@pytest.fixture
def store_url(tmp_path: Any) -> str:
    """An empty database; the PostgreSQL suite overrides this with a fresh PostgreSQL database."""
    return f"sqlite:///{tmp_path / 'careful.db'}"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store(store_url) as opened:
        yield opened


def window(model: str, index: int, *, end: float | None = None, **extra: Any) -> dict[str, Any]:
    end = 1_764_000_000.0 + 60.0 * index if end is None else end
    return {"model": model, "window": index, "window_start": end - 60.0, "window_end": end,
            "n_events": 1000, "flagged": bool(extra.pop("flagged", False)), "model_versions": ["7"],
            "features": {"inputs.amount": {"ks": {"statistic": 0.01, "p_value": 0.9}}}, **extra}


def alert(model: str, dataset: str, index: int, *, state: str = "retire_recommended",
          created_at: str = "2026-11-24T10:00:00Z") -> dict[str, Any]:
    return {"alert_id": f"{model}:{dataset}:{index}:{state}", "model": model, "dataset": dataset, "state": state,
            "since_window": index - 4, "window": index, "window_end": 1_764_000_000.0 + index,
            "created_at": created_at, "model_versions": ["7"],
            "evidence": [{"feature": "inputs.amount", "signal": "tail_mass_ratio", "value": 0.31, "p_value": 1e-9}],
            "affinity": 0.72, "share": 0.35, "share_identifiable": True,
            "action": f"retire {dataset} from the next training mix", "acked_by": None, "acked_at": None}


def register(store: Store, name: str, *, role: str = "real", anchored_by: str | None = None,
             sha: str = "a" * 64, card: dict[str, Any] | None = None, profile: bytes = b"\x00profile\xff",
             by: str = "alice") -> DatasetRecord:
    return store.put_dataset(name=name, role=role, anchored_by=anchored_by, card=card or {"name": name, "role": role},
                             profile=profile, n_rows=100, data_sha256=sha, by=by)


# -- schema and connection ---------------------------------------------------------------------


def test_a_new_store_migrates_to_head_and_upgrading_again_is_harmless(store_url: str) -> None:
    with Store(store_url) as store:
        assert store.applied_migration == (None, HEAD)
        assert not store.pending_migrations()
        assert store.upgrade() == (HEAD, HEAD)
        assert store.upgrade() == (HEAD, HEAD)
    with Store(store_url) as again:
        assert again.applied_migration is None
        assert again.ping()


def test_without_auto_migrate_an_unmigrated_database_is_refused_with_the_fix(store_url: str) -> None:
    with pytest.raises(StoreError) as refused:
        Store(store_url, auto_migrate=False)
    assert str(refused.value) == (f"database schema is at revision none, needs {HEAD}: "
                                  "run `careful-monitor db upgrade`")
    Store(store_url).close()
    with Store(store_url, auto_migrate=False) as store:
        assert not store.pending_migrations()


def test_a_schema_newer_than_the_code_is_refused(store: Store, store_url: str) -> None:
    engine = create_engine(engine_url(store_url))
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    engine.dispose()
    with pytest.raises(StoreError, match="revision ffff, which this careful-monitor does not know"):
        Store(store_url)


def test_models_agree_with_the_migrations(store: Store, store_url: str) -> None:
    engine = create_engine(engine_url(store_url))
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_two_stores_opening_a_new_database_at_once_both_start(store_url: str) -> None:
    barrier = threading.Barrier(2)
    opened: list[Store] = []
    errors: list[BaseException] = []

    def open_store() -> None:
        barrier.wait()
        try:
            opened.append(Store(store_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert errors == []
        assert sorted(s.applied_migration is None for s in opened) == [False, True]
    finally:
        for s in opened:
            s.close()


def test_postgresql_urls_use_psycopg_3() -> None:
    assert engine_url("postgresql://u:p@db:5432/careful").drivername == "postgresql+psycopg"
    assert engine_url("postgres://u@db/careful").drivername == "postgresql+psycopg"
    assert engine_url("postgresql+psycopg://u@db/careful").drivername == "postgresql+psycopg"
    assert engine_url("sqlite:///x.db").drivername == "sqlite"
    with pytest.raises(StoreError, match="only sqlite and postgresql"):
        engine_url("mysql://u@db/careful")
    with pytest.raises(StoreError, match="not a database URL"):
        engine_url("careful.db")


def test_an_unreachable_server_is_a_store_error_without_the_password() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StoreError) as failed:
        Store(f"postgresql://careful:s3cret@127.0.0.1:{port}/careful?connect_timeout=2")
    assert "s3cret" not in str(failed.value)
    assert f"postgresql+psycopg://careful:***@127.0.0.1:{port}/careful" in str(failed.value)


def test_ping_and_close(store: Store) -> None:
    assert store.ping()
    store.close()
    assert store.ping()  # a closed store reconnects on use


# -- datasets ----------------------------------------------------------------------------------


def test_register_get_and_list_datasets(store: Store) -> None:
    assert store.get_dataset("tickets-real") is None
    assert store.list_datasets() == []
    real = register(store, "tickets-real", card={"name": "tickets-real", "purpose": "the logs", "nested": {"a": [1]}})
    synth = register(store, "tickets-synth-v2", role="synthetic", anchored_by="tickets-real", sha="b" * 64)
    assert real.state == "active" and real.role == "real" and real.anchored_by is None
    assert real.card == {"name": "tickets-real", "purpose": "the logs", "nested": {"a": [1]}}
    assert real.profile == b"\x00profile\xff" and real.n_rows == 100 and real.data_sha256 == "a" * 64
    assert real.registered_at.tzinfo == UTC and real.registered_at == real.updated_at
    assert synth.anchored_by == "tickets-real"
    assert store.get_dataset("tickets-real") == real
    register(store, "a-first-by-name")
    assert [d.name for d in store.list_datasets()] == ["a-first-by-name", "tickets-real", "tickets-synth-v2"]


def test_a_synthetic_set_needs_its_anchor_registered_first(store: Store) -> None:
    with pytest.raises(RegistryError, match="'tickets-real', which is not registered: register 'tickets-real' first"):
        register(store, "tickets-synth-v2", role="synthetic", anchored_by="tickets-real")
    assert store.list_datasets() == [] and store.audit_log() == []


def test_re_registration_replaces_card_and_profile_and_keeps_the_lifecycle_state(store: Store) -> None:
    first = register(store, "tickets-real")
    store.set_dataset_state("tickets-real", "review", by="bob", reason="suspicious")
    again = register(store, "tickets-real", sha="c" * 64, card={"name": "tickets-real", "v": 2}, profile=b"new",
                     by="carol")
    assert again.state == "under_review"
    assert again.card == {"name": "tickets-real", "v": 2} and again.profile == b"new" and again.data_sha256 == "c" * 64
    assert again.registered_at == first.registered_at and again.updated_at >= first.updated_at
    assert len(store.list_datasets()) == 1
    log = store.audit_log("tickets-real")
    assert [(e.action, e.from_state, e.to_state, e.by) for e in log] == [
        ("registered", None, "active", "alice"),
        ("review", "active", "under_review", "bob"),
        ("re-registered", "under_review", "under_review", "carol"),
    ]
    assert "aaaaaaaaaaaa -> cccccccccccc" in log[-1].reason


# every (state, action) pair: the lifecycle of ARCHITECTURE.md, active -> under_review -> retired
TRANSITIONS = {
    ("active", "review"): "under_review", ("active", "retire"): "retired", ("active", "reactivate"): None,
    ("under_review", "review"): None, ("under_review", "retire"): "retired",
    ("under_review", "reactivate"): "active",
    ("retired", "review"): None, ("retired", "retire"): None, ("retired", "reactivate"): "active",
}
PATH_TO = {"active": [], "under_review": ["review"], "retired": ["retire"]}


@pytest.mark.parametrize(("state", "action"), sorted(TRANSITIONS))
def test_lifecycle_transitions(store: Store, state: str, action: str) -> None:
    register(store, "d")
    for step in PATH_TO[state]:
        store.set_dataset_state("d", step, by="bob", reason="setup")
    before = store.audit_log("d")
    expected = TRANSITIONS[(state, action)]
    if expected is None:
        allowed = [a for a in ("review", "retire", "reactivate") if TRANSITIONS[(state, a)] is not None]
        with pytest.raises(RegistryError) as refused:
            store.set_dataset_state("d", action, by="eve", reason="no")
        assert str(refused.value) == f"dataset 'd' is {state}: cannot {action} it (allowed from {state}: " \
                                     f"{', '.join(allowed)})"
        assert store.get_dataset("d").state == state  # type: ignore[union-attr]
        assert store.audit_log("d") == before
    else:
        record = store.set_dataset_state("d", action, by="eve", reason="because")
        assert record.state == expected == store.get_dataset("d").state  # type: ignore[union-attr]
        entry = store.audit_log("d")[-1]
        assert (entry.action, entry.from_state, entry.to_state, entry.by, entry.reason) == (
            action, state, expected, "eve", "because")
        assert len(store.audit_log("d")) == len(before) + 1


def test_the_lifecycle_table_matches_the_store() -> None:
    for (state, action), expected in TRANSITIONS.items():
        sources, target = LIFECYCLE[action]
        assert (target if state in sources else None) == expected


def test_lifecycle_of_unknown_dataset_or_action(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no dataset named 'ghost'"):
        store.set_dataset_state("ghost", "retire", by="bob", reason="x")
    register(store, "d")
    with pytest.raises(RegistryError, match="unknown lifecycle action 'delete': use one of review, retire, reactivate"):
        store.set_dataset_state("d", "delete", by="bob", reason="x")


def test_audit_log_is_ordered_and_filtered_by_dataset(store: Store) -> None:
    register(store, "a")
    register(store, "b")
    store.set_dataset_state("a", "retire", by="bob", reason="collapsed")
    store.set_dataset_state("b", "review", by="carol", reason="look")
    store.set_dataset_state("a", "reactivate", by="dan", reason="fixed")
    log = store.audit_log()
    assert [e.id for e in log] == sorted(e.id for e in log)
    assert [(e.dataset, e.action) for e in log] == [
        ("a", "registered"), ("b", "registered"), ("a", "retire"), ("b", "review"), ("a", "reactivate")]
    assert [e.action for e in store.audit_log("a")] == ["registered", "retire", "reactivate"]
    assert store.audit_log("nobody") == []
    assert all(isinstance(e, AuditRecord) and e.at.tzinfo == UTC for e in log)
    assert log[2].reason == "collapsed" and log[2].by == "bob"


# -- lineage -----------------------------------------------------------------------------------


def test_lineage_is_recorded_once_per_version_and_read_oldest_first(store: Store) -> None:
    register(store, "real")
    register(store, "synth", role="synthetic", anchored_by="real")
    assert store.put_lineage("m", "7", {"real": 0.6, "synth": 0.4}, by="alice") is True
    assert store.put_lineage("m", "7", {"synth": 0.4, "real": 0.6}, by="bob") is False  # identical: a no-op
    with pytest.raises(RegistryError, match=r"version 7 is already recorded with mix real=0\.6, synth=0\.4"):
        store.put_lineage("m", "7", {"real": 1.0}, by="alice")
    with pytest.raises(RegistryError, match="nobody, not registered"):
        store.put_lineage("m", "8", {"real": 0.5, "nobody": 0.5}, by="alice")
    assert store.put_lineage("m", "8", {"real": 1.0}, by="bob") is True
    assert store.put_lineage("other", "1", {"synth": 1.0}, by="carol") is True
    rows = store.lineage("m")
    assert [(r.version, r.dataset, r.share, r.recorded_by) for r in rows] == [
        ("7", "real", 0.6, "alice"), ("7", "synth", 0.4, "alice"), ("8", "real", 1.0, "bob")]
    assert all(isinstance(r, LineageRecord) and r.recorded_at.tzinfo == UTC for r in rows)
    assert rows[0].recorded_at <= rows[2].recorded_at
    assert [r.model for r in store.lineage()] == ["m", "m", "m", "other"]
    assert store.lineage("nobody") == []


# -- windows -----------------------------------------------------------------------------------


def test_windows_are_stored_whole_and_read_newest_last(store: Store) -> None:
    store.commit_batch(windows=[window("m", i, flagged=i % 2 == 1) for i in range(12)])
    store.commit_batch(windows=[window("other", 0)])
    last = store.last_windows("m")
    assert [w["window"] for w in last] == list(range(2, 12))
    assert last[-1] == window("m", 11, flagged=True)
    assert [w["window"] for w in store.last_windows("m", last=3)] == [9, 10, 11]
    assert store.last_windows("m", last=0) == []
    assert store.last_windows("nobody") == []
    assert store.count_windows("m") == 12 and store.count_windows("other") == 1 and store.count_windows() == 13


def test_a_redelivered_window_is_written_once_and_left_unchanged(store: Store) -> None:
    store.commit_batch(windows=[window("m", 0), window("m", 1)])
    store.commit_batch(windows=[window("m", 1, flagged=True, note="redelivered"), window("m", 2)])
    store.commit_batch(windows=[window("m", 2), window("m", 2, note="twice in one batch")])
    assert store.count_windows("m") == 3
    assert store.last_windows("m") == [window("m", 0), window("m", 1), window("m", 2)]


def test_window_payloads_are_plain_json(store: Store) -> None:
    store.commit_batch(windows=[window("m", 0, p_values=np.array([0.5, 0.25]), effect=np.float32(0.5),
                                       undefined=float("nan"))])
    (stored,) = store.last_windows("m")
    assert stored["p_values"] == [0.5, 0.25] and stored["effect"] == 0.5 and stored["undefined"] is None


def test_a_window_without_its_keys_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="window result lacks 'window_end'"):
        store.commit_batch(windows=[{"model": "m", "window": 0, "window_start": 0.0, "n_events": 1, "flagged": False}])


# -- alerts ------------------------------------------------------------------------------------


def test_alerts_are_listed_by_model_window_dataset_and_filtered(store: Store) -> None:
    alerts = [alert("zeta", "s1", 3), alert("m", "s2", 9), alert("m", "s1", 9), alert("m", "s9", 2),
              alert("m", "anchor", 5, state="anchor_stale")]
    store.commit_batch(alerts=alerts)
    listed = store.list_alerts()
    assert [(a["model"], a["window"], a["dataset"]) for a in listed] == [
        ("m", 2, "s9"), ("m", 5, "anchor"), ("m", 9, "s1"), ("m", 9, "s2"), ("zeta", 3, "s1")]
    assert listed[0] == alert("m", "s9", 2)
    assert [a["dataset"] for a in store.list_alerts(state="anchor_stale")] == ["anchor"]
    assert [a["window"] for a in store.list_alerts(model="m", dataset="s1")] == [9]
    assert [a["model"] for a in store.list_alerts(dataset="s1")] == ["m", "zeta"]
    assert store.list_alerts(model="nobody") == []


def test_ack_is_kept_across_redelivery_and_the_last_ack_wins(store: Store) -> None:
    a = alert("m", "s", 45)
    store.commit_batch(alerts=[a])
    assert store.get_alert(a["alert_id"]) == a
    acked = store.ack_alert(a["alert_id"], by="bob", at=datetime(2026, 11, 24, 11, 30, 5, 999, tzinfo=UTC))
    assert acked == {**a, "acked_by": "bob", "acked_at": "2026-11-24T11:30:05Z"}
    store.commit_batch(alerts=[a, {**a, "share": 0.99}])  # redelivered after a crash
    assert store.get_alert(a["alert_id"]) == acked
    assert store.list_alerts() == [acked]
    later = store.ack_alert(a["alert_id"], by="carol",
                            at=datetime(2026, 11, 24, 13, 0, tzinfo=timezone(timedelta(hours=2))))
    assert (later["acked_by"], later["acked_at"]) == ("carol", "2026-11-24T11:00:00Z")
    assert store.get_alert(a["alert_id"]) == later


def test_unknown_alerts_and_naive_times(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no alert with id 'x:y:1:retire_recommended'"):
        store.get_alert("x:y:1:retire_recommended")
    with pytest.raises(NotFoundError):
        store.ack_alert("x:y:1:retire_recommended", by="bob", at=NOW)
    store.commit_batch(alerts=[alert("m", "s", 1)])
    with pytest.raises(ValueError, match="naive"):
        store.ack_alert("m:s:1:retire_recommended", by="bob", at=datetime(2026, 1, 1))


# -- engine state and offsets ------------------------------------------------------------------


def test_engine_states_and_offsets_are_upserted(store: Store, store_url: str) -> None:
    assert store.load_states() == {} and store.load_state("m") is None and store.load_offsets("g", "t") == {}
    store.commit_batch(states={"m": b"one", "n": b"\x00\xff"}, offsets=[("g", "t", 0, 10), ("g", "t", 1, 5)])
    store.commit_batch(states={"m": b"two"}, offsets=[("g", "t", 0, 20), ("g", "t", 0, 25), ("g", "u", 0, 7),
                                                       ("h", "t", 3, 1)])
    assert store.load_states() == {"m": b"two", "n": b"\x00\xff"}
    assert store.load_state("m") == b"two"
    assert store.load_offsets("g", "t") == {0: 25, 1: 5}
    assert store.load_offsets("g", "u") == {0: 7} and store.load_offsets("h", "t") == {3: 1}
    with Store(store_url) as reopened:
        assert reopened.load_state("n") == b"\x00\xff" and reopened.load_offsets("g", "t") == {0: 25, 1: 5}


def test_a_batch_is_one_transaction(store: Store) -> None:
    store.commit_batch(windows=[window("m", 0)], states={"m": b"old"}, offsets=[("g", "t", 0, 1)])
    bad_alert = {**alert("m", "s", 1), "evidence": object()}  # fails while the alert row is written
    with pytest.raises(ValueError, match="cannot store as JSON: Type is not JSON serializable: object"):
        store.commit_batch(windows=[window("m", 1)], alerts=[bad_alert], states={"m": b"new"},
                           offsets=[("g", "t", 0, 2)])
    assert store.count_windows() == 1 and store.list_alerts() == []
    assert store.load_state("m") == b"old" and store.load_offsets("g", "t") == {0: 1}


def test_two_writers_at_once_write_every_row_once(store: Store, store_url: str) -> None:
    rounds, per_round = 5, 20
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(order: int) -> None:
        with Store(store_url) as own:
            for r in range(rounds):
                indexes = list(range(r * per_round, (r + 2) * per_round))[::order]  # overlaps the next round
                barrier.wait(30)
                try:
                    own.commit_batch(windows=[window("m", i, writer=order) for i in indexes],
                                     alerts=[alert("m", "s", i) for i in indexes],
                                     states={"m": f"{order}:{r}".encode()},
                                     offsets=[("g", "t", p, r) for p in range(3)])
                except BaseException as exc:
                    errors.append(exc)

    threads = [threading.Thread(target=writer, args=(order,)) for order in (1, -1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    total = (rounds + 1) * per_round
    assert store.count_windows("m") == total
    assert [w["window"] for w in store.last_windows("m", last=total + 10)] == list(range(total))
    assert len(store.list_alerts()) == total
    assert store.load_state("m") in (b"1:4", b"-1:4")
    assert store.load_offsets("g", "t") == {0: 4, 1: 4, 2: 4}


# -- retention ---------------------------------------------------------------------------------


def test_prune_deletes_old_windows_and_old_acknowledged_alerts_only(store: Store) -> None:
    day = 86400.0
    now_s = NOW.timestamp()
    store.commit_batch(
        windows=[window("m", 0, end=now_s - 100 * day), window("m", 1, end=now_s - 91 * day),
                 window("m", 2, end=now_s - 89 * day), window("m", 3, end=now_s)],
        alerts=[alert("m", "old-acked", 1, created_at="2026-08-01T00:00:00Z"),
                alert("m", "old-open", 1, created_at="2026-08-01T00:00:00Z"),
                alert("m", "new-acked", 2, created_at="2026-11-01T00:00:00Z")],
        states={"m": b"state"}, offsets=[("g", "t", 0, 9)],
    )
    register(store, "d")
    store.ack_alert("m:old-acked:1:retire_recommended", by="bob", at=NOW)
    store.ack_alert("m:new-acked:2:retire_recommended", by="bob", at=NOW)
    assert store.prune(retention_days=90, now=NOW) == (2, 1)
    assert [w["window"] for w in store.last_windows("m")] == [2, 3]
    assert sorted(a["dataset"] for a in store.list_alerts()) == ["new-acked", "old-open"]
    assert store.prune(retention_days=90, now=NOW) == (0, 0)
    assert store.get_dataset("d") is not None and len(store.audit_log()) == 1
    assert store.load_state("m") == b"state" and store.load_offsets("g", "t") == {0: 9}
    with pytest.raises(ValueError, match="retention_days"):
        store.prune(retention_days=-1, now=NOW)
