"""The catalogue of comparisons: which tests and signatures run on which feature kind, against which references.

(Named so to keep "registry" for the dataset registry.)

>>> [c.name for c in for_kind("categorical", anchor=False)]
['chi2', 'psi', 'js']
>>> EFFECT_KEYS["wasserstein"], EFFECT_KEYS["joint"], EFFECT_KEYS["mmd"]
('wasserstein_sd', 'joint', 'mmd')
>>> [c.name for c in for_kind("text", anchor=False)]
['token_presence', 'novelty']
"""

from __future__ import annotations

from careful_monitor.engine.comparisons import Comparison, WindowComparison
from careful_monitor.engine.comparisons.chi2 import Chi2
from careful_monitor.engine.comparisons.joint import JointCorrelation
from careful_monitor.engine.comparisons.js import JS
from careful_monitor.engine.comparisons.ks import KS
from careful_monitor.engine.comparisons.mmd import MMD
from careful_monitor.engine.comparisons.novelty import Novelty
from careful_monitor.engine.comparisons.psi import PSI
from careful_monitor.engine.comparisons.token_presence import TokenPresence
from careful_monitor.engine.comparisons.wasserstein import Wasserstein
from careful_monitor.engine.signals.confidence import Confidence, PredictiveEntropy
from careful_monitor.engine.signals.coverage import Coverage
from careful_monitor.engine.signals.entropy import EntropyRatio, RareMassRatio
from careful_monitor.engine.signals.spread import SpreadRatio
from careful_monitor.engine.signals.support import OutOfSupport
from careful_monitor.engine.signals.tail_mass import TailMassRatio
from careful_monitor.engine.signals.text_diversity import DistinctRatio, LengthRatio

#: two-sample tests, run against the anchor and every synthetic set
TESTS: tuple[Comparison, ...] = (KS(), Wasserstein(), Chi2(), PSI(), JS(), TokenPresence(), Novelty())
#: collapse signatures, against the anchor only
SIGNATURES: tuple[Comparison, ...] = (SpreadRatio(), TailMassRatio(), OutOfSupport(), Coverage(), EntropyRatio(),
                                     RareMassRatio(), DistinctRatio(), LengthRatio(), Confidence(), PredictiveEntropy())
SIGNATURE_NAMES = frozenset(s.name for s in SIGNATURES)
#: window-level comparisons over several features, against the anchor only (feature `joint`)
WINDOW_COMPARISONS: tuple[WindowComparison, ...] = (JointCorrelation(), MMD())
_ALL: tuple[Comparison | WindowComparison, ...] = (*TESTS, *SIGNATURES, *WINDOW_COMPARISONS)
#: comparison name -> its floor's key in policy.min_effect
EFFECT_KEYS: dict[str, str] = {c.name: c.effect_key for c in _ALL}

_FOR_KIND: dict[tuple[str, bool], tuple[Comparison, ...]] = {}


def for_kind(kind: str, *, anchor: bool) -> tuple[Comparison, ...]:
    """The comparisons of a feature of this kind: tests, plus collapse signatures against the anchor."""
    key = (kind, anchor)
    found = _FOR_KIND.get(key)
    if found is None:
        found = tuple(t for t in TESTS if kind in t.kinds)
        if anchor:
            found += tuple(s for s in SIGNATURES if kind in s.kinds)
        _FOR_KIND[key] = found
    return found
