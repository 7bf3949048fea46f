"""Token presence: does each top token appear in as many *documents* of the window as in the reference's?

The unit is the document, not the token: tokens of one text are not independent (a topic word
repeats within a text), so a token-level chi-square over-counts evidence and false-alarms on
stationary streams. For each of the anchor's top-K tokens, plus "any token outside them", the
number x of window documents containing it is compared with the reference's document rate p
(measured, for the anchor, on a held-out half the vocabulary was not chosen on) by an exact
binomial tail. The reference rate is itself estimated from `doc_n` documents, so the binomial is
taken at the effective sample size n / (1 + n / doc_n) (a design effect: the variance of x/n - p
is p(1-p)(1/n + 1/doc_n)), through the regularised incomplete beta, which takes real arguments.
The token p-values are combined by Bonferroni (valid whatever their dependence); the test's
p-value is that minimum times K + 1. Statistic: the signed change of that token's document rate;
effect: its Cohen's h, |2 asin sqrt(x/n) - 2 asin sqrt(p)| (floor `min_effect.token_presence`).
References: Fisher's exact / binomial two-proportion tests; Kish (1965) for the design effect.

>>> import numpy as np
>>> from careful_monitor.engine.profile import text_profile
>>> from careful_monitor.engine.column import summarise
>>> rng = np.random.default_rng(8)
>>> words = [f"w{i}" for i in range(300)]
>>> ref = text_profile([" ".join(rng.choice(words[:150], 10)) for _ in range(4000)], anchor=None, rng=rng)
>>> same = TokenPresence().compare(ref, summarise([" ".join(rng.choice(words[:150], 10)) for _ in range(500)], ref))
>>> moved = TokenPresence().compare(ref, summarise([" ".join(rng.choice(words[150:], 10)) for _ in range(500)], ref))
>>> same.p_value > 0.01, moved.p_value < 1e-12 and moved.effect > 0.5
(True, True)
"""

from __future__ import annotations

import numpy as np
from scipy import special

from careful_monitor.engine.column import WindowColumn
from careful_monitor.engine.profile import TEXT, FeatureProfile, TextProfile
from careful_monitor.engine.types import TestResult

MIN_N = 20
NAMED = 5  # tokens named in the evidence


def binomial_tails(x: np.ndarray, n: float, p: np.ndarray) -> np.ndarray:
    """Two-sided (doubled smaller tail) binomial p-values for real-valued counts x of n trials."""
    x = np.clip(x, 0.0, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(x < n, special.betainc(np.maximum(n - x, 1e-12), x + 1.0, 1.0 - p), 1.0)  # P(X <= x)
        hi = np.where(x > 0, special.betainc(np.maximum(x, 1e-12), n - x + 1.0, p), 1.0)  # P(X >= x)
    return np.minimum(1.0, 2.0 * np.minimum(lo, hi))


class TokenPresence:
    """Per-token document rates against the reference's, exact binomial at the effective size, Bonferroni."""

    name = "token_presence"
    kinds = (TEXT,)
    effect_key = "token_presence"

    def compare(self, ref: FeatureProfile, window: WindowColumn) -> TestResult | None:
        assert isinstance(ref, TextProfile)
        n = window.n
        if n < MIN_N or ref.doc_n < MIN_N:
            return None
        x = window.extra["doc_freq"].astype(float)
        p = np.clip(ref.doc_freq / ref.doc_n, 0.5 / ref.doc_n, 1.0 - 0.5 / ref.doc_n)
        deff = 1.0 + n / ref.doc_n
        pv = binomial_tails(x / deff, n / deff, p)
        k = int(pv.argmin())
        rate = x[k] / n
        h = abs(2.0 * np.arcsin(np.sqrt(rate)) - 2.0 * np.arcsin(np.sqrt(p[k])))
        p_value = float(min(1.0, pv[k] * len(pv)))
        return TestResult(self.name, float(rate - p[k]), p_value, float(h), _named(ref, pv, x / n - p))


def _named(ref: TextProfile, pv: np.ndarray, change: np.ndarray) -> tuple[str, ...]:
    """Up to NAMED tokens whose document rate moved significantly (Bonferroni p < 0.01), most significant first."""
    hits = np.flatnonzero(pv * len(pv) < 0.01)
    if not len(hits):
        return ()
    top = hits[np.argsort(pv[hits], kind="stable")[:NAMED]]
    words = [*ref.tokens, "<other>"]
    return tuple(("+" if change[i] > 0 else "-") + words[i] for i in top.tolist())
