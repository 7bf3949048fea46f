"""Evaluation isolation: are an evaluation set's rows also in the data that trains the models it evaluates?

Three kinds of duplicates, computed from what registration stored (never the rows themselves):

- **exact**: the same normalised inputs (every `inputs.*` feature with a value, sorted by name; strings
  lower-cased with whitespace collapsed, numbers rounded to `isolation.numeric_decimals`), hashed with
  blake2b to a signed 64-bit integer. A dataset without `inputs.*` columns hashes all its features.
- **near**: texts (the text features, by name, joined) whose MinHash estimate of the Jaccard similarity of
  their word `isolation.shingle`-shingles is at least `isolation.threshold`. Candidates come from an LSH
  join on band keys (datasketch's optimal bands for the threshold, weighted towards recall), never all
  pairs, and are verified on the stored signatures.
- **n-gram**: a text of at least `isolation.ngram` words sharing a word 13-gram with the other set (the
  GPT-3 contamination test). Only the n-grams whose hash is 0 modulo `isolation.ngram_sample` are
  stored, the same ones on both sides, so a shared passage of k n-grams is found with probability
  1 - (1 - 1/ngram_sample)^k (one word changed in 50: 24 shared 13-grams, 96 % at the default 8; the
  MinHash check finds those rows anyway). Rows found only this way count as near duplicates.

The contamination rate of a pair is (exact + near) / evaluation rows; a rate above `isolation.max_rate`
fails `datasets isolation` (exit 3). Rows are numbered from 1 in file order (blank JSONL lines and the
CSV header do not count); reports name example row numbers, never row contents.

Signatures are computed when a dataset is registered (`store_signatures`), streamed from the data file
in chunks of `CHUNK_ROWS` rows (JSONL and CSV line by line, a Parquet file or folder by record batch),
so memory stays bounded by one chunk whatever the file's size.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain, islice
from pathlib import Path
from typing import Any

import numpy as np

from careful_monitor.config import Config, IsolationConfig
from careful_monitor.errors import ConfigError, ManifestError, RegistryError
from careful_monitor.sources.datasets import DataFormatError, iter_batches
from careful_monitor.store import DatasetRecord, Store
from careful_monitor.store import isolation as db

log = logging.getLogger(__name__)

#: rows per stored chunk (one transaction, one blob per array)
CHUNK_ROWS = 10_000
#: rows hashed per numpy block inside a chunk (bounds the shingles x permutations matrix)
_BLOCK_ROWS = 1_000
#: rows read before deciding which features are text (when no model's config names their kinds)
_INFER_ROWS = 1_000
#: LSH band choice: datasketch's optimum for these weights of false positives and false negatives
_FP_WEIGHT, _FN_WEIGHT = 0.05, 0.95
#: bump when the way rows are normalised or hashed changes: stored signatures must then be recomputed
SIGNATURE_VERSION = 1

_U64 = np.uint64
_MUL = _U64(0x9E3779B97F4A7C15)  # polynomial base of shingle and n-gram hashes (odd, golden ratio)
_WORD_CACHE_MAX = 200_000


# -- reading rows ---------------------------------------------------------------------------------


def iter_rows(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a dataset file or Parquet folder as flat maps `{"inputs.x": v, "outputs.y": v}`, streamed.

    Read exactly as registration reads it (`sources.datasets.iter_batches`: the same formats, columns
    and errors), one batch of columns at a time; a feature missing from a row is None.
    """
    for columns, n in iter_batches(path, CHUNK_ROWS):
        names = list(columns)
        if not names:
            yield from ({} for _ in range(n))
            continue
        for values in zip(*(columns[k] for k in names), strict=True):
            yield dict(zip(names, values, strict=True))


# -- normalising and hashing --------------------------------------------------------------------------


