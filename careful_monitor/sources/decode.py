"""Batch decoding of events (orjson) into per-model columns, with every rejection classified.

A rejected event is returned unchanged with its reason (`decode`, `schema`, `unknown_model`,
`too_large`) and a human detail, for the dead-letter file or topic. Nothing here raises on bad
input: Hypothesis property tests feed it arbitrary bytes.

Event time is checked against a plausible range (`limits.ts_min` .. `limits.ts_max`, epoch
seconds; defaults 2000-01-01 and 2100-01-01). A numeric `ts` outside it that falls inside once
divided by 1000 is taken as epoch *milliseconds* (a common producer bug) and converted to seconds;
any other `ts` outside the range (negative, microseconds, year 3000, ...) is rejected with reason
`schema` and a detail naming the range. RFC 3339 strings are never converted.

Each accepted event's `id` is handed on per model (`Decoded.ids`), for the pipeline's id dedup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

import orjson

from careful_monitor.engine.monitor import ModelBatch

REASONS = ("decode", "schema", "unknown_model", "too_large")
#: defaults of `limits.ts_min` / `limits.ts_max`: 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z
TS_MIN_DEFAULT = 946_684_800.0
TS_MAX_DEFAULT = 4_102_444_800.0
_SCALARS = (str, int, float, bool, type(None))


@dataclass
class Rejected:
    raw: bytes
    reason: str
    detail: str
    #: the configured model the event named, when it got that far (counted in events_total{outcome="rejected"})
    model: str | None = None


@dataclass
class Decoded:
    batches: dict[str, ModelBatch] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    #: index in the input of every accepted event, per model (for offsets and tests)
    accepted: int = 0
    #: per model, parallel to its batch: each event's `id` (a string; an integer id as its decimal
    #: string), None when it has none (absent, null, empty or another type: never deduplicated)
    ids: dict[str, list[str | None]] = field(default_factory=dict)


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


_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})
_NUMBER_TYPES = frozenset({int, float})
_OUTPUT_TYPES = _SCALAR_TYPES | {dict}
_EMPTY: dict = {}
_DICT = {dict}
_STR = {str}
_STR_OR_NONE = frozenset({str, type(None)})
_VERSION_TYPES = frozenset({str, int, float, type(None)})
_MAP_OR_NONE = frozenset({dict, type(None)})
_EVENT_KEYS = ("model", "ts", "model_version", "id", "inputs", "outputs")


def _probs_ok(outs: list[dict], maps: int) -> bool:
    """The `maps` map values among the outputs are all under `probs`, and map labels to numbers."""
    probs: list[Any] = list(map(dict.get, outs, repeat("probs")))
    if list(map(type, probs)).count(dict) != maps:
        return False  # a map under another output key
    found: list[dict] = probs if maps == len(probs) else [p for p in probs if type(p) is dict]
    return set(map(type, chain.from_iterable(map(dict.values, found)))) <= _NUMBER_TYPES


def _check_map(name: str, m: Any, allowed: frozenset) -> str | None:
    """None when `m` is a flat map of allowed value types; otherwise what is wrong."""
    if m is None:
        return None
    if type(m) is not dict:
        return f"{name} must be a map, got {type(m).__name__}"
    if set(map(type, m.values())) <= allowed:  # C-level type scan: no Python loop per value
        return None
    for k, v in m.items():
        if type(v) not in _SCALAR_TYPES and not (allowed is _OUTPUT_TYPES and k == "probs" and type(v) is dict):
            return f"{name}.{k} must be a number, string, bool or null, got {type(v).__name__}"
    return None


def _check_probs(outputs: dict) -> str | None:
    probs = outputs.get("probs")
    if type(probs) is dict and not set(map(type, probs.values())) <= _NUMBER_TYPES:
        return "outputs.probs must map labels to numbers"
    for k, v in outputs.items():
        if type(v) is dict and k != "probs":
            return f"outputs.{k} must be a number, string, bool or null, got dict"
    return None


class EventDecoder:
    """Decodes batches for a fixed set of models and their configured features."""

    def __init__(self, features: dict[str, Sequence[str]], max_event_bytes: int, *,
                 ts_min: float | None = None, ts_max: float | None = None) -> None:
        """`ts_min`/`ts_max` (epoch seconds) bound event time; None (the default here) leaves that side open."""
        self.max_event_bytes = max_event_bytes
        self.ts_min = float("-inf") if ts_min is None else float(ts_min)
        self.ts_max = float("inf") if ts_max is None else float(ts_max)
        # per model: [(feature, section, key)], e.g. ("inputs.amount", "inputs", "amount")
        self.features = {m: [(f, *f.split(".", 1)) for f in feats] for m, feats in features.items()}
        self._models = frozenset(self.features)

    def decode(self, lines: Sequence[bytes], fallback_ts: Sequence[float | None] | None = None) -> Decoded:
        """Decode a batch: column by column when every line is a plain good event, else line by line.

        Both paths give the same batches, ids and rejects (a test runs every line through both); the
        column path is only taken when the whole batch passes its checks, so a bad line anywhere sends
        the batch down the line-by-line path, which classifies each line.
        """
        fast = self._decode_columns(lines)
        return fast if fast is not None else self._decode_lines(lines, fallback_ts)

    def _decode_columns(self, lines: Sequence[bytes]) -> Decoded | None:
        """The batch as columns, or None when any line needs the line-by-line checks.

        Every field and feature is read as a column by `map(dict.get, maps, repeat(key))`, and every
        check is one C-level pass over a column (`map`, `set`), not a Python loop per event. (Reading
        rows with `itemgetter` and transposing them with `zip` is as fast in isolation, but leaves a
        tuple per event for the cyclic garbage collector to scan: measured ~10 % slower end to end.)
        The checks: all lines within the size limit and JSON objects; `model` a configured name;
        `ts` a float or an integer inside the plausible range (no milliseconds to convert, none missing);
        `model_version` absent, a string or a number; `inputs` and `outputs` absent or flat maps of
        scalars, with maps of numbers only under `outputs.probs`.
        """
        if not lines or max(map(len, lines)) > self.max_event_bytes:
            return None
        try:
            evs = list(map(orjson.loads, lines))
        except orjson.JSONDecodeError:
            return None
        if set(map(type, evs)) != _DICT:
            return None
        fields: list[list[Any]] = [list(map(dict.get, evs, repeat(k))) for k in _EVENT_KEYS]
        models, ts, versions, eids, ins, outs = fields
        if set(map(type, models)) != _STR:
            return None
        names = set(models)
        if not names <= self._models:
            return None
        types = set(map(type, ts))
        if not types <= _NUMBER_TYPES or not self.ts_min <= min(ts) <= max(ts) <= self.ts_max:
            return None
        if int in types:
            ts = [float(t) for t in ts]
        types = set(map(type, versions))
        if not types <= _VERSION_TYPES:
            return None
        if types - _STR_OR_NONE:
            versions = [v if v is None or type(v) is str else str(v) for v in versions]
        for maps in (ins, outs):
            types = set(map(type, maps))
            if not types <= _MAP_OR_NONE:
                return None
            if type(None) in types:
                maps[:] = [m or _EMPTY for m in maps]
        if not set(map(type, chain.from_iterable(map(dict.values, ins)))) <= _SCALAR_TYPES:
            return None
        out_types = list(map(type, chain.from_iterable(map(dict.values, outs))))
        if not set(out_types) <= _OUTPUT_TYPES or (dict in out_types and not _probs_ok(outs, out_types.count(dict))):
            return None
        if set(map(type, eids)) != _STR or "" in eids:
            eids = [e if type(e) is str and e else str(e) if type(e) is int else None for e in eids]
        out = Decoded(accepted=len(evs))
        groups: dict[str, Sequence[int]]
        if len(names) == 1:
            groups = {models[0]: range(len(evs))}
        else:  # several models in one batch: each keeps its events in input order
            by_model: dict[str, list[int]] = {}
            for i, m in enumerate(models):
                by_model.setdefault(m, []).append(i)
            groups = {m: rows for m, rows in by_model.items()}
        for model, rows in groups.items():
            if isinstance(rows, range):
                g_ts, g_ver, g_ins, g_outs, g_ids = ts, versions, ins, outs, eids
            else:
                pick = itemgetter(*rows) if len(rows) > 1 else (lambda seq, i=rows[0]: (seq[i],))
                g_ts, g_ver, g_ins, g_outs, g_ids = (list(pick(c)) for c in (ts, versions, ins, outs, eids))
            out.batches[model] = ModelBatch(g_ts, g_ver, self._columns(model, g_ins, g_outs))
            out.ids[model] = g_ids
        return out

    def _columns(self, model: str, ins: list[dict], outs: list[dict]) -> dict[str, list[Any]]:
        """Each configured feature's column, read by one `map(dict.get, ...)` pass (None where a key is missing)."""
        return {f: list(map(dict.get, ins if section == "inputs" else outs, repeat(key)))
                for f, section, key in self.features[model]}

    def _decode_lines(self, lines: Sequence[bytes], fallback_ts: Sequence[float | None] | None) -> Decoded:
        """Line by line: every line classified (accepted, or rejected with its reason)."""
        out = Decoded()
        # per model: ts, versions, inputs maps, outputs maps, ids; columns are cut out at the end
        rows: dict[str, tuple[list, list, list, list, list]] = {}
        limit = self.max_event_bytes
        loads = orjson.loads
        reject = out.rejected.append
        known = self.features
        ts_min, ts_max = self.ts_min, self.ts_max
        for i, raw in enumerate(lines):
            if len(raw) > limit:
                reject(Rejected(raw, "too_large", f"{len(raw)} bytes > limits.max_event_bytes={limit}"))
                continue
            try:
                ev = loads(raw)
            except orjson.JSONDecodeError as exc:
                reject(Rejected(raw, "decode", f"not JSON: {exc}"))
                continue
            if type(ev) is not dict:
                reject(Rejected(raw, "schema", f"event must be a JSON object, got {type(ev).__name__}"))
                continue
            model = ev.get("model")
            if type(model) is not str or not model:
                reject(Rejected(raw, "schema", "missing or non-string 'model'"))
                continue
            if model not in known:
                reject(Rejected(raw, "unknown_model", f"model {model[:100]!r} is not configured"))
                continue
            inputs, outputs = ev.get("inputs"), ev.get("outputs")
            problem = _check_map("inputs", inputs, _SCALAR_TYPES) or _check_map("outputs", outputs, _OUTPUT_TYPES)
            if problem is None and outputs:
                problem = _check_probs(outputs) if dict in set(map(type, outputs.values())) else None
            ts = ev.get("ts")
            if problem is None and type(ts) is not float:
                try:
                    ts = parse_ts(ts)
                except (ValueError, TypeError, OverflowError) as exc:
                    problem = f"bad ts: {exc}"
            if problem is None and ts is not None and not ts_min <= ts <= ts_max:
                raw_ts = ev.get("ts")
                if type(raw_ts) in (int, float) and ts_min <= ts / 1000.0 <= ts_max:
                    ts = ts / 1000.0  # epoch milliseconds: converted (module docstring)
                else:
                    problem = (f"ts {ts!r} is outside the plausible range limits.ts_min={ts_min:.0f} .. "
                               f"limits.ts_max={ts_max:.0f} (epoch seconds; milliseconds are converted)")
            version = ev.get("model_version")
            if problem is None and version is not None:
                if type(version) not in (str, int, float):
                    problem = "model_version must be a string or number"
                else:
                    version = str(version)
            if problem is not None:
                reject(Rejected(raw, "schema", problem, model))
                continue
            if ts is None and fallback_ts is not None:
                ts = fallback_ts[i]
            eid = ev.get("id")
            if type(eid) is not str:
                eid = str(eid) if type(eid) is int else None
            entry = rows.get(model)
            if entry is None:
                entry = rows[model] = ([], [], [], [], [])
            entry[0].append(ts)
            entry[1].append(version)
            entry[2].append(inputs or _EMPTY)
            entry[3].append(outputs or _EMPTY)
            entry[4].append(eid or None)
        for model, (ts_list, versions, ins, outs, ids) in rows.items():
            cols = {}
            for f, section, key in known[model]:
                maps = ins if section == "inputs" else outs
                cols[f] = [m.get(key) for m in maps]
            out.batches[model] = ModelBatch(ts_list, versions, cols)
            out.ids[model] = ids
            out.accepted += len(ts_list)
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
