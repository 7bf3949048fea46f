"""Governance at the CLI (issue 10): use limits refuse a replay, the anchor cannot be retired, --replace."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from careful_monitor.demo import scenario, write_scenario
from tests.e2e.test_cli import _fresh_config, _register, cm


def test_use_limits_evaluation_sets_and_lifecycle_at_the_cli(tmp_path: Path) -> None:
    d = tmp_path / "scenario"
    (d / "datasets").mkdir(parents=True)
    paths = write_scenario(d, seed=3, windows=2)
    cfg = _fresh_config(tmp_path, paths)
    _register(cfg, paths)
    ds = d / "datasets"
    faithful = yaml.safe_load(paths[f"card:{scenario.FAITHFUL}"].read_text())

    typo = ds / "typo.yaml"
    typo.write_text(yaml.safe_dump({**faithful, "use_limits": ["no-trainig"]}))
    r = cm("datasets", "register", "--config", str(cfg), str(typo))
    assert r.returncode == 2 and b"'use_limits'" in r.stderr and b"no-production-monitoring" in r.stderr

    limited = ds / "limited.yaml"
    limited.write_text(yaml.safe_dump({**faithful, "use_limits": ["no-training"]}))
    assert cm("datasets", "register", "--config", str(cfg), str(limited)).returncode == 0
    r = cm("replay", "--config", str(cfg), "--no-http", "--json", str(paths["events"]))
    err = r.stderr.decode()
    assert r.returncode == 2 and scenario.MODEL in err and scenario.FAITHFUL in err and "rule no-training" in err
    assert "fix:" in err
    warn = cm("replay", "--config", str(cfg), "--no-http", "--json", str(paths["events"]),
              env={"CAREFUL_MONITOR_GOVERNANCE__MODE": "warn"})
    assert warn.returncode == 0, warn.stderr.decode()
    assert b"governance.mode warn: starting with 1 violation(s)" in warn.stderr

    # an evaluation set no model names: registered, with a warning
    anchor = yaml.safe_load(paths[f"card:{scenario.ANCHOR}"].read_text())
    ev = ds / "eval.yaml"
    ev.write_text(yaml.safe_dump({**anchor, "name": "tickets-eval", "role": "evaluation"}))
    r = cm("datasets", "register", "--config", str(cfg), "--json", str(ev))
    assert r.returncode == 0, r.stderr.decode()
    assert any("evaluation list" in w for w in json.loads(r.stdout)[0]["warnings"])

    # the anchor cannot be retired; a role change needs --replace
    r = cm("datasets", "retire", "--config", str(cfg), scenario.ANCHOR, "--by", "me", "--reason", "old")
    assert r.returncode == 2 and b"datasets register --replace" in r.stderr
    as_real = ds / "eval-real.yaml"
    as_real.write_text(yaml.safe_dump({**anchor, "name": "tickets-eval"}))
    r = cm("datasets", "register", "--config", str(cfg), str(as_real))
    assert r.returncode == 2 and b"--replace" in r.stderr
    r = cm("datasets", "register", "--config", str(cfg), "--replace", str(as_real))
    assert r.returncode == 0 and b"replaced (role evaluation -> real)" in r.stdout, r.stderr.decode()
