"""`careful-monitor run` against a real Kafka broker: same results as replay, nothing lost or doubled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import pytest
import yaml

from careful_monitor.demo import scenario, write_scenario
from tests.procs import cm, http_json, http_status, output, spawn

pytestmark = pytest.mark.integration
WINDOWS = 12


@pytest.fixture(scope="module")
def scenario_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("kscenario")
    (d / "datasets").mkdir()
    return write_scenario(d, seed=5, windows=WINDOWS)


def make_config(tmp: Path, paths, bootstrap: str, name: str) -> Path:
    cfg = yaml.safe_load(paths["config"].read_text())
    tag = uuid.uuid4().hex[:8]
    cfg["store"] = {"url": f"sqlite:///{tmp / (name + '.db')}"}
    cfg["dead_letters"] = {"path": str(tmp / f"{name}-dead.jsonl")}
    cfg["kafka"] = {"bootstrap": bootstrap, "group": f"g-{tag}", "runtime": "aiokafka", "partitions": 6,
                    "topics": {"events": f"ev-{tag}", "alerts": f"al-{tag}", "dead_letters": f"dl-{tag}"}}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    for n in (scenario.ANCHOR, scenario.COLLAPSED, scenario.FAITHFUL):
        r = cm("datasets", "register", "--config", str(path), str(paths[f"card:{n}"]))
        assert r.returncode == 0, r.stderr.decode()
    return path


def stored(cfg_path: Path) -> tuple[list[dict], list[dict]]:
    from careful_monitor.config import load_config
    from careful_monitor.store import Store

    cfg = load_config(cfg_path, environ={})
    st = Store(cfg.store_url)
    try:
        return st.last_windows(scenario.MODEL, 10_000), st.list_alerts()
    finally:
        st.close()


def wait_windows(cfg_path: Path, n: int, proc: subprocess.Popen, deadline_s: float = 180) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if len(stored(cfg_path)[0]) >= n:
            return
        assert proc.poll() is None, output(proc)[-3000:]
        time.sleep(0.3)
    raise AssertionError(f"fewer than {n} windows stored before the deadline")


def strip(ws: list[dict]) -> list[dict]:
    return [{k: v for k, v in w.items() if k != "created_at"} for w in ws]


def strip_alerts(alerts: list[dict]) -> list[dict]:
    return [{k: v for k, v in a.items() if k not in ("created_at",)} for a in alerts]


def run_until_done(cfg: Path, *, during=None, deadline_s: float = 180) -> None:
    """`careful-monitor run` until every window is stored (`during(proc)` first), then SIGTERM -> exit 0."""
    proc = spawn("run", "--config", str(cfg), "--port", "0")
    try:
        if during is not None:
            during(proc)
        wait_windows(cfg, WINDOWS, proc, deadline_s)
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("run did not exit within 60 s of SIGTERM; its log ends:\n" + output(proc)[-4000:])
        assert rc == 0, output(proc)[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()


def assert_same_as_replay(cfg: Path, reference) -> None:
    windows, alerts = stored(cfg)
    ref_windows, ref_alerts = reference
    assert strip(windows) == strip(ref_windows)
    assert strip_alerts(alerts) == strip_alerts(ref_alerts)


def consume_all(bootstrap: str, topic: str, expected: int, deadline_s: float = 60):
    from kafka import KafkaConsumer

    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
                      group_id=None, consumer_timeout_ms=1000)
    out = []
    deadline = time.monotonic() + deadline_s
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for batch in c.poll(timeout_ms=500).values():
                out.extend(batch)
        # anything extra would be a duplicate: read a little longer
        for batch in c.poll(timeout_ms=1500).values():
            out.extend(batch)
    finally:
        c.close()
    return out


@pytest.fixture
def replay_reference(tmp_path, scenario_files):
    cfg = make_config(tmp_path, scenario_files, "127.0.0.1:1", "replay")
    r = cm("replay", "--config", str(cfg), "--no-http", str(scenario_files["events"]))
    assert r.returncode == 0, r.stderr.decode()
    return stored(cfg)


@pytest.mark.parametrize("runtime", ["aiokafka", "consumer", "faust"])
def test_run_matches_replay_and_routes_dead_letters(tmp_path, kafka_bootstrap, scenario_files, replay_reference,
                                                    runtime) -> None:
    cfg = make_config(tmp_path, scenario_files, kafka_bootstrap, "run")
    doc = yaml.safe_load(cfg.read_text())
    doc["kafka"]["runtime"] = runtime
    cfg.write_text(yaml.safe_dump(doc))
    assert cm("topics", "create", "--config", str(cfg)).returncode == 0
    again = cm("topics", "create", "--config", str(cfg))
    assert again.returncode == 0 and b"exists" in again.stdout
    r = cm("simulate", "--config", str(cfg), "--file", str(scenario_files["events"]))
    assert r.returncode == 0, r.stderr.decode()
    run_until_done(cfg)
    assert_same_as_replay(cfg, replay_reference)
    ref_alerts = replay_reference[1]
    c = yaml.safe_load(cfg.read_text())["kafka"]["topics"]
    dead = consume_all(kafka_bootstrap, c["dead_letters"], 5)
    assert sorted(dict(m.headers)["reason"].decode() for m in dead) == ["decode", "schema", "schema", "too_large",
                                                                       "unknown_model"]
    published = [orjson.loads(m.value) for m in consume_all(kafka_bootstrap, c["alerts"], len(ref_alerts))]
    assert [a["alert_id"] for a in published] == [a["alert_id"] for a in ref_alerts]


def test_kill_9_and_restart_loses_and_duplicates_nothing(tmp_path, kafka_bootstrap, scenario_files,
                                                         replay_reference) -> None:
    cfg = make_config(tmp_path, scenario_files, kafka_bootstrap, "crash")
    assert cm("topics", "create", "--config", str(cfg)).returncode == 0
    # produce slowly in the background so the crash lands mid-stream
    producer = spawn("simulate", "--config", str(cfg), "--file", str(scenario_files["events"]), "--rate", "2500")
    proc = spawn("run", "--config", str(cfg), "--port", "0")
    try:
        wait_windows(cfg, 3, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert producer.wait(timeout=120) == 0
    finally:
        for p in (proc, producer):
            if p.poll() is None:
                p.kill()
    assert len(stored(cfg)[0]) < WINDOWS, "the crash came too late to test anything"
    run_until_done(cfg)
    assert_same_as_replay(cfg, replay_reference)


MODELS = ["router-a", "router-b", "router-c"]


def _multi_model(tmp_path: Path, scenario_files, bootstrap: str, name: str) -> tuple[Path, Path]:
    """A config with three models (same datasets) and an events file interleaving their streams."""
    base = make_config(tmp_path, scenario_files, bootstrap, name)
    cfg = yaml.safe_load(base.read_text())
    model_cfg = cfg["models"].pop(scenario.MODEL)
    cfg["models"] = {m: model_cfg for m in MODELS}
    base.write_text(yaml.safe_dump(cfg))
    events = [orjson.loads(line) for line in scenario_files["events"].read_bytes().splitlines()
              if line.startswith(b'{"model":"ticket-router"')]
    lines = []
    for i, ev in enumerate(events[: 4 * 1000 * len(MODELS)]):
        ev["model"] = MODELS[i % len(MODELS)]
        lines.append(orjson.dumps(ev))
    path = tmp_path / f"{name}-events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return base, path


def _all_windows(cfg_path: Path) -> dict[str, list[dict]]:
    from careful_monitor.config import load_config
    from careful_monitor.store import Store

    st = Store(load_config(cfg_path, environ={}).store_url)
    try:
        return {m: strip(st.last_windows(m, 10_000)) for m in MODELS}
    finally:
        st.close()


def test_two_workers_split_partitions_and_agree_with_one(tmp_path, kafka_bootstrap, scenario_files) -> None:
    ref_cfg, events = _multi_model(tmp_path, scenario_files, "127.0.0.1:1", "ref")
    assert cm("replay", "--config", str(ref_cfg), "--no-http", str(events)).returncode == 0
    expected = _all_windows(ref_cfg)
    assert all(len(w) == 4 for w in expected.values())

    cfg, _ = _multi_model(tmp_path, scenario_files, kafka_bootstrap, "pair")
    assert cm("topics", "create", "--config", str(cfg)).returncode == 0
    producer = spawn("simulate", "--config", str(cfg), "--file", str(events), "--rate", "3000")
    first = spawn("run", "--config", str(cfg), "--port", "0")
    workers = [first]
    try:
        # the second worker joins while the stream is flowing: a rebalance in mid-stream
        wait_windows_any(cfg, 1, first)
        workers.append(spawn("run", "--config", str(cfg), "--port", "0"))
        assert producer.wait(timeout=120) == 0
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and any(len(w) < 4 for w in _all_windows(cfg).values()):
            assert all(p.poll() is None for p in workers)
            time.sleep(0.5)
        for p in workers:
            p.send_signal(signal.SIGTERM)
        assert [p.wait(timeout=60) for p in workers] == [0, 0]
    finally:
        for p in (*workers, producer):
            if p.poll() is None:
                p.kill()
    assert _all_windows(cfg) == expected


def wait_windows_any(cfg_path: Path, n: int, proc: subprocess.Popen, deadline_s: float = 120) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if sum(len(w) for w in _all_windows(cfg_path).values()) >= n:
            return
        assert proc.poll() is None, output(proc)[-3000:]
        time.sleep(0.3)
    raise AssertionError("no window stored before the deadline")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    """The group's committed offsets, read without joining the group."""
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return {p: c.committed(TopicPartition(topic, p)) for p in sorted(c.partitions_for_topic(topic) or [])}
    finally:
        c.close()


