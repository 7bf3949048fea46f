"""The engine stays pure: importing it pulls in no I/O framework."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ["faust", "kafka", "aiokafka", "sqlalchemy", "prometheus_client", "pandas", "orjson", "pydantic", "aiohttp"]


def test_engine_imports_no_io_framework() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "import careful_monitor.engine as e\n"
        "for m in pkgutil.walk_packages(e.__path__, 'careful_monitor.engine.'):\n"
        "    importlib.import_module(m.name)\n"
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"engine imported: {out.stdout.strip()}"
