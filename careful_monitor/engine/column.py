"""One window's column of one feature, summarised once and shared by every test and reference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from careful_monitor.engine.profile import (
    CATEGORICAL,
    NUMERIC,
    PROBS,
    TEXT,
    CategoricalProfile,
    FeatureProfile,
    NumericProfile,
    ProbsProfile,
    TextProfile,
    presence_counts,
    probs_to_arrays,
    to_float_array,
)
from careful_monitor.engine.text import distinct2, tokenize_many


@dataclass
class WindowColumn:
    """What the tests need of one feature in one window, on the anchor's grid."""

    kind: str
    n: int  # usable values
    total: int  # events in the window
    nulls: int
    mismatches: int
    x: np.ndarray = field(default_factory=lambda: np.empty(0))  # sorted values (numeric; confidence for probs)
    counts: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # anchor grid / categories / tokens
    extra: dict[str | tuple[str, int], Any] = field(default_factory=dict)  # also caches, e.g. ("_q", points)
    #: the anchor's sd of this feature (probs: of its confidence), the unit of distances such as
    #: Wasserstein against any reference; 1.0 where the anchor has none
    scale: float = 1.0

    @property
    def hist(self) -> np.ndarray:
        s = self.counts.sum()
        return self.counts / s if s else self.counts.astype(float)

    def ecdf_limits(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(distinct values, ECDF left limits, ECDF right limits) of the sorted values, once."""
        cached = self.extra.get("_ecdf")
        if cached is None:
            x, n = self.x, self.n  # already sorted: distinct values without another sort
            new = np.empty(n, dtype=bool)
            new[:1] = True
            np.not_equal(x[1:], x[:-1], out=new[1:])
            idx = np.flatnonzero(new)
            ends = np.append(idx[1:], n)
            cached = self.extra["_ecdf"] = (x[idx], idx / n, ends / n)
        return cached

    def chi2(self, ref_counts: np.ndarray) -> tuple[float, float, float, int]:
        """chi2_homogeneity against one reference, shared by the chi2, PSI and JS tests."""
        key = ("_chi2", id(ref_counts))
        cached = self.extra.get(key)
        if cached is None:
            from careful_monitor.engine.stats import chi2_homogeneity

            cached = self.extra[key] = chi2_homogeneity(self.counts, ref_counts)
        return cached

    def quantiles(self, points: int) -> np.ndarray:
        """Window quantiles at linspace(0, 1, points), by interpolation of the sorted values."""
        key = ("_q", points)
        cached = self.extra.get(key)
        if cached is None:
            pos = np.linspace(0.0, self.n - 1, points)
            cached = self.extra[key] = np.interp(pos, np.arange(self.n), self.x)
        return cached


def summarise(values: Sequence[Any], anchor: FeatureProfile) -> WindowColumn:
    """Summarise raw window values of one feature against the anchor's profile of it."""
    total = len(values)
    if anchor.kind == NUMERIC:
        assert isinstance(anchor, NumericProfile)
        x, nulls, bad = to_float_array(values)
        aligned = x if len(x) == total else None  # row-aligned copy for the joint test, when nothing was dropped
        x = np.sort(x)
        counts = np.bincount(np.searchsorted(anchor.edges, x, side="right"), minlength=len(anchor.edges) + 1)
        return WindowColumn(NUMERIC, len(x), total, nulls, bad, x, counts, {"aligned": aligned},
                            scale=anchor.std or 1.0)
    if anchor.kind == PROBS:
        assert isinstance(anchor, ProbsProfile)
        conf, ent, _top, nulls, bad = probs_to_arrays(values)
        conf.sort()
        edges = anchor.confidence.edges
        counts = np.bincount(np.searchsorted(edges, conf, side="right"), minlength=len(edges) + 1)
        return WindowColumn(PROBS, len(conf), total, nulls, bad, conf, counts, {"entropy": ent},
                            scale=anchor.confidence.std or 1.0)
    if anchor.kind == CATEGORICAL:
        assert isinstance(anchor, CategoricalProfile)
        present = [str(v) for v in values if v is not None and not isinstance(v, (dict, list))]
        bad = sum(1 for v in values if isinstance(v, (dict, list)))
        counts = np.zeros(len(anchor.categories) + 1, dtype=np.int64)
        if present:
            cats, cnt = np.unique(np.array(present, dtype=str), return_counts=True)
            idx = anchor.index()
            other = len(anchor.categories)
            pos = np.fromiter((idx.get(c, other) for c in cats.tolist()), dtype=np.int64, count=len(cats))
            np.add.at(counts, pos, cnt)
        return WindowColumn(CATEGORICAL, len(present), total, total - len(present) - bad, bad, counts=counts)
    if anchor.kind == TEXT:
        assert isinstance(anchor, TextProfile)
        texts = [v for v in values if isinstance(v, str)]
        nulls = sum(1 for v in values if v is None)
        toks = tokenize_many(texts)
        index = {w: i for i, w in enumerate(anchor.tokens)}
        other = len(anchor.tokens)
        counts = np.zeros(other + 1, dtype=np.int64)
        flat = np.fromiter((index.get(w, other) for t in toks for w in t), dtype=np.int64)
        if len(flat):
            counts = np.bincount(flat, minlength=other + 1)
        doc_len = np.fromiter((len(t) for t in toks), dtype=np.int64, count=len(toks))
        doc_freq, other_per_doc = presence_counts(flat, doc_len, other)
        return WindowColumn(TEXT, len(texts), total, nulls, total - len(texts) - nulls, counts=counts,
                            extra={"lengths": doc_len.astype(float), "distinct2": distinct2(toks),
                                   "doc_freq": doc_freq, "other_per_doc": other_per_doc,
                                   "token_lists": toks, "token_ids": flat})
    raise ValueError(f"unknown kind {anchor.kind}")


def reference_counts(ref: FeatureProfile) -> np.ndarray:
    """The reference's histogram counts on the anchor's grid (confidence bins for probs)."""
    if isinstance(ref, ProbsProfile):
        return ref.confidence.counts
    return ref.counts


def summarise_probs(parts: list[tuple[np.ndarray, np.ndarray, int, int]], anchor: ProbsProfile,
                    total: int) -> WindowColumn:
    """The probs column from confidence/entropy already computed batch by batch (same result as summarise)."""
    conf = np.concatenate([p[0] for p in parts]) if parts else np.empty(0)
    ent = np.concatenate([p[1] for p in parts]) if parts else np.empty(0)
    conf.sort()
    edges = anchor.confidence.edges
    counts = np.bincount(np.searchsorted(edges, conf, side="right"), minlength=len(edges) + 1)
    return WindowColumn(PROBS, len(conf), total, sum(p[2] for p in parts), sum(p[3] for p in parts), conf, counts,
                        {"entropy": ent}, scale=anchor.confidence.std or 1.0)
