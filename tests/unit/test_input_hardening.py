"""Issue 11 regressions: hostile or broken inputs give a clear error or a dead letter, never a crash."""

from __future__ import annotations

import io
import logging
import re
import socket
import time
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from careful_monitor.cards import load_card
from careful_monitor.config import load_config
from careful_monitor.errors import ConfigError, ManifestError
from careful_monitor.sources.decode import EventDecoder

TS0 = 1_764_000_000.0


def _laughs(levels: int = 9) -> str:
    """The classic billion-laughs document: 10^levels strings from a few hundred bytes."""
    out = ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        out.append(f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 10)}]")
    return "\n".join(out) + "\n"


# --- 1. ts plausibility --------------------------------------------------------------------------------


def _decoder() -> EventDecoder:
    cfg = load_config(None, environ={})
    return EventDecoder({"m": ["inputs.x"]}, 10_000, ts_min=cfg.limits.ts_min, ts_max=cfg.limits.ts_max)


def test_ts_out_of_range_is_schema_and_milliseconds_are_converted() -> None:
    lines = [orjson.dumps({"model": "m", "ts": ts, "inputs": {"x": 1}})
             for ts in (TS0, TS0 * 1000, -1e12, 1e15, -1.0, "2300-01-01T00:00:00Z", "2025-11-24T16:00:00Z",
                        int(TS0 * 1000))]
    d = _decoder().decode(lines)
    assert d.batches["m"].ts == [TS0, TS0, 1_764_000_000.0, TS0]
    assert [r.reason for r in d.rejected] == ["schema"] * 4
    assert all("limits.ts_min" in r.detail for r in d.rejected)
    assert [orjson.loads(r.raw)["ts"] for r in d.rejected] == [-1e12, 1e15, -1.0, "2300-01-01T00:00:00Z"]


def test_alert_times_never_raise_on_event_data() -> None:
    from careful_monitor.contracts import iso

    for ts in (-1e12, 1e20, float("nan"), float("inf"), -float("inf"), 0.0):
        assert iso(ts).endswith("Z")


def test_ts_limits_are_configurable_and_checked() -> None:
    cfg = load_config(None, environ={"CAREFUL_MONITOR_LIMITS__TS_MIN": "0"})
    assert cfg.limits.ts_min == 0 and cfg.limits.ts_max == 4_102_444_800.0
    with pytest.raises(ConfigError, match="limits"):
        load_config(None, environ={"CAREFUL_MONITOR_LIMITS__TS_MIN": "5e9"})


# --- 3. YAML bombs -------------------------------------------------------------------------------------


def test_billion_laughs_config_fails_fast(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(_laughs())
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="alias") as err:
        load_config(p, environ={})
    assert time.perf_counter() - t0 < 2
    assert str(p) in str(err.value)