def test_store_outage_stops_commits_and_loses_nothing(tmp_path, kafka_bootstrap, scenario_files, replay_reference,
                                                      postgres_server) -> None:
    pg = Path(__file__).resolve().parents[2] / "deploy" / "postgres" / "pg.sh"
    datadir = Path(tempfile.mkdtemp(prefix="careful-outage-"))
    os.chmod(datadir, 0o777)
    port = _free_port()
    subprocess.run([str(pg), "start", str(datadir / "pg"), str(port)], check=True, timeout=120, capture_output=True)
    try:
        import psycopg

        deadline = time.monotonic() + 60
        while True:
            try:
                with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as c:
                    c.execute('CREATE DATABASE "outage"')
                break
            except psycopg.OperationalError:
                assert time.monotonic() < deadline
                time.sleep(0.3)
        cfg = make_config(tmp_path, scenario_files, kafka_bootstrap, "outage")
        doc = yaml.safe_load(cfg.read_text())
        doc["store"] = {"url": f"postgresql://postgres@127.0.0.1:{port}/outage"}
        cfg.write_text(yaml.safe_dump(doc))
        for n in (scenario.ANCHOR, scenario.COLLAPSED, scenario.FAITHFUL):
            assert cm("datasets", "register", "--config", str(cfg), str(scenario_files[f"card:{n}"])).returncode == 0
        assert cm("topics", "create", "--config", str(cfg)).returncode == 0
        http = _free_port()
        producer = spawn("simulate", "--config", str(cfg), "--file", str(scenario_files["events"]), "--rate", "1500")
        proc = spawn("run", "--config", str(cfg), "--port", str(http))
        try:
            wait_windows(cfg, 2, proc)
            subprocess.run([str(pg), "stop", str(datadir / "pg")], check=True, timeout=120, capture_output=True)
            deadline = time.monotonic() + 60
            while http_status(f"http://127.0.0.1:{http}/readyz") != 503:
                assert time.monotonic() < deadline, "never reported not-ready while the store was down"
                time.sleep(0.3)
            group = doc["kafka"]["group"]
            topic = doc["kafka"]["topics"]["events"]
            before = _committed(kafka_bootstrap, group, topic)
            assert producer.wait(timeout=120) == 0  # events keep arriving during the outage
            assert _committed(kafka_bootstrap, group, topic) == before  # ... and nothing is committed meanwhile
            assert proc.poll() is None  # the service stays up
            subprocess.run([str(pg), "start", str(datadir / "pg"), str(port)], check=True, timeout=120,
                           capture_output=True)
            wait_windows(cfg, WINDOWS, proc)
            assert http_status(f"http://127.0.0.1:{http}/readyz") == 200
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
        finally:
            for p in (proc, producer):
                if p.poll() is None:
                    p.kill()
        assert_same_as_replay(cfg, replay_reference)
    finally:
        subprocess.run([str(pg), "stop", str(datadir / "pg")], timeout=120, capture_output=True)


