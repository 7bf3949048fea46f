"""The plot data of an alert's evidence: the live window against the anchor and the blamed synthetic set.

Built when the alert is stored, from what is already computed: the window result's `counts` (the
window's histogram on the anchor's grid per flagged feature) and the references' stored histograms
on the same grid. It is stored with the alert, so its page renders after the window rows are pruned
(`store.retention_days`) and after a dataset is re-registered; nothing is recomputed for display.

One plot per evidence feature:
`{"feature", "kind", "labels": [bin or category names], "anchor": [shares], "window": [shares],
"synthetic": [shares] | null, "n_window": events}`; text keeps the `TEXT_TOKENS` tokens whose share
moved most, plus "(other)". Shares are rounded to 5 decimals. When `synthetic` is null the document
says why in `synthetic_absent` (one of `ABSENT_REASONS`; alerts stored before it was kept lack it).

The window-level joint tests (feature `joint`: `joint` and `mmd`) have no histogram: `joint_trend`
gives their effect per recent window beside its floor, from the window results' `tests` and the
alert's own evidence (kept with the alert, so its window is drawn after the window rows are pruned).

>>> import numpy as np
>>> from careful_monitor.engine.profile import build_profile
>>> rng = np.random.default_rng(0)
>>> anchor = build_profile("real", "real", {"inputs.x": rng.normal(size=2000).tolist()}, rng=rng, bins=4)
>>> grid = len(anchor.features["inputs.x"].counts)
>>> (p,) = plots_for({"inputs.x": (10,) + (0,) * (grid - 1)}, ["inputs.x"], anchor, None)
>>> p["kind"], len(p["labels"]) == grid, p["window"][0], p["synthetic"]
('numeric', True, 1.0, None)
>>> p["synthetic_absent"]
'no_blamed_set'
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from careful_monitor.engine.column import reference_counts
from careful_monitor.engine.comparisons.catalogue import EFFECT_KEYS
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
#: why a plot has no synthetic series: no set is blamed (anchor_stale), the blamed set has no such
#: feature (an output its data lacks), its histogram is on another grid, or (older alerts) not stored
ABSENT_REASONS = ("no_blamed_set", "feature_missing", "grid_mismatch", "not_stored")
#: the feature name window-level tests report under
JOINT = "joint"


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


def plot_for(feature: str, counts: Sequence[int], anchor: FeatureProfile, synthetic: FeatureProfile | None,
             *, absent: str = "feature_missing") -> dict[str, Any] | None:
    """One feature's plot, or None when the stored counts do not fit the anchor's grid (a re-binned anchor).

    `absent`: why `synthetic` is None (`ABSENT_REASONS`), stored as `synthetic_absent`.
    """
    aref = reference_counts(anchor)
    if len(counts) != len(aref):
        return None
    win, anc = _shares(counts), _shares(aref)
    syn = None
    if synthetic is not None:
        sref = reference_counts(synthetic)
        syn = _shares(sref) if len(sref) == len(aref) else None
        absent = "grid_mismatch"
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

    doc = {"feature": feature, "kind": kind, "labels": [labels[i] for i in keep.tolist()],
           "anchor": pick(anc), "window": pick(win), "synthetic": None if syn is None else pick(syn),
           "n_window": int(np.sum(counts))}
    if syn is None:
        doc["synthetic_absent"] = absent
    return doc


def plots_for(counts: Mapping[str, Sequence[int]], features: Sequence[str], anchor: ReferenceProfile,
              synthetic: ReferenceProfile | None) -> list[dict[str, Any]]:
    """The plots of `features` (an alert's evidence features, in order) that the window counted."""
    out = []
    for f in dict.fromkeys(features):
        aprof = anchor.features.get(f)
        if f not in counts or aprof is None:
            continue
        sprof = synthetic.features.get(f) if synthetic is not None else None
        p = plot_for(f, counts[f], aprof, sprof, absent="no_blamed_set" if synthetic is None else "feature_missing")
        if p is not None:
            out.append(p)
    return out


def with_absent_reason(plot: Mapping[str, Any], state: str) -> dict[str, Any]:
    """`plot` with `synthetic_absent` filled in for documents stored before it was kept."""
    out = dict(plot)
    if out.get("synthetic") is None and not out.get("synthetic_absent"):
        out["synthetic_absent"] = "no_blamed_set" if state == "anchor_stale" else "not_stored"
    return out


def joint_trend(windows: Sequence[Mapping[str, Any]], alert: Mapping[str, Any],
                min_effect: Mapping[str, float]) -> list[dict[str, Any]]:
    """The alert's window-level joint tests over `windows` (stored window results, oldest first).

    One document per test of feature `joint` in the alert's evidence, in evidence order:
    `{"feature": "joint", "test", "windows": [index], "effect", "statistic", "p_value": [value | None],
    "flagged": [bool | None], "floor": its policy.min_effect, "floor_key", "alert_window"}`; None where
    a window has no result for the test. The alert's own window comes from its evidence when its row is
    gone. [] when no joint test is evidence.

    >>> w = [{"window": 4, "tests": [{"feature": "joint", "reference": "a", "test": "mmd", "statistic": 30.0,
    ...                               "p_value": 0.2, "effect": 0.0, "flagged": False}]}]
    >>> a = {"window": 5, "evidence": [{"feature": "joint", "signal": "mmd", "value": 900.0, "p_value": 0.0,
    ...                                 "effect": 0.12}]}
    >>> (d,) = joint_trend(w, a, {"mmd": 0.01})
    >>> d["windows"], d["effect"], d["flagged"], d["floor"]
    ([4, 5], [0.0, 0.12], [False, True], 0.01)
    """
    tests = list(dict.fromkeys(e["signal"] for e in alert["evidence"] if e["feature"] == JOINT))
    if not tests:
        return []
    rows: dict[str, dict[int, tuple[float, float, float, bool]]] = {t: {} for t in tests}
    for w in windows:
        for t in w.get("tests") or []:
            if t["feature"] == JOINT and t["test"] in rows:
                rows[t["test"]][w["window"]] = (t["effect"], t["statistic"], t["p_value"], bool(t["flagged"]))
    for e in alert["evidence"]:
        if e["feature"] == JOINT:  # evidence is flagged by definition
            rows[e["signal"]].setdefault(alert["window"], (e["effect"], e["value"], e["p_value"], True))
    xs = sorted({w["window"] for w in windows} | {alert["window"]})
    out = []
    for t in tests:
        key = EFFECT_KEYS.get(t, t)
        got = [rows[t].get(x) for x in xs]
        out.append({"feature": JOINT, "test": t, "windows": xs,
                    "effect": [None if g is None else g[0] for g in got],
                    "statistic": [None if g is None else g[1] for g in got],
                    "p_value": [None if g is None else g[2] for g in got],
                    "flagged": [None if g is None else g[3] for g in got],
                    "floor": float(min_effect.get(key, 0.0)), "floor_key": key, "alert_window": alert["window"]})
    return out
