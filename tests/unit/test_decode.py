"""The event decoder: every kind of bad line is rejected with its reason; good lines pass exactly once."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from careful_monitor.sources.decode import EventDecoder, dead_letter_record, parse_ts

FEATURES = {"m": ["inputs.x", "inputs.c", "outputs.probs", "outputs.score"]}


def decoder(limit: int = 2000) -> EventDecoder:
    return EventDecoder(FEATURES, limit)


def good(i: int, **extra) -> bytes:
    ev = {"model": "m", "ts": 1000.0 + i, "model_version": 3, "inputs": {"x": i, "c": "a"},
          "outputs": {"probs": {"a": 0.9, "b": 0.1}, "score": 0.9}, **extra}
    return orjson.dumps(ev)


BAD = {
    b'{"model": "m", "inputs": {"x": 1': "decode",
    b"\xff\xfe not utf8": "decode",
    b"[1, 2, 3]": "schema",
    b'{"inputs": {"x": 1}}': "schema",
    b'{"model": 7}': "schema",
    b'{"model": "m", "inputs": {"x": [1, 2]}}': "schema",
    b'{"model": "m", "inputs": "x=1"}': "schema",
    b'{"model": "m", "ts": "yesterday"}': "schema",
    b'{"model": "m", "ts": true}': "schema",
    b'{"model": "m", "outputs": {"probs": {"a": "high"}}}': "schema",
    b'{"model": "m", "outputs": {"extra": {"a": 1}}}': "schema",
    b'{"model": "m", "model_version": {"v": 1}}': "schema",
    b'{"model": "other", "inputs": {"x": 1}}': "unknown_model",
    b'{"model": "m", "inputs": {"t": "' + b"x" * 3000 + b'"}}': "too_large",
}


def test_each_bad_line_has_its_reason_and_good_lines_pass_once() -> None:
    lines = []
    for i, (bad, _) in enumerate(BAD.items()):
        lines += [good(i), bad]
    d = decoder().decode(lines)
    assert [r.reason for r in d.rejected] == list(BAD.values())
    assert [r.raw for r in d.rejected] == list(BAD)  # unchanged
    batch = d.batches["m"]
    assert d.accepted == len(batch) == len(BAD)
    assert batch.columns["inputs.x"] == list(range(len(BAD)))
    assert batch.versions == ["3"] * len(BAD)
    assert batch.columns["outputs.probs"][0] == {"a": 0.9, "b": 0.1}
    assert batch.columns["inputs.c"][0] == "a"


def test_missing_features_are_null_and_unknown_fields_ignored() -> None:
    d = decoder().decode([b'{"model": "m", "ts": 5, "whatever": {"deep": [1]}, "inputs": {"x": null}}'])
    b = d.batches["m"]
    assert b.columns == {"inputs.x": [None], "inputs.c": [None], "outputs.probs": [None], "outputs.score": [None]}
    assert b.ts == [5.0] and not d.rejected


def test_ts_formats_and_fallback() -> None:
    assert parse_ts("2025-11-24T16:00:00Z") == 1_764_000_000.0
    assert parse_ts("2025-11-24T17:00:00+01:00") == 1_764_000_000.0
    assert parse_ts(12) == 12.0
    d = decoder().decode([b'{"model": "m"}', b'{"model": "m", "ts": 3}'], fallback_ts=[42.0, 43.0])
    assert d.batches["m"].ts == [42.0, 3.0]


def test_dead_letter_record_keeps_the_original() -> None:
    d = decoder().decode([b'{"model": "zz"}', b"\xff"])
    recs = [orjson.loads(dead_letter_record(r)) for r in d.rejected]
    assert recs[0] == {"reason": "unknown_model", "detail": "model 'zz' is not configured", "event": '{"model": "zz"}'}
    assert recs[1]["reason"] == "decode" and recs[1]["event_base64"] == "/w=="


json_values = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False)
                           | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
                           lambda inner: (st.lists(inner, max_size=3)
                                          | st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                           max_leaves=12)
events = st.fixed_dictionaries({"model": st.sampled_from(["m", "other", 3, None])},
                               optional={"ts": json_values, "inputs": json_values, "outputs": json_values,
                                         "model_version": json_values})


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=60) | events.map(orjson.dumps), max_size=12))
def test_property_every_line_accepted_or_rejected_once(lines) -> None:
    d = decoder(limit=200).decode(lines)
    assert d.accepted + len(d.rejected) == len(lines)
    assert {r.reason for r in d.rejected} <= {"decode", "schema", "unknown_model", "too_large"}
    for b in d.batches.values():
        assert all(len(col) == len(b) for col in b.columns.values())
