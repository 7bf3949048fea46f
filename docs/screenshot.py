"""Regenerate docs/img/alert-page.png: the demo's alert page in headless Chromium (`make docs`).

Needs Debian's chromium (deploy/services.sh install) and the test extra (Playwright).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

OUT = Path(__file__).parent / "img" / "alert-page.png"
ALERT = "ticket-router:tickets-synth-collapsed:10:retire_recommended"


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "demo.out"
        with log.open("wb") as fh:
            demo = subprocess.Popen([sys.executable, "-m", "careful_monitor.cli", "demo", "--workdir", f"{tmp}/demo",
                                     "--port", "0", "--serve"], stdout=fh, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while "serving until" not in log.read_text() and time.monotonic() < deadline and demo.poll() is None:
                time.sleep(0.3)
            m = re.search(r"metrics / API: (http://\S+)/metrics", log.read_text())
            if not m:
                sys.exit("the demo did not start serving:\n" + log.read_text())
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1100, "height": 1500})
                page.goto(m.group(1) + "/ui/alerts/" + urllib.parse.quote(ALERT, safe=""))
                OUT.parent.mkdir(exist_ok=True)
                page.screenshot(path=str(OUT))
                browser.close()
        finally:
            demo.send_signal(signal.SIGTERM)
            demo.wait(30)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
