"""The CLI as a process, for the end-to-end and integration tests: run it, spawn it, read its probes.

Every process gets the caller's environment without `CAREFUL_MONITOR_*` variables (a developer's
shell must not change what a test runs), plus `env`. A spawned process writes to a temporary file,
never to a pipe nobody drains: a process blocked on its own log lines (a broker restart logs many)
would also stall its SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

CLI = [sys.executable, "-m", "careful_monitor.cli"]


def clean_env(env: dict[str, str] | None = None) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("CAREFUL_MONITOR_")}
    e.update(env or {})
    return e


def cm(*args: str, cwd: Path | None = None, input: bytes | None = None, env: dict[str, str] | None = None,
       timeout: float = 300) -> subprocess.CompletedProcess:
    """`careful-monitor ARGS` to completion, output captured."""
    return subprocess.run([*CLI, *args], cwd=cwd, input=input, capture_output=True, env=clean_env(env),
                          timeout=timeout)


def spawn(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
          entry: list[str] | None = None) -> subprocess.Popen:
    """`careful-monitor ARGS` in the background (`entry` instead of `python -m careful_monitor.cli`);
    its output so far is `output(proc)`."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process; closed with it
    proc = subprocess.Popen([*(entry or CLI), *args], stdout=log, stderr=subprocess.STDOUT, env=clean_env(env),
                            cwd=cwd)  # Faust writes its g-*-data folders in cwd
    proc.log = log  # type: ignore[attr-defined]
    return proc


def output(proc: subprocess.Popen) -> str:
    """What a spawned process printed so far (the tail is what a failing assertion shows)."""
    log = proc.log  # type: ignore[attr-defined]
    log.seek(0)
    return log.read().decode(errors="replace")


def http_json(url: str) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of a GET; (0, {}) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body or b"{}")
        except ValueError:
            return e.code, {}
    except OSError:
        return 0, {}


def http_status(url: str) -> int:
    """The status of a GET; 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def catches_sigterm(pid: int) -> bool:
    """Whether the process has a SIGTERM handler (SigCgt in /proc/PID/status): careful_monitor's first
    import installs one; before it the interpreter is still starting and the default action is all there is."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next((line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), "0")
    return bool(int(caught, 16) & (1 << (signal.SIGTERM - 1)))
