"""Seeded streams through the whole engine: silence when nothing changes, the right verdict when it does."""

from __future__ import annotations

import numpy as np
import pytest

from careful_monitor.contracts import alert_json
from careful_monitor.demo import scenario
from careful_monitor.demo.scenario import events_to_batch
from careful_monitor.engine.monitor import ModelBatch
from tests.unit.conftest import demo_monitor

ALERT_KEYS = {"alert_id", "model", "dataset", "state", "since_window", "window", "window_end", "created_at",
              "model_versions", "evidence", "affinity", "share", "share_identifiable",
              "group_share", "indistinguishable_from", "action", "trained_versions",
              "acked_by", "acked_at"}


def _stream(rows: list[dict], start: int = 0) -> list[dict]:
    return [{"model": scenario.MODEL, "model_version": "1", "ts": scenario.START_TS + start + i, **r}
            for i, r in enumerate(rows)]


def test_stationary_300_windows_raise_nothing(demo_profiles) -> None:
    mon = demo_monitor(demo_profiles)
    rng = np.random.default_rng(2024)  # not the profiles' seed: fresh draws from the anchor's law
    flagged = alerts = 0
    worst = set()
    windows = 300
    for chunk in range(windows // 20):
        rows = scenario.sample_rows(rng, 20_000, "anchor")
        for o in mon.process(events_to_batch(_stream(rows, chunk * 20_000)), now=0.0):
            flagged += o.result.flagged
            alerts += len(o.alerts)
            worst |= {s for s in o.result.states.values() if s != "ok"}
    assert mon.window_index == windows
    assert alerts == 0
    assert not worst & {"retire_recommended", "anchor_stale"}
    # BH at q = 0.01 bounds the chance a window has any false discovery at 1 % under the global null;
    # the effect floors only lower it. 3 % leaves room for the dependence between a feature's tests.
    assert flagged / windows < 0.03, f"{flagged} of {windows} windows flagged"


def test_drift_toward_collapsed_set_retires_it_and_only_it(demo_profiles) -> None:
    mon = demo_monitor(demo_profiles)
    events = scenario.live_events(np.random.default_rng(77), windows=16, stable_windows=8)
    outcomes = mon.process(events_to_batch(events), now=1_800_000_000.0)
    alerts = [alert_json(a) for o in outcomes for a in o.alerts]  # the JSON contract
    assert [a["dataset"] for a in alerts] == [scenario.COLLAPSED]
    a = alerts[0]
    # drift starts at window 8; with retire_after = 3 the earliest alert is window 10, at most one later
    assert 10 <= a["window"] <= 8 + 3
    assert set(a) == ALERT_KEYS
    assert a["alert_id"] == f"{a['model']}:{a['dataset']}:{a['window']}:{a['state']}"
    assert a["created_at"] == "2027-01-15T08:00:00Z"  # wall clock passed in, never read
    assert a["share_identifiable"] and 0.1 <= a["share"] <= 1.0
    assert all(o.result.states[scenario.FAITHFUL] == "ok" and o.result.states[scenario.ANCHOR] == "ok"
               for o in outcomes)
    again = demo_monitor(demo_profiles).process(events_to_batch(events), now=1_800_000_000.0)
    assert [o.result for o in again] == [o.result for o in outcomes]  # deterministic


def _world_shift(rows: list[dict]) -> list[dict]:
    """Amounts triple and accounts age by ~2 sd: moves away from the anchor, toward neither synthetic set."""
    out = []
    for r in rows:
        inputs = dict(r["inputs"], amount=round(r["inputs"]["amount"] * 3, 2),
                      account_age_days=r["inputs"]["account_age_days"] + 560.0)
        out.append({"inputs": inputs, "outputs": r["outputs"]})
    return out


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_world_shift_makes_the_anchor_stale(demo_profiles, seed) -> None:
    mon = demo_monitor(demo_profiles)
    rng = np.random.default_rng(seed)
    rows = scenario.sample_rows(rng, 3000, "anchor") + _world_shift(scenario.sample_rows(rng, 8000, "anchor"))
    outcomes = mon.process(events_to_batch(_stream(rows)), now=0.0)
    alerts = [alert_json(a) for o in outcomes for a in o.alerts]  # the JSON contract
    assert [(a["dataset"], a["state"]) for a in alerts] == [(scenario.ANCHOR, "anchor_stale")]
    assert alerts[0]["window"] < 3 + 5  # shift starts at window 3: stale within 5 windows
    assert alerts[0]["affinity"] is None and alerts[0]["share"] is None
    for o in outcomes:
        assert o.result.states[scenario.COLLAPSED] == "ok" and o.result.states[scenario.FAITHFUL] == "ok"


def test_windows_close_on_event_time(demo_profiles) -> None:
    mon = demo_monitor(demo_profiles, window_size=1000, max_seconds=60, min_size=50)
    rows = scenario.sample_rows(np.random.default_rng(3), 400, "anchor")
    ts: list[float | None] = [float(i) for i in range(200)]  # 1 event/s: closes when an event is > 60 s after the first
    ts += [None] * 10  # no ts: the previous one is used
    ts += [1000.0 + i for i in range(20)]  # after a gap; 20 events < min_size keep accumulating ...
    ts += [1100.0 + i for i in range(170)]  # ... until min_size is reached and the time rule applies again
    batch = events_to_batch([{"model": scenario.MODEL, **r} for r in rows])
    batch = ModelBatch(ts, batch.versions, batch.columns)
    sizes = [(o.result.n_events, o.result.window_start, o.result.window_end) for o in mon.process(batch, now=0.0)]
    assert sizes[:3] == [(61, 0.0, 60.0), (61, 61.0, 121.0), (61, 122.0, 182.0)]
    # window 3 opens at 183 s, holds 183..199 and the 10 ts-less events (at 199 s): 27 < min_size,
    # so the events at 1000 s join it; it closes when an event is late and it holds >= 50
    assert sizes[3][0] >= 50 and sizes[3][1] == 183.0
