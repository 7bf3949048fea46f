"""Terminal output of the commands: rich console, progress bar and tables."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from careful_monitor.store.records import DatasetRecord


def console(quiet: bool = False):
    from rich.console import Console

    return Console(stderr=False, quiet=quiet, highlight=False)


def progress(enabled: bool):
    """A transient progress bar on a terminal's stderr; disabled when not a terminal or not `enabled`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    disable=not enabled or not sys.stderr.isatty(), console=None, transient=True)


def datasets_table(rows: Sequence[DatasetRecord]):
    from rich.table import Table

    t = Table("name", "role", "anchored_by", "state", "rows", "registered")
    for r in rows:
        t.add_row(r.name, r.role, r.anchored_by or "", r.state, str(r.n_rows),
                  r.registered_at.strftime("%Y-%m-%d %H:%M"))
    return t


def alerts_table(rows: Sequence[dict[str, Any]]):
    from rich.table import Table

    t = Table("alert_id", "state", "since", "window", "share", "top evidence", "acked")
    for a in rows:
        ev = a.get("evidence") or []
        top = ", ".join(f"{e['feature']} {e['signal']}" for e in ev[:3])
        t.add_row(a["alert_id"], a["state"], str(a["since_window"]), str(a["window"]),
                  "" if a.get("share") is None else f"{a['share']:.2f}", top, a.get("acked_by") or "")
    return t
