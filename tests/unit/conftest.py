"""Shared fixtures for the engine's statistical tests: demo-scenario profiles built once."""

from __future__ import annotations

import numpy as np
import pytest

from careful_monitor.config import MinEffect
from careful_monitor.demo import scenario
from careful_monitor.engine.monitor import ModelMonitor, MonitorSpec


@pytest.fixture(scope="session")
def demo_profiles():
    return scenario.profiles(np.random.default_rng(1234))


def demo_monitor(demo_profiles, **spec) -> ModelMonitor:
    anchor, synthetic = demo_profiles
    return ModelMonitor(scenario.MODEL,
                        MonitorSpec(features=dict(scenario.FEATURES), min_effect=MinEffect().model_dump(), **spec),
                        anchor, synthetic)


def register_scenario(d, *, seed: int, windows: int):
    """The demo scenario written to folder `d` and its three datasets registered in the scenario's
    SQLite store; returns (config path, events path). Build it once per module and copy the store."""
    from careful_monitor.config import load_config
    from careful_monitor.demo import write_scenario
    from careful_monitor.registry import register
    from careful_monitor.store import Store

    (d / "datasets").mkdir(exist_ok=True)
    paths = write_scenario(d, seed=seed, windows=windows)
    cfg = load_config(paths["config"], environ={})
    with Store(cfg.store_url) as store:
        for name in (scenario.ANCHOR, scenario.COLLAPSED, scenario.FAITHFUL):
            register(cfg, store, paths[f"card:{name}"], by="test")
    return paths["config"], paths["events"]


def store_copy(config_path, dest):
    """(config, open Store) on a copy of the scenario's registered store at `dest`, so a test starts
    from registered datasets without seeing another test's windows. The caller closes the store."""
    from pathlib import Path

    from careful_monitor.config import load_config
    from careful_monitor.store import Store

    base = load_config(config_path, environ={})
    dest.write_bytes(Path(base.store_url.removeprefix("sqlite:///")).read_bytes())
    cfg = base.model_copy(update={"store": base.store.model_copy(update={"url": f"sqlite:///{dest}"})})
    return cfg, Store(cfg.store_url)


@pytest.fixture
def fresh(registered, tmp_path):
    """A factory of copies of the module's `registered` store (its fixture's first item is the config
    path): fresh("a", dedup_ids=...) -> (cfg, open Store), with `limits` overridden; closed after the test."""
    opened = []

    def make(name: str, **limits):
        cfg, store = store_copy(registered[0], tmp_path / f"{name}.db")
        if limits:
            cfg = cfg.model_copy(update={"limits": cfg.limits.model_copy(update=limits)})
        opened.append(store)
        return cfg, store

    yield make
    for s in opened:
        s.close()


def new_pipeline(cfg, store):
    """A new pipeline from the store, as a new process would build it (a fixed clock)."""
    from prometheus_client import CollectorRegistry

    from careful_monitor.runtime.pipeline import Pipeline
    from careful_monitor.sinks.prometheus import Metrics

    return Pipeline(cfg, store, Metrics(CollectorRegistry()), clock=lambda: 1_800_000_000.0)


def stored_results(store) -> tuple[list[dict], list[dict]]:
    """The demo model's window results and alerts as stored, created_at excluded."""
    strip = lambda rows: [{k: v for k, v in r.items() if k != "created_at"} for r in rows]  # noqa: E731
    return strip(store.last_windows(scenario.MODEL, 10_000)), strip(store.list_alerts())
