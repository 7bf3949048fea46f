"""Opt-in tests that need heavy extras; never collected unless asked for (`make test-embeddings`).

`make test` and CI run plain `pytest`, whose testpaths include tests/: without the opt-in variable this
folder's tests are not even collected (so torch is never imported and nothing is reported as skipped).
"""

from __future__ import annotations

import os

#: set by `make test-embeddings` (not CAREFUL_MONITOR_*: that prefix is the config's environment layer)
OPT_IN = "CAREFUL_EMBEDDINGS_TEST"

if os.environ.get(OPT_IN) != "1":
    collect_ignore_glob = ["test_*.py"]
