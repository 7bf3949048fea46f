"""Lineage (issue 10 item 5): `lineage record|show` at the CLI, the API, provenance.parent and `trained_versions`."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
import yaml

from careful_monitor.demo import scenario, write_scenario
from tests.e2e.test_cli import _fresh_config, _register, cm


@pytest.fixture(scope="module")
def registered(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    d = tmp_path_factory.mktemp("lineage")
    (d / "datasets").mkdir()
    paths = write_scenario(d, seed=3, windows=12)
    cfg = _fresh_config(d, paths)
    _register(cfg, paths)
    return cfg, paths


def _card(paths: dict[str, Path], name: str) -> dict:
    return yaml.safe_load(paths[f"card:{name}"].read_text())


def test_bad_mixes_are_refused_naming_the_field(registered) -> None:
    cfg, _ = registered
    cases = [
        (["--mix", f"{scenario.ANCHOR}=0.5", "--mix", f"{scenario.COLLAPSED}=0.4"], "sum to 0.9"),
        (["--mix", f"{scenario.ANCHOR}=1.2", "--mix", f"{scenario.COLLAPSED}=-0.2"], "share must be in (0, 1]"),
        (["--mix", f"{scenario.ANCHOR}=0.5", "--mix", "nobody-registered-me=0.5"], "nobody-registered-me"),
        (["--mix", f"{scenario.ANCHOR}"], "expected name=share"),
        ([], "--mix"),
    ]
    for args, needle in cases:
        r = cm("lineage", "record", "--config", str(cfg), scenario.MODEL, "bad", *args)
        assert r.returncode == 2, (args, r.stderr.decode())
        assert needle in r.stderr.decode() and "--mix" in r.stderr.decode(), (args, r.stderr.decode())
    shown = json.loads(cm("lineage", "show", "--config", str(cfg), scenario.MODEL, "--json").stdout)
    assert shown == {"model": scenario.MODEL, "versions": []}  # nothing half-recorded


def test_provenance_parent_must_be_registered_and_acyclic(registered, tmp_path: Path) -> None:
    cfg, paths = registered
    ds = paths[f"card:{scenario.COLLAPSED}"].parent
    collapsed = _card(paths, scenario.COLLAPSED)
    orphan = ds / "orphan.yaml"
    orphan.write_text(yaml.safe_dump({**collapsed, "name": "orphan",
                                      "provenance": {**collapsed["provenance"], "parent": "no-such-set"}}))
    r = cm("datasets", "register", "--config", str(cfg), str(orphan))
    assert r.returncode == 2 and b"'provenance.parent'" in r.stderr and b"no-such-set" in r.stderr

    child = ds / "child.yaml"
    child.write_text(yaml.safe_dump({**collapsed, "name": "tickets-synth-child",
                                     "provenance": {**collapsed["provenance"], "parent": scenario.COLLAPSED}}))
    assert cm("datasets", "register", "--config", str(cfg), str(child)).returncode == 0
    cyclic = ds / "cyclic.yaml"
    cyclic.write_text(yaml.safe_dump({**collapsed, "provenance": {**collapsed["provenance"],
                                                                  "parent": "tickets-synth-child"}}))
    r = cm("datasets", "register", "--config", str(cfg), str(cyclic))
    err = r.stderr.decode()
    assert r.returncode == 2 and "'provenance.parent'" in err and "cycle" in err, err
    assert f"{scenario.COLLAPSED} -> tickets-synth-child -> {scenario.COLLAPSED}" in err


def test_lineage_round_trip_through_cli_api_and_an_alert(registered) -> None:
    cfg, paths = registered
    model, anchor, collapsed, faithful = scenario.MODEL, scenario.ANCHOR, scenario.COLLAPSED, scenario.FAITHFUL
    mix7 = ["--mix", f"{anchor}=0.4", "--mix", f"{collapsed}=0.3", "--mix", f"{faithful}=0.3"]
    r = cm("lineage", "record", "--config", str(cfg), model, "7", *mix7, "--by", "alice")
    assert r.returncode == 0 and b"recorded ticket-router version 7" in r.stdout, r.stderr.decode()
    again = cm("lineage", "record", "--config", str(cfg), model, "7", *mix7)
    assert again.returncode == 0 and b"unchanged" in again.stdout
    other = cm("lineage", "record", "--config", str(cfg), model, "7", "--mix", f"{anchor}=1")
    assert other.returncode == 2 and b"already recorded" in other.stderr

    # a real set registered after version 7 is fresh for version 8
    fresh = paths[f"card:{anchor}"].parent / "fresh.yaml"
    fresh.write_text(yaml.safe_dump({**_card(paths, anchor), "name": "tickets-real-fresh"}))
    assert cm("datasets", "register", "--config", str(cfg), str(fresh)).returncode == 0

    # a retired dataset in a new version's mix is a governance violation
    assert cm("datasets", "retire", "--config", str(cfg), faithful, "--by", "me", "--reason", "r").returncode == 0
    r = cm("lineage", "record", "--config", str(cfg), model, "8", "--mix", f"{anchor}=0.5", "--mix", f"{faithful}=0.5")
    assert r.returncode == 2 and b"governance violation" in r.stderr and b"datasets reactivate" in r.stderr
    assert cm("datasets", "reactivate", "--config", str(cfg), faithful, "--by", "me", "--reason", "r").returncode == 0

    mix8 = ["--mix", f"{anchor}=0.4", "--mix", "tickets-real-fresh=0.2", "--mix", f"{collapsed}=0.4"]
    assert cm("lineage", "record", "--config", str(cfg), model, "8", *mix8, "--by", "bob").returncode == 0

    shown = cm("lineage", "show", "--config", str(cfg), model, "--json")
    assert shown.returncode == 0, shown.stderr.decode()
    doc = json.loads(shown.stdout)
    assert [v["version"] for v in doc["versions"]] == ["7", "8"]
    v7, v8 = doc["versions"]
    assert v7["recorded_by"] == "alice" and v8["recorded_by"] == "bob"
    assert v7["fresh_real_share"] == 0.4 and v8["fresh_real_share"] == 0.2
    by = {d["dataset"]: d for d in v8["mix"]}
    assert by[anchor]["generation"] == 0 and by[collapsed]["generation"] == 1
    assert by["tickets-real-fresh"]["fresh_real"] and not by[anchor]["fresh_real"]
    tree = cm("lineage", "show", "--config", str(cfg), model)
    assert tree.returncode == 0 and b"version 8" in tree.stdout and b"generation 1" in tree.stdout

    # replay: the config's training_mix differs from version 8 (one warning); the alert names the versions
    r = cm("replay", "--config", str(cfg), "--no-http", "--json", str(paths["events"]))
    assert r.returncode == 0, r.stderr.decode()
    assert r.stderr.decode().count("training_mix differs from the recorded lineage") == 1
    alerts = json.loads(cm("alerts", "list", "--config", str(cfg), "--json").stdout)
    assert [a["dataset"] for a in alerts] == [collapsed]
    assert alerts[0]["trained_versions"] == ["7", "8"]

    # the API serves the same document as `lineage show --json`
    from prometheus_client import CollectorRegistry

    from careful_monitor.config import load_config
    from careful_monitor.runtime.http import ServerThread, make_app
    from careful_monitor.sinks.prometheus import Metrics
    from careful_monitor.store import Store

    with Store(load_config(cfg, environ={}).store_url) as store:
        server = ServerThread(make_app(Metrics(CollectorRegistry()), store), "127.0.0.1", 0).start()
        try:
            with urllib.request.urlopen(f"{server.url}/api/models/{model}/lineage", timeout=10) as resp:
                assert json.loads(resp.read()) == doc
        finally:
            server.stop()


def test_lineage_help_has_an_example() -> None:
    for command in (["lineage"], ["lineage", "record"], ["lineage", "show"]):
        r = cm(*command, "--help")
        assert r.returncode == 0 and b"Example: careful-monitor lineage" in r.stdout
