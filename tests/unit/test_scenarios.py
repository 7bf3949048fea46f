"""Seeded checks of the collapse scenarios against the claims of the papers they follow."""

from __future__ import annotations

import dataclasses
import math
from itertools import pairwise

import numpy as np
import orjson
import pytest

from careful_monitor.scenarios import (
    SCENARIOS,
    category_labels,
    distinct_n,
    first_generation_below,
    fit_mixture_em,
    mean_entropy,
    mean_max_prob,
    mixture_quantile,
    recursive_categorical,
    recursive_confidence,
    recursive_gaussian,
    recursive_mixture,
    recursive_text,
    sample_categories,
    sample_mixture,
    sample_probs,
    sample_texts,
    tail_mass,
    to_events,
    to_rows,
    zipf_probs,
)
from careful_monitor.scenarios.mixture import MEANS, SDS, WEIGHTS
from careful_monitor.scenarios.text import fit_bigram
from careful_monitor.sources.decode import EventDecoder

SEEDS = range(20)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def same(a, b) -> bool:
    """Deep equality that compares numpy arrays by value."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    return a == b


# --- recursive Gaussian (Shumailov et al. 2024; Gerstgrasser et al. 2024) ---------------------------

def test_gaussian_replace_collapses_in_nearly_every_seed():
    # log(var_t) drifts by about -2/n per generation with variance 2/n: at n=100 and t=500 the log ratio is
    # ~N(-10, 3.2^2), so P(ratio >= 0.1) is about 0.8% per seed and two failures in 20 seeds about 1%.
    ratios = [recursive_gaussian(rng(s), generations=500, n_per_generation=100)[-1].variance_ratio for s in SEEDS]
    assert sum(r < 0.1 for r in ratios) >= 19, ratios


def test_gaussian_replace_mean_variance_follows_the_biased_mle():
    # E[sigma_t^2] = sigma^2 ((n-1)/n)^t exactly; at n=20, t=10 that is 0.95^10 = 0.599, and the ratio's sd is
    # 0.79, so 1000 runs have a standard error of 0.025: 0.1 is four of them.
    ratios = [recursive_gaussian(rng(1000 + s), generations=10, n_per_generation=20, sigma=3.0)[-1].variance_ratio
              for s in range(1000)]
    assert abs(np.mean(ratios) - 0.95 ** 10) < 0.1


def test_gaussian_replace_reaches_ratio_0_7_within_a_few_dozen_generations_at_n_100():
    # The mean crosses 0.7 at t=36 (0.99^36); a run's first passage comes sooner (median 10 over 2000 seeds)
    # because the log-variance is a random walk with drift -0.02 and step sd 0.14. The default 100
    # generations reach it in 97% of runs, so four or more misses in 20 seeds have probability ~0.3%.
    firsts = [first_generation_below(recursive_gaussian(rng(s), n_per_generation=100), 0.7) for s in SEEDS]
    reached = [f for f in firsts if f is not None]
    assert len(reached) >= 17
    assert 3 <= np.median(reached) <= 36


def test_gaussian_accumulate_stays_bounded_in_every_seed():
    # Accumulating, generation t's error is diluted by a pool of t*n points; over 2000 seeds at n=100 the
    # smallest ratio in 500 generations fell below 0.5 once (P ~ 0.05% per seed, ~1% for any of 20).
    for s in SEEDS:
        gens = recursive_gaussian(rng(s), generations=500, n_per_generation=100, regime="accumulate")
        assert min(g.variance_ratio for g in gens) > 0.5, s


def test_gaussian_regimes_share_the_real_sample_and_validate_input():
    rep = recursive_gaussian(rng(3), generations=5, n_per_generation=50, mu=2.0, sigma=0.5)
    acc = recursive_gaussian(rng(3), generations=5, n_per_generation=50, mu=2.0, sigma=0.5, regime="accumulate")
    assert rep[0] == acc[0] and rep[1] == acc[1] and rep[2] != acc[2]
    assert [g.index for g in rep] == list(range(6)) and rep[0].variance_ratio == 1.0
    assert first_generation_below(rep, 0.0) is None
    with pytest.raises(ValueError, match="regime"):
        recursive_gaussian(rng(0), generations=1, n_per_generation=10, regime="mix")  # type: ignore[arg-type]


def test_gaussian_accumulate_pooled_fit_equals_a_fit_on_the_whole_pool():
    # The streaming pooled statistics must equal an MLE on the concatenated pool, redrawn with the same stream.
    gens = recursive_gaussian(rng(5), generations=4, n_per_generation=30, regime="accumulate")
    g, pool = rng(5), []
    law = (0.0, 1.0)
    for t in range(1, 5):
        pool.append(g.normal(*law, 30))
        x = np.concatenate(pool)
        law = (x.mean(), x.std())
        assert gens[t].mu == pytest.approx(law[0], abs=1e-12) and gens[t].sigma == pytest.approx(law[1], rel=1e-12)


# --- recursive Gaussian mixture (Shumailov et al. 2024) ----------------------------------------------

def test_mixture_tail_mass_falls():
    # The tails are under-sampled and EM's variances are biased low: the median tail mass over seeds falls
    # steadily from 2%. Not every run: the law narrows around a wandering point that sometimes sits in a tail
    # (15% of runs at t=40 over 200 seeds), so 14 of 20 (binomial: P(fewer) ~ 2%).
    tails = np.array([[g.tail_mass for g in recursive_mixture(rng(s), generations=40, n_per_generation=100)]
                      for s in SEEDS])
    assert np.allclose(tails[:, 0], 0.02, atol=1e-9)
    med = np.median(tails, axis=0)
    assert med[0] > med[10] > med[20] > med[40]
    assert med[40] <= 0.002
    assert (tails[:, 40] < 0.02).sum() >= 14


def test_mixture_em_recovers_a_mixture_from_a_large_sample():
    # Agreement with the generating law: 20000 points give means to about 0.05 and weights to about 0.01.
    x = sample_mixture(rng(11), (WEIGHTS, MEANS, SDS), 20_000)
    w, m, s = fit_mixture_em(x, ((0.4, 0.4, 0.2), (-2.0, 2.0, 4.0), (1.0, 1.0, 1.0)), iterations=500)
    assert np.allclose(w, WEIGHTS, atol=0.03) and np.allclose(m, MEANS, atol=0.15) and np.allclose(s, SDS, atol=0.15)
    q01, q99 = mixture_quantile((WEIGHTS, MEANS, SDS), 0.01), mixture_quantile((WEIGHTS, MEANS, SDS), 0.99)
    assert np.quantile(x, 0.01) == pytest.approx(q01, abs=0.15) and np.quantile(x, 0.99) == pytest.approx(q99, abs=0.3)
    assert tail_mass((WEIGHTS, MEANS, SDS), q01, q99) == pytest.approx(0.02, abs=1e-9)


# --- recursive categorical resampling -----------------------------------------------------------------

def test_categorical_loses_categories_for_good():
    # A category of probability p dies in one step with probability (1-p)^n: sum over Zipf(1.1, K=100) at
    # n=1000 is 7.2 per generation at first, and drift keeps killing the tail (median 21 left at t=50 over 200
    # seeds, the most 31), so at most half survive.
    for s in SEEDS:
        run = recursive_categorical(rng(s), generations=50, n_per_generation=1000, categories=100)
        assert run.survivors[0] == 100 and (np.diff(run.survivors) <= 0).all()
        assert run.survivors[-1] <= 50
        assert not (run.frequencies[1:] > 0)[run.frequencies[:-1] == 0].any()  # lost means lost
        assert np.allclose(run.frequencies.sum(axis=1), 1.0)


def test_categorical_first_generation_losses_match_theory():
    # E[lost after one step] = sum_k (1-p_k)^n = 7.16; its sd is about 2.5, so 400 runs: SE 0.13.
    expected = float(((1 - zipf_probs(100)) ** 1000).sum())
    lost = [100 - recursive_categorical(rng(s), generations=1, n_per_generation=1000).survivors[1] for s in range(400)]
    assert abs(np.mean(lost) - expected) < 0.5


def test_categorical_sampling_uses_only_survivors():
    run = recursive_categorical(rng(2), generations=30, n_per_generation=200, categories=20)
    alive = {category_labels(20)[i] for i in np.flatnonzero(run.frequencies[-1])}
    assert set(sample_categories(rng(0), run.frequencies[-1], 500)) <= alive


# --- text: bigram model retrained on its own sentences ------------------------------------------------

def test_text_distinct_2_falls_at_matched_sample_size():
    # Only bigrams seen in a finite sample survive a refit: after 5 generations of 1000 sentences the bigram
    # support shrinks from all 250000 pairs to a few thousand, and distinct-2 over the same number of
    # bigrams falls by more than half (by 61-65% in these seeds).
    for s in range(8):
        g = rng(s)
        models = recursive_text(g, generations=5, sentences_per_generation=1000)
        first, last = sample_texts(g, models[0], 1000), sample_texts(g, models[-1], 1000)
        n = min(sum(len(t.split()) - 1 for t in first), sum(len(t.split()) - 1 for t in last))
        assert distinct_n(last, 2, limit=n) <= 0.5 * distinct_n(first, 2, limit=n), s
        support = [m.bigram_support for m in models]
        assert all(a >= b for a, b in pairwise(support))


def test_text_sharpening_speeds_up_the_loss():
    # Temperature 0.8 sharpens every refit; compounding, the support shrinks much faster than plain resampling.
    plain = recursive_text(rng(4), generations=4, sentences_per_generation=500, vocab_size=200)
    sharp = recursive_text(rng(4), generations=4, sentences_per_generation=500, vocab_size=200, temperature=0.8)
    assert sharp[0] == plain[0]
    assert sharp[-1].bigram_support < 0.7 * plain[-1].bigram_support


def test_fit_bigram_counts_a_tiny_corpus_exactly():
    # Sentences "w0 w1" and "w1": start->w0, start->w1, w0->w1, w1->end twice.
    model = fit_bigram(np.array([[0, 1, -1], [1, -1, -1]]), ("a", "b"), max_length=3)
    assert np.array_equal(model.transitions, [[0, 1, 0], [0, 0, 1], [0.5, 0.5, 0]])
    assert sample_texts(rng(0), model, 50) and set(sample_texts(rng(0), model, 50)) <= {"a b", "b"}


def test_distinct_n_by_hand():
    assert distinct_n(["a b a b", "a b"], 2) == 0.5  # (a,b) (b,a) (a,b) | (a,b)
    assert distinct_n(["a b a b", "a b"], 2, limit=2) == 1.0
    assert distinct_n(["a b c"], 1) == 1.0 and distinct_n(["a"], 2) == 0.0


# --- confidence -----------------------------------------------------------------------------------------

def test_mean_max_prob_rises_with_generations():
    # T_t = 0.8^t: the softmax sharpens; with 1000 rows the mean max-prob's noise (sd ~0.005) is small next to
    # its rise (0.68 at T=1 to 0.96 at T=0.11).
    curves = np.array([[mean_max_prob(p) for _, p in recursive_confidence(rng(s), generations=10, n=1000)]
                       for s in SEEDS])
    assert (np.diff(curves.mean(axis=0)) > 0).all()
    assert (curves[:, -1] - curves[:, 0] >= 0.2).all()
    first, last = recursive_confidence(rng(0), generations=10)[::10]
    assert mean_entropy(last[1]) < 0.5 * mean_entropy(first[1])


def test_temperature_only_sharpens():
    # The same draws at two temperatures: every row keeps its argmax and gets more confident.
    labels, warm = sample_probs(rng(9), 500, ["x", "y", "z", "w"], 1.0)
    _, cold = sample_probs(rng(9), 500, labels, 0.5)
    assert labels == ["x", "y", "z", "w"] and warm.shape == (500, 4)
    assert np.array_equal(warm.argmax(axis=1), cold.argmax(axis=1))
    assert (cold.max(axis=1) >= warm.max(axis=1) - 1e-12).all()
    assert np.allclose(cold.sum(axis=1), 1.0)


# --- determinism, for every registered scenario --------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenarios_are_deterministic_and_leave_global_randomness_alone(name):
    fn, description = SCENARIOS[name]
    assert callable(fn) and description and "\n" not in description
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a, b, c = fn(rng(7)), fn(rng(7)), fn(rng(8))
    assert same(a, b) and not same(a, c)
    assert np.array_equal(np.random.get_state()[1], before)


# --- streams: events and rows ----------------------------------------------------------------------------

def _columns(n: int = 300):
    g = rng(1)
    gens = recursive_gaussian(g, generations=3, n_per_generation=50)
    x = sample_mixture(g, (WEIGHTS, MEANS, SDS), n)
    x[::50] = np.nan
    labels, probs = sample_probs(g, n, ["a", "b", "c"], 0.7)
    inputs = {"x": x, "y": g.normal(gens[-1].mu, gens[-1].sigma, n).astype(np.float32), "k": np.arange(n),
              "flag": np.arange(n) % 2 == 0, "country": sample_categories(g, zipf_probs(5), n),
              "text": sample_texts(g, recursive_text(g, generations=1, sentences_per_generation=50,
                                                     vocab_size=30)[-1], n)}
    outputs = {"label": np.array(labels)[probs.argmax(axis=1)], "score": probs.max(axis=1)}
    return inputs, outputs, (labels, probs)


def test_to_events_round_trips_through_the_decoder():
    inputs, outputs, probs = _columns()
    events = to_events("m", start_ts=1_764_000_000.0, step_seconds=0.5, inputs=inputs, outputs=outputs, probs=probs,
                       version=8, id_prefix="req-")
    assert list(events[0]) == ["model", "model_version", "ts", "id", "inputs", "outputs"]
    assert events[3]["id"] == "req-3" and events[3]["ts"] == 1_764_000_001.5 and events[3]["model_version"] == "8"
    features = ["inputs.x", "inputs.y", "inputs.k", "inputs.flag", "inputs.country", "inputs.text",
                "outputs.label", "outputs.score", "outputs.probs"]
    decoded = EventDecoder({"m": features}, max_event_bytes=1 << 20).decode([orjson.dumps(e) for e in events])
    assert decoded.rejected == [] and decoded.accepted == len(events)
    batch = decoded.batches["m"]
    assert batch.ts == [e["ts"] for e in events] and set(batch.versions) == {"8"}
    x = batch.columns["inputs.x"]
    assert x[0] is None and x[50] is None and x[1] == inputs["x"][1]
    assert batch.columns["inputs.k"] == list(range(300)) and batch.columns["inputs.flag"][:2] == [True, False]
    assert batch.columns["inputs.country"] == inputs["country"] and batch.columns["inputs.text"] == inputs["text"]
    labels, p = probs
    assert batch.columns["outputs.probs"][7] == dict(zip(labels, p[7].tolist(), strict=True))
    assert batch.columns["outputs.label"] == outputs["label"].tolist()
    for e in events[:50]:  # plain Python values only: JSON-ready without a numpy-aware encoder
        for v in (*e["inputs"].values(), *e["outputs"].values()):
            assert type(v) in (str, int, float, bool, type(None), dict)
            assert not (type(v) is float and math.isnan(v))


def test_to_rows_are_events_without_model_ts_id():
    inputs, outputs, probs = _columns(40)
    rows = to_rows(inputs=inputs, outputs=outputs, probs=probs)
    events = to_events("m", start_ts=0.0, step_seconds=1.0, inputs=inputs, outputs=outputs, probs=probs)
    assert rows == [{"inputs": e["inputs"], "outputs": e["outputs"]} for e in events]
    assert to_rows(inputs={"v": [np.int64(3), float("nan"), None, "s"]}, outputs={}) == [
        {"inputs": {"v": 3}, "outputs": {}}, {"inputs": {"v": None}, "outputs": {}},
        {"inputs": {"v": None}, "outputs": {}}, {"inputs": {"v": "s"}, "outputs": {}}]


def test_streams_reject_inconsistent_columns():
    with pytest.raises(ValueError, match=r"inputs\.b"):
        to_rows(inputs={"a": [1, 2], "b": [1]}, outputs={})
    with pytest.raises(ValueError, match="probs"):
        to_rows(inputs={"a": [1, 2]}, outputs={}, probs=(["p", "q"], np.ones((3, 2)) / 2))
    with pytest.raises(ValueError, match="finite"):
        to_rows(inputs={}, outputs={}, probs=(["p", "q"], np.array([[np.nan, 1.0]])))
    with pytest.raises(ValueError, match="at least one"):
        to_rows(inputs={}, outputs={})
    with pytest.raises(ValueError, match="1-D"):
        to_rows(inputs={"a": np.zeros((2, 2))}, outputs={})
