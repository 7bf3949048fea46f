"""The replay runner: the same engine over JSONL files or stdin, in batches.

Events without `ts` take the previous event's `ts`, so a replay is deterministic. Each batch is
persisted (windows, alerts, engine state) in one transaction, so an interrupted replay keeps what
it finished and the next replay continues the open window.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from careful_monitor.engine.monitor import WindowOutcome
from careful_monitor.engine.types import Alert
from careful_monitor.runtime.pipeline import Pipeline

BATCH_LINES = 4096

log = logging.getLogger(__name__)


@dataclass
class ReplayStats:
    lines: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    windows: int = 0
    alerts: list[Alert] = field(default_factory=list)


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


def open_inputs(paths: Iterable[str]) -> Iterator[IO[bytes]]:
    for p in paths:
        if p == "-":
            yield sys.stdin.buffer
        else:
            with Path(p).open("rb") as fh:
                yield fh


def replay(pipeline: Pipeline, paths: Iterable[str], *, flush: bool = False,
           on_window: Callable[[WindowOutcome], None] = lambda o: None,
           on_progress: Callable[[int], None] = lambda n: None, batch_lines: int = BATCH_LINES,
           on_bytes: Callable[[int], None] = lambda n: None) -> ReplayStats:
    """`on_progress(lines)` and `on_bytes(bytes read)` after each batch; DEBUG logs one line per batch."""
    stats = ReplayStats()
    batch_no = 0
    for stream in open_inputs(paths):
        for lines, nbytes in iter_sized_batches(stream, batch_lines):
            if not lines:
                on_bytes(nbytes)
                continue
            report = pipeline.handle(lines)
            pipeline.persist(report.outcomes)
            stats.lines += len(lines)
            stats.accepted += report.accepted
            for rej in report.rejected:
                stats.rejected[rej.reason] = stats.rejected.get(rej.reason, 0) + 1
            batch_no += 1
            if log.isEnabledFor(logging.DEBUG):
                reasons: dict[str, int] = {}
                for rej in report.rejected:
                    reasons[rej.reason] = reasons.get(rej.reason, 0) + 1
                log.debug("batch %d: %d lines, %d accepted, %d rejected (%s), %d windows closed",
                          batch_no, len(lines), report.accepted, len(report.rejected),
                          ", ".join(f"{k}={v}" for k, v in sorted(reasons.items())) or "none",
                          len(report.outcomes))
            for o in report.outcomes:
                stats.windows += 1
                stats.alerts.extend(o.alerts)
                on_window(o)
            on_progress(len(lines))
            on_bytes(nbytes)
    if flush:
        outcomes = pipeline.flush()
        pipeline.persist(outcomes)
        for o in outcomes:
            stats.windows += 1
            stats.alerts.extend(o.alerts)
            on_window(o)
    return stats