def _norm(v: Any, decimals: int) -> str | None:
    """A value as it is compared: None for missing; numbers rounded; strings lower-cased, spaces collapsed.

    >>> _norm("  Refund   PLEASE ", 6), _norm(0.1 + 0.2, 6), _norm(3, 6), _norm(True, 6)
    ('s:refund please', 'n:0.3', 'n:3.0', 'b:1')
    """
    if v is None:
        return None
    if isinstance(v, bool):
        return f"b:{int(v)}"
    if isinstance(v, int | float):
        f = float(v)
        if math.isnan(f):
            return "n:nan"
        return f"n:{round(f, decimals) + 0.0!r}"  # + 0.0: -0.0 and 0.0 are one value
    if isinstance(v, str):
        return "s:" + " ".join(v.lower().split())
    if isinstance(v, dict):
        return "m:" + ",".join(f"{k}={_norm(x, decimals)}" for k, x in sorted(v.items()))
    return "o:" + str(v)


def row_hash(row: Mapping[str, Any], features: Sequence[str], decimals: int) -> int:
    """blake2b-8 of the normalised values of `features` (missing and null are alike) as a signed int64.

    0 means "nothing to compare" (no feature has a value) and never matches.

    >>> row_hash({"inputs.a": 1, "inputs.t": "Hi  there"}, ["inputs.a", "inputs.t"], 6) == \\
    ...     row_hash({"inputs.a": 1.0000001, "inputs.t": "hi there"}, ["inputs.a", "inputs.t"], 6)
    True
    """
    parts = []
    for name in features:
        n = _norm(row.get(name), decimals)
        if n is not None:
            parts.append(f"{name}\x1f{n}")
    if not parts:
        return 0
    h = int.from_bytes(hashlib.blake2b("\x1e".join(parts).encode(), digest_size=8).digest(), "little", signed=True)
    return h or 1


def _mix64(h: np.ndarray) -> np.ndarray:
    """The MurmurHash3 64-bit finaliser (a bijection that spreads every input bit over the output)."""
    h = h ^ (h >> _U64(33))
    h = h * _U64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> _U64(33))
    h = h * _U64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> _U64(33))


class _Words:
    """Words to stable 64-bit hashes (blake2b, independent of PYTHONHASHSEED), cached."""

    def __init__(self) -> None:
        self._cache: dict[str, int] = {}

    def hashes(self, words: list[str]) -> np.ndarray:
        cache = self._cache
        if len(cache) > _WORD_CACHE_MAX:
            cache.clear()
        out = np.empty(len(words), dtype=_U64)
        for i, w in enumerate(words):
            h = cache.get(w)
            if h is None:
                h = cache[w] = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
            out[i] = h
        return out


