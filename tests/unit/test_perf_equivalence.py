"""Full window results on seeded data, pinned: the performance work of issue 13 must not change them.

`tests/golden/window_results.json` was written by the code before issue 13's speed-ups (regenerated once
since, when the benchmark workload's reference probs were rounded to 6 digits: numpy's `exp` differs in the
last bit between CPUs with and without AVX-512, which made the bench stream's profiles machine-dependent). Two seeded
streams go through the event decoder and a `ModelMonitor` in uneven batches (windows close inside
batches): the demo scenario (numeric, categorical, text, probs and the label; bad lines sprinkled in;
anchor + 2 synthetic sets; drift from window 3) and the benchmark workload (15 numeric + 3-class
probs, anchor + 2 synthetic sets; +0.4 sd in 5 columns from window 3; the last 500 events closed by
`flush`). Compared per window: the stored JSON (`contracts.window_json`, rounded as stored) exactly;
the unrounded `WindowResult` with every string, integer and flag exact and floats to a relative 1e-9
(the vectorised histogram tests sum in another order: differences seen are below 1e-12 relative, and
1e-9 is far below the 6 digits anything stores); the alerts (`alert_json`); the decoder's rejects
(reason, detail, model) and a digest of its columns and ids, exactly; and the monitor's snapshot
after the stream (floats to 1e-9). A property test also runs random batches through the decoder's
column path and its line-by-line path and wants the same batches, ids and rejects.

Regenerate only when results change on purpose, and say why in the issue note:
`CAREFUL_MONITOR_REGENERATE_GOLDEN=1 pytest tests/unit/test_perf_equivalence.py`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from careful_monitor.bench.workload import event_lines, reference_columns
from careful_monitor.config import MinEffect
from careful_monitor.contracts import alert_json, window_json
from careful_monitor.demo import scenario
from careful_monitor.engine.monitor import ModelMonitor, MonitorSpec
from careful_monitor.engine.profile import build_profile
from careful_monitor.engine.state import decode_state
from careful_monitor.sources.decode import EventDecoder

GOLDEN = Path(__file__).parents[1] / "golden" / "window_results.json"
REL_TOL = 1e-9
NOW = 1_800_000_000.0
BATCH = 700  # lines per decode + process call: windows of 1,000 close inside batches


def _plain(obj: Any) -> Any:
    """A typed result as JSON-able data at full precision (tuples become lists, enums strings)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, str):
        return str(obj)  # StrEnum -> str
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)  # inf / nan kept exact, as strings
    return obj


def _run(monitor: ModelMonitor, decoder: EventDecoder, lines: list[bytes]) -> dict[str, Any]:
    windows, raw, alerts, rejects = [], [], [], []
    digest = hashlib.sha256()
    for lo in range(0, len(lines), BATCH):
        decoded = decoder.decode(lines[lo:lo + BATCH])
        rejects += [[r.reason, r.detail, r.model] for r in decoded.rejected]
        for model in sorted(decoded.batches):
            b = decoded.batches[model]
            digest.update(orjson.dumps([model, b.ts, b.versions, b.columns, decoded.ids[model]],
                                       option=orjson.OPT_SERIALIZE_NUMPY))
            for o in monitor.process(b, NOW):
                windows.append(window_json(o.result))
                raw.append(_plain(o.result))
                alerts += [alert_json(a) for a in o.alerts]
    for o in monitor.flush(NOW):
        windows.append(window_json(o.result))
        raw.append(_plain(o.result))
        alerts += [alert_json(a) for a in o.alerts]
    state = decode_state(monitor.snapshot(), monitor.model)
    return {"windows": json.loads(json.dumps(windows)), "raw": json.loads(json.dumps(raw)), "alerts": alerts,
            "rejects": rejects, "decoded_sha256": digest.hexdigest(), "state": json.loads(json.dumps(_plain(state)))}


