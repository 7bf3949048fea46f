"""Evidently's default drift test on the same seeded streams as `careful-monitor bench --quality`.

Evidently 0.7 needs pandas<3 and its own environment (PEERS.md), so this script runs in two parts:
    .venv/bin/python benchmarks/evidently_peer.py write DIR          # our env: the streams as Parquet
    .cache/evidently-venv/bin/python benchmarks/evidently_peer.py score DIR   # Evidently's env
    .venv/bin/python benchmarks/evidently_peer.py report DIR         # the table, beside careful-monitor
Install Evidently's env with:
    python3 -m venv .cache/evidently-venv && .cache/evidently-venv/bin/pip install "evidently>=0.7,<0.8" "pandas<3"
Evidently's default (DataDriftPreset): per column, Wasserstein (normed) / Jensen-Shannon / chi-square /
KS chosen by type and size, threshold 0.1; the dataset drifts when half the columns drift. Text is left out.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SCENARIOS = {"stationary": 100, "mean_shift_0.25": 5, "variance_0.7": 6, "correlation_0.6": 5, "shift_0.02_at_50k": 1}


def write(out: Path) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from careful_monitor.bench import quality as q

    out.mkdir(parents=True, exist_ok=True)
    world = q.World()

    def save(name: str, cols: dict) -> None:
        cols = {k: v for k, v in cols.items() if k != "inputs.t"}
        pq.write_table(pa.table(cols), out / f"{name}.parquet")

    rng = np.random.default_rng(11)
    save("reference", world.columns(rng, 20_000))
    for w in range(SCENARIOS["stationary"]):
        save(f"stationary_{w}", world.columns(rng, 1000))
    for w in range(SCENARIOS["mean_shift_0.25"]):
        c = world.columns(rng, 1000)
        c["inputs.x0"] = (np.array(c["inputs.x0"]) + 0.25).tolist()
        save(f"mean_shift_0.25_{w}", c)
    for w in range(SCENARIOS["variance_0.7"]):
        save(f"variance_0.7_{w}", world.columns(rng, 1000, sd=0.7 ** 0.5))
    for w in range(SCENARIOS["correlation_0.6"]):
        save(f"correlation_0.6_{w}", world.columns(rng, 1000, corr=0.6))
    save("shift_0.02_at_50k_0", world.columns(rng, 50_000, shift=0.02, shift_cols=q.NUMERIC))
    # careful-monitor on exactly these windows
    mon_results = {}
    import pyarrow.parquet as pq2

    for scen, n in SCENARIOS.items():
        size = 50_000 if scen.startswith("shift_0.02") else 1000
        mon = world.monitor(window_size=size, min_size=min(200, size))
        flags = []
        for w in range(n):
            t = pq2.read_table(out / f"{scen}_{w}.parquet").to_pydict()
            t["inputs.t"] = world.columns(np.random.default_rng(w), size)["inputs.t"]  # text from the anchor law
            o = mon.process(q._batch(t, w * size), now=0.0)[0]
            flags.append({"flagged": o.result.flagged, "features": list(o.result.flagged_features)})
        mon_results[scen] = flags
    (out / "careful_monitor.json").write_text(json.dumps(mon_results))


def score(out: Path) -> None:
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref = pd.read_parquet(out / "reference.parquet")
    res = {}
    for scen, n in SCENARIOS.items():
        rows = []
        for w in range(n):
            cur = pd.read_parquet(out / f"{scen}_{w}.parquet")
            d = Report([DataDriftPreset()]).run(cur, ref).dict()
            count = d["metrics"][0]["value"]
            drifted = [m["config"]["column"] for m in d["metrics"][1:]
                       if m["config"].get("type", "").endswith("ValueDrift") and m["value"] >= m["config"]["threshold"]]
            rows.append({"dataset_drift": count["share"] >= 0.5, "columns": drifted})
        res[scen] = rows
    (out / "evidently.json").write_text(json.dumps(res))


def report(out: Path) -> None:
    cm = json.loads((out / "careful_monitor.json").read_text())
    ev = json.loads((out / "evidently.json").read_text())

    def first(rows, key):
        return next((i + 1 for i, r in enumerate(rows) if r[key]), None)

    print(f"{'scenario':<28} {'careful-monitor (window flagged)':<40} "
          "Evidently DataDriftPreset (any column / dataset drift)")
    for scen in SCENARIOS:
        c, e = cm[scen], ev[scen]
        if scen == "stationary":
            cs = f"{sum(r['flagged'] for r in c)} of {len(c)} windows flagged"
            es = (f"{sum(bool(r['columns']) for r in e)} of {len(e)} windows with a drifted column, "
                  f"{sum(r['dataset_drift'] for r in e)} with dataset drift")
        elif scen.startswith("shift_0.02"):
            cs = f"{'flagged' if c[0]['flagged'] else 'not flagged'}"
            es = f"{len(e[0]['columns'])} columns drifted, dataset drift {e[0]['dataset_drift']}"
        else:
            cs = f"first flagged in window {first(c, 'flagged')}"
            es = (f"first column in window {next((i + 1 for i, r in enumerate(e) if r['columns']), None)}, "
                  f"dataset drift in {first(e, 'dataset_drift')}")
        print(f"{scen:<28} {cs:<40} {es}")


if __name__ == "__main__":
    {"write": write, "score": score, "report": report}[sys.argv[1]](Path(sys.argv[2]))
