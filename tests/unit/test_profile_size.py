"""Numeric and categorical profiles stay within 64 KiB per feature for a 1,000,000-row dataset (issue 15 item 6),
the joint sample included (its bytes shared out over the features it holds)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from careful_monitor.engine.profile import ProfileBuilder, ReferenceProfile

ROWS = 1_000_000
BATCH = 100_000
KINDS = {"inputs.x": "numeric", "inputs.y": "numeric", "inputs.c": "categorical"}
LIMIT = 64 * 1024


def _profile(name: str, role: str, anchor: ReferenceProfile | None, rng: np.random.Generator) -> ReferenceProfile:
    """1,000,000 rows in batches, as registration reads a file: a normal, a skewed numeric, 1,000 Zipf categories."""
    cats = np.array([f"c{i:04d}" for i in range(1000)])
    p = 1.0 / np.arange(1, 1001) ** 1.1
    p /= p.sum()
    b = ProfileBuilder(name, role, kinds=KINDS, anchor=anchor, anchored_by=None if anchor is None else anchor.name,
                       rng=np.random.default_rng(1))
    for _ in range(ROWS // BATCH):
        b.add({"inputs.x": rng.normal(size=BATCH).tolist(), "inputs.y": rng.gamma(2.0, size=BATCH).tolist(),
               "inputs.c": cats[rng.choice(1000, BATCH, p=p)].tolist()}, BATCH)
    return b.finish()


@pytest.fixture(scope="module")
def big() -> tuple[ReferenceProfile, ReferenceProfile]:
    rng = np.random.default_rng(0)
    anchor = _profile("big", "real", None, rng)
    return anchor, _profile("big-synth", "synthetic", anchor, rng)


def test_each_feature_serialises_within_64_kib_for_a_million_rows(big) -> None:
    """Measured (serialised .npz bytes beyond an empty profile): numeric 8.9 KB (1,024 quantiles, 20 bins,
    moments), the 1,000-category feature 3.4 KB, and the joint sample (5,000 rows x 2 float32 scores, one
    for the anchor and one for each synthetic set) 37.5 KB, 18.8 KB per feature it holds: at most ~28 KB
    a feature in all, whatever the row count (the bounds do not grow with it)."""
    for prof in big:
        assert prof.n_rows == ROWS and prof.joint is not None and prof.joint.sample.shape == (5000, 2)
        empty = len(dataclasses.replace(prof, features={}, joint=None).to_bytes())
        joint = len(prof.to_bytes()) - len(dataclasses.replace(prof, joint=None).to_bytes())
        per_joint_feature = joint / len(prof.joint.features)
        for f, fp in prof.features.items():
            size = len(dataclasses.replace(prof, features={f: fp}, joint=None).to_bytes()) - empty
            if f in prof.joint.features:
                size += per_joint_feature
            assert size <= LIMIT, (prof.name, f, size)
