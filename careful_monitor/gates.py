"""Pre-flight gates: a synthetic set checked against its anchor when it is registered, and by `datasets check`.

A synthetic set's report has one line per gate; each gate compares a number with a limit and passes,
fails, or is not evaluated (nothing to compare: no feature of that kind, no stored signatures):

- **collapse signatures**, the synthetic set's profile against its anchor's (both binned on the
  anchor's grid), each as an effect on the scale of its `policy.min_effect` floor, worst feature shown:
  `spread` |sd ratio - 1| (floor `spread_ratio`), `tails` |tail-mass ratio - 1| beyond the anchor's
  1 % / 99 % quantiles (`tail_mass_ratio`), `coverage` the relative loss of the anchor's categories
  against what a sample of the set's size would show (`coverage`), `diversity` |distinct-2 ratio - 1|
  of texts at matched sample size (`distinct_ratio`), `entropy` |entropy ratio - 1| of categories
  (`entropy_ratio`), `confidence` |mean confidence difference| of `probs` (`confidence`).
  **Rule: a gate fails when its effect exceeds `MARGIN` (2) times its floor** (and, for spread and
  tails, whose estimates are noisy on small or heavy-tailed sets, also `Z` (3) standard errors). The
  monitor flags a window at the floor because a window is small and tested; a whole dataset is
  measured with little noise, and twice the floor is a difference nobody would call an accident.
- **exact_copies**: the share of the set's rows whose normalised row hash (`careful_monitor.isolation`)
  is among the anchor's stored hashes. Baseline: the share of anchor rows whose hash occurs twice in
  the anchor (what chance collisions give when the rows are few-valued). Fails above baseline +
  `isolation.max_rate`.
- **dcr_privacy** (distance to closest record): the anchor's joint sample (normal scores of its numeric
  features, `profile.joint_sample` rows) standardised by its sd; a sample of the set's rows mapped the
  same way (through the anchor's quantiles). Baseline: each anchor sample row's distance to its nearest
  *other* anchor row (leave-one-out: a reference of the same size, n - 1, as the synthetic rows
  see). Signal: the share of synthetic rows at most the baseline's 5th percentile away from an anchor
  row. **Fails when that share exceeds `DCR_RATIO` (3) times the baseline's own share** (5 % up to
  ties): a set that copies or barely perturbs real rows. Only rows of the joint sample can be found
  this way (a large anchor is sampled); exact copies of the others are what `exact_copies` finds.
- **near_duplicates**: clusters inside the set's first `CLUSTER_ROWS` rows: rows linked when their
  texts' stored MinHash signatures agree on at least `isolation.threshold` of their values (LSH band
  candidates, each linked to its bucket's first row when they agree: never all pairs), or when their
  row hashes are equal. Reports the share of rows in a cluster of two or more and the largest cluster.
  Baseline: the same on as many of the anchor's rows. Fails when the excess share exceeds
  `MARGIN` x `policy.min_effect.distinct_ratio`.

Card completeness, per CAREFUL letter (`explain.CAREFUL_ANSWERS`): C `purpose`; A `anchored_by`
(synthetic sets); R `provenance.generator` (synthetic sets) and `provenance.parent` or
`provenance.source`; E `evaluation_isolation`; F `filtering.gates` and `filtering.rejected_kept_at`;
U `use_limits`; L `lifecycle.owner` and `lifecycle.review_every_days`. Incomplete letters are reported
(and fail `datasets check --strict --require-card`); they never fail `--strict` alone.

Registration never fails because of a gate: failures are warnings. The report is stored (latest per
dataset) and printed by `datasets register` and `datasets check`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from careful_monitor import isolation
from careful_monitor.config import Config, MinEffect
from careful_monitor.engine.profile import (
    CategoricalProfile,
    JointProfile,
    NumericProfile,
    ProbsProfile,
    ReferenceProfile,
    TextProfile,
    normal_scores_matrix,
)
from careful_monitor.engine.text import matched
from careful_monitor.errors import ManifestError, NotFoundError, RegistryError
from careful_monitor.explain import CAREFUL_ANSWERS
from careful_monitor.store import DatasetRecord, Store
from careful_monitor.store import gates as db
from careful_monitor.store import isolation as isodb

log = logging.getLogger(__name__)

#: a collapse gate fails when its effect exceeds this many times its `policy.min_effect` floor
MARGIN = 2.0
#: the DCR gate fails when the share of close synthetic rows exceeds this many times the baseline's
DCR_RATIO = 3.0
#: "close" for DCR: at most this quantile of the anchor's leave-one-out nearest-record distances
DCR_QUANTILE = 0.05
#: rows of each set clustered for near duplicates (the first ones, in file order)
CLUSTER_ROWS = 20_000
#: the random draw of synthetic rows for DCR (a constant: a report is reproducible)
DCR_SEED = 6
#: standard errors a spread or tail effect must also exceed to fail (a small set's sd and tails are noisy)
Z = 3.0
#: collapse gates need this many values in the synthetic set to say anything
MIN_ROWS = 20
#: version of the report's JSON form
REPORT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Gate:
    """One check: `value` against `threshold` (fails above it). `passed` None: not evaluated (see `detail`)."""

    name: str
    value: float | None
    threshold: float | None
    passed: bool | None
    detail: str
    #: per-feature values of a collapse gate (its effects), for cards and dashboards
    per_feature: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CardLetter:
    """One CAREFUL letter of the card: complete, or the fields it lacks."""

    letter: str
    question: str
    complete: bool
    missing: tuple[str, ...]


@dataclass(frozen=True)
class GateReport:
    """The pre-flight report of one dataset against its anchor (the gates are empty for a non-synthetic set)."""

    dataset: str
    role: str
    anchor: str | None
    gates: list[Gate]
    card: list[CardLetter]
    notes: list[str]
    computed_at: datetime
    seconds: float
    data_sha256: str
    anchor_sha256: str | None

    @property
    def failed(self) -> list[Gate]:
        return [g for g in self.gates if g.passed is False]

    @property
    def incomplete(self) -> list[CardLetter]:
        return [c for c in self.card if not c.complete]

    @property
    def passed(self) -> bool:
        """No gate failed (card completeness does not count: see `incomplete`)."""
        return not self.failed

    def gate(self, name: str) -> Gate:
        return next(g for g in self.gates if g.name == name)

    def doc(self) -> dict[str, Any]:
        """The JSON form (stored, printed by `--json`)."""
        return {"version": REPORT_VERSION, "dataset": self.dataset, "role": self.role, "anchor": self.anchor,
                "passed": self.passed, "failed": [g.name for g in self.failed],
                "gates": [asdict(g) for g in self.gates],
                "card": [{"letter": c.letter, "question": c.question, "complete": c.complete,
                          "missing": list(c.missing)} for c in self.card],
                "card_complete": not self.incomplete, "notes": list(self.notes),
                "computed_at": self.computed_at.strftime("%Y-%m-%dT%H:%M:%SZ"), "seconds": round(self.seconds, 3),
                "data_sha256": self.data_sha256, "anchor_sha256": self.anchor_sha256}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> GateReport:
        return cls(doc["dataset"], doc["role"], doc.get("anchor"),
                   [Gate(g["name"], g["value"], g["threshold"], g["passed"], g["detail"],
                         dict(g.get("per_feature") or {})) for g in doc["gates"]],
                   [CardLetter(c["letter"], c["question"], c["complete"], tuple(c["missing"])) for c in doc["card"]],
                   list(doc.get("notes") or ()),
                   datetime.strptime(doc["computed_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC),
                   float(doc.get("seconds") or 0.0), doc.get("data_sha256") or "", doc.get("anchor_sha256"))


# -- collapse signatures: the synthetic profile against the anchor's ----------------------------------------


def _worst(name: str, effects: dict[str, float], floor: float, describe: dict[str, str], kind: str,
           noise: dict[str, float] | None = None) -> Gate:
    """The gate of the worst feature; a feature whose effect is within `Z` standard errors (`noise`) never fails."""
    if not effects:
        return Gate(name, None, None, None, f"no {kind} feature to compare")
    limit = MARGIN * floor
    noise = noise or {}
    failing = {f for f, e in effects.items() if e > limit and e > noise.get(f, 0.0)}
    feature = max(failing or effects, key=lambda f: effects[f])
    value = effects[feature]
    within = " (within sampling noise)" if value > limit and not failing else ""
    return Gate(name, value, limit, not failing, f"{feature}: {describe[feature]}{within}",
                {f: round(v, 6) for f, v in effects.items()})


def _numeric(synth: ReferenceProfile, anchor: ReferenceProfile) -> list[tuple[str, NumericProfile, NumericProfile]]:
    out = []
    for f, s in synth.features.items():
        a = anchor.features.get(f)
        if isinstance(s, NumericProfile) and isinstance(a, NumericProfile) and s.n >= MIN_ROWS:
            out.append((f, s, a))
    return out


def spread_gate(synth: ReferenceProfile, anchor: ReferenceProfile, floors: MinEffect) -> Gate:
    """|synthetic sd / anchor sd - 1| of the numeric features.

    Noise: the delta-method standard error of the sd ratio, sqrt((kurtosis - 1) / 4n) from each set
    (heavy-tailed features have noisy sds).

    >>> import numpy as np
    >>> from careful_monitor.engine.profile import build_profile
    >>> rng = np.random.default_rng(0)
    >>> a = build_profile("a", "real", {"inputs.x": rng.normal(size=5000).tolist()}, rng=rng)
    >>> s = build_profile("s", "synthetic", {"inputs.x": rng.normal(0, 0.5, 5000).tolist()}, anchor=a, rng=rng)
    >>> g = spread_gate(s, a, MinEffect())
    >>> g.passed, round(g.value, 1), g.threshold
    (False, 0.5, 0.2)
    """
    effects, describe, noise = {}, {}, {}
    for f, s, a in _numeric(synth, anchor):
        if a.std > 0:
            r = s.std / a.std
            effects[f], describe[f] = abs(r - 1.0), f"sd ratio {r:.2f}"
            noise[f] = Z * math.sqrt(max(s.kurtosis - 1, 0.1) / (4 * s.n) + max(a.kurtosis - 1, 0.1) / (4 * a.n))
    return _worst("spread", effects, floors.spread_ratio, describe, "numeric", noise)


def tails_gate(synth: ReferenceProfile, anchor: ReferenceProfile, floors: MinEffect) -> Gate:
    """|tail-mass ratio - 1| beyond the anchor's 1 % / 99 % quantiles (features with >= 20 expected tail rows).

    Noise: the Poisson standard error of the ratio of two tail counts when they share the anchor's rate,
    sqrt(1/(p n_synthetic) + 1/(p n_anchor)).
    """
    effects, describe, noise = {}, {}, {}
    for f, s, a in _numeric(synth, anchor):
        if a.tail_mass > 0 and a.tail_mass * s.n >= MIN_ROWS:
            r = s.tail_mass / a.tail_mass
            effects[f], describe[f] = abs(r - 1.0), f"tail mass {s.tail_mass:.2%} (anchor {a.tail_mass:.2%})"
            noise[f] = Z * math.sqrt(1 / (a.tail_mass * s.n) + 1 / (a.tail_mass * a.n))  # under ratio 1
    return _worst("tails", effects, floors.tail_mass_ratio, describe, "numeric", noise)


def coverage_gate(synth: ReferenceProfile, anchor: ReferenceProfile, floors: MinEffect) -> Gate:
    """Relative loss of the anchor's categories, against the coverage a sample of the set's size would show."""
    effects, describe = {}, {}
    for f, s in synth.features.items():
        a = anchor.features.get(f)
        if not (isinstance(s, CategoricalProfile) and isinstance(a, CategoricalProfile)) or s.n < MIN_ROWS:
            continue
        p = a.counts[:-1] / max(a.counts.sum(), 1)
        if len(p) < 2:
            continue
        expected = float((1.0 - np.exp(s.n * np.log1p(-np.minimum(p, 1 - 1e-12)))).sum())
        observed = int((s.counts[:-1] > 0).sum())
        effects[f] = max(0.0, (expected - observed) / expected) if expected > 0 else 0.0
        describe[f] = f"{observed} of {len(p)} categories ({expected:.0f} expected)"
    return _worst("coverage", effects, floors.coverage, describe, "categorical")


def diversity_gate(synth: ReferenceProfile, anchor: ReferenceProfile, floors: MinEffect) -> Gate:
    """|distinct-2 ratio - 1| of the text features, at the synthetic set's largest measured sample size."""
    effects, describe = {}, {}
    for f, s in synth.features.items():
        a = anchor.features.get(f)
        if not (isinstance(s, TextProfile) and isinstance(a, TextProfile)) or s.n < MIN_ROWS:
            continue
        size = int(s.distinct_sizes[-1])
        ref = matched(a.distinct_sizes, a.distinct_mean, size)
        if ref > 0:
            r = float(s.distinct_mean[-1]) / ref
            effects[f], describe[f] = abs(r - 1.0), f"distinct-2 ratio {r:.2f} ({size} texts)"
    return _worst("diversity", effects, floors.distinct_ratio, describe, "text")


