"""Reference profiles: compact, precomputed summaries of a dataset, one per feature.

A profile is computed once per reference at registration; every window is then compared with it
using vectorised numpy only. Numeric features are binned on the *anchor's* quantile grid (every
synthetic set of that anchor uses the same edges), so histograms of the anchor, of each synthetic
set and of a live window are directly comparable. Nothing of the raw data is kept beyond the
bounded joint samples: the anchor's (for the multivariate test) and each synthetic set's (for the joint
block of attribution), numeric features as normal scores through the *anchor's* CDFs and categorical
features as the *anchor's* category codes, so every joint reference lives in one space; with
`embeddings.enabled`, an anchor also keeps a bounded sample of its texts' embeddings (vectors, never the
texts: `EmbeddingProfile`, an optional section that older profiles simply lack). A stored profile
carries `PROFILE_FORMAT` (`format`). Format 1 (before synthetic sets kept a joint sample) still loads, as it
was: a synthetic set without a joint sample stays out of the joint block of attribution until it is
re-registered; the service says so when it loads one. Format 2 (joint samples of numeric features only)
loads with no categorical joint columns: its categoricals stay out of the MMD test (an anchor) or out of
attribution's joint block (a set) until it is re-registered. A format this careful-monitor does not know
(a newer one) is refused with ProfileFormatError.

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
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from itertools import chain
from typing import Any

import numpy as np

from careful_monitor.engine.text import tokenize_many
from careful_monitor.engine.types import FeatureKind

NUMERIC, CATEGORICAL, TEXT, PROBS = FeatureKind.NUMERIC, FeatureKind.CATEGORICAL, FeatureKind.TEXT, FeatureKind.PROBS
KINDS = tuple(FeatureKind)
TAIL_Q = 0.01  # tails are the mass beyond the anchor's 1% / 99% quantiles
RARE_P = 0.01  # a category rarer than 1% in the anchor is "rare"
TEXT_TOP_TOKENS = 200
TEXT_SPLIT_SEED = 15  # the anchor's vocabulary / held-out split (a constant: profiles are reproducible)
DISTINCT_SIZES = (25, 50, 100, 200, 400, 800, 1600, 3200, 6400)
#: version of what a stored profile holds. 2: a synthetic set keeps its own joint sample (scored on its anchor's
#: CDFs); 3: joint samples also hold categorical features (the anchor's category codes); profiles without a
#: version are format 1.
PROFILE_FORMAT = 3
#: formats `from_bytes` reads: 1 lacks synthetic joint samples (the set stays out of the joint block), 2 lacks
#: categorical joint columns (it simply has none)
READABLE_FORMATS = (1, 2, 3)
#: a categorical feature's joint column codes its anchor's this many most frequent categories, every other
#: category (and one the anchor lacks) sharing one more code, "other"
JOINT_CATEGORIES = 32


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


def numeric_part(ref: FeatureProfile) -> NumericProfile:
    """The numeric profile that numeric comparisons read: the feature's own, or a probs feature's confidence."""
    if isinstance(ref, ProbsProfile):
        return ref.confidence
    assert isinstance(ref, NumericProfile), f"{ref.kind} profile where a numeric one is needed"
    return ref


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
    """A bounded joint sample: numeric features as normal scores of the anchor's CDFs, categorical ones as codes.

    The anchor's feeds the multivariate tests; a synthetic set's (the anchor's joint features it
    holds, scored through the *anchor's* CDFs and coded on the *anchor's* categories, never its own)
    feeds the joint block of attribution, so the anchor, every synthetic set and the window are
    embedded in one space. `features`, `sample` and `corr` are the numeric part (what the correlation
    test and the DCR gate read); `categorical` and `codes` are the same rows' categorical part: code i < levels - 1
    is the anchor's i-th most frequent category, levels - 1 every other one (`JOINT_CATEGORIES`). A row
    missing any joint feature is not in the sample. The multivariate test and attribution map the codes
    to one-hot blocks (`comparisons.mmd.fourier_map`).
    """

    features: list[str]
    sample: np.ndarray  # rows x features, float32, normal scores (probit of the anchor CDF)
    corr: np.ndarray  # correlation matrix of the normal scores
    categorical: list[str] = field(default_factory=list)
    codes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.uint16))  # rows x categorical
    levels: list[int] = field(default_factory=list)  # codes of each categorical feature (top categories + other)

    def __post_init__(self) -> None:
        if self.codes.shape != (len(self.sample), len(self.categorical)):
            if self.categorical:
                raise ValueError(f"joint codes of shape {self.codes.shape} for {len(self.sample)} rows x "
                                 f"{len(self.categorical)} categorical features")
            self.codes = np.zeros((len(self.sample), 0), dtype=np.uint16)

    @property
    def names(self) -> list[str]:
        """Every joint feature: the numeric ones, then the categorical ones."""
        return [*self.features, *self.categorical]


@dataclass
class EmbeddingProfile:
    """A bounded sample of a text feature's embeddings (optional semantic embeddings, docs/detection.md).

    Vectors only, never the texts: `sample` holds up to `embeddings.anchor_sample` documents' embeddings
    (float16, rows x dim) by the model `model` at `revision`; a window is compared with it only when it is
    embedded by the same model and revision (`comparisons.embedding_mmd`).
    """

    model: str
    revision: str
    sample: np.ndarray  # documents x dim, float16


@dataclass
class ReferenceProfile:
    """Everything careful-monitor keeps of one registered dataset."""

    name: str
    role: str
    anchored_by: str | None
    n_rows: int
    features: dict[str, FeatureProfile] = field(default_factory=dict)
    joint: JointProfile | None = None
    #: the format it was stored in (PROFILE_FORMAT when built by this careful-monitor)
    format: int = PROFILE_FORMAT
    #: text feature -> its anchor's embedding sample; empty unless `embeddings.enabled` at registration (an
    #: optional section: a profile without it is written byte for byte as before, and older ones load)
    embeddings: dict[str, EmbeddingProfile] = field(default_factory=dict)

    # --- serialisation: numpy .npz (no pickle) + a JSON header --------------------------------
    def to_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {}
        header: dict[str, Any] = {"format": PROFILE_FORMAT, "name": self.name, "role": self.role,
                                  "anchored_by": self.anchored_by, "n_rows": self.n_rows, "features": {},
                                  "joint": None}
        for fname, prof in self.features.items():
            header["features"][fname] = _flatten(prof, f"f:{fname}", arrays)
        if self.joint is not None:
            header["joint"] = {"features": self.joint.features, "categorical": self.joint.categorical,
                               "levels": self.joint.levels}
            arrays["joint:sample"] = self.joint.sample.astype(np.float32)
            arrays["joint:corr"] = self.joint.corr
            if self.joint.categorical:
                arrays["joint:codes"] = self.joint.codes.astype(np.uint16)
        if self.embeddings:
            header["embeddings"] = {f: {"model": e.model, "revision": e.revision} for f, e in self.embeddings.items()}
            for f, e in self.embeddings.items():
                arrays[f"emb:{f}"] = e.sample.astype(np.float16)
        arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez_compressed(buf, allow_pickle=False, **arrays)  # no pickle: an object array is an error, not a pickle
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> ReferenceProfile:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        header = json.loads(arrays.pop("__header__").tobytes().decode())
        version = header.get("format", 1)
        if version not in READABLE_FORMATS:
            raise ProfileFormatError(
                f"stored profile of {header.get('name')!r} has format {version}, this careful-monitor reads formats "
                f"{', '.join(map(str, READABLE_FORMATS))}: it was written by a newer careful-monitor; upgrade, or "
                "re-register the dataset (`careful-monitor datasets register`) with this one")
        feats = {name: _unflatten(spec, f"f:{name}", arrays) for name, spec in header["features"].items()}
        joint = None
        if header["joint"] is not None:
            spec = header["joint"]
            cats = spec.get("categorical", [])  # format 2 and older: numeric features only
            joint = JointProfile(spec["features"], arrays["joint:sample"], arrays["joint:corr"], cats,
                                 arrays["joint:codes"] if cats else np.zeros((0, 0), dtype=np.uint16),
                                 spec.get("levels", []))
        embeddings = {f: EmbeddingProfile(spec["model"], spec["revision"], arrays[f"emb:{f}"])
                      for f, spec in header.get("embeddings", {}).items()}
        return cls(header["name"], header["role"], header["anchored_by"], header["n_rows"], feats, joint,
                   format=version, embeddings=embeddings)

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
#
# A profile is built from batches of rows (`ProfileBuilder.add`), so a file of any size is profiled in
# bounded memory. Up to `exact_rows` rows (text: up to `text_sample` documents and `text_tokens` tokens)
# the values are kept and every statistic is computed exactly as on the whole column at once, so such a
# profile does not depend on how its rows were batched. Above those bounds quantiles, bin counts and
# tails come from a KLL sketch (datasketches, k=200: normalised rank error about 1.65 % at 99 %
# confidence), moments from running sums, the statistics that need whole documents (held-out half,
# distinct-2 curve) from a uniform reservoir sample of `text_sample` documents, and the joint sample from
# a reservoir of `joint_sample` rows. Counts of categories, tokens and labels, minimum, maximum and
# null rates are always exact.

EXACT_ROWS = 2_000_000  # numeric values per feature kept exactly (16 MB of float64)
TEXT_SAMPLE = 100_000  # documents kept exactly, and the size of the document sample above that
TEXT_TOKENS = 10_000_000  # tokens kept exactly (40 MB of int32)
KLL_K = 200  # datasketches' default; normalised rank error ~1.65 % (99 % confidence)
SAMPLE_SEED = 16  # reservoirs and the streamed text split (a constant: profiles are reproducible)
_DOC_CHUNK = 20_000  # documents per presence matrix (bounds documents x vocabulary)


class _Reservoir:
    """A uniform sample of `size` items of a stream (Algorithm R), offered one batch at a time."""

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.size, self.rng, self.seen = size, rng, 0

    def offer(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(slots, positions in the batch) of the batch's items that enter the sample; a later item wins a slot."""
        start, self.seen = self.seen, self.seen + k
        fill = max(0, min(k, self.size - start))
        slots, pos = [np.arange(start, start + fill)], [np.arange(fill)]
        if k > fill:
            p = np.arange(fill, k)
            j = self.rng.integers(0, start + p + 1)
            keep = j < self.size
            slots.append(j[keep])
            pos.append(p[keep])
        s, q = np.concatenate(slots), np.concatenate(pos)
        u, last = np.unique(s[::-1], return_index=True)
        return u, q[::-1][last]


