"""The evidence pages' plots without a browser: the joint tests' trend, and why a synthetic series is absent (issue 12).

Plot documents and SVG are checked directly; the alert page is rendered from a real SQLite store holding
window results and alerts as the pipeline writes them (documents, not typed results).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from careful_monitor.engine.profile import build_profile
from careful_monitor.evidence import ABSENT_REASONS, joint_trend, plots_for, with_absent_reason
from careful_monitor.ui import pages, svg

HOSTILE = '<script>window.__pwned=1</script><b>x</b>"\'&'
MODEL, ANCHOR, SET = "m", "real", "synth"
RETIRE = f"{MODEL}:{SET}:5:retire_recommended"
STALE = f"{MODEL}:{ANCHOR}:5:anchor_stale"


def _joint_test(test: str, effect: float, p: float, flagged: bool, statistic: float = 10.0) -> dict:
    return {"feature": "joint", "reference": ANCHOR, "test": test, "statistic": statistic, "p_value": p,
            "effect": effect, "flagged": flagged}


def _window(i: int, mmd_effect: float, flagged: bool, state: str = "ok") -> dict:
    tests = [_joint_test("joint", 0.06, 0.5, False), _joint_test("mmd", mmd_effect, 1e-40 if flagged else 0.3, flagged),
             {"feature": "inputs.x", "reference": ANCHOR, "test": "ks", "statistic": 0.1, "p_value": 0.2,
              "effect": 0.1, "flagged": False}]
    return {"model": MODEL, "window": i, "window_start": 100.0 * i, "window_end": 100.0 * i + 99, "n_events": 500,
            "flagged": flagged, "flagged_features": ["joint"] if flagged else [], "evidence": [], "tests": tests,
            "quality": [], "attribution": [{"dataset": SET, "affinity": 0.9, "share": 0.4, "share_se": 0.02,
                                            "identifiable": True, "group_share": None}],
            "blamed": [SET] if flagged else [], "states": {SET: state, ANCHOR: "ok"}, "detector_hits": 0,
            "counts": {}}


def _alert(alert_id: str, dataset: str, state: str, evidence: list[dict]) -> dict:
    return {"alert_id": alert_id, "model": MODEL, "dataset": dataset, "state": state, "since_window": 3, "window": 5,
            "window_end": "2026-11-24T10:00:00Z", "created_at": "2026-11-24T10:00:00Z", "model_versions": ["1"],
            "evidence": evidence, "affinity": None, "share": None, "share_identifiable": False, "group_share": None,
            "indistinguishable_from": [], "action": "act", "trained_versions": [], "acked_by": None, "acked_at": None}


MMD_EVIDENCE = {"feature": "joint", "signal": "mmd", "value": 900.0, "p_value": 0.0, "effect": 0.17, "tokens": []}
X_EVIDENCE = {"feature": "inputs.x", "signal": "spread_ratio", "value": 0.5, "p_value": 1e-9, "effect": 0.5,
              "tokens": []}
#: a histogram as alerts stored before `synthetic_absent` was kept
OLD_PLOT = {"feature": "inputs.x", "kind": "numeric", "labels": ["< 0", ">= 0"], "anchor": [0.5, 0.5],
            "window": [0.8, 0.2], "synthetic": None, "n_window": 500}


# --- plot documents -----------------------------------------------------------------------------------------------


def test_joint_trend_gives_the_evidence_tests_effect_per_window_beside_its_floor() -> None:
    windows = [_window(i, 0.0 if i < 3 else 0.1 * i, i >= 3) for i in range(5)]  # the alert's own row is pruned
    alert = _alert(RETIRE, SET, "retire_recommended", [MMD_EVIDENCE, X_EVIDENCE])
    (doc,) = joint_trend(windows, alert, {"mmd": 0.01, "joint": 0.05})
    assert doc["test"] == "mmd" and doc["floor"] == 0.01 and doc["floor_key"] == "mmd"
    assert doc["windows"] == [0, 1, 2, 3, 4, 5] and doc["alert_window"] == 5
    assert doc["flagged"] == [False, False, False, True, True, True]
    assert doc["effect"][-1] == 0.17 and doc["statistic"][-1] == 900.0  # the alert window, from its evidence
    # only joint tests that are evidence are plotted; none at all without joint evidence
    assert joint_trend(windows, _alert(RETIRE, SET, "retire_recommended", [X_EVIDENCE]), {}) == []


def test_joint_trend_marks_windows_without_the_test_and_survives_pruning() -> None:
    gap = _window(2, 0.0, False)
    gap["tests"] = [t for t in gap["tests"] if t["test"] != "mmd"]  # too few joint rows that window
    alert = _alert(RETIRE, SET, "retire_recommended", [MMD_EVIDENCE])
    (doc,) = joint_trend([_window(1, 0.0, False), gap], alert, {"mmd": 0.02})
    assert doc["windows"] == [1, 2, 5] and doc["effect"] == [0.0, None, 0.17] and doc["flagged"] == [False, None, True]
    (alone,) = joint_trend([], alert, {"mmd": 0.02})  # every window row pruned: the alert's evidence remains
    assert alone["windows"] == [5] and alone["effect"] == [0.17] and alone["floor"] == 0.02


def test_plots_say_why_the_synthetic_series_is_absent() -> None:
    rng = np.random.default_rng(3)
    anchor = build_profile(ANCHOR, "real", {"inputs.x": rng.normal(size=2000).tolist(),
                                            "outputs.score": rng.uniform(size=2000).tolist()}, rng=rng, bins=4)
    synth = build_profile(SET, "synthetic", {"inputs.x": rng.normal(size=500).tolist()}, anchor=anchor,
                          anchored_by=ANCHOR, rng=rng)
    counts = {f: (5,) * len(anchor.features[f].counts) for f in anchor.features}
    blamed = {p["feature"]: p for p in plots_for(counts, ["inputs.x", "outputs.score"], anchor, synth)}
    assert blamed["inputs.x"]["synthetic"] is not None and "synthetic_absent" not in blamed["inputs.x"]
    assert blamed["outputs.score"]["synthetic"] is None
    assert blamed["outputs.score"]["synthetic_absent"] == "feature_missing"  # the set's data has no such output
    stale = plots_for(counts, ["inputs.x"], anchor, None)  # anchor_stale: no set is blamed
    assert stale[0]["synthetic_absent"] == "no_blamed_set"
    # documents stored before the reason was kept get one from the alert's state
    assert with_absent_reason(OLD_PLOT, "anchor_stale")["synthetic_absent"] == "no_blamed_set"
    assert with_absent_reason(OLD_PLOT, "retire_recommended")["synthetic_absent"] == "not_stored"
    assert "synthetic_absent" not in with_absent_reason(blamed["inputs.x"], "retire_recommended")


# --- SVG ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ABSENT_REASONS)
def test_histogram_without_a_synthetic_series_labels_why(reason: str) -> None:
    out = str(svg.histogram({**OLD_PLOT, "synthetic_absent": reason}))
    assert re.findall(r'<g class="series" data-series="(\w+)"', out) == ["anchor", "window"]
    absent = re.search(r'<g class="series-absent" data-series="synthetic" data-reason="(\w+)">(.*?)</g>', out)
    assert absent and absent.group(1) == reason and svg.ABSENT[reason].replace("'", "&#39;") in absent.group(2)
    assert re.search(r"<title>[^<]+</title><desc>[^<]*blamed synthetic set: none", out)
    full = str(svg.histogram({**OLD_PLOT, "synthetic": [0.5, 0.5]}))
    assert "series-absent" not in full and full.count('class="series"') == 3


def test_joint_plot_draws_the_effect_its_floor_and_the_flagged_windows() -> None:
    (doc,) = joint_trend([_window(i, 0.1 * i, i >= 3) for i in range(5)],
                         _alert(RETIRE, SET, "retire_recommended", [MMD_EVIDENCE]), {"mmd": 0.01})
    out = str(svg.joint_plot(doc))
    assert out.startswith('<svg class="joint-plot"') and 'role="img"' in out and 'data-test="mmd"' in out
    title = re.search(r"<title>([^<]+)</title><desc>([^<]+)</desc>", out)
    assert title and title.group(1) == "joint (mmd): effect per window, windows 0..5"
    assert "floor policy.min_effect.mmd = 0.01" in title.group(2) and "in windows 3, 4, 5" in title.group(2)
    assert out.count('class="point flagged"') == 3 and out.count('class="point"') == 3
    assert out.count('class="threshold"') == 1 and out.count('class="alert-window"') == 1
    assert len(re.findall(r'<polyline [^>]*points="([^"]+)"', out)) == 1
    # a single window (the rest pruned) still draws its point; user-controlled text stays text
    (alone,) = joint_trend([], _alert(RETIRE, SET, "retire_recommended", [MMD_EVIDENCE]), {"mmd": 0.01})
    assert str(svg.joint_plot(alone)).count('class="point flagged"') == 1
    hostile = str(svg.joint_plot({**doc, "test": HOSTILE, "floor_key": HOSTILE}))
    assert "<script" not in hostile and "<b>" not in hostile and "&lt;script&gt;" in hostile


# --- the alert page and report --------------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path):
    from careful_monitor.store import Store

    with Store(f"sqlite:///{tmp_path / 'ui.db'}") as s:
        windows = [_window(i, 0.0 if i < 3 else 0.05 * i, i >= 3, "watch" if i >= 3 else "ok") for i in range(5)]
        windows.append({**_window(5, 0.17, True, "retire_recommended"), "evidence": [MMD_EVIDENCE]})
        full = {**OLD_PLOT, "synthetic": [0.9, 0.1]}
        s.commit_batch(windows=windows, alerts=[
            {**_alert(RETIRE, SET, "retire_recommended", [MMD_EVIDENCE, X_EVIDENCE]), "plots": [full]},
            {**_alert(STALE, ANCHOR, "anchor_stale", [X_EVIDENCE, MMD_EVIDENCE]), "plots": [OLD_PLOT]}])
        yield s


def test_alert_page_plots_the_joint_evidence_and_says_why_series_are_absent(store) -> None:
    html = pages.render("alert.html.j2", **pages.alert_context(store, RETIRE), report=True, inline_css="",
                        session=False, csrf_token="", writable=False, disabled_reason="", flash=None)
    joint = re.search(r'<section class="evidence-joint" data-feature="joint" data-test="mmd".*?</section>', html, re.S)
    assert joint and '<svg class="joint-plot"' in joint.group(0) and "windows 0..5" in joint.group(0)
    assert joint.group(0).count('class="point flagged"') == 3  # windows 3, 4 and the alert's 5
    assert "policy.min_effect.mmd" in joint.group(0)
    # the joint section is not a histogram section (those match the per-feature plots one to one)
    assert re.findall(r'<section class="evidence-feature" data-feature="([^"]+)"', html) == ["inputs.x"]
    assert "No synthetic series" not in html

    stale = pages.render("alert.html.j2", **pages.alert_context(store, STALE), report=True, inline_css="",
                         session=False, csrf_token="", writable=False, disabled_reason="", flash=None)
    section = re.search(r'<section class="evidence-feature" data-feature="inputs.x".*?</section>', stale, re.S)
    assert section and section.group(0).count('class="series"') == 2
    assert 'data-reason="no_blamed_set"' in section.group(0)  # an alert stored before the reason was kept
    assert "No synthetic series: none: no synthetic set is blamed (anchor stale)." in section.group(0)
    assert 'data-test="mmd"' in stale  # joint evidence of an anchor_stale alert is plotted too


def test_markdown_report_carries_the_joint_plot(store) -> None:
    from careful_monitor.cli.report import render_report
    from careful_monitor.config import Config

    md = render_report(store, Config(), RETIRE, "md")
    assert md.count("data:image/svg+xml;base64,") == 2  # one histogram and the joint trend
    assert "### joint (mmd) over windows 0..5" in md
    stale = render_report(store, Config(), STALE, "md")
    assert "No synthetic series: none: no synthetic set is blamed (anchor stale)." in stale
