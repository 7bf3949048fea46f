"""Turn scenario columns into events (the Kafka/replay schema) or dataset rows.

Generators return columns (numpy arrays or lists); the monitor reads events
``{"model", "model_version", "ts", "id", "inputs": {...}, "outputs": {..., "probs": {label: p}}}``
and datasets read rows ``{"inputs": {...}, "outputs": {...}}`` (ARCHITECTURE.md, "Event" and
"Datasets"). `to_events` and `to_rows` do the conversion once per column (``.tolist()``, so numpy
scalars become Python numbers and strings) and then zip the columns into rows. A NaN, or any other
non-finite float, becomes None (JSON has no NaN; the monitor counts it toward the null rate). Event i
gets ``ts = start_ts + i * step_seconds`` and ``id = f"{id_prefix}{i}"``. `probs` is
``(labels, array of shape (n, k))``, as `confidence.sample_probs` returns it, and becomes
``outputs.probs``. Columns of unequal length, a 2-D column, or a non-finite probability raise ValueError.

No paper: this is the plumbing between the experiments of this package and the monitor.

>>> import numpy as np
>>> events = to_events("m", start_ts=100.0, step_seconds=2.0, inputs={"x": np.array([1.5, np.nan])},
...                    outputs={"label": ["a", "b"]}, probs=(["a", "b"], np.array([[0.75, 0.25], [0.5, 0.5]])))
>>> events[1]["ts"], events[1]["id"], events[1]["inputs"]
(102.0, 'e1', {'x': None})
>>> events[1]["outputs"]
{'label': 'b', 'probs': {'a': 0.5, 'b': 0.5}}
>>> to_rows(inputs={"x": np.arange(2)}, outputs={})[0]
{'inputs': {'x': 0}, 'outputs': {}}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

Column = np.ndarray | Sequence[Any]
Probs = tuple[Sequence[str], np.ndarray]
_PLAIN = frozenset({str, int, bool, type(None)})


def _value(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _column(name: str, values: Column) -> list[Any]:
    """One column as a list of JSON-ready Python values."""
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"column {name!r} must be 1-D, got shape {values.shape}")
        if values.dtype.kind == "f":
            bad = ~np.isfinite(values)
            if bad.any():
                col = values.astype(object)
                col[bad] = None
                return col.tolist()
            return values.tolist()
        if values.dtype.kind != "O":
            return values.tolist()
        values = values.tolist()
    values = list(values)
    if set(map(type, values)) <= _PLAIN:
        return values
    return [_value(v) for v in values]


def _maps(section: str, columns: Mapping[str, Column], n: int | None) -> tuple[list[dict[str, Any]] | None, int | None]:
    """Per-row maps of one section (None when it has no columns) and the common length."""
    if not columns:
        return None, n
    names = list(columns)
    cols = [_column(f"{section}.{k}", columns[k]) for k in names]
    for k, c in zip(names, cols, strict=True):
        if n is None:
            n = len(c)
        elif len(c) != n:
            raise ValueError(f"column {section}.{k} has {len(c)} values, expected {n}")
    return [dict(zip(names, vals, strict=True)) for vals in zip(*cols, strict=True)], n


def _rows(inputs: Mapping[str, Column], outputs: Mapping[str, Column],
          probs: Probs | None) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
    ins, n = _maps("inputs", inputs, None)
    outs, n = _maps("outputs", outputs, n)
    prob_rows = None
    if probs is not None:
        if "probs" in outputs:
            raise ValueError("give outputs.probs either in outputs or as probs, not both")
        labels, arr = [str(x) for x in probs[0]], np.asarray(probs[1], dtype=float)
        if arr.ndim != 2 or arr.shape[1] != len(labels):
            raise ValueError(f"probs must have shape (n, {len(labels)}), got {arr.shape}")
        if n is not None and arr.shape[0] != n:
            raise ValueError(f"probs has {arr.shape[0]} rows, expected {n}")
        if not np.isfinite(arr).all():
            raise ValueError("probs must be finite (the monitor rejects a null probability)")
        n = arr.shape[0]
        prob_rows = [dict(zip(labels, row, strict=True)) for row in arr.tolist()]
    if n is None:
        raise ValueError("give at least one input or output column, or probs")
    ins = ins if ins is not None else [{} for _ in range(n)]
    outs = outs if outs is not None else [{} for _ in range(n)]
    if prob_rows is not None:
        for o, p in zip(outs, prob_rows, strict=True):
            o["probs"] = p
    return n, ins, outs


def to_events(model: str, *, start_ts: float, step_seconds: float, inputs: Mapping[str, Column],
              outputs: Mapping[str, Column], probs: Probs | None = None, version: str | None = "1",
              id_prefix: str = "e") -> list[dict[str, Any]]:
    """Columns -> events of one model, one every `step_seconds` from `start_ts` (epoch seconds)."""
    n, ins, outs = _rows(inputs, outputs, probs)
    ts = (float(start_ts) + float(step_seconds) * np.arange(n, dtype=float)).tolist()
    ver = None if version is None else str(version)
    return [{"model": model, "model_version": ver, "ts": t, "id": f"{id_prefix}{i}", "inputs": a, "outputs": b}
            for i, (t, a, b) in enumerate(zip(ts, ins, outs, strict=True))]


def to_rows(*, inputs: Mapping[str, Column], outputs: Mapping[str, Column],
            probs: Probs | None = None) -> list[dict[str, Any]]:
    """Columns -> dataset rows ``{"inputs": ..., "outputs": ...}`` (events without model, ts, id)."""
    _, ins, outs = _rows(inputs, outputs, probs)
    return [{"inputs": a, "outputs": b} for a, b in zip(ins, outs, strict=True)]