def _row_floats(values: Sequence[Any]) -> np.ndarray:
    """Row-aligned floats as the joint sample sees a column: a number (not a bool) as itself, else NaN."""
    if set(map(type, values)) <= _PLAIN_NUMBERS:  # the common case, vectorised (None becomes NaN)
        return np.array(values, dtype=float)
    return np.fromiter((v if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan for v in values),
                       dtype=float, count=len(values))


_PLAIN_NUMBERS = {int, float, type(None)}
_STR_OR_NONE = {str, type(None)}


def _round_counts(p: np.ndarray, n: int) -> np.ndarray:
    """Probabilities -> integer counts summing to n (largest remainder)."""
    raw = np.clip(p, 0.0, None) * n
    counts = np.floor(raw).astype(np.int64)
    short = n - int(counts.sum())
    if short > 0:
        counts[np.argsort(counts - raw, kind="stable")[:short]] += 1
    return counts


class _Moments:
    """Running sums of powers about a shift (the first values' mean), for mean, variance and kurtosis."""

    def __init__(self) -> None:
        self.n, self.shift, self.sums = 0, 0.0, np.zeros(4)

    def add(self, x: np.ndarray) -> None:
        if not len(x):
            return
        if self.n == 0:
            self.shift = float(x.mean())
        c = x - self.shift
        c2 = c * c
        self.sums += (c.sum(), c2.sum(), (c2 * c).sum(), (c2 * c2).sum())
        self.n += len(x)

    def central(self) -> tuple[float, float, float]:
        """(mean, m2, m4)."""
        s1, s2, s3, s4 = (float(v) / max(self.n, 1) for v in self.sums)
        m2 = max(s2 - s1 * s1, 0.0)
        m4 = max(s4 - 4 * s1 * s3 + 6 * s1 * s1 * s2 - 3 * s1 ** 4, 0.0)
        return self.shift + s1, m2, m4


def _numeric_exact(x: np.ndarray, invalid: int, total: int, *, anchor: NumericProfile | None, bins: int,
                   quantiles: int) -> NumericProfile:
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
        n=len(x), null_rate=invalid / max(total, 1), quantiles=q, edges=inner,
        counts=_counts_on_edges(x, inner), mean=mean, std=math.sqrt(m2),
        kurtosis=m4 / (m2 * m2) if m2 > 0 else 3.0, vmin=float(x.min()), vmax=float(x.max()),
        tail_lo=tail_lo, tail_hi=tail_hi, tail_mass=float(((x < tail_lo) | (x > tail_hi)).mean()),
        support_lo=support_lo, support_hi=support_hi,
    )


