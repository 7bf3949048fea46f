"""Which tests and signatures run on which feature kind, against which references."""

from __future__ import annotations

from careful_monitor.engine.signals.confidence import Confidence, PredictiveEntropy
from careful_monitor.engine.signals.coverage import Coverage
from careful_monitor.engine.signals.entropy import EntropyRatio, RareMassRatio
from careful_monitor.engine.signals.spread import SpreadRatio
from careful_monitor.engine.signals.support import OutOfSupport
from careful_monitor.engine.signals.tail_mass import TailMassRatio
from careful_monitor.engine.signals.text_diversity import DistinctRatio, LengthRatio
from careful_monitor.engine.tests.chi2 import Chi2
from careful_monitor.engine.tests.js import JS
from careful_monitor.engine.tests.ks import KS
from careful_monitor.engine.tests.psi import PSI
from careful_monitor.engine.tests.wasserstein import Wasserstein

#: two-sample tests, run against the anchor and every synthetic set
TESTS = (KS(), Wasserstein(), Chi2(), PSI(), JS())
#: collapse signatures, against the anchor only
SIGNATURES = (SpreadRatio(), TailMassRatio(), OutOfSupport(), Coverage(), EntropyRatio(), RareMassRatio(),
              DistinctRatio(), LengthRatio(), Confidence(), PredictiveEntropy())
SIGNATURE_NAMES = frozenset(s.name for s in SIGNATURES)


def for_kind(kind: str, *, anchor: bool):
    tests = [t for t in TESTS if kind in t.kinds]
    if anchor:
        tests += [s for s in SIGNATURES if kind in s.kinds]
    return tests
