"""The replay runner: the same engine over JSONL files or stdin, in batches.

Events without `ts` take the previous event's `ts`, so a replay is deterministic. Each batch is
persisted (windows, alerts, engine state) in one transaction, so an interrupted replay keeps what
it finished and the next replay continues the open window.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from careful_monitor.engine.monitor import WindowOutcome
from careful_monitor.engine.types import Alert
from careful_monitor.runtime.pipeline import Pipeline

BATCH_LINES = 4096


@dataclass
class ReplayStats:
    lines: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    windows: int = 0
    alerts: list[Alert] = field(default_factory=list)


def iter_batches(stream: IO[bytes], size: int = BATCH_LINES) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for line in stream:
        line = line.rstrip(b"\r\n")
        if not line.strip():
            continue
        batch.append(line)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def open_inputs(paths: Iterable[str]) -> Iterator[IO[bytes]]:
    for p in paths:
        if p == "-":
            yield sys.stdin.buffer
        else:
            with Path(p).open("rb") as fh:
                yield fh


def replay(pipeline: Pipeline, paths: Iterable[str], *, flush: bool = False,
           on_window: Callable[[WindowOutcome], None] = lambda o: None,
           on_progress: Callable[[int], None] = lambda n: None, batch_lines: int = BATCH_LINES) -> ReplayStats:
    stats = ReplayStats()
    for stream in open_inputs(paths):
        for lines in iter_batches(stream, batch_lines):
            report = pipeline.handle(lines)
            pipeline.persist(report.outcomes)
            stats.lines += len(lines)
            stats.accepted += report.accepted
            for rej in report.rejected:
                stats.rejected[rej.reason] = stats.rejected.get(rej.reason, 0) + 1
            for o in report.outcomes:
                stats.windows += 1
                stats.alerts.extend(o.alerts)
                on_window(o)
            on_progress(len(lines))
    if flush:
        outcomes = pipeline.flush()
        pipeline.persist(outcomes)
        for o in outcomes:
            stats.windows += 1
            stats.alerts.extend(o.alerts)
            on_window(o)
    return stats
