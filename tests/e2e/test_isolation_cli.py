"""`careful-monitor datasets isolation` as CI runs it (issue 10, item 3): exit 3 on contamination, 2 on bad config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.e2e.test_cli import cm
from tests.unit.test_isolation import text_rows, texts, write_set


def test_isolation_gates_ci_with_exit_3(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"""
models:
  m: {{anchor: train, training_mix: {{train: 1.0}}, evaluation: [eval]}}
store: {{url: "sqlite:///{tmp_path / 'careful.db'}"}}
""")
    rng = np.random.default_rng(11)
    train = text_rows(texts(rng, 400), rng)
    write_set(tmp_path, "train", "real", train)
    write_set(tmp_path, "eval", "evaluation", train[:40] + text_rows(texts(rng, 360), rng))

    help_text = cm("datasets", "isolation", "--help").stdout.decode()
    assert "3 check failed" in help_text and "isolation.max_rate" in help_text

    assert cm("datasets", "register", "--config", str(cfg), str(tmp_path / "train.yaml")).returncode == 0
    r = cm("datasets", "isolation", "--config", str(cfg))
    assert r.returncode == 2 and b"models.m.evaluation" in r.stderr and b"'eval'" in r.stderr, r.stderr.decode()

    r = cm("datasets", "register", "--config", str(cfg), str(tmp_path / "eval.yaml"))
    assert r.returncode == 0, r.stderr.decode()  # registration warns, never refuses
    assert b"warning: isolation of eval: 10.00% of its rows are in train" in r.stdout, r.stdout.decode()

    r = cm("datasets", "isolation", "--config", str(cfg), "--json")
    assert r.returncode == 3, r.stderr.decode()
    [pair] = json.loads(r.stdout)
    assert (pair["evaluation"], pair["dataset"], pair["rows_checked"], pair["exact"]) == ("eval", "train", 400, 40)
    assert pair["rate"] == 0.1 and pair["failed"] and pair["examples"]["exact"] == list(range(1, 11))
    assert b"isolation check failed" in r.stderr and b"eval vs train at 10.00%" in r.stderr

    r = cm("datasets", "isolation", "--config", str(cfg), "--model", "m",
           env={"CAREFUL_MONITOR_ISOLATION__MAX_RATE": "0.2"})
    assert r.returncode == 0, r.stderr.decode()
    assert b"eval vs train: 400 rows checked, 40 exact, 0 near" in r.stdout

    r = cm("datasets", "isolation", "--config", str(cfg), "--model", "nope")
    assert r.returncode == 2 and b"'nope'" in r.stderr
