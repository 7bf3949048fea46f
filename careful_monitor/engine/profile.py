"""Reference profiles: compact, precomputed summaries of a dataset, one per feature.

A profile is computed once per reference at registration; every window is then compared with it
using vectorised numpy only. Numeric features are binned on the *anchor's* quantile grid (every
synthetic set of that anchor uses the same edges), so histograms of the anchor, of each synthetic
set and of a live window are directly comparable. Nothing of the raw data is kept beyond the
bounded joint anchor sample used by the multivariate test.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> cols = {"inputs.x": rng.normal(size=5000).tolist(), "inputs.c": rng.choice(list("abc"), 5000).tolist()}
>>> prof = build_profile("ref", "real", cols, kinds={"inputs.x": "numeric", "inputs.c": "categorical"}, rng=rng)
>>> str(prof.features["inputs.x"].kind), len(prof.features["inputs.x"].edges) + 1
('numeric', 20)
>>> restored = ReferenceProfile.from_bytes(prof.to_bytes())
>>> bool(np.allclose(restored.features["inputs.x"].quantiles, prof.features["inputs.x"].quantiles))
True
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from careful_monitor.engine.text import distinct_curve, tokenize_many
from careful_monitor.engine.types import FeatureKind

NUMERIC, CATEGORICAL, TEXT, PROBS = FeatureKind.NUMERIC, FeatureKind.CATEGORICAL, FeatureKind.TEXT, FeatureKind.PROBS
KINDS = tuple(FeatureKind)
TAIL_Q = 0.01  # tails are the mass beyond the anchor's 1% / 99% quantiles
RARE_P = 0.01  # a category rarer than 1% in the anchor is "rare"
TEXT_TOP_TOKENS = 200
TEXT_SPLIT_SEED = 15  # the anchor's vocabulary / held-out split (a constant: profiles are reproducible)
DISTINCT_SIZES = (25, 50, 100, 200, 400, 800, 1600, 3200, 6400)


def infer_kind(values: Sequence[Any], max_categories: int) -> str:
    """numbers -> numeric; few distinct space-free strings -> categorical; other strings -> text."""
    present = [v for v in values if v is not None]
    if not present:
        return NUMERIC
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return NUMERIC
    if all(isinstance(v, dict) for v in present):
        return PROBS
    strs = [str(v) for v in present]
    distinct = set(strs)
    if len(distinct) <= max_categories and not any(" " in s for s in distinct):
        return CATEGORICAL
    return TEXT


def to_float_array(values: Sequence[Any]) -> tuple[np.ndarray, int, int]:
    """Values -> (finite floats, null count, type-mismatch count). bools count as mismatches."""
    try:
        arr = np.array(values, dtype=float)
        if arr.ndim != 1:
            raise ValueError
        fin = np.isfinite(arr)
        if fin.all():
            return arr, 0, 0
        nulls = sum(1 for v in values if v is None)  # None became nan; other non-finite are mismatches
        return arr[fin], nulls, int((~fin).sum()) - nulls
    except (TypeError, ValueError):
        out, nulls, bad = [], 0, 0
        for v in values:
            if v is None:
                nulls += 1
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append(v)
            else:
                bad += 1
        arr = np.array(out, dtype=float)
        fin = np.isfinite(arr)
        return arr[fin], nulls, bad + int((~fin).sum())


def probs_to_arrays(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, list[str], int, int]:
    """`outputs.probs` maps -> (confidence, entropy, top labels, nulls, mismatches), vectorised."""
    maps = [v for v in values if isinstance(v, dict) and v]
    nulls = sum(1 for v in values if v is None)
    bad = len(values) - nulls - len(maps)
    if not maps:
        return np.empty(0), np.empty(0), [], nulls, bad
    k = len(maps[0])
    try:
        mat = np.array([list(m.values()) for m in maps], dtype=float)
        if mat.ndim != 2 or mat.shape[1] != k:
            raise ValueError
    except (TypeError, ValueError):  # ragged or non-numeric: pad per row, drop bad rows
        width = max(len(m) for m in maps)
        rows = []
        for m in maps:
            try:
                r = [float(x) for x in m.values()]
            except (TypeError, ValueError):
                r = [np.nan]
            rows.append(r + [0.0] * (width - len(r)))
        mat = np.array(rows, dtype=float)
    s = mat.sum(axis=1)
    ok = np.isfinite(s) & (s > 0) & (mat >= 0).all(axis=1)
    bad += int((~ok).sum())
    p = mat[ok] / s[ok, None]
    arg = p.argmax(axis=1)
    conf = p[np.arange(len(p)), arg]
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    keys = [list(m) for m, good in zip(maps, ok.tolist(), strict=True) if good]
    top = [kk[i] if i < len(kk) else "" for kk, i in zip(keys, arg.tolist(), strict=True)]
    return conf, ent, top, nulls, bad


def _counts_on_edges(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1)


@dataclass
class NumericProfile:
    """A numeric feature: quantile function, anchor-grid histogram, moments, tails, support."""

    kind = NUMERIC
    n: int
    null_rate: float
    quantiles: np.ndarray  # values at u = linspace(0, 1, len)
    edges: np.ndarray  # interior bin edges, from the anchor
    counts: np.ndarray  # counts on the anchor's bins
    mean: float
    std: float
    kurtosis: float  # m4 / m2^2 (3 for a normal)
    vmin: float
    vmax: float
    tail_lo: float  # the anchor's 1% quantile
    tail_hi: float  # the anchor's 99% quantile
    tail_mass: float  # this reference's mass beyond the anchor's tails
    support_lo: float  # the anchor's min
    support_hi: float  # the anchor's max

    @property
    def hist(self) -> np.ndarray:
        return self.counts / max(self.counts.sum(), 1)

    def cdf_limits(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(distinct quantile values, CDF left limits, CDF right limits), computed once."""
        cached = self.__dict__.get("_cdf")
        if cached is None:
            uq, first, counts = np.unique(self.quantiles, return_index=True, return_counts=True)
            u = np.linspace(0.0, 1.0, len(self.quantiles))
            left, right = u[first], u[first + counts - 1]
            if len(uq) == len(self.quantiles):  # no ties: one interpolation serves both limits
                left = right
            cached = self.__dict__["_cdf"] = (uq, left, right)
        return cached


