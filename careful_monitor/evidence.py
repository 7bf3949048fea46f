"""The plot data of an alert's evidence: the live window against the anchor and the blamed synthetic set.

Built when the alert is stored, from what is already computed: the window result's `counts` (the
window's histogram on the anchor's grid per flagged feature) and the references' stored histograms
on the same grid. It is stored with the alert, so its page renders after the window rows are pruned
(`store.retention_days`) and after a dataset is re-registered; nothing is recomputed for display.

One plot per evidence feature:
`{"feature", "kind", "labels": [bin or category names], "anchor": [shares], "window": [shares],
"synthetic": [shares] | null, "n_window": events}`; text keeps the `TEXT_TOKENS` tokens whose share
moved most, plus "(other)". Shares are rounded to 5 decimals.

>>> import numpy as np
>>> from careful_monitor.engine.profile import build_profile
>>> rng = np.random.default_rng(0)
>>> anchor = build_profile("real", "real", {"inputs.x": rng.normal(size=2000).tolist()}, rng=rng, bins=4)
>>> grid = len(anchor.features["inputs.x"].counts)
>>> (p,) = plots_for({"inputs.x": (10,) + (0,) * (grid - 1)}, ["inputs.x"], anchor, None)
>>> p["kind"], len(p["labels"]) == grid, p["window"][0], p["synthetic"]
('numeric', True, 1.0, None)
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from careful_monitor.engine.column import reference_counts
from careful_monitor.engine.profile import (
    CategoricalProfile,
    FeatureProfile,
    NumericProfile,
    ProbsProfile,
    ReferenceProfile,
    TextProfile,
)

#: tokens kept in a text feature's plot (those whose share moved most between anchor and window)
TEXT_TOKENS = 15
#: categories kept in a categorical plot (most frequent in the anchor first), the rest summed into "(other)"
MAX_CATEGORIES = 30


def _shares(counts: Sequence[float] | np.ndarray) -> np.ndarray:
    c = np.asarray(counts, dtype=float)
    s = c.sum()
    return c / s if s else c


def _edge_labels(edges: np.ndarray) -> list[str]:
    e = [f"{x:.3g}" for x in edges.tolist()]
    if not e:
        return ["all"]
    return [f"< {e[0]}", *(f"{a} .. {b}" for a, b in itertools.pairwise(e)), f">= {e[-1]}"]


def _round(a: np.ndarray) -> list[float]:
    return [round(float(x), 5) for x in a]


def plot_for(feature: str, counts: Sequence[int], anchor: FeatureProfile,
             synthetic: FeatureProfile | None) -> dict[str, Any] | None:
    """One feature's plot, or None when the stored counts do not fit the anchor's grid (a re-binned anchor)."""
    aref = reference_counts(anchor)
    if len(counts) != len(aref):
        return None
    win, anc = _shares(counts), _shares(aref)
    syn = None
    if synthetic is not None:
        sref = reference_counts(synthetic)
        syn = _shares(sref) if len(sref) == len(aref) else None
    if isinstance(anchor, ProbsProfile | NumericProfile):
        edges = anchor.confidence.edges if isinstance(anchor, ProbsProfile) else anchor.edges
        labels = _edge_labels(np.asarray(edges))
        kind = "probs" if isinstance(anchor, ProbsProfile) else "numeric"
        keep = np.arange(len(labels))
    elif isinstance(anchor, CategoricalProfile | TextProfile):
        names = anchor.categories if isinstance(anchor, CategoricalProfile) else anchor.tokens
        kind = "categorical" if isinstance(anchor, CategoricalProfile) else "text"
        labels = [*names, "(other)"]
        if kind == "text":
            moved = np.abs(win[:-1] - anc[:-1])
            keep = np.sort(np.argsort(-moved, kind="stable")[:TEXT_TOKENS])
        else:
            keep = np.arange(min(len(names), MAX_CATEGORIES))
        keep = np.append(keep, len(labels) - 1)  # "(other)" keeps what is left out, so shares sum to 1
    else:  # pragma: no cover - every kind is handled above
        return None

    def pick(a: np.ndarray) -> list[float]:
        out = a[keep].copy()
        out[-1] = max(0.0, 1.0 - out[:-1].sum()) if kind in ("categorical", "text") and a.sum() else out[-1]
        return _round(out)

    return {"feature": feature, "kind": kind, "labels": [labels[i] for i in keep.tolist()],
            "anchor": pick(anc), "window": pick(win), "synthetic": None if syn is None else pick(syn),
            "n_window": int(np.sum(counts))}


def plots_for(counts: Mapping[str, Sequence[int]], features: Sequence[str], anchor: ReferenceProfile,
              synthetic: ReferenceProfile | None) -> list[dict[str, Any]]:
    """The plots of `features` (an alert's evidence features, in order) that the window counted."""
    out = []
    for f in dict.fromkeys(features):
        aprof = anchor.features.get(f)
        if f not in counts or aprof is None:
            continue
        sprof = synthetic.features.get(f) if synthetic is not None else None
        p = plot_for(f, counts[f], aprof, sprof)
        if p is not None:
            out.append(p)
    return out
