"""Issue 11 regressions through the CLI: one clear line and a documented exit code, never a traceback."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import orjson

from tests.e2e.test_cli import _fresh_config, _register, cm, scenario_dir  # noqa: F401 (a fixture)


def test_implausible_ts_replays_without_traceback_and_markup_is_literal(tmp_path: Path, scenario_dir) -> None:  # noqa: F811
    cfg = _fresh_config(tmp_path, scenario_dir)
    _register(cfg, scenario_dir)
    lines = scenario_dir["events"].read_bytes().splitlines()
    good = [i for i, x in enumerate(lines) if x.startswith(b"{") and b'"ts"' in x]
    events = tmp_path / "events.jsonl"
    out = []
    for i, x in enumerate(lines):
        if i in (good[9_500], good[10_500], good[11_500]):  # inside the drifting windows that raise the alert
            e = orjson.loads(x)
            e["ts"] = -1e12
            x = orjson.dumps(e)
        elif i == good[9_600]:
            e = orjson.loads(x)
            e["ts"] = e["ts"] * 1000  # milliseconds: converted
            x = orjson.dumps(e)
        out.append(x)
    events.write_bytes(b"\n".join(out) + b"\n")
    r = cm("replay", "--config", str(cfg), "--no-http", "--json", str(events))
    assert r.returncode == 0, r.stderr.decode()
    assert b"Traceback" not in r.stderr
    s = json.loads(r.stdout)
    assert s["accepted"] == 16_000 - 3 and s["rejected"]["schema"] == 2 + 3
    assert s["alerts"]
    dead = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()]
    implausible = [d for d in dead if "plausible range" in d["detail"]]
    assert len(implausible) == 3 and all(d["reason"] == "schema" for d in implausible)

    alert_id = s["alerts"][0]
    assert cm("alerts", "ack", "--config", str(cfg), alert_id, "--by", "").returncode == 2
    blank = cm("alerts", "ack", "--config", str(cfg), alert_id, "--by", "  \t")
    assert blank.returncode == 2 and b"--by" in blank.stderr
    by = "[bold red]x[/] [link=http://e]y[/link]\x1b[2J"
    assert cm("alerts", "ack", "--config", str(cfg), alert_id, "--by", by).returncode == 0
    shown = cm("alerts", "list", "--config", str(cfg), env={"COLUMNS": "300"})
    assert shown.returncode == 0, shown.stderr.decode()
    text = shown.stdout.decode()
    assert "[bold red]x[/] [link=http://e]y[/link]\\x1b[2J" in text
    assert "\x1b" not in text


def test_yaml_bomb_card_fails_fast_and_small(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_text('{"inputs": {"a": 1}}\n')
    card = tmp_path / "bomb.yaml"
    levels = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    card.write_text("name: bomb\nrole: real\ndata: d.jsonl\n" + "\n".join(levels) + "\n")
    env = {"CAREFUL_MONITOR_STORE__URL": f"sqlite:///{tmp_path / 's.db'}"}
    t0 = time.perf_counter()
    r = cm("datasets", "register", str(card), env=env, cwd=tmp_path)
    assert time.perf_counter() - t0 < 30
    assert r.returncode == 2 and str(card).encode() in r.stderr and b"alias" in r.stderr, r.stderr.decode()
    assert b"Traceback" not in r.stderr
    r = cm("alerts", "list", "--config", str(card), cwd=tmp_path)  # the config loader shares the loader
    assert r.returncode == 2 and b"alias" in r.stderr and b"Traceback" not in r.stderr


def test_bad_data_files_and_paths_exit_2(tmp_path: Path) -> None:
    env = {"CAREFUL_MONITOR_STORE__URL": f"sqlite:///{tmp_path / 's.db'}"}
    (tmp_path / "r.csv").write_text("inputs.a,inputs.b\n1,2\n1,2\n7\n")
    (tmp_path / "ragged.yaml").write_text("name: r\nrole: real\ndata: r.csv\n")
    r = cm("datasets", "register", str(tmp_path / "ragged.yaml"), env=env, cwd=tmp_path)
    assert r.returncode == 2 and b"r.csv" in r.stderr and b"line 4" in r.stderr, r.stderr.decode()
    assert b"Traceback" not in r.stderr
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "out.yaml").write_text("name: o\nrole: real\ndata: ../d.csv\n")
    (tmp_path / "d.csv").write_text("inputs.a\n" + "".join(f"{i}\n" for i in range(30)))
    r = cm("datasets", "register", str(tmp_path / "sub" / "out.yaml"), env=env, cwd=tmp_path)
    assert r.returncode == 2 and b"--allow-outside" in r.stderr, r.stderr.decode()
    r = cm("datasets", "register", "--allow-outside", str(tmp_path / "sub" / "out.yaml"), env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    r = cm("datasets", "review", "o", "--by", " ", "--reason", "x", env=env, cwd=tmp_path)
    assert r.returncode == 2 and b"--by" in r.stderr, r.stderr.decode()


def test_port_in_use_and_dead_letter_directory_are_one_line(tmp_path: Path, scenario_dir) -> None:  # noqa: F811
    cfg = _fresh_config(tmp_path, scenario_dir)
    _register(cfg, scenario_dir)
    events = tmp_path / "few.jsonl"
    events.write_bytes(b"\n".join(scenario_dir["events"].read_bytes().splitlines()[:50]) + b"\n")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        r = cm("replay", "--config", str(cfg), "--port", str(port), str(events))
    finally:
        busy.close()
    err = r.stderr.decode()
    assert r.returncode == 2 and f"port {port} on 127.0.0.1 is in use: pass --port 0 or another port" in err, err
    assert "Traceback" not in err
    (tmp_path / "dl").mkdir()
    r = cm("replay", "--config", str(cfg), "--no-http", str(events),
           env={"CAREFUL_MONITOR_DEAD_LETTERS__PATH": str(tmp_path / "dl")})
    err = r.stderr.decode()
    assert r.returncode == 2 and "dead_letters.path" in err and "directory" in err and "Traceback" not in err, err


def test_broker_unreachable_at_start_is_one_line(tmp_path: Path, scenario_dir) -> None:  # noqa: F811
    cfg = _fresh_config(tmp_path, scenario_dir)
    _register(cfg, scenario_dir)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = cm("run", "--config", str(cfg), "--port", "0", env={"CAREFUL_MONITOR_KAFKA__BOOTSTRAP": f"127.0.0.1:{port}"})
    err = r.stderr.decode()
    assert r.returncode == 2 and f"error: Kafka at 127.0.0.1:{port}:" in err, err
    assert "Traceback" not in err