@dataclass
class CategoricalProfile:
    """A categorical feature: frequencies over the anchor's categories (+ one 'other' slot)."""

    kind = CATEGORICAL
    n: int
    null_rate: float
    categories: list[str]  # the anchor's categories, most frequent first
    counts: np.ndarray  # len(categories) + 1; the last slot counts categories the anchor lacks
    entropy: float
    entropy_var: float  # sum p ln^2 p - H^2 (delta-method variance of the plug-in entropy times n)

    @property
    def hist(self) -> np.ndarray:
        return self.counts / max(self.counts.sum(), 1)

    def index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.categories)}


@dataclass
class TextProfile:
    """A text feature: token frequencies, length, and distinct-2 at matched sample sizes."""

    kind = TEXT
    n: int
    null_rate: float
    tokens: list[str]  # the anchor's top tokens
    counts: np.ndarray  # len(tokens) + 1 (other)
    len_mean: float
    len_std: float
    distinct_sizes: np.ndarray  # number of texts
    distinct_mean: np.ndarray  # distinct-2 of that many texts (mean over draws)
    distinct_std: np.ndarray
    # Document-level summaries for the token-presence and novelty tests (documents are the unit).
    # For an anchor they are measured on a held-out half the vocabulary was not chosen on; for a
    # synthetic set (vocabulary from its anchor) on all of its texts.
    doc_freq: np.ndarray  # len(tokens) + 1: documents containing each top token; last: any other token
    doc_n: int  # documents `doc_freq` and the novelty summaries were measured on
    novelty: float  # tokens outside `tokens` / all tokens, over those documents
    novelty_var: float  # per-document variance of (other_i - novelty * length_i) (ratio-estimator variance)
    novelty_len: float  # mean tokens per document over those documents

    @property
    def hist(self) -> np.ndarray:
        return self.counts / max(self.counts.sum(), 1)