def _windows(w: np.ndarray, starts: np.ndarray, lengths: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every run of `n` consecutive words inside each row, and the row of each.

    Rows shorter than `n` give one run of all their words (so a short text still has a shingle).
    """
    counts = np.where(lengths > 0, np.maximum(lengths - n + 1, 1), 0)
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=_U64), np.empty(0, dtype=np.int64)
    row_of = np.repeat(np.arange(len(lengths), dtype=np.int64), counts)
    at = np.repeat(starts, counts) + (np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts))
    end = (starts + lengths)[row_of]
    h = np.zeros(len(at), dtype=_U64)
    for j in range(n):
        idx = at + j
        inside = idx < end
        h = np.where(inside, h * _MUL + w[np.minimum(idx, len(w) - 1)], h)
    return _mix64(h), row_of


def _ngrams_only(w: np.ndarray, starts: np.ndarray, lengths: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Like `_windows`, but only rows of at least `n` words have n-grams."""
    return _windows(w, starts, np.where(lengths >= n, lengths, 0), n)


@dataclass(frozen=True)
class Hasher:
    """Rows to (row hash, word count, MinHash signature, sampled n-grams), vectorised per block of rows.

    The signatures are datasketch's affine32 MinHash (`datasketch.MinHash(num_perm, seed, scheme="affine32")`)
    over 32-bit shingle hashes, computed for many rows at once (a test checks both agree).
    """

    num_perm: int = 64
    seed: int = 1
    shingle: int = 3
    decimals: int = 6
    ngram: int = 13
    ngram_sample: int = 8
    _words: _Words = field(default_factory=_Words, compare=False, repr=False)

    @classmethod
    def from_config(cls, c: IsolationConfig) -> Hasher:
        return cls(num_perm=c.num_perm, shingle=c.shingle, decimals=c.numeric_decimals, ngram=c.ngram,
                   ngram_sample=c.ngram_sample)

    @property
    def params(self) -> dict[str, Any]:
        return {"version": SIGNATURE_VERSION, "scheme": "affine32", "num_perm": self.num_perm, "seed": self.seed,
                "shingle": self.shingle, "numeric_decimals": self.decimals, "ngram": self.ngram,
                "ngram_sample": self.ngram_sample}

    def permutations(self) -> tuple[np.ndarray, np.ndarray]:
        from datasketch import MinHash

        a, b = MinHash(num_perm=self.num_perm, seed=self.seed, scheme="affine32").permutations
        return np.asarray(a, dtype=np.uint32), np.asarray(b, dtype=np.uint32)

    def minhash(self, shingle_hashes: np.ndarray, row_of: np.ndarray, n_rows: int,
                perms: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Signatures (n_rows x num_perm uint32; all 0xFFFFFFFF for a row without shingles)."""
        from datasketch.minhash import _fmix

        a, b = perms
        sig = np.full((n_rows, self.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
        if len(shingle_hashes) == 0:
            return sig
        hv = _fmix(shingle_hashes.astype(np.uint32), 32)
        phv = hv[:, None] * a[None, :] + b[None, :]
        bounds = np.flatnonzero(np.r_[True, row_of[1:] != row_of[:-1]])
        sig[row_of[bounds]] = np.minimum.reduceat(phv, bounds, axis=0)
        return sig

    def block(self, texts: list[str], perms: tuple[np.ndarray, np.ndarray]
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Word counts, signatures, n-gram rows and n-gram hashes of normalised texts ('' = no text)."""
        split = [t.split() for t in texts]
        lengths = np.fromiter((len(s) for s in split), dtype=np.int64, count=len(split))
        starts = np.r_[0, np.cumsum(lengths)[:-1]].astype(np.int64) if len(split) else np.empty(0, np.int64)
        w = self._words.hashes([x for s in split for x in s])
        sh, sh_row = _windows(w, starts, lengths, self.shingle)
        sig = self.minhash((sh >> _U64(32)), sh_row, len(texts), perms)
        gh, g_row = _ngrams_only(w, starts, lengths, self.ngram)
        keep = (gh % _U64(self.ngram_sample)) == 0 if self.ngram_sample > 1 else np.ones(len(gh), dtype=bool)
        return lengths.astype(np.uint32), sig, g_row[keep].astype(np.uint32), gh[keep].view(np.int64)


# -- registration: signatures streamed to the store ------------------------------------------------------


def _is_texty(values: Iterable[Any]) -> bool:
    return any(isinstance(v, str) and len(v.split()) > 1 for v in values)


def choose_features(sample: Sequence[Mapping[str, Any]], kinds: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(features hashed for exact rows, text features), each sorted by name.

    Exact rows use every `inputs.*` feature (all features when the set has no inputs). Text features:
    the config's kind `text` where a model names the dataset, else inferred from the first rows
    (string values with more than one word).

    >>> choose_features([{"inputs.t": "a b", "inputs.c": "x", "outputs.y": 1}], {})
    (['inputs.c', 'inputs.t'], ['inputs.t'])
    """
    names = sorted({k for row in sample for k in row})
    features = [n for n in names if n.startswith("inputs.")] or names
    text = [f for f in features
            if kinds.get(f) == "text" or (f not in kinds and _is_texty(row.get(f) for row in sample))]
    return features, text


def _text_of(row: Mapping[str, Any], text: Sequence[str]) -> str:
    parts = [row.get(f) for f in text]
    return " ".join(" ".join(str(p).lower().split()) for p in parts if p is not None and p != "")


def store_signatures(cfg: Config, store: Store, dataset: str, data_path: Path, *, kinds: Mapping[str, str],
                     data_sha256: str) -> db.SignatureSet:
    """Compute and store the dataset's row hashes, MinHash signatures and sampled n-grams, chunk by chunk."""
    hasher = Hasher.from_config(cfg.isolation)
    perms = hasher.permutations()
    rows = iter_rows(data_path)
    sample = list(islice(rows, _INFER_ROWS))
    features, text = choose_features(sample, kinds)
    db.begin_set(store, dataset)
    n_rows = n_chunks = 0
    stream = chain(sample, rows)
    while True:
        chunk = list(islice(stream, CHUNK_ROWS))
        if not chunk:
            break
        hashes = np.fromiter((row_hash(r, features, hasher.decimals) for r in chunk), dtype=np.int64,
                             count=len(chunk))
        words, sigs, g_rows, g_hashes = [], [], [], []
        for lo in range(0, len(chunk), _BLOCK_ROWS):
            part = chunk[lo:lo + _BLOCK_ROWS]
            wc, sig, gr, gh = hasher.block([_text_of(r, text) for r in part] if text else [""] * len(part), perms)
            words.append(wc)
            sigs.append(sig)
            g_rows.append(gr + np.uint32(lo))
            g_hashes.append(gh)
        db.put_chunk(store, dataset, db.SignatureChunk(
            chunk=n_chunks, first_row=n_rows, n_rows=len(chunk), row_hashes=hashes.astype("<i8").tobytes(),
            words=np.concatenate(words).astype("<u4").tobytes(),
            signatures=np.concatenate(sigs).astype("<u4").tobytes(),
            gram_rows=np.concatenate(g_rows).astype("<u4").tobytes(),
            gram_hashes=np.concatenate(g_hashes).astype("<i8").tobytes()))
        n_rows += len(chunk)
        n_chunks += 1
        del chunk
    params = {**hasher.params, "features": features, "text_features": text}
    db.finish_set(store, dataset, n_rows=n_rows, n_chunks=n_chunks, data_sha256=data_sha256, params=params)
    got = db.get_set(store, dataset)
    assert got is not None
    return got


# -- checking pairs ---------------------------------------------------------------------------------------


@dataclass
class _Chunk:
    first_row: int
    hashes: np.ndarray
    words: np.ndarray
    sigs: np.ndarray
    gram_rows: np.ndarray
    gram_hashes: np.ndarray


def _decode(c: db.SignatureChunk, num_perm: int) -> _Chunk:
    return _Chunk(c.first_row, np.frombuffer(c.row_hashes, dtype="<i8"), np.frombuffer(c.words, dtype="<u4"),
                  np.frombuffer(c.signatures, dtype="<u4").reshape(c.n_rows, num_perm),
                  np.frombuffer(c.gram_rows, dtype="<u4"), np.frombuffer(c.gram_hashes, dtype="<i8"))


def bands_for(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) for an LSH join at `threshold`, favouring recall (candidates are verified).

    >>> bands_for(0.8, 64)
    (10, 6)
    """
    from datasketch.lsh import _optimal_param

    b, r = _optimal_param(threshold, num_perm, _FP_WEIGHT, _FN_WEIGHT)
    return int(b), int(r)


def _band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per (row, band): rows x bands; equal keys = equal signature values in that band."""
    n = sigs.shape[0]
    s = sigs[:, :bands * rows].reshape(n, bands, rows).astype(_U64)
    h = np.broadcast_to(np.arange(1, bands + 1, dtype=_U64), (n, bands)).copy()
    for j in range(rows):
        h = h * _MUL + s[:, :, j]
    return _mix64(h)


class _Evaluation:
    """An evaluation set's stored arrays, loaded once, with its band keys sorted for the join."""

    def __init__(self, store: Store, sset: db.SignatureSet, bands: int, rows: int) -> None:
        p = int(sset.params["num_perm"])
        chunks = [_decode(c, p) for c in db.iter_chunks(store, sset.dataset)]
        self.n = sset.n_rows
        self.hashes = np.concatenate([c.hashes for c in chunks]) if chunks else np.empty(0, np.int64)
        self.words = np.concatenate([c.words for c in chunks]) if chunks else np.empty(0, np.uint32)
        self.sigs = np.concatenate([c.sigs for c in chunks]) if chunks else np.empty((0, p), np.uint32)
        self.gram_rows = (np.concatenate([c.gram_rows.astype(np.int64) + c.first_row for c in chunks])
                          if chunks else np.empty(0, np.int64))
        self.gram_hashes = np.concatenate([c.gram_hashes for c in chunks]) if chunks else np.empty(0, np.int64)
        self.text_rows = np.flatnonzero(self.words > 0)
        keys = _band_keys(self.sigs[self.text_rows], bands, rows).ravel()
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        self.key_rows = self.text_rows[order // bands]


@dataclass(frozen=True)
class PairResult:
    evaluation: str
    dataset: str
    rows_checked: int
    exact: int
    near: int
    near_minhash: int
    near_ngram: int
    rate: float
    examples: dict[str, list[int]]
    candidates: int

    def doc(self, max_rate: float) -> dict[str, Any]:
        return {"evaluation": self.evaluation, "dataset": self.dataset, "rows_checked": self.rows_checked,
                "exact": self.exact, "near": self.near, "near_minhash": self.near_minhash,
                "near_ngram": self.near_ngram, "rate": self.rate, "examples": self.examples,
                "max_rate": max_rate, "failed": self.rate > max_rate}


def check_pair(store: Store, ev: _Evaluation, name: str, dset: db.SignatureSet, *, threshold: float,
               bands: int, rows: int, examples: int, evaluation: str) -> PairResult:
    """Exact, near and n-gram duplicates of the evaluation rows in `dset`, streaming its chunks."""
    p = int(dset.params["num_perm"])
    exact = np.zeros(ev.n, dtype=bool)
    near = np.zeros(ev.n, dtype=bool)
    gram = np.zeros(ev.n, dtype=bool)
    ev_hashes_nz = ev.hashes != 0
    candidates = 0
    for raw in db.iter_chunks(store, name):
        c = _decode(raw, p)
        exact |= ev_hashes_nz & np.isin(ev.hashes, c.hashes)
        if len(ev.gram_hashes) and len(c.gram_hashes):
            gram[ev.gram_rows[np.isin(ev.gram_hashes, c.gram_hashes)]] = True
        text = np.flatnonzero(c.words > 0)
        if len(text) == 0 or len(ev.keys) == 0:
            continue
        keys = _band_keys(c.sigs[text], bands, rows).ravel()
        lo = np.searchsorted(ev.keys, keys, side="left")
        hi = np.searchsorted(ev.keys, keys, side="right")
        hit = np.flatnonzero(hi > lo)
        if len(hit) == 0:
            continue
        counts = hi[hit] - lo[hit]
        starts = np.repeat(lo[hit], counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts,
                                                                                    counts))
        e_rows = ev.key_rows[starts]
        d_rows = text[np.repeat(hit // bands, counts)]
        open_ = ~(near[e_rows] | exact[e_rows])
        width = np.int64(len(c.words))
        pair_keys = np.unique(e_rows[open_] * width + d_rows[open_])
        candidates += len(pair_keys)
        if len(pair_keys) == 0:
            continue
        pe, pd = pair_keys // width, pair_keys % width
        sim = (ev.sigs[pe] == c.sigs[pd]).mean(axis=1)
        near[pe[sim >= threshold]] = True
    near_mh = near & ~exact
    near_ng = gram & ~exact & ~near
    n_exact, n_mh, n_ng = int(exact.sum()), int(near_mh.sum()), int(near_ng.sum())
    rate = (n_exact + n_mh + n_ng) / ev.n if ev.n else 0.0
    ex = {"exact": (np.flatnonzero(exact)[:examples] + 1).tolist(),
          "near": (np.flatnonzero(near_mh | near_ng)[:examples] + 1).tolist()}
    return PairResult(evaluation, name, ev.n, n_exact, n_mh + n_ng, n_mh, n_ng, rate, ex, candidates)


# -- which pairs --------------------------------------------------------------------------------------------


def _excluded_from(rec: DatasetRecord) -> list[str]:
    iso = rec.card.get("evaluation_isolation") or {}
    names = iso.get("excluded_from") if isinstance(iso, dict) else None
    return [str(n) for n in names or ()]


def plan(cfg: Config, store: Store, *, model: str | None = None, evaluations: Sequence[str] | None = None,
         strict: bool = True) -> tuple[dict[str, list[str]], list[str]]:
    """{evaluation set: the datasets to compare it with}, and notes on pairs that cannot be checked.

    An evaluation set is compared with every dataset that trains a model it evaluates (the config's
    `training_mix` and every recorded lineage version of the model) and with the datasets its card
    lists in `evaluation_isolation.excluded_from`, or whose cards list it there. `strict` (the
    `datasets isolation` command) makes a config naming an unregistered set an error (exit 2);
    registration only notes it.
    """
    if model is not None and model not in cfg.models:
        known = ", ".join(sorted(cfg.models)) or "none"
        raise ConfigError("--model", f"model '{model}' is not in the config's models (known: {known})",
                          "name a model of the config's `models`")
    datasets = {r.name: r for r in store.list_datasets()}
    notes: list[str] = []
    pairs: dict[str, dict[str, None]] = {}

    def missing(key: str, name: str) -> None:
        problem = f"{key} names '{name}', which is not registered"
        if strict:
            raise ConfigError(key, problem, "register it (careful-monitor datasets register <its manifest>) "
                                            f"or remove it from {key}")
        notes.append(problem)

    for m, mc in cfg.models.items():
        if model is not None and m != model:
            continue
        trains = list(dict.fromkeys([*mc.training_mix, *(r.dataset for r in store.lineage(m))]))
        for e in mc.evaluation:
            if evaluations is not None and e not in evaluations:
                continue
            if e not in datasets:
                missing(f"models.{m}.evaluation", e)
                continue
            pairs.setdefault(e, {})
            for d in trains:
                if d not in datasets:
                    missing(f"models.{m}.training_mix", d)
                elif d != e:
                    pairs.setdefault(e, {})[d] = None
    for name, rec in datasets.items():
        in_scope = name in pairs or (model is None and rec.role == "evaluation")
        if evaluations is not None:
            in_scope = name in evaluations
        if not in_scope:
            continue
        pairs.setdefault(name, {})
        for d in _excluded_from(rec):
            if d not in datasets:
                notes.append(f"{name}: evaluation_isolation.excluded_from names '{d}', which is not registered")
            elif d != name:
                pairs[name][d] = None
        for other, orec in datasets.items():
            if other != name and name in _excluded_from(orec):
                pairs[name][other] = None
    return {e: list(ds) for e, ds in sorted(pairs.items())}, notes


# -- the check ----------------------------------------------------------------------------------------------


@dataclass
class Report:
    results: list[PairResult]
    notes: list[str]
    max_rate: float

    @property
    def failed(self) -> list[PairResult]:
        return [r for r in self.results if r.rate > self.max_rate]

    def docs(self) -> list[dict[str, Any]]:
        return [r.doc(self.max_rate) for r in self.results]


def _signatures(store: Store, name: str, hasher: Hasher) -> db.SignatureSet:
    sset = db.get_set(store, name)
    if sset is None:
        raise RegistryError(f"dataset '{name}' has no isolation signatures (registered before they existed, or "
                            f"its registration was interrupted): re-register it "
                            f"(careful-monitor datasets register <its manifest>)")
    stored = {k: v for k, v in sset.params.items() if k not in ("features", "text_features")}
    if stored != hasher.params:
        diff = ", ".join(f"{k} {stored.get(k)} -> {v}" for k, v in hasher.params.items() if stored.get(k) != v)
        raise RegistryError(f"dataset '{name}': its isolation signatures were computed with other settings "
                            f"({diff}): re-register it (careful-monitor datasets register <its manifest>)")
    return sset


def check(cfg: Config, store: Store, *, model: str | None = None, evaluations: Sequence[str] | None = None,
          strict: bool = True) -> Report:
    """Check every planned pair from the stored signatures, store the results and return them."""
    c = cfg.isolation
    hasher = Hasher.from_config(c)
    bands, rows = bands_for(c.threshold, c.num_perm)
    pairs, notes = plan(cfg, store, model=model, evaluations=evaluations, strict=strict)
    results: list[PairResult] = []
    replace_all = model is None and evaluations is None
    for evaluation, partners in pairs.items():
        if not partners:
            if replace_all:
                db.put_results(store, evaluation, [], replace_all=True)
            continue
        ev = _Evaluation(store, _signatures(store, evaluation, hasher), bands, rows)
        done = []
        for name in partners:
            r = check_pair(store, ev, name, _signatures(store, name, hasher), threshold=c.threshold, bands=bands,
                           rows=rows, examples=c.examples, evaluation=evaluation)
            results.append(r)
            done.append(r)
        now = datetime.now(UTC)
        db.put_results(store, evaluation, [
            db.IsolationResult(r.evaluation, r.dataset, r.rows_checked, r.exact, r.near, r.rate, r.examples,
                               {"near_minhash": r.near_minhash, "near_ngram": r.near_ngram,
                                "candidates": r.candidates, "max_rate": c.max_rate,
                                "threshold": c.threshold}, now)
            for r in done], replace_all=replace_all)
        del ev
    return Report(results, notes, c.max_rate)


def at_registration(cfg: Config, store: Store, name: str, data_path: Path, *, role: str,
                    kinds: Mapping[str, str], data_sha256: str, manifest: str) -> list[str]:
    """Store the dataset's signatures; for an evaluation set also check it. Returns warnings (never refuses)."""
    if not cfg.isolation.at_registration:
        return []
    try:
        store_signatures(cfg, store, name, data_path, kinds=kinds, data_sha256=data_sha256)
    except (DataFormatError, OSError, ValueError) as exc:
        raise ManifestError(manifest, "data", f"cannot read {data_path.name}: {exc}") from None
    if role != "evaluation":
        return []
    try:
        report = check(cfg, store, evaluations=[name], strict=False)
    except RegistryError as exc:
        return [f"isolation of {name} not checked: {exc}"]
    warnings = [f"isolation of {name}: {n}" for n in report.notes]
    for r in report.failed:
        warnings.append(f"isolation of {name}: {r.rate:.2%} of its rows are in {r.dataset} ({r.exact} exact, "
                        f"{r.near} near duplicates; above isolation.max_rate {report.max_rate:.2%}); "
                        f"see `careful-monitor datasets isolation`")
    return warnings


def isolation_doc(store: Store) -> list[dict[str, Any]]:
    """The JSON of `/api/isolation`: every stored pair's last result, by evaluation set then dataset."""
    return [{"evaluation": r.evaluation, "dataset": r.dataset, "rows_checked": r.rows_checked, "exact": r.exact,
             "near": r.near, "near_minhash": r.details.get("near_minhash"), "near_ngram": r.details.get("near_ngram"),
             "rate": r.rate, "examples": r.examples, "max_rate": r.details.get("max_rate"),
             "failed": r.rate > float(r.details.get("max_rate", 1.0)),
             "computed_at": r.computed_at.strftime("%Y-%m-%dT%H:%M:%SZ")}
            for r in db.list_results(store)]


def rates(store: Store) -> list[tuple[str, str, float]]:
    """(evaluation, dataset, contamination rate) of every stored pair, for `Metrics.set_isolation`."""
    return [(r.evaluation, r.dataset, r.rate) for r in db.list_results(store)]
