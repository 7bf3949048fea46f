"""The CLI end to end, as a user runs it: subprocesses, files, a SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from careful_monitor.demo import scenario, write_scenario
from tests.procs import cm

ALERT_KEYS = {"alert_id", "model", "dataset", "state", "since_window", "window", "window_end", "created_at",
              "model_versions", "evidence", "affinity", "share", "share_identifiable",
              "group_share", "indistinguishable_from", "action", "trained_versions",
              "acked_by", "acked_at"}


@pytest.fixture(scope="module")
def scenario_dir(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("scenario")
    (d / "datasets").mkdir()
    return {**write_scenario(d, seed=3, windows=16), "dir": d}


def _register(cfg: Path, paths: dict[str, Path]) -> None:
    for name in (scenario.ANCHOR, scenario.COLLAPSED, scenario.FAITHFUL):
        r = cm("datasets", "register", "--config", str(cfg), str(paths[f"card:{name}"]))
        assert r.returncode == 0, r.stderr.decode()


def _fresh_config(tmp: Path, paths: dict[str, Path]) -> Path:
    text = paths["config"].read_text().replace("sqlite:///careful.db", f"sqlite:///{tmp / 'careful.db'}")
    text = text.replace("path: dead-letters.jsonl", f"path: {tmp / 'dead.jsonl'}")
    cfg = tmp / "config.yaml"
    cfg.write_text(text)
    return cfg


def _windows(cfg: Path) -> list[dict]:
    from careful_monitor.config import load_config
    from careful_monitor.store import Store

    c = load_config(cfg, environ={})
    rows = Store(c.store_url).last_windows(scenario.MODEL, 1000)
    return rows


def test_register_replay_twice_alerts_ack(tmp_path: Path, scenario_dir) -> None:
    cfg = _fresh_config(tmp_path, scenario_dir)
    _register(cfg, scenario_dir)
    lines = scenario_dir["events"].read_bytes().splitlines(keepends=True)
    cut = 7_400  # mid-window: the first replay leaves an open window for the second to continue
    (tmp_path / "part1.jsonl").write_bytes(b"".join(lines[:cut]))
    (tmp_path / "part2.jsonl").write_bytes(b"".join(lines[cut:]))
    r1 = cm("replay", "--config", str(cfg), "--no-http", "--json", str(tmp_path / "part1.jsonl"))
    assert r1.returncode == 0, r1.stderr.decode()
    s1 = json.loads(r1.stdout)
    assert s1["open_window_events"][scenario.MODEL] > 0
    # the second replay reads stdin
    r2 = cm("replay", "--config", str(cfg), "--no-http", "--json", "-", input=(tmp_path / "part2.jsonl").read_bytes())
    assert r2.returncode == 0, r2.stderr.decode()
    s2 = json.loads(r2.stdout)
    assert s1["accepted"] + s2["accepted"] == 16_000  # every good line exactly once
    assert sum(s1["rejected"].values()) + sum(s2["rejected"].values()) == 5
    split_windows = _windows(cfg)
    assert [w["window"] for w in split_windows] == list(range(16))
    # Contract change (issue 11, replay idempotent by input): replaying a file again used to count its
    # events a second time (doubled windows, event time going backwards). Now the file is skipped.
    again = cm("replay", "--config", str(cfg), "--no-http", "--json", str(tmp_path / "part1.jsonl"))
    assert again.returncode == 0, again.stderr.decode()
    s_again = json.loads(again.stdout)
    assert s_again["skipped"] == [str(tmp_path / "part1.jsonl")] and s_again["lines"] == 0
    assert s_again["windows"] == 0 and s_again["resumed_at"] == {}
    assert b"already replayed: " in again.stderr and b"--restart re-reads it" in again.stderr
    assert _windows(cfg) == split_windows

    # one uninterrupted replay into a fresh store gives the same windows
    other = tmp_path / "other"
    other.mkdir()
    cfg2 = _fresh_config(other, scenario_dir)
    _register(cfg2, scenario_dir)
    r3 = cm("replay", "--config", str(cfg2), "--no-http", "--json", str(scenario_dir["events"]))
    assert r3.returncode == 0, r3.stderr.decode()
    whole = _windows(cfg2)
    strip = lambda ws: [{k: v for k, v in w.items() if k not in ("created_at",)} for w in ws]  # noqa: E731
    assert strip(split_windows) == strip(whole)

    # dead letters: each kind with its reason, the original line unchanged
    dead = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert sorted(d["reason"] for d in dead) == ["decode", "schema", "schema", "too_large", "unknown_model"]
    originals = {line.rstrip(b"\n") for line in lines}
    assert all(d["event"].encode() in originals for d in dead)

    r = cm("alerts", "list", "--config", str(cfg), "--json")
    assert r.returncode == 0, r.stderr.decode()
    alerts = json.loads(r.stdout)
    assert [a["dataset"] for a in alerts] == [scenario.COLLAPSED]
    a = alerts[0]
    assert set(a) == ALERT_KEYS
    assert a["alert_id"] == f"{a['model']}:{a['dataset']}:{a['window']}:{a['state']}"
    assert a["state"] == "retire_recommended" and a["share_identifiable"] is True
    assert 8 <= a["since_window"] <= a["window"] <= 8 + 3  # drift starts at window 8; retire_after=3

    r = cm("alerts", "ack", "--config", str(cfg), a["alert_id"], "--by", "oncall")
    assert r.returncode == 0, r.stderr.decode()
    acked = json.loads(cm("alerts", "list", "--config", str(cfg), "--json").stdout)[0]
    assert acked["acked_by"] == "oncall" and acked["acked_at"]
    assert cm("alerts", "ack", "--config", str(cfg), "nope:x:1:watch", "--by", "x").returncode == 2


def test_replay_resumes_restarts_and_exits_1_when_all_rejected(tmp_path: Path, scenario_dir) -> None:
    cfg = _fresh_config(tmp_path, scenario_dir)
    _register(cfg, scenario_dir)
    lines = scenario_dir["events"].read_bytes().splitlines(keepends=True)
    f = tmp_path / "events.jsonl"
    f.write_bytes(b"".join(lines[:1500]))
    first = cm("replay", "--config", str(cfg), "--no-http", "--json", str(f))
    assert first.returncode == 0, first.stderr.decode()
    size1 = f.stat().st_size
    f.write_bytes(b"".join(lines[:3000]))  # appended
    resumed = json.loads(cm("replay", "--config", str(cfg), "--no-http", "--json", str(f)).stdout)
    assert resumed["resumed_at"] == {str(f): size1} and resumed["skipped"] == []
    assert json.loads(first.stdout)["lines"] + resumed["lines"] == sum(1 for x in lines[:3000] if x.strip())
    restart = cm("replay", "--config", str(cfg), "--no-http", "--json", "--restart", str(f))
    assert restart.returncode == 0 and json.loads(restart.stdout)["lines"] == sum(1 for x in lines[:3000] if x.strip())

    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"not json\n{\"model\": \"nope\"}\n")
    r = cm("replay", "--config", str(cfg), "--no-http", "--json", str(bad))
    assert r.returncode == 1 and b"every line was rejected (2 lines)" in r.stderr
    assert json.loads(r.stdout)["accepted"] == 0
    # read again: skipped, nothing read, so not "all rejected"
    assert cm("replay", "--config", str(cfg), "--no-http", str(bad)).returncode == 0


def test_lifecycle_and_show(tmp_path: Path, scenario_dir) -> None:
    cfg = _fresh_config(tmp_path, scenario_dir)
    _register(cfg, scenario_dir)
    assert cm("datasets", "review", "--config", str(cfg), scenario.COLLAPSED, "--by", "me",
              "--reason", "alert").returncode == 0
    assert cm("datasets", "retire", "--config", str(cfg), scenario.COLLAPSED, "--by", "me",
              "--reason", "collapsed").returncode == 0
    bad = cm("datasets", "review", "--config", str(cfg), scenario.COLLAPSED, "--by", "me", "--reason", "again")
    assert bad.returncode == 2 and b"retired" in bad.stderr
    show = json.loads(cm("datasets", "show", "--config", str(cfg), scenario.COLLAPSED).stdout)
    assert show["state"] == "retired"
    assert [e["action"] for e in show["audit"]][-2:] == ["review", "retire"]
    listed = json.loads(cm("datasets", "list", "--config", str(cfg), "--json").stdout)
    assert {d["name"] for d in listed} == {scenario.ANCHOR, scenario.COLLAPSED, scenario.FAITHFUL}


def test_register_errors_name_the_field(tmp_path: Path, scenario_dir) -> None:
    cfg = _fresh_config(tmp_path, scenario_dir)
    # a synthetic set before its anchor
    r = cm("datasets", "register", "--config", str(cfg), str(scenario_dir[f"card:{scenario.COLLAPSED}"]))
    assert r.returncode == 2 and b"register the anchor first" in r.stderr
    card = tmp_path / "bad.yaml"
    card.write_text("name: x\nrole: synthetic\nanchored_by: tickets-real\ndata: d.jsonl\n")
    (tmp_path / "d.jsonl").write_text('{"inputs": {"a": 1}}\n')
    r = cm("datasets", "register", "--config", str(cfg), str(card))
    assert r.returncode == 2 and b"provenance.generator" in r.stderr


def test_bad_config_exits_2_with_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("window: {size: 1000, min_sise: 3}\n")
    r = cm("alerts", "list", "--config", str(cfg))
    assert r.returncode == 2 and b"window.min_sise" in r.stderr
    r = cm("alerts", "list", env={"CAREFUL_MONITOR_HTTP__PORT": "not-a-port"}, cwd=tmp_path)
    assert r.returncode == 2 and b"http.port" in r.stderr


@pytest.mark.parametrize("command", [[], ["demo"], ["replay"], ["datasets"], ["datasets", "register"],
                                     ["datasets", "list"], ["datasets", "show"], ["datasets", "review"],
                                     ["datasets", "retire"],
                                     ["datasets", "reactivate"], ["alerts", "list"], ["alerts", "ack"],
                                     ["db", "upgrade"], ["bench"]])
def test_every_command_has_help(command: list[str]) -> None:
    r = cm(*command, "--help")
    assert r.returncode == 0 and b"Usage:" in r.stdout


def test_demo_end_to_end(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    r = cm("demo", "--workdir", str(work), "--port", "0")
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()
    assert f"ALERT {scenario.MODEL}:{scenario.COLLAPSED}:" in out
    assert scenario.FAITHFUL + ":" not in out.split("3. alerts")[1].split("final states")[0]
    for name in ("config.yaml", "events.jsonl", "dead-letters.jsonl", "careful.db", "datasets"):
        assert (work / name).exists(), name
    alerts = json.loads(cm("alerts", "list", "--config", str(work / "config.yaml"), "--json").stdout)
    assert [a["dataset"] for a in alerts] == [scenario.COLLAPSED]
    # a second demo clears its own folder; a foreign non-empty folder is refused
    assert cm("demo", "--workdir", str(work), "--port", "0", "--windows", "10").returncode == 0
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    assert cm("demo", "--workdir", str(foreign)).returncode == 2
    assert (foreign / "keep.txt").exists()
