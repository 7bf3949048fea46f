"""Lineage helpers (issue 10 item 5): mix parsing, generation depth, fresh-real share, trained_versions, mismatch."""

from __future__ import annotations

from pathlib import Path

import pytest

from careful_monitor import lineage
from careful_monitor.config import load_config
from careful_monitor.store import Store


@pytest.fixture
def store(tmp_path: Path):
    with Store(f"sqlite:///{tmp_path / 'careful.db'}") as opened:
        yield opened


def _put(store: Store, name: str, role: str = "real", parent: str | None = None) -> None:
    card = {"name": name, "role": role, **({"provenance": {"parent": parent}} if parent else {})}
    store.put_dataset(name=name, role=role, anchored_by=None if role == "real" else "real", card=card,
                      profile=b"p", n_rows=1, data_sha256="a" * 64, by="t")


@pytest.mark.parametrize(("items", "needle"), [
    (["a=0.5", "b=0.4"], "sum to 0.9"), (["a=0", "b=1"], "a=0: share must be in (0, 1]"),
    (["a=-0.5", "b=1.5"], "share must be in (0, 1]"), (["a"], "expected name=share"),
    (["a=x"], "not a number"), (["a=0.5", "a=0.5"], "names a twice"), ([], "at least one")])
def test_bad_mixes_name_the_problem(items: list[str], needle: str) -> None:
    with pytest.raises(lineage.LineageError, match="--mix") as refused:
        lineage.parse_mix(items)
    assert needle in str(refused.value) and refused.value.exit_code == 2


def test_a_mix_within_the_tolerance_is_accepted() -> None:
    assert lineage.parse_mix(["a=0.333", "b=0.333", "c=0.333"]) == {"a": 0.333, "b": 0.333, "c": 0.333}


def test_generation_depth_fresh_real_share_and_trained_versions(store: Store) -> None:
    _put(store, "real")
    _put(store, "s1", "synthetic", parent="real")
    _put(store, "s2", "synthetic", parent="s1")
    _put(store, "orphan", "synthetic")
    lineage.record(store, "m", "9", {"real": 0.5, "s2": 0.5}, by="a")
    _put(store, "real-new")
    lineage.record(store, "m", "10", {"real": 0.5, "real-new": 0.25, "s1": 0.125, "orphan": 0.125}, by="b")
    doc = lineage.lineage_doc(store, "m")
    assert [v["version"] for v in doc["versions"]] == ["9", "10"]
    gens = {d["dataset"]: d["generation"] for v in doc["versions"] for d in v["mix"]}
    assert gens == {"real": 0, "real-new": 0, "s1": 1, "s2": 2, "orphan": 1}
    assert [v["fresh_real_share"] for v in doc["versions"]] == [0.5, 0.25]
    assert lineage.trained_versions(store, ["m"]) == {
        ("m", "real"): ["9", "10"], ("m", "s2"): ["9"], ("m", "real-new"): ["10"], ("m", "s1"): ["10"],
        ("m", "orphan"): ["10"]}
    assert lineage.trained_versions(store, ["other"]) == {}
    assert lineage.lineage_doc(store, "nobody") == {"model": "nobody", "versions": []}


def test_a_training_mix_unlike_the_latest_version_is_reported(store: Store, tmp_path: Path) -> None:
    _put(store, "real")
    _put(store, "s1", "synthetic")
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text("models:\n  m:\n    anchor: real\n    training_mix: {real: 6, s1: 4}\n"
                        "    features: {inputs.x: numeric}\n")
    cfg = load_config(cfg_path, environ={})
    assert lineage.mix_mismatches(cfg, store) == []  # nothing recorded: nothing to compare with
    lineage.record(store, "m", "1", {"real": 0.6, "s1": 0.4}, by="a")
    assert lineage.mix_mismatches(cfg, store) == []  # weights are normalised
    lineage.record(store, "m", "2", {"real": 1.0}, by="a")
    [line] = lineage.mix_mismatches(cfg, store)
    assert line == "models.m.training_mix (real=0.60, s1=0.40) differs from recorded version 2 (real=1.00)"
