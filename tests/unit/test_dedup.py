"""Event-id dedup (issue 11): an event whose `id` is among its model's last `limits.dedup_ids` ids is
dropped and counted as events_total{outcome="duplicate"}, within a batch, across batches, across
replays of stdin or of different files, and across restarts; events without `id` never are."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import orjson
import pytest

from careful_monitor.demo import scenario
from careful_monitor.runtime.dedup import SeenIds, id_hash, unpack_hashes
from careful_monitor.runtime.pipeline import Pipeline
from careful_monitor.runtime.replay import ReplayStats, replay
from careful_monitor.store import Store
from tests.unit.conftest import new_pipeline, register_scenario, stored_results

BATCH = 500


@pytest.fixture(scope="module")
def registered(tmp_path_factory) -> tuple[Path, Path]:
    return register_scenario(tmp_path_factory.mktemp("dedup"), seed=11, windows=4)


@pytest.fixture(scope="module")
def good_lines(registered) -> list[bytes]:
    """The scenario's events with an id (its bad lines left out), in order."""
    out = []
    for line in registered[1].read_bytes().splitlines():
        try:
            ev = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(ev, dict) and ev.get("model") == scenario.MODEL and isinstance(ev.get("id"), str) \
                and len(line) < 4096 and isinstance(ev.get("ts"), float):
            out.append(line)
    assert len(out) > 3_900
    return out


def _events(p: Pipeline, outcome: str) -> float:
    value = p.metrics.registry.get_sample_value("careful_monitor_events_total",
                                                {"model": scenario.MODEL, "outcome": outcome})
    return 0.0 if value is None else value


def _stdin(p: Pipeline, monkeypatch, lines: list[bytes], **kw) -> ReplayStats:
    """`replay -` of these lines (stdin: no file identity, nothing skipped by position)."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\n".join(lines) + b"\n")))
    return replay(p, ["-"], batch_lines=BATCH, **kw)


def _stored_ids(store: Store, last: int = 10**6) -> list[int]:
    """The hashes of the model's newest `last` ids in the store, oldest first."""
    pairs = [(seq, h) for first, packed in store.load_seen_ids(scenario.MODEL, last)
             for seq, h in enumerate(unpack_hashes(packed), first)]
    return [h for seq, h in pairs if seq > pairs[-1][0] - last] if pairs else []


def _hashes(lines: list[bytes]) -> list[int]:
    return [id_hash(orjson.loads(x)["id"]) for x in lines]


def _open(p: Pipeline) -> int:
    return p.monitors[scenario.MODEL].open_events


def _without_id(line: bytes, value: object = "drop") -> bytes:
    ev = orjson.loads(line)
    if value == "drop":
        del ev["id"]
    else:
        ev["id"] = value
    return orjson.dumps(ev)


@pytest.fixture
def reference(fresh, good_lines, monkeypatch):
    """Windows, alerts and open-window size of one replay of the good lines, each once."""
    cfg, store = fresh("ref")
    p = new_pipeline(cfg, store)
    s = _stdin(p, monkeypatch, good_lines)
    assert s.duplicates == 0 and s.accepted == len(good_lines) and s.windows >= 3
    return stored_results(store), _open(p)


def test_duplicates_in_a_batch_and_across_batches_count_once(fresh, good_lines, reference, tmp_path) -> None:
    # each 7th event repeated at once (same batch), and every 300th again 1,000 lines later (a later batch)
    lines: list[bytes] = []
    for i, line in enumerate(good_lines):
        lines.append(line)
        if i % 7 == 0:
            lines.append(line)
        if i >= 1_000 and (i - 1_000) % 300 == 0:
            lines.append(good_lines[i - 1_000])
    n_dup = len(lines) - len(good_lines)
    path = tmp_path / "with-duplicates.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    cfg, store = fresh("dups")
    p = new_pipeline(cfg, store)
    s = replay(p, [str(path)], batch_lines=BATCH)
    assert (s.lines, s.accepted, s.duplicates, s.rejected) == (len(lines), len(good_lines), n_dup, {})
    assert (_events(p, "accepted"), _events(p, "duplicate"), _events(p, "rejected")) == (len(good_lines), n_dup, 0)
    assert (stored_results(store), _open(p)) == reference  # the same windows (n_events, every statistic) and alerts
    windows, _ = stored_results(store)
    assert sum(w["n_events"] for w in windows) + _open(p) == len(good_lines)