class _NumericAccumulator:
    """A numeric feature: the finite values while at most `exact_rows`, then a KLL sketch and running sums."""

    def __init__(self, anchor: NumericProfile | None, exact_rows: int) -> None:
        self.anchor, self.exact_rows = anchor, exact_rows
        self.total = self.invalid = self.n = 0
        self.parts: list[np.ndarray] | None = []
        self.sketch: Any = None
        self.moments = _Moments()
        self.vmin, self.vmax = math.inf, -math.inf
        self.counts: np.ndarray | None = None  # on the anchor's bins (a synthetic set), once sketched
        self.tail = 0

    def add(self, values: Sequence[Any]) -> None:
        x, nulls, bad = to_float_array(values)
        self.total += len(values)
        self.invalid += nulls + bad
        self._take(x)

    def add_floats(self, x: np.ndarray) -> None:
        fin = np.isfinite(x)
        if not fin.all():
            x = x[fin]
        self.total += len(fin)
        self.invalid += len(fin) - len(x)
        self._take(x)

    def add_missing(self, k: int) -> None:
        self.total += k
        self.invalid += k

    def _take(self, x: np.ndarray) -> None:
        if not len(x):
            return
        self.n += len(x)
        if self.parts is None:
            self._sketch(x)
            return
        self.parts.append(x)
        if self.n > self.exact_rows:
            from datasketches import kll_doubles_sketch

            kept, self.parts = np.concatenate(self.parts), None
            self.sketch = kll_doubles_sketch(KLL_K)
            self._sketch(kept)

    def _sketch(self, x: np.ndarray) -> None:
        x = np.ascontiguousarray(x, dtype=np.float64)
        self.sketch.update(x)
        self.moments.add(x)
        self.vmin, self.vmax = min(self.vmin, float(x.min())), max(self.vmax, float(x.max()))
        if self.anchor is not None:
            c = _counts_on_edges(x, self.anchor.edges)
            self.counts = c if self.counts is None else self.counts + c
            self.tail += int(((x < self.anchor.tail_lo) | (x > self.anchor.tail_hi)).sum())

    def finish(self, bins: int, quantiles: int) -> NumericProfile:
        if self.parts is not None:
            x = np.concatenate(self.parts) if self.parts else np.empty(0)
            return _numeric_exact(x, self.invalid, self.total, anchor=self.anchor, bins=bins, quantiles=quantiles)
        s, n, a = self.sketch, self.n, self.anchor
        q = np.maximum.accumulate(np.array(s.get_quantiles(np.linspace(0.0, 1.0, quantiles + 1).tolist())))
        q[0], q[-1] = self.vmin, self.vmax
        if a is None:
            inner = np.unique(np.array(s.get_quantiles(np.linspace(0, 1, bins + 1)[1:-1].tolist())))
            tail_lo, tail_hi = (float(v) for v in s.get_quantiles([TAIL_Q, 1 - TAIL_Q]))
            support_lo, support_hi = self.vmin, self.vmax
            counts = (_round_counts(np.array(s.get_pmf(inner.tolist())), n) if len(inner)
                      else np.array([n], dtype=np.int64))
            tail_mass = float(s.get_cdf([tail_lo])[0] + 1.0 - s.get_cdf([tail_hi], True)[0])
        else:
            inner, tail_lo, tail_hi = a.edges, a.tail_lo, a.tail_hi
            support_lo, support_hi = a.support_lo, a.support_hi
            assert self.counts is not None
            counts, tail_mass = self.counts, self.tail / n
        mean, m2, m4 = self.moments.central()
        return NumericProfile(
            n=n, null_rate=self.invalid / max(self.total, 1), quantiles=q, edges=inner, counts=counts, mean=mean,
            std=math.sqrt(m2), kurtosis=m4 / (m2 * m2) if m2 > 0 else 3.0, vmin=self.vmin, vmax=self.vmax,
            tail_lo=tail_lo, tail_hi=tail_hi, tail_mass=tail_mass, support_lo=support_lo, support_hi=support_hi,
        )


def numeric_profile(values: Sequence[Any], *, anchor: NumericProfile | None, bins: int,
                    quantiles: int) -> NumericProfile:
    x, nulls, bad = to_float_array(values)
    return _numeric_exact(x, nulls + bad, len(values), anchor=anchor, bins=bins, quantiles=quantiles)


def _entropy_stats(p: np.ndarray) -> tuple[float, float]:
    nz = p[p > 0]
    h = float(-(nz * np.log(nz)).sum())
    return h, float((nz * np.log(nz) ** 2).sum() - h * h)


class _CategoricalAccumulator:
    """A categorical feature: the count of every distinct value (as text)."""

    def __init__(self, anchor: CategoricalProfile | None, max_categories: int) -> None:
        self.anchor, self.max_categories = anchor, max_categories
        self.counts: dict[str, int] = {}
        self.total = self.nulls = 0
        self.spaced = False  # a value holds a space (kind inference: then it is text)

    def add(self, values: Sequence[Any]) -> None:
        present = [str(v) for v in values if v is not None]
        self.total += len(values)
        self.nulls += len(values) - len(present)
        counts = self.counts
        for s, c in Counter(present).items():
            old = counts.get(s)
            if old is None:
                self.spaced = self.spaced or " " in s
                counts[s] = c
            else:
                counts[s] = old + c

    def add_missing(self, k: int) -> None:
        self.total += k
        self.nulls += k

    def finish(self) -> CategoricalProfile:
        if self.counts:
            # numpy's text order and equality, as np.unique over the values would give
            cats, inv = np.unique(np.array(list(self.counts), dtype=str), return_inverse=True)
            cnt = np.zeros(len(cats), dtype=np.int64)
            np.add.at(cnt, inv, np.fromiter(self.counts.values(), dtype=np.int64, count=len(self.counts)))
        else:
            cats, cnt = np.array([], dtype=str), np.array([], dtype=int)
        return _categorical_from_counts(cats, cnt, self.total - self.nulls, self.nulls, self.total,
                                        anchor=self.anchor, max_categories=self.max_categories)


def _categorical_from_counts(cats: np.ndarray, cnt: np.ndarray, n: int, nulls: int, total: int, *,
                             anchor: CategoricalProfile | None, max_categories: int) -> CategoricalProfile:
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
    return CategoricalProfile(n=n, null_rate=nulls / max(total, 1), categories=keep,
                              counts=counts, entropy=h, entropy_var=hv)


def categorical_profile(values: Sequence[Any], *, anchor: CategoricalProfile | None,
                        max_categories: int) -> CategoricalProfile:
    present = [str(v) for v in values if v is not None]
    nulls = len(values) - len(present)
    cats, cnt = (np.unique(np.array(present, dtype=str), return_counts=True) if present
                 else (np.array([], dtype=str), np.array([], dtype=int)))
    return _categorical_from_counts(cats, cnt, len(present), nulls, len(values), anchor=anchor,
                                    max_categories=max_categories)


def _grow(a: np.ndarray, size: int) -> np.ndarray:
    return a if len(a) >= size else np.concatenate([a, np.zeros(size - len(a), dtype=a.dtype)])


