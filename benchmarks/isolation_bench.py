"""Evaluation isolation at scale: registration-time signatures and `datasets isolation`, timed separately.

    .venv/bin/python benchmarks/isolation_bench.py DIR [--train 1000000] [--eval 100000]

Writes a training set and an evaluation set (JSONL, texts of 40-60 Zipf-distributed words plus a
number), the evaluation set with 5 % one-word variants and 2 % exact copies of training rows; then, each
in its own process so peak RSS is its own:
1. `sign`: what registration adds per dataset (careful_monitor.isolation.store_signatures: the file
   streamed in chunks, row hashes, MinHash signatures and sampled 13-grams written to a SQLite store);
2. `careful-monitor datasets isolation --json` on that store (the LSH join, from the stored signatures).
The reference profile that registration also builds is not part of this benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

VOCAB_SIZE = 20_000


def generate(d: Path, n_train: int, n_eval: int, seed: int = 0) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(VOCAB_SIZE)], dtype=object)
    p = 1.0 / np.arange(1, VOCAB_SIZE + 1) ** 0.8
    p /= p.sum()
    cdf = np.cumsum(p)

    def batch(n: int) -> list[str]:
        lengths = rng.integers(40, 61, size=n)
        idx = np.minimum(np.searchsorted(cdf, rng.random(int(lengths.sum()))), VOCAB_SIZE - 1)
        words = vocab[idx]
        ends = np.cumsum(lengths)
        return [" ".join(words[e - k:e]) for e, k in zip(ends.tolist(), lengths.tolist(), strict=True)]

    n_near, n_exact = n_eval * 5 // 100, n_eval * 2 // 100
    picks = set(rng.choice(n_train, size=n_near + n_exact, replace=False).tolist())
    planted: list[str] = []
    with (d / "train.jsonl").open("wb") as fh:
        for lo in range(0, n_train, 100_000):
            ts = batch(min(100_000, n_train - lo))
            for i, t in enumerate(ts, lo):
                if i in picks:
                    planted.append(t)
            fh.write(b"".join(orjson.dumps({"inputs": {"text": t, "amount": 1.0}}) + b"\n" for t in ts))
    rng.shuffle(planted)  # type: ignore[arg-type]
    rows = []
    for t in planted[:n_near]:
        w = t.split()
        w[int(rng.integers(len(w)))] = "changed"
        rows.append(" ".join(w))
    rows += planted[n_near:]
    rows += batch(n_eval - len(rows))
    order = rng.permutation(len(rows))
    with (d / "eval.jsonl").open("wb") as fh:
        fh.write(b"".join(orjson.dumps({"inputs": {"text": rows[i], "amount": 1.0}}) + b"\n" for i in order))
    (d / "config.yaml").write_text(
        f"models:\n  m: {{anchor: train, training_mix: {{train: 1.0}}, evaluation: [eval]}}\n"
        f"store: {{url: 'sqlite:///{d / 'careful.db'}'}}\n")
    return {"near": n_near, "exact": n_exact}


def sign(d: Path, name: str, role: str) -> None:
    from careful_monitor import isolation
    from careful_monitor.config import load_config
    from careful_monitor.store import Store

    cfg = load_config(d / "config.yaml", environ={})
    with Store(cfg.store_url) as store:
        path = d / f"{name}.jsonl"
        store.put_dataset(name=name, role=role, anchored_by=None, card={"name": name, "role": role},
                          profile=b"-", n_rows=0, data_sha256="-" * 64, by="bench")
        t0 = time.perf_counter()
        s = isolation.store_signatures(cfg, store, name, path, kinds={}, data_sha256="-" * 64)
        print(json.dumps({"rows": s.n_rows, "seconds": round(time.perf_counter() - t0, 1)}))


def _child(args: list[str]) -> tuple[float, float, str]:
    """Run a child; (seconds, its own peak RSS in MiB, its stdout)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        secs = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        if proc.returncode not in (0, 3):
            sys.exit(err.read().decode())
        return secs, usage.ru_maxrss / 1024, out.read().decode()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", type=Path)
    ap.add_argument("--train", type=int, default=1_000_000)
    ap.add_argument("--eval", type=int, default=100_000)
    ap.add_argument("--phase", choices=["all", "sign"], default="all")
    ap.add_argument("--name", default="")
    ap.add_argument("--role", default="real")
    a = ap.parse_args()
    a.dir.mkdir(parents=True, exist_ok=True)
    if a.phase == "sign":
        sign(a.dir, a.name, a.role)
        return
    (a.dir / "careful.db").unlink(missing_ok=True)
    t0 = time.perf_counter()
    truth = generate(a.dir, a.train, a.eval)
    print(f"generated {a.train} training and {a.eval} evaluation rows in {time.perf_counter() - t0:.0f}s")
    for name, role in (("train", "real"), ("eval", "evaluation")):
        secs, rss, out = _child([sys.executable, __file__, str(a.dir), "--phase", "sign", "--name", name,
                                 "--role", role])
        size = (a.dir / f"{name}.jsonl").stat().st_size / 2**20
        print(f"signatures of {name} ({size:.0f} MiB file): {json.loads(out)['seconds']}s "
              f"(process {secs:.0f}s), peak RSS {rss:.0f} MiB")
    secs, rss, out = _child([sys.executable, "-m", "careful_monitor.cli", "datasets", "isolation", "--json",
                             "--config", str(a.dir / "config.yaml")])
    [pair] = json.loads(out)
    print(f"datasets isolation (the whole command): {secs:.1f}s, peak RSS {rss:.0f} MiB")
    print(f"  found exact {pair['exact']} (planted {truth['exact']}), near {pair['near']} (planted {truth['near']}), "
          f"rate {pair['rate']:.4f} of {pair['rows_checked']} rows")
    print(f"  store {(a.dir / 'careful.db').stat().st_size / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
