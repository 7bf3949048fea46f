"""`bench --peers` without `make bench-peers`: one clear line and exit 2 (the peer venvs are never needed here)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from careful_monitor.bench import peers
from careful_monitor.cli import main


def test_missing_peer_venvs_name_the_make_target(tmp_path) -> None:
    with pytest.raises(peers.PeersNotInstalledError) as err:
        peers.check_installed(tmp_path)
    assert err.value.exit_code == 2
    msg = str(err.value)
    assert "make bench-peers" in msg and ".cache/peers/evidently" in msg and ".cache/peers/nannyml" in msg
    assert "\n" not in msg


def test_bench_peers_exits_2_with_one_line_before_any_work(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(peers, "ROOT", tmp_path)
    monkeypatch.setattr(peers, "_daemon_window", lambda *a: pytest.fail("must check the venvs before any work"))
    r = CliRunner().invoke(main, ["bench", "--peers", "--json"])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: peer venvs not installed") and "make bench-peers" in lines[0]


def test_one_peer_installed_still_names_the_other(tmp_path) -> None:
    ev = peers.PEERS[0]
    ev.python(tmp_path).parent.mkdir(parents=True)
    ev.python(tmp_path).touch()
    ev.stamp(tmp_path).touch()
    ev.runner(tmp_path).parent.mkdir(parents=True)
    ev.runner(tmp_path).touch()
    with pytest.raises(peers.PeersNotInstalledError, match=r"\(\.cache/peers/nannyml\)"):
        peers.check_installed(tmp_path)
