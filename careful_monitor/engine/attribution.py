"""Attribution: does a window's drift point toward the synthetic sets, and how much of each is in it?

All features' histograms (on the anchor's grid) are stacked into one vector per reference. With
delta = window - anchor and d_s = S - anchor for every synthetic set S:

- **share** (joint): one constrained least-squares fit of the window as a mixture of the anchor and
  all synthetic sets at once, delta ~ sum_s w_s d_s with w_s >= 0 and sum_s w_s <= 1 (the anchor's
  weight is 1 - sum_s w_s >= 0). The Gram matrix G = D'D is corrected for the sampling noise of the
  references (its diagonal by each set's and the anchor's noise, its off-diagonal by the anchor's,
  which the directions share); the fit is `scipy.optimize.nnls` on the Cholesky-like factor of G,
  refitted with the sum held at 1 (a heavily weighted row) when the unconstrained-sum solution
  exceeds 1. The right-hand side D' delta is corrected too: delta and every d_s subtract the same sampled
  anchor, so <delta, d_s> holds the anchor's noise once (E = (G w)_s + the anchor's noise, the
  off-diagonal term of G's correction), which uncorrected biases every share up by ~ G^-1 (noise)
  (+0.012 for the bench's collapsed set, and a spurious +0.01 for a set absent from the window). With one
  set this is (<delta, d> - anchor noise) / |d|^2 clipped to [0, 1].
  Standard errors are the sandwich G^-1 V G^-1, V = D' Cov(delta) D with the window's multinomial
  covariance (diag(p) - pp')/n at the anchor's p, the joint block's (below) and the two blocks'
  covariance: both see the same rows, and the joint block embeds the very features whose histograms
  are stacked (their window noise correlates ~0.6 at the anchor's law), so leaving it out made the SE
  ~25 % too small. That V decides identifiability and groups; the reported `share_se` and
  `group_share_se` add the spread between the fitted mixture's components (a window that is part S
  is more spread along d_S than the anchor: another ~25 % at shares 0.3-0.7, see `_fit`).
  The references' own sampling error is a per-reference-set offset left out of the SE (sd ~0.006
  in the bench's world, against a window SE of ~0.023).
- **identifiability**: a set whose own fit (alone with the anchor) has a noise-corrected |d|^2 <= 0
  or a standard error above `max_share_se` cannot be told from the anchor at this window size: it
  stays out of the joint fit and is reported as today (share null, not identifiable). Among the
  rest, every eigen-direction u of G whose estimated weight u'w has a standard error above
  `max_share_se`, or whose |D u|^2 is within twice the references' own sampling noise (an exact
  blend), is a combination of sets the window cannot separate; the sets with |u_s| >= 0.3 in it
  form a group (merged when directions overlap). Each member gets share null, share_se inf and
  `group_share` (the group's joint share, the sum of the members' fitted weights) with its
  standard error (the active-set sandwich) and `indistinguishable_from` (the other members). The
  groups depend on the window size and the references only, not on the window's values. Along
  an unresolvable direction that changes the total (a blend of a set and the anchor), the fit is
  pulled toward less total share until a bound stops it, so `group_share` is the least synthetic
  mass that explains the window; along one that does not (a blend of two resolvable parents) the
  total is identified as it is.
- **affinity**: the cosine between delta and d (noise-corrected), 1 when the window moved
  straight toward S, ~0 when it moved some other way; per set, as before.

**The joint block.** Histograms are marginal: a generator that kept every marginal but lost the
dependence between features (x2 = +-x1 with a random sign in reality, x2 independent of x1 in a naive
per-column generator) has d ~ 0 there and could never be blamed. So the stacked vector gains one more
block, a mean embedding of the rows: each row's copula scores z (normal scores through the *anchor's*
CDFs) and category codes (the *anchor's* top categories, one-hot: the anchor's joint sample, each
synthetic set's own joint sample and the window's rows all live in that one space) go through D random
Fourier features phi(z) (the MMD test's construction, `comparisons.mmd.fourier_map`: frequencies from the
generator passed in, bandwidths from the anchor's sample, a categorical feature weighing at most what a
numeric one does), so a set that lost the dependence between a categorical and a numeric feature is seen too,
whitened by the anchor's feature covariance S (y = c S^-1/2 (phi - mu_anchor), on the eigen-directions
MMD keeps, rank r) and scaled by a weight c. A mean embedding is linear in a mixture exactly as a
histogram is (the window's mean of phi is the mixture of the references' means), so the same fit,
noise corrections and sandwich apply with the block's own terms: direction c S^-1/2 (mu_S - mu_anchor),
window covariance c^2 I / n_rows at the anchor's law, reference noise c^2 r / N_anchor (shared by all
sets, and in <delta, d_s>) + tr Cov_S(y) / N_S. Its covariance with a histogram block,
Cov(h_f(x), y(x)' D) / n_f per row x, is measured once on the anchor's joint sample (`_block_cov`: a
row's histogram bin is known from its copula score or category code).
The weight: c^2 = (sum over the embedded features of p'(1 - p), their
histograms' window noise) / r, so the block carries as much window noise as the marginal histograms of
the features it embeds: dependence has the say of those features' marginals together, no more. A set
seen only through the joint block has a share whose standard error does not depend on c at all
(1 / sqrt(n |d|^2) in whitened units); c only decides how the two kinds of evidence are mixed when both
see a set.

>>> import numpy as np
>>> a = {"f": np.array([250, 250, 250, 250]) * 1000}; s = {"f": np.array([100, 400, 400, 100]) * 1000}
>>> model = AttributionModel(a, {"S": s})
>>> w = {"f": np.array([200, 300, 300, 200]) * 10}
>>> r = model.attribute(w)[0]
>>> round(r.share, 2), r.affinity > 0.9, r.group_share, r.indistinguishable_from
(0.33, True, None, ())
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls
from scipy.special import ndtr

from careful_monitor.engine.comparisons.copula import MIN_ROWS
from careful_monitor.engine.comparisons.mmd import fourier_map, whitening
from careful_monitor.engine.profile import ReferenceProfile
from careful_monitor.engine.types import Attribution

#: a set belongs to a poorly identified eigen-direction u of the Gram matrix when |u_s| is at least this
GROUP_LOADING = 0.3
#: the joint block's random Fourier features and bandwidths (multiples of the anchor sample's median distance).
#: More and narrower than the MMD test's 32 at (1, 0.5): a share needs the naive-generator direction resolved
#: (x2 = +-x1 among 4 features: share SE ~0.02 at n = 1,000 over 6 frequency draws, 0.03-0.08 with 64 at (1, 0.5)
#: and as bad as 0.2 with 32), a test only needs it detected.
JOINT_FEATURES = 128
JOINT_BANDWIDTHS = (0.5, 0.25)


@dataclass(frozen=True, slots=True)
class JointReferences:
    """The references' joint samples as copula scores and category codes of one feature list (the anchor's
    order, CDFs and categories).

    `synthetic` holds the sets whose own joint sample covers every one of `features`; a set without one
    (its anchor had none, or it lacks a feature) simply has no joint block. `categorical` holds the anchor's
    categorical joint features that every such set's sample holds too: a set stored before format 3 has
    none, and then the block embeds the numeric features only, as it did before.
    """

    features: tuple[str, ...]  # numeric
    anchor: np.ndarray  # N_anchor x len(features)
    synthetic: Mapping[str, np.ndarray]  # N_S x len(features), scored through the anchor's CDFs
    categorical: tuple[str, ...] = ()
    levels: tuple[int, ...] = ()  # codes of each categorical feature
    anchor_codes: np.ndarray | None = None  # N_anchor x len(categorical)
    synthetic_codes: Mapping[str, np.ndarray] | None = None  # N_S x len(categorical), the anchor's codes

    @property
    def names(self) -> tuple[str, ...]:
        """The embedded features: numeric, then categorical (the columns of the window's scores, then codes)."""
        return (*self.features, *self.categorical)

    def codes_of(self, name: str | None) -> np.ndarray:
        """The anchor's (None) or a set's codes, rows x categorical (no columns without categorical features)."""
        codes = self.anchor_codes if name is None else (self.synthetic_codes or {}).get(name)
        if codes is None:
            rows = len(self.anchor if name is None else self.synthetic[name])
            return np.zeros((rows, 0), dtype=np.intp)
        return codes

    @classmethod
    def from_profiles(cls, anchor: ReferenceProfile, synthetic: Mapping[str, ReferenceProfile],
                      features: Sequence[str]) -> JointReferences | None:
        """The anchor's joint features among `features`, or None when fewer than two."""
        aj = anchor.joint
        if aj is None:
            return None
        wanted = set(features)
        names = tuple(f for f in aj.features if f in wanted)
        held = [(name, prof.joint) for name, prof in synthetic.items() if prof.joint is not None
                and set(names) <= set(prof.joint.features) and len(prof.joint.sample) >= MIN_ROWS]
        cats = tuple(f for f in aj.categorical if f in wanted and all(f in j.categorical for _, j in held))
        if len(names) + len(cats) < 2:
            return None
        sets = {name: j.sample[:, [j.features.index(f) for f in names]].astype(float) for name, j in held}
        set_codes = {name: j.codes[:, [j.categorical.index(f) for f in cats]].astype(np.intp) for name, j in held}
        c_idx = [aj.categorical.index(f) for f in cats]
        return cls(names, aj.sample[:, [aj.features.index(f) for f in names]].astype(float), sets, cats,
                   tuple(aj.levels[i] for i in c_idx), aj.codes[:, c_idx].astype(np.intp), set_codes)


class _JointBlock:
    """The joint block's precomputed terms (see the module docstring): frequencies, whitening, directions."""

    __slots__ = ("D", "cross", "fmap32", "gram", "mu", "noise", "rank", "weight2", "whiten")

    def __init__(self, refs: JointReferences, names: Sequence[str], rng: np.random.Generator,
                 marginal_noise: float) -> None:
        a_codes = refs.codes_of(None)
        self.fmap32 = fourier_map(refs.anchor, a_codes, refs.levels, rng, JOINT_FEATURES,
                                  JOINT_BANDWIDTHS).astype(np.float32)
        mu, whiten, _ = whitening(self._phi(refs.anchor, a_codes).astype(float))
        self.rank = whiten.shape[1]
        self.weight2 = marginal_noise / max(self.rank, 1)
        self.mu, self.whiten = mu, whiten * math.sqrt(self.weight2)  # y = c S^-1/2 (phi - mu)
        k = len(names)
        n_a = len(refs.anchor)
        anchor_noise = self.weight2 * self.rank / n_a  # tr Cov(mean y over the anchor's sample)
        self.D = np.zeros((self.rank, k))
        self.noise = np.zeros((k, k))
        has = np.zeros(k, dtype=bool)
        for j, name in enumerate(names):
            z = refs.synthetic.get(name)
            if z is None:
                continue
            y = self.embed(z, refs.codes_of(name))
            self.D[:, j] = y.mean(axis=0)
            self.noise[j, j] = anchor_noise + float(y.var(axis=0, ddof=1).sum()) / len(y)
            has[j] = True
        shared = np.outer(has, has) & ~np.eye(k, dtype=bool)
        self.noise[shared] = anchor_noise
        self.cross = anchor_noise * has  # E <delta, d_s> over the anchor's sample: both subtract mu_anchor
        self.gram = self.D.T @ self.D

    def embed(self, z: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Rows of copula scores and category codes -> whitened, weighted, anchor-centred random-feature rows y."""
        return (self._phi(z, codes) - self.mu) @ self.whiten

    def mean_embedding(self, z: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """The mean of `embed(z, codes)`, whitening the mean instead of every row (D x r once, not n times)."""
        return (self._phi(z, codes).mean(axis=0, dtype=np.float64) - self.mu) @ self.whiten

    def _phi(self, z: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """phi(z) = sqrt(2/D) cos(z W + b) in float32: numpy's float32 cosine is vectorised (~20x faster than
        float64's at 1,000 x 128), and its ~1e-7 error is far below a window mean's sampling noise (~1/sqrt(n))."""
        return self.fmap32.features(z, codes)


def _norm(c: np.ndarray) -> np.ndarray:
    s = c.sum()
    return c / s if s else c.astype(float)


class _Feature:
    """One feature's precomputed blocks: every set's direction (columns of D), its Gram and noise terms."""

    __slots__ = ("D", "cross", "gram", "m", "noise", "pa", "pvar", "q")

    def __init__(self, pa: np.ndarray, D: np.ndarray, noise: np.ndarray, cross: np.ndarray) -> None:
        self.pa, self.D, self.noise, self.cross = pa, D, noise, cross
        self.gram = D.T @ D
        self.m = D.T @ pa  # for V: D' (diag(p) - pp') D = q - m m'
        self.q = (D * pa[:, None]).T @ D
        self.pvar = float((pa * (1 - pa)).sum())


class _Stacked:
    """Several features' blocks end to end: their bins concatenated (anchor masses `pa`, directions `D`),
    the sums of their Gram, noise and cross terms, and per feature the window-covariance term
    D' (diag(p) - pp') D (`qm`, so that V = sum_f qm_f / n_f is one tensordot) and p(1 - p) summed (`pvar`)."""

    __slots__ = ("D", "cross", "gram", "noise", "pa", "pvar", "qm", "sizes")

    def __init__(self, feats: Sequence[_Feature]) -> None:
        self.pa = np.concatenate([ft.pa for ft in feats])
        self.D = np.concatenate([ft.D for ft in feats])
        self.sizes = np.array([len(ft.pa) for ft in feats], dtype=np.int64)
        self.gram, self.noise, self.cross = (sum(getattr(ft, a) for ft in feats) for a in ("gram", "noise", "cross"))
        self.qm = np.stack([ft.q - np.outer(ft.m, ft.m) for ft in feats])
        self.pvar = np.array([ft.pvar for ft in feats])


class AttributionModel:
    """Precomputed once per reference set: the stacked directions d_s per feature and their noise.

    With `joint` (the references' joint samples) and `rng` (the random Fourier features' frequencies:
    pass a generator seeded with a constant, so every process derives the same ones) the fit space
    gains the joint block; `attribute` then takes the window's copula scores of `joint.features` and
    category codes of `joint.categorical` (`joint_features` names both, in that order).
    """

    def __init__(self, anchor_counts: dict[str, np.ndarray], synthetic_counts: dict[str, dict[str, np.ndarray]],
                 *, max_share_se: float = 0.1, joint: JointReferences | None = None,
                 rng: np.random.Generator | None = None) -> None:
        self.max_share_se = max_share_se
        self.anchor = {f: _norm(c) for f, c in anchor_counts.items()}
        self.anchor_n = {f: max(int(c.sum()), 1) for f, c in anchor_counts.items()}
        self.names = list(synthetic_counts)
        k = len(self.names)
        self.feats: dict[str, _Feature] = {}
        self._stacks: dict[tuple[str, ...], _Stacked] = {}
        for f, pa in self.anchor.items():
            D = np.zeros((len(pa), k))
            noise = np.zeros((k, k))
            has = np.zeros(k, dtype=bool)
            anchor_var = float((pa * (1 - pa)).sum()) / self.anchor_n[f]
            for j, name in enumerate(self.names):
                c = synthetic_counts[name].get(f)
                if c is None or len(c) != len(pa) or c.sum() == 0:
                    continue
                D[:, j] = _norm(c) - pa
                noise[j, j] = float((pa * (1 - pa)).sum()) * (1.0 / self.anchor_n[f] + 1.0 / c.sum())
                has[j] = True
            if not has.any():
                continue
            shared = np.outer(has, has) & ~np.eye(k, dtype=bool)
            noise[shared] = anchor_var  # d_s and d_t both subtract the same sampled anchor
            self.feats[f] = _Feature(pa, D, noise, anchor_var * has)
        self.joint: _JointBlock | None = None
        self.block_cov: dict[str, np.ndarray] = {}
        self.joint_features: tuple[str, ...] = ()
        self.joint_categorical = 0  # the last this many of `joint_features` are categorical
        if joint is not None and joint.synthetic and k:
            if rng is None:
                raise ValueError("a joint block needs the generator of its random features (rng)")
            marginal = sum(float((self.anchor[f] * (1 - self.anchor[f])).sum()) for f in joint.names
                           if f in self.anchor) or float(len(joint.names))
            self.joint = _JointBlock(joint, self.names, rng, marginal)
            self.joint_features = joint.names
            self.joint_categorical = len(joint.categorical)
            self.block_cov = self._block_cov(joint)

    def _stacked(self, names: tuple[str, ...]) -> _Stacked:
        """The histogram blocks of these features end to end (kept for the few feature sets windows use)."""
        st = self._stacks.get(names)
        if st is None:
            st = _Stacked([self.feats[f] for f in names])
            if len(self._stacks) < 8:
                self._stacks[names] = st
        return st

    def _block_cov(self, refs: JointReferences) -> dict[str, np.ndarray]:
        """Per embedded feature f, Cov(h_f, g) over the anchor's joint sample (k x k): the row-level covariance
        between the feature's histogram score h_f(x) = D_f[bin_f(x)] (its row's contribution to <delta, d_s>)
        and the joint block's g(x) = y(x)' D_joint. A numeric row's bin is its anchor quantile Phi(z) on the
        anchor histogram's cumulative masses, a categorical code i < levels - 1 is bin i and the last code
        (every rarer category and 'other') the anchor-weighted mean of those bins' rows."""
        jb = self.joint
        assert jb is not None
        a_codes = refs.codes_of(None)
        g = jb.embed(refs.anchor, a_codes) @ jb.D
        g -= g.mean(axis=0)
        out: dict[str, np.ndarray] = {}
        cols: list[tuple[str, np.ndarray, int | None]] = [(f, refs.anchor[:, i], None)
                                                          for i, f in enumerate(refs.features)]
        cols += [(f, a_codes[:, j], refs.levels[j]) for j, f in enumerate(refs.categorical)]
        for f, col, levels in cols:
            ft = self.feats.get(f)
            if ft is None:
                continue
            if levels is None:
                rows = ft.D[np.searchsorted(np.cumsum(ft.pa)[:-1], ndtr(col.astype(float)), side="right")]
            else:
                last = min(levels, len(ft.pa)) - 1  # the code of every bin from here on
                table = ft.D[:levels].copy()
                mass = ft.pa[last:].sum()
                table[last] = ft.pa[last:] @ ft.D[last:] / mass if mass > 0 else 0.0
                rows = table[np.minimum(col, last)]
            out[f] = (rows - rows.mean(axis=0)).T @ g / max(len(g) - 1, 1)
        return out

    def joint_columns(self, names: Sequence[str], scores: np.ndarray | None, codes: np.ndarray | None
                      ) -> tuple[np.ndarray, np.ndarray] | None:
        """The joint block's (scores, codes) among a window's complete rows of `names` (numeric names the
        columns of `scores`, then categorical ones those of `codes`); None when a block feature is missing."""
        if self.joint is None or scores is None:
            return None
        if tuple(names) == self.joint_features:
            return scores, codes if codes is not None else np.zeros((len(scores), 0), dtype=np.intp)
        p = len(names) - (codes.shape[1] if codes is not None else 0)
        cols = {f: i for i, f in enumerate(names)}
        if not set(self.joint_features) <= cols.keys():
            return None
        k = len(self.joint_features) - self.joint_categorical
        num = [cols[f] for f in self.joint_features[:k]]
        cat = [cols[f] - p for f in self.joint_features[k:]]
        if any(i >= p for i in num) or any(i < 0 for i in cat):
            return None
        return scores[:, num], (codes[:, cat] if codes is not None else np.zeros((len(scores), 0), dtype=np.intp))

    def attribute(self, window_counts: dict[str, np.ndarray], min_n: int = 20,
                  joint_scores: np.ndarray | None = None, joint_codes: np.ndarray | None = None) -> list[Attribution]:
        """Attribute one window: its histograms on the anchor's grid and, for the joint block, its rows'
        copula scores and category codes of `joint_features` (rows x numeric features and rows x categorical
        ones, complete rows only, see `joint_columns`; None: no joint block)."""
        k = len(self.names)
        if k == 0:
            return []
        G = np.zeros((k, k))
        noise = np.zeros((k, k))
        b = np.zeros(k)
        cross = np.zeros(k)
        V = np.zeros((k, k))
        delta2 = noise_w = 0.0
        rows = [math.inf]  # the window's rows behind each block (the between-component term uses the fewest)
        used: list[tuple[str, float]] = []  # (feature, its window count) of every histogram block used
        hists: list[np.ndarray] = []
        for f, c in window_counts.items():
            ft = self.feats.get(f)
            if ft is None or len(c) != len(ft.pa):
                continue
            n = float(c.sum())
            if n >= min_n:
                used.append((f, n))
                hists.append(c)
        if used:  # every histogram block at once: the features' bins end to end (`_stacked`)
            st = self._stacked(tuple(f for f, _ in used))
            inv_n = 1.0 / np.array([n for _, n in used])
            delta = np.concatenate(hists) * np.repeat(inv_n, st.sizes) - st.pa
            G += st.gram
            noise += st.noise
            b += delta @ st.D
            cross += st.cross
            V += np.tensordot(inv_n, st.qm, axes=1)
            delta2 += float(delta @ delta)
            noise_w += float(st.pvar @ inv_n)
            rows.extend(n for _, n in used)
        jb = self.joint
        if jb is not None and joint_scores is not None and len(joint_scores) >= max(min_n, MIN_ROWS):
            n = len(joint_scores)
            rows.append(float(n))
            codes = joint_codes if joint_codes is not None else np.zeros((n, 0), dtype=np.intp)
            delta = jb.mean_embedding(joint_scores, codes)
            G += jb.gram
            noise += jb.noise
            b += delta @ jb.D
            cross += jb.cross
            V += jb.weight2 * jb.gram / n  # D' Cov(delta) D with Cov(delta) = c^2 I / n at the anchor's law
            for f, n_f in used:  # the same rows' histograms: Cov(b_f, b_joint) = Cov(h_f, g) / n_f
                C = self.block_cov.get(f)
                if C is not None:
                    V += (C + C.T) / n_f
            delta2 += float(delta @ delta)
            noise_w += jb.weight2 * jb.rank / n
        dd = np.diag(G)
        signal = dd - np.diag(noise)
        drift2 = max(delta2 - noise_w, 0.25 * delta2)
        alone_se = np.full(k, math.inf)
        pos = (signal > 0) & (dd > 0)
        alone_se[pos] = np.sqrt(np.maximum(np.diag(V)[pos], 0.0)) / signal[pos]
        affinity = np.zeros(k)
        if drift2 > 0:
            ok = dd > 0
            affinity[ok] = np.clip(b[ok] / np.sqrt(drift2 * dd[ok]), -1.0, 1.0)
        affinity[~pos] = 0.0
        J = np.flatnonzero(pos & (alone_se <= self.max_share_se))
        share = np.zeros(k)
        se = alone_se.copy()
        ident = np.zeros(k, dtype=bool)
        group_of: dict[int, list[int]] = {}
        group_share: dict[int, tuple[float, float]] = {}
        if len(J):
            w, cov, se0, groups, group_se = self._fit((G - noise)[np.ix_(J, J)], (b - cross)[J], V[np.ix_(J, J)],
                                                      alone_se[J], float(np.diag(noise)[J].max()), min(rows))
            share[J] = w
            se[J] = np.sqrt(np.maximum(np.diag(cov), 0.0))
            grouped = {i for g in groups for i in g}
            for local, j in enumerate(J):
                ident[j] = local not in grouped and se0[local] <= self.max_share_se
                if local in grouped:
                    se[j] = math.inf  # its own share cannot be told from its group's other members
            for g, gse in zip(groups, group_se, strict=True):
                members = [int(J[i]) for i in g]
                for m in members:
                    group_of[m], group_share[m] = members, (float(w[g].sum()), gse)
        out = []
        for i_set, name in enumerate(self.names):
            grp = group_of.get(i_set)
            others = tuple(self.names[i] for i in grp if i != i_set) if grp else ()
            gs = group_share.get(i_set)
            out.append(Attribution(name, float(affinity[i_set]), float(share[i_set]) if ident[i_set] else None,
                                   float(se[i_set]), bool(ident[i_set]), group_share=None if gs is None else gs[0],
                                   group_share_se=None if gs is None else gs[1], indistinguishable_from=others))
        return out

    def _fit(self, G: np.ndarray, b: np.ndarray, V: np.ndarray, alone_se: np.ndarray, ref_noise: float,
             n: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[list[int]], list[float]]:
        """Constrained fit (w >= 0, sum w <= 1), its sandwich covariance (at the fitted mixture), the standard
        errors at the anchor's law, the unresolvable groups and their SEs.

        `V` (the window's covariance at the anchor's law) decides what is resolvable and identifiable, so the
        groups depend on the references and the window size only. The reported errors use the window's
        covariance at the fitted mixture instead: a window that is part S is more spread along d_S than the
        anchor, by the spread between its components (rows from S sit at g_S = G[:, S] on average, the
        anchor's at 0), i.e. V + (sum_s w_s g_s g_s' - (G w)(G w)') / n, the covariance of a point mass w_s
        at each g_s and the rest at 0 (positive semi-definite for sum w <= 1), with n the fewest rows behind
        a block; the components' own spread is kept at the anchor's. For one set this adds w (1 - w) / n to
        the share's variance: the binomial spread of the realised mixture.
        """
        k = len(b)
        G = (G + G.T) / 2
        lam, U = np.linalg.eigh(G)
        top = float(lam.max())
        lam_c = np.maximum(lam, 1e-9 * top if top > 0 else 1e-300)  # a noise-corrected G can lose definiteness
        P = (U / lam_c) @ U.T  # G^-1
        se0 = np.sqrt(np.maximum(np.einsum("ij,jk,ki->i", P, V, P), 0.0))
        dir_var = np.einsum("ij,jk,ki->i", U.T, V, U) / lam_c ** 2
        # unresolvable: the window's noise leaves u'w uncertain by more than max_share_se, or |Du|^2 is within
        # twice the references' own sampling noise (an exact blend: the window's noise does not move along u
        # either, but the references cannot tell u from 0)
        poor = (dir_var > self.max_share_se ** 2) | (lam <= 2.0 * ref_noise)
        groups = self._groups(U, poor)
        R = np.sqrt(lam_c)[:, None] * U.T  # R'R = G (with the floor)
        rhs = (U.T @ b) / np.sqrt(lam_c)
        # along a direction u the window cannot resolve, the fit is flat up to noise: instead of following the
        # noise, u'w is pulled toward less total share (target -2 sign(u'1), beyond any feasible point) until a
        # bound stops it, so the group's share is the least synthetic mass that explains the window. A direction
        # that leaves the total unchanged (a blend of two resolvable parents, u'1 ~ 0) is left to the fit.
        tot = U.sum(axis=0)
        push = poor & (np.abs(tot) > 0.1)
        rhs[push] = -2.0 * np.sign(tot[push]) * np.sqrt(lam_c[push])
        w, _ = nnls(R, rhs)
        if w.sum() > 1.0:  # the anchor's weight would be negative: refit on the face sum w = 1
            big = 1e4 * math.sqrt(float(lam_c.max()))
            w, _ = nnls(np.vstack([R, np.full((1, k), big)]), np.r_[rhs, big])
            w = w / max(w.sum(), 1.0)
        gw = G @ w
        V_fit = V + ((G * w) @ G - np.outer(gw, gw)) / n if math.isfinite(n) else V
        cov = P @ V_fit @ P
        group_se = []
        for g in groups:
            act = [i for i in g if w[i] > 1e-9]
            if not act:  # the group's share is at 0: the error of its best-determined member alone
                group_se.append(float(alone_se[g].min()))
                continue
            # local (active-set) sandwich: members at their bound are fixed there
            Ga = G[np.ix_(act, act)]
            la, Ua = np.linalg.eigh((Ga + Ga.T) / 2)
            Pa = (Ua / np.maximum(la, 1e-9 * top)) @ Ua.T
            one = Pa.sum(axis=0)  # 1' Ga^-1
            gv = float(one @ V_fit[np.ix_(act, act)] @ one)
            group_se.append(min(math.sqrt(max(gv, 0.0)), math.inf))
        return w, cov, se0, groups, group_se

    def _groups(self, U: np.ndarray, poor: np.ndarray) -> list[list[int]]:
        """Sets loading on an unresolvable eigen-direction of G (`poor`), merged when directions overlap."""
        k = U.shape[0]
        parent = list(range(k))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        involved: set[int] = set()
        for i in np.flatnonzero(poor):
            members = [int(s) for s in np.flatnonzero(np.abs(U[:, i]) >= GROUP_LOADING)]
            if len(members) < 2:
                continue
            involved |= set(members)
            for s in members[1:]:
                parent[find(s)] = find(members[0])
        groups: dict[int, list[int]] = {}
        for s in sorted(involved):
            groups.setdefault(find(s), []).append(s)
        return list(groups.values())