def test_demo_through_kafka_ends_with_the_same_alert(tmp_path, kafka_bootstrap) -> None:
    r = cm("demo", "--kafka", "--bootstrap", kafka_bootstrap, "--workdir", str(tmp_path / "d"), "--port", "0",
           "--windows", "14")
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    alerts = json.loads(cm("alerts", "list", "--config", str(tmp_path / "d" / "config.yaml"), "--json").stdout)
    assert [(a["dataset"], a["state"]) for a in alerts] == [(scenario.COLLAPSED, "retire_recommended")]
    assert f"ALERT {alerts[0]['alert_id']}" in out


def test_broker_restart_mid_stream_loses_nothing(tmp_path, kafka_broker, scenario_files, replay_reference) -> None:
    cfg = make_config(tmp_path, scenario_files, kafka_broker.bootstrap, "restart")
    assert cm("topics", "create", "--config", str(cfg)).returncode == 0
    assert cm("simulate", "--config", str(cfg), "--file", str(scenario_files["events"])).returncode == 0
    def restart_broker(proc) -> None:
        wait_windows(cfg, 2, proc)
        kafka_broker.restart()  # same ports and data: the service must reconnect and carry on

    run_until_done(cfg, during=restart_broker, deadline_s=240)
    assert_same_as_replay(cfg, replay_reference)


