"""`careful-monitor db upgrade` run by several processes at once on the real PostgreSQL (issue 14: the
Kubernetes migrate Job and replicas, or two Jobs, must not race): the advisory lock serialises them,
every process exits 0 and the schema is applied once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from careful_monitor.store import Store

pytest_plugins = ["tests.integration.conftest_postgres"]

pytestmark = pytest.mark.integration


def test_concurrent_db_upgrades_apply_the_schema_once(fresh_postgres_url: str, tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"store: {{url: '{fresh_postgres_url}'}}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREFUL_MONITOR_")}
    procs = [subprocess.Popen([sys.executable, "-m", "careful_monitor.cli", "db", "upgrade", "--config", str(cfg)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
             for _ in range(3)]
    results = [(p.wait(timeout=180), p.stdout.read().decode(), p.stderr.read().decode()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert all(rc == 0 for rc, _, _ in results), results
    outs = [out for _, out, _ in results]
    assert sum("upgraded schema" in o for o in outs) == 1, outs  # one applied it ...
    assert sum("already at head" in o for o in outs) == 2, outs  # ... the others waited and found it done
    with Store(fresh_postgres_url, auto_migrate=False) as store:  # a worker with store.auto_migrate: false starts
        assert not store.pending_migrations()
