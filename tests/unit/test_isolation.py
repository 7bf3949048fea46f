"""Evaluation isolation (issue 10, item 3): exact, near-duplicate and n-gram contamination between datasets."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from datasketch import MinHash
from prometheus_client import CollectorRegistry

from careful_monitor import isolation
from careful_monitor.config import Config, IsolationConfig, ModelConfig
from careful_monitor.errors import CheckFailedError, ConfigError, RegistryError
from careful_monitor.registry import register
from careful_monitor.sinks.prometheus import Metrics
from careful_monitor.sources.datasets import read_dataset
from careful_monitor.store import Store

VOCAB = [f"w{i}" for i in range(3000)]
# Zipf-like word frequencies, so texts share common words as real ones do (but rarely a 3-word run)
P = 1.0 / np.arange(1, len(VOCAB) + 1) ** 0.8
P /= P.sum()


def texts(rng: np.random.Generator, n: int) -> list[str]:
    """Texts of 40-60 words."""
    return [" ".join(rng.choice(VOCAB, size=int(rng.integers(40, 61)), p=P)) for _ in range(n)]


def one_word_changed(rng: np.random.Generator, text: str) -> str:
    words = text.split()
    i = int(rng.integers(len(words)))
    words[i] = "changed" + str(int(rng.integers(1_000_000)))
    return " ".join(words)


def write_set(folder: Path, name: str, role: str, rows: list[dict[str, Any]], **card: Any) -> Path:
    data = folder / f"{name}.jsonl"
    data.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    manifest = folder / f"{name}.yaml"
    manifest.write_text(yaml.safe_dump({"name": name, "role": role, "data": data.name, **card}))
    return manifest


def text_rows(ts: list[str], rng: np.random.Generator) -> list[dict[str, Any]]:
    return [{"inputs": {"text": t, "amount": round(float(rng.gamma(2, 10)), 2)}, "outputs": {"label": "a"}}
            for t in ts]


def config(tmp_path: Path, **isolation_settings: Any) -> Config:
    return Config(models={"m": ModelConfig(anchor="train", training_mix={"train": 1.0}, evaluation=["eval"])},
                  store={"url": f"sqlite:///{tmp_path / 'careful.db'}"},
                  isolation=IsolationConfig(**isolation_settings), base_dir=tmp_path)


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Config, Path, dict[str, int]]:
    """A training set of 6,000 rows; an evaluation set of 2,000: 5 % one-word variants, 2 % exact copies."""
    d = tmp_path_factory.mktemp("isolation")
    rng = np.random.default_rng(7)
    train = texts(rng, 6000)
    n_eval, n_near, n_exact = 2000, 100, 40
    picks = rng.choice(len(train), size=n_near + n_exact, replace=False)
    planted_rows = [one_word_changed(rng, train[i]) for i in picks[:n_near]] + [train[i] for i in picks[n_near:]]
    fresh = texts(rng, n_eval - len(planted_rows))
    ev = planted_rows + fresh
    order = rng.permutation(n_eval)
    ev = [ev[i] for i in order]
    train_rows = text_rows(train, rng)
    # exact copies carry the training row's amount too (the same example, byte for byte)
    by_text = {r["inputs"]["text"]: r for r in train_rows}
    eval_rows = [by_text[t] if t in by_text else text_rows([t], rng)[0] for t in ev]
    cfg = config(d)
    write_set(d, "train", "real", train_rows)
    write_set(d, "clean", "real", text_rows(texts(rng, 6000), rng))
    write_set(d, "eval", "evaluation", eval_rows, evaluation_isolation={"excluded_from": ["clean"]})
    with Store(cfg.store_url) as store:
        for name in ("train", "clean", "eval"):
            register(cfg, store, d / f"{name}.yaml", by="test")
    return cfg, d, {"rows": n_eval, "near": n_near, "exact": n_exact}


def test_signatures_are_datasketchs_minhash() -> None:
    """The vectorised signatures equal datasketch's MinHash.update_batch over the same shingle hashes."""
    h = isolation.Hasher()
    perms = h.permutations()
    rng = np.random.default_rng(1)
    ts = [*texts(rng, 20), "two words", "", "one"]
    words, sig, _, _ = h.block(ts, perms)
    split = [t.split() for t in ts]
    lengths = np.array([len(s) for s in split])
    w = h._words.hashes([x for s in split for x in s])
    sh, row = isolation._windows(w, np.r_[0, np.cumsum(lengths)[:-1]], lengths, 3)
    for r, t in enumerate(ts):
        m = MinHash(num_perm=64, seed=1, scheme="affine32", hashfunc=lambda x: x)
        values = [int(v >> np.uint64(32)) for v in sh[row == r]]
        if values:
            m.update_batch(values)
        assert np.array_equal(m.hashvalues, sig[r]), t
        assert words[r] == len(t.split())
    # the estimate is datasketch's Jaccard estimate too
    a, b = ts[0], one_word_changed(rng, ts[0])
    _, s2, _, _ = h.block([a, b], perms)
    ma = MinHash(num_perm=64, seed=1, scheme="affine32", hashvalues=s2[0])
    mb = MinHash(num_perm=64, seed=1, scheme="affine32", hashvalues=s2[1])
    assert ma.jaccard(mb) == pytest.approx(float((s2[0] == s2[1]).mean()))


