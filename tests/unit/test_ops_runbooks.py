"""docs/runbooks.md: a section per alert, and every command it tells an operator to type is a real one.

The `careful-monitor` commands are checked against the CLI's own `--help` (subcommand and options);
the `amtool` commands against amtool's, and the windows API fields the runbook reads against a live
demo, in tests/integration/test_ops_prometheus.py (which installs amtool when it is missing).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "docs" / "runbooks.md"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "careful-monitor.rules.yml"
#: commands the runbooks must teach (the brief's "what to do")
REQUIRED = {("alerts", "list"), ("alerts", "ack"), ("datasets", "retire"), ("datasets", "register"), ("silence", "add")}
_GROUPS = ("datasets", "alerts", "topics", "db")


def _commands(program: str) -> list[list[str]]:
    """argv (without the program) of every `program ...` the runbooks show, in code spans and code blocks."""
    text = RUNBOOKS.read_text()
    snippets = [m.group(1) for m in re.finditer(r"```\w*\n(.*?)```", text, re.S)]
    # multi-line inline code spans: join lines, then read each span
    inline = re.sub(r"```.*?```", "", text, flags=re.S)
    snippets += re.findall(r"`([^`]+)`", inline.replace("\n", " "))
    out = []
    for snippet in snippets:
        for line in snippet.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].split("|")[0]
            m = re.search(rf"(?:^|\s){re.escape(program)}\s+(.*)", line)
            if not m:
                continue
            words = shlex.split(m.group(1).replace("$(", "(").replace("$", ""))
            if words and not words[0].startswith("-"):
                out.append(words)
    return out


def _subcommand(argv: list[str]) -> tuple[str, ...]:
    return tuple(argv[:2]) if argv[0] in _GROUPS else (argv[0],)


def _options(argv: list[str]) -> set[str]:
    return {w.split("=")[0] for w in argv if w.startswith("--")}


def runbook_commands(program: str) -> dict[tuple[str, ...], set[str]]:
    """{subcommand: options used} for every `program ...` the runbooks show (`amtool`: its first two words)."""
    seen: dict[tuple[str, ...], set[str]] = {}
    for argv in _commands(program):
        key = tuple(argv[:2]) if program == "amtool" else _subcommand(argv)
        seen.setdefault(key, set()).update(_options(argv))
    return seen


CAREFUL = runbook_commands("careful-monitor")


def test_one_section_per_alert_with_meaning_evidence_and_actions() -> None:
    text = RUNBOOKS.read_text()
    alerts = [r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    sections = re.split(r'\n(?=<a id=")', text)
    by_anchor = {re.match(r'<a id="([^"]+)"></a>', s).group(1): s for s in sections if s.startswith("<a id=")}
    assert set(by_anchor) == {a.lower() for a in alerts}
    for alert in alerts:
        section = by_anchor[alert.lower()]
        assert re.search(rf"^## {alert} \((page|ticket)\)$", section, re.M), alert
        for part in ("**Meaning.**", "**Evidence.**", "**Actions.**"):
            assert part in section, f"{alert}: no {part}"


def test_runbooks_teach_the_required_commands() -> None:
    taught = set(CAREFUL) | set(runbook_commands("amtool"))
    assert taught >= REQUIRED, sorted(REQUIRED - taught)
    assert {"--by", "--reason"} <= CAREFUL[("datasets", "retire")]
    assert "--by" in CAREFUL[("alerts", "ack")]
    assert {"--model", "--json"} <= CAREFUL[("alerts", "list")]
    text = RUNBOOKS.read_text()
    assert re.search(r"/api/models/MODEL/windows\?last=\d+", text)


@pytest.mark.parametrize("subcommand", sorted(CAREFUL), ids=" ".join)
def test_careful_monitor_commands_exist_with_their_options(subcommand: tuple[str, ...]) -> None:
    r = subprocess.run([sys.executable, "-m", "careful_monitor.cli", *subcommand, "--help"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, f"`careful-monitor {' '.join(subcommand)}` in docs/runbooks.md: {r.stderr}"
    for option in CAREFUL[subcommand]:
        assert re.search(rf"(^|\s){re.escape(option)}\b", r.stdout), (f"docs/runbooks.md: {' '.join(subcommand)} "
                                                                     f"has no {option}")
