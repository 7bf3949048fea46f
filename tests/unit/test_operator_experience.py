"""Issue 14, what an operator sees: log lines per window and alert, per-batch DEBUG in replay, metrics
hygiene (no `*_created`, process metrics, rejected events counted per model), `alerts list` at 80 columns,
replay's progress by bytes and the store's "back" message only after a failure."""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import threading
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from careful_monitor.cli.render import alerts_table
from careful_monitor.demo import scenario, write_scenario
from careful_monitor.errors import StoreError
from careful_monitor.runtime.kafka_loop import KafkaService
from careful_monitor.runtime.pipeline import Pipeline
from careful_monitor.runtime.replay import input_bytes, iter_sized_batches, replay
from careful_monitor.sinks.prometheus import Metrics
from tests.unit.conftest import register_scenario, store_copy

WINDOWS = 12


@pytest.fixture(scope="module")
def registered(tmp_path_factory) -> tuple[Path, Path]:
    return register_scenario(tmp_path_factory.mktemp("operator"), seed=11, windows=WINDOWS)


@pytest.fixture
def pipeline(registered, tmp_path):
    cfg_path, events = registered
    cfg, store = store_copy(cfg_path, tmp_path / "careful.db")
    p = Pipeline(cfg, store, Metrics(CollectorRegistry()), clock=lambda: 1_800_000_000.0)
    yield p, events
    store.close()


def _records(caplog, level: int, prefix: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == level and r.getMessage().startswith(prefix)
            and r.name == "careful_monitor.runtime.pipeline"]


def test_one_info_line_per_window_and_one_warning_per_alert(pipeline, caplog) -> None:
    p, events = pipeline
    caplog.set_level(logging.INFO, logger="careful_monitor")
    stats = replay(p, [str(events)], flush=True)
    windows = _records(caplog, logging.INFO, "window closed:")
    assert len(windows) == stats.windows > 0
    first = windows[0].getMessage()
    for part in (f"model={scenario.MODEL}", "window=0", "events=", "flagged_features=", "not_ok="):
        assert part in first, first
    alerts = _records(caplog, logging.WARNING, "alert raised:")
    assert stats.alerts, "the demo scenario raises an alert within its windows"
    assert [r.getMessage().split()[2] for r in alerts] == [f"alert_id={a.alert_id}" for a in stats.alerts]
    assert all("action=" in r.getMessage() for r in alerts)
    # a window after the alert names the dataset that is not ok
    assert any("retire_recommended" in r.getMessage().split("not_ok=")[1] for r in windows)
    assert not [r for r in caplog.records if r.levelno == logging.DEBUG]


