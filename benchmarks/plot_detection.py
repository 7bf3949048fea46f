"""Plots for docs/detection.md: signals over windows in the Gaussian, mixture and world-shift experiments.

Run: .venv/bin/python benchmarks/plot_detection.py   (writes docs/img/*.png; seeded, ~1 minute)
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from careful_monitor.bench import quality as q

OUT = Path(__file__).resolve().parents[1] / "docs" / "img"
CODES = {"ok": 0, "watch": 1, "retire_recommended": 2, "anchor_stale": 3}


def _states(ax, states, label):
    ax.step(range(len(states)), [CODES[s] for s in states], where="post", label=label)
    ax.set_yticks(list(CODES.values()), list(CODES))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    world = q.World()
    fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    for kind in ("replace", "accumulate"):
        s = q.signal_series(world, kind)
        axes[0].plot(s["variance_ratio"], label=f"{kind}: generation variance / anchor")
        axes[0].plot(np.array(s["spread_ratio"]) ** 2, "--",
                     label=f"{kind}: window spread_ratio^2 (mean of 20 features)")
        axes[1].plot(s["share_collapsed"], label=f"{kind}: share of the collapsed set")
        _states(axes[2], s["state_collapsed"], f"{kind}: state of the collapsed set")
    axes[0].axhline(0.7, color="grey", lw=0.5)
    axes[0].set_title("Recursive Gaussian fitting (n=1,000 per generation, 20 generations per window)")
    for ax in axes:
        ax.legend(fontsize=7)
    axes[2].set_xlabel("window (1,000 events)")
    fig.tight_layout()
    fig.savefig(OUT / "gaussian.png", dpi=110)

    m = q.mixture_chain()
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(m["series"]["tail_mass_ratio"], label="window tail_mass_ratio (vs anchor's 1 %/99 % tails)")
    ax.plot(np.array(m["series"]["generation_tail_mass"]) / 0.02, "--", label="generation's true tail mass / 0.02")
    ax.plot(m["series"]["spread_ratio"], label="window spread_ratio")
    for w, _d, st in m["alerts"]:
        ax.axvline(w, color="red", lw=0.8)
        ax.text(w, 1.05, st, color="red", fontsize=7)
    ax.set_title(f"Recursive Gaussian-mixture EM (every {m['stride']} generations per window)")
    ax.set_xlabel("window (1,000 events)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "mixture.png", dpi=110)

    s = q.signal_series(world, "world_shift")
    fig, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    axes[0].plot(s["flagged"], label="flagged features")
    axes[0].plot(np.array(s["affinity_collapsed"]) * 10, label="affinity to the collapsed set x10")
    axes[0].axvline(5, color="grey", lw=0.5)
    axes[0].legend(fontsize=7)
    axes[0].set_title("World shift at window 5: x10..x19 move +1 sd, toward no synthetic set")
    _states(axes[1], s["state_anchor"], "anchor")
    _states(axes[1], s["state_collapsed"], "collapsed set")
    axes[1].legend(fontsize=7)
    axes[1].set_xlabel("window (1,000 events)")
    fig.tight_layout()
    fig.savefig(OUT / "world_shift.png", dpi=110)
    print(f"wrote {', '.join(p.name for p in sorted(OUT.glob('*.png')))} to {OUT}")


if __name__ == "__main__":
    main()