def test_planted_near_and_exact_duplicates_found_within_one_point(planted) -> None:
    """5 % one-word variants + 2 % exact copies are found within ±1 point; a clean pair stays under 0.1 %."""
    cfg, _, truth = planted
    with Store(cfg.store_url) as store:
        report = isolation.check(cfg, store)
        docs = {(d["evaluation"], d["dataset"]): d for d in isolation.isolation_doc(store)}
    got = {r.dataset: r for r in report.results}
    assert set(got) == {"train", "clean"}  # the model's training mix, and the card's excluded_from
    r = got["train"]
    n = truth["rows"]
    assert r.rows_checked == n
    assert abs(r.exact / n - truth["exact"] / n) <= 0.01, r
    assert abs(r.near / n - truth["near"] / n) <= 0.01, r
    assert abs(r.rate - (truth["exact"] + truth["near"]) / n) <= 0.01, r
    assert r.near_minhash > 0 and r.candidates < 50 * n  # the LSH join: candidates, never all 12 M pairs
    assert got["clean"].rate < 0.001, got["clean"]
    assert [p.dataset for p in report.failed] == ["train"]
    assert docs[("eval", "train")]["failed"] and not docs[("eval", "clean")]["failed"]
    assert docs[("eval", "train")]["examples"]["exact"] == r.examples["exact"]
    assert all(1 <= x <= n for x in r.examples["exact"] + r.examples["near"])  # row numbers, never rows


def test_the_examples_are_row_numbers_of_planted_rows(planted) -> None:
    cfg, d, _ = planted
    rows = [orjson.loads(x) for x in (d / "eval.jsonl").read_bytes().splitlines()]
    train = {orjson.loads(x)["inputs"]["text"] for x in (d / "train.jsonl").read_bytes().splitlines()}
    with Store(cfg.store_url) as store:
        doc = {(x["evaluation"], x["dataset"]): x for x in isolation.isolation_doc(store)}[("eval", "train")]
    assert doc["examples"]["exact"] and all(rows[i - 1]["inputs"]["text"] in train for i in doc["examples"]["exact"])
    assert doc["examples"]["near"] and not any(rows[i - 1]["inputs"]["text"] in train for i in doc["examples"]["near"])


