"""The demo's stored windows and alerts, pinned: a refactor that changes them fails here.

`tests/golden/demo.json` holds every window result the demo stores and `alerts list --json`
(`created_at` dropped: wall-clock time). Ids, states, window indices, flagged features and every
other string or integer must match exactly; floats within a relative tolerance of 1e-6 (BLAS and
libm may round the last digits differently on another machine). A change that alters windows or
alerts on purpose regenerates the file with `CAREFUL_MONITOR_REGENERATE_GOLDEN=1 pytest
tests/e2e/test_demo_golden.py` and says why in its issue note.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).parents[1] / "golden" / "demo.json"
REL_TOL = 1e-6


def _cm(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREFUL_MONITOR_")}
    return subprocess.run([sys.executable, "-m", "careful_monitor.cli", *args], capture_output=True, text=True,
                          env=env, timeout=300, check=False)


def _demo_outputs(workdir: Path) -> dict[str, Any]:
    r = _cm("demo", "--workdir", str(workdir), "--port", "0")
    assert r.returncode == 0, r.stderr
    cfg = workdir / "config.yaml"
    alerts = _cm("alerts", "list", "--json", "--config", str(cfg))
    assert alerts.returncode == 0, alerts.stderr
    listed = json.loads(alerts.stdout)
    for a in listed:
        a.pop("created_at")
    from careful_monitor.config import load_config
    from careful_monitor.store import Store

    with Store(load_config(cfg, environ={}).store_url) as store:
        windows = store.last_windows("ticket-router", 100_000)
    return {"windows": windows, "alerts": listed}


def _diff(got: Any, want: Any, path: str = "$") -> list[str]:
    if isinstance(want, dict) and isinstance(got, dict):
        out = [f"{path}: keys {sorted(set(got) ^ set(want))} differ"] if set(got) != set(want) else []
        return out + [d for k in sorted(set(got) & set(want)) for d in _diff(got[k], want[k], f"{path}.{k}")]
    if isinstance(want, list) and isinstance(got, list):
        if len(got) != len(want):
            return [f"{path}: {len(got)} items, golden has {len(want)}"]
        return [d for i, (g, w) in enumerate(zip(got, want, strict=True)) for d in _diff(g, w, f"{path}[{i}]")]
    if isinstance(want, float) and isinstance(got, int | float) and not isinstance(got, bool):
        return [] if math.isclose(got, want, rel_tol=REL_TOL, abs_tol=1e-12) else [f"{path}: {got!r} != {want!r}"]
    return [] if got == want and type(got) is type(want) else [f"{path}: {got!r} != {want!r}"]


def test_demo_matches_golden_file(tmp_path: Path) -> None:
    got = _demo_outputs(tmp_path / "demo")
    if os.environ.get("CAREFUL_MONITOR_REGENERATE_GOLDEN") == "1" or not GOLDEN.exists():
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    want = json.loads(GOLDEN.read_text())
    assert [w["window"] for w in got["windows"]] == list(range(20))
    assert [a["alert_id"] for a in got["alerts"]] == ["ticket-router:tickets-synth-collapsed:10:retire_recommended"]
    diffs = _diff(got, want)
    assert not diffs, f"{len(diffs)} differences from {GOLDEN.name}, first: " + "; ".join(diffs[:10])


def test_diff_sees_what_matters() -> None:
    assert _diff({"a": [1.0, "x"]}, {"a": [1.0 + 1e-9, "x"]}) == []
    assert _diff({"a": [1.0, "x"]}, {"a": [1.001, "x"]})
    assert _diff({"a": 1}, {"a": 1.0}) == []  # JSON may write 1.0 as 1 after rounding
    assert _diff({"a": "ok"}, {"a": "watch"})
    assert _diff({"a": [1]}, {"a": [1, 2]})
    assert _diff({"a": 1, "b": 2}, {"a": 1})