@dataclass
class ProbsProfile:
    """Class probabilities: confidence (max p) as a numeric profile, predictive entropy, labels."""

    kind = PROBS
    n: int
    null_rate: float
    confidence: NumericProfile
    entropy_mean: float
    entropy_std: float
    labels: list[str]

    @property
    def hist(self) -> np.ndarray:
        return self.confidence.hist


FeatureProfile = NumericProfile | CategoricalProfile | TextProfile | ProbsProfile


@dataclass
class JointProfile:
    """Bounded joint anchor sample of numeric features, as normal scores, for the joint test."""

    features: list[str]
    sample: np.ndarray  # rows x features, float32, normal scores (probit of the anchor CDF)
    corr: np.ndarray  # correlation matrix of the normal scores


@dataclass
class ReferenceProfile:
    """Everything careful-monitor keeps of one registered dataset."""

    name: str
    role: str
    anchored_by: str | None
    n_rows: int
    features: dict[str, FeatureProfile] = field(default_factory=dict)
    joint: JointProfile | None = None

    # --- serialisation: numpy .npz (no pickle) + a JSON header --------------------------------
    def to_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {}
        header: dict[str, Any] = {"name": self.name, "role": self.role, "anchored_by": self.anchored_by,
                                  "n_rows": self.n_rows, "features": {}, "joint": None}
        for fname, prof in self.features.items():
            header["features"][fname] = _flatten(prof, f"f:{fname}", arrays)
        if self.joint is not None:
            header["joint"] = {"features": self.joint.features}
            arrays["joint:sample"] = self.joint.sample.astype(np.float32)
            arrays["joint:corr"] = self.joint.corr
        arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez_compressed(buf, allow_pickle=True, **arrays)  # the default, named so **arrays cannot bind it
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> ReferenceProfile:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        header = json.loads(arrays.pop("__header__").tobytes().decode())
        feats = {name: _unflatten(spec, f"f:{name}", arrays) for name, spec in header["features"].items()}
        joint = None
        if header["joint"] is not None:
            joint = JointProfile(header["joint"]["features"], arrays["joint:sample"], arrays["joint:corr"])
        return cls(header["name"], header["role"], header["anchored_by"], header["n_rows"], feats, joint)

    def size_bytes(self) -> int:
        return len(self.to_bytes())


_CLASSES = {NUMERIC: NumericProfile, CATEGORICAL: CategoricalProfile, TEXT: TextProfile, PROBS: ProbsProfile}


