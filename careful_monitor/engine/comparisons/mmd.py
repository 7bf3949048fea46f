"""Multivariate test: linear-time MMD with random Fourier features, Hotelling null on the anchor's covariance.

Every numeric joint feature is mapped to normal scores through the anchor's own CDF (a Gaussian copula,
as in the correlation test), so the test sees dependence rather than re-testing marginals on raw scales;
every categorical one to a one-hot block over the anchor's top categories (`profile.JOINT_CATEGORIES`, the
rest "other"), scaled by ONE_HOT: two rows with different categories are sqrt(2) apart in that block, the
root-mean-square distance of two independent draws of a normal score, so one categorical feature weighs
in the kernel at most as much as one numeric feature (as much when its categories are many and even).
Rows are the unit; z below is a row's scores and one-hot blocks side by side. Each row z goes through D
random Fourier features
phi(z) = sqrt(2/D) cos(W z + b), W ~ N(0, 1/sigma^2), b ~ U(0, 2 pi): phi(z).phi(z') approximates a
Gaussian kernel of bandwidth sigma (Rahimi & Recht 2007), so ||mean phi(window) - mean phi(anchor)||
estimates the MMD (Gretton et al. 2012). Half of the frequencies use sigma = the median pairwise
distance of the anchor's joint sample (the median heuristic), half sigma / 2: with the median alone
the x2 = +-x1 change below reaches only p ~ 1e-3 at n = 500, with both ~ 1e-50. W and b come from a
fixed seed and sigma from the stored joint sample, so they are derived from the profile and the
same in every process; they, the anchor's feature mean mu and covariance S (from the joint
sample's N rows) are computed once per profile and cached on it.

Null: the window's mean feature vector m of n rows is, by the CLT, normal around mu with
covariance S/n, and the features are bounded (|phi| <= sqrt(2/D)), so the CLT is accurate already
at n = 200. T^2 = (m - mu)' S^-1 (m - mu) / (1/n + 1/N) is Hotelling's statistic; with S estimated
from N rows, T^2 (N - r) / (r (N - 1)) ~ F(r, N - r). S^-1 is taken on the eigenvectors whose
eigenvalue is at least 0.3 % of the largest (rank r, about 15-25 of D = 32): the discarded
directions carry almost no MMD, but their whitened features are heavy-tailed and their eigenvalues
poorly estimated, which inflated the F tail at n = 200 (with a 1e-9 floor 5.7 % of stationary
windows fell below 0.01). Measured over 40 anchors x 25 windows each: KS p 0.14-0.67 and 0.8-1.4 %
below 0.01 at n = 200 and 1000, anchors of 5,000 and 20,000 rows. This parametric null resolves
p-values far below 1e-6 at any window size in [min_size, size], which a permutation null of a few
hundred splits cannot, and costs one (n x d) @ (d x D) product per window. Effect: the
bias-corrected MMD estimate sqrt(max(0, ||m - mu||^2 - trace(S) (1/n + 1/N))) (floor
`min_effect.mmd`). Reported as feature `joint`, test `mmd`, in the window's BH family. The joint
sample holds the anchor's numeric and categorical features (no text, no probs), so that is what it tests.
A one-hot block costs no matrix product: its share of z W is one row of W per category (`FourierMap`
gathers it), so a categorical feature costs a gather of n x D values whatever its number of categories.
Why one-hot rather than hashing: the codes are already bounded (at most JOINT_CATEGORIES + 1 per feature),
so hashing would only merge categories (a collision hides their dependence) without saving time.

It flags dependence that keeps marginals and correlation: x2 = +-x1 with a random sign against x2
independent of x1 (both have normal marginals and zero correlation), which the correlation test cannot see,
and a numeric feature whose law depends on a categorical one (x high when c = "a", low when c = "b")
against a naive generator that draws c independently of x (`scenarios.categorical_dependence`).

>>> import numpy as np
>>> from careful_monitor.engine.profile import build_profile
>>> rng = np.random.default_rng(10)
>>> ref = build_profile("a", "real", {"inputs.x": rng.normal(size=5000).tolist(),
...                                    "inputs.y": rng.normal(size=5000).tolist()}, rng=rng)
>>> x = rng.normal(size=1000); y = x * rng.choice([-1.0, 1.0], 1000)
>>> r = MMD().compare_window(ref, {"inputs.x": x, "inputs.y": y})
>>> r.p_value < 1e-6 and r.effect > 0.01
True
>>> y = rng.normal(size=1000)
>>> MMD().compare_window(ref, {"inputs.x": x, "inputs.y": y}).p_value > 1e-3
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import special

from careful_monitor.engine.comparisons.copula import joint_rows
from careful_monitor.engine.profile import JointProfile, ReferenceProfile
from careful_monitor.engine.types import TestResult

FEATURES = 32  # D: random Fourier features (cost per window ~ n x d x D)
SEED = 20261201  # the frequencies' seed: a constant, so every process derives the same ones
MEDIAN_ROWS = 1000  # rows of the joint sample the median heuristic looks at
BANDWIDTHS = (1.0, 0.5)  # multiples of the median-heuristic sigma, each for an equal share of the features
EIGEN_FLOOR = 3e-3  # directions of S with less variance than this share of the largest are not tested
ONE_HOT = 1.0  # a categorical feature's one-hot scale: different categories are sqrt(2) ONE_HOT apart


@dataclass(frozen=True, slots=True)
class FourierMap:
    """Random Fourier features of rows of normal scores and category codes: z W + one row of each
    categorical feature's table per row (its one-hot block times its rows of W) + b."""

    w: np.ndarray  # numeric features x D
    tables: tuple[np.ndarray, ...]  # per categorical feature: levels x D (ONE_HOT x its one-hot rows of W)
    b: np.ndarray  # D

    def features(self, z: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """phi = sqrt(2/D) cos(arg), in the map's dtype (rows of z and codes side by side)."""
        arg = z.astype(self.w.dtype, copy=False) @ self.w + self.b
        for j, table in enumerate(self.tables):
            arg += table[codes[:, j]]
        return self.w.dtype.type(np.sqrt(2.0 / len(self.b))) * np.cos(arg)

    def astype(self, dtype: type) -> FourierMap:
        return FourierMap(self.w.astype(dtype), tuple(t.astype(dtype) for t in self.tables), self.b.astype(dtype))


def one_hot(codes: np.ndarray, levels: tuple[int, ...] | list[int]) -> np.ndarray:
    """Rows of category codes -> their ONE_HOT-scaled one-hot blocks side by side (rows x sum(levels))."""
    out = np.zeros((len(codes), int(sum(levels))))
    offset = 0
    for j, k in enumerate(levels):
        out[np.arange(len(codes)), offset + codes[:, j]] = ONE_HOT
        offset += k
    return out


def fourier_map(z: np.ndarray, codes: np.ndarray, levels: tuple[int, ...] | list[int], rng: np.random.Generator,
                features: int = FEATURES, bandwidths: tuple[float, ...] = BANDWIDTHS) -> FourierMap:
    """`random_frequencies` for rows of scores `z` and category `codes` (with `levels` codes each), drawn on the
    rows with their one-hot blocks: without categorical features W and b are exactly `random_frequencies(z)`'s."""
    dense = z
    if len(levels):  # only the rows the median heuristic reads are expanded to one-hot blocks
        dense = np.hstack([z[:MEDIAN_ROWS], one_hot(codes[:MEDIAN_ROWS], levels)])
    w, b = random_frequencies(dense, rng, features, bandwidths)
    p = z.shape[1]
    tables = tuple(ONE_HOT * t for t in np.split(w[p:], np.cumsum(levels)[:-1])) if len(levels) else ()
    return FourierMap(w[:p], tables, b)


@dataclass(frozen=True, slots=True)
class Null:
    """What the test needs of an anchor sample (rows of scores and codes, or of text embeddings: see
    `comparisons.embedding_mmd`), computed once per profile by `Null.of`."""

    fmap: FourierMap  # frequencies and phases
    mu: np.ndarray  # anchor mean feature vector
    whiten: np.ndarray  # D x r: S^-1/2 on the kept eigenvectors
    trace: float  # trace(S)
    rank: int
    n_ref: int

    @classmethod
    def of(cls, fmap: FourierMap, rows: np.ndarray, codes: np.ndarray) -> Null:
        """The null of the anchor sample `rows` (and its category `codes`) under the random features `fmap`."""
        mu, whiten, cov = whitening(fmap.features(rows, codes))
        return cls(fmap, mu, whiten, float(np.trace(cov)), whiten.shape[1], len(rows))

    def test(self, name: str, rows: np.ndarray, codes: np.ndarray) -> TestResult | None:
        """Hotelling's T^2 of the window's mean feature vector with its F(r, N - r) null, and the
        bias-corrected MMD as the effect; None when the anchor sample is too small for the rank."""
        if self.n_ref <= self.rank + 1:
            return None
        n = len(rows)
        d = self.fmap.features(rows, codes).mean(axis=0) - self.mu
        scale = 1.0 / n + 1.0 / self.n_ref
        t2 = float(np.sum((d @ self.whiten) ** 2)) / scale
        r, big_n = self.rank, self.n_ref
        f_stat = t2 * (big_n - r) / (r * (big_n - 1))
        p = float(special.fdtrc(r, big_n - r, f_stat))
        effect = float(np.sqrt(max(0.0, float(d @ d) - self.trace * scale)))
        return TestResult(name, t2, p, effect)


def random_frequencies(sample: np.ndarray, rng: np.random.Generator, features: int = FEATURES,
                       bandwidths: tuple[float, ...] = BANDWIDTHS) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) of `features` random Fourier features for rows like `sample`: `bandwidths` x the median
    pairwise distance of its first MEDIAN_ROWS rows, each for an equal share of the features."""
    head = sample[:MEDIAN_ROWS]
    sq = (head * head).sum(axis=1)
    dist2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * head @ head.T, 0.0)
    iu = np.triu_indices(len(head), k=1)
    sigma = float(np.sqrt(np.median(dist2[iu]))) if len(iu[0]) else 1.0
    sigma = sigma if sigma > 0 else 1.0
    scales = sigma * np.repeat(bandwidths, -(-features // len(bandwidths)))[:features]
    w = rng.normal(size=(sample.shape[1], features)) / scales
    b = rng.uniform(0.0, 2.0 * np.pi, features)
    return w, b


def whitening(phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, D x r map to S^-1/2 on the kept eigenvectors, covariance S) of feature rows `phi`; directions
    with less variance than EIGEN_FLOOR of the largest are dropped (see the module's null)."""
    mu = phi.mean(axis=0)
    cov = np.cov(phi, rowvar=False)
    vals, vecs = np.linalg.eigh(cov)
    keep = vals >= EIGEN_FLOOR * max(float(vals.max()), 1e-300)
    return mu, vecs[:, keep] / np.sqrt(vals[keep]), cov


def _null(joint: JointProfile, idx: tuple[int, ...], cidx: tuple[int, ...]) -> Null:
    cache = joint.__dict__.setdefault("_mmd", {})
    found = cache.get((idx, cidx))
    if found is not None:
        return found
    z = joint.sample[:, list(idx)].astype(float)
    codes = joint.codes[:, list(cidx)].astype(np.intp)
    fmap = fourier_map(z, codes, [joint.levels[j] for j in cidx], np.random.default_rng(SEED))
    found = cache[(idx, cidx)] = Null.of(fmap, z, codes)
    return found


class MMD:
    """Random-Fourier-feature MMD between the window and the anchor's joint sample, Hotelling/F null."""

    name = "mmd"
    effect_key = "mmd"

    def compare_window(self, reference: ReferenceProfile, window: Mapping[str, np.ndarray]) -> TestResult | None:
        rows = joint_rows(reference, window)
        if rows is None:
            return None
        joint = rows.joint
        null = _null(joint, tuple(joint.features.index(f) for f in rows.features),
                     tuple(joint.categorical.index(f) for f in rows.categorical))
        return null.test(self.name, rows.scores, rows.codes)