def test_registering_a_contaminated_evaluation_set_warns_and_stores(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    train = text_rows(texts(rng, 300), rng)
    cfg = config(tmp_path)
    write_set(tmp_path, "train", "real", train)
    m = write_set(tmp_path, "eval", "evaluation", train[:30] + text_rows(texts(rng, 270), rng))
    with Store(cfg.store_url) as store:
        register(cfg, store, tmp_path / "train.yaml", by="test")
        reg = register(cfg, store, m, by="test")  # a warning, not a refusal
        assert any("10.00% of its rows are in train" in w for w in reg.warnings), reg.warnings
        [doc] = isolation.isolation_doc(store)
        assert (doc["evaluation"], doc["dataset"], doc["exact"], doc["rows_checked"]) == ("eval", "train", 30, 300)
        metrics = Metrics(CollectorRegistry())
        metrics.set_isolation(isolation.rates(store))
    text = metrics.exposition().decode()
    assert 'careful_monitor_isolation_contamination_ratio{dataset="train",evaluation="eval"} 0.1' in text


def test_numeric_rows_match_after_rounding(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 2))
    train = [{"inputs": {"a": float(a), "b": float(b)}} for a, b in x]
    # the first 20 rows again, off by less than the 6th decimal; the rest shifted well beyond it
    ev = [{"inputs": {"a": float(a) + 1e-9, "b": float(b)}} for a, b in x[:20]]
    ev += [{"inputs": {"a": float(a) + 1e-3, "b": float(b)}} for a, b in x[20:]]
    cfg = config(tmp_path)
    write_set(tmp_path, "train", "real", train)
    write_set(tmp_path, "eval", "evaluation", ev)
    with Store(cfg.store_url) as store:
        for name in ("train", "eval"):
            register(cfg, store, tmp_path / f"{name}.yaml", by="test")
        [r] = isolation.check(cfg, store).results
    assert (r.exact, r.near, r.rate) == (20, 0, 0.1)


def test_long_texts_sharing_a_passage_count_by_ngram(tmp_path: Path) -> None:
    """An evaluation text that embeds 40 words of a training text in other words: low Jaccard, shared 13-grams."""
    rng = np.random.default_rng(9)
    train = texts(rng, 200)
    ev = [" ".join(texts(rng, 1)[0].split()[:50] + t.split()[:40] + texts(rng, 1)[0].split()[:50])
          for t in train[:20]] + texts(rng, 180)
    cfg = config(tmp_path, ngram_sample=1)
    write_set(tmp_path, "train", "real", text_rows(train, rng))
    write_set(tmp_path, "eval", "evaluation", text_rows(ev, rng))
    with Store(cfg.store_url) as store:
        for name in ("train", "eval"):
            register(cfg, store, tmp_path / f"{name}.yaml", by="test")
        [r] = isolation.check(cfg, store).results
    assert (r.exact, r.near_minhash, r.near_ngram) == (0, 0, 20)


def test_csv_and_parquet_files_and_folders_stream_as_read_dataset_reads_them(tmp_path: Path) -> None:
    header = ["inputs.x", "inputs.t", "outputs.probs.a"]
    rows = [[1, "hello there", 0.5], ["", "x", 0.25], [2.5, "a b c", 1.0]]
    with (tmp_path / "d.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    table = pa.table({h: [r[i] if r[i] != "" else None for r in rows] for i, h in enumerate(header)})
    pq.write_table(table, tmp_path / "d.parquet")
    (tmp_path / "folder").mkdir()
    pq.write_table(table.slice(0, 2), tmp_path / "folder" / "part-0.parquet")
    pq.write_table(table.slice(2), tmp_path / "folder" / "part-1.parquet")
    for name in ("d.csv", "d.parquet", "folder"):
        cols = read_dataset(tmp_path / name)
        streamed = list(isolation.iter_rows(tmp_path / name))
        assert [r["inputs.x"] for r in streamed] == cols["inputs.x"]
        assert [r["inputs.t"] for r in streamed] == cols["inputs.t"]


def test_a_config_naming_an_unregistered_evaluation_set_is_exit_2(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    with Store(cfg.store_url) as store:
        with pytest.raises(ConfigError) as err:
            isolation.check(cfg, store)
        assert err.value.exit_code == 2 and err.value.key == "models.m.evaluation" and "'eval'" in str(err.value)
        with pytest.raises(ConfigError, match="--model"):
            isolation.check(cfg, store, model="nope")


def test_changed_signature_settings_ask_for_a_re_registration(planted) -> None:
    cfg, _, _ = planted
    other = cfg.model_copy(update={"isolation": IsolationConfig(num_perm=128)})
    with Store(cfg.store_url) as store, pytest.raises(RegistryError, match=r"num_perm 64 -> 128.*re-register"):
        isolation.check(other, store)
    assert CheckFailedError("x").exit_code == 3