def test_debug_adds_one_line_per_replay_batch(pipeline, caplog) -> None:
    p, events = pipeline
    caplog.set_level(logging.DEBUG, logger="careful_monitor")
    stats = replay(p, [str(events)], batch_lines=1000)
    batches = [r.getMessage() for r in caplog.records
               if r.name == "careful_monitor.runtime.replay" and r.getMessage().startswith("batch ")]
    assert len(batches) == -(-stats.lines // 1000)
    assert "accepted" in batches[0] and "rejected" in batches[0]
    assert sum(int(b.split(", ")[1].split()[0]) for b in batches) == stats.accepted


def test_rejected_events_of_a_known_model_are_counted_per_model(pipeline) -> None:
    p, _ = pipeline
    good = {"model": scenario.MODEL, "ts": 1_700_000_000.0, "inputs": {}, "outputs": {}}
    lines = [orjson.dumps(good), orjson.dumps({**good, "ts": "not a time"}),
             orjson.dumps({**good, "model_version": [1]}), orjson.dumps({**good, "model": "nobody"}), b"{not json"]
    report = p.handle(lines)
    assert report.accepted == 1 and len(report.rejected) == 4
    fams = {f.name: f for f in text_string_to_metric_families(p.metrics.exposition().decode())}
    events = {s.labels["outcome"]: s.value for s in fams["careful_monitor_events"].samples
              if s.labels.get("model") == scenario.MODEL and s.name.endswith("_total")}
    dead = {s.labels["reason"]: s.value for s in fams["careful_monitor_dead_letters"].samples
            if s.name.endswith("_total")}
    assert events == {"accepted": 1, "rejected": 2, "duplicate": 0}
    assert dead["schema"] == 2 and dead["unknown_model"] == 1 and dead["decode"] == 1
    # every line is accepted, rejected for a known model, or only a dead letter (unknown or unnamed model)
    assert sum(events.values()) + dead["unknown_model"] + dead["decode"] == len(lines)
    assert not any(s.labels.get("model") == "nobody" for f in fams.values() for s in f.samples)


def test_exposition_has_process_metrics_and_no_created_series() -> None:
    m = Metrics(CollectorRegistry())
    m.init_model("m", ["d"])
    m.count_events("m", 3, 1)
    text = m.exposition().decode()
    assert "_created" not in text
    names = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    assert {"process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds"} <= names
    assert "python_info" in names
    assert "never aggregate across `test`" in text
    from prometheus_client import metrics as pm

    assert pm._use_created, "no process-wide switch was flipped"  # other registries keep their _created


def test_metrics_on_a_registry_that_already_has_process_metrics() -> None:
    from prometheus_client import PlatformCollector, ProcessCollector

    r = CollectorRegistry(auto_describe=True)  # like prometheus_client's default REGISTRY
    ProcessCollector(registry=r)
    PlatformCollector(registry=r)
    text = Metrics(r).exposition().decode()
    assert text.count("\nprocess_open_fds ") == 1 and text.count("\npython_info{") == 1


ROWS = [
    {"alert_id": "ticket-router:tickets-synth-collapsed:12:retire_recommended", "state": "retire_recommended",
     "since_window": 9, "window": 12, "share": 0.41,
     "evidence": [{"feature": "inputs.text_len", "signal": "ks"}, {"feature": "inputs.amount", "signal": "psi"}],
     "acked_by": None},
    {"alert_id": "a-rather-long-model-name:another-long-dataset-name:123:anchor_stale", "state": "anchor_stale",
     "since_window": None, "window": 123, "share": None, "evidence": [], "acked_by": "alice"},
]


@pytest.mark.parametrize("width", [60, 80, 100, 200])
def test_alerts_list_never_cuts_an_alert_id(width: int) -> None:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(alerts_table(ROWS))
    lines = console.file.getvalue().splitlines()
    assert "…" not in "".join(lines) and "..." not in "".join(lines)
    for a in ROWS:
        if len(a["alert_id"]) <= width:  # whole, on one line: copy it and `alerts ack` it
            assert any(a["alert_id"] in line for line in lines), (width, lines)
        else:  # narrower than the id itself: folded, every character kept
            assert a["alert_id"] in "".join(lines), (width, lines)
    assert all(len(line) <= width for line in lines)
    if width >= 200:
        assert lines[0].startswith("┏") and "top evidence" in lines[1]  # the table when it fits


def test_replay_reports_bytes_read_of_the_files(tmp_path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_bytes(b'{"x": 1}\n\n{"x": 2}\r\n')
    b.write_bytes(b'{"x": 3}')
    assert input_bytes([str(a), str(b)]) == a.stat().st_size + b.stat().st_size
    assert input_bytes([str(a), "-"]) is None  # stdin: the bar stays indeterminate
    sized = list(iter_sized_batches(io.BytesIO(a.read_bytes()), size=1))
    assert [lines for lines, _ in sized] == [[b'{"x": 1}'], [b'{"x": 2}']]
    assert sum(n for _, n in sized) == a.stat().st_size


def test_replay_progress_adds_up_to_the_file_size(pipeline) -> None:
    p, events = pipeline
    seen: list[int] = []
    replay(p, [str(events)], on_bytes=seen.append, batch_lines=700)
    assert sum(seen) == events.stat().st_size and len(seen) > 1


def _service() -> SimpleNamespace:
    return SimpleNamespace(_store_down=False, _running=True, _stop=threading.Event(), ready=False,
                           metrics=Metrics(CollectorRegistry()),
                           _set_ready=lambda ready: None)


def test_store_is_back_is_logged_only_after_a_failure(caplog) -> None:
    caplog.set_level(logging.INFO, logger="careful_monitor")
    svc = _service()
    assert KafkaService._retry(svc, lambda: 1, "restore") == 1  # type: ignore[arg-type]
    assert not [r for r in caplog.records if "store is back" in r.getMessage()]
    calls = iter([StoreError("down"), 2])

    def flaky():
        v = next(calls)
        if isinstance(v, Exception):
            raise v
        return v

    svc._stop.wait = lambda delay: False  # no real sleeping
    assert KafkaService._retry(svc, flaky, "store the batch") == 2  # type: ignore[arg-type]
    assert [r.levelname for r in caplog.records if "store is back" in r.getMessage()] == ["INFO"]


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool is not installed")
def test_promtool_accepts_the_exposition_after_windows_and_rejections(pipeline) -> None:
    p, events = pipeline
    replay(p, [str(events)], flush=True)
    text = p.metrics.exposition()
    assert b"_created" not in text and b"\nprocess_open_fds " in text
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=60)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r.stdout + r.stderr


def test_replay_progress_bar_is_determinate_in_bytes_with_rate_and_eta() -> None:
    from rich.progress import DownloadColumn, TimeRemainingColumn, TransferSpeedColumn

    from careful_monitor.cli.render import progress

    kinds = {type(c) for c in progress(True, in_bytes=True).columns}
    assert {DownloadColumn, TransferSpeedColumn, TimeRemainingColumn} <= kinds
    assert TimeRemainingColumn not in {type(c) for c in progress(True).columns}  # stdin: events, no ETA


def test_json_logs_carry_iso_8601_timestamps() -> None:
    from datetime import datetime

    from careful_monitor.cli.common import setup_logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        setup_logging("info", "json")
        buf = io.StringIO()
        root.handlers[0].setStream(buf)  # type: ignore[attr-defined]
        logging.getLogger("careful_monitor.test").info("window closed: model=m")
        doc = orjson.loads(buf.getvalue().splitlines()[-1])
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert doc["msg"] == "window closed: model=m" and doc["level"] == "INFO"
    assert datetime.fromisoformat(doc["ts"]).utcoffset().total_seconds() == 0 and "T" in doc["ts"]


def test_datasets_register_takes_a_folder_of_cards_anchors_first(tmp_path) -> None:
    from click.testing import CliRunner

    from careful_monitor.cli import main
    from careful_monitor.cli.datasets import expand_manifests

    d = tmp_path / "w"
    (d / "datasets").mkdir(parents=True)
    paths = write_scenario(d, seed=11, windows=1)
    folder = paths[f"card:{scenario.ANCHOR}"].parent
    (folder / "README.md").write_text("not a card\n")
    order = [Path(p).stem for p in expand_manifests((str(folder),))]
    assert order[0] == scenario.ANCHOR and set(order) == {scenario.ANCHOR, scenario.COLLAPSED, scenario.FAITHFUL}
    empty = tmp_path / "empty"
    empty.mkdir()
    assert expand_manifests((str(empty), "x.yaml")) == ["x.yaml"]
    r = CliRunner().invoke(main, ["datasets", "register", "--config", str(paths["config"]), "--json", str(folder),
                                  str(empty)])
    assert r.exit_code == 0, r.output
    assert [x["name"] for x in orjson.loads(r.output.strip().splitlines()[-1])] == order


def test_every_command_help_ends_with_an_example() -> None:
    import click
    from click.testing import CliRunner

    from careful_monitor.cli import main

    def walk(cmd: click.Command, path: list[str]):
        yield path, cmd
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*path, name])

    for path, _ in walk(main, []):
        r = CliRunner().invoke(main, [*path, "--help"], terminal_width=100)
        assert r.exit_code == 0, (path, r.output)
        last = [line.strip() for line in r.output.strip().splitlines()][-1]
        assert last.startswith("Example: careful-monitor "), (path, last)