def _demo_stream(demo_profiles) -> dict[str, Any]:
    anchor, synthetic = demo_profiles
    spec = MonitorSpec(features=dict(scenario.FEATURES), min_effect=MinEffect().model_dump())
    events = scenario.live_events(np.random.default_rng(2026), windows=7, stable_windows=3, ramp_windows=2)
    lines = [orjson.dumps(e) for e in events]
    for k, bad in enumerate(scenario.bad_lines(scenario.START_TS)):
        lines.insert(150 + 977 * k, bad)  # one of each reject kind, spread over the stream
    decoder = EventDecoder({scenario.MODEL: list(scenario.FEATURES)}, 65536)
    return _run(ModelMonitor(scenario.MODEL, spec, anchor, dict(synthetic)), decoder, lines)


def _bench_stream() -> dict[str, Any]:
    rng = np.random.default_rng(13)
    features = {**{f"inputs.x{i}": "numeric" for i in range(15)}, "outputs.probs": "probs"}
    anchor = build_profile("bench-real", "real", reference_columns(rng, 20_000), kinds=features, rng=rng)
    synthetic = {name: build_profile(name, "synthetic", reference_columns(rng, 10_000, sd), kinds=features,
                                     anchor=anchor, anchored_by=anchor.name, rng=rng)
                 for name, sd in (("bench-narrow", 0.7), ("bench-faithful", 1.0))}
    lines = event_lines(rng, 7500, 0)
    for i in range(3000, len(lines)):  # +0.4 sd in x0..x4 from window 3
        ev = orjson.loads(lines[i])
        ev["inputs"].update({f"x{j}": round(ev["inputs"][f"x{j}"] + 0.4, 4) for j in range(5)})
        lines[i] = orjson.dumps(ev)
    spec = MonitorSpec(features=features, min_effect=MinEffect().model_dump())
    decoder = EventDecoder({"bench": list(features)}, 65536)
    return _run(ModelMonitor("bench", spec, anchor, synthetic), decoder, lines)


def _diff(got: Any, want: Any, path: str = "$", rel: float = 0.0) -> list[str]:
    if isinstance(want, dict) and isinstance(got, dict):
        out = [f"{path}: keys {sorted(set(got) ^ set(want))} differ"] if set(got) != set(want) else []
        return out + [d for k in sorted(set(got) & set(want)) for d in _diff(got[k], want[k], f"{path}.{k}", rel)]
    if isinstance(want, list) and isinstance(got, list):
        if len(got) != len(want):
            return [f"{path}: {len(got)} items, golden has {len(want)}"]
        return [d for i, (g, w) in enumerate(zip(got, want, strict=True)) for d in _diff(g, w, f"{path}[{i}]", rel)]
    if rel and isinstance(want, float) and isinstance(got, float):
        return [] if math.isclose(got, want, rel_tol=rel, abs_tol=1e-300) else [f"{path}: {got!r} != {want!r}"]
    return [] if got == want and type(got) is type(want) else [f"{path}: {got!r} != {want!r}"]


@pytest.fixture(scope="module")
def streams(demo_profiles) -> dict[str, Any]:
    return {"demo": _demo_stream(demo_profiles), "bench": _bench_stream()}


