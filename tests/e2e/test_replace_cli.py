"""Kinds from the config whatever the order, a synthetic set lacking a feature, and `--replace` of an
anchor, as a user runs them (issue 10, item 6)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson
import yaml

from careful_monitor.demo import scenario, write_scenario
from careful_monitor.demo.files import _write_jsonl
from tests.e2e.test_cli import _fresh_config, cm

ANCHOR, COLLAPSED, FAITHFUL = scenario.ANCHOR, scenario.COLLAPSED, scenario.FAITHFUL


def _ok(r) -> str:
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode()


def test_kinds_lacking_features_and_replacing_the_anchor(tmp_path: Path) -> None:
    d = tmp_path / "scenario"
    (d / "datasets").mkdir(parents=True)
    paths = write_scenario(d, seed=4, windows=2)
    ds = d / "datasets"
    inferred = _fresh_config(tmp_path, paths)  # the demo config: inputs.items numeric, as inferred
    doc = yaml.safe_load(inferred.read_text())
    doc["models"][scenario.MODEL]["features"]["inputs.items"] = "categorical"
    configured = tmp_path / "configured.yaml"
    configured.write_text(yaml.safe_dump(doc))
    replay = ("replay", "--config", str(configured), "--no-http", "--json", "--restart", str(paths["events"]))

    # registered before the config said `categorical`: replay refuses, naming the command
    for name in (ANCHOR, COLLAPSED, FAITHFUL):
        _ok(cm("datasets", "register", "--config", str(inferred), str(paths[f"card:{name}"])))
    r = cm(*replay)
    err = r.stderr.decode()
    assert r.returncode == 2 and f"datasets register --config {configured}" in err and ANCHOR in err, err
    out = _ok(cm("datasets", "register", "--config", str(configured), str(paths[f"card:{ANCHOR}"])))
    assert "re-binned" in out and COLLAPSED in out and FAITHFUL in out, out
    _ok(cm(*replay))

    # a synthetic set without a column the model monitors: a warning, and `datasets show` lists it
    rows = [orjson.loads(x) for x in (ds / "tickets_real.jsonl").read_bytes().splitlines()[:2000]]
    for row in rows:
        del row["inputs"]["channel"]
    _write_jsonl(ds / "no_channel.jsonl", rows)
    card = ds / "no-channel.yaml"
    card.write_text(yaml.safe_dump({**yaml.safe_load(paths[f"card:{FAITHFUL}"].read_text()),
                                    "data": "no_channel.jsonl"}))
    out = _ok(cm("datasets", "register", "--config", str(configured), str(card)))
    assert "lacks feature inputs.channel, which ticket-router monitor(s)" in out, out
    shown = json.loads(_ok(cm("datasets", "show", "--config", str(configured), FAITHFUL)))
    assert shown["missing_features"] == {"inputs.channel": [scenario.MODEL]}
    # the joint sample holds what the set has: channel is gone from its categorical columns too
    assert "inputs.country" in shown["joint_categorical"] and "inputs.channel" not in shown["joint_categorical"]
    _ok(cm("datasets", "register", "--config", str(configured), str(paths[f"card:{FAITHFUL}"])))  # back

    # new data for the anchor: refused without --replace; with it, the sets whose data is unchanged are
    # re-binned and the one whose data changed is named, and replay refuses naming exactly that one
    rng = np.random.default_rng(8)
    _write_jsonl(ds / "tickets_real_2026.jsonl",
                 scenario._rows(scenario.sample_columns(rng, 20_000, scenario.Law(amount_sigma=0.7))))
    refreshed = ds / "refreshed.yaml"
    refreshed.write_text(yaml.safe_dump({**yaml.safe_load(paths[f"card:{ANCHOR}"].read_text()),
                                         "data": "tickets_real_2026.jsonl"}))
    r = cm("datasets", "register", "--config", str(configured), str(refreshed))
    assert r.returncode == 2 and b"--replace" in r.stderr and b"other data" in r.stderr, r.stderr.decode()
    faithful_csv = ds / scenario.CARDS[FAITHFUL]["data"]
    original = faithful_csv.read_bytes()
    faithful_csv.write_bytes(original.replace(b"DE", b"FR", 5))
    out = _ok(cm("datasets", "register", "--config", str(configured), "--replace", "--json", str(refreshed)))
    [warning] = [w for w in json.loads(out)[0]["warnings"] if "must be re-registered" in w]
    assert FAITHFUL in warning and COLLAPSED not in warning and "changed since it was registered" in warning
    r = cm(*replay)
    err = r.stderr.decode()
    assert r.returncode == 2 and FAITHFUL in err and f"card of {COLLAPSED}" not in err, err
    faithful_csv.write_bytes(original)
    _ok(cm("datasets", "register", "--config", str(configured), str(paths[f"card:{FAITHFUL}"])))
    _ok(cm(*replay))
