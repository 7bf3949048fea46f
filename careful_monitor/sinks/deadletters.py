"""The dead-letter file of `replay`: one JSON line per rejected event, original bytes unchanged."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from careful_monitor.sources.decode import Rejected, dead_letter_record


class DeadLetterFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("ab")

    def write(self, rejected: Sequence[Rejected]) -> None:
        if rejected:
            self._fh.write(b"".join(dead_letter_record(r) + b"\n" for r in rejected))
            self._fh.flush()

    def close(self) -> None:
        self._fh.close()
