"""The benchmarks' shared workload: seeded event lines, reference columns and a store + pipeline for them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from careful_monitor.app import App, build, open_store
from careful_monitor.engine.profile import ReferenceProfile, build_profile

Echo = Callable[[str], None] | None


#: event time of the first event: inside the decoder's plausible range (limits.ts_min .. ts_max)
BASE_TS = 1_764_000_000


@contextmanager
def quiet_logs(level: int = logging.WARNING) -> Iterator[None]:
    """careful_monitor's loggers below `level` are silenced while the block runs (the pipeline logs one INFO
    line per closed window, which would drown a benchmark's table); the previous level is restored after."""
    logger = logging.getLogger("careful_monitor")
    before = logger.level
    if logger.getEffectiveLevel() < level:
        logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


def event_lines(rng: np.random.Generator, n: int, start: int, shift: float = 0.0, numeric: int = 15,
                models: Sequence[str] = ("bench",)) -> list[bytes]:
    """`n` seeded events (ids `e<start>`...); with several `models`, event i names models[(start + i) % len]."""
    import orjson

    x = np.round(rng.normal(shift, 1.0, (n, numeric)), 4).tolist()
    z = rng.normal(size=(n, 3))
    p = np.exp(z)
    p = np.round(p / p.sum(axis=1, keepdims=True), 4).tolist()
    dumps = orjson.dumps
    k = len(models)
    return [dumps({"model": models[(start + i) % k], "model_version": "1", "ts": float(BASE_TS + start + i),
                   "id": f"e{start + i}",
                   "inputs": {f"x{j}": v for j, v in enumerate(x[i])},
                   "outputs": {"probs": {"a": p[i][0], "b": p[i][1], "c": p[i][2]}}}) for i in range(n)]


def reference_columns(rng: np.random.Generator, n: int, sd: float = 1.0, numeric: int = 15) -> dict[str, list]:
    cols: dict[str, list] = {f"inputs.x{i}": rng.normal(0, sd, n).tolist() for i in range(numeric)}
    z = rng.normal(size=(n, 3))
    p = np.exp(z)
    # rounded as event_lines rounds: numpy's exp differs in the last bit between CPUs (AVX-512 or not), so
    # unrounded probs would make profiles, and the pinned window results built on them, machine-dependent
    p = np.round(p / p.sum(axis=1, keepdims=True), 6)
    cols["outputs.probs"] = [dict(zip("abc", r, strict=True)) for r in p.tolist()]
    return cols


#: spread of the k-th synthetic set of `bench_profiles` (cycled): narrow first, then faithful, ...
SYNTHETIC_SDS = (0.7, 1.0, 0.85, 1.15, 0.6)


def bench_features(numeric: int = 15) -> dict[str, str]:
    return {**{f"inputs.x{i}": "numeric" for i in range(numeric)}, "outputs.probs": "probs"}


def bench_profiles(numeric: int = 15, synthetic: int = 1, rows: int = 20_000) -> list[ReferenceProfile]:
    """The anchor `bench-real` (`rows` rows) and `synthetic` sets `bench-synth`, `bench-synth-2`, ... of half
    as many rows, each N(0, sd) with sd from SYNTHETIC_SDS (seed 1)."""
    rng = np.random.default_rng(1)
    features = bench_features(numeric)
    anchor = build_profile("bench-real", "real", reference_columns(rng, rows, numeric=numeric), kinds=features,
                           rng=rng)
    return [anchor] + [build_profile("bench-synth" if k == 0 else f"bench-synth-{k + 1}", "synthetic",
                                     reference_columns(rng, rows // 2, SYNTHETIC_SDS[k % len(SYNTHETIC_SDS)],
                                                       numeric=numeric),
                                     kinds=features, anchor=anchor, anchored_by="bench-real", rng=rng)
                       for k in range(synthetic)]