def entropy_gate(synth: ReferenceProfile, anchor: ReferenceProfile, floors: MinEffect) -> Gate:
    """|entropy ratio - 1| of the categorical features (frequencies over the anchor's categories)."""
    effects, describe = {}, {}
    for f, s in synth.features.items():
        a = anchor.features.get(f)
        if isinstance(s, CategoricalProfile) and isinstance(a, CategoricalProfile) and s.n >= MIN_ROWS \
                and a.entropy > 0:
            r = s.entropy / a.entropy
            effects[f], describe[f] = abs(r - 1.0), f"entropy ratio {r:.2f}"
    return _worst("entropy", effects, floors.entropy_ratio, describe, "categorical")


def confidence_gate(synth: ReferenceProfile, anchor: ReferenceProfile, floors: MinEffect) -> Gate:
    """|mean confidence (max p) of the synthetic set - the anchor's| of the `probs` features."""
    effects, describe = {}, {}
    for f, s in synth.features.items():
        a = anchor.features.get(f)
        if isinstance(s, ProbsProfile) and isinstance(a, ProbsProfile) and s.n >= MIN_ROWS:
            d = s.confidence.mean - a.confidence.mean
            effects[f] = abs(d)
            describe[f] = f"mean confidence {s.confidence.mean:.3f} (anchor {a.confidence.mean:.3f})"
    return _worst("confidence", effects, floors.confidence, describe, "probs")


