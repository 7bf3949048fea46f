"""The CLI runs BLAS on one thread unless told otherwise; a library import leaves it alone.

Measured (2 cores, one other busy process): the daemon window 39.9 ms with OpenBLAS's default threads,
14.8 ms with one. The variable must be set before numpy loads OpenBLAS, which a subprocess shows.
"""

from __future__ import annotations

import os
import subprocess
import sys

from careful_monitor import BLAS_THREAD_VARIABLES, one_blas_thread


def test_cli_processes_get_one_blas_thread_unless_the_operator_chose() -> None:
    env: dict[str, str] = {"MKL_NUM_THREADS": "4"}
    assert one_blas_thread(["/usr/bin/careful-monitor", "run"], env) == ["OPENBLAS_NUM_THREADS"]
    assert env == {"MKL_NUM_THREADS": "4", "OPENBLAS_NUM_THREADS": "1"}
    assert one_blas_thread(["careful-monitor", "bench"], env) == []  # already set: kept


def test_library_imports_are_left_alone() -> None:
    env: dict[str, str] = {}
    assert one_blas_thread(["pytest", "-q"], env) == [] and env == {}
    assert one_blas_thread(["/x/careful-monitor-extra", "run"], env) == [] and env == {}


def test_the_variable_is_set_before_numpy_loads() -> None:
    """`python -m careful_monitor.cli`: the package's import sets it, and numpy (imported after) is not loaded
    before that (the variable only works if it is)."""
    code = ("import sys; sys.argv = ['careful-monitor', 'run']; import careful_monitor, os; "
            "print('numpy' in sys.modules, *(os.environ.get(v) for v in careful_monitor.BLAS_THREAD_VARIABLES))")
    env = {k: v for k, v in os.environ.items() if k not in BLAS_THREAD_VARIABLES}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "1", "1"]