def _gather(offsets: np.ndarray, docs: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Positions of the tokens of `docs` (documents laid end to end at `offsets`), document after document."""
    before = np.cumsum(lengths) - lengths
    return np.repeat(offsets[docs] - before, lengths) + np.arange(int(lengths.sum()))


def _summaries(ids: np.ndarray, lengths: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`presence_counts` over documents in chunks (ids already vocabulary indices, k = other)."""
    freq, others = np.zeros(k + 1, dtype=np.int64), []
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    for start in range(0, len(lengths), _DOC_CHUNK):
        stop = min(start + _DOC_CHUNK, len(lengths))
        f, o = presence_counts(ids[offsets[start]:offsets[stop]], lengths[start:stop], k)
        freq += f
        others.append(o)
    return freq, np.concatenate(others) if others else np.zeros(0)


def _distinct2(ids: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, docs: np.ndarray) -> float:
    """`text.distinct2` of the documents `docs`, on token ids (bigrams within a document only)."""
    plen = lengths[docs]
    total = int(np.maximum(plen - 1, 0).sum())
    if not total:
        return 0.0
    tok = ids[_gather(offsets, docs, plen)].astype(np.int64)
    valid = np.ones(len(tok) - 1, dtype=bool)
    last = (np.cumsum(plen) - 1)[plen > 0]
    valid[last[last < len(valid)]] = False
    keys = tok[:-1][valid] * (int(tok.max()) + 1) + tok[1:][valid]
    return len(np.unique(keys)) / total


def _distinct_curve(ids: np.ndarray, lengths: np.ndarray, sizes: np.ndarray, rng: np.random.Generator,
                    draws: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """`text.distinct_curve` on token ids: the same draws from `rng`, the same values."""
    n = len(lengths)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    means, sds = [], []
    for s in sizes:
        s = int(min(s, n))
        vals = ([_distinct2(ids, offsets, lengths, rng.choice(n, size=s, replace=False)) for _ in range(draws)]
                if s else [0.0])
        means.append(float(np.mean(vals)))
        sds.append(float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0)
    return np.array(means), np.array(sds)


def _select(ids: np.ndarray, lengths: np.ndarray, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(token ids, lengths) of the documents `docs`, in that order."""
    plen = lengths[docs]
    return ids[_gather(np.concatenate([[0], np.cumsum(lengths)]), docs, plen)], plen


class _TextAccumulator:
    """A text feature: token ids of every document while few, then a document sample; token counts always."""

    def __init__(self, anchor: TextProfile | None, text_sample: int, text_tokens: int) -> None:
        self.anchor, self.text_sample, self.text_tokens = anchor, text_sample, text_tokens
        self.vocab: dict[str, int] = {}
        self.words: list[str] = []
        self.all_cnt = np.zeros(0, dtype=np.int64)  # every document's tokens
        self.chosen_cnt = np.zeros(0, dtype=np.int64)  # the streamed vocabulary half's tokens
        self.total = self.nulls = self.n_docs = self.n_tokens = 0
        self.len_sum = self.len_sq = 0
        self.kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = []  # (ids, lengths, chosen)
        self.split_rng = np.random.default_rng([SAMPLE_SEED, 1])
        self.reservoir: _Reservoir | None = None
        self.sample: list[np.ndarray] = []
        self.sample_at = np.zeros(0, dtype=np.int64)
        self.sample_held = np.zeros(0, dtype=bool)
        self.anchor_index = {w: i for i, w in enumerate(anchor.tokens)} if anchor is not None else {}
        self.lookup = np.zeros(0, dtype=np.int64)  # token id -> anchor vocabulary index (k: other)
        k = len(self.anchor_index)
        self.doc_freq = np.zeros(k + 1, dtype=np.int64)  # streamed summaries on the anchor's vocabulary
        self.other_sum = self.other_sq = self.other_len = 0.0

    def add(self, values: Sequence[Any]) -> None:
        texts = [str(v) for v in values if v is not None]
        self.total += len(values)
        self.nulls += len(values) - len(texts)
        toks = tokenize_many(texts)
        lengths = np.fromiter(map(len, toks), dtype=np.int64, count=len(toks))
        flat = list(chain.from_iterable(toks))
        vocab = self.vocab
        new = [w for w in dict.fromkeys(flat) if w not in vocab]
        for w in new:
            vocab[w] = len(self.words)
            self.words.append(w)
        if self.anchor is not None and new:
            k = len(self.anchor_index)
            self.lookup = np.concatenate([self.lookup, np.array([self.anchor_index.get(w, k) for w in new],
                                                                dtype=np.int64)])
        ids = np.fromiter(map(vocab.__getitem__, flat), dtype=np.int32, count=len(flat))
        v = len(self.words)
        chosen = self.split_rng.random(len(lengths)) < 0.5
        self.all_cnt = _grow(self.all_cnt, v) + np.bincount(ids, minlength=v)
        self.chosen_cnt = _grow(self.chosen_cnt, v) + np.bincount(ids[np.repeat(chosen, lengths)], minlength=v)
        self.len_sum += int(lengths.sum())
        self.len_sq += int((lengths * lengths).sum())
        first = self.n_docs
        self.n_docs += len(lengths)
        self.n_tokens += len(ids)
        if self.kept is None:
            self._sample(ids, lengths, chosen, first)
            return
        self.kept.append((ids, lengths, chosen))
        if self.n_docs > self.text_sample or self.n_tokens > self.text_tokens:
            ids, lengths, chosen = (np.concatenate(p) for p in zip(*self.kept, strict=True))
            self.kept = None
            self.reservoir = _Reservoir(self.text_sample, np.random.default_rng([SAMPLE_SEED, 2]))
            self.sample = [ids[:0]] * self.text_sample
            self.sample_at = np.full(self.text_sample, -1, dtype=np.int64)
            self.sample_held = np.zeros(self.text_sample, dtype=bool)
            self._sample(ids, lengths, chosen, 0)

    def add_missing(self, k: int) -> None:
        self.total += k
        self.nulls += k

    def _sample(self, ids: np.ndarray, lengths: np.ndarray, chosen: np.ndarray, first: int) -> None:
        assert self.reservoir is not None
        slots, pos = self.reservoir.offer(len(lengths))
        if len(slots):
            offsets = np.concatenate([[0], np.cumsum(lengths)])
            for s, p in zip(slots.tolist(), pos.tolist(), strict=True):
                self.sample[s] = ids[offsets[p]:offsets[p + 1]].copy()  # a copy: the batch is freed
            self.sample_at[slots] = first + pos
            self.sample_held[slots] = ~chosen[pos]
        if self.anchor is not None:  # held-out is everything for a synthetic set: summaries exact, streamed
            f, other = _summaries(self.lookup[ids], lengths, len(self.anchor_index))
            self.doc_freq += f
            self.other_sum += float(other.sum())
            self.other_sq += float((other * other).sum())
            self.other_len += float((other * lengths).sum())

    def _top_tokens(self, cnt: np.ndarray) -> list[str]:
        present = np.nonzero(cnt)[0]
        if not len(present):
            return []
        words, inv = np.unique(np.array([self.words[i] for i in present.tolist()], dtype=str), return_inverse=True)
        c = np.zeros(len(words), dtype=np.int64)
        np.add.at(c, inv, cnt[present])
        order = np.argsort(-c, kind="stable")
        return words[order][:TEXT_TOP_TOKENS].tolist()

    def _counts(self, vocab: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(token counts on `vocab` + other, token id -> vocabulary index)."""
        k = len(vocab)
        lookup = np.full(len(self.words), k, dtype=np.int64)
        counts = np.zeros(k + 1, dtype=np.int64)
        for i, w in enumerate(vocab):
            j = self.vocab.get(w)
            if j is not None:
                lookup[j] = i
                counts[i] = self.all_cnt[j]
        counts[k] = self.n_tokens - int(counts[:k].sum())
        return counts, lookup

    def finish(self, rng: np.random.Generator) -> TextProfile:
        if self.kept is not None:
            return self._finish_exact(rng)
        n, k_docs = self.n_docs, self.sample_at >= 0
        slots = np.nonzero(k_docs)[0][np.argsort(self.sample_at[k_docs], kind="stable")]
        docs = [self.sample[s] for s in slots.tolist()]
        ids = np.concatenate(docs) if docs else np.zeros(0, dtype=np.int32)
        lengths = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))
        len_mean = self.len_sum / n
        len_std = math.sqrt(max(self.len_sq / n - len_mean * len_mean, 0.0)) or 1.0
        if self.anchor is None:
            vocab = self._top_tokens(self.chosen_cnt)
            counts, lookup = self._counts(vocab)
            held = np.nonzero(self.sample_held[slots])[0]
            hid, hlen = _select(ids, lengths, held)
            doc_freq, other = _summaries(lookup[hid], hlen, len(vocab))
            n_held, total_len = len(held), float(hlen.sum())
            novelty = float(other.sum()) / total_len if total_len else 0.0
            resid = other - novelty * hlen
            novelty_var = float(resid.var(ddof=1)) if n_held > 1 else 0.0
        else:
            vocab = self.anchor.tokens
            counts, _ = self._counts(vocab)
            doc_freq, n_held, total_len = self.doc_freq, n, float(self.len_sum)
            novelty = self.other_sum / total_len if total_len else 0.0
            ss = self.other_sq - 2 * novelty * self.other_len + novelty * novelty * self.len_sq
            novelty_var = max(ss, 0.0) / (n - 1) if n > 1 else 0.0
        sizes = np.array([s for s in DISTINCT_SIZES if s <= len(docs)] or [max(len(docs), 1)])
        mean, std = _distinct_curve(ids, lengths, sizes, rng)
        return TextProfile(n=n, null_rate=self.nulls / max(self.total, 1), tokens=vocab, counts=counts,
                           len_mean=len_mean, len_std=len_std, distinct_sizes=sizes, distinct_mean=mean,
                           distinct_std=std, doc_freq=doc_freq, doc_n=n_held, novelty=novelty,
                           novelty_var=novelty_var, novelty_len=total_len / n_held if n_held else 0.0)

    def _finish_exact(self, rng: np.random.Generator) -> TextProfile:
        assert self.kept is not None
        if self.kept:
            ids, lengths = np.concatenate([p[0] for p in self.kept]), np.concatenate([p[1] for p in self.kept])
        else:
            ids, lengths = np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64)
        n = len(lengths)
        if self.anchor is None:
            # The vocabulary is chosen on one half of the anchor and the document-level summaries are
            # measured on the other, so they are what a fresh sample of the anchor's law shows against
            # this vocabulary (in-sample novelty is biased low: a top-K list fits its own sample).
            chosen, held_out = _text_split(n)
            in_pool = np.zeros(n, dtype=bool)
            in_pool[chosen] = True
            vocab = self._top_tokens(np.bincount(ids[np.repeat(in_pool, lengths)], minlength=len(self.words)))
        else:
            vocab, held_out = self.anchor.tokens, list(range(n))
        counts, lookup = self._counts(vocab)
        hid, hlen = _select(ids, lengths, np.array(held_out, dtype=np.int64))
        doc_freq, other = _summaries(lookup[hid], hlen, len(vocab))
        held_len = hlen.astype(float)
        n_held = len(held_out)
        total_len = float(held_len.sum())
        novelty = float(other.sum()) / total_len if total_len else 0.0
        resid = other - novelty * held_len
        novelty_var = float(resid.var(ddof=1)) if n_held > 1 else 0.0
        sizes = np.array([s for s in DISTINCT_SIZES if s <= n] or [max(n, 1)])
        mean, std = _distinct_curve(ids, lengths, sizes, rng)
        all_len = lengths.astype(float) if n else np.zeros(1)
        return TextProfile(n=n, null_rate=self.nulls / max(self.total, 1), tokens=vocab, counts=counts,
                           len_mean=float(all_len.mean()), len_std=float(all_len.std()) or 1.0,
                           distinct_sizes=sizes, distinct_mean=mean, distinct_std=std,
                           doc_freq=doc_freq, doc_n=n_held, novelty=novelty, novelty_var=novelty_var,
                           novelty_len=total_len / n_held if n_held else 0.0)


