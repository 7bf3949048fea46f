"""Pre-flight gates from the command line (issue 10, item 4): `datasets register` prints the report of a
synthetic set, `datasets check NAME --strict` exits 3 on a failing gate and 0 otherwise."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_cli import cm
from tests.unit.test_gates import small_sets


def test_register_prints_the_report_and_check_strict_gates_ci(tmp_path: Path) -> None:
    cfg = str(small_sets(tmp_path))
    r = cm("datasets", "register", "--config", cfg, *(str(tmp_path / f"{n}.yaml") for n in
                                                       ("anchor", "copy30", "faithful", "unowned")),
           env={"COLUMNS": "200"})
    assert r.returncode == 0, r.stderr.decode()  # registration warns, never refuses
    out = r.stdout.decode()
    assert out.count("pre-flight gates of") == 3 + 1  # three tables, one warning (copy30); none for the anchor
    assert "warning: pre-flight gates of copy30: 2 of 9 gates failed: exact_copies 0.3 > 0.01, dcr_privacy" in out
    copy30 = out[out.index("pre-flight gates of copy30 against anchor"):out.index("registered faithful")]
    assert [ln.split()[0] for ln in copy30.splitlines() if "FAIL" in ln] == ["exact_copies", "dcr_privacy"]
    assert "900 of 3000 rows are anchor rows" in copy30
    assert "card: C ok  A ok  R ok  E ok  F ok  U ok  L ok" in copy30
    assert "L missing lifecycle.owner, lifecycle.review_every_days" in out[out.index("registered unowned"):]

    help_text = cm("datasets", "check", "--help").stdout.decode()
    assert "3 check failed" in help_text and "Example: careful-monitor datasets check" in help_text
    assert all(c in help_text for c in ("0 checked", "1 runtime failure", "2 usage or config"))

    r = cm("datasets", "check", "--config", cfg, "copy30", "--strict")
    assert r.returncode == 3, r.stderr.decode()
    assert b"pre-flight gates of copy30 failed: exact_copies, dcr_privacy" in r.stderr
    assert b"dcr_privacy as computed at" in r.stdout  # carried over: the data file is not given
    assert cm("datasets", "check", "--config", cfg, "copy30").returncode == 0  # not strict: report only

    r = cm("datasets", "check", "--config", cfg, "copy30", "--json", "--data", str(tmp_path / "copy30.jsonl"))
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["failed"] == ["exact_copies", "dcr_privacy"] and doc["notes"] == []
    assert cm("datasets", "check", "--config", cfg, "copy30", "--data",
              str(tmp_path / "faithful.jsonl")).returncode == 2  # not the registered data

    r = cm("datasets", "check", "--config", cfg, "faithful", "--strict", "--require-card")
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    assert b"faithful: all 9 evaluated gates passed" in r.stdout
    r = cm("datasets", "check", "--config", cfg, "unowned", "--strict", "--require-card")
    assert r.returncode == 3 and b"failed: card L" in r.stderr
    r = cm("datasets", "check", "--config", cfg, "anchor", "--strict")
    assert r.returncode == 0 and b"only its card is checked" in r.stdout  # a real set: the card only
    assert cm("datasets", "check", "--config", cfg, "nope").returncode == 2

    show = json.loads(cm("datasets", "show", "--config", cfg, "copy30").stdout)
    assert show["gates"]["failed"] == ["exact_copies", "dcr_privacy"] and show["gates"]["card_incomplete"] == {}