def test_stdin_replayed_twice_and_a_rewritten_file_add_nothing(fresh, good_lines, reference, tmp_path,
                                                               monkeypatch) -> None:
    cfg, store = fresh("stdin")
    first = _stdin(new_pipeline(cfg, store), monkeypatch, good_lines)
    assert first.duplicates == 0
    p = new_pipeline(cfg, store)  # a new process: the seen ids come from the store
    again = _stdin(p, monkeypatch, good_lines)
    assert (again.lines, again.accepted, again.duplicates, again.windows) == (len(good_lines), 0, len(good_lines), 0)
    assert _events(p, "duplicate") == len(good_lines) and _events(p, "accepted") == 0
    # another file (other bytes, so another source by position) carrying the same ids
    rewritten = tmp_path / "rewritten.jsonl"
    rewritten.write_bytes(b"\n".join(orjson.dumps({**orjson.loads(x), "note": "resent"}) for x in good_lines) + b"\n")
    p = new_pipeline(cfg, store)
    third = replay(p, [str(rewritten)], batch_lines=BATCH)
    assert not third.skipped and (third.accepted, third.duplicates) == (0, len(good_lines))
    assert (stored_results(store), _open(p)) == reference


def test_events_without_an_id_are_never_dropped(fresh, good_lines, monkeypatch) -> None:
    no_id = [_without_id(x) for x in good_lines[:300]]
    no_id += [_without_id(x, v) for x in good_lines[300:400] for v in (None, "", 1.5, True)][:300]
    cfg, store = fresh("no-id")
    for _ in range(2):
        p = new_pipeline(cfg, store)
        s = _stdin(p, monkeypatch, no_id)
        assert (s.accepted, s.duplicates) == (600, 0)
        assert _events(p, "duplicate") == 0
    assert _stored_ids(store) == []
    assert _open(new_pipeline(cfg, store)) == 1_200 - 1_000  # counted twice: one window closed


def test_an_integer_id_is_its_decimal_string(fresh, good_lines, monkeypatch) -> None:
    cfg, store = fresh("int-id")
    p = new_pipeline(cfg, store)
    s = _stdin(p, monkeypatch, [_without_id(good_lines[0], 42), _without_id(good_lines[1], "42")])
    assert (s.accepted, s.duplicates) == (1, 1)


def test_the_bound_evicts_the_oldest_ids(fresh, good_lines, monkeypatch) -> None:
    cfg, store = fresh("bound", dedup_ids=50)
    _stdin(new_pipeline(cfg, store), monkeypatch, good_lines[:100])  # ids 0..99: 50..99 kept
    assert _stored_ids(store, 50) == _hashes(good_lines[50:100])
    p = new_pipeline(cfg, store)
    old = _stdin(p, monkeypatch, good_lines[:10])  # evicted: new again; they push out 50..59
    assert (old.accepted, old.duplicates) == (10, 0)
    p = new_pipeline(cfg, store)
    recent = _stdin(p, monkeypatch, good_lines[60:100] + good_lines[50:60])  # 60..99 kept, 50..59 not
    assert (recent.accepted, recent.duplicates) == (10, 40)
    assert _stored_ids(store, 50) == _hashes(good_lines[70:100] + good_lines[:10] + good_lines[50:60])
    assert len(store.load_seen_ids(scenario.MODEL, 50)) == 3  # one row per batch
    _stdin(new_pipeline(cfg, store), monkeypatch, good_lines[200:300])
    rows = store.load_seen_ids(scenario.MODEL, 10**6)
    assert [first for first, _ in rows] == [121]  # the rows whose ids all left the last 50 are deleted


