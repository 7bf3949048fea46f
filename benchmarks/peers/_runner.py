"""What both peer runners share: load the seeded workload, time the peer's own window drift, print JSON.

Runs under a peer's venv (`make bench-peers`), so it needs only numpy and the standard library.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def parse_args(doc: str | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("workload", help=".npz with `reference` (rows x features), `window` and `names`")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs after one warm-up run")
    return parser.parse_args()


def load(path: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    with np.load(path) as npz:
        return npz["reference"], npz["window"], [str(n) for n in npz["names"]]


def timed(one_window: Callable[[], Any], repeats: int) -> list[float]:
    """Warm up once, then the ms of each of `repeats` calls."""
    one_window()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        one_window()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def emit(peer: str, version: str, times: list[float], **extra: Any) -> None:
    """Print {"peer", "version", "median_ms", "repeats", "times_ms", ...extra} as one JSON line."""
    print(json.dumps({"peer": peer, "version": version, "median_ms": statistics.median(times),
                      "repeats": len(times), "times_ms": times, **extra}))
