"""Peak RSS and seconds of `careful-monitor datasets register` on a large JSONL of the demo's feature mix.

    .venv/bin/python benchmarks/registration_memory.py DIR [--rows 1000000] [--keep]

Writes DIR/big.jsonl (the demo anchor's law: three numeric inputs, two categorical, a free text of
10-40 words, the label, class probabilities and score), a card and a config whose model uses the
demo's feature kinds, then runs the whole registration command in a child process: reading, the
reference profile, the store and the isolation signatures that registration computes after storing.
Peak RSS is the child's own high-water mark (VmHWM); seconds are wall time, cpu_seconds user + system time. To measure
another checkout (the "before" of a change), put its package first: `PYTHONPATH=/old/tree python ...`.
About 380 bytes a row: 1,000,000 rows is ~380 MB, 2,700,000 rows ~1 GB. The data file is deleted
afterwards unless --keep (with --keep an existing DIR/big.jsonl is reused, whatever --rows says).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import yaml

from careful_monitor.demo import scenario

CHUNK = 50_000


def generate(path: Path, rows: int, seed: int = 0) -> int:
    """Write `rows` rows of the demo anchor's law with texts of 10-40 words; return the file size."""
    rng = np.random.default_rng(seed)
    law = dataclasses.replace(scenario.LAWS["anchor"], text_len=(10, 40))
    with path.open("wb") as fh:
        for lo in range(0, rows, CHUNK):
            part = scenario._rows(scenario.sample_columns(rng, min(CHUNK, rows - lo), law))
            fh.write(b"".join(orjson.dumps(r) + b"\n" for r in part))
    return path.stat().st_size


def write_card_and_config(d: Path) -> tuple[Path, Path]:
    card = d / "big.yaml"
    card.write_text(yaml.safe_dump({"name": "big", "role": "real", "purpose": "registration memory benchmark",
                                    "provenance": {"source": "generated"}, "data": "big.jsonl"}, sort_keys=False))
    cfg = d / "config.yaml"
    cfg.write_text(yaml.safe_dump({"models": {"m": {"anchor": "big", "features": dict(scenario.FEATURES)}},
                                   "store": {"url": f"sqlite:///{d / 'bench.db'}"}}, sort_keys=False))
    return card, cfg


# The registration runs in a child that reports its own peak RSS: VmHWM of /proc/self/status, the high-water
# mark of its own memory. (ru_maxrss of a child is no good here: Linux carries the parent's RSS at fork and
# exec into it, so a child of a large process, a test runner, reports at least the parent's size.)
CHILD = """
import sys
from careful_monitor.cli import main
try:
    main(["datasets", "register", "--config", sys.argv[1], "--by", "bench", sys.argv[2]])
except SystemExit as exc:
    if exc.code:
        raise
with open("/proc/self/status") as fh:
    print(next(line.split()[1] for line in fh if line.startswith("VmHWM:")))
"""


def measure(card: Path, cfg: Path) -> dict[str, float]:
    """Run `datasets register` in a child: its peak RSS (MB), wall seconds and CPU seconds (user + system;
    steadier than wall time on a shared machine)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(cfg), str(card)], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"registration failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    peak_kb = int(proc.stdout.split()[-1])
    return {"peak_rss_mb": round(peak_kb / 1024, 1), "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--keep", action="store_true", help="keep the generated data file")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    data = args.dir / "big.jsonl"
    size = data.stat().st_size if data.exists() and args.keep else generate(data, args.rows)
    card, cfg = write_card_and_config(args.dir)
    (args.dir / "bench.db").unlink(missing_ok=True)
    try:
        result = measure(card, cfg)
    finally:
        if not args.keep:
            data.unlink(missing_ok=True)
        (args.dir / "bench.db").unlink(missing_ok=True)
    print(json.dumps({"rows": args.rows, "file_mb": round(size / 1e6, 1), **result}))


if __name__ == "__main__":
    main()
