"""Evaluate one closed window: every comparison, Benjamini-Hochberg over the anchor family, flags, evidence.

Each feature's column is summarised once on the anchor's grid and shared by every comparison and
reference; the chi-square, PSI and JS of every histogram feature against every reference are then
computed as one array computation (`column.score_histograms`), KS and Wasserstein of every numeric
pair as another (`comparisons.stacked.score_numeric`, which also shares one KS distance between the
two), so the comparisons only read what they report. Anchor comparisons (tests and
collapse signatures, plus the window-level joint tests as feature `joint`) form the window's BH
family at level `fdr`; a comparison is flagged when BH rejects it and its effect reaches its floor
in `min_effect`. Comparisons against synthetic sets feed attribution and the dashboards, not the family.

>>> import numpy as np
>>> from careful_monitor.engine.profile import build_profile
>>> rng = np.random.default_rng(1)
>>> anchor = build_profile("real", "real", {"inputs.x": rng.normal(size=5000).tolist()}, rng=rng)
>>> ev = evaluate_window({"inputs.x": rng.normal(1.0, 1, 500).tolist()}, {"inputs.x": "numeric"}, anchor, {},
...                      fdr=0.01, min_effect={})
>>> ev.flagged_features, ev.evidence[0].feature
(('inputs.x',), 'inputs.x')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from careful_monitor.engine.column import WindowColumn, reference_counts, score_histograms, summarise, summarise_probs
from careful_monitor.engine.comparisons import Comparison, compare_each
from careful_monitor.engine.comparisons.catalogue import EFFECT_KEYS, SIGNATURE_NAMES, WINDOW_COMPARISONS, for_kind
from careful_monitor.engine.comparisons.copula import WindowRows, category_codes, joint_rows
from careful_monitor.engine.comparisons.ks import MIN_N as KS_MIN_N
from careful_monitor.engine.comparisons.stacked import score_numeric
from careful_monitor.engine.fdr import benjamini_hochberg
from careful_monitor.engine.profile import (
    CATEGORICAL,
    NUMERIC,
    PROBS,
    CategoricalProfile,
    FeatureProfile,
    ProbsProfile,
    ReferenceProfile,
    numeric_part,
)
from careful_monitor.engine.types import Evidence, QualityRate, TestOutcome, TestResult
from careful_monitor.engine.window import ProbsPart

JOINT = "joint"
_HISTOGRAM_KINDS = frozenset({NUMERIC, CATEGORICAL, PROBS})  # the kinds whose tests include chi2, PSI and JS
_NUMERIC_KINDS = frozenset({NUMERIC, PROBS})  # ... and KS and Wasserstein (probs: of the confidence)


@dataclass(frozen=True, slots=True)
class WindowEvaluation:
    """What the comparisons of one window found, before attribution and policy."""

    tests: tuple[TestOutcome, ...]  # anchor first per feature, then each synthetic set; joint last
    evidence: tuple[Evidence, ...]  # every flagged anchor comparison, ordered for display
    flagged_features: tuple[str, ...]
    quality: tuple[QualityRate, ...]
    window_counts: dict[str, np.ndarray]  # each feature's histogram on the anchor's grid (attribution)
    joint_features: tuple[str, ...] = ()  # the columns of `joint_scores`, then those of `joint_codes`
    joint_scores: np.ndarray | None = None  # complete rows' copula scores on the anchor's CDFs (attribution)
    joint_codes: np.ndarray | None = None  # the same rows' category codes on the anchor's categories

    @property
    def flagged(self) -> bool:
        return bool(self.flagged_features)


def evaluate_window(cols: Mapping[str, list[Any]], features: Mapping[str, str], anchor: ReferenceProfile,
                    synthetic: Mapping[str, Mapping[str, FeatureProfile]], *, fdr: float,
                    min_effect: Mapping[str, float], probs_feature: str | None = None,
                    probs_parts: list[ProbsPart] | None = None,
                    joint_features: frozenset[str] = frozenset(),
                    embedded: Sequence[tuple[str, TestResult]] = ()) -> WindowEvaluation:
    """Run every comparison of the window's columns; flag by BH over the anchor family and effect floors.

    `synthetic` maps each synthetic set to its profiles of the monitored features; `probs_parts`,
    when given, are the probs feature's confidence/entropy already computed slice by slice; `embedded`,
    anchor tests computed outside (the optional text-embedding test: (feature, result)), join the family.
    """
    raw: list[tuple[str, str, TestResult]] = []  # (feature, reference, result), in report order
    anchor_idx: list[int] = []  # positions in `raw` of the anchor family
    quality: list[QualityRate] = []
    window_counts: dict[str, np.ndarray] = {}
    joint_columns: dict[str, np.ndarray] = {}
    summaries: dict[str, WindowColumn] = {}
    for f, kind in features.items():
        values = cols[f]
        aprof = anchor.features[f]
        if f == probs_feature and probs_parts is not None:
            assert isinstance(aprof, ProbsProfile)
            col = summarise_probs(probs_parts, aprof, len(values))
        else:
            col = summarise(values, aprof)
        summaries[f] = col
        window_counts[f] = col.counts
        if kind == NUMERIC and f in joint_features:
            aligned = col.extra.get("aligned")
            joint_columns[f] = aligned if aligned is not None else _aligned_floats(values)
        elif kind == CATEGORICAL and f in joint_features and anchor.joint is not None and f in anchor.joint.categorical:
            assert isinstance(aprof, CategoricalProfile)
            levels = anchor.joint.levels[anchor.joint.categorical.index(f)]
            joint_columns[f] = category_codes(values, aprof, levels)
    # chi-square, PSI and JS of every histogram feature against every reference: one array computation;
    # KS and Wasserstein of every numeric (and confidence) column against every reference: another
    refs = {f: (anchor.features[f], *(feats[f] for feats in synthetic.values() if f in feats)) for f in features}
    score_histograms([(summaries[f], reference_counts(p)) for f, kind in features.items() if kind in _HISTOGRAM_KINDS
                      for p in refs[f]])
    score_numeric([(summaries[f], numeric_part(p)) for f, kind in features.items() if kind in _NUMERIC_KINDS
                   and summaries[f].n >= KS_MIN_N for p in refs[f]])
    # every (feature, reference, comparison) of the window, in report order; each comparison then runs
    # once over all its pairs (`compare_each`: one array computation where it has `compare_many`)
    jobs: list[tuple[str, str, Comparison, FeatureProfile, WindowColumn, bool]] = []  # ..., anchor?
    for f, kind in features.items():
        aprof, col = anchor.features[f], summaries[f]
        jobs.extend((f, anchor.name, c, aprof, col, True) for c in for_kind(kind, anchor=True))
        for name, feats in synthetic.items():
            sprof = feats.get(f)
            if sprof is not None:
                jobs.extend((f, name, c, sprof, col, False) for c in for_kind(kind, anchor=False))
        quality.extend(_quality(f, kind, col, aprof))
    by_comparison: dict[int, list[int]] = {}
    for i, job in enumerate(jobs):
        by_comparison.setdefault(id(job[2]), []).append(i)
    results: list[TestResult | None] = [None] * len(jobs)
    for idx in by_comparison.values():
        for i, r in zip(idx, compare_each(jobs[idx[0]][2], [(jobs[i][3], jobs[i][4]) for i in idx]), strict=True):
            results[i] = r
    for (f, ref, _, _, _, is_anchor), r in zip(jobs, results, strict=True):
        if r is not None:
            if is_anchor:
                anchor_idx.append(len(raw))
            raw.append((f, ref, r))
    joint_names: tuple[str, ...] = ()
    joint_scores = joint_codes = None
    if joint_columns:
        rows = WindowRows(joint_columns)  # copula scores computed once for every window-level test and attribution
        for wc in WINDOW_COMPARISONS:
            r = wc.compare_window(anchor, rows)
            if r is not None:
                anchor_idx.append(len(raw))
                raw.append((JOINT, anchor.name, r))
        found = joint_rows(anchor, rows)
        if found is not None:
            joint_names, joint_scores, joint_codes = found.names, found.scores, found.codes
    for f, r in embedded:  # optional semantic embeddings (comparisons.embedding_mmd), computed by the monitor
        anchor_idx.append(len(raw))
        raw.append((f, anchor.name, r))
    rejected = benjamini_hochberg([raw[i][2].p_value for i in anchor_idx], fdr)
    flagged_at = {i for i, rej in zip(anchor_idx, rejected, strict=True)
                  if rej and raw[i][2].effect >= min_effect.get(EFFECT_KEYS.get(raw[i][2].test, raw[i][2].test), 0.0)}
    tests = tuple(TestOutcome(f, ref, r, i in flagged_at) for i, (f, ref, r) in enumerate(raw))
    evidence = _interleave([Evidence(f, r.test, r.statistic, r.p_value, r.effect, r.tokens)
                            for i, (f, _, r) in enumerate(raw) if i in flagged_at])
    flagged_features = tuple(sorted({raw[i][0] for i in flagged_at}))
    return WindowEvaluation(tests, tuple(evidence), flagged_features, tuple(quality), window_counts, joint_names,
                            joint_scores, joint_codes)


def _interleave(evidence: list[Evidence]) -> list[Evidence]:
    """Order evidence so the first items cover every flagged feature: per feature, collapse
    signatures before generic tests, then by p-value; then round-robin across features.

    Ties are broken on the values as stored (p-values to 6 significant digits, effects to 6
    decimals), so the order is the one a reader of the stored result can reproduce.
    """
    per: dict[str, list[Evidence]] = {}
    for e in sorted(evidence,
                    key=lambda e: (e.signal not in SIGNATURE_NAMES, round_p(e.p_value), -round_value(e.effect))):
        per.setdefault(e.feature, []).append(e)
    features = sorted(per, key=lambda f: round_p(per[f][0].p_value))
    out: list[Evidence] = []
    for i in range(max((len(v) for v in per.values()), default=0)):
        out.extend(per[f][i] for f in features if i < len(per[f]))
    return out


def _aligned_floats(values: list[Any]) -> np.ndarray:
    try:
        return np.array(values, dtype=float)
    except (TypeError, ValueError):
        return np.array([v if isinstance(v, int | float) and not isinstance(v, bool) else np.nan for v in values],
                        dtype=float)


def _quality(f: str, kind: str, col: WindowColumn, aprof: Any) -> list[QualityRate]:
    total = max(col.total, 1)
    q = [QualityRate(f, "null_rate", col.nulls / total, aprof.null_rate),
         QualityRate(f, "type_mismatch_rate", col.mismatches / total, 0.0)]
    if kind == CATEGORICAL and col.n:
        q.append(QualityRate(f, "unseen_rate", col.counts[-1] / col.n, aprof.counts[-1] / max(aprof.counts.sum(), 1)))
    return q


def round_value(x: float) -> float:
    """A statistic, effect or rate as stored: 6 decimals."""
    return float(round(float(x), 6))


def round_p(p: float) -> float:
    """A p-value as stored: 6 significant digits (small p-values keep their exponent)."""
    return float(f"{float(p):.6g}")