COLLAPSE_GATES = (spread_gate, tails_gate, coverage_gate, diversity_gate, entropy_gate, confidence_gate)


def collapse_gates(synth: ReferenceProfile, anchor: ReferenceProfile, floors: MinEffect) -> list[Gate]:
    return [g(synth, anchor, floors) for g in COLLAPSE_GATES]


# -- exact copies: the stored row hashes ---------------------------------------------------------------------


def exact_copy_gate(anchor_hashes: np.ndarray, synth_hashes: Iterable[np.ndarray], max_rate: float) -> Gate:
    """The share of synthetic rows whose row hash is among the anchor's, over the anchor's own duplicate share.

    >>> import numpy as np
    >>> g = exact_copy_gate(np.arange(1, 101), [np.arange(71, 171)], 0.01)
    >>> g.value, g.passed
    (0.3, False)
    """
    a = anchor_hashes[anchor_hashes != 0]
    uniq, counts = np.unique(a, return_counts=True)
    baseline = float(counts[counts > 1].sum()) / len(a) if len(a) else 0.0
    hits = rows = 0
    for h in synth_hashes:
        h = h[h != 0]
        if len(h) and len(uniq):
            at = np.minimum(np.searchsorted(uniq, h), len(uniq) - 1)
            hits += int((uniq[at] == h).sum())
        rows += len(h)
    if rows == 0 or len(a) == 0:
        return Gate("exact_copies", None, None, None, "no row with a value to compare")
    rate = hits / rows
    limit = baseline + max_rate
    return Gate("exact_copies", rate, limit, rate <= limit,
                f"{hits} of {rows} rows are anchor rows (anchor's own duplicates {baseline:.2%})")