def _flatten(prof: Any, prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    spec: dict[str, Any] = {"kind": prof.kind}
    for f in fields(prof):
        v = getattr(prof, f.name)
        if isinstance(v, np.ndarray):
            arrays[f"{prefix}:{f.name}"] = v
            spec[f.name] = "@array"
        elif isinstance(v, NumericProfile):
            spec[f.name] = _flatten(v, f"{prefix}:{f.name}", arrays)
        else:
            spec[f.name] = v
    return spec


class ProfileFormatError(ValueError):
    """A stored profile written by an older careful-monitor that lacks what today's tests need."""


def _unflatten(spec: dict[str, Any], prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    cls = _CLASSES[spec["kind"]]
    missing = [f.name for f in fields(cls) if f.name not in spec]
    if missing:
        raise ProfileFormatError(
            f"stored {spec['kind']} profile {prefix.removeprefix('f:')!r} predates fields {', '.join(missing)}: "
            "re-register the dataset (`careful-monitor datasets register`) to rebuild its profile")
    kwargs = {}
    for f in fields(cls):
        v = spec[f.name]
        if v == "@array":
            v = arrays[f"{prefix}:{f.name}"]
        elif isinstance(v, dict) and "kind" in v:
            v = _unflatten(v, f"{prefix}:{f.name}", arrays)
        kwargs[f.name] = v
    return cls(**kwargs)


# --- building ---------------------------------------------------------------------------------

def numeric_profile(values: Sequence[Any], *, anchor: NumericProfile | None, bins: int,
                    quantiles: int) -> NumericProfile:
    x, nulls, bad = to_float_array(values)
    total = len(values)
    if len(x) == 0:
        x = np.array([0.0])
    u = np.linspace(0.0, 1.0, quantiles + 1)
    q = np.quantile(x, u)
    if anchor is None:
        inner = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1]))
        tail_lo, tail_hi = (float(v) for v in np.quantile(x, [TAIL_Q, 1 - TAIL_Q]))
        support_lo, support_hi = float(x.min()), float(x.max())
    else:
        inner, tail_lo, tail_hi = anchor.edges, anchor.tail_lo, anchor.tail_hi
        support_lo, support_hi = anchor.support_lo, anchor.support_hi
    mean = float(x.mean())
    c = x - mean
    m2 = float((c * c).mean())
    m4 = float((c ** 4).mean())
    return NumericProfile(
        n=len(x), null_rate=(nulls + bad) / max(total, 1), quantiles=q, edges=inner,
        counts=_counts_on_edges(x, inner), mean=mean, std=math.sqrt(m2),
        kurtosis=m4 / (m2 * m2) if m2 > 0 else 3.0, vmin=float(x.min()), vmax=float(x.max()),
        tail_lo=tail_lo, tail_hi=tail_hi, tail_mass=float(((x < tail_lo) | (x > tail_hi)).mean()),
        support_lo=support_lo, support_hi=support_hi,
    )


def _entropy_stats(p: np.ndarray) -> tuple[float, float]:
    nz = p[p > 0]
    h = float(-(nz * np.log(nz)).sum())
    return h, float((nz * np.log(nz) ** 2).sum() - h * h)


def categorical_profile(values: Sequence[Any], *, anchor: CategoricalProfile | None,
                        max_categories: int) -> CategoricalProfile:
    present = [str(v) for v in values if v is not None]
    nulls = len(values) - len(present)
    cats, cnt = (np.unique(np.array(present, dtype=str), return_counts=True) if present
                 else (np.array([], dtype=str), np.array([], dtype=int)))
    order = np.argsort(-cnt, kind="stable")
    cats, cnt = cats[order], cnt[order]
    if anchor is None:
        keep = cats[:max_categories].tolist()
        counts = np.append(cnt[:max_categories], cnt[max_categories:].sum()).astype(np.int64)
    else:
        keep = anchor.categories
        idx = anchor.index()
        counts = np.zeros(len(keep) + 1, dtype=np.int64)
        for c, k in zip(cats.tolist(), cnt.tolist(), strict=True):
            counts[idx.get(c, len(keep))] += k
    p = counts[:-1] / max(counts.sum(), 1)
    h, hv = _entropy_stats(p)
    return CategoricalProfile(n=len(present), null_rate=nulls / max(len(values), 1), categories=keep,
                              counts=counts, entropy=h, entropy_var=hv)


