"""Pre-flight gates of synthetic sets (issue 10, item 4): each gate fails on the data it is meant to catch
and passes on a faithful independent sample, on small sets built here and on the demo's two synthetic sets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import yaml

from careful_monitor import gates
from careful_monitor.config import load_config
from careful_monitor.demo import scenario
from careful_monitor.errors import ManifestError
from careful_monitor.registry import register
from careful_monitor.store import Store
from tests.unit.conftest import register_scenario

ANCHOR_ROWS = 4_000  # below profile.joint_sample (5000): the anchor's joint sample holds all its rows
SET_ROWS = 3_000
FULL_CARD = {"purpose": "more volume", "provenance": {"generator": "copula-1", "parent": "anchor"},
             "evaluation_isolation": {"excluded_from": []}, "filtering": {"gates": ["dedup"], "rejected_kept_at": "r/"},
             "use_limits": ["no-evaluation"], "lifecycle": {"owner": "data-platform", "review_every_days": 90}}
COLLAPSE = {"spread", "tails", "coverage", "diversity", "entropy", "confidence"}


def write_set(d: Path, name: str, role: str, rows: list[dict[str, Any]], **card: Any) -> Path:
    """A JSONL data file and its card in folder `d` (a synthetic card is complete unless a field is given None)."""
    (d / f"{name}.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
    doc = {"name": name, "role": role, "data": f"{name}.jsonl", **card}
    if role == "synthetic":
        doc = {**FULL_CARD, "anchored_by": "anchor", **doc}
    doc = {k: v for k, v in doc.items() if v is not None}
    (d / f"{name}.yaml").write_text(yaml.safe_dump(doc))
    return d / f"{name}.yaml"


def collapse(rows: list[dict[str, Any]], anchor: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every numeric input's spread halved around the anchor's median and its tails cut at the 5 % / 95 % quantiles."""
    out = [{"inputs": dict(r["inputs"]), "outputs": dict(r["outputs"])} for r in rows]
    for f in ("amount", "account_age_days"):
        a = np.array([r["inputs"][f] for r in anchor])
        med, lo, hi = np.quantile(a, [0.5, 0.05, 0.95])
        for r in out:
            r["inputs"][f] = float(np.clip(med + 0.5 * (r["inputs"][f] - med), lo, hi))
    return out


def small_sets(d: Path) -> Path:
    """An anchor of 4,000 rows and four synthetic sets of 3,000 against it; returns the config's path."""
    rng = np.random.default_rng(2026)
    anchor = scenario.sample_rows(rng, ANCHOR_ROWS, "anchor")
    write_set(d, "anchor", "real", anchor, purpose="real tickets", provenance={"source": "logs"})
    copied = [anchor[i] for i in rng.choice(ANCHOR_ROWS, int(0.3 * SET_ROWS), replace=False)]
    write_set(d, "copy30", "synthetic", copied + scenario.sample_rows(rng, SET_ROWS - len(copied), "anchor"))
    write_set(d, "faithful", "synthetic", scenario.sample_rows(rng, SET_ROWS, "anchor"))
    write_set(d, "collapsed", "synthetic", collapse(scenario.sample_rows(rng, SET_ROWS, "anchor"), anchor))
    write_set(d, "unowned", "synthetic", scenario.sample_rows(rng, 1_000, "anchor"), lifecycle=None)
    cfg = d / "config.yaml"
    cfg.write_text(f'store: {{url: "sqlite:///{d / "careful.db"}"}}\n')
    return cfg


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("gates")
    cfg = load_config(small_sets(d), environ={})
    out: dict[str, Any] = {"dir": d, "cfg": cfg}
    with Store(cfg.store_url) as store:
        for name in ("anchor", "copy30", "faithful", "collapsed", "unowned"):
            out[name] = register(cfg, store, d / f"{name}.yaml", by="test")
            out[f"report:{name}"] = gates.load(store, name)
    return out


def verdicts(report: gates.GateReport) -> dict[str, bool | None]:
    return {g.name: g.passed for g in report.gates}


def test_a_set_copying_30_percent_of_the_anchor_fails_exact_copies_and_dcr(small: dict[str, Any]) -> None:
    r = small["report:copy30"]
    copies, dcr = r.gate("exact_copies"), r.gate("dcr_privacy")
    assert not copies.passed and copies.value == pytest.approx(0.3, abs=0.005)  # 900 of 3000 rows, exactly
    # every anchor row is in its joint sample, so 30 % of the sampled rows sit at distance 0, + 5 % of the rest
    assert not dcr.passed and dcr.value == pytest.approx(0.3 + 0.7 * 0.05, abs=0.03)
    assert dcr.threshold == pytest.approx(3 * 0.05, abs=0.01)
    # the rest of it is drawn from the anchor's law: nothing else fails
    assert {n for n, ok in verdicts(r).items() if ok is False} == {"exact_copies", "dcr_privacy"}
    assert any("pre-flight gates of copy30: 2 of 9 gates failed: exact_copies 0.3 > 0.01" in w
               for w in small["copy30"].warnings)


