"""Evidently's window drift on the bench workload: Report([DataDriftPreset()]).run(current, reference).

Run with Evidently's own venv (`make bench-peers`); `careful-monitor bench --peers` calls it:
    .cache/peers/evidently/bin/python benchmarks/peers/evidently_window.py WORKLOAD.npz --repeats 5
Each timed call is what a user of Evidently does per window: build the report and run it, reference
DataFrame and window DataFrame in, the per-column drift tests of the preset's defaults out.
"""

from __future__ import annotations

import os
from typing import Any

# Evidently's telemetry (and iterative-telemetry's, which it uses) is off when these are set at all.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("ITERATIVE_DO_NOT_TRACK", "1")

import evidently
import pandas as pd
from _runner import emit, load, parse_args, timed
from evidently import Report
from evidently.presets import DataDriftPreset


def main() -> None:
    args = parse_args(__doc__)
    ref, win, names = load(args.workload)
    reference = pd.DataFrame(ref, columns=names)
    current = pd.DataFrame(win, columns=names)
    snapshots: list[Any] = []

    def one_window() -> None:
        snapshots.append(Report([DataDriftPreset()]).run(current, reference))

    times = timed(one_window, args.repeats)
    drifted = int(snapshots[-1].dict()["metrics"][0]["value"]["count"])  # outside the timing
    emit("evidently DataDriftPreset", evidently.__version__, times,
         pandas=pd.__version__, drifted_columns=drifted)


if __name__ == "__main__":
    main()
