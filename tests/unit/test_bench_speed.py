"""`bench`'s machinery on tiny workloads: interleaved rounds, verdicts, the baselines, the new rows and `--growth`.

No timing assertions: the speed targets live in `careful-monitor bench`, not in tests.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from careful_monitor.bench import growth, speed
from careful_monitor.bench.workload import quiet_logs
from careful_monitor.cli import main


def test_interleave_rotates_the_order_and_reports_medians_and_ratios() -> None:
    calls: list[str] = []
    # self-timed cases (they return their seconds): a takes 3 ms in every call but one, b 1 ms
    a_seconds = iter([0.003, 0.003, 0.003, 0.003, 0.003, 0.003, 0.030, 0.003, 0.003, 0.003])
    cases = {"a": lambda: calls.append("a") or next(a_seconds),
             "b": lambda: calls.append("b") or 0.001,
             "c": lambda: calls.append("c")}  # timed by the helper
    t = speed.interleave(cases, rounds=3, repeat=3)
    assert t.order == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    # one warm-up call each, then each round runs every case `repeat` times in a row, in the round's order
    assert calls == ["a", "b", "c"] + ["a"] * 3 + ["b"] * 3 + ["c"] * 3 + ["b"] * 3 + ["c"] * 3 + ["a"] * 3 \
        + ["c"] * 3 + ["a"] * 3 + ["b"] * 3
    assert [len(r) for r in t.seconds["a"]] == [3, 3, 3]
    assert t.median("a") == 0.003  # the one slow call does not move the median
    assert t.median("b") == 0.001 and t.ratio("a", "b") == pytest.approx(3.0)
    assert t.round_ratios("a", "b") == pytest.approx([3.0, 3.0, 3.0])
    assert 0 < t.median("c") < 0.1
    assert t.summary()["a"] == {"median": pytest.approx(3.0), "calls": 9}
    with pytest.raises(ValueError):
        speed.interleave(cases, rounds=0)


def test_verdicts_say_pass_or_miss_and_by_how_much() -> None:
    assert speed.verdict("daemon_window_vs_ks_asymp", 0.1)["met"] is True
    miss = speed.verdict("daemon_window_vs_ks_asymp", 0.3)
    assert miss["met"] is False and miss["off_by"] == pytest.approx(2.0)
    short = speed.verdict("replay_vs_orjson_rate", 0.095)
    assert short["met"] is False and short["off_by"] == pytest.approx(2.0)
    assert speed.verdict("replay_vs_orjson_rate", float("nan"))["met"] is None
    assert "MISS (2.00x off)" in speed._mark(miss) and "PASS" in speed._mark(speed.verdict("mmd_window_ms", 0.5))


def test_numpy_floor_is_scipys_ks_statistic() -> None:
    rng = np.random.default_rng(4)
    ref, win = rng.normal(size=(3000, 6)), rng.normal(0.1, 1.2, (400, 6))
    win[:7, 2] = ref[:7, 2]  # ties between the samples
    d, p = speed.ks_floor(np.sort(ref, axis=0), win)
    want = [stats.ks_2samp(win[:, j], ref[:, j], method="asymp") for j in range(6)]
    assert d == pytest.approx([w.statistic for w in want], abs=1e-12)
    # Kolmogorov's limit against scipy's finite-n kstwo: close, not equal (closer as the samples grow)
    assert p == pytest.approx([w.pvalue for w in want], rel=0.25, abs=1e-12)


def test_codes_chi2_matches_scipy_chisquare() -> None:
    rng = np.random.default_rng(5)
    window = {"c0": rng.choice(["a", "b", "c", "zz"], 300).tolist(), "c1": rng.choice(["a", "b"], 300).tolist()}
    index = [{"a": 0, "b": 1, "c": 2}, {"a": 0, "b": 1}]
    expected = np.array([[[0.3, 0.3, 0.3, 0.1], [0.5, 0.5, 0.0, 0.0]]])  # last code: other (unknown strings)
    p = speed.codes_chi2(window, index, expected)
    obs0 = [window["c0"].count(x) for x in "abc"] + [window["c0"].count("zz")]
    assert p[0, 0] == pytest.approx(stats.chisquare(obs0, np.array([0.3, 0.3, 0.3, 0.1]) * 300).pvalue)
    obs1 = [window["c1"].count(x) for x in "ab"]
    assert p[0, 1] == pytest.approx(stats.chisquare(obs1, [150, 150]).pvalue)


def _positive(d: dict, keys: list[str]) -> None:
    for k in keys:
        assert d[k] > 0, k


def test_new_rows_on_tiny_workloads_return_their_keys() -> None:
    rng = np.random.default_rng(6)
    names = [f"inputs.x{i}" for i in range(4)]
    w = speed.bench_window(2, 1, workload=(rng.normal(size=(1000, 4)), rng.normal(size=(300, 4)), names))
    _positive(w, ["careful_monitor_daemon_window_ms", "scipy_ks_2samp_asymp_ms", "numpy_sorted_reference_floor_ms",
                  "daemon_ratio_to_ks_asymp", "daemon_ratio_to_numpy_floor"])
    c = speed.bench_categorical(2, 1, ref_rows=2000, window=300)
    _positive(c, ["careful_monitor_categorical_window_ms", "codes_chi2_ms", "ratio"])
    r = speed.bench_replay(2000, 2, ref_rows=2000)
    assert r["windows"] == 2 and r["synthetic_sets"] == 2
    _positive(r, ["replay_events_per_s", "orjson_decode_only_per_s", "orjson_columns_per_s", "ratio_to_orjson",
                  "ratio_to_orjson_columns"])


def test_orjson_columns_pulls_every_feature() -> None:
    from careful_monitor.bench.workload import bench_features, event_lines

    lines = event_lines(np.random.default_rng(0), 5, 10, numeric=3)
    cols = speed.orjson_columns(lines, list(bench_features(3)))
    assert cols["id"] == [f"e{i}" for i in range(10, 15)] and len(cols["inputs.x2"]) == 5
    assert set(cols["outputs.probs"][0]) == {"a", "b", "c"}


def test_growth_gives_one_cell_per_axis_value() -> None:
    axes = {"synthetic": (1, 2), "features": (3, 5), "window": (200, 300), "models": (1, 2)}
    out = growth.run_growth(axes=axes, base={"synthetic": 1, "features": 3, "window": 200}, rounds=1, repeat=1,
                            ref_rows=1000, model_events=600, model_window=200, echo=None)
    for axis, values in axes.items():
        cells = out["axes"][axis]
        assert [c["value"] for c in cells] == list(values), axis
        for c in cells:
            assert c["us_per_event"] > 0
    assert all(c["ms_per_window"] > 0 for axis in ("synthetic", "features", "window") for c in out["axes"][axis])
    assert [c["value"] for c in out["axes"]["persist"]] == [1, 2]
    assert all(c["ms_per_batch"] > 0 for c in out["axes"]["persist"])
    assert out["axes"]["models"][1]["windows_per_call"] >= 2  # 600 events over 2 models, windows of 200
    assert len(growth.growth_table(out)) == 1 + 2 * 5 + 2


def test_bench_growth_cli_is_quiet_and_prints_json(monkeypatch) -> None:
    seen: dict[str, int] = {}

    def fake(*, quick: bool, echo) -> dict:
        logging.getLogger("careful_monitor.runtime.pipeline").info("window closed: ...")
        seen["level"] = logging.getLogger("careful_monitor.runtime.pipeline").getEffectiveLevel()
        seen["quick"] = quick
        return {"axes": {}, "quick": quick}

    monkeypatch.setattr(growth, "run_growth", fake)
    logger = logging.getLogger("careful_monitor")
    before = logger.level
    r = CliRunner().invoke(main, ["bench", "--growth", "--quick", "--json"])
    assert r.exit_code == 0, r.output
    assert '"quick":true' in r.output and seen == {"level": logging.WARNING, "quick": True}
    assert logger.level == before
    assert "--growth" in CliRunner().invoke(main, ["bench", "--help"]).output


def test_quiet_logs_restores_the_level() -> None:
    logger = logging.getLogger("careful_monitor")
    before = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        with quiet_logs():
            assert logger.level == logging.WARNING
        assert logger.level == logging.DEBUG
        logger.setLevel(logging.ERROR)
        with quiet_logs():
            assert logger.level == logging.ERROR  # never louder than asked
    finally:
        logger.setLevel(before)
