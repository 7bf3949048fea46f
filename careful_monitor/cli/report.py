"""`careful-monitor report ALERT_ID`: the alert's evidence page as one self-contained file for a ticket."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING

import click

from careful_monitor.cli.common import config_option, example, handle_errors, load

if TYPE_CHECKING:
    from careful_monitor.config import Config
    from careful_monitor.store import Store


@click.command("report", epilog=example("careful-monitor report --config cfg.yaml "
                                        "ticket-router:tickets-synth-collapsed:10:retire_recommended -o alert.html"))
@config_option
@click.argument("alert_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write here (default: <alert id>.html or .md in the current folder).")
@click.option("--format", "fmt", type=click.Choice(["html", "md"]), default="html", show_default=True,
              help="html: the evidence page with its stylesheet and SVG plots inline; md: Markdown with the "
                   "plots as inline SVG images.")
@handle_errors
def report(config_path: str | None, alert_id: str, output: Path | None, fmt: str) -> None:
    """Write ALERT_ID's evidence page (explanation, plots, trend, card, lineage, runbook) to one file.

    The file needs no network: open it in a browser or attach it to the ticket. Exit 2 when the
    alert does not exist.
    """
    from careful_monitor.app import open_store

    cfg = load(config_path)
    with open_store(cfg) as store:
        text = render_report(store, cfg, alert_id, fmt)
    path = output or Path(alert_id.replace(":", "_").replace("/", "_") + f".{fmt}")
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path} ({len(text.encode()) / 1024:.1f} KiB)")


def render_report(store: Store, cfg: Config, alert_id: str, fmt: str) -> str:
    """The report's text: the alert page without forms (html) or its Markdown digest (md)."""
    from careful_monitor.ui import pages, svg

    ctx = pages.alert_context(store, alert_id, cfg)
    if fmt == "html":
        return pages.render("alert.html.j2", **ctx, report=True, inline_css=pages.stylesheet(), session=False,
                            csrf_token="", writable=False, disabled_reason="", flash=None)
    a = ctx["alert"]
    lines = [f"# Alert {a['alert_id']}", "", "```", ctx["explanation"], "```", "", "## Evidence", "",
             "| feature | signal | value | p-value | effect |", "|---|---|---|---|---|"]
    lines += [f"| {e['feature']} | {e['signal']} | {e['value']:.4g} | {e['p_value']:.2g} | {e['effect']:.4g} |"
              for e in a["evidence"]]
    for p in ctx["plots"]:
        data = base64.b64encode(str(svg.histogram(p)).encode()).decode()
        shown = f"anchor, window and {a['dataset']}" if p["synthetic"] is not None else "anchor and window"
        lines += ["", f"### {p['feature']} ({p['kind']})", "",
                  f"![{p['feature']}: {shown}](data:image/svg+xml;base64,{data})"]
        if p["synthetic"] is None:
            why = svg.ABSENT.get(p.get("synthetic_absent") or "not_stored", svg.ABSENT["not_stored"])
            lines += ["", f"No synthetic series: {why}."]
    for j in ctx["joint"]:
        data = base64.b64encode(str(svg.joint_plot(j)).encode()).decode()
        lines += ["", f"### joint ({j['test']}) over windows {j['windows'][0]}..{j['windows'][-1]}", "",
                  f"![joint {j['test']}: effect per window against its floor {j['floor']:.3g}]"
                  f"(data:image/svg+xml;base64,{data})"]
    lines += ["", f"## {ctx['runbook_title'] or 'Runbook'}", "", pages.runbook_section(a["state"])[1], ""]
    return "\n".join(lines)
