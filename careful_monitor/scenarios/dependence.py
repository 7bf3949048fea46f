"""Dependence without correlation: a real law where x2 = +-x1, and the naive generator that loses it.

The real law: x1 ~ N(0, 1) and x2 = s x1 with a random sign s = +-1, so |x2| = |x1| (x1 and x2
are strongly dependent) while x2 ~ N(0, 1) and corr(x1, x2) = 0; the other features are
independent N(0, 1). A naive per-column generator (independent marginals fitted one column at a
time, the weakest baseline of tabular-synthesis benchmarks) reproduces every marginal and every
correlation exactly and loses the dependence: its x2 is an independent N(0, 1). No marginal test
and no correlation test can tell the two laws apart; a test on the joint law (a kernel MMD,
Gretton et al. 2012) can. This is the textbook example that zero correlation is not independence.

`sample_dependence(rng, n, naive_share=p)` draws n rows, each from the naive generator with
probability p and from the real law otherwise: p = 0 is the anchor (and a faithful synthetic set),
p = 1 the naive set, values in between a live stream drifting toward it.

`sample_categorical_dependence` is the same story between a categorical and a numeric feature: in the
real law x1 is high when c = "a" (N(+1, 1)), low when c = "b" (N(-1, 1)) and in between when c = "c"
(N(0, 1)), c drawn with probabilities 0.4, 0.4, 0.2; the naive generator draws c and x1 from those same
marginals but independently (x1 from the mixture), so every marginal is unchanged and only the joint law
of (c, x1) tells the two apart. x2.. are independent N(0, 1) (x2 gives the joint sample its second
numeric feature; the correlation test sees numeric features only, and nothing changes among them).

>>> import numpy as np
>>> cols = sample_dependence(np.random.default_rng(0), 20_000)
>>> sorted(cols), bool(np.allclose(np.abs(cols["x2"]), np.abs(cols["x1"])))
(['x1', 'x2', 'x3', 'x4'], True)
>>> abs(float(np.corrcoef(cols["x1"], cols["x2"])[0, 1])) < 0.03
True
>>> naive = sample_dependence(np.random.default_rng(1), 20_000, naive_share=1.0)
>>> abs(float(np.corrcoef(np.abs(naive["x1"]), np.abs(naive["x2"]))[0, 1])) < 0.03
True
>>> real = sample_categorical_dependence(np.random.default_rng(2), 20_000)
>>> naive = sample_categorical_dependence(np.random.default_rng(3), 20_000, naive_share=1.0)
>>> [round(float(c["x1"][c["c"] == "a"].mean()), 1) + 0.0 for c in (real, naive)]
[1.0, 0.0]
>>> [round(float(c["x1"].std()), 1) for c in (real, naive)]  # the same marginal law of x1 (a mixture)
[1.3, 1.3]
"""

from __future__ import annotations

import numpy as np


def sample_dependence(rng: np.random.Generator, n: int = 1000, *, naive_share: float = 0.0, extra: int = 2
                      ) -> dict[str, np.ndarray]:
    """n rows: x1, x2 (= +-x1, or independent in a naive row with probability `naive_share`), x3.. independent."""
    if not 0.0 <= naive_share <= 1.0:
        raise ValueError(f"naive_share must be in [0, 1], got {naive_share}")
    x1 = rng.normal(size=n)
    sign = rng.choice([-1.0, 1.0], size=n)
    naive = rng.random(n) < naive_share
    x2 = np.where(naive, rng.normal(size=n), sign * x1)
    cols = {"x1": x1, "x2": x2}
    for j in range(extra):
        cols[f"x{j + 3}"] = rng.normal(size=n)
    return cols


CATEGORIES = ("a", "b", "c")
CATEGORY_P = (0.4, 0.4, 0.2)
CATEGORY_MEAN = (1.0, -1.0, 0.0)  # x1's mean given c


def sample_categorical_dependence(rng: np.random.Generator, n: int = 1000, *, naive_share: float = 0.0,
                                  extra: int = 1) -> dict[str, np.ndarray]:
    """n rows: c, x1 (its mean set by c, or by an independent draw of c in a naive row), x2.. independent."""
    if not 0.0 <= naive_share <= 1.0:
        raise ValueError(f"naive_share must be in [0, 1], got {naive_share}")
    code = rng.choice(len(CATEGORIES), size=n, p=CATEGORY_P)
    other = rng.choice(len(CATEGORIES), size=n, p=CATEGORY_P)  # a naive row's x1 follows an independent c
    naive = rng.random(n) < naive_share
    x1 = np.asarray(CATEGORY_MEAN)[np.where(naive, other, code)] + rng.normal(size=n)
    cols: dict[str, np.ndarray] = {"c": np.asarray(CATEGORIES)[code], "x1": x1}
    for j in range(extra):
        cols[f"x{j + 2}"] = rng.normal(size=n)
    return cols
