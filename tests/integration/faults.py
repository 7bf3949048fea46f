"""Helpers of the fault-injection suite (tests/integration/test_faults.py): one world, many cases.

`World` is built once per module: the demo scenario's files, a PostgreSQL *template* database with
the three datasets registered, and the reference (an uninterrupted `replay` of the events file into
a fresh database). Each `Case` gets its own database (a copy of the template: `CREATE DATABASE ...
TEMPLATE`, a few hundred milliseconds), its own topics and consumer group on the session's broker,
and reads back what `run` stored. `fuzz_corpus` writes the seeded 10,000-message corpus with the
dead-letter reason every message must get. `busy_cores` occupies the machine's cores with
busy-loop processes of the test's own.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psycopg
import yaml

from careful_monitor.demo import scenario
from tests.integration.conftest_kafka import KafkaBroker
from tests.integration.conftest_postgres import PostgresServer
from tests.integration.test_kafka_service import _free_port, cm, output, spawn, strip, strip_alerts

MODEL = scenario.MODEL
_names = itertools.count()


def wait_for(what: str, check: Callable[[], Any], deadline_s: float, *, alive: subprocess.Popen | None = None,
             every: float = 0.2) -> Any:
    """check() until it returns something truthy (returned), failing after `deadline_s` or when `alive` exits."""
    deadline = time.monotonic() + deadline_s
    while True:
        result = check()
        if result:
            return result
        if alive is not None and alive.poll() is not None:
            raise AssertionError(f"the process exited ({alive.returncode}) while waiting for {what}:\n"
                                 + output(alive)[-3000:])
        if time.monotonic() > deadline:
            tail = "" if alive is None else "\n" + output(alive)[-3000:]
            raise AssertionError(f"{what}: not within {deadline_s:.0f} s{tail}")
        time.sleep(every)  # poll interval, bounded by the deadline


def stop(proc: subprocess.Popen, *, within_s: float) -> float:
    """SIGTERM, then the seconds until it exited; fails unless it exits 0 within `within_s`."""
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=within_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        raise AssertionError(f"no exit within {within_s:.0f} s of SIGTERM; its log ends:\n"
                             + output(proc)[-4000:]) from None
    assert rc == 0, f"exit {rc} after SIGTERM:\n" + output(proc)[-12000:]
    return time.monotonic() - t0


def reap(*procs: subprocess.Popen | None) -> None:
    """Kill (by their own pid) what a failing test left running."""
    for p in procs:
        if p is not None and p.poll() is None:
            p.kill()
            p.wait(timeout=10)


@contextlib.contextmanager
def busy_cores(n: int | None = None) -> Iterator[list[subprocess.Popen]]:
    """`n` (default: every core) `python -c "while True: pass"` processes for the duration, killed by pid after."""
    if n is None:
        n = os.cpu_count() or 2
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield procs
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=10)


# --- the world: scenario, template database, reference ------------------------------------------------
@dataclass
class Reference:
    """What an uninterrupted replay of a file stored: windows and alerts without `created_at`, engine state."""

    windows: list[dict]
    alerts: list[dict]
    events_seen: int
    open_events: int

    @property
    def closed_events(self) -> int:
        return sum(w["n_events"] for w in self.windows)


@dataclass
class World:
    server: PostgresServer
    broker: KafkaBroker
    dir: Path
    paths: dict[str, Path]  # write_scenario's: config, events, card:<name>
    template: str  # database with the datasets registered; copied for each case
    reference: Reference
    lines: list[bytes]  # the events file's messages, in order
    valid: int  # how many of them are events the service accepts
    cases: list[str] = field(default_factory=list)

    def config(self, name: str, database: str, *, bootstrap: str | None = None, dedup_ids: int | None = None,
               partitions: int = 6) -> Path:
        """A config for case `name`: the scenario's models and limits, store `database`, topics and group of its own."""
        doc = yaml.safe_load(self.paths["config"].read_text())
        tag = f"{name}-{uuid.uuid4().hex[:8]}"
        doc["store"] = {"url": self.server.url(database)}
        doc["dead_letters"] = {"path": str(self.dir / f"{tag}-dead.jsonl")}
        doc["kafka"] = {"bootstrap": bootstrap or self.broker.bootstrap, "group": f"g-{tag}", "runtime": "aiokafka",
                        "partitions": partitions,
                        "topics": {"events": f"ev-{tag}", "alerts": f"al-{tag}", "dead_letters": f"dl-{tag}"}}
        if dedup_ids is not None:
            doc["limits"]["dedup_ids"] = dedup_ids
        path = self.dir / f"{tag}.yaml"
        path.write_text(yaml.safe_dump(doc))
        return path

    def database(self) -> str:
        """A new database holding the registered datasets (a copy of the template); dropped by `drop_databases`."""
        name = f"fault_{os.getpid()}_{next(_names)}"
        with psycopg.connect(self.server.conninfo(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self.cases.append(name)
        return name

    def case(self, name: str, **config: Any) -> Case:
        return Case(self, self.config(name, self.database(), **config))

    def drop_databases(self) -> None:
        for name in [*self.cases, self.template]:
            with contextlib.suppress(psycopg.OperationalError):
                self.server.drop_database(name)


def build_world(d: Path, server: PostgresServer, broker: KafkaBroker, *, seed: int, windows: int) -> World:
    from careful_monitor.config import load_config
    from careful_monitor.demo import write_scenario
    from careful_monitor.registry import register
    from careful_monitor.store import Store

    (d / "datasets").mkdir(parents=True, exist_ok=True)
    paths = write_scenario(d, seed=seed, windows=windows)
    template = f"fault_tmpl_{os.getpid()}_{next(_names)}"
    url = server.create_database(template)
    cfg = load_config(paths["config"], environ={})
    cfg = cfg.model_copy(update={"store": cfg.store.model_copy(update={"url": url})})
    with Store(url) as store:
        for n in (scenario.ANCHOR, scenario.COLLAPSED, scenario.FAITHFUL):
            register(cfg, store, paths[f"card:{n}"], by="test")
    lines = [line for line in paths["events"].read_bytes().splitlines() if line.strip()]
    world = World(server, broker, d, paths, template, Reference([], [], 0, 0), lines, 0)
    world.reference = replay_reference(world, paths["events"])
    world.valid = world.reference.events_seen
    return world


def replay_reference(world: World, events: Path) -> Reference:
    """`careful-monitor replay` of `events` into a fresh database: the uninterrupted run."""
    cfg = world.config("reference", world.database(), bootstrap="127.0.0.1:1")
    r = cm("replay", "--config", str(cfg), "--no-http", str(events))
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    return Case(world, cfg).result()


# --- one case -------------------------------------------------------------------------------------------
class Case:
    """One case's config, database, topics and group; what `run` stored, read back."""

    def __init__(self, world: World, config: Path) -> None:
        self.world, self.config = world, config
        self.doc = yaml.safe_load(config.read_text())
        self.group = self.doc["kafka"]["group"]
        self.topics = self.doc["kafka"]["topics"]
        self.url = self.doc["store"]["url"]
        self.database = self.url.rsplit("/", 1)[1]

    def create_topics(self) -> None:
        r = cm("topics", "create", "--config", str(self.config))
        assert r.returncode == 0, r.stderr.decode()[-3000:]

    def simulate(self, path: Path, *, rate: float | None = None) -> subprocess.Popen:
        """`careful-monitor simulate --file path` in the background."""
        args = ["simulate", "--config", str(self.config), "--file", str(path)]
        return spawn(*args, *(["--rate", str(rate)] if rate else []))

    def produce_file(self, path: Path) -> None:
        r = cm("simulate", "--config", str(self.config), "--file", str(path))
        assert r.returncode == 0, r.stderr.decode()[-3000:]

    def run(self, port: int = 0) -> subprocess.Popen:
        return spawn("run", "--config", str(self.config), "--port", str(port))

    def _read(self, fn: Callable[[Any], Any]) -> Any:
        from careful_monitor.store import Store

        st = Store(self.url)
        try:
            return fn(st)
        finally:
            st.close()

    def windows(self) -> int:
        """Windows stored so far (0 while the store cannot be read)."""
        try:
            return self._read(lambda st: st.count_windows(MODEL))
        except Exception:  # the store may be down on purpose
            return 0

    def position(self) -> int:
        """Messages consumed and stored (next offsets summed over partitions); -1 while the store is down."""
        try:
            with psycopg.connect(self.world.server.conninfo(self.database)) as conn:
                row = conn.execute("SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets "
                                   "WHERE consumer_group = %s AND topic = %s",
                                   (self.group, self.topics["events"])).fetchone()
            return int(row[0]) if row else 0
        except psycopg.Error:
            return -1

    def stored_offsets(self) -> dict[int, int]:
        return self._read(lambda st: st.load_offsets(self.group, self.topics["events"]))

    def committed(self) -> dict[int, int]:
        """The group's offsets committed to Kafka (partitions without a commit left out)."""
        from kafka import KafkaConsumer, TopicPartition

        c = KafkaConsumer(bootstrap_servers=self.doc["kafka"]["bootstrap"], group_id=self.group,
                          enable_auto_commit=False)
        try:
            parts = sorted(c.partitions_for_topic(self.topics["events"]) or [])
            got = {p: c.committed(TopicPartition(self.topics["events"], p)) for p in parts}
        finally:
            c.close()
        return {p: o for p, o in got.items() if o is not None}

    def assert_commits_persisted(self) -> None:
        """No offset committed to Kafka that the store does not hold (committed <= stored, per partition)."""
        stored, committed = self.stored_offsets(), self.committed()
        ahead = {p: (o, stored.get(p)) for p, o in committed.items() if o > stored.get(p, 0)}
        assert not ahead, f"committed to Kafka beyond what was stored (partition: (committed, stored)): {ahead}"

    def result(self) -> Reference:
        from careful_monitor.engine.state import decode_state

        def read(st: Any) -> Reference:
            state = st.load_state(MODEL)
            s = decode_state(state, MODEL) if state is not None else {"events_seen": 0, "window": {"n": 0}}
            return Reference(strip(st.last_windows(MODEL, 100_000)), strip_alerts(st.list_alerts()),
                             int(s["events_seen"]), int(s["window"]["n"]))

        return self._read(read)

    def assert_matches_reference(self, reference: Reference | None = None) -> Reference:
        """Windows and alerts equal the reference (created_at aside); every valid event counted exactly once."""
        ref = reference or self.world.reference
        got = self.result()
        assert len(got.windows) == len(ref.windows), (len(got.windows), len(ref.windows))
        for mine, theirs in zip(got.windows, ref.windows, strict=True):
            assert mine == theirs, f"window {theirs['window']} differs from the uninterrupted run"
        assert got.alerts == ref.alerts
        assert (got.events_seen, got.open_events) == (ref.events_seen, ref.open_events), \
            "events counted by the engine differ from the uninterrupted run (lost or duplicated)"
        return got

    def evict_members(self) -> int:
        """Remove the group's members (a killed worker's session lingers for session.timeout.ms, 10 s):
        what `kafka-consumer-groups --delete --members` does for an operator. Returns how many."""
        from kafka.admin import KafkaAdminClient, MemberToRemove
        from kafka.errors import CoordinatorNotAvailableError

        admin = KafkaAdminClient(bootstrap_servers=self.doc["kafka"]["bootstrap"], request_timeout_ms=10_000)
        try:
            try:
                group = admin.describe_groups([self.group])[self.group]
            except CoordinatorNotAvailableError:  # killed before it joined: no group, nobody to evict
                return 0
            members = [m["member_id"] for m in group.get("members") or []]
            if members:
                admin.remove_group_members(self.group, [MemberToRemove(member_id=m) for m in members])
            return len(members)
        finally:
            admin.close()

    def consume(self, topic: str, expected: int, deadline_s: float = 60) -> list:
        """Every message of `topic` (a little longer than needed: anything extra would be a duplicate)."""
        from tests.integration.test_kafka_service import consume_all

        return consume_all(self.doc["kafka"]["bootstrap"], self.topics[topic], expected, deadline_s)


def metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The service's /metrics samples: (name, sorted labels) -> value (empty while it does not answer)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def sample(m: dict, name: str, **labels: str) -> float:
    """One sample by name suffix and labels (0 when absent)."""
    want = tuple(sorted(labels.items()))
    return sum(v for (n, lab), v in m.items() if n.endswith(name) and lab == want)


def free_port() -> int:
    return int(_free_port())


# --- the fuzz corpus ----------------------------------------------------------------------------------
@dataclass
class Corpus:
    """Messages (values; None is a tombstone) in production order, and what the service must do with each."""

    messages: list[bytes | None]
    #: parallel to messages: "accepted", "duplicate" or the dead-letter reason
    outcome: list[str]
    #: parallel: the kind of message (for the printed table)
    kind: list[str]
    #: parallel: rejected with reason schema *after* naming the configured model (events_total{outcome="rejected"})
    model_rejected: list[bool]

    def valid_lines(self) -> list[bytes]:
        return [m for m, o in zip(self.messages, self.outcome, strict=True) if o == "accepted"]

    def counts(self) -> Counter:
        return Counter(self.outcome)

    def kinds(self) -> Counter:
        return Counter(zip(self.kind, self.outcome, strict=True))


def fuzz_corpus(valid_events: list[dict], rng: random.Random, *, total: int, max_event_bytes: int) -> Corpus:
    """`total` messages: the valid events in order (some in equivalent spellings), interleaved with
    malformed, mistyped, absurd, unknown, huge, binary and duplicate ones; each with its expected outcome."""
    bad: list[Callable[[dict], tuple[bytes | None, str, bool]]] = []

    def kind(f: Callable[[dict], tuple[bytes | None, str, bool]]) -> Callable[[dict], tuple[bytes | None, str, bool]]:
        bad.append(f)
        return f

    def dumps(ev: dict) -> bytes:
        return orjson.dumps(ev)

    def tweak(ev: dict, **changes: Any) -> dict:
        return {**ev, **changes}

    @kind
    def truncated(ev: dict) -> tuple[bytes | None, str, bool]:
        line = dumps(ev)
        return line[: rng.randrange(1, len(line) - 1)], "decode", False

    @kind
    def garbage_text(ev: dict) -> tuple[bytes | None, str, bool]:
        alphabet = "abcdefghijklmnopqrstuvwxyz{}[]:,\"' 0123456789"
        return ("#" + "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 300)))).encode(), "decode", False

    @kind
    def binary(ev: dict) -> tuple[bytes | None, str, bool]:
        return b"\xff" + rng.randbytes(rng.randrange(0, 2000)), "decode", False

    @kind
    def empty_or_tombstone(ev: dict) -> tuple[bytes | None, str, bool]:
        return rng.choice([b"", None, b"   ", b"\n"]), "decode", False

    @kind
    def nan_literal(ev: dict) -> tuple[bytes | None, str, bool]:
        return dumps(tweak(ev, ts=0)).replace(b'"ts":0', b'"ts":' + rng.choice([b"NaN", b"Infinity", b"-Infinity"])), \
            "decode", False

    @kind
    def not_an_object(ev: dict) -> tuple[bytes | None, str, bool]:
        return dumps(rng.choice([[ev], ev["model"], 42, 3.5, None, True, [], "{}"])), "schema", False

    @kind
    def bad_model(ev: dict) -> tuple[bytes | None, str, bool]:
        model = rng.choice([None, 7, ["ticket-router"], {"name": MODEL}, "", True])
        doc = tweak(ev, model=model)
        if rng.random() < 0.3:
            del doc["model"]
        return dumps(doc), "schema", False

    @kind
    def unknown_model(ev: dict) -> tuple[bytes | None, str, bool]:
        name = rng.choice(["fraud-scorer", "ticket-router ", "TICKET-ROUTER", "ticket-routér", "x" * 5000, "🙂"])
        return dumps(tweak(ev, model=name)), "unknown_model", False

    @kind
    def inputs_wrong_type(ev: dict) -> tuple[bytes | None, str, bool]:
        return dumps(tweak(ev, inputs=rng.choice([[1, 2], "amount=3", 5, True]))), "schema", True

    @kind
    def nested_value(ev: dict) -> tuple[bytes | None, str, bool]:
        key = rng.choice(["amount", "country", "text", "items"])
        return dumps(tweak(ev, inputs={**ev["inputs"], key: rng.choice([[1, 2], {"v": 1}, [[]]])})), "schema", True

    @kind
    def bad_outputs(ev: dict) -> tuple[bytes | None, str, bool]:
        outputs = rng.choice([{**ev["outputs"], "probs": {"billing": "high"}}, {**ev["outputs"], "label": {"a": 1}},
                              {**ev["outputs"], "probs": {"billing": [0.5]}}, [0.1, 0.9]])
        return dumps(tweak(ev, outputs=outputs)), "schema", True

    @kind
    def absurd_ts(ev: dict) -> tuple[bytes | None, str, bool]:
        ts = rng.choice([-1e12, 1e15, 1e20, -1.0, 0, 1e300, "2300-01-01T00:00:00Z", "1900-01-01T00:00:00Z",
                         "yesterday", "2025-11-24T16:00:00", True, [1], {"s": 1}, ev["ts"] * 1e6])
        return dumps(tweak(ev, ts=ts)), "schema", True

    @kind
    def bad_version(ev: dict) -> tuple[bytes | None, str, bool]:
        return dumps(tweak(ev, model_version=rng.choice([[8], {"v": 8}, True, False]))), "schema", True

    @kind
    def huge(ev: dict) -> tuple[bytes | None, str, bool]:
        if rng.random() < 0.5:  # an event one byte over the limit
            doc = dumps(tweak(ev, pad=""))
            doc = dumps(tweak(ev, pad="p" * (max_event_bytes + 1 - len(doc))))
            assert len(doc) == max_event_bytes + 1
            return doc, "too_large", False
        text = "w " * max_event_bytes
        return rng.choice([b"{" * (max_event_bytes + 10), rng.randbytes(max_event_bytes + rng.randrange(1, 200_000)),
                           dumps(tweak(ev, inputs={**ev["inputs"], "text": text}))]), "too_large", False

    def spelling(ev: dict) -> tuple[bytes, str]:
        """A valid event, sometimes spelled differently: the service must take them all as replay does."""
        r = rng.random()
        if r < 0.06:
            return dumps(tweak(ev, ts=int(ev["ts"]) * 1000)), "ts_milliseconds"
        if r < 0.10:
            return dumps(tweak(ev, ts=_rfc3339(ev["ts"]))), "ts_rfc3339"
        if r < 0.14:
            return dumps(tweak(ev, trace={"span": rng.randrange(10**9)}, extra=[1, 2])), "extra_fields"
        if r < 0.17:
            return b" \t" + dumps(ev) + b"  ", "whitespace"
        if r < 0.19:
            doc = dumps(tweak(ev, pad=""))
            return dumps(tweak(ev, pad="p" * (max_event_bytes - len(doc)))), "exactly_the_limit"
        if r < 0.22:
            return dumps(tweak(ev, inputs={**ev["inputs"], "text": ev["inputs"]["text"] + " ☃ 🙂 \u2028"})), "unicode"
        return dumps(ev), "plain"

    n_bad = total - len(valid_events)
    assert n_bad > len(bad)
    n_dup = n_bad // 16
    slots = [0] * len(valid_events) + [1] * (n_bad - n_dup) + [2] * n_dup
    rng.shuffle(slots)
    messages: list[bytes | None] = []
    outcome, kinds, model_rej = [], [], []
    it = iter(valid_events)
    sent: list[bytes] = []
    for slot in slots:
        if slot == 0:
            line, k = spelling(next(it))
            messages.append(line)
            outcome.append("accepted")
            kinds.append(f"valid: {k}")
            model_rej.append(False)
            sent.append(line)
        elif slot == 2 and sent:  # a redelivery of an event already sent (same id): a duplicate, not counted again
            messages.append(rng.choice(sent[-500:]))
            outcome.append("duplicate")
            kinds.append("valid: same id again")
            model_rej.append(False)
        else:
            f = rng.choice(bad)
            msg, reason, by_model = f(rng.choice(valid_events))
            messages.append(msg)
            outcome.append(reason)
            kinds.append(f.__name__)
            model_rej.append(by_model)
    return Corpus(messages, outcome, kinds, model_rej)


def _rfc3339(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def produce_raw(bootstrap: str, topic: str, messages: list[bytes | None]) -> None:
    """Each value as one message, exactly as given (tombstones too), keyed like `simulate` keys them."""
    from kafka import KafkaProducer

    from careful_monitor.runtime.producer import PRODUCER_SETTINGS, event_key

    p = KafkaProducer(bootstrap_servers=bootstrap, **PRODUCER_SETTINGS)
    failures: list[BaseException] = []
    try:
        for m in messages:
            key = b"tombstone" if m is None else event_key(m)  # a tombstone needs a key
            p.send(topic, key=key, value=m).add_errback(failures.append)
        p.flush(60)
    finally:
        p.close()
    assert not failures, failures[:3]


class Feeder:
    """Produces lines to a case's events topic from a thread of the test's own, at a steady rate, keyed like
    `simulate`; `feed` returns at once, `join` waits until the broker has them all."""

    def __init__(self, case: Case, rate: float) -> None:
        from kafka import KafkaProducer

        from careful_monitor.runtime.producer import PRODUCER_SETTINGS

        self.case, self.rate = case, rate
        self.producer = KafkaProducer(bootstrap_servers=case.doc["kafka"]["bootstrap"], **PRODUCER_SETTINGS)
        self.sent = 0
        self.failures: list[BaseException] = []
        self._thread: threading.Thread | None = None

    def feed(self, lines: list[bytes]) -> None:
        self.join()
        self._thread = threading.Thread(target=self._produce, args=(lines,), daemon=True)
        self._thread.start()

    def _produce(self, lines: list[bytes]) -> None:
        from careful_monitor.runtime.producer import TokenBucket, event_key

        bucket = TokenBucket(self.rate)
        topic = self.case.topics["events"]
        for line in lines:
            bucket.take()
            self.producer.send(topic, key=event_key(line), value=line).add_errback(self.failures.append)
        self.producer.flush(60)
        self.sent += len(lines)

    def join(self) -> int:
        if self._thread is not None:
            self._thread.join(timeout=120)
            assert not self._thread.is_alive(), "the feeder did not finish within 120 s"
            self._thread = None
        assert not self.failures, self.failures[:3]
        return self.sent

    def close(self) -> None:
        self.join()
        self.producer.close()
