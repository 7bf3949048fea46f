"""`careful-monitor bench --peers`: the daemon window beside Evidently's and nannyml's window drift, one run.

The peers need stacks the service does not (pandas, plotly, ...), so `make bench-peers` installs each in a
venv of its own under `.cache/peers/` (pinned by `benchmarks/peers/*-requirements.txt`), and each peer's
runner (`benchmarks/peers/<peer>_window.py`) runs in its own venv's python on the same seeded workload,
read from an .npz this module writes. Rounds interleave careful-monitor and the peers, rotating the order,
so that a shared machine's load falls on all of them; every figure is the median over rounds, and each
ratio (peer ms / careful-monitor ms) is also given per round. Not part of CI or the test suite.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from careful_monitor.bench.speed import _daemon_window, _median_ms, window_workload
from careful_monitor.bench.workload import Echo
from careful_monitor.errors import CarefulError, PeersNotInstalledError

#: the checkout this module runs from (the peers' venvs and runners exist only in a source checkout)
ROOT = Path(__file__).resolve().parents[2]
#: careful-monitor's full daemon window must be at least this many times faster than Evidently's preset
EVIDENTLY_TARGET = 300.0
#: the peers' usage analytics off: nannyml's switch, Evidently's and iterative-telemetry's
PEER_ENV = {"NML_DISABLE_USAGE_LOGGING": "1", "DO_NOT_TRACK": "1", "ITERATIVE_DO_NOT_TRACK": "1"}


@dataclass(frozen=True)
class Peer:
    """One peer: its venv under `.cache/peers/<name>` and its runner under `benchmarks/peers/`."""

    name: str
    repeats: int  # timed calls per round (after the runner's one warm-up call)
    quick_repeats: int

    def python(self, root: Path) -> Path:
        return root / ".cache" / "peers" / self.name / "bin" / "python"

    def stamp(self, root: Path) -> Path:
        return root / ".cache" / "peers" / self.name / ".installed"

    def runner(self, root: Path) -> Path:
        return root / "benchmarks" / "peers" / f"{self.name}_window.py"


PEERS = (Peer("evidently", repeats=3, quick_repeats=1), Peer("nannyml", repeats=20, quick_repeats=5))


def check_installed(root: Path | None = None, peers: tuple[Peer, ...] = PEERS) -> None:
    """Raise PeersNotInstalledError, one line naming the fix, unless every peer's venv and runner are there."""
    root = root or ROOT
    missing = [str(p.stamp(root).parent.relative_to(root)) for p in peers
               if not (p.stamp(root).is_file() and p.python(root).is_file() and p.runner(root).is_file())]
    if missing:
        raise PeersNotInstalledError(f"peer venvs not installed ({', '.join(missing)}): "
                                     f"run `make bench-peers` in {root} first")


def run_peer(peer: Peer, workload: Path, repeats: int, root: Path | None = None) -> dict[str, Any]:
    """Run one peer's runner in its own venv; its JSON line ({"peer", "version", "median_ms", ...})."""
    root = root or ROOT
    cmd = [str(peer.python(root)), str(peer.runner(root)), str(workload), "--repeats", str(repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **PEER_ENV}, timeout=1800,
                          check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise CarefulError(f"{peer.name} runner failed (exit {proc.returncode}): {last}")
    result: dict[str, Any] = orjson.loads(lines[-1])
    return result


def run_peers(*, quick: bool = False, rounds: int | None = None, echo: Echo = print,
              root: Path | None = None) -> dict[str, Any]:
    """careful-monitor's daemon window and each peer's window drift, in interleaved rounds; ms and ratios."""
    root = root or ROOT
    check_installed(root)
    say = echo or (lambda s: None)
    rounds = rounds or (1 if quick else 3)
    ours_repeats = 10 if quick else 30
    ref, win, names = window_workload()
    close_window = _daemon_window(ref, win, names)
    load_start = os.getloadavg()
    say(f"peers: reference 10,000 x 20 numeric, window 1,000 x 20 (+0.5 sd in 5 columns), {rounds} "
        f"interleaved round(s); load average {load_start[0]:.2f} on {os.cpu_count()} cpus")
    ours: list[float] = []
    runs: dict[str, list[dict[str, Any]]] = {p.name: [] for p in PEERS}
    with tempfile.TemporaryDirectory(prefix="careful-peers-") as tmp:
        workload = Path(tmp) / "window.npz"
        np.savez(workload, reference=ref, window=win, names=np.array(names))
        order: list[Peer | None] = [None, *PEERS]  # None: careful-monitor
        for r in range(rounds):
            for item in order[r % len(order):] + order[:r % len(order)]:  # rotate who goes first
                if item is None:
                    ours.append(_median_ms(close_window, ours_repeats))
                    say(f"  round {r + 1}: careful-monitor daemon window {ours[-1]:.2f} ms")
                else:
                    out = run_peer(item, workload, item.quick_repeats if quick else item.repeats, root)
                    runs[item.name].append(out)
                    say(f"  round {r + 1}: {out['peer']} {out['median_ms']:,.1f} ms")
    ours_ms = statistics.median(ours)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load_avg_start": list(load_start), "load_avg_end": list(os.getloadavg())},
        "workload": {"reference_rows": 10_000, "window_rows": 1_000, "features": 20, "shifted_features": 5},
        "rounds": rounds,
        "careful_monitor_daemon_window_ms": ours_ms,
        "careful_monitor_daemon_window_round_ms": ours,
        "peers": {},
    }
    say(f"  careful-monitor daemon window (anchor + 2 synthetic, every test, joint, BH, attribution): "
        f"{ours_ms:.2f} ms")
    for peer in PEERS:
        outs = runs[peer.name]
        peer_ms = statistics.median(o["median_ms"] for o in outs)
        per_round = [o["median_ms"] / mine for o, mine in zip(outs, ours, strict=True)]
        entry = {"peer": outs[0]["peer"], "version": outs[0]["version"], "median_ms": peer_ms,
                 "round_ms": [o["median_ms"] for o in outs], "ratio": peer_ms / ours_ms,
                 "round_ratios": per_round, "repeats_per_round": outs[0]["repeats"],
                 "details": {k: v for k, v in outs[-1].items()
                             if k not in ("peer", "version", "median_ms", "repeats", "times_ms")}}
        if peer.name == "evidently":
            entry["target_ratio"] = EVIDENTLY_TARGET
            entry["meets_target"] = entry["ratio"] >= EVIDENTLY_TARGET
        results["peers"][peer.name] = entry
        target = (f", target >= {EVIDENTLY_TARGET:.0f}x: {'met' if entry['meets_target'] else 'NOT met'}"
                  if "target_ratio" in entry else "")
        say(f"  {entry['peer']} {entry['version']}: {peer_ms:,.1f} ms = {entry['ratio']:,.1f}x careful-monitor "
            f"(rounds {min(per_round):,.1f}-{max(per_round):,.1f}x{target})")
    end = results["machine"]["load_avg_end"]
    say(f"  load average at the end {end[0]:.2f} (python {sys.version.split()[0]})")
    return results