def text_profile(values: Sequence[Any], *, anchor: TextProfile | None, rng: np.random.Generator) -> TextProfile:
    acc = _TextAccumulator(anchor, max(len(values), 1), 2 ** 62)  # one batch, kept exactly
    acc.add(values)
    return acc.finish(rng)


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
    for start in range(0, len(toks), _DOC_CHUNK):  # chunks bound the documents x vocabulary presence matrix
        part = toks[start:start + _DOC_CHUNK]
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


class _ProbsAccumulator:
    """Class probabilities: confidence as a numeric feature, entropy's moments, the labels seen."""

    def __init__(self, anchor: ProbsProfile | None, exact_rows: int) -> None:
        self.anchor, self.exact_rows = anchor, exact_rows
        self.confidence = _NumericAccumulator(anchor.confidence if anchor is not None else None, exact_rows)
        self.labels: set[str] = set()
        self.entropy: list[np.ndarray] | None = []
        self.moments = _Moments()
        self.n_ent = self.total = self.invalid = 0

    def add(self, values: Sequence[Any]) -> None:
        conf, ent, _top, nulls, bad = probs_to_arrays(values)
        self.total += len(values)
        self.invalid += nulls + bad
        self.confidence.add_floats(conf)
        if self.anchor is None:
            for v in values:
                if isinstance(v, dict):
                    self.labels.update(v)
        self.n_ent += len(ent)
        if self.entropy is None:
            self.moments.add(ent)
            return
        self.entropy.append(ent)
        if self.n_ent > self.exact_rows:
            self.moments.add(np.concatenate(self.entropy))
            self.entropy = None

    def add_missing(self, k: int) -> None:
        self.total += k
        self.invalid += k

    def finish(self, bins: int, quantiles: int) -> ProbsProfile:
        cprof = self.confidence.finish(bins, quantiles)
        labels = sorted(self.labels) if self.anchor is None else self.anchor.labels
        if self.entropy is not None:
            ent = np.concatenate(self.entropy) if self.entropy else np.empty(0)
            e_mean = float(ent.mean()) if len(ent) else 0.0
            e_std = float(ent.std()) if len(ent) > 1 else 1.0
        else:
            mean, m2, _ = self.moments.central()
            e_mean, e_std = mean, math.sqrt(m2)
        return ProbsProfile(n=self.confidence.total, null_rate=self.invalid / max(self.total, 1), confidence=cprof,
                            entropy_mean=e_mean, entropy_std=e_std, labels=labels)


