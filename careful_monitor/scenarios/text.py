"""Text whose distinct n-grams shrink: a bigram language model retrained on its own sentences.

Generation 0 is a bigram model over a Zipf vocabulary of `vocab_size` pseudo-words: the next word
after each word (or at the start of a sentence) follows the Zipf law times a random per-context
factor (Gamma(`context_shape`) noise, so contexts differ), and every word ends the sentence with
probability 1/`mean_length` (sentences hold at most `max_length` words). Each later generation is
the maximum-likelihood bigram model (transition counts, normalised) of `sentences_per_generation`
sentences sampled from the previous generation. A bigram the sample misses has probability 0 from
then on, so the set of reachable bigrams only shrinks and diversity falls (distinct-n at matched
sample size, Li et al. 2016), like the categorical case one level up.

`temperature` < 1 sharpens each refitted model before it generates, ``p(next word) ~ p^(1/T)``
(the sentence-end probability of each context is kept, so only the choice of word is sharpened):
the low-temperature decoding commonly used to produce synthetic text, which speeds up the loss of
diversity (the "sampling bias" of Alemohammad et al.). Sharpening compounds: after t generations
the surviving contexts behave as if sampled at temperature T^t, so T = 0.7 leaves a handful of
sentences within ten generations. ``temperature = 1`` is plain resampling.

Parameters of `recursive_text`: `generations`, `sentences_per_generation`, `vocab_size`, `zipf_s`,
`mean_length`, `max_length`, `context_shape`, `temperature`. It returns ``generations + 1``
`BigramModel`s, generation 0 first; `sample_texts(rng, model, count)` draws sentences from one.

References: I. Shumailov et al., "AI models collapse when trained on recursively generated data",
Nature 631 (2024) (language models fine-tuned on their own output lose the tails); Y. Guo et al.,
"The curious decline of linguistic diversity: training language models on synthetic text", Findings
of NAACL 2024; S. Alemohammad et al., "Self-consuming generative models go MAD", ICLR 2024;
J. Li et al., "A diversity-promoting objective function for neural conversation models", NAACL 2016
(distinct-n).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> models = recursive_text(rng, generations=3, sentences_per_generation=300, vocab_size=200)
>>> first, last = sample_texts(rng, models[0], 300), sample_texts(rng, models[-1], 300)
>>> len(first), isinstance(first[0], str)
(300, True)
>>> distinct_n(last, 2, limit=1500) < distinct_n(first, 2, limit=1500)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "sh", "ch")
_VOWELS = ("a", "e", "i", "o", "u", "ai")


@dataclass(frozen=True, eq=False)
class BigramModel:
    """A bigram model over `vocab`: row i < V is word i, row V the sentence start; column V ends it."""

    vocab: tuple[str, ...]
    transitions: np.ndarray  # (V+1, V+1), rows sum to 1
    max_length: int = 40

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, BigramModel) and self.vocab == other.vocab and self.max_length == other.max_length
                and np.array_equal(self.transitions, other.transitions))

    __hash__ = None  # type: ignore[assignment]

    @property
    def bigram_support(self) -> int:
        """Number of word-to-word transitions with probability > 0."""
        v = len(self.vocab)
        return int((self.transitions[:v, :v] > 0).sum())


def pseudo_words(k: int) -> tuple[str, ...]:
    """k distinct pronounceable pseudo-words, the same for every k-prefix ("ba", "be", ...)."""
    syllables = [o + v for o in _ONSETS for v in _VOWELS]
    words: list[str] = []
    i = 0
    while len(words) < k:
        j, parts = i, []
        while True:
            parts.append(syllables[j % len(syllables)])
            j = j // len(syllables) - 1
            if j < 0:
                break
        words.append("".join(reversed(parts)))
        i += 1
    return tuple(words)


def initial_model(rng: np.random.Generator, *, vocab_size: int = 500, zipf_s: float = 1.1, mean_length: float = 10.0,
                  max_length: int = 40, context_shape: float = 0.5) -> BigramModel:
    """Generation 0: Zipf word law modulated per context, constant sentence-end probability."""
    if vocab_size < 2 or mean_length < 1 or max_length < 1:
        raise ValueError("need vocab_size >= 2, mean_length >= 1, max_length >= 1")
    v = vocab_size
    zipf = 1.0 / np.arange(1, v + 1, dtype=float) ** zipf_s
    words = zipf * rng.gamma(context_shape, 1.0, (v + 1, v))
    words /= words.sum(axis=1, keepdims=True)
    stop = 1.0 / mean_length
    trans = np.empty((v + 1, v + 1))
    trans[:v, :v] = words[:v] * (1.0 - stop)
    trans[:v, v] = stop
    trans[v, :v] = words[v]  # a sentence has at least one word
    trans[v, v] = 0.0
    return BigramModel(pseudo_words(v), trans, max_length)


def _sample_tokens(rng: np.random.Generator, model: BigramModel, count: int) -> np.ndarray:
    """(count, max_length) word indices, -1 after each sentence's end."""
    v = len(model.vocab)
    cum = np.cumsum(model.transitions, axis=1)
    cum[:, -1] = 1.0  # guard against rounding: the last column closes every row
    # row i's CDF shifted to [i, i+1]: one searchsorted over all rows draws every sentence's next word
    flat = (cum + np.arange(v + 1)[:, None]).ravel()
    tokens = np.full((count, model.max_length), -1, dtype=np.int64)
    state = np.full(count, v)
    alive = np.arange(count)
    for step in range(model.max_length):
        u = rng.random(len(alive))
        nxt = np.searchsorted(flat, state + u, side="right") - state * (v + 1)  # first j with cum[j] > u
        going = nxt < v
        alive, state = alive[going], nxt[going]
        if len(alive) == 0:
            break
        tokens[alive, step] = state
    return tokens


