"""The data-only codec of engine state: versioned JSON, never pickle.

A snapshot is the UTF-8 JSON of a mapping of plain values (numbers, strings, lists, maps; the open
window's raw values are JSON values already, since they were decoded from JSON events), tagged with
a format name and a version. Nothing in it can run code when read. A blob in another format, such
as the pickled snapshots of careful-monitor before 0.2, is refused with `StaleStateError`, whose
message names the command that drops it.

>>> blob = encode_state({"window_index": 3, "window": {"cols": {"inputs.x": [1.5, None, "a"]}}})
>>> decode_state(blob)["window"]["cols"]["inputs.x"]
[1.5, None, 'a']
>>> decode_state(b"\\x80\\x05K\\x01.")
Traceback (most recent call last):
...
careful_monitor.engine.state.StaleStateError: engine state was written by an older careful-monitor (a pickle snapshot), which is refused: run `careful-monitor db reset-state --model MODEL` to drop it (the next window starts empty; window numbering continues)
"""  # noqa: E501 - the doctest's expected exception message is one line

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

FORMAT = "careful-monitor/engine-state"
VERSION = 2  # 1 was the pickle snapshot


class StaleStateError(ValueError):
    """A stored engine snapshot that this version cannot (or must not) read."""


def encode_state(state: Mapping[str, Any]) -> bytes:
    """Encode one model's engine state; non-finite floats are kept (JSON's NaN/Infinity extension)."""
    return json.dumps({"format": FORMAT, "v": VERSION, **state}, separators=(",", ":"),
                      default=_plain).encode()


def decode_state(blob: bytes, model: str = "MODEL") -> dict[str, Any]:
    """Decode a snapshot written by `encode_state`; anything else raises StaleStateError naming the fix."""
    fix = (f"run `careful-monitor db reset-state --model {model}` to drop it "
           "(the next window starts empty; window numbering continues)")
    if blob[:1] == b"\x80":  # every pickle protocol >= 2 starts with PROTO (0x80)
        raise StaleStateError(f"engine state was written by an older careful-monitor (a pickle snapshot), "
                              f"which is refused: {fix}")
    try:
        state = json.loads(bytes(blob).decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise StaleStateError(f"engine state is not readable ({exc}): {fix}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise StaleStateError(f"engine state is not a careful-monitor snapshot: {fix}")
    if state.get("v") != VERSION:
        raise StaleStateError(f"engine state has version {state.get('v')}, this careful-monitor reads {VERSION}: {fix}")
    return state


def _plain(value: Any) -> Any:
    """numpy scalars and arrays (the only non-JSON values engine state holds) as plain values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return value
    raise TypeError(f"engine state holds a {type(value).__name__}, which the data-only codec cannot encode")
