"""Replay is idempotent by input (issue 11): a file's byte position is stored with each batch, so a
finished file is skipped, an appended or interrupted one resumes, and `restart` re-reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from careful_monitor.demo import scenario
from careful_monitor.runtime.replay import HEAD_BYTES, REPLAY_GROUP, locate_source, replay
from tests.unit.conftest import new_pipeline, register_scenario, stored_results


@pytest.fixture(scope="module")
def registered(tmp_path_factory) -> tuple[Path, Path]:
    return register_scenario(tmp_path_factory.mktemp("replay-idem"), seed=5, windows=12)  # drift from window 8


def _reference(fresh, events: Path, name: str = "ref") -> tuple[list[dict], list[dict]]:
    cfg, store = fresh(name)
    replay(new_pipeline(cfg, store), [str(events)], batch_lines=500)
    return stored_results(store)


def test_finished_file_replayed_twice_stores_the_same_windows(fresh, registered) -> None:
    _, events = registered
    cfg, store = fresh("twice")
    first = replay(new_pipeline(cfg, store), [str(events)], batch_lines=500)
    once = stored_results(store)
    assert first.windows == len(once[0]) > 0 and not first.skipped
    p = new_pipeline(cfg, store)
    last_ts = p.monitors[scenario.MODEL].last_ts
    again = replay(p, [str(events)], batch_lines=500)
    assert again.lines == again.accepted == again.windows == 0
    assert [s.path for s in again.skipped] == [str(events)]
    size = events.stat().st_size
    assert again.skipped[0].message() == f"already replayed: {events} ({size} bytes); --restart re-reads it"
    assert stored_results(store) == once  # no doubled windows
    assert p.monitors[scenario.MODEL].last_ts == last_ts  # event time did not go backwards
    topic, position = locate_source(store, events)
    assert position == size and topic.startswith(f"{HEAD_BYTES}:")
    assert store.group_offsets(REPLAY_GROUP) == {(topic, 0): size}


@pytest.mark.parametrize("cut_lines", [7_400 // 2, 150])  # mid-window past 64 KiB; a head under 64 KiB
def test_appended_file_resumes_and_equals_one_replay(fresh, registered, tmp_path, cut_lines) -> None:
    _, events = registered
    lines = events.read_bytes().splitlines(keepends=True)
    growing = tmp_path / "growing.jsonl"
    growing.write_bytes(b"".join(lines[:cut_lines]))
    first_size = growing.stat().st_size
    assert (first_size < HEAD_BYTES) == (cut_lines == 150)
    cfg, store = fresh("grow")
    s1 = replay(new_pipeline(cfg, store), [str(growing)], batch_lines=500)
    growing.write_bytes(b"".join(lines))  # appended: the same head, a larger size
    s2 = replay(new_pipeline(cfg, store), [str(growing)], batch_lines=500)
    assert s2.resumed_at == {str(growing): first_size} and not s2.skipped
    assert s1.lines + s2.lines == len([x for x in lines if x.strip()])
    assert stored_results(store) == _reference(fresh, events)


class Crash(Exception):
    pass


@pytest.mark.parametrize("k", [1, 5, 9])
def test_crash_after_k_batches_then_replay_equals_one_replay(fresh, registered, k) -> None:
    _, events = registered
    cfg, store = fresh("crash")
    done = []

    def crash_after_k(n: int) -> None:  # called after each batch is persisted
        done.append(n)
        if len(done) == k:
            raise Crash

    with pytest.raises(Crash):
        replay(new_pipeline(cfg, store), [str(events)], batch_lines=500, on_progress=crash_after_k)
    assert 0 < locate_source(store, events)[1] < events.stat().st_size
    again = replay(new_pipeline(cfg, store), [str(events)], batch_lines=500)  # a new process
    assert str(events) in again.resumed_at
    windows, alerts = stored_results(store)
    ref_windows, ref_alerts = _reference(fresh, events)
    assert [w["window"] for w in windows] == list(range(len(ref_windows)))
    assert (windows, alerts) == (ref_windows, ref_alerts) and ref_alerts


def test_restart_rereads_and_overwrites_the_position(fresh, registered) -> None:
    _, events = registered
    cfg, store = fresh("restart")
    s1 = replay(new_pipeline(cfg, store), [str(events)])
    s2 = replay(new_pipeline(cfg, store), [str(events)], restart=True)
    assert s2.lines == s1.lines > 0 and not s2.skipped and not s2.resumed_at
    assert s2.windows >= s1.windows - 1  # recounted as new events, numbering continues
    assert locate_source(store, events)[1] == events.stat().st_size
    assert len(store.group_offsets(REPLAY_GROUP)) == 1  # overwritten, not a second row


def test_a_different_file_is_a_new_source(fresh, registered, tmp_path) -> None:
    _, events = registered
    lines = events.read_bytes().splitlines(keepends=True)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_bytes(b"".join(lines[:100]))
    b.write_bytes(b"".join(lines[100:200]))
    cfg, store = fresh("two")
    replay(new_pipeline(cfg, store), [str(a)])
    s = replay(new_pipeline(cfg, store), [str(b), str(a)])
    assert s.lines == len([x for x in lines[100:200] if x.strip()])
    assert [x.path for x in s.skipped] == [str(a)]
