"""Terminal output of the commands: rich console, progress bar and tables."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from careful_monitor.store.records import DatasetRecord


def printable(value: object) -> str:
    """A user string as shown in a table: control and other non-printable characters as escapes (``\\x1b``)."""
    s = str(value)
    if s.isprintable():
        return s
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in s)


def _literal(s: str):
    """A cell shown as written: rich markup such as ``[bold]`` or ``[link=...]`` is not interpreted."""
    from rich.text import Text

    return Text(s)


def console(quiet: bool = False):
    from rich.console import Console

    return Console(stderr=False, quiet=quiet, highlight=False)


def progress(enabled: bool, *, in_bytes: bool = False):
    """A transient progress bar on a terminal's stderr; disabled when not a terminal or not `enabled`.

    `in_bytes`: the task counts bytes (replay of files of known size): size done/total, rate and ETA.
    """
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = ((DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()) if in_bytes
               else (MofNCompleteColumn(), TimeElapsedColumn()))
    return Progress(TextColumn("{task.description}"), BarColumn(), *columns,
                    disable=not enabled or not sys.stderr.isatty(), console=None, transient=True)


def datasets_table(rows: Sequence[DatasetRecord]):
    from rich.table import Table

    t = Table("name", "role", "anchored_by", "state", "rows", "registered")
    for r in rows:
        t.add_row(*(_literal(printable(c)) for c in (r.name, r.role, r.anchored_by or "", r.state, str(r.n_rows),
                                                      r.registered_at.strftime("%Y-%m-%d %H:%M"))))
    return t


def alerts_table(rows: Sequence[dict[str, Any]]):
    """The alerts as a table when it fits the terminal; else each `alert_id` (what `alerts ack` needs) on a line
    of its own with the details indented under it. An id is never cut or elided."""
    return _AlertsView(rows)


class _AlertsView:
    def __init__(self, rows: Sequence[dict[str, Any]]) -> None:
        self.rows = rows

    @staticmethod
    def _cells(a: dict[str, Any]) -> tuple[str, str, str, str, str, str]:
        ev = a.get("evidence") or []
        top = ", ".join(f"{e['feature']} {e['signal']}" for e in ev[:3])
        return (printable(a["state"]), str(a["since_window"]), str(a["window"]),
                "" if a.get("share") is None else f"{a['share']:.2f}", printable(top),
                printable(a.get("acked_by") or ""))

    def table(self):
        from rich.table import Table

        t = Table("alert_id", "state", "since", "window", "share", "top evidence", "acked")
        t.columns[0].no_wrap = True
        t.columns[0].overflow = "fold"
        for a in self.rows:
            t.add_row(*map(_literal, (printable(a["alert_id"]), *self._cells(a))))
        return t

    def __rich_console__(self, console, options):
        from rich.measure import Measurement
        from rich.text import Text

        table = self.table()
        natural = Measurement.get(console, options.update_width(10_000), table).maximum
        if natural <= options.max_width:
            yield table
            return
        for a in self.rows:
            state, since, window, share, top, acked = self._cells(a)
            yield Text(printable(a["alert_id"]), style="bold", overflow="fold")
            details = f"  {state}" + (f", since window {since}" if since != "None" else "") + f", window {window}"
            details += f", share {share}" if share else ""
            details += f", evidence: {top}" if top else ""
            details += f", acked by {acked}" if acked else ""
            yield Text(details)