def _comparable(store: Store, name: str, anchor: str) -> tuple[isodb.SignatureSet | None, isodb.SignatureSet | None,
                                                                str | None]:
    s, a = isodb.get_set(store, name), isodb.get_set(store, anchor)
    if s is None or a is None:
        missing = name if s is None else anchor
        return s, a, (f"{missing} has no stored row hashes (isolation.at_registration off, or registered before "
                      "they existed): re-register it")
    if s.params != {**a.params, "text_features": s.params.get("text_features")}:
        return s, a, (f"{name} and {anchor} hashed different features or settings "
                      f"({s.params.get('features')} vs {a.params.get('features')})")
    return s, a, None


# -- distance to closest record ------------------------------------------------------------------------------


def joint_scores(columns: Mapping[str, Sequence[Any]], anchor: ReferenceProfile, rows: int) -> np.ndarray | None:
    """A seeded sample of the set's rows as normal scores of the anchor's joint features (None: a feature lacks)."""
    joint = anchor.joint
    if joint is None or any(f not in columns for f in joint.features):
        return None
    profs = [anchor.features.get(f) for f in joint.features]
    numeric = [p for p in profs if isinstance(p, NumericProfile)]
    if len(numeric) != len(profs):
        return None
    n = len(columns[joint.features[0]])
    idx = np.sort(np.random.default_rng(DCR_SEED).choice(n, size=min(rows, n), replace=False))
    mats = []
    for f in joint.features:
        col = columns[f]
        vals = [col[i] for i in idx.tolist()]
        mats.append(np.array([v if isinstance(v, int | float) and not isinstance(v, bool) else np.nan for v in vals],
                             dtype=float))
    m = np.column_stack(mats)
    m = m[np.isfinite(m).all(axis=1)]
    return normal_scores_matrix(m, numeric)


