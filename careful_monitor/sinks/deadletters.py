"""The dead-letter file of `replay`: one JSON line per rejected event, original bytes unchanged."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from careful_monitor.errors import ConfigError
from careful_monitor.sources.decode import Rejected, dead_letter_record


class DeadLetterFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        if path.is_dir():
            raise ConfigError("dead_letters.path", f"{str(path)!r} is a directory",
                              f"name a file, e.g. {str(path / 'dead-letters.jsonl')!r}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = path.open("ab")
        except OSError as exc:
            raise ConfigError("dead_letters.path", f"cannot open {str(path)!r} for appending: {exc.strerror or exc}",
                              "name a writable file") from None

    def write(self, rejected: Sequence[Rejected]) -> None:
        if rejected:
            self._fh.write(b"".join(dead_letter_record(r) + b"\n" for r in rejected))
            self._fh.flush()

    def close(self) -> None:
        self._fh.close()