def text_profile(values: Sequence[Any], *, anchor: TextProfile | None, rng: np.random.Generator) -> TextProfile:
    texts = [str(v) for v in values if v is not None]
    nulls = len(values) - len(texts)
    toks = tokenize_many(texts)
    lengths = np.array([len(t) for t in toks], dtype=float) if toks else np.zeros(1)
    flat = [w for t in toks for w in t]
    held_out = list(range(len(toks)))
    if anchor is None:
        # The vocabulary is chosen on one half of the anchor and the document-level summaries are
        # measured on the other, so they are what a fresh sample of the anchor's law shows against
        # this vocabulary (in-sample novelty is biased low: a top-K list fits its own sample).
        # A local generator: the split leaves the caller's random stream (and the rest of the profile) as it was.
        chosen, held_out = _text_split(len(toks))
        pool = [w for i in chosen for w in toks[i]]
        words, cnt = (np.unique(np.array(pool, dtype=str), return_counts=True) if pool
                      else (np.array([], dtype=str), np.array([], dtype=int)))
        order = np.argsort(-cnt, kind="stable")
        vocab = words[order][:TEXT_TOP_TOKENS].tolist()
    else:
        vocab = anchor.tokens
    index = {w: i for i, w in enumerate(vocab)}
    counts = np.zeros(len(vocab) + 1, dtype=np.int64)
    for w in flat:
        counts[index.get(w, len(vocab))] += 1
    doc_freq, other = document_summaries([toks[i] for i in held_out], index)
    held_len = np.array([len(toks[i]) for i in held_out], dtype=float)
    n_held = len(held_out)
    total_len = float(held_len.sum())
    novelty = float(other.sum()) / total_len if total_len else 0.0
    resid = other - novelty * held_len
    novelty_var = float(resid.var(ddof=1)) if n_held > 1 else 0.0
    sizes = np.array([s for s in DISTINCT_SIZES if s <= len(toks)] or [max(len(toks), 1)])
    mean, std = distinct_curve(toks, sizes, rng)
    return TextProfile(n=len(texts), null_rate=nulls / max(len(values), 1), tokens=vocab, counts=counts,
                       len_mean=float(lengths.mean()), len_std=float(lengths.std()) or 1.0,
                       distinct_sizes=sizes, distinct_mean=mean, distinct_std=std,
                       doc_freq=doc_freq, doc_n=n_held, novelty=novelty, novelty_var=novelty_var,
                       novelty_len=total_len / n_held if n_held else 0.0)


def _text_split(n: int) -> tuple[list[int], list[int]]:
    """(documents the vocabulary is chosen on, held-out documents); all of them for both below 40."""
    if n < 40:
        return list(range(n)), list(range(n))
    perm = np.random.default_rng(TEXT_SPLIT_SEED).permutation(n)
    half = n // 2
    return np.sort(perm[:half]).tolist(), np.sort(perm[half:]).tolist()


