"""The open window of one model: the raw values of each monitored feature until the window closes.

Events arrive as columns (`ModelBatch`); the window appends slices of them and keeps what the
close needs without a second pass: event-time bounds, model versions, and the confidence/entropy
of the `probs` feature, computed once per slice and shared with the streaming detector.

>>> w = OpenWindow(["inputs.x"], probs_feature=None)
>>> w.append(ModelBatch([1.0, 2.0], ["7", None], {"inputs.x": [0.5, None]}), 0, 2, [1.0, 2.0])
>>> w.n, w.first_ts, w.last_ts, dict(w.versions), w.cols["inputs.x"]
(2, 1.0, 2.0, {'7': 1}, [0.5, None])
>>> OpenWindow.from_state(w.state(), ["inputs.x"], None).cols == w.cols
True
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from careful_monitor.engine.column import probs_confidence

#: confidence, entropy, nulls, malformed: the probs feature of one appended slice
ProbsPart = tuple[np.ndarray, np.ndarray, int, int]


@dataclass
class ModelBatch:
    """Columnar events of one model: parallel lists, one entry per accepted event."""

    ts: list[float | None]
    versions: list[str | None]
    columns: dict[str, list[Any]]

    def __len__(self) -> int:
        return len(self.ts)


class OpenWindow:
    """Raw values of the window being filled, feature by feature, plus what its close needs."""

    def __init__(self, features: Sequence[str], probs_feature: str | None) -> None:
        self.features = list(features)
        self.probs_feature = probs_feature
        self.cols: dict[str, list[Any]] = {f: [] for f in self.features}
        self.n = 0
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.versions: Counter[str] = Counter()
        self.detector_hits = 0
        self.probs_parts: list[ProbsPart] = []

    def append(self, batch: ModelBatch, lo: int, hi: int, ts: Sequence[float] | np.ndarray) -> np.ndarray | None:
        """Append rows lo:hi of the batch; returns the slice's probs confidence (for the detector)."""
        for f, col in self.cols.items():
            src = batch.columns.get(f)
            col.extend(src[lo:hi] if src is not None else [None] * (hi - lo))
        if self.first_ts is None:
            self.first_ts = float(ts[lo])
        self.last_ts = float(ts[hi - 1])
        self.n += hi - lo
        self.versions.update(batch.versions[lo:hi])  # type: ignore[arg-type]  # counted in C; None dropped next
        self.versions.pop(None, None)  # type: ignore[call-overload]
        if self.probs_feature is None:
            return None
        conf, ent, nulls, bad = probs_confidence(batch.columns.get(self.probs_feature, [])[lo:hi])
        self.probs_parts.append((conf, ent, nulls, bad))
        return conf

    def probs_parts_complete(self) -> bool:
        """True when the per-slice probs summaries cover every value of the window."""
        return sum(len(p[0]) + p[2] + p[3] for p in self.probs_parts) == self.n

    def dominant_version(self) -> str | None:
        return self.versions.most_common(1)[0][0] if self.versions else None

    # --- data-only state ----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The window as plain JSON-able data (raw values are JSON values already: they came from JSON)."""
        return {"cols": self.cols, "n": self.n, "first_ts": self.first_ts, "last_ts": self.last_ts,
                "versions": dict(self.versions), "detector_hits": self.detector_hits,
                "probs_parts": [[c.tolist(), e.tolist(), nulls, bad] for c, e, nulls, bad in self.probs_parts]}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], features: Sequence[str], probs_feature: str | None) -> OpenWindow:
        w = cls(features, probs_feature)
        n = int(state["n"])
        # a feature added to the config since the snapshot was taken starts as missing values
        w.cols = {f: list(state["cols"].get(f, [None] * n)) for f in w.features}
        w.n, w.first_ts, w.last_ts = n, state["first_ts"], state["last_ts"]
        w.versions = Counter({str(k): int(v) for k, v in state["versions"].items()})
        w.detector_hits = int(state["detector_hits"])
        w.probs_parts = [(np.asarray(c, dtype=float), np.asarray(e, dtype=float), int(nulls), int(bad))
                         for c, e, nulls, bad in state["probs_parts"]]
        return w
