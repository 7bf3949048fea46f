"""The retirement policy's hysteresis, transition by transition."""

from __future__ import annotations

import json

import pytest

from careful_monitor.engine.policy import Policy
from careful_monitor.engine.types import PolicyState

OK, WATCH, RETIRE, STALE, _RETIRED = PolicyState


def _run(p: Policy, evidence: list[set[str]], start: int = 0) -> list[tuple[int, str, str, str]]:
    return [(t.window, t.dataset, str(t.from_state), str(t.to_state))
            for w, ev in enumerate(evidence, start) for t in p.step(w, ev)]


def test_watch_then_retire_counts_the_window_that_entered_watch() -> None:
    p = Policy(["s"], "a", watch_after=2, retire_after=4, clear_after=3)
    got = _run(p, [{"s"}] * 4)
    assert got == [(1, "s", "ok", "watch"), (3, "s", "watch", "retire_recommended")]
    assert p.states["s"].since_window == 1


def test_a_gap_resets_the_run_and_clear_after_returns_to_ok() -> None:
    p = Policy(["s"], "a", watch_after=1, retire_after=3, clear_after=2)
    got = _run(p, [{"s"}, {"s"}, set(), {"s"}, set(), set()])
    # watch at 0; the gap at 2 breaks the run of 2; one more window of evidence is not 3 in a row
    assert got == [(0, "s", "ok", "watch"), (5, "s", "watch", "ok")]
    assert p.state_of("s") is OK and p.states["s"].since_window is None


def test_unexplained_drift_makes_the_anchor_stale_not_a_synthetic_set() -> None:
    p = Policy(["s1", "s2"], "a", watch_after=1, retire_after=2, clear_after=5)
    got = _run(p, [{"a"}, {"a"}])
    assert got == [(0, "a", "ok", "watch"), (1, "a", "watch", "anchor_stale")]
    assert p.state_of("s1") is OK and p.state_of("s2") is OK


def test_only_alerting_states_alert() -> None:
    p = Policy(["s"], "a", watch_after=1, retire_after=2, clear_after=1)
    ts = [t for w, ev in enumerate([{"s"}, {"s"}, set()]) for t in p.step(w, ev)]
    assert [t.alerting for t in ts] == [False, True, False]


def test_detector_watch_only_moves_datasets_in_ok() -> None:
    p = Policy(["s"], "a", watch_after=3, retire_after=3, clear_after=2)
    assert [(t.dataset, str(t.to_state)) for t in p.detector_watch(4, ["s"])] == [("s", "watch")]
    assert p.detector_watch(5, ["s"]) == []  # already watching
    assert p.states["s"].since_window == 4


@pytest.mark.parametrize("windows", [0, 1, 3])
def test_state_round_trips_as_json(windows: int) -> None:
    p = Policy(["s"], "a", watch_after=1, retire_after=3, clear_after=2)
    _run(p, [{"s"}] * windows)
    q = Policy(["s", "new"], "a", watch_after=1, retire_after=3, clear_after=2)
    q.restore(json.loads(json.dumps(p.state())))
    assert q.states["s"] == p.states["s"] and q.state_of("new") is OK
    assert _run(q, [{"s"}] * 3, windows) == _run(p, [{"s"}] * 3, windows)
