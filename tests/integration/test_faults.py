"""Fault injection (issue 11): `careful-monitor run` on a real broker and a real PostgreSQL, killed,
cut off and overloaded, stores what an uninterrupted run stores.

One broker and one PostgreSQL serve every case; each case has a database of its own (a copy of a
template holding the registered datasets), its own topics and consumer group. The reference is a
`replay` of the same file into a fresh database. Every case checks, against it: the windows (all
fields but `created_at`) and alerts are equal, and the engine counted every valid event exactly once
(`events_seen` of the stored state, which survives restarts, unlike the per-process
`events_total`). The kill, restart and rebalance cases run with `limits.dedup_ids: 0`, so that the
offsets stored with the engine state alone must prevent a redelivered event from being counted
twice (id dedup would hide it); the fuzz case keeps id dedup on and feeds it duplicates. Every
random choice (kill moments, cut points, the corpus) comes from one seeded `random.Random`; each
case prints its counts (`pytest -rA` or `-s` shows them). README "Reliability" has the table.
"""

from __future__ import annotations

import random
import subprocess
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from tests.integration.faults import (
    MODEL,
    Feeder,
    World,
    build_world,
    busy_cores,
    free_port,
    fuzz_corpus,
    metrics,
    produce_raw,
    reap,
    replay_reference,
    sample,
    stop,
    wait_for,
)
from tests.procs import catches_sigterm, http_status, output

pytestmark = pytest.mark.integration
SEED = 20261201
WINDOWS = 12
KILLS = 20
#: what `run` must do after SIGTERM, wherever it is (issue 11)
SIGTERM_EXIT_S = 10.0
#: deadlines for a service to get somewhere, sized for two busy-looping processes on two cores
DEADLINE_S = 180.0


@pytest.fixture(scope="module")
def world(tmp_path_factory, postgres_server, kafka_broker) -> World:
    t0 = time.monotonic()
    w = build_world(tmp_path_factory.mktemp("faults"), postgres_server, kafka_broker, seed=SEED, windows=WINDOWS)
    assert len(w.reference.windows) == WINDOWS and w.reference.alerts, "the scenario must close windows and alert"
    print(f"world: {len(w.lines)} messages ({w.valid} valid), reference {len(w.reference.windows)} windows, "
          f"{len(w.reference.alerts)} alert(s), built in {time.monotonic() - t0:.1f}s")
    try:
        yield w
    finally:
        w.drop_databases()


def _rng(name: str) -> random.Random:
    return random.Random(f"{SEED}:{name}")


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _run_to_end(case, proc: subprocess.Popen, total: int) -> float:
    """Wait until every window is stored and every message consumed, then SIGTERM: exit 0, seconds it took."""
    wait_for(f"{WINDOWS} windows and {total} messages stored",
             lambda: case.windows() >= WINDOWS and case.position() == total, DEADLINE_S, alive=proc)
    return stop(proc, within_s=SIGTERM_EXIT_S)