def probs_profile(values: Sequence[Any], *, anchor: ProbsProfile | None, bins: int, quantiles: int) -> ProbsProfile:
    acc = _ProbsAccumulator(anchor, max(len(values), 1))
    acc.add(values)
    return acc.finish(bins, quantiles)


def normal_scores(x: np.ndarray, prof: NumericProfile) -> np.ndarray:
    """Probit of the anchor CDF: a Gaussian-copula transform that makes correlation tests robust."""
    from scipy.special import ndtri

    uq, mid, lo = _score_grid(prof)
    if len(uq) == 1:
        return np.zeros(len(x))
    return ndtri(np.clip(np.interp(x, uq, mid), lo, 1 - lo))


def _score_grid(prof: NumericProfile) -> tuple[np.ndarray, np.ndarray, float]:
    """(distinct quantile values, CDF midpoints between the left and right limits there, the clip bound
    0.5 / n) through which `normal_scores` maps values; computed once per profile, like its CDF limits."""
    cached = prof.__dict__.get("_score_grid")
    if cached is None:
        uq, left, right = prof.cdf_limits()
        cached = prof.__dict__["_score_grid"] = (uq, (left + right) / 2 if left is not right else right,
                                                 0.5 / max(prof.n, 2))
    return cached


def normal_scores_matrix(m: np.ndarray, profiles: Sequence[NumericProfile]) -> np.ndarray:
    """`normal_scores` of every column of `m` (rows x features) through its profile: the same values, faster.

    The columns are stacked as features x rows and each is interpolated in sorted order (one `argsort` over
    the stack): `np.interp` finds a sorted point's grid cell from the previous one's, about 4x faster than a
    binary search per unsorted row, and the sort costs less than it saves. One `ndtri` over the stack, then
    the scores go back to the rows' order. Element by element the arithmetic is `normal_scores`' (a test
    checks they are equal).
    """
    from scipy.special import ndtri

    stack = np.ascontiguousarray(m.T, dtype=float)
    order = np.argsort(stack, axis=1)
    s = np.take_along_axis(stack, order, axis=1)
    lo = np.empty((len(profiles), 1))
    for j, prof in enumerate(profiles):
        uq, mid, lo[j] = _score_grid(prof)
        s[j] = 0.5 if len(uq) == 1 else np.interp(s[j], uq, mid)  # ndtri(0.5) = 0: normal_scores' zeros
    z = ndtri(np.clip(s, lo, 1 - lo, out=s), out=s)
    out = np.empty_like(z)
    np.put_along_axis(out, order, z, axis=1)
    return np.ascontiguousarray(out.T)  # rows x features in C order, as np.column_stack gives


def _joint_from_rows(rows: Mapping[str, np.ndarray], feats: dict[str, NumericProfile],
                     levels: Mapping[str, int] | None = None) -> JointProfile | None:
    """The joint profile of row-aligned columns: numeric `feats` (scored through those CDFs) and categorical
    `levels` (their columns already joint codes, NaN where missing); rows missing any of them are dropped."""
    names = [f for f in feats if feats[f].std > 0]
    cats = list(levels or {})
    m = np.column_stack([rows[f] for f in (*names, *cats)])
    m = m[np.isfinite(m).all(axis=1)]
    if len(m) < 2:
        return None
    p = len(names)
    z = normal_scores_matrix(m[:, :p], [feats[f] for f in names])
    codes = m[:, p:].astype(np.uint16)
    return JointProfile(names, z.astype(np.float32), np.corrcoef(z, rowvar=False), cats, codes,
                        [int(levels[c]) for c in cats] if levels else [])


def joint_levels(prof: CategoricalProfile) -> int:
    """Codes of a categorical feature's joint column: its anchor's top `JOINT_CATEGORIES` categories + other."""
    return min(len(prof.categories), JOINT_CATEGORIES) + 1


def _joint_codes(local: np.ndarray, book: Mapping[Any, float], prof: CategoricalProfile, levels: int) -> np.ndarray:
    """A builder's row-aligned local codes (first-seen order in `book`, NaN: missing) -> the anchor's joint codes."""
    index, other = prof.index(), levels - 1
    remap = np.array([min(index.get(k, other), other) for k in book if k is not None] or [other], dtype=float)
    fin = np.isfinite(local)
    out = np.full(len(local), np.nan)
    out[fin] = remap[local[fin].astype(np.int64)]
    return out


def joint_profile(columns: dict[str, Sequence[Any]], feats: dict[str, NumericProfile], *, rows: int,
                  rng: np.random.Generator) -> JointProfile | None:
    names = [f for f in feats if feats[f].std > 0]
    if len(names) < 2:
        return None
    n = len(next(iter(columns.values())))
    idx = np.sort(rng.choice(n, size=min(rows, n), replace=False)).tolist()
    return _joint_from_rows({f: _row_floats([columns[f][i] for i in idx]) for f in names}, feats)


def _tentative_kind(values: Sequence[Any], max_categories: int) -> str | None:
    """`infer_kind` of the first values of a column that hold something (None: nothing yet)."""
    return infer_kind(values, max_categories) if any(v is not None for v in values) else None


def _numbers_only(values: Sequence[Any]) -> bool:
    return all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values)