def test_billion_laughs_card_fails_fast(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_text('{"inputs": {"a": 1}}\n')
    p = tmp_path / "card.yaml"
    p.write_text("name: x\nrole: real\ndata: d.jsonl\n" + _laughs())
    t0 = time.perf_counter()
    with pytest.raises(ManifestError, match="alias") as err:
        load_card(p)
    assert time.perf_counter() - t0 < 2
    assert err.value.manifest == str(p)


def test_large_yaml_refused(tmp_path: Path) -> None:
    p = tmp_path / "big.yaml"
    p.write_text("name: x\nrole: real\ndata: d.jsonl\npurpose: " + "x" * (2 << 20) + "\n")
    with pytest.raises(ManifestError, match="larger than"):
        load_card(p)
    c = tmp_path / "c.yaml"
    c.write_text("# " + "x" * (2 << 20) + "\n")
    with pytest.raises(ConfigError, match="larger than"):
        load_config(c, environ={})


def test_a_few_aliases_still_work(tmp_path: Path) -> None:
    c = tmp_path / "c.yaml"
    c.write_text("window: {size: &n 500, min_size: 100}\nprofile: {joint_sample: *n}\n")
    assert load_config(c, environ={}).profile.joint_sample == 500


# --- 4. version series bounded ------------------------------------------------------------------------


def test_version_series_never_exceed_the_limit_within_one_batch(tmp_path: Path) -> None:
    from careful_monitor.demo import scenario, write_scenario
    from careful_monitor.registry import register
    from careful_monitor.runtime.pipeline import Pipeline
    from careful_monitor.sinks.prometheus import Metrics
    from careful_monitor.store import Store

    (tmp_path / "datasets").mkdir()
    paths = write_scenario(tmp_path, seed=5, windows=2)
    cfg = load_config(paths["config"], environ={}, overrides={"window": {"size": 20, "min_size": 10}})
    assert cfg.limits.versions_per_model == 5
    store = Store(cfg.store_url)
    for name in (scenario.ANCHOR, scenario.COLLAPSED, scenario.FAITHFUL):
        register(cfg, store, paths[f"card:{name}"], by="test")
    reg = CollectorRegistry()
    metrics = Metrics(reg, versions_kept=cfg.limits.versions_per_model)
    pipe = Pipeline(cfg, store, metrics)
    lines = paths["events"].read_bytes().splitlines()[:2100]
    events = [orjson.loads(x) for x in lines if len(pipe.decoder.decode([x]).rejected) == 0][:1980]
    for i, e in enumerate(events):
        e["model_version"] = f"v{i // 20}"  # 99 versions, each dominating one window, all in one batch
    report = pipe.handle([orjson.dumps(e) for e in events])
    assert len(report.outcomes) >= 90
    exported = {s.labels["version"] for m in reg.collect() if m.name == "careful_monitor_collapse_signal_by_version"
                for s in m.samples}
    assert 0 < len(exported) <= 5, sorted(exported)
    assert exported <= set(pipe.monitors[scenario.MODEL].version_order)
    store.close()


# --- 5. card data confined to the card's folder -------------------------------------------------------


def test_card_data_outside_its_folder_is_refused(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    cards.mkdir()
    outside = tmp_path / "secret.jsonl"
    outside.write_text('{"inputs": {"a": 1}}\n')
    (cards / "link.jsonl").symlink_to(outside)
    (cards / "inside.jsonl").write_text('{"inputs": {"a": 1}}\n')
    for data, what in (("../secret.jsonl", "outside"), (str(outside), "absolute"), ("link.jsonl", "outside")):
        p = cards / "c.yaml"
        p.write_text(f"name: x\nrole: real\ndata: {data}\n")
        with pytest.raises(ManifestError, match=what) as err:
            load_card(p)
        assert "--allow-outside" in str(err.value)
        assert load_card(p, allow_outside=True)[2] == outside.resolve()
    p.write_text("name: x\nrole: real\ndata: inside.jsonl\n")
    assert load_card(p)[2] == (cards / "inside.jsonl").resolve()


def test_api_datasets_shows_data_relative_to_the_card(tmp_path: Path) -> None:
    from careful_monitor.registry import register
    from careful_monitor.runtime.http import _dataset_doc
    from careful_monitor.store import Store

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "d.jsonl").write_text("".join(f'{{"inputs": {{"a": {i}}}}}\n' for i in range(50)))
    card = tmp_path / "c.yaml"
    card.write_text("name: x\nrole: real\ndata: data/d.jsonl\n")
    cfg = load_config(None, environ={}, overrides={"store": {"url": f"sqlite:///{tmp_path / 's.db'}"}})
    with Store(cfg.store_url) as store:
        register(cfg, store, card, by="t")
        doc = _dataset_doc(store.get_dataset("x"))
    assert doc["card"]["data"] == "data/d.jsonl"
    assert str(tmp_path) not in orjson.dumps(doc).decode()


# --- 6. dataset files ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "body", "expect"), [
    ("ragged.csv", "inputs.a,inputs.b\n1,2\n3,4,5\n", "line 3 has 3 fields"),
    ("short.csv", "inputs.a,inputs.b\n1,2\n3\n", "line 3 has 1 fields"),
    ("header.csv", "inputs.a,inputs.b\n", "no data rows"),
    ("empty.csv", "", "empty"),
    ("empty.jsonl", "\n\n", "no data rows"),
])
def test_bad_dataset_files_are_manifest_errors(tmp_path: Path, name: str, body: str, expect: str) -> None:
    from careful_monitor.registry import register
    from careful_monitor.store import Store

    (tmp_path / name).write_text(body)
    card = tmp_path / "c.yaml"
    card.write_text(f"name: x\nrole: real\ndata: {name}\n")
    cfg = load_config(None, environ={}, overrides={"store": {"url": f"sqlite:///{tmp_path / 's.db'}"}})
    with Store(cfg.store_url) as store, pytest.raises(ManifestError) as err:
        register(cfg, store, card, by="t")
    assert expect in str(err.value) and name in str(err.value) and str(card) in str(err.value)


