"""The replay runner: the same engine over JSONL files or stdin, in batches.

Events without `ts` take the previous event's `ts`, so a replay is deterministic. Each batch is
persisted (windows, alerts, engine state and the file's byte position) in one transaction, so an
interrupted replay keeps what it finished and the next replay continues where it stopped.

Replay is idempotent by input. A source file is identified by its head: the sha256 of its first
min(size, 64 KiB) bytes, stored with that length as the topic `"<head_len>:<sha256 hex>"` of consumer
group "replay" (partition 0) in the offsets table; `next_offset` is the bytes consumed. A file whose
position equals its size is skipped; a smaller position (an appended file, or a crash mid-file) is
resumed there, always a line boundary (positions are stored per batch of whole lines; a last line
without a newline counts as a whole line). A file shorter than 64 KiB that has since grown has a
new head: the stored sources with a shorter head are tried against the file's first `head_len`
bytes. `restart=True` re-reads every file from 0 and overwrites its position, with id dedup skipped
for its events (their ids are still recorded). stdin (`-`) has no identity: it is read from the
start every time and relies on id dedup (`limits.dedup_ids`), like every other source, to drop
events whose `id` was seen before.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from careful_monitor.engine.monitor import WindowOutcome
from careful_monitor.engine.types import Alert
from careful_monitor.runtime.pipeline import Pipeline
from careful_monitor.store import Store

BATCH_LINES = 4096
HEAD_BYTES = 64 * 1024
REPLAY_GROUP = "replay"

log = logging.getLogger(__name__)


@dataclass
class ReplayStats:
    lines: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    windows: int = 0
    alerts: list[Alert] = field(default_factory=list)
    skipped: list[SkippedSource] = field(default_factory=list)
    resumed_at: dict[str, int] = field(default_factory=dict)  # path -> byte offset resumed at
    duplicates: int = 0  # events dropped because their id was seen before


@dataclass(frozen=True)
class SkippedSource:
    path: str
    size: int
    position: int  # the stored position: == size (already replayed) or > size (the file shrank)

    def message(self) -> str:
        if self.position == self.size:
            return f"already replayed: {self.path} ({self.size} bytes); --restart re-reads it"
        return (f"not replayed: {self.path} ({self.size} bytes) is shorter than its stored position "
                f"({self.position} bytes); --restart re-reads it")


def source_topic(head_len: int, digest: str) -> str:
    """The offsets-table topic of a replay source: `"<head_len>:<sha256 hex of the first head_len bytes>"`."""
    return f"{head_len}:{digest}"


def _digest(path: Path, n: int) -> str:
    with path.open("rb") as fh:
        return hashlib.sha256(fh.read(n)).hexdigest()


def locate_source(store: Store, path: Path) -> tuple[str, int]:
    """The file's source topic and its stored position (0 when the source is new).

    An exact head match wins; otherwise the stored sources with a shorter head (a file that was under
    64 KiB when replayed, and has grown) are compared with this file's first `head_len` bytes, the
    longest matching head first.
    """
    size = path.stat().st_size
    head_len = min(size, HEAD_BYTES)
    topic = source_topic(head_len, _digest(path, head_len))
    stored = {t: n for (t, part), n in store.group_offsets(REPLAY_GROUP).items() if part == 0}
    if topic in stored:
        return topic, stored[topic]
    candidates: dict[int, list[tuple[str, int]]] = {}
    for t, n in stored.items():
        prefix, _, digest = t.partition(":")
        if prefix.isdigit() and int(prefix) < head_len:
            candidates.setdefault(int(prefix), []).append((digest, n))
    for length in sorted(candidates, reverse=True):
        digest = _digest(path, length)
        for d, n in candidates[length]:
            if d == digest:
                return topic, n
    return topic, 0


def iter_batches(stream: IO[bytes], size: int = BATCH_LINES) -> Iterator[list[bytes]]:
    for batch, _ in iter_sized_batches(stream, size):
        yield batch


def iter_sized_batches(stream: IO[bytes], size: int = BATCH_LINES) -> Iterator[tuple[list[bytes], int]]:
    """Batches of non-blank lines with the bytes read for each (newlines and blank lines included)."""
    batch: list[bytes] = []
    nbytes = 0
    for line in stream:
        nbytes += len(line)
        line = line.rstrip(b"\r\n")
        if not line.strip():
            continue
        batch.append(line)
        if len(batch) >= size:
            yield batch, nbytes
            batch, nbytes = [], 0
    if batch or nbytes:
        yield batch, nbytes


def input_bytes(paths: Iterable[str]) -> int | None:
    """Total size of the input files, or None when one is stdin (or not a regular file): the progress total."""
    total = 0
    for p in paths:
        path = Path(p)
        if p == "-" or not path.is_file():
            return None
        total += path.stat().st_size
    return total


def replay(pipeline: Pipeline, paths: Iterable[str], *, flush: bool = False, restart: bool = False,
           on_window: Callable[[WindowOutcome], None] = lambda o: None,
           on_progress: Callable[[int], None] = lambda n: None, batch_lines: int = BATCH_LINES,
           on_bytes: Callable[[int], None] = lambda n: None) -> ReplayStats:
    """`on_progress(lines)` and `on_bytes(bytes read)` after each batch (after it is persisted); DEBUG logs
    one line per batch. Files already consumed are skipped, partly consumed ones resumed; with `restart`,
    files are re-read and their events are not checked against the seen ids (module docstring)."""
    stats = ReplayStats()
    batch_no = 0
    for p in paths:
        if p == "-":
            batch_no = _replay_stream(pipeline, sys.stdin.buffer, None, 0, stats, batch_no, batch_lines,
                                      on_window, on_progress, on_bytes, dedup=True)
            continue
        path = Path(p)
        topic, position = locate_source(pipeline.store, path)
        size = path.stat().st_size
        if restart:
            position = 0
        elif position >= size and (size > 0 or position > 0):
            stats.skipped.append(SkippedSource(p, size, position))
            log.info("%s", stats.skipped[-1].message())
            on_bytes(size)
            continue
        with path.open("rb") as fh:
            if position:
                fh.seek(position)
                stats.resumed_at[p] = position
                log.info("resuming %s at byte %d of %d", p, position, size)
                on_bytes(position)
            batch_no = _replay_stream(pipeline, fh, topic, position, stats, batch_no, batch_lines,
                                      on_window, on_progress, on_bytes, dedup=not restart)
    if flush:
        outcomes = pipeline.flush()
        pipeline.persist(outcomes)
        for o in outcomes:
            stats.windows += 1
            stats.alerts.extend(o.alerts)
            on_window(o)
    return stats


def _replay_stream(pipeline: Pipeline, stream: IO[bytes], topic: str | None, position: int, stats: ReplayStats,
                   batch_no: int, batch_lines: int, on_window: Callable[[WindowOutcome], None],
                   on_progress: Callable[[int], None], on_bytes: Callable[[int], None], *, dedup: bool) -> int:
    """One input from `position`; with a `topic`, each batch stores the position after it (same transaction)."""
    for lines, nbytes in iter_sized_batches(stream, batch_lines):
        position += nbytes
        offsets = [] if topic is None else [(REPLAY_GROUP, topic, 0, position)]
        if not lines:
            if offsets:
                pipeline.persist((), offsets)
            on_bytes(nbytes)
            continue
        report = pipeline.handle(lines, dedup=dedup)
        pipeline.persist(report.outcomes, offsets)
        stats.lines += len(lines)
        stats.accepted += report.accepted
        stats.duplicates += report.duplicates
        for rej in report.rejected:
            stats.rejected[rej.reason] = stats.rejected.get(rej.reason, 0) + 1
        batch_no += 1
        if log.isEnabledFor(logging.DEBUG):
            reasons: dict[str, int] = {}
            for rej in report.rejected:
                reasons[rej.reason] = reasons.get(rej.reason, 0) + 1
            log.debug("batch %d: %d lines, %d accepted, %d rejected (%s), %d duplicate ids, %d windows closed",
                      batch_no, len(lines), report.accepted, len(report.rejected),
                      ", ".join(f"{k}={v}" for k, v in sorted(reasons.items())) or "none",
                      report.duplicates, len(report.outcomes))
        for o in report.outcomes:
            stats.windows += 1
            stats.alerts.extend(o.alerts)
            on_window(o)
        on_progress(len(lines))
        on_bytes(nbytes)
    return batch_no