class KindInference:
    """`infer_kind` over columns read in batches: the same answers as on each whole column at once.

    >>> k = KindInference(max_categories=10)
    >>> k.add({"a": [1, 2.5], "b": ["x", None]}); k.add({"a": ["y"], "b": ["x y"]})
    >>> k.kinds()
    {'a': 'categorical', 'b': 'text'}
    """

    def __init__(self, max_categories: int, skip: Sequence[str] = ()) -> None:
        self.max_categories, self.skip = max_categories, set(skip)
        self.state: dict[str, _KindState] = {}

    def add(self, batch: Mapping[str, Sequence[Any]]) -> None:
        for name, values in batch.items():
            if name in self.skip:
                continue
            st = self.state.setdefault(name, _KindState())
            present = [v for v in values if v is not None]
            if not present:
                continue
            st.present = True
            st.numeric = st.numeric and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
            st.dicts = st.dicts and all(isinstance(v, dict) for v in present)
            if not st.spaced and len(st.distinct) <= self.max_categories:
                new = {str(v) for v in present} - st.distinct
                st.spaced = any(" " in s for s in new)
                st.distinct |= new

    def kinds(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, st in self.state.items():
            if not st.present or st.numeric:
                out[name] = NUMERIC
            elif st.dicts:
                out[name] = PROBS
            elif len(st.distinct) <= self.max_categories and not st.spaced:
                out[name] = CATEGORICAL
            else:
                out[name] = TEXT
        return {name: str(kind) for name, kind in out.items()}


@dataclass
class _KindState:
    present: bool = False
    numeric: bool = True
    dicts: bool = True
    spaced: bool = False
    distinct: set[str] = field(default_factory=set)


Accumulator = _NumericAccumulator | _CategoricalAccumulator | _TextAccumulator | _ProbsAccumulator


class ProfileBuilder:
    """Builds a reference profile from batches of rows (`add`), then `finish`; see the bounds above.

    A column whose kind is neither given nor the anchor's is inferred from its first values; when a
    later batch contradicts that guess, `contradicted` names the column and the caller reads the data
    again with the kinds `KindInference` finds (a profile is never built on a wrong guess).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=3000)
    >>> b = ProfileBuilder("ref", "real", rng=np.random.default_rng(1))
    >>> for lo in range(0, 3000, 1000):
    ...     b.add({"inputs.x": x[lo:lo + 1000].tolist()}, 1000)
    >>> streamed = b.finish()
    >>> whole = build_profile("ref", "real", {"inputs.x": x.tolist()}, rng=np.random.default_rng(1))
    >>> bool((streamed.features["inputs.x"].quantiles == whole.features["inputs.x"].quantiles).all())
    True
    """

    def __init__(self, name: str, role: str, *, kinds: Mapping[str, str] | None = None,
                 anchor: ReferenceProfile | None = None, anchored_by: str | None = None, bins: int = 20,
                 quantiles: int = 1024, max_categories: int = 1000, joint_sample: int = 5000,
                 rng: np.random.Generator, exact_rows: int = EXACT_ROWS, text_sample: int = TEXT_SAMPLE,
                 text_tokens: int = TEXT_TOKENS, keep_rows: Sequence[str] = ()) -> None:
        self.name, self.role, self.anchor, self.anchored_by = name, role, anchor, anchored_by
        self.kinds_given = dict(kinds or {})
        self.bins, self.quantiles, self.max_categories = bins, quantiles, max_categories
        self.joint_sample, self.rng = joint_sample, rng
        self.exact_rows, self.text_sample, self.text_tokens = exact_rows, text_sample, text_tokens
        self.keep_rows = set(keep_rows)
        self.columns: list[str] = []  # every column seen, in first-seen order
        self.seen: set[str] = set()
        self.n_rows = 0
        self.kinds: dict[str, str] = {}  # kind of every profiled column (given, the anchor's, or guessed)
        self.guessed: set[str] = set()
        self.accs: dict[str, Accumulator] = {}
        self.pending: set[str] = set()  # columns of unknown kind holding only nulls so far
        self.contradicted: str | None = None
        self.rows: dict[str, list[np.ndarray]] = {}  # row-aligned floats (joint sample, `keep_rows`)
        self.joint_res: _Reservoir | None = None
        self.joint_at = np.zeros(0, dtype=np.int64)
        self.joint_vals: dict[str, np.ndarray] = {}
        # the joint sample's columns: every numeric one of an anchor (None), the anchor's joint features of a
        # synthetic set (empty: its anchor has no joint sample, so neither does the set)
        self.joint_names: frozenset[str] | None = None
        if anchor is not None:
            self.joint_names = frozenset(anchor.joint.names if anchor.joint is not None else ())
        self.codebooks: dict[str, dict[Any, float]] = {}  # categorical joint columns: value -> local code

    def _in_joint(self, name: str, kind: str) -> bool:
        return kind in (NUMERIC, CATEGORICAL) and (self.joint_names is None or name in self.joint_names)

    def _row_values(self, name: str, values: Sequence[Any]) -> np.ndarray:
        """Row-aligned floats of a column as the joint sample keeps it while building: a categorical joint
        column's values as local codes (first-seen order, NaN: null), any other's `_row_floats`."""
        book = self.codebooks.get(name)
        if book is None:
            return _row_floats(values)
        keys = values if set(map(type, values)) <= _STR_OR_NONE else [None if v is None else str(v) for v in values]
        for k in set(keys) - book.keys():
            book[k] = float(len(book) - 1)  # None holds the first entry (NaN)
        return np.fromiter(map(book.__getitem__, keys), dtype=float, count=len(keys))

    # -- columns ------------------------------------------------------------------------------
    def _kind_of(self, name: str) -> str | None:
        kind = self.kinds_given.get(name)
        if not kind and self.anchor is not None and name in self.anchor.features:
            kind = self.anchor.features[name].kind
        return kind or None

    def _start(self, name: str, kind: str, missing: int) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown feature kind {kind!r} for {name}")
        ref = self.anchor.features.get(name) if self.anchor is not None else None
        acc: Accumulator
        if kind == NUMERIC:
            assert ref is None or isinstance(ref, NumericProfile)
            acc = _NumericAccumulator(ref, self.exact_rows)
        elif kind == CATEGORICAL:
            assert ref is None or isinstance(ref, CategoricalProfile)
            acc = _CategoricalAccumulator(ref, self.max_categories)
        elif kind == TEXT:
            assert ref is None or isinstance(ref, TextProfile)
            acc = _TextAccumulator(ref, self.text_sample, self.text_tokens)
        else:
            assert ref is None or isinstance(ref, ProbsProfile)
            acc = _ProbsAccumulator(ref, self.exact_rows)
        if missing:
            acc.add_missing(missing)
        self.kinds[name], self.accs[name] = kind, acc
        if self._in_joint(name, kind) or name in self.keep_rows:
            self.rows[name] = [np.full(missing, np.nan)] if missing else []
            if kind == CATEGORICAL and self._in_joint(name, kind):
                self.codebooks[name] = {None: np.nan}
            if self.joint_res is not None and self._in_joint(name, kind):
                self.joint_vals[name] = np.full(self.joint_sample, np.nan)

    def _new_column(self, name: str) -> None:
        self.columns.append(name)
        kind = self._kind_of(name)
        if self.anchor is not None:
            ref = self.anchor.features.get(name)
            if ref is None or ref.kind != kind:
                if name in self.keep_rows:
                    self.rows[name] = [np.full(self.n_rows, np.nan)] if self.n_rows else []
                return  # nothing to compare against on the anchor's side
        if kind is None:
            self.pending.add(name)
        else:
            self._start(name, kind, self.n_rows)

    def _contradicts(self, name: str, values: Sequence[Any]) -> bool:
        kind, acc = self.kinds[name], self.accs[name]
        if kind == NUMERIC:
            return not _numbers_only(values)
        if kind == PROBS:
            return not all(v is None or isinstance(v, dict) for v in values)
        if kind == CATEGORICAL:
            assert isinstance(acc, _CategoricalAccumulator)
            return acc.spaced or len(acc.counts) > self.max_categories
        return False

    # -- batches ------------------------------------------------------------------------------
    def add(self, batch: Mapping[str, Sequence[Any]], n: int) -> None:
        """Add n rows given as columns (a column missing from the batch is null in its rows)."""
        if self.contradicted is not None:
            return
        for name in batch:
            if name not in self.seen:
                self.seen.add(name)
                self._new_column(name)
        for name in self.columns:
            values = batch.get(name)
            if name in self.pending:
                kind = _tentative_kind(values, self.max_categories) if values is not None else None
                if kind is None:
                    continue
                self.pending.discard(name)
                self._start(name, kind, self.n_rows)  # null in every row before this batch
                self.guessed.add(name)
            acc = self.accs.get(name)
            if acc is not None:
                if values is None:
                    acc.add_missing(n)
                else:
                    acc.add(values)
                    if name in self.guessed and self._contradicts(name, values):
                        self.contradicted = name
                        return
            if name in self.rows:
                self.rows[name].append(self._row_values(name, values) if values is not None else np.full(n, np.nan))
        if self.joint_names is None or self.joint_names:
            self._joint(batch, n)
        self.n_rows += n

    def _joint(self, batch: Mapping[str, Sequence[Any]], n: int) -> None:
        numeric = [f for f, k in self.kinds.items() if self._in_joint(f, k)]
        if self.joint_res is None:
            if self.n_rows + n <= self.exact_rows:
                return
            # too many rows to keep: a reservoir of joint_sample rows from here on
            self.joint_res = _Reservoir(self.joint_sample, np.random.default_rng([SAMPLE_SEED, 3]))
            self.joint_at = np.full(self.joint_sample, -1, dtype=np.int64)
            slots, pos = self.joint_res.offer(self.n_rows + n)
            self.joint_at[slots] = pos
            for f in numeric:
                col = np.concatenate(self.rows[f])
                self.joint_vals[f] = np.full(self.joint_sample, np.nan)
                self.joint_vals[f][slots] = col[pos]
                if f not in self.keep_rows:
                    del self.rows[f]
            return
        slots, pos = self.joint_res.offer(n)
        if not len(slots):
            return
        self.joint_at[slots] = self.n_rows + pos
        for f in numeric:
            values = batch.get(f)
            self.joint_vals[f][slots] = (self._row_values(f, [values[p] for p in pos.tolist()]) if values is not None
                                         else np.nan)

    def kept_rows(self) -> dict[str, np.ndarray]:
        """Row-aligned floats of the `keep_rows` columns (NaN: null or not a number), every row."""
        return {f: np.concatenate(self.rows[f]) if self.rows[f] else np.empty(0)
                for f in self.keep_rows if f in self.rows}

    def inferred(self) -> list[str]:
        """Columns whose kind was neither given nor the anchor's."""
        return [c for c in self.columns if self._kind_of(c) is None]

    def finish(self) -> ReferenceProfile:
        if self.contradicted is not None:
            raise ValueError(f"the kind guessed for {self.contradicted} was contradicted; infer kinds and rebuild")
        for name in list(self.pending):  # never a value: numeric, all null (as infer_kind says)
            self._start(name, NUMERIC, self.n_rows)
            self.pending.discard(name)
        feats: dict[str, FeatureProfile] = {}
        for name in self.columns:
            acc = self.accs.get(name)
            if isinstance(acc, _NumericAccumulator):
                feats[name] = acc.finish(self.bins, self.quantiles)
            elif isinstance(acc, _CategoricalAccumulator):
                feats[name] = acc.finish()
            elif isinstance(acc, _TextAccumulator):
                feats[name] = acc.finish(self.rng)
            elif isinstance(acc, _ProbsAccumulator):
                feats[name] = acc.finish(self.bins, self.quantiles)
        return ReferenceProfile(self.name, self.role, self.anchored_by, self.n_rows, feats, self._finish_joint(feats))

    def _finish_joint(self, feats: Mapping[str, FeatureProfile]) -> JointProfile | None:
        """The bounded joint sample, as normal scores of the anchor's CDFs (an anchor's: its own).

        A synthetic set keeps the anchor's joint features it holds, in the anchor's order, scored through
        the anchor's profiles, so its sample and the anchor's live in one space (attribution embeds both).
        Its rows are drawn with a constant seed, not the caller's generator: a profile is reproducible and
        adding the sample leaves the caller's random stream as it was.
        """
        scale: dict[str, NumericProfile]  # whose CDF scores each numeric column
        coding: dict[str, tuple[CategoricalProfile, int]]  # whose categories code each categorical one, and levels
        if self.anchor is None:
            scale = {f: p for f, p in feats.items() if isinstance(p, NumericProfile) and p.std > 0}
            coding = {f: (p, joint_levels(p)) for f, p in feats.items()
                      if isinstance(p, CategoricalProfile) and len(p.categories) >= 2 and f in self.codebooks}
            rng = self.rng
        else:
            if self.anchor.joint is None:
                return None
            scale, coding = {}, {}
            for f in self.anchor.joint.features:
                a = self.anchor.features.get(f)
                if isinstance(feats.get(f), NumericProfile) and isinstance(a, NumericProfile) and a.std > 0:
                    scale[f] = a
            for f, levels in zip(self.anchor.joint.categorical, self.anchor.joint.levels, strict=True):
                c = self.anchor.features.get(f)
                if isinstance(feats.get(f), CategoricalProfile) and isinstance(c, CategoricalProfile):
                    coding[f] = (c, levels)
            rng = np.random.default_rng([SAMPLE_SEED, 4])
        names = list(scale)
        # two numeric features at least, as before categoricals joined: the numeric part alone feeds the
        # correlation test and the DCR gate
        if len(names) < 2 or self.n_rows == 0:
            return None
        if self.joint_res is None:
            n = self.n_rows
            idx = np.sort(rng.choice(n, size=min(self.joint_sample, n), replace=False))
            rows = {f: np.concatenate(self.rows[f])[idx] for f in (*names, *coding)}
        else:
            filled = np.nonzero(self.joint_at >= 0)[0]
            order = filled[np.argsort(self.joint_at[filled])]
            rows = {f: self.joint_vals[f][order] for f in (*names, *coding)}
        for f, (prof, levels) in coding.items():
            rows[f] = _joint_codes(rows[f], self.codebooks[f], prof, levels)
        return _joint_from_rows(rows, scale, {f: levels for f, (_, levels) in coding.items()})


def build_profile(name: str, role: str, columns: Mapping[str, Sequence[Any]], *, kinds: dict[str, str] | None = None,
                  anchor: ReferenceProfile | None = None, anchored_by: str | None = None, bins: int = 20,
                  quantiles: int = 1024, max_categories: int = 1000, joint_sample: int = 5000,
                  rng: np.random.Generator, exact_rows: int = EXACT_ROWS) -> ReferenceProfile:
    """Profile every column; a synthetic set is binned on its anchor's grid and categories."""
    n_rows = len(next(iter(columns.values()))) if columns else 0
    builder = ProfileBuilder(name, role, kinds=kinds, anchor=anchor, anchored_by=anchored_by, bins=bins,
                             quantiles=quantiles, max_categories=max_categories, joint_sample=joint_sample,
                             rng=rng, exact_rows=exact_rows, text_sample=max(n_rows, 1), text_tokens=2 ** 62)
    builder.add(columns, n_rows)  # one batch: each guessed kind is infer_kind of its whole column
    return builder.finish()