def dcr_gate(joint: JointProfile | None, synth: np.ndarray | None) -> Gate:
    """The share of synthetic rows closer to an anchor row than the anchor's leave-one-out 5th percentile.

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> a = rng.normal(size=(2000, 3)).astype(np.float32)
    >>> j = JointProfile(["x", "y", "z"], a, np.eye(3))
    >>> dcr_gate(j, rng.normal(size=(2000, 3))).passed, dcr_gate(j, a[:600].astype(float)).passed
    (True, False)
    """
    if joint is None or len(joint.sample) < 20:
        return Gate("dcr_privacy", None, None, None, "the anchor has no joint sample (fewer than 2 numeric features)")
    if synth is None or len(synth) < MIN_ROWS:
        return Gate("dcr_privacy", None, None, None, "the set lacks a numeric feature of the anchor's joint sample")
    from scipy.spatial import cKDTree

    a = np.asarray(joint.sample, dtype=float)
    sd = a.std(axis=0)
    keep = sd > 0
    a, s = a[:, keep] / sd[keep], synth[:, keep] / sd[keep]
    tree = cKDTree(a)
    base = tree.query(a, k=2)[0][:, 1]  # the nearest *other* anchor row: leave-one-out
    near = float(np.quantile(base, DCR_QUANTILE))
    base_share = float((base <= near).mean())
    d = tree.query(s, k=1)[0]
    share = float((d <= near).mean())
    limit = DCR_RATIO * base_share
    return Gate("dcr_privacy", share, limit, share <= limit,
                f"{share:.1%} of {len(s)} rows nearer an anchor row than {near:.3g} sd, the anchor's "
                f"{DCR_QUANTILE:.0%} nearest-record distance (anchor {base_share:.1%})")