# --- kill -9 at 20 random points ------------------------------------------------------------------------
def test_kill_9_at_20_random_points_loses_and_duplicates_nothing(world: World) -> None:
    """20 workers in turn, each killed with SIGKILL at a seeded random moment: in start-up, while it
    catches up on what arrived while it was down, or while the stream flows (a chunk of 1/20 of the
    file produced at 1,500 events/s from the moment it is caught up); then one more runs to the end."""
    rng = _rng("kill")
    case = world.case("kill9", dedup_ids=0)
    case.create_topics()
    total = len(world.lines)
    chunks = [world.lines[i * total // KILLS:(i + 1) * total // KILLS] for i in range(KILLS)]
    feeder = Feeder(case, rate=1500)
    points, cycle_s, procs = [], [], []
    try:
        for i, chunk in enumerate(chunks):
            t0 = time.monotonic()
            where = rng.choices(["start-up", "catch-up", "stream"], weights=[2, 3, 5])[0]
            if where != "stream":
                feeder.feed(chunk)  # there when it starts: it is killed in start-up or in catching up
            proc = case.run()
            procs.append(proc)
            if where == "start-up":
                time.sleep(rng.uniform(0.2, 4.0))  # the random kill moment itself, not a wait for the service
            else:
                produced = feeder.join()
                start = case.position()
                if where == "stream":  # caught up, then the next chunk flows while it runs
                    wait_for("caught up", lambda n=produced: case.position() == n, DEADLINE_S, alive=proc, every=0.05)
                    feeder.feed(chunk)
                else:  # its first batch is stored: it has restored the state and resumed
                    wait_for("a batch stored", lambda s=start: case.position() > s, DEADLINE_S, alive=proc, every=0.05)
                time.sleep(rng.uniform(0.0, 0.5))
            proc.kill()
            proc.wait(timeout=30)
            points.append((where, case.position()))
            case.assert_commits_persisted()  # at every kill: Kafka holds no offset the store does not
            cycle_s.append(time.monotonic() - t0)
            # most restarts evict the dead member at once (an operator's `kafka-consumer-groups --delete
            # --members`); every fifth waits for the broker's own session timeout (10 s) instead
            if i % 5 != 4:
                case.evict_members()
        feeder.close()
        last = case.run()
        procs.append(last)
        _run_to_end(case, last, total)
    finally:
        feeder.close()
        reap(*procs)
    got = case.assert_matches_reference()
    case.assert_commits_persisted()
    dead = case.consume("dead_letters", 5)
    alerts = case.consume("alerts", len(got.alerts))
    assert set(dict(m.headers)["reason"].decode() for m in dead) == {"decode", "schema", "too_large", "unknown_model"}
    assert {orjson.loads(m.value)["alert_id"] for m in alerts} == {a["alert_id"] for a in got.alerts}
    kinds = Counter(w for w, _ in points)
    mid = sum(1 for _, pos in points if 0 < pos < total)
    print(f"kill -9 x{KILLS}: {len(got.windows)} windows, {len(got.alerts)} alert(s), {got.events_seen} events "
          f"counted (== {world.valid} valid), 0 lost, 0 duplicated; kills {dict(kinds)}, {mid} mid-stream; "
          f"stored position at each kill: {[pos for _, pos in points]} of {total}; seconds per cycle "
          f"{[round(c, 1) for c in cycle_s]}; dead letters on the topic {len(dead)} for 5 bad lines, alerts "
          f"{len(alerts)} for {len(got.alerts)} (a batch read again after a kill publishes again: same ids)")
    assert mid >= KILLS - 1, "the kills must land while the stream flows"


# --- broker restart -------------------------------------------------------------------------------------
@pytest.mark.parametrize("load", ["idle", "busy-cores"])
def test_broker_restart_mid_stream_loses_nothing(world: World, load: str) -> None:
    """The broker stopped and started again (same ports and data) after a seeded number of messages:
    `run` reconnects, consumes what is produced after the restart, and exits 0 within 10 s of SIGTERM."""
    rng = _rng(f"broker-{load}")
    case = world.case(f"broker-{load}", dedup_ids=0)
    case.create_topics()
    total = len(world.lines)
    cut = rng.randrange(total // 5, total // 2)
    before = _write(world.dir / f"broker-{load}-1.jsonl", world.lines[:cut])
    after = _write(world.dir / f"broker-{load}-2.jsonl", world.lines[cut:])
    with busy_cores(2 if load == "busy-cores" else 0) as busy:
        case.produce_file(before)
        proc = case.run()
        try:
            wait_for("the first part consumed", lambda: case.position() == cut, DEADLINE_S, alive=proc)
            t0 = time.monotonic()
            world.broker.restart()
            restart_s = time.monotonic() - t0
            case.produce_file(after)  # produced once the broker is back: the service must have reconnected
            exit_s = _run_to_end(case, proc, total)
        finally:
            reap(proc)
        assert all(p.poll() is None for p in busy), "the busy loops must run throughout"
    got = case.assert_matches_reference()
    case.assert_commits_persisted()
    print(f"broker restart ({load}): restarted after {cut} of {total} messages in {restart_s:.1f}s; "
          f"{len(got.windows)} windows, {len(got.alerts)} alert(s), {got.events_seen} events counted "
          f"(== {world.valid}), 0 lost, 0 duplicated; exit 0 {exit_s:.1f}s after SIGTERM")


# --- PostgreSQL stopped and restarted -------------------------------------------------------------------
def test_postgres_stopped_and_restarted_loses_nothing(world: World) -> None:
    """The session's PostgreSQL stopped (pg.sh stop) while events flow: `run` stays up, reports not-ready,
    commits nothing to Kafka meanwhile; once it is started again on the same port it stores everything."""
    from tests.integration.conftest_postgres import PG_SH

    rng = _rng("postgres")
    case = world.case("postgres", dedup_ids=0)
    case.create_topics()
    total = len(world.lines)
    http = free_port()
    feeder = Feeder(case, rate=1500)
    proc = case.run(http)
    server = world.server
    stopped = False
    try:
        wait_for("ready", lambda: _ready(http) == 200, DEADLINE_S, alive=proc)
        feeder.feed(world.lines)
        windows = rng.randint(1, 4)
        wait_for(f"{windows} windows", lambda: case.windows() >= windows, DEADLINE_S, alive=proc)
        subprocess.run(["bash", str(PG_SH), "stop", str(server.datadir)], check=True, timeout=120,
                       capture_output=True)
        stopped = True
        wait_for("not ready while the store is down", lambda: _ready(http) == 503, 60, alive=proc)
        committed = case.committed()
        produced = feeder.join()  # the stream goes on during the outage
        time.sleep(1.0)  # a bounded pause with events waiting: nothing may be committed meanwhile
        assert case.committed() == committed, "offsets were committed to Kafka while the store was down"
        assert proc.poll() is None, output(proc)[-3000:]
        subprocess.run(["bash", str(PG_SH), "start", str(server.datadir), str(server.port)], check=True,
                       timeout=120, capture_output=True)
        stopped = False
        wait_for("ready again", lambda: _ready(http) == 200, DEADLINE_S, alive=proc)
        exit_s = _run_to_end(case, proc, total)
    finally:
        if stopped:
            subprocess.run(["bash", str(PG_SH), "start", str(server.datadir), str(server.port)], timeout=120,
                           capture_output=True)
        feeder.close()
        reap(proc)
    got = case.assert_matches_reference()
    case.assert_commits_persisted()
    print(f"PostgreSQL stop/start: stopped after {windows} window(s) with {produced} of {total} messages produced; "
          f"not-ready and no Kafka commit while down; {len(got.windows)} windows, {len(got.alerts)} alert(s), "
          f"{got.events_seen} events counted (== {world.valid}), 0 lost, 0 duplicated; exit 0 {exit_s:.1f}s after "
          "SIGTERM")


def _ready(port: int) -> int:
    return http_status(f"http://127.0.0.1:{port}/readyz")


# --- two workers, a rebalance ---------------------------------------------------------------------------
@pytest.mark.parametrize("load", ["idle", "busy-cores"])
def test_two_workers_rebalance_mid_stream(world: World, load: str) -> None:
    """Worker A consumes the first third of the stream; B joins (a rebalance) and the second third flows;
    A is stopped with SIGTERM at a seeded moment of it (another rebalance: B takes every partition, the
    model's included); B consumes the rest. Both processed events; the result is the uninterrupted run's."""
    rng = _rng(f"rebalance-{load}")
    case = world.case(f"rebalance-{load}", dedup_ids=0)
    case.create_topics()
    total = len(world.lines)
    thirds = [world.lines[:total // 3], world.lines[total // 3:2 * total // 3], world.lines[2 * total // 3:]]
    feeder = Feeder(case, rate=1500)
    a = b = None
    with busy_cores(2 if load == "busy-cores" else 0):
        try:
            a = case.run()
            feeder.feed(thirds[0])
            wait_for("A consumed the first third", lambda: case.position() == len(thirds[0]), DEADLINE_S, alive=a)
            b = case.run()
            wait_for("B assigned", lambda: "assigned partitions" in output(b), DEADLINE_S, alive=b)
            feeder.feed(thirds[1])
            time.sleep(rng.uniform(0.0, len(thirds[1]) / 1500))  # the random moment itself, not a wait
            at = case.position()
            stop_a = stop(a, within_s=SIGTERM_EXIT_S)
            feeder.join()
            feeder.feed(thirds[2])
            feeder.close()
            exit_s = _run_to_end(case, b, total)
        finally:
            feeder.close()
            reap(a, b)
    got = case.assert_matches_reference()
    case.assert_commits_persisted()
    counts = [_processed(p) for p in (a, b)]
    assert all(n > 0 for n in counts), counts
    print(f"rebalance ({load}): B joined after {len(thirds[0])} messages, A left at {at} of {total}; events per "
          f"worker {counts}; {len(got.windows)} windows, {len(got.alerts)} alert(s), {got.events_seen} events "
          f"counted (== {world.valid}), 0 lost, 0 duplicated; SIGTERM exits {stop_a:.1f}s and {exit_s:.1f}s")


def _processed(proc: subprocess.Popen) -> int:
    """What a stopped worker logged as processed ("stopped after N events")."""
    import re

    found = re.findall(r"stopped after (\d+) events", output(proc))
    assert found, output(proc)[-2000:]
    return int(found[-1])


# --- SIGTERM in start-up and mid-stream -----------------------------------------------------------------
@pytest.mark.parametrize("load", ["idle", "busy-cores"])
def test_sigterm_in_start_up_and_mid_stream_exits_0_within_10_s(world: World, load: str) -> None:
    """SIGTERM at three seeded moments of the first 4 s (imports, store, group join: start-up) and once
    mid-stream: each exits 0 within 10 s, having committed to Kafka no offset the store does not hold;
    a last worker finishes the stream."""
    rng = _rng(f"sigterm-{load}")
    case = world.case(f"sigterm-{load}", dedup_ids=0)
    case.create_topics()
    total = len(world.lines)
    head = total // 4
    feeder = Feeder(case, rate=800 if load == "busy-cores" else 1500)
    exits, procs = [], []
    with busy_cores(2 if load == "busy-cores" else 0):
        try:
            feeder.feed(world.lines[:head])
            feeder.join()
            for _ in range(3):
                proc = case.run()
                procs.append(proc)
                # "from the first import": on busy cores the interpreter alone can take longer than 0.05 s
                deadline = time.monotonic() + 30
                while not catches_sigterm(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.001)
                time.sleep(rng.uniform(0.05, 4.0))  # the random moment itself, not a wait for the service
                exits.append(stop(proc, within_s=SIGTERM_EXIT_S))
                assert "Traceback" not in output(proc), output(proc)[-3000:]
                case.assert_commits_persisted()
            proc = case.run()
            procs.append(proc)
            wait_for("caught up", lambda: case.position() == head, DEADLINE_S, alive=proc)
            feeder.feed(world.lines[head:])
            time.sleep(rng.uniform(0.2, 2.0))
            at = case.position()
            exits.append(stop(proc, within_s=SIGTERM_EXIT_S))
            assert "Traceback" not in output(proc), output(proc)[-3000:]
            case.assert_commits_persisted()
            feeder.close()
            assert at < total, "the stream ended before the SIGTERM: nothing would be tested"
            last = case.run()
            procs.append(last)
            exits.append(_run_to_end(case, last, total))
        finally:
            feeder.close()
            reap(*procs)
    got = case.assert_matches_reference()
    case.assert_commits_persisted()
    print(f"SIGTERM ({load}): 3 in start-up, 1 mid-stream at {at} of {total} messages, 1 at the end; exit 0 "
          f"after {[round(e, 1) for e in exits]} s; {len(got.windows)} windows, {len(got.alerts)} alert(s), "
          f"{got.events_seen} events counted (== {world.valid}), 0 lost, 0 duplicated")


# --- the fuzz corpus ------------------------------------------------------------------------------------
FUZZ_MESSAGES = 10_000
FUZZ_VALID = 7_000


def test_fuzz_corpus_through_kafka(world: World) -> None:
    """10,000 seeded messages produced raw: valid events (some spelled differently, some exactly at the
    size limit), duplicates of them (same id), and malformed, mistyped, absurd, unknown, oversized,
    empty and binary ones. Every valid event is counted once, every duplicate dropped and counted,
    every bad one dead-lettered once with its reason; the windows equal a replay of the valid lines."""
    import yaml

    rng = _rng("fuzz")
    case = world.case("fuzz")  # id dedup on: the corpus has redeliveries
    limit = int(yaml.safe_load(case.config.read_text())["limits"]["max_event_bytes"])
    valid_events = [orjson.loads(line) for line in world.lines if line.startswith(b'{"model":"ticket-router"')]
    corpus = fuzz_corpus(valid_events[-FUZZ_VALID:], rng, total=FUZZ_MESSAGES, max_event_bytes=limit)
    reference = replay_reference(world, _write(world.dir / "fuzz-valid.jsonl", corpus.valid_lines()))
    expected = corpus.counts()
    assert len(corpus.messages) == FUZZ_MESSAGES and expected["accepted"] == FUZZ_VALID
    reasons = {k: v for k, v in expected.items() if k not in ("accepted", "duplicate")}
    case.create_topics()
    produce_raw(case.doc["kafka"]["bootstrap"], case.topics["events"], corpus.messages)
    http = free_port()
    proc = case.run(http)
    try:
        def handled() -> dict | None:
            m = metrics(http)
            seen = sum(sample(m, "dead_letters_total", reason=r) for r in reasons)
            seen += sample(m, "events_total", model=MODEL, outcome="accepted")
            seen += sample(m, "events_total", model=MODEL, outcome="duplicate")
            return m if seen >= FUZZ_MESSAGES and case.position() == FUZZ_MESSAGES else None

        m = wait_for("every message handled", handled, DEADLINE_S, alive=proc)
        exit_s = stop(proc, within_s=SIGTERM_EXIT_S)
    finally:
        reap(proc)
    log = output(proc)
    assert "Traceback" not in log, log[-3000:]
    assert sample(m, "events_total", model=MODEL, outcome="accepted") == FUZZ_VALID
    assert sample(m, "events_total", model=MODEL, outcome="duplicate") == expected["duplicate"]
    assert sample(m, "events_total", model=MODEL, outcome="rejected") == sum(corpus.model_rejected)
    assert {r: sample(m, "dead_letters_total", reason=r) for r in reasons} == reasons
    dead = case.consume("dead_letters", sum(reasons.values()))
    assert Counter(dict(d.headers)["reason"].decode() for d in dead) == Counter(reasons)
    want = [b"" if msg is None else msg for msg, o in zip(corpus.messages, corpus.outcome, strict=True)
            if o in reasons]
    assert sorted(d.value for d in dead) == sorted(want), "a dead letter is not the message as it came"
    got = case.assert_matches_reference(reference)
    table = ", ".join(f"{k} -> {o}: {n}" for (k, o), n in sorted(corpus.kinds().items()))
    print(f"fuzz x{FUZZ_MESSAGES}: {FUZZ_VALID} valid counted once, {expected['duplicate']} duplicates dropped, "
          f"{sum(reasons.values())} dead letters {dict(sorted(reasons.items()))} (each once, unchanged, with "
          f"its reason); {len(got.windows)} windows, {len(got.alerts)} alert(s) == replay of the valid lines; "
          f"0 lost, 0 duplicated; the service never died (exit 0 {exit_s:.1f}s after SIGTERM); by kind: {table}")


# --- found by this suite, fixed: a lost group membership no longer stops `run` ---------------------------
def test_lost_group_membership_does_not_stop_run(world: World) -> None:
    """The coordinator forgets the worker (evicted here; a broker restart or a pause past the session
    timeout does the same): its next offset commit fails with CommitFailedError. The offsets are stored
    with the engine state, so the worker rejoins and carries on (it exited 2 before the fix)."""
    case = world.case("membership", dedup_ids=0)
    case.create_topics()
    feeder = Feeder(case, rate=5000)
    proc = case.run()
    try:
        feeder.feed(world.lines[:100])
        wait_for("the first batch stored", lambda: case.position() == 100, DEADLINE_S, alive=proc)
        case.evict_members()
        feeder.feed(world.lines[100:200])  # processed and committed before the next heartbeat (3 s) notices
        wait_for("the second batch stored", lambda: case.position() == 200, DEADLINE_S, alive=proc)
        time.sleep(1.0)  # a bounded pause: the commit after the batch must not end the process either
        assert proc.poll() is None, "run exited after losing its group membership:\n" + output(proc)[-3000:]
        stop(proc, within_s=SIGTERM_EXIT_S)
    finally:
        feeder.close()
        reap(proc)
