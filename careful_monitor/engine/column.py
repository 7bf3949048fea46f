"""One window's column of one feature, summarised once and shared by every test and reference."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
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
from careful_monitor.engine.stats import HistogramRow, histogram_tests
from careful_monitor.engine.text import distinct2, tokenize_many

_STR_OR_NONE = frozenset({str, type(None)})
_DICT = {dict}
_NUMBERS = frozenset({int, float})


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

    def histogram_tests(self, ref_counts: np.ndarray) -> HistogramRow:
        """Chi-square, PSI and JS against one reference's counts, once (shared by the chi2, PSI and JS comparisons).

        `score_histograms` fills this for every feature and reference of a window in one array
        computation; a column scored alone computes its own row here.
        """
        key = ("_hist", id(ref_counts))
        cached = self.extra.get(key)
        if cached is None:
            cached = self.extra[key] = histogram_tests(self.counts[None, :], ref_counts[None, :]).rows()[0]
        return cached

    def quantiles(self, points: int) -> np.ndarray:
        """Window quantiles at linspace(0, 1, points), by interpolation of the sorted values."""
        key = ("_q", points)
        cached = self.extra.get(key)
        if cached is None:
            pos = np.linspace(0.0, self.n - 1, points)
            cached = self.extra[key] = np.interp(pos, np.arange(self.n), self.x)
        return cached


def _probs_matrix(values: Sequence[Any]) -> np.ndarray | None:
    """Rows x labels of a column of non-empty probs maps with the same number of numeric values, read in
    one pass (`np.fromiter` over the chained values); None for any other column."""
    if not values or set(map(type, values)) != _DICT or not all(values):
        return None
    k = len(values[0])
    if set(map(len, values)) != {k} or not set(map(type, chain.from_iterable(map(dict.values, values)))) <= _NUMBERS:
        return None
    flat = np.fromiter(chain.from_iterable(map(dict.values, values)), dtype=float, count=k * len(values))
    return flat.reshape(len(values), k)


def probs_confidence(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, int, int]:
    """`outputs.probs` maps -> (confidence, entropy, nulls, mismatches): `profile.probs_to_arrays` without the top
    labels, which the window path never reads (the same rows dropped, the same arithmetic)."""
    mat = _probs_matrix(values)
    if mat is None:  # nulls, empty maps, ragged or non-numeric rows: the general path sorts them out
        conf, ent, _top, nulls, bad = probs_to_arrays(values)
        return conf, ent, nulls, bad
    s = mat.sum(axis=1)
    ok = np.isfinite(s) & (s > 0) & (mat >= 0).all(axis=1)
    p = mat[ok] / s[ok, None]
    conf = p.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    return conf, ent, 0, int((~ok).sum())  # no nulls in such a column; rows that are not probabilities are bad


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
        conf, ent, nulls, bad = probs_confidence(values)
        conf.sort()
        edges = anchor.confidence.edges
        counts = np.bincount(np.searchsorted(edges, conf, side="right"), minlength=len(edges) + 1)
        return WindowColumn(PROBS, len(conf), total, nulls, bad, conf, counts, {"entropy": ent},
                            scale=anchor.confidence.std or 1.0)
    if anchor.kind == CATEGORICAL:
        assert isinstance(anchor, CategoricalProfile)
        counts = np.zeros(len(anchor.categories) + 1, dtype=np.int64)
        if set(map(type, values)) <= _STR_OR_NONE:  # the usual column: Counter counts in C, no per-value str()
            found = Counter(values)
            nulls = found.pop(None, 0)
            idx = _category_index(anchor)
            other = len(anchor.categories)
            for cat, k in found.items():
                counts[idx.get(cat, other)] += k
            return WindowColumn(CATEGORICAL, total - nulls, total, nulls, 0, counts=counts)
        present = [str(v) for v in values if v is not None and not isinstance(v, (dict, list))]
        bad = sum(1 for v in values if isinstance(v, (dict, list)))
        if present:
            cats, cnt = np.unique(np.array(present, dtype=str), return_counts=True)
            idx = _category_index(anchor)
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


def _category_index(anchor: CategoricalProfile) -> dict[str, int]:
    """The anchor's category -> position map, built once per profile (kept on it, as its CDF limits are)."""
    idx = anchor.__dict__.get("_category_index")
    if idx is None:
        idx = anchor.__dict__["_category_index"] = anchor.index()
    return idx


def stack_values(cols: Sequence[WindowColumn]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The columns' sorted values end to end, for one array computation over all of them:
    (values, each column's start, each column's size, each value's column)."""
    n = np.array([c.n for c in cols], dtype=np.int64)
    starts = np.zeros(len(cols), dtype=np.int64)
    np.cumsum(n[:-1], out=starts[1:])
    return np.concatenate([c.x for c in cols]), starts, n, np.repeat(np.arange(len(cols)), n)


def count_outside(cols: Sequence[WindowColumn], lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """How many values of each column lie below its `lo` or above its `hi` (every column at once)."""
    x, starts, _, seg = stack_values(cols)
    out = (x < lo[seg]) | (x > hi[seg])
    return np.add.reduceat(out, starts).astype(np.int64)


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


def score_histograms(pairs: Sequence[tuple[WindowColumn, np.ndarray]]) -> None:
    """Chi-square, PSI and JS of every (window column, reference counts) pair of a window in one computation.

    The pairs' histograms are stacked into one P x B matrix per side (B the longest grid; shorter ones
    padded with empty bins, which change no statistic), scored by `stats.histogram_tests` with one
    `chdtrc` call, and each column keeps its rows for the chi2, PSI and JS comparisons.
    """
    if not pairs:
        return
    width = max(len(c.counts) for c, _ in pairs)
    w = np.zeros((len(pairs), width))
    r = np.zeros((len(pairs), width))
    for i, (c, rc) in enumerate(pairs):
        w[i, :len(c.counts)] = c.counts
        r[i, :len(rc)] = rc
    for (c, rc), row in zip(pairs, histogram_tests(w, r).rows(), strict=True):
        c.extra[("_hist", id(rc))] = row
