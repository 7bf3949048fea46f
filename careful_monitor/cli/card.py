"""`careful-monitor datasets card NAME`: a Datasheets-for-Datasets style card of a registered dataset.

The seven CAREFUL answers (with the fields a complete card still lacks), provenance and lineage,
the profile summary, the pre-flight gates, the evaluation-isolation results and the audit log, as
one self-contained HTML file (the evidence pages' stylesheet inline) or Markdown.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from careful_monitor.cli.common import config_option, example, handle_errors, load

if TYPE_CHECKING:
    from careful_monitor.config import Config
    from careful_monitor.store import Store


@click.command("card", epilog=example("careful-monitor datasets card --config cfg.yaml tickets-synth-v2 "
                                      "--format md -o tickets-synth-v2.md"))
@config_option
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="md", show_default=True,
              help="Markdown, or one self-contained HTML file.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write here instead of standard output.")
@handle_errors
def card(config_path: str | None, name: str, fmt: str, output: Path | None) -> None:
    """Write the data card of dataset NAME (exit 2 when it is not registered)."""
    from careful_monitor.app import open_store

    cfg = load(config_path)
    with open_store(cfg) as store:
        text = render_card(store, cfg, name, fmt)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output} ({len(text.encode()) / 1024:.1f} KiB)")


def _feature_rows(profile_bytes: bytes) -> list[dict[str, Any]]:
    from careful_monitor.engine.profile import (
        CategoricalProfile,
        NumericProfile,
        ProbsProfile,
        ReferenceProfile,
        TextProfile,
    )

    rows = []
    for f, p in ReferenceProfile.from_bytes(profile_bytes).features.items():
        if isinstance(p, NumericProfile):
            summary = f"mean {p.mean:.4g}, sd {p.std:.4g}, range {p.vmin:.4g} .. {p.vmax:.4g}"
        elif isinstance(p, CategoricalProfile):
            summary = f"{len(p.categories)} categories, top: {', '.join(p.categories[:5])}"
        elif isinstance(p, TextProfile):
            summary = f"length {p.len_mean:.1f} +- {p.len_std:.1f} words, top tokens: {', '.join(p.tokens[:8])}"
        elif isinstance(p, ProbsProfile):
            summary = f"{len(p.labels)} labels, confidence mean {p.confidence.mean:.3f}"
        else:  # pragma: no cover
            summary = ""
        rows.append({"name": f, "kind": p.kind, "n": p.n, "null_rate": p.null_rate, "summary": summary})
    return rows


def card_context(store: Store, cfg: Config, name: str) -> dict[str, Any]:
    from careful_monitor import gates
    from careful_monitor.isolation import isolation_doc
    from careful_monitor.lineage import _parent, generation
    from careful_monitor.ui import pages

    ctx = pages.dataset_context(store, name, cfg)  # NotFoundError (exit 2) for an unknown name
    rec = ctx["dataset"]
    report = gates.load(store, name)
    letters = report.card if report is not None else gates.card_completeness(rec.card, rec.role)
    datasets = {r.name: r for r in store.list_datasets()}
    return {**ctx, "features": _feature_rows(rec.profile), "gates": report,
            "missing": {c.letter: list(c.missing) for c in letters if not c.complete},
            "isolation": [r for r in isolation_doc(store) if name in (r["evaluation"], r["dataset"])],
            "generation": generation(datasets, name), "parent": _parent(rec),
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds")}


def render_card(store: Store, cfg: Config, name: str, fmt: str) -> str:
    from careful_monitor.ui import pages

    ctx = card_context(store, cfg, name)
    if fmt == "html":
        return pages.render("card.html.j2", **ctx, report=True, inline_css=pages.stylesheet(), session=False,
                            csrf_token="")
    rec, g = ctx["dataset"], ctx["gates"]
    out = [f"# Data card: {rec.name}", "",
           f"Role {rec.role}" + (f", anchored by {rec.anchored_by}" if rec.anchored_by else "") +
           f"; lifecycle {rec.state}; {rec.n_rows} rows; data `{ctx['card']['data']}`, sha256 `{rec.data_sha256}`.",
           "", "## The seven CAREFUL answers", ""]
    for letter, question, answer in ctx["answers"]:
        missing = ctx["missing"].get(letter)
        out.append(f"- **{letter}** {question} {_md(answer) if answer is not None else '_not stated_'}"
                   + (f" (missing: {', '.join(missing)})" if missing else ""))
    out += ["", "## Provenance and lineage", "",
            f"Generation depth {ctx['generation']}" + (f", generated from {ctx['parent']}" if ctx["parent"] else "")
            + ".", ""]
    out += [f"- {u['model']}: {u['as']}" for u in ctx["used"]] or ["- no configured model names it"]
    trained = ", ".join(f"{m} {v}" for m, v in ctx["trained"]) or "none"
    out += ["", f"Recorded model versions trained on it: {trained}.", "", "## Profile", "",
            "| feature | kind | values | null rate | summary |", "|---|---|---|---|---|"]
    out += [f"| {f['name']} | {f['kind']} | {f['n']} | {f['null_rate']:.2%} | {_md(f['summary'])} |"
            for f in ctx["features"]]
    out += ["", "## Pre-flight gates", ""]
    if g is not None and g.gates:
        out += ["| gate | value | limit | result | detail |", "|---|---|---|---|---|"]
        out += [f"| {x.name} | {_num(x.value)} | {_num(x.threshold)} | "
                f"{'pass' if x.passed else ('FAIL' if x.passed is False else 'not evaluated')} | {_md(x.detail)} |"
                for x in g.gates]
    else:
        out.append("No gate report (gates run for synthetic sets: `careful-monitor datasets check`).")
    out += ["", "## Evaluation isolation", ""]
    if ctx["isolation"]:
        out += ["| evaluation set | against | rows checked | exact | near | rate |", "|---|---|---|---|---|---|"]
        out += [f"| {r['evaluation']} | {r['dataset']} | {r['rows_checked']} | {r['exact']} | {r['near']} | "
                f"{r['rate']:.2%} |" for r in ctx["isolation"]]
    else:
        out.append("No isolation result involves this dataset.")
    out += ["", "## Audit log", "", "| at | action | from | to | by | reason |", "|---|---|---|---|---|---|"]
    out += [f"| {a.at.isoformat(timespec='seconds')} | {a.action} | {a.from_state or ''} | {a.to_state} | "
            f"{_md(a.by)} | {_md(a.reason)} |" for a in ctx["audit"]]
    return "\n".join(out) + "\n"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _md(value: Any) -> str:
    """A value as Markdown table/list text: pipes, markup and newlines neutralised (user-provided strings)."""
    if isinstance(value, dict):
        value = "; ".join(f"{k}: {v}" for k, v in value.items())
    elif isinstance(value, list | tuple):
        value = ", ".join(map(str, value))
    text = " ".join(str(value).split())
    for ch in "\\|<>*_`[]":
        text = text.replace(ch, "\\" + ch)
    return text
