"""The demo's files: datasets in all three formats (JSONL, Parquet, CSV), their cards, the config and the stream."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import yaml

from careful_monitor.demo import scenario


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("wb") as fh:
        for r in rows:
            fh.write(orjson.dumps(r) + b"\n")


def _flat(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    header = ([f"inputs.{k}" for k in rows[0]["inputs"]] + [f"outputs.{k}" for k in rows[0]["outputs"] if k != "probs"]
              + [f"outputs.probs.{k}" for k in rows[0]["outputs"]["probs"]])
    body = [[*r["inputs"].values(), *(v for k, v in r["outputs"].items() if k != "probs"),
             *r["outputs"]["probs"].values()]
            for r in rows]
    return header, body


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    header, body = _flat(rows)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(body)


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    header, body = _flat(rows)
    cols = list(zip(*body, strict=False))
    pq.write_table(pa.table({h: list(c) for h, c in zip(header, cols, strict=False)}), path)


def write_scenario(workdir: Path, seed: int, windows: int) -> dict[str, Path]:
    """Write datasets + cards, config.yaml and events.jsonl; return their paths."""
    rng = np.random.default_rng(seed)
    ds = workdir / "datasets"
    _write_jsonl(ds / "tickets_real.jsonl", scenario.sample_rows(rng, 20_000, "anchor"))
    _write_parquet(ds / "tickets_synth_collapsed.parquet", scenario.sample_rows(rng, 8_000, "collapsed"))
    _write_csv(ds / "tickets_synth_faithful.csv", scenario.sample_rows(rng, 8_000, "faithful"))
    cards = {}
    for name, card in scenario.CARDS.items():
        path = ds / f"{name}.yaml"
        path.write_text(yaml.safe_dump(card, sort_keys=False))
        cards[name] = path
    config = workdir / "config.yaml"
    config.write_text("# written by careful-monitor demo\n" + yaml.safe_dump(scenario.config_dict(), sort_keys=False))
    events = scenario.live_events(rng, windows=windows)
    lines = [orjson.dumps(e) for e in events]
    bad = scenario.bad_lines(scenario.START_TS)
    for k, b in enumerate(bad):  # sprinkle one of each kind of bad line through the stream
        lines.insert(1500 + k * 2500, b)
    (workdir / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return {"config": config, "events": workdir / "events.jsonl", **{f"card:{k}": v for k, v in cards.items()}}
