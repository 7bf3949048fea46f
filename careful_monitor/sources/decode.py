"""Batch decoding of events (orjson) into per-model columns, with every rejection classified.

A rejected event is returned unchanged with its reason (`decode`, `schema`, `unknown_model`,
`too_large`) and a human detail, for the dead-letter file or topic. Nothing here raises on bad
input: Hypothesis property tests feed it arbitrary bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Sequence

import orjson

from careful_monitor.engine.monitor import ModelBatch

REASONS = ("decode", "schema", "unknown_model", "too_large")
_SCALARS = (str, int, float, bool, type(None))


@dataclass
class Rejected:
    raw: bytes
    reason: str
    detail: str


@dataclass
class Decoded:
    batches: dict[str, ModelBatch] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    #: index in the input of every accepted event, per model (for offsets and tests)
    accepted: int = 0


def parse_ts(value: Any) -> float | None:
    """Epoch seconds or RFC 3339 -> epoch seconds; raises ValueError for anything else."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("ts must be epoch seconds or RFC 3339, not a boolean")
    if isinstance(value, (int, float)):
        v = float(value)
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("ts is not finite")
        return v
    if isinstance(value, str):
        s = value.strip()
        if s.endswith("Z") or s.endswith("z"):
            s = s[:-1] + "+00:00"
        dt = datetime.fromisoformat(s)
        if dt.tzinfo is None:
            raise ValueError("RFC 3339 ts needs a timezone offset")
        return dt.timestamp()
    raise ValueError(f"ts must be epoch seconds or RFC 3339, got {type(value).__name__}")


def _check_map(name: str, m: Any, allow_probs: bool) -> str | None:
    if m is None:
        return None
    if not isinstance(m, dict):
        return f"{name} must be a map, got {type(m).__name__}"
    for k, v in m.items():
        if isinstance(v, _SCALARS):
            continue
        if allow_probs and k == "probs" and isinstance(v, dict):
            for pk, pv in v.items():
                if not isinstance(pv, (int, float)) or isinstance(pv, bool):
                    return f"outputs.probs.{pk} must be a number"
            continue
        return f"{name}.{k} must be a number, string, bool or null, got {type(v).__name__}"
    return None


class EventDecoder:
    """Decodes batches for a fixed set of models and their configured features."""

    def __init__(self, features: dict[str, Sequence[str]], max_event_bytes: int) -> None:
        self.max_event_bytes = max_event_bytes
        # feature "inputs.amount" -> ("inputs", "amount"), per model
        self.features = {m: [(f, *f.split(".", 1)) for f in feats] for m, feats in features.items()}

    def decode(self, lines: Sequence[bytes], fallback_ts: Sequence[float | None] | None = None) -> Decoded:
        out = Decoded()
        cols_by_model: dict[str, tuple[list, list, dict[str, list]]] = {}
        limit = self.max_event_bytes
        loads = orjson.loads
        for i, raw in enumerate(lines):
            if len(raw) > limit:
                out.rejected.append(Rejected(raw, "too_large", f"{len(raw)} bytes > limits.max_event_bytes={limit}"))
                continue
            try:
                ev = loads(raw)
            except orjson.JSONDecodeError as exc:
                out.rejected.append(Rejected(raw, "decode", f"not JSON: {exc}"))
                continue
            if not isinstance(ev, dict):
                out.rejected.append(Rejected(raw, "schema", f"event must be a JSON object, got {type(ev).__name__}"))
                continue
            model = ev.get("model")
            if not isinstance(model, str) or not model:
                out.rejected.append(Rejected(raw, "schema", "missing or non-string 'model'"))
                continue
            feats = self.features.get(model)
            if feats is None:
                out.rejected.append(Rejected(raw, "unknown_model", f"model {model[:100]!r} is not configured"))
                continue
            inputs, outputs = ev.get("inputs"), ev.get("outputs")
            problem = _check_map("inputs", inputs, False) or _check_map("outputs", outputs, True)
            if problem is None:
                try:
                    ts = parse_ts(ev.get("ts"))
                except (ValueError, TypeError, OverflowError) as exc:
                    problem = f"bad ts: {exc}"
            if problem is None:
                version = ev.get("model_version")
                if version is not None and not isinstance(version, (str, int, float)) or isinstance(version, bool):
                    problem = "model_version must be a string or number"
            if problem is not None:
                out.rejected.append(Rejected(raw, "schema", problem))
                continue
            if ts is None and fallback_ts is not None:
                ts = fallback_ts[i]
            entry = cols_by_model.get(model)
            if entry is None:
                entry = cols_by_model[model] = ([], [], {f: [] for f, _, _ in feats})
            entry[0].append(ts)
            entry[1].append(None if version is None else str(version))
            cols = entry[2]
            sections = {"inputs": inputs or {}, "outputs": outputs or {}}
            for f, section, name in feats:
                cols[f].append(sections[section].get(name))
            out.accepted += 1
        for model, (ts_list, versions, cols) in cols_by_model.items():
            out.batches[model] = ModelBatch(ts_list, versions, cols)
        return out


def dead_letter_record(rej: Rejected) -> bytes:
    """One dead-letter JSONL line: the original bytes (as text when they are UTF-8) and the reason."""
    try:
        original: Any = rej.raw.decode("utf-8")
        key = "event"
    except UnicodeDecodeError:
        import base64

        original, key = base64.b64encode(rej.raw).decode(), "event_base64"
    return orjson.dumps({"reason": rej.reason, "detail": rej.detail, key: original})
