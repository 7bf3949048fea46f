"""`careful-monitor demo --serve` as a test fixture: started, waited for, stopped with SIGTERM.

Shared by the HTTP-security e2e tests and the browser tests. Output goes to a file, never a pipe
(nobody would drain a pipe while the tests run).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path


def write_token(root: Path, token: str) -> Path:
    """The token in `root/token`, mode 0600 (what http.auth_token_file reads)."""
    token_file = root / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    return token_file


@contextlib.contextmanager
def served_demo(root: Path, env: Mapping[str, str] = {}, *, windows: int = 14,
                deadline_s: float = 150) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """(base URL, process, output file) of a demo serving under `root/demo`, with `env` added to a
    CAREFUL_MONITOR_-free environment; SIGTERM (then kill) when the block ends."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("CAREFUL_MONITOR_")} | dict(env)
    out = root / "demo.out"
    with out.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "careful_monitor.cli", "demo", "--workdir", str(root / "demo"),
                                 "--port", "0", "--serve", "--windows", str(windows)],
                                stdout=fh, stderr=subprocess.STDOUT, env=full)
    try:
        deadline = time.monotonic() + deadline_s
        url = None
        while time.monotonic() < deadline and proc.poll() is None:
            text = out.read_text(errors="replace")
            m = re.search(r"metrics / API: (http://\S+)/metrics", text)
            if m and "serving until Ctrl-C" in text:
                url = m.group(1)
                break
            time.sleep(0.3)
        assert url, "demo did not start serving:\n" + out.read_text(errors="replace")
        yield url, proc, out
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
