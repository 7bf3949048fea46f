"""Classifier outputs whose confidence inflates: softmax probabilities at a shrinking temperature.

Each output row is the softmax of logits divided by a temperature T: the logits are standard normal
noise plus `margin` on the row's class (drawn from `prior`, uniform by default). A model retrained on
its own, ever more confident, labels (pseudo-labels, low-temperature synthetic data) sharpens from one
generation to the next; here generation t uses ``T_t = start * decay^t``, floored at `floor`, so the
mean maximum probability rises and the mean entropy falls with t, while the law of the predicted
class (the argmax of each row, which a temperature cannot move) stays the same. This is the
"inflated confidence" signature the monitor reads from `outputs.probs`.

Parameters of `recursive_confidence`: `generations`, `n` (rows per generation), `labels`, `start`,
`decay` and `floor` (the temperature schedule), `margin`, `prior`. It returns ``generations + 1``
``(labels, probs)`` pairs, generation 0 (T = `start`) first, each as `sample_probs` returns it:
the label list and an (n, k) array whose rows sum to 1.

References: I. Shumailov et al., "AI models collapse when trained on recursively generated data",
Nature 631 (2024) (later generations produce ever more probable, lower-perplexity samples);
S. Alemohammad et al., "Self-consuming generative models go MAD", ICLR 2024 (sampling bias);
C. Guo, G. Pleiss, Y. Sun, K. Weinberger, "On calibration of modern neural networks", ICML 2017
(temperature as the knob of confidence).

>>> import numpy as np
>>> gens = recursive_confidence(np.random.default_rng(0), generations=5, n=500)
>>> labels, probs = gens[0]
>>> labels, probs.shape, bool(np.allclose(probs.sum(axis=1), 1.0))
(['cat', 'dog', 'bird'], (500, 3), True)
>>> mean_max_prob(gens[-1][1]) > mean_max_prob(gens[0][1])
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_LABELS = ("cat", "dog", "bird")


def temperature_schedule(generations: int, start: float = 1.0, decay: float = 0.8, floor: float = 0.05) -> np.ndarray:
    """Temperatures T_0..T_generations: ``max(start * decay^t, floor)``."""
    if not (start > 0 and 0 < decay <= 1 and floor > 0):
        raise ValueError("need start > 0, 0 < decay <= 1 and floor > 0")
    return np.maximum(start * decay ** np.arange(generations + 1, dtype=float), floor)


def sample_probs(rng: np.random.Generator, n: int, labels: Sequence[str], temperature: float, *,
                 margin: float = 1.5, prior: Sequence[float] | None = None) -> tuple[list[str], np.ndarray]:
    """n softmax rows over `labels` at `temperature`; returns (labels, probs of shape (n, k))."""
    labels = list(labels)
    k = len(labels)
    if k < 2 or not temperature > 0:
        raise ValueError("need at least two labels and temperature > 0")
    cls = rng.choice(k, size=n, p=None if prior is None else np.asarray(prior, dtype=float))
    logits = rng.normal(0.0, 1.0, (n, k))
    logits[np.arange(n), cls] += margin
    z = logits / temperature
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return labels, p / p.sum(axis=1, keepdims=True)


def mean_max_prob(probs: np.ndarray) -> float:
    """Mean over rows of the largest class probability (the model's average confidence)."""
    return float(np.asarray(probs).max(axis=1).mean())


def mean_entropy(probs: np.ndarray) -> float:
    """Mean over rows of the Shannon entropy in nats."""
    p = np.asarray(probs)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(-np.where(p > 0, p * np.log(p), 0.0).sum(axis=1).mean())


def recursive_confidence(rng: np.random.Generator, *, generations: int = 10, n: int = 1000,
                         labels: Sequence[str] = DEFAULT_LABELS, start: float = 1.0, decay: float = 0.8,
                         floor: float = 0.05, margin: float = 1.5,
                         prior: Sequence[float] | None = None) -> list[tuple[list[str], np.ndarray]]:
    """One batch of class probabilities per generation, the temperature shrinking as scheduled."""
    return [sample_probs(rng, n, labels, float(t), margin=margin, prior=prior)
            for t in temperature_schedule(generations, start, decay, floor)]
