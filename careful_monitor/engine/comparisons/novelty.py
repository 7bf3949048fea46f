"""Vocabulary novelty: the mass of window tokens outside the anchor's top-K vocabulary, against the reference's.

For an anchor the reference is its *held-out* novelty: the vocabulary is chosen on one half of the
anchor and novelty measured on the other, so it is what a fresh sample of the anchor's law shows
(the in-sample figure is biased low). The window's novelty R = sum(other_i) / sum(length_i) is a
ratio estimator over documents, so its variance is taken at the document level (delta method):
var(R) = sum((other_i - R length_i)^2) / (sum length_i)^2, and the reference adds its own,
novelty_var / (doc_n * novelty_len^2). z = (R - R_ref) / sqrt(both), two-sided normal p-value.
New words (another vocabulary) raise it; a generator stuck on frequent words lowers it.
Statistic: R; effect: |R - R_ref|, a mass of tokens (floor `min_effect.novelty`, which also keeps
the normal tail from mattering when novelty is rare and its sum skewed).

>>> import numpy as np
>>> from careful_monitor.engine.profile import text_profile
>>> from careful_monitor.engine.column import summarise
>>> rng = np.random.default_rng(8)
>>> words = [f"w{i}" for i in range(3000)]
>>> zipf = 1.0 / np.arange(1, 3001); zipf /= zipf.sum()
>>> ref = text_profile([" ".join(rng.choice(words, 12, p=zipf)) for _ in range(4000)], anchor=None, rng=rng)
>>> same = Novelty().compare(ref, summarise([" ".join(rng.choice(words, 12, p=zipf)) for _ in range(500)], ref))
>>> new = Novelty().compare(ref, summarise([" ".join(rng.choice(words, 12)) for _ in range(500)], ref))
>>> same.p_value > 0.01, new.p_value < 1e-12 and new.effect > 0.2
(True, True)
"""

from __future__ import annotations

import math

import numpy as np

from careful_monitor.engine.column import WindowColumn
from careful_monitor.engine.profile import TEXT, FeatureProfile, TextProfile
from careful_monitor.engine.stats import two_sided_normal
from careful_monitor.engine.types import TestResult

MIN_N = 20
NAMED = 5  # novel tokens named in the evidence


class Novelty:
    """Held-out out-of-vocabulary token mass, with a document-level (ratio estimator) variance."""

    name = "novelty"
    kinds = (TEXT,)
    effect_key = "novelty"

    def compare(self, ref: FeatureProfile, window: WindowColumn) -> TestResult | None:
        assert isinstance(ref, TextProfile)
        lengths, other = window.extra["lengths"], window.extra["other_per_doc"]
        total = float(lengths.sum())
        if window.n < MIN_N or ref.doc_n < MIN_N or total == 0 or ref.novelty_len == 0:
            return None
        r = float(other.sum()) / total
        resid = other - r * lengths
        var_w = float(resid @ resid) / (total * total)
        var_r = ref.novelty_var / (ref.doc_n * ref.novelty_len ** 2)
        se = max(math.sqrt(var_w + var_r), 1.0 / total)  # one token's worth: a vocabulary both sides cover fully
        p = two_sided_normal((r - ref.novelty) / se)
        named = _novel_words(window, len(ref.tokens)) if p < 0.01 and r > ref.novelty else ()
        return TestResult(self.name, r, p, abs(r - ref.novelty), named)


def _novel_words(window: WindowColumn, other: int) -> tuple[str, ...]:
    """The window's most frequent tokens outside the anchor's top-K (only computed when novelty rose)."""
    toks, ids = window.extra.get("token_lists"), window.extra.get("token_ids")
    if toks is None or ids is None or not len(ids):
        return ()
    words = np.array([w for t in toks for w in t], dtype=str)[ids == other]
    if not len(words):
        return ()
    uniq, cnt = np.unique(words, return_counts=True)
    order = np.argsort(-cnt, kind="stable")[:NAMED]
    return tuple("+" + w for w in uniq[order].tolist())