def test_a_faithful_independent_sample_passes_every_gate(small: dict[str, Any]) -> None:
    r = small["report:faithful"]
    assert verdicts(r) == dict.fromkeys(verdicts(r), True) and len(r.gates) == 9  # all evaluated, all passed
    assert r.gate("exact_copies").value == 0.0
    assert r.gate("dcr_privacy").value < 0.09  # 5 % expected; the limit is 15 %
    assert not r.incomplete and r.passed and small["faithful"].warnings == []


def test_a_collapsed_set_fails_spread_and_tails(small: dict[str, Any]) -> None:
    r = small["report:collapsed"]
    spread, tails = r.gate("spread"), r.gate("tails")
    assert not spread.passed and spread.per_feature["inputs.amount"] > 0.4  # sd ratio about 0.4 after halving + cut
    assert not tails.passed and tails.per_feature["inputs.amount"] == 1.0  # nothing beyond the 1 % / 99 % quantiles
    assert r.gate("exact_copies").passed and r.gate("coverage").passed  # categories and rows untouched


def test_a_card_without_lifecycle_is_incomplete_at_L(small: dict[str, Any]) -> None:
    r = small["report:unowned"]
    assert [(c.letter, c.missing) for c in r.incomplete] == [
        ("L", ("lifecycle.owner", "lifecycle.review_every_days"))]
    assert r.passed  # card completeness never fails a gate by itself
    assert small["unowned"].warnings == []  # registration warns of failed gates only


def test_card_letters_name_the_missing_fields() -> None:
    got = {c.letter: c.missing for c in gates.card_completeness({"role": "synthetic", "provenance": {}}, "synthetic")}
    assert got == {"C": ("purpose",), "A": ("anchored_by",),
                   "R": ("provenance.generator", "provenance.parent or provenance.source"),
                   "E": ("evaluation_isolation",), "F": ("filtering.gates", "filtering.rejected_kept_at"),
                   "U": ("use_limits",), "L": ("lifecycle.owner", "lifecycle.review_every_days")}
    real = {c.letter: c.complete for c in gates.card_completeness({"provenance": {"source": "logs"}}, "real")}
    assert real["A"] and real["R"]  # an anchor anchors itself; its record is a source, not a generator


def test_report_json_round_trips_and_check_recomputes_what_the_store_holds(small: dict[str, Any]) -> None:
    cfg, d = small["cfg"], small["dir"]
    with Store(cfg.store_url) as store:
        before = gates.load(store, "copy30")
        assert before is not None and gates.GateReport.from_doc(before.doc()) == before
        again = gates.check(cfg, store, "copy30")  # no data: DCR carried over from registration (same data, anchor)
        assert verdicts(again) == verdicts(before) and again.gate("dcr_privacy") == before.gate("dcr_privacy")
        assert any("dcr_privacy as computed at" in n for n in again.notes)
        fresh = gates.check(cfg, store, "copy30", data=d / "copy30.jsonl")
        assert fresh.gate("dcr_privacy") == before.gate("dcr_privacy") and not fresh.notes  # seeded: same value
        with pytest.raises(ManifestError, match="sha256 differs"):
            gates.check(cfg, store, "copy30", data=d / "faithful.jsonl")
        real = gates.check(cfg, store, "anchor")
        assert real.gates == [] and "only its card is checked" in real.notes[0]
        assert [c.letter for c in real.incomplete] == ["E", "F", "U", "L"]
        assert gates.load(store, "anchor") == real  # stored, latest per dataset


def test_registration_never_fails_because_of_a_gate(small: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_a: Any, **_k: Any) -> None:
        raise ValueError("boom")

    monkeypatch.setattr(gates, "run", broken)
    cfg, d = small["cfg"], small["dir"]
    with Store(cfg.store_url) as store:
        reg = register(cfg, store, d / "unowned.yaml", by="test")
    assert reg.record.name == "unowned"
    assert reg.warnings == ["pre-flight gates of unowned not computed: boom "
                            "(retry: careful-monitor datasets check unowned)"]


def test_the_demo_collapsed_set_fails_and_the_faithful_set_passes(tmp_path: Path) -> None:
    config, _events = register_scenario(tmp_path, seed=7, windows=1)
    cfg = load_config(config, environ={})
    with Store(cfg.store_url) as store:
        collapsed, faithful = gates.load(store, scenario.COLLAPSED), gates.load(store, scenario.FAITHFUL)
        assert gates.load(store, scenario.ANCHOR) is None  # an anchor gets no report at registration
    assert collapsed is not None and faithful is not None
    assert {g.name for g in collapsed.failed} == COLLAPSE  # every collapse fingerprint of the scenario
    assert collapsed.gate("exact_copies").passed and collapsed.gate("near_duplicates").passed
    assert faithful.passed and all(g.passed for g in faithful.gates)
    assert [c.letter for c in faithful.incomplete] == ["R", "E", "F", "U"]  # the demo's faithful card is terse