def document_summaries(toks: Sequence[Sequence[str]], index: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """(documents containing each vocabulary token, + last slot: any other token; other tokens per document)."""
    k = len(index)
    freq, others = np.zeros(k + 1, dtype=np.int64), []
    for start in range(0, len(toks), 20_000):  # chunks bound the documents x vocabulary presence matrix
        part = toks[start:start + 20_000]
        ids = np.fromiter((index.get(w, k) for t in part for w in t), dtype=np.int64)
        lengths = np.fromiter((len(t) for t in part), dtype=np.int64, count=len(part))
        f, o = presence_counts(ids, lengths, k)
        freq += f
        others.append(o)
    return freq, np.concatenate(others) if others else np.zeros(0)


def presence_counts(ids: np.ndarray, lengths: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of documents laid end to end (lengths given) -> (doc frequency of each of k + 1 ids, other per doc)."""
    n = len(lengths)
    if n == 0 or len(ids) == 0:
        return np.zeros(k + 1, dtype=np.int64), np.zeros(n, dtype=float)
    doc = np.repeat(np.arange(n), lengths)
    seen = np.zeros((n, k + 1), dtype=bool)
    seen[doc, ids] = True
    other = np.bincount(doc, weights=(ids == k), minlength=n)
    return seen.sum(axis=0).astype(np.int64), other


def probs_profile(values: Sequence[Any], *, anchor: ProbsProfile | None, bins: int, quantiles: int) -> ProbsProfile:
    conf, ent, _top, nulls, bad = probs_to_arrays(values)
    labels = sorted({k for v in values if isinstance(v, dict) for k in v}) if anchor is None else anchor.labels
    cprof = numeric_profile(conf.tolist(), anchor=None if anchor is None else anchor.confidence,
                            bins=bins, quantiles=quantiles)
    return ProbsProfile(n=len(conf), null_rate=(nulls + bad) / max(len(values), 1), confidence=cprof,
                        entropy_mean=float(ent.mean()) if len(ent) else 0.0,
                        entropy_std=float(ent.std()) if len(ent) > 1 else 1.0, labels=labels)


def normal_scores(x: np.ndarray, prof: NumericProfile) -> np.ndarray:
    """Probit of the anchor CDF: a Gaussian-copula transform that makes correlation tests robust."""
    from scipy.special import ndtri

    uq, left, right = prof.cdf_limits()
    if len(uq) == 1:
        return np.zeros(len(x))
    u = np.interp(x, uq, (left + right) / 2 if left is not right else right)
    n = max(prof.n, 2)
    return ndtri(np.clip(u, 0.5 / n, 1 - 0.5 / n))


def joint_profile(columns: dict[str, Sequence[Any]], feats: dict[str, NumericProfile], *, rows: int,
                  rng: np.random.Generator) -> JointProfile | None:
    names = [f for f in feats if feats[f].std > 0]
    if len(names) < 2:
        return None
    n = len(next(iter(columns.values())))
    idx = np.sort(rng.choice(n, size=min(rows, n), replace=False))
    mats = []
    for f in names:
        col = np.array([columns[f][i] if isinstance(columns[f][i], (int, float)) and not isinstance(columns[f][i], bool)
                        else np.nan for i in idx], dtype=float)
        mats.append(col)
    m = np.column_stack(mats)
    m = m[np.isfinite(m).all(axis=1)]
    z = np.column_stack([normal_scores(m[:, j], feats[f]) for j, f in enumerate(names)])
    return JointProfile(names, z.astype(np.float32), np.corrcoef(z, rowvar=False))


def build_profile(name: str, role: str, columns: Mapping[str, Sequence[Any]], *, kinds: dict[str, str] | None = None,
                  anchor: ReferenceProfile | None = None, anchored_by: str | None = None, bins: int = 20,
                  quantiles: int = 1024, max_categories: int = 1000, joint_sample: int = 5000,
                  rng: np.random.Generator) -> ReferenceProfile:
    """Profile every column; a synthetic set is binned on its anchor's grid and categories."""
    kinds = dict(kinds or {})
    n_rows = len(next(iter(columns.values()))) if columns else 0
    feats: dict[str, FeatureProfile] = {}
    for fname, values in columns.items():
        kind = kinds.get(fname) or (anchor.features[fname].kind if anchor and fname in anchor.features
                                    else infer_kind(values, max_categories))
        ref = anchor.features.get(fname) if anchor is not None else None
        if anchor is not None and (ref is None or ref.kind != kind):
            continue  # nothing to compare against on the anchor's side
        # an anchor's profile of this feature has this kind (checked above), so it is of the matching class
        if kind == NUMERIC:
            assert ref is None or isinstance(ref, NumericProfile)
            feats[fname] = numeric_profile(values, anchor=ref, bins=bins, quantiles=quantiles)
        elif kind == CATEGORICAL:
            assert ref is None or isinstance(ref, CategoricalProfile)
            feats[fname] = categorical_profile(values, anchor=ref, max_categories=max_categories)
        elif kind == TEXT:
            assert ref is None or isinstance(ref, TextProfile)
            feats[fname] = text_profile(values, anchor=ref, rng=rng)
        elif kind == PROBS:
            assert ref is None or isinstance(ref, ProbsProfile)
            feats[fname] = probs_profile(values, anchor=ref, bins=bins, quantiles=quantiles)
        else:
            raise ValueError(f"unknown feature kind {kind!r} for {fname}")
    joint = None
    if anchor is None:
        numeric = {f: p for f, p in feats.items() if isinstance(p, NumericProfile)}
        joint = joint_profile({f: columns[f] for f in numeric}, numeric, rows=joint_sample, rng=rng)
    return ReferenceProfile(name, role, anchored_by, n_rows, feats, joint)