# --- 7. one-line errors -------------------------------------------------------------------------------


def test_dead_letters_path_a_directory_is_a_config_error(tmp_path: Path) -> None:
    from careful_monitor.sinks.deadletters import DeadLetterFile

    with pytest.raises(ConfigError, match=r"dead_letters\.path"):
        DeadLetterFile(tmp_path)


def test_port_in_use_is_one_clear_error(tmp_path: Path) -> None:
    from careful_monitor.errors import CarefulError
    from careful_monitor.runtime.http import ServerThread, make_app
    from careful_monitor.sinks.prometheus import Metrics

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        with pytest.raises(CarefulError, match=f"port {port} on 127.0.0.1 is in use: pass --port 0"):
            ServerThread(make_app(Metrics(CollectorRegistry()), None), "127.0.0.1", port).start()  # type: ignore[arg-type]
    finally:
        busy.close()


def test_malformed_request_is_one_warning_line(caplog) -> None:
    from careful_monitor.runtime.http import ServerThread, make_app
    from careful_monitor.sinks.prometheus import Metrics

    server = ServerThread(make_app(Metrics(CollectorRegistry()), None), "127.0.0.1", 0).start()  # type: ignore[arg-type]
    try:
        with caplog.at_level(logging.DEBUG, logger="aiohttp"):
            for garbage in (b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
                            b"GET /healthz HTTP/1.1\r\nbad header line\r\n\r\n"):
                with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
                    s.sendall(garbage)
                    s.recv(1000)
            time.sleep(0.2)
    finally:
        server.stop()
    server_records = [r for r in caplog.records if r.name.startswith("aiohttp")]
    assert server_records, "the bad requests were logged"
    assert all(r.levelno <= logging.WARNING and r.exc_info is None for r in server_records), [
        (r.levelname, r.getMessage()) for r in server_records]


# --- 8. user strings shown literally ------------------------------------------------------------------


def test_alerts_table_shows_markup_and_control_characters_literally() -> None:
    from rich.console import Console

    from careful_monitor.cli.render import alerts_table

    by = "[bold red]x[/] [link=http://e]y[/link]\x1b[31m\x07"
    row = {"alert_id": "m:d:3:retire_recommended", "state": "retire_recommended", "since_window": 1, "window": 3,
           "share": 0.5, "evidence": [{"feature": "inputs.a", "signal": "ks"}], "acked_by": by}
    for width in (300, 40):  # the table, and the narrow layout
        buf = io.StringIO()
        Console(file=buf, width=width, force_terminal=True, color_system="truecolor").print(alerts_table([row]))
        out = buf.getvalue()
        assert "\x1b]8;" not in out  # no OSC 8 hyperlink
        assert "\x07" not in out and "\x1b[31m" not in out
        flat = "".join(out.split())
        text = re.sub(r"\x1b\[[0-9;]*m", "", flat)
        assert "[boldred]x[/][link=http://e]y[/link]\\x1b[31m\\x07" in text, text

