"""The Kafka service over SASL_SSL (SCRAM-SHA-512, TLS with a throwaway CA), end to end (issue 11).

A broker of this module's own (`kafka_sasl_broker`: broker.sh with CAREFUL_KAFKA_SASL_SSL=1) on free
ports; every careful-monitor command talks to its SASL_SSL listener with the password from a file.
`topics create`, `simulate` and `run` work for all three runtimes; a wrong password or an untrusted
certificate exits 2 with one line at start; a user deleted while `run` runs makes it not-ready
(the broker re-authenticates sessions every 10 s), and ready again once the user is back.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from careful_monitor.demo import scenario, write_scenario
from tests.integration.conftest_kafka import SaslSslBroker
from tests.procs import cm, http_status, output, spawn

pytestmark = pytest.mark.integration
WINDOWS = 4
RUNTIMES = ["aiokafka", "consumer", "faust"]
#: a refused start must end this soon (the clients' own bootstrap timeout is 30 s)
START_FAILS_WITHIN_S = 60
#: re-authentication every 10 s (the fixture's REAUTH_MS), plus reconnects and the readiness check
NOT_READY_WITHIN_S = 60
#: what aiokafka and kafka-python log when the broker refuses their login
CLIENT_REFUSED = "SaslAuthenticationFailed"


def _ready(url: str) -> int:
    return http_status(f"{url}/readyz")


@contextlib.contextmanager
def running(cfg: Path, cwd: Path):
    """`careful-monitor run` (HTTP on a free port); yields (proc, base URL); killed if still running after."""
    proc = spawn("run", "--config", str(cfg), "--port", "0", cwd=cwd)
    try:
        yield proc, _serving_url(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def _serving_url(proc: subprocess.Popen, deadline_s: float = 60) -> str:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        m = re.search(r"serving /metrics, /healthz, /readyz and /api on (http://\S+)", output(proc))
        if m:
            return m.group(1).rstrip("/")
        assert proc.poll() is None, output(proc)[-3000:]
        time.sleep(0.2)
    raise AssertionError("run did not serve HTTP in time:\n" + output(proc)[-3000:])


def wait_until(what: str, check, proc: subprocess.Popen, deadline_s: float) -> float:
    """Poll check() until true (seconds it took); fail with the process's log at the deadline."""
    t0 = time.monotonic()
    while time.monotonic() < t0 + deadline_s:
        if check():
            return time.monotonic() - t0
        assert proc.poll() is None, f"run exited ({proc.returncode}) while waiting for {what}:\n{output(proc)[-3000:]}"
        time.sleep(0.3)
    raise AssertionError(f"not {what} within {deadline_s:.0f} s; run's log ends:\n{output(proc)[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("run did not exit within 60 s of SIGTERM; its log ends:\n" + output(proc)[-4000:])
    assert rc == 0, output(proc)[-3000:]
    assert "Traceback" not in output(proc), output(proc)[-3000:]


def windows_stored(cfg_path: Path) -> int:
    from careful_monitor.config import load_config
    from careful_monitor.store import Store

    st = Store(load_config(cfg_path, environ={}).store_url)
    try:
        return len(st.last_windows(scenario.MODEL, 10_000))
    finally:
        st.close()


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo scenario's files and a store with its cards registered, copied for each test."""
    d = tmp_path_factory.mktemp("sasl-scenario")
    (d / "datasets").mkdir()
    paths = write_scenario(d, seed=5, windows=WINDOWS)
    doc = yaml.safe_load(paths["config"].read_text())
    doc["store"] = {"url": f"sqlite:///{d / 'registered.db'}"}
    cfg = d / "register.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    cards = [str(paths[f"card:{n}"]) for n in (scenario.ANCHOR, scenario.COLLAPSED, scenario.FAITHFUL)]
    r = cm("datasets", "register", "--config", str(cfg), *cards, cwd=d)
    assert r.returncode == 0, r.stderr.decode()
    return {**paths, "db": d / "registered.db"}


def make_config(tmp: Path, registered: dict[str, Path], broker: SaslSslBroker, runtime: str, *,
                password_file: Path | None = None, ca_file: Path | None = None) -> Path:
    """A config on the SASL_SSL listener with topics and group of its own and a copy of the registered store."""
    doc = yaml.safe_load(registered["config"].read_text())
    tag = uuid.uuid4().hex[:8]
    db = tmp / f"{runtime}-{tag}.db"
    shutil.copyfile(registered["db"], db)
    doc["store"] = {"url": f"sqlite:///{db}"}
    doc["dead_letters"] = {"path": str(tmp / f"dead-{tag}.jsonl")}
    doc["kafka"] = {"bootstrap": broker.sasl_bootstrap, "group": f"g-{tag}", "runtime": runtime, "partitions": 3,
                    "topics": {"events": f"ev-{tag}", "alerts": f"al-{tag}", "dead_letters": f"dl-{tag}"},
                    "security": {"protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "username": broker.user,
                                 "password_file": str(password_file or broker.password_file),
                                 "ca_file": str(ca_file or broker.ca_file)}}
    path = tmp / f"{runtime}-{tag}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def assert_one_line_exit_2(r: subprocess.CompletedProcess | subprocess.Popen, text: str, *words: str) -> None:
    assert r.returncode == 2, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, text[-3000:]
    for w in words:
        assert w in errors[0], errors[0]
    print(errors[0])


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_topics_simulate_and_run_over_sasl_ssl(tmp_path: Path, kafka_sasl_broker: SaslSslBroker, registered,
                                               runtime: str) -> None:
    cfg = make_config(tmp_path, registered, kafka_sasl_broker, runtime)
    r = cm("topics", "create", "--config", str(cfg), cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.count(b"created") == 3, (r.stdout + r.stderr).decode()
    r = cm("simulate", "--config", str(cfg), "--file", str(registered["events"]), cwd=tmp_path)
    assert r.returncode == 0 and b"produced" in r.stdout, r.stderr.decode()
    with running(cfg, tmp_path) as (proc, url):
        wait_until(f"{WINDOWS} windows stored", lambda: windows_stored(cfg) >= WINDOWS, proc, 120)
        assert _ready(url) == 200
        stop(proc)
    assert windows_stored(cfg) == WINDOWS


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA certificate that did not sign the broker's."""
    d = tmp_path_factory.mktemp("other-ca")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=another CA",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "ca.pem")], check=True, capture_output=True,
                   timeout=60)
    return d / "ca.pem"


@pytest.mark.parametrize("wrong", ["password", "ca"])
def test_a_wrong_password_or_ca_exits_2_in_one_line(tmp_path: Path, kafka_sasl_broker: SaslSslBroker, registered,
                                                    other_ca: Path, wrong: str) -> None:
    if wrong == "password":
        bad = tmp_path / "wrong-password"
        bad.write_text("not-the-password\n")
        kw, words = {"password_file": bad}, ("SASL authentication failed", "password", kafka_sasl_broker.sasl_bootstrap)
    else:
        kw, words = {"ca_file": other_ca}, ("certificate", "kafka.security.ca_file", kafka_sasl_broker.sasl_bootstrap)
    cfg = make_config(tmp_path, registered, kafka_sasl_broker, "aiokafka", **kw)
    for args in (("topics", "create"), ("simulate", "--file", str(registered["events"]))):
        t0 = time.monotonic()
        r = cm(*args, "--config", str(cfg), cwd=tmp_path, timeout=START_FAILS_WITHIN_S)
        assert_one_line_exit_2(r, (r.stdout + r.stderr).decode(), *words)
        assert time.monotonic() - t0 < START_FAILS_WITHIN_S
    for runtime in RUNTIMES:
        doc = yaml.safe_load(cfg.read_text())
        doc["kafka"]["runtime"] = runtime
        cfg.write_text(yaml.safe_dump(doc))
        proc = spawn("run", "--config", str(cfg), "--port", "0", cwd=tmp_path)
        try:
            proc.wait(timeout=START_FAILS_WITHIN_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"run ({runtime}) did not exit within {START_FAILS_WITHIN_S} s:\n{output(proc)[-3000:]}")
        assert_one_line_exit_2(proc, output(proc), *words)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_losing_authentication_makes_run_not_ready_until_it_is_back(tmp_path: Path, kafka_sasl_broker: SaslSslBroker,
                                                                    registered, runtime: str) -> None:
    cfg = make_config(tmp_path, registered, kafka_sasl_broker, runtime)
    assert cm("topics", "create", "--config", str(cfg), cwd=tmp_path).returncode == 0
    with running(cfg, tmp_path) as (proc, url):
        wait_until("ready", lambda: _ready(url) == 200, proc, 60)
        before = output(proc).count(CLIENT_REFUSED)
        kafka_sasl_broker.delete_user()
        try:
            took = wait_until("not ready after the user was deleted", lambda: _ready(url) == 503, proc,
                              NOT_READY_WITHIN_S)
            # the clients' own sessions end at the broker's re-authentication (10 s) and are refused too
            wait_until("refused to the runtime's client", lambda: output(proc).count(CLIENT_REFUSED) > before, proc,
                       NOT_READY_WITHIN_S)
        finally:
            kafka_sasl_broker.restore_user()
        print(f"{runtime}: not ready {took:.1f} s after the SCRAM user was deleted")
        wait_until("ready again after the user was restored", lambda: _ready(url) == 200, proc, NOT_READY_WITHIN_S)
        # the clients logged in again: what is produced now is consumed and stored
        r = cm("simulate", "--config", str(cfg), "--file", str(registered["events"]), cwd=tmp_path)
        assert r.returncode == 0, r.stderr.decode()
        wait_until(f"{WINDOWS} windows stored", lambda: windows_stored(cfg) >= WINDOWS, proc, 120)
        stop(proc)
    assert "Traceback" not in output(proc)


def test_sigterm_while_the_brokers_refuse_exits_0(tmp_path: Path, kafka_sasl_broker: SaslSslBroker, registered) -> None:
    """One `run` per runtime at once, all refused by one deletion of the user, then each SIGTERMed."""
    with contextlib.ExitStack() as stack:
        runs = {}
        for runtime in RUNTIMES:
            cfg = make_config(tmp_path, registered, kafka_sasl_broker, runtime)
            assert cm("topics", "create", "--config", str(cfg), cwd=tmp_path).returncode == 0
            runs[runtime] = stack.enter_context(running(cfg, tmp_path))
        for proc, url in runs.values():
            wait_until("ready", lambda url=url: _ready(url) == 200, proc, 60)
        kafka_sasl_broker.delete_user()
        try:
            for proc, url in runs.values():
                wait_until("not ready after the user was deleted", lambda url=url: _ready(url) == 503, proc,
                           NOT_READY_WITHIN_S)
            for proc, _ in runs.values():
                proc.send_signal(signal.SIGTERM)
            for runtime, (proc, _) in runs.items():
                try:
                    rc = proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    pytest.fail(f"run ({runtime}) did not exit within 60 s of SIGTERM:\n{output(proc)[-4000:]}")
                assert rc == 0 and "Traceback" not in output(proc), output(proc)[-3000:]
        finally:
            kafka_sasl_broker.restore_user()


def test_an_unreachable_broker_is_left_to_the_clients(tmp_path: Path) -> None:
    """The start-up check judges only a broker that answers: no verdict (and no wait) when none does."""
    from careful_monitor.config import load_config
    from careful_monitor.runtime import kafka_settings
    from tests.integration.conftest_kafka import _free_ports

    (tmp_path / "pw").write_text("secret\n")
    cfg = load_config(None, environ={}, overrides={"kafka": {
        "bootstrap": f"127.0.0.1:{_free_ports(1)[0]}",
        "security": {"protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "username": "careful",
                     "password_file": str(tmp_path / "pw")}}})
    t0 = time.monotonic()
    kafka_settings.check_credentials(cfg)  # nothing listens: no BrokerError
    assert time.monotonic() - t0 < 5
    watch = kafka_settings.CredentialsWatch(load_config(None, environ={}))
    watch.start()  # PLAINTEXT: nothing to watch
    assert watch.accepted and watch._thread is None
