"""The pipeline shared by `replay` and `run`: decode -> engine -> metrics -> store, on a real SQLite store."""

from __future__ import annotations

import pickle  # only to plant the kind of snapshot an old careful-monitor stored
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from careful_monitor.demo import scenario
from careful_monitor.errors import ConfigError, StoreError
from careful_monitor.runtime.pipeline import Pipeline
from careful_monitor.sinks.prometheus import Metrics
from tests.unit.conftest import register_scenario, store_copy


@pytest.fixture(scope="module")
def registered(tmp_path_factory) -> tuple[Path, list[bytes]]:
    """The demo scenario's datasets registered in a fresh SQLite store; its event lines."""
    cfg_path, events = register_scenario(tmp_path_factory.mktemp("pipeline"), seed=11, windows=4)
    return cfg_path, events.read_bytes().splitlines()


@pytest.fixture
def setup(registered, tmp_path):
    """A copy of the registered store per test, so tests do not see each other's windows."""
    cfg_path, lines = registered
    cfg, store = store_copy(cfg_path, tmp_path / "careful.db")
    yield cfg, store, lines
    store.close()


def _pipeline(cfg, store, rejected=None) -> Pipeline:
    return Pipeline(cfg, store, Metrics(CollectorRegistry()), on_reject=(rejected.extend if rejected is not None else
                                                                        lambda r: None), clock=lambda: 1_800_000_000.0)


def test_batches_become_stored_windows_and_rejects_are_routed(setup) -> None:
    cfg, store, lines = setup
    rejected: list = []
    p = _pipeline(cfg, store, rejected)
    report = p.handle(lines[:2600])
    assert report.accepted + len(report.rejected) == 2600
    # the demo sprinkles bad lines
    assert {r.reason for r in rejected} == {r.reason for r in report.rejected} and rejected
    assert [o.result.window for o in report.outcomes] == [0, 1]
    assert store.count_windows() == 0  # nothing is stored before persist
    p.persist(report.outcomes)
    stored = store.last_windows(scenario.MODEL, 10)
    assert [w["window"] for w in stored] == [0, 1] and all(w["n_events"] == 1000 for w in stored)
    assert store.load_state(scenario.MODEL) is not None and not p.dirty


def test_a_restart_continues_the_open_window(setup) -> None:
    cfg, store, lines = setup
    first = _pipeline(cfg, store)
    first.persist(first.handle(lines[:1500]).outcomes)
    second = _pipeline(cfg, store)
    assert second.monitors[scenario.MODEL].open_events == first.monitors[scenario.MODEL].open_events > 0
    outcomes = second.handle(lines[1500:]).outcomes
    assert [o.result.window for o in outcomes] == [1, 2, 3]


def test_a_pickled_snapshot_is_refused_at_start_with_the_fix(setup) -> None:
    cfg, store, _ = setup
    store.commit_batch(states={scenario.MODEL: pickle.dumps({"v": 1})})
    with pytest.raises(StoreError, match=r"db reset-state --model ticket-router"):
        _pipeline(cfg, store)


def test_after_reset_state_window_numbering_continues(setup) -> None:
    cfg, store, lines = setup
    p = _pipeline(cfg, store)
    p.persist(p.handle(lines[:2500]).outcomes)  # windows 0 and 1 stored, 500 events open
    assert store.reset_states(scenario.MODEL) == 1
    q = _pipeline(cfg, store)
    assert q.monitors[scenario.MODEL].open_events == 0
    assert [o.result.window for o in q.handle(lines[2500:]).outcomes] == [2]


def test_unknown_model_and_missing_anchor_are_clear(setup) -> None:
    cfg, store, _ = setup
    p = _pipeline(cfg, store)
    bad = orjson.dumps({"model": "nobody", "ts": 1.0, "inputs": {}})
    assert [r.reason for r in p.handle([bad]).rejected] == ["unknown_model"]
    models = {**cfg.models}
    models[scenario.MODEL] = models[scenario.MODEL].model_copy(update={"anchor": "not-registered"})
    with pytest.raises(ConfigError, match="not-registered"):
        _pipeline(cfg.model_copy(update={"models": models}), store)