def test_window_results_match_those_before_the_speedups(streams) -> None:
    if os.environ.get("CAREFUL_MONITOR_REGENERATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(streams, indent=None, sort_keys=True, separators=(",", ":")) + "\n")
    assert GOLDEN.exists(), f"{GOLDEN} is missing: see this module's docstring"
    want = json.loads(GOLDEN.read_text())
    got = json.loads(json.dumps(streams))  # the same JSON round trip the file went through
    assert len(got["demo"]["windows"]) == 7 and len(got["bench"]["windows"]) == 8
    assert any(w["flagged"] for w in got["demo"]["windows"]) and any(w["flagged"] for w in got["bench"]["windows"])
    assert {r[0] for r in got["demo"]["rejects"]} == {"decode", "schema", "unknown_model", "too_large"}
    diffs = []
    for name in ("demo", "bench"):
        g, w = got[name], want[name]
        for key in ("windows", "alerts", "rejects", "decoded_sha256"):  # as stored: exact
            diffs += _diff(g[key], w[key], f"{name}.{key}")
        for key in ("raw", "state"):  # full precision
            diffs += _diff(g[key], w[key], f"{name}.{key}", REL_TOL)
    assert not diffs, f"{len(diffs)} differences from {GOLDEN.name}, first: " + "; ".join(diffs[:10])


def test_diff_tolerates_only_float_noise() -> None:
    assert _diff({"a": [1.0, "x"]}, {"a": [1.0 + 1e-12, "x"]}, rel=REL_TOL) == []
    assert _diff({"a": [1.0, "x"]}, {"a": [1.0 + 1e-12, "x"]})  # stored values: exact
    assert _diff({"a": 1.0}, {"a": 1.0 + 1e-8}, rel=REL_TOL)
    assert _diff({"a": True}, {"a": 1}, rel=REL_TOL)
    assert _diff({"a": "ok"}, {"a": "watch"}, rel=REL_TOL)
    assert _diff({"a": [1]}, {"a": [1, 2]}, rel=REL_TOL)


_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, width=64),
                    st.text(max_size=5))
_FIELD = {
    "ts": st.one_of(st.floats(1e9, 2e9), st.integers(10**9, 2 * 10**9), st.sampled_from([None, 1.7e12, -5, "x"])),
    "model_version": st.one_of(st.none(), st.text(max_size=3), st.integers(0, 9), st.floats(0, 9), st.booleans()),
    "id": st.one_of(st.text(max_size=4), st.integers(0, 99), st.none(), st.just(1.5)),
    "inputs": st.one_of(st.none(), st.dictionaries(st.sampled_from(["x", "c", "z"]), _SCALAR, max_size=3),
                        st.just({"x": [1]}), st.just("x=1")),
    "outputs": st.one_of(st.none(), st.fixed_dictionaries(
        {}, optional={"probs": st.one_of(st.dictionaries(st.sampled_from("ab"), st.floats(0, 1), max_size=2),
                                         st.just({"a": "hi"}), _SCALAR),
                      "score": st.one_of(_SCALAR, st.just({"a": 1.0}))})),
}
_MODEL = st.one_of(st.sampled_from(["m", "m", "m", "n"]), st.sampled_from(["other", 7, None, {"m": 1}]))
_EVENT = st.fixed_dictionaries({"model": _MODEL}, optional=_FIELD)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_EVENT.map(orjson.dumps), st.sampled_from([b"{", b"[1]", b"x" * 300])), max_size=12))
def test_column_decoding_equals_line_by_line_decoding(lines: list[bytes]) -> None:
    dec = EventDecoder({"m": ["inputs.x", "inputs.c", "outputs.probs", "outputs.score"], "n": ["inputs.z"]}, 200,
                       ts_min=1e9, ts_max=2e9)
    got, want = dec.decode(lines), dec._decode_lines(lines, None)
    assert got.batches == want.batches and got.ids == want.ids and got.accepted == want.accepted
    assert [(r.raw, r.reason, r.detail, r.model) for r in got.rejected] == \
        [(r.raw, r.reason, r.detail, r.model) for r in want.rejected]


def test_clean_batches_take_the_column_path() -> None:
    dec = EventDecoder({"m": ["inputs.x", "outputs.probs"]}, 1000)
    clean = [orjson.dumps({"model": "m", "ts": 1e9 + i, "id": i, "inputs": {"x": i}, "outputs": {"probs": {"a": 1}}})
             for i in range(5)]
    assert dec._decode_columns(clean) is not None
    assert dec._decode_columns([*clean, b'{"model": "m", "inputs": {"x": [1]}}']) is None
