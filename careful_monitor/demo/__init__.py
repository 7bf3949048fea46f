"""The seeded demo: a ticket router whose live traffic drifts toward a collapsed synthetic set.

- `scenario`: the data-generating laws, the cards, the config and the live stream;
- `files`: writes them to a work folder (`write_scenario`);
- `run`: `careful-monitor demo`, which registers the datasets and replays (or, with --kafka,
  consumes) the stream through the same App as `replay` and `run`.
"""

from __future__ import annotations

from careful_monitor.demo.files import write_scenario
from careful_monitor.demo.run import run_demo

__all__ = ["run_demo", "write_scenario"]