def model_names(n: int) -> list[str]:
    """The models of an n-model worker: `bench`, then `bench-2`, ... (all on the same datasets)."""
    return ["bench"] + [f"bench-{i + 1}" for i in range(1, n)]


def bench_app(workdir: Path, numeric: int = 15, overrides: dict | None = None, *, synthetic: int = 1,
              models: int = 1, profiles: Sequence[ReferenceProfile] | None = None) -> App:
    """A store in `workdir` holding an anchor and `synthetic` sets, and the App's pipeline on it (no HTTP).

    `models` configures that many models (`model_names`) on the same datasets and features; `profiles`
    (as `bench_profiles` returns them) saves building them again.
    """
    from careful_monitor.config import load_config

    profs = list(profiles) if profiles is not None else bench_profiles(numeric, synthetic)
    anchor = profs[0]
    features = bench_features(numeric)
    mix = {p.name: 1.0 / len(profs) for p in profs}
    model = {"anchor": anchor.name, "training_mix": mix, "features": features}
    cfg = load_config(None, environ={}, overrides={
        "models": {name: model for name in model_names(models)},
        "store": {"url": f"sqlite:///{workdir / 'bench.db'}"}, **(overrides or {})})
    store = open_store(cfg)
    for prof in profs:
        store.put_dataset(name=prof.name, role=prof.role, anchored_by=prof.anchored_by, card={"name": prof.name},
                          profile=prof.to_bytes(), n_rows=prof.n_rows, data_sha256="-", by="bench")
    return build(cfg, store=store, http=False, dead_letters=False)


#: the text-only workload: one text feature of ~20 words, windows of 500, anchor + 2 synthetic sets
TEXT_WINDOW = 500


def text_models(rng: np.random.Generator) -> list:
    """Bigram text models of the text workload: generation 0 (real and faithful) to 5 (collapsed)."""
    from careful_monitor.scenarios.text import recursive_text

    return recursive_text(rng, generations=5, sentences_per_generation=2000, mean_length=20.0)


def text_event_lines(rng: np.random.Generator, models: list, n: int, start: int = 0) -> list[bytes]:
    import orjson

    from careful_monitor.scenarios.text import sample_texts

    texts = sample_texts(rng, models[0], n)
    dumps = orjson.dumps
    return [dumps({"model": "bench-text", "model_version": "1", "ts": float(BASE_TS + start + i),
                   "id": f"t{start + i}", "inputs": {"t": t}}) for i, t in enumerate(texts)]


def text_bench_app(workdir: Path, models: list) -> App:
    """A store with a text anchor and two synthetic text sets (faithful, collapsed) and the pipeline on it."""
    from careful_monitor.config import load_config
    from careful_monitor.scenarios.text import sample_texts

    rng = np.random.default_rng(2)
    features = {"inputs.t": "text"}
    mix = {"text-real": 0.4, "text-faithful": 0.3, "text-collapsed": 0.3}
    cfg = load_config(None, environ={}, overrides={
        "models": {"bench-text": {"anchor": "text-real", "training_mix": mix, "features": features}},
        "window": {"size": TEXT_WINDOW, "min_size": TEXT_WINDOW // 2},
        "store": {"url": f"sqlite:///{workdir / 'bench-text.db'}"}})
    store = open_store(cfg)
    anchor = build_profile("text-real", "real", {"inputs.t": sample_texts(rng, models[0], 20_000)}, kinds=features,
                           rng=rng)
    sets = [anchor] + [build_profile(name, "synthetic", {"inputs.t": sample_texts(rng, models[gen], 10_000)},
                                     kinds=features, anchor=anchor, anchored_by="text-real", rng=rng)
                       for name, gen in (("text-faithful", 0), ("text-collapsed", 5))]
    for prof in sets:
        store.put_dataset(name=prof.name, role=prof.role, anchored_by=prof.anchored_by, card={"name": prof.name},
                          profile=prof.to_bytes(), n_rows=prof.n_rows, data_sha256="-", by="bench")
    return build(cfg, store=store, http=False, dead_letters=False)