def test_dedup_ids_0_turns_it_off(fresh, good_lines, monkeypatch) -> None:
    cfg, store = fresh("off", dedup_ids=0)
    for _ in range(2):
        s = _stdin(new_pipeline(cfg, store), monkeypatch, good_lines[:300])
        assert (s.accepted, s.duplicates) == (300, 0)
    assert _stored_ids(store) == []


def test_restart_reads_every_event_again_and_records_the_ids(fresh, good_lines, tmp_path, monkeypatch) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(good_lines[:600] + good_lines[:10]) + b"\n")  # ends with 10 repeated ids
    cfg, store = fresh("restart")
    s1 = replay(new_pipeline(cfg, store), [str(path)], batch_lines=BATCH)
    assert (s1.accepted, s1.duplicates) == (600, 10)
    p = new_pipeline(cfg, store)
    s2 = replay(p, [str(path)], batch_lines=BATCH, restart=True)  # --restart: recounted, none dropped
    assert (s2.accepted, s2.duplicates, _events(p, "duplicate")) == (610, 0, 0)
    assert _open(p) == 1_210 - 1_000
    again = _stdin(new_pipeline(cfg, store), monkeypatch, good_lines[:600])  # the ids are still recorded
    assert (again.accepted, again.duplicates) == (0, 600)


class Crash(Exception):
    pass


@pytest.mark.parametrize("k", [2, 5])
def test_ids_are_stored_with_the_state_that_counts_them(fresh, good_lines, reference, monkeypatch, k) -> None:
    """A batch whose store transaction fails leaves no ids behind, so replaying the input again counts
    the events of that batch (and after it) once, and those before it not again."""
    cfg, store = fresh("crash")
    p = new_pipeline(cfg, store)
    commit = store.commit_batch
    calls = []

    def failing_commit(**kw):
        calls.append(1)
        if len(calls) == k:
            raise Crash
        commit(**kw)

    monkeypatch.setattr(store, "commit_batch", failing_commit)
    with pytest.raises(Crash):
        _stdin(p, monkeypatch, good_lines)
    monkeypatch.setattr(store, "commit_batch", commit)
    assert _stored_ids(store) == _hashes(good_lines[:(k - 1) * BATCH])
    p = new_pipeline(cfg, store)
    s = _stdin(p, monkeypatch, good_lines)
    assert (s.duplicates, s.accepted) == ((k - 1) * BATCH, len(good_lines) - (k - 1) * BATCH)
    assert (stored_results(store), _open(p)) == reference


def test_seen_ids_keep_exactly_the_last_capacity_ids() -> None:
    h = [id_hash(f"e{i}") for i in range(6)]
    seen = SeenIds(3)
    assert seen.admit([h[0], h[1], h[0], None, h[2]]) == [True, True, False, True, True]
    assert seen.pending() == (1, b"".join(x.to_bytes(8, "little", signed=True) for x in h[:3]))
    assert seen.oldest_kept_seq == 1
    rows = [seen.pending()]
    seen.stored()
    assert seen.pending() is None
    assert seen.admit([h[3], h[0], h[1]]) == [True, True, True]  # each new id pushes the oldest out
    assert list(seen) == [h[3], h[0], h[1]] and seen.oldest_kept_seq == 4 and h[2] not in seen
    rows.append(seen.pending())
    seen.stored()
    assert seen.admit([h[1], h[3]]) == [False, False]
    assert seen.admit([h[1]], check=False) == [True]  # --restart: kept, and recorded again as the newest
    assert len(seen) == 2 and h[3] not in seen  # seq 7 pushed seq 4 out
    assert seen.admit([h[4], h[5]]) == [True, True]  # seq 9 would push out seq 6: h[1]'s stale seq, kept
    assert sorted(seen) == sorted([h[1], h[4], h[5]])
    rows.append(seen.pending())
    assert rows[-1] is not None and rows[-1][0] == 7
    restored = SeenIds(3, [r for r in rows if r is not None])  # as the store returns them
    assert (restored.next_seq, sorted(restored), restored.pending()) == (10, sorted(seen), None)
    assert restored.admit([h[1], h[0]]) == [False, True]
