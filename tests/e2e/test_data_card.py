"""`datasets card NAME --format md|html`: the Datasheets-style card of a registered dataset (issue 10, item 7)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _cm(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREFUL_MONITOR_")}
    return subprocess.run([sys.executable, "-m", "careful_monitor.cli", *args], capture_output=True, text=True,
                          env=env, timeout=300, check=False)


@pytest.fixture(scope="module")
def cfg(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("card") / "demo"
    r = _cm("demo", "--workdir", str(work), "--port", "0", "--windows", "12")
    assert r.returncode == 0, r.stderr
    r = _cm("datasets", "review", "--config", str(work / "config.yaml"), "tickets-synth-collapsed", "--by",
            "<b>eve</b>", "--reason", "| pipes | and <script>x</script>")
    assert r.returncode == 0, r.stderr
    return work / "config.yaml"


def test_markdown_card_answers_all_seven_questions_with_gates_isolation_and_audit(cfg: Path) -> None:
    r = _cm("datasets", "card", "--config", str(cfg), "tickets-synth-collapsed")
    assert r.returncode == 0, r.stderr
    md = r.stdout
    assert md.startswith("# Data card: tickets-synth-collapsed")
    for letter in "CAREFUL":
        assert f"- **{letter}** " in md, letter
    assert "(missing: filtering.rejected_kept_at)" in md  # the demo card lacks it: said, not hidden
    for section in ("## Provenance and lineage", "## Profile", "## Pre-flight gates", "## Evaluation isolation",
                    "## Audit log"):
        assert section in md, section
    assert "Generation depth 1, generated from tickets-real." in md
    gates = md.split("## Pre-flight gates", 1)[1].split("## Evaluation isolation", 1)[0]
    assert "| spread |" in gates and "FAIL" in gates  # the collapsed set fails its pre-flight gates
    audit = md.split("## Audit log", 1)[1]
    # user strings cannot break the table or inject markup
    assert "\\<b\\>eve\\</b\\>" in audit and "\\| pipes \\|" in audit and "<script>" not in md
    faithful = _cm("datasets", "card", "--config", str(cfg), "tickets-synth-faithful").stdout
    assert "FAIL" not in faithful.split("## Pre-flight gates", 1)[1].split("## Evaluation", 1)[0]


def test_html_card_is_self_contained_and_escaped(cfg: Path, tmp_path: Path) -> None:
    out = tmp_path / "card.html"
    r = _cm("datasets", "card", "--config", str(cfg), "tickets-real", "--format", "html", "-o", str(out))
    assert r.returncode == 0 and "wrote" in r.stdout, r.stderr
    html = out.read_text()
    assert "<style>" in html and "<script" not in html and 'href="http' not in html
    for section in ("careful", "provenance", "profile", "gates", "isolation", "audit"):
        assert f'id="{section}"' in html, section
    collapsed = tmp_path / "collapsed.html"
    assert _cm("datasets", "card", "--config", str(cfg), "tickets-synth-collapsed", "--format", "html", "-o",
               str(collapsed)).returncode == 0
    text = collapsed.read_text()
    assert "&lt;b&gt;eve&lt;/b&gt;" in text and "<b>eve" not in text and "<script>x" not in text
    missing = _cm("datasets", "card", "--config", str(cfg), "nope")
    assert missing.returncode == 2 and "nope" in missing.stderr
