"""Seeded scenarios: the demo and the collapse experiments of the model-collapse literature.

Every generator takes an explicit ``numpy.random.Generator`` (never global randomness or the clock),
so a seed gives the same output everywhere. `streams.to_events` / `streams.to_rows` turn their
columns into monitor events or dataset rows. `SCENARIOS` maps a name to (generator, one-line
description) for a CLI listing; the demo scenario lives in `careful_monitor.demo.scenario`.

>>> sorted(SCENARIOS)
['categorical', 'categorical_dependence', 'confidence', 'dependence', 'gaussian', 'mixture', 'text']
"""

from __future__ import annotations

from collections.abc import Callable

from careful_monitor.scenarios.categorical import (
                                                   CategoricalRun,
                                                   category_labels,
                                                   recursive_categorical,
                                                   sample_categories,
                                                   zipf_probs,
)
from careful_monitor.scenarios.confidence import (
                                                   mean_entropy,
                                                   mean_max_prob,
                                                   recursive_confidence,
                                                   sample_probs,
                                                   temperature_schedule,
)
from careful_monitor.scenarios.dependence import sample_categorical_dependence, sample_dependence
from careful_monitor.scenarios.gaussian import (
                                                   GaussianGeneration,
                                                   first_generation_below,
                                                   recursive_gaussian,
                                                   sample_generation,
)
from careful_monitor.scenarios.mixture import (
                                                   MixtureGeneration,
                                                   fit_mixture_em,
                                                   mixture_quantile,
                                                   recursive_mixture,
                                                   sample_mixture,
                                                   tail_mass,
)
from careful_monitor.scenarios.streams import to_events, to_rows
from careful_monitor.scenarios.text import BigramModel, distinct_n, recursive_text, sample_texts, topic_texts

SCENARIOS: dict[str, tuple[Callable, str]] = {
    "gaussian": (recursive_gaussian, "recursive Gaussian fit: regime='replace' collapses (Shumailov et al. 2024), "
                                     "regime='accumulate' stays bounded (Gerstgrasser et al. 2024)"),
    "mixture": (recursive_mixture, "recursive 1-D Gaussian-mixture EM fit: the mass beyond the 1%/99% quantiles "
                                   "vanishes"),
    "categorical": (recursive_categorical, "recursive resampling of a Zipf categorical law: rare categories die out "
                                           "for good"),
    "text": (recursive_text, "bigram language model retrained on its own sentences: distinct n-grams shrink"),
    "confidence": (recursive_confidence, "classifier softmax at a shrinking temperature: confidence inflates"),
    "dependence": (sample_dependence, "x2 = +-x1 with a random sign (zero correlation) against a naive generator with "
                                      "independent marginals"),
    "categorical_dependence": (sample_categorical_dependence, "x1's mean set by a categorical c against a naive "
                                                              "generator drawing c independently of x1"),
}

__all__ = [
                                                   "SCENARIOS",
                                                   "BigramModel",
                                                   "CategoricalRun",
                                                   "GaussianGeneration",
                                                   "MixtureGeneration",
                                                   "category_labels",
                                                   "distinct_n",
                                                   "first_generation_below",
                                                   "fit_mixture_em",
                                                   "mean_entropy",
                                                   "mean_max_prob",
                                                   "mixture_quantile",
                                                   "recursive_categorical",
                                                   "recursive_confidence",
                                                   "recursive_gaussian",
                                                   "recursive_mixture",
                                                   "recursive_text",
                                                   "sample_categorical_dependence",
                                                   "sample_categories",
                                                   "sample_dependence",
                                                   "sample_generation",
                                                   "sample_mixture",
                                                   "sample_probs",
                                                   "sample_texts",
                                                   "tail_mass",
                                                   "temperature_schedule",
                                                   "to_events",
                                                   "to_rows",
                                                   "topic_texts",
                                                   "zipf_probs",
]