# -- near-duplicate clusters inside a set --------------------------------------------------------------------


def _link_groups(keys: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(member, its group's first member) for every member of a group of equal keys with two or more."""
    order = np.argsort(keys, kind="stable")
    k, m = keys[order], members[order]
    start = np.r_[True, k[1:] != k[:-1]]
    first = m[np.maximum.accumulate(np.where(start, np.arange(len(k)), 0))]
    return m[~start], first[~start]


def clusters(hashes: np.ndarray, words: np.ndarray, sigs: np.ndarray, *, threshold: float, bands: int,
             rows: int) -> tuple[float, int]:
    """(share of rows in a cluster of two or more, largest cluster) of near-duplicate texts or equal row hashes.

    Within each LSH band a row is linked to its bucket's first row when their signatures agree on at
    least `threshold` of the values; equal non-zero row hashes are linked too; clusters are the
    connected components.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(hashes)
    if n == 0:
        return 0.0, 0
    src, dst = [], []
    nz = np.flatnonzero(hashes != 0)
    a, b = _link_groups(hashes[nz], nz)
    src.append(a)
    dst.append(b)
    text = np.flatnonzero(words > 0)
    if len(text):
        keys = isolation._band_keys(sigs[text], bands, rows)
        for j in range(bands):
            a, b = _link_groups(keys[:, j], text)
            ok = (sigs[a] == sigs[b]).mean(axis=1) >= threshold if len(a) else np.zeros(0, dtype=bool)
            src.append(a[ok])
            dst.append(b[ok])
    i, k = np.concatenate(src), np.concatenate(dst)
    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, k)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    return float(sizes[labels].__ge__(2).mean()), int(sizes.max())


def _first_rows(store: Store, sset: isodb.SignatureSet, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = int(sset.params["num_perm"])
    hs, ws, ss, got = [], [], [], 0
    for c in islice(isodb.iter_chunks(store, sset.dataset), -(-limit // isolation.CHUNK_ROWS)):
        hs.append(np.frombuffer(c.row_hashes, dtype="<i8"))
        ws.append(np.frombuffer(c.words, dtype="<u4"))
        ss.append(np.frombuffer(c.signatures, dtype="<u4").reshape(c.n_rows, p))
        got += c.n_rows
    if not hs:
        return np.empty(0, np.int64), np.empty(0, np.uint32), np.empty((0, p), np.uint32)
    return np.concatenate(hs)[:limit], np.concatenate(ws)[:limit], np.concatenate(ss)[:limit]


def near_duplicate_gate(cfg: Config, store: Store, synth: isodb.SignatureSet, anchor: isodb.SignatureSet) -> Gate:
    c = cfg.isolation
    bands, rows = isolation.bands_for(c.threshold, c.num_perm)
    m = min(CLUSTER_ROWS, synth.n_rows, anchor.n_rows)
    if m < MIN_ROWS:
        return Gate("near_duplicates", None, None, None, "too few rows to cluster")
    share, largest = clusters(*_first_rows(store, synth, m), threshold=c.threshold, bands=bands, rows=rows)
    base, base_largest = clusters(*_first_rows(store, anchor, m), threshold=c.threshold, bands=bands, rows=rows)
    limit = base + MARGIN * cfg.policy.min_effect.distinct_ratio
    return Gate("near_duplicates", share, limit, share <= limit,
                f"{share:.1%} of {m} rows in clusters, largest {largest} (anchor {base:.1%}, largest {base_largest})")


# -- card completeness ----------------------------------------------------------------------------------------


def _present(card: Mapping[str, Any], path: str) -> bool:
    v: Any = card
    for part in path.split("."):
        v = v.get(part) if isinstance(v, Mapping) else None
    return v not in (None, "", [], {})


def card_completeness(card: Mapping[str, Any], role: str) -> list[CardLetter]:
    """Each CAREFUL letter complete, or the card fields it lacks.

    >>> [(c.letter, c.missing) for c in card_completeness({"purpose": "x", "lifecycle": {"owner": "me"}}, "real")
    ...  if c.letter in "CL"]
    [('C', ()), ('L', ('lifecycle.review_every_days',))]
    """
    synthetic = role == "synthetic"
    needs: dict[str, list[str]] = {
        "C": ["purpose"], "A": ["anchored_by"] if synthetic else [],
        "R": ["provenance.generator"] if synthetic else [], "E": ["evaluation_isolation"],
        "F": ["filtering.gates", "filtering.rejected_kept_at"], "U": ["use_limits"],
        "L": ["lifecycle.owner", "lifecycle.review_every_days"]}
    out = []
    for letter, question, _fields in CAREFUL_ANSWERS:
        missing = [f for f in needs[letter] if not _present(card, f)]
        if letter == "R" and not (_present(card, "provenance.parent") or _present(card, "provenance.source")):
            missing.append("provenance.parent or provenance.source")
        out.append(CardLetter(letter, question, not missing, tuple(missing)))
    return out


# -- the report ------------------------------------------------------------------------------------------------


def _sha(store: Store, name: str | None) -> str | None:
    rec = store.get_dataset(name) if name else None
    return rec.data_sha256 if rec is not None else None


def run(cfg: Config, store: Store, rec: DatasetRecord, *, profile: ReferenceProfile | None = None,
        anchor: ReferenceProfile | None = None, columns: Mapping[str, Sequence[Any]] | None = None) -> GateReport:
    """Compute the dataset's report and store it (the latest per dataset).

    The DCR gate needs the set's rows (`columns`); without them it is carried over from the last
    report when that was computed on the same data and the same anchor, else not evaluated.
    """
    t0 = time.perf_counter()
    card = card_completeness(rec.card, rec.role)
    gates: list[Gate] = []
    notes: list[str] = []
    anchor_sha = _sha(store, rec.anchored_by)
    if rec.role != "synthetic":
        notes.append(f"{rec.name} has role {rec.role}: only its card is checked (the gates compare a synthetic "
                     "set with its anchor)")
    else:
        assert rec.anchored_by is not None  # a synthetic card names its anchor (cards.Card)
        arec = store.get_dataset(rec.anchored_by)
        if arec is None:
            raise RegistryError(f"{rec.name}: its anchor '{rec.anchored_by}' is not registered; register it first")
        anchor = anchor or ReferenceProfile.from_bytes(arec.profile)
        profile = profile or ReferenceProfile.from_bytes(rec.profile)
        gates += collapse_gates(profile, anchor, cfg.policy.min_effect)
        sset, aset, problem = _comparable(store, rec.name, arec.name)
        if problem is None and sset is not None and aset is not None:
            anchor_hashes = np.concatenate([*db.iter_row_hashes(store, arec.name), np.empty(0, np.int64)])
            gates.append(exact_copy_gate(anchor_hashes, db.iter_row_hashes(store, rec.name), cfg.isolation.max_rate))
            del anchor_hashes
        else:
            gates.append(Gate("exact_copies", None, None, None, problem or ""))
        if columns is not None:
            gates.append(dcr_gate(anchor.joint, joint_scores(columns, anchor, cfg.profile.joint_sample)))
        else:
            gates.append(_previous_dcr(store, rec, anchor_sha, notes))
        if sset is not None and aset is not None:
            gates.append(near_duplicate_gate(cfg, store, sset, aset))
        else:
            gates.append(Gate("near_duplicates", None, None, None, problem or ""))
    report = GateReport(rec.name, rec.role, rec.anchored_by, gates, card, notes, datetime.now(UTC).replace(
        microsecond=0), round(time.perf_counter() - t0, 3), rec.data_sha256, anchor_sha)
    db.put_report(store, rec.name, report.doc(), report.computed_at)
    return report


def _previous_dcr(store: Store, rec: DatasetRecord, anchor_sha: str | None, notes: list[str]) -> Gate:
    stored = db.get_report(store, rec.name)
    if stored is not None:
        last = GateReport.from_doc(stored.report)
        same = last.data_sha256 == rec.data_sha256 and last.anchor_sha256 == anchor_sha
        dcr = next((g for g in last.gates if g.name == "dcr_privacy"), None)
        if same and dcr is not None and dcr.passed is not None:
            notes.append(f"dcr_privacy as computed at {stored.report['computed_at']} on the same data and anchor "
                         "(pass --data FILE to recompute it)")
            return dcr
    return Gate("dcr_privacy", None, None, None, "needs the set's rows: pass --data FILE (its registered data file)")


def load(store: Store, name: str) -> GateReport | None:
    """The dataset's last stored report, or None."""
    stored = db.get_report(store, name)
    return GateReport.from_doc(stored.report) if stored is not None else None


def check(cfg: Config, store: Store, name: str, *, data: Path | None = None) -> GateReport:
    """`datasets check NAME`: re-run and store the report; `data` (the registered file) recomputes DCR."""
    from careful_monitor.sources.datasets import DataFormatError, file_sha256, read_dataset

    rec = store.get_dataset(name)
    if rec is None:
        raise NotFoundError(f"dataset '{name}' is not registered (see `careful-monitor datasets list`)")
    columns = None
    if data is not None and rec.role == "synthetic":
        if file_sha256(data) != rec.data_sha256:
            raise ManifestError(str(data), "data", f"is not the data {name} was registered with (its sha256 "
                                                   "differs); re-register the card, or pass the registered file")
        try:
            columns = read_dataset(data)
        except (DataFormatError, OSError, ValueError) as exc:
            raise ManifestError(str(data), "data", f"cannot read {data.name}: {exc}") from None
    return run(cfg, store, rec, columns=columns)


def summary(report: GateReport) -> str:
    """One line: which gates failed (value against limit) and which card letters are incomplete."""
    evaluated = sum(g.passed is not None for g in report.gates)
    parts = [f"{len(report.failed)} of {len(report.gates)} gates failed: "
             + ", ".join(f"{g.name} {g.value:.3g} > {g.threshold:.3g}" for g in report.failed) if report.failed
             else f"all {evaluated} evaluated gates passed" if evaluated else "no gate evaluated"]
    if report.incomplete:
        parts.append("card incomplete: " + ", ".join(c.letter for c in report.incomplete))
    return "; ".join(parts)


def at_registration(cfg: Config, store: Store, rec: DatasetRecord, profile: ReferenceProfile,
                    columns: Mapping[str, Sequence[Any]], *, anchor: ReferenceProfile | None) -> list[str]:
    """Compute and store a synthetic set's report; warnings for failing gates. Registration never fails here."""
    if rec.role != "synthetic":
        return []
    try:
        report = run(cfg, store, rec, profile=profile, anchor=anchor, columns=columns)
    except Exception as exc:  # a gate must never undo a registration; the stack goes to the log
        log.exception("pre-flight gates of %s failed to run", rec.name)
        return [f"pre-flight gates of {rec.name} not computed: {exc} (retry: careful-monitor datasets check "
                f"{rec.name})"]
    if not report.failed:
        return []
    return [f"pre-flight gates of {rec.name}: {summary(report)} (careful-monitor datasets check {rec.name})"]