def test_run_waits_not_ready_for_an_unregistered_dataset_then_consumes(tmp_path, kafka_bootstrap,
                                                                        scenario_files) -> None:
    """Issue 14: a mix dataset not registered yet keeps `run` up and not-ready (a restart loop under
    compose before); registering it from another process makes it ready and it consumes."""
    t0 = time.monotonic()
    doc = yaml.safe_load(scenario_files["config"].read_text())
    tag = uuid.uuid4().hex[:8]
    doc["store"] = {"url": f"sqlite:///{tmp_path / 'wait.db'}"}
    doc["dead_letters"] = {"path": str(tmp_path / "dead.jsonl")}
    doc["governance"] = {**doc.get("governance", {}), "poll_seconds": 1}
    doc["kafka"] = {"bootstrap": kafka_bootstrap, "group": f"g-{tag}", "runtime": "aiokafka", "partitions": 2,
                    "topics": {"events": f"ev-{tag}", "alerts": f"al-{tag}", "dead_letters": f"dl-{tag}"}}
    cfg = tmp_path / "wait.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    for n in (scenario.ANCHOR, scenario.FAITHFUL):  # COLLAPSED, in the mix, is not registered yet
        assert cm("datasets", "register", "--config", str(cfg), str(scenario_files[f"card:{n}"])).returncode == 0
    assert cm("topics", "create", "--config", str(cfg)).returncode == 0
    events = tmp_path / "two-windows.jsonl"
    events.write_bytes(b"\n".join(scenario_files["events"].read_bytes().splitlines()[:2100]) + b"\n")
    http = _free_port()
    proc = spawn("run", "--config", str(cfg), "--port", str(http))
    url = f"http://127.0.0.1:{http}/readyz"
    try:
        deadline = time.monotonic() + 30
        while not (http_json(url)[0] == 503 and "not ready, waiting" in output(proc)):
            assert proc.poll() is None, "run exited instead of waiting:\n" + output(proc)[-3000:]
            assert time.monotonic() < deadline, "never served a not-ready /readyz:\n" + output(proc)[-3000:]
            time.sleep(0.2)
        status, body = http_json(url)
        assert status == 503 and body["ready"] is False and body["store"] is True, body
        waiting = [line for line in output(proc).splitlines() if "not ready, waiting" in line]
        assert len(waiting) == 1 and "WARNING" in waiting[0], waiting  # one line, not one per re-check
        assert f"dataset '{scenario.COLLAPSED}' of models.{scenario.MODEL}.training_mix is not registered" \
            in waiting[0] and "datasets register" in waiting[0], waiting
        assert scenario.COLLAPSED in body["reason"] and "datasets register" in body["reason"], body
        assert cm("simulate", "--config", str(cfg), "--file", str(events)).returncode == 0
        time.sleep(1.5)  # two re-checks: still waiting, and nothing consumed meanwhile (a bounded pause, not a wait)
        assert proc.poll() is None and http_json(url)[0] == 503
        assert stored(cfg)[0] == []
        r = cm("datasets", "register", "--config", str(cfg), str(scenario_files[f"card:{scenario.COLLAPSED}"]))
        assert r.returncode == 0, r.stderr.decode()
        deadline = time.monotonic() + 30
        while http_json(url)[0] != 200:
            assert proc.poll() is None, output(proc)[-3000:]
            assert time.monotonic() < deadline, "not ready after the dataset was registered:\n" + output(proc)[-3000:]
            time.sleep(0.2)
        wait_windows(cfg, 2, proc, deadline_s=30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, output(proc)[-3000:]
        assert "Traceback" not in output(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert time.monotonic() - t0 < 60


#: Faust crashes its worker on errors a pull loop retries (an offset commit refused while the brokers
#: reject the login: seen in CI as `run` exiting 0). The crash, the 5 s pause before the new worker,
#: its group join and the 12 windows take well under this on busy cores
FAUST_CRASH_DEADLINE_S = 240


def test_a_crashed_faust_worker_is_replaced_and_nothing_is_lost_or_doubled(tmp_path, kafka_bootstrap,
                                                                          scenario_files, replay_reference) -> None:
    """The first worker's real Faust app crashes itself after its first stored batch (faust_crash_worker.py)."""
    cfg = make_config(tmp_path, scenario_files, kafka_bootstrap, "faust-crash")
    doc = yaml.safe_load(cfg.read_text())
    doc["kafka"]["runtime"] = "faust"
    cfg.write_text(yaml.safe_dump(doc))
    assert cm("topics", "create", "--config", str(cfg)).returncode == 0
    r = cm("simulate", "--config", str(cfg), "--file", str(scenario_files["events"]))
    assert r.returncode == 0, r.stderr.decode()
    run = subprocess.run([sys.executable, "-m", "tests.integration.faust_crash_worker", str(cfg), str(WINDOWS)],
                         capture_output=True, timeout=FAUST_CRASH_DEADLINE_S)
    out = (run.stdout + run.stderr).decode(errors="replace")
    assert run.returncode == 0, out[-4000:]
    assert "injecting a crash" in out, out[-4000:]
    assert "not ready: the Faust worker stopped on an error (RuntimeError: injected crash)" in out, out[-4000:]
    assert "workers built: 2" in out, out[-4000:]
    assert "Traceback" not in out, out[-4000:]  # Faust's crash traceback is one line (QuietRepeats)
    assert_same_as_replay(cfg, replay_reference)