def sample_texts(rng: np.random.Generator, model: BigramModel, count: int) -> list[str]:
    """`count` sentences (words joined by single spaces) drawn from a bigram model."""
    vocab = model.vocab
    return [" ".join(vocab[j] for j in row if j >= 0) for row in _sample_tokens(rng, model, count).tolist()]


def fit_bigram(tokens: np.ndarray, vocab: tuple[str, ...], max_length: int, temperature: float = 1.0) -> BigramModel:
    """Maximum-likelihood bigram model of token rows (-1 padded), optionally sharpened by `temperature`."""
    v = len(vocab)
    lengths = (tokens >= 0).sum(axis=1)
    pos = np.arange(tokens.shape[1] + 1)[None, :]
    prev = np.pad(tokens, ((0, 0), (1, 0)), constant_values=v)  # the start, then each word
    nxt = np.where(pos == lengths[:, None], v, np.pad(tokens, ((0, 0), (0, 1)), constant_values=-1))
    keep = pos <= lengths[:, None]  # every word, then the end
    counts = np.bincount(prev[keep] * (v + 1) + nxt[keep], minlength=(v + 1) ** 2).reshape(v + 1, v + 1).astype(float)
    if temperature != 1.0:
        if not temperature > 0:
            raise ValueError("temperature must be > 0")
        words = counts[:, :v]
        total = words.sum(axis=1, keepdims=True)
        sharp = np.power(words / np.where(total > 0, total, 1.0), 1.0 / temperature)
        norm = sharp.sum(axis=1, keepdims=True)
        counts[:, :v] = sharp / np.where(norm > 0, norm, 1.0) * total
    rows = counts.sum(axis=1, keepdims=True)
    trans = np.where(rows > 0, counts / np.where(rows > 0, rows, 1.0), 0.0)
    trans[rows[:, 0] == 0, v] = 1.0  # a context never seen cannot be reached; close it to keep rows valid
    return BigramModel(vocab, trans, max_length)


def recursive_text(rng: np.random.Generator, *, generations: int = 10, sentences_per_generation: int = 2000,
                   vocab_size: int = 500, zipf_s: float = 1.1, mean_length: float = 10.0, max_length: int = 40,
                   context_shape: float = 0.5, temperature: float = 1.0) -> list[BigramModel]:
    """Refit a bigram model on a finite sample of its own sentences, `generations` times."""
    if generations < 0 or sentences_per_generation < 1:
        raise ValueError("need generations >= 0 and sentences_per_generation >= 1")
    models = [initial_model(rng, vocab_size=vocab_size, zipf_s=zipf_s, mean_length=mean_length,
                            max_length=max_length, context_shape=context_shape)]
    for _ in range(generations):
        tokens = _sample_tokens(rng, models[-1], sentences_per_generation)
        models.append(fit_bigram(tokens, models[0].vocab, max_length, temperature))
    return models


def distinct_n(texts: Sequence[str], n: int, limit: int | None = None) -> float:
    """Distinct n-grams / all n-grams over whitespace tokens (n-grams stay inside one text).

    `limit` counts only the first `limit` n-grams, so that corpora are compared at matched sample
    size (distinct-n falls with corpus size on its own). 0.0 for a corpus without any n-gram.
    """
    if n < 1:
        raise ValueError("n must be >= 1")
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        toks = text.split()
        grams = list(zip(*(toks[i:] for i in range(n)), strict=False))
        if limit is not None and total + len(grams) > limit:
            grams = grams[: limit - total]
        seen.update(grams)
        total += len(grams)
        if limit is not None and total >= limit:
            break
    return len(seen) / total if total else 0.0


#: `topic_texts`' vocabulary size and topics
TOPIC_VOCAB, TOPICS = 3000, 8
_TOPIC_ZIPF = 1.0 / np.arange(1, TOPIC_VOCAB + 1) ** 1.05
_TOPIC_ZIPF /= _TOPIC_ZIPF.sum()
_TOPIC_WORDS = np.array([f"w{i}" for i in range(2 * TOPIC_VOCAB)])
#: the other source's words: the same Zipf law and length law over another ranking, half of it unseen words
_TOPIC_OTHER = np.random.default_rng(42).permutation(2 * TOPIC_VOCAB)[:TOPIC_VOCAB]


def topic_texts(rng: np.random.Generator, n: int, *, other: float = 0.0) -> list[str]:
    """n documents of 8-29 words: a topic per document (its own frequent words) and a repeated keyword,
    so tokens within a document are dependent (what makes a token-level chi-square false-alarm); a share
    `other` of documents uses another vocabulary with the same Zipf and length laws (a same-length
    vocabulary shift: real plot summaries instead of real reviews).

    >>> docs = topic_texts(np.random.default_rng(0), 3)
    >>> len(docs), all(8 <= len(d.split()) < 30 for d in docs)
    (3, True)
    """
    lengths = rng.integers(8, 30, n)
    doc = np.repeat(np.arange(n), lengths)
    ids = (rng.choice(TOPIC_VOCAB, int(lengths.sum()), p=_TOPIC_ZIPF) * 7 + rng.integers(0, TOPICS, n)[doc] * 389
           ) % TOPIC_VOCAB
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    rep = rng.random(len(ids)) < 0.3
    ids[rep] = ids[starts[doc[rep]]]  # the document's first word comes back
    swap = (rng.random(n) < other)[doc]
    ids[swap] = _TOPIC_OTHER[ids[swap]]
    words = _TOPIC_WORDS[ids].tolist()
    return [" ".join(words[s:s + ln]) for s, ln in zip(starts.tolist(), lengths.tolist(), strict=True)]
