"""`careful-monitor datasets`: register CAREFUL cards, list and show them, move them through their lifecycle."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson

from careful_monitor.cli.common import config_option, example, handle_errors, load, nonblank, user
from careful_monitor.cli.render import console, datasets_table

if TYPE_CHECKING:
    from careful_monitor.gates import GateReport


@click.group(epilog=example("careful-monitor datasets list --config cfg.yaml"))
def datasets() -> None:
    """The dataset registry: CAREFUL cards, reference profiles and their lifecycle."""


def expand_manifests(paths: tuple[str, ...]) -> list[str]:
    """Files as given; a folder's cards (*.yaml, *.yml) sorted by name, those without `anchored_by` first."""
    from pathlib import Path

    from careful_monitor.safe_yaml import load_yaml

    out: list[str] = []
    for p in paths:
        folder = Path(p)
        if not folder.is_dir():
            out.append(p)
            continue
        cards = sorted(c for c in folder.iterdir() if c.suffix in (".yaml", ".yml") and c.is_file())

        def anchored(card: Path) -> bool:
            try:
                doc = load_yaml(card)
            except Exception:  # not a card: register() reports it with its own message
                return False
            return isinstance(doc, dict) and bool(doc.get("anchored_by"))

        out.extend(str(c) for c in sorted(cards, key=anchored))  # stable: by name within each group
    return out


@datasets.command("register",
                  epilog=example("careful-monitor datasets register --config cfg.yaml real.yaml synth.yaml"))
@config_option
@click.argument("manifests", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=True))
@click.option("--by", default=None, help="Who registers (audit log; default: the current user).")
@click.option("--json", "as_json", is_flag=True, help="Print the registered records as JSON.")
@click.option("--allow-outside", is_flag=True,
              help="Accept a card whose data path is absolute or leaves the card's folder ('..', symlinks).")
@click.option("--replace", is_flag=True,
              help="Allow re-registering a name with another role or anchor, or an anchor with other data "
                   "(its sets are re-binned on the new grid, or named to re-register).")
@handle_errors
def datasets_register(config_path: str | None, manifests: tuple[str, ...], by: str | None, as_json: bool,
                      allow_outside: bool, replace: bool) -> None:
    """Validate CAREFUL card MANIFEST(s), profile the data, store card + profile.

    Register the anchor (role: real) before the synthetic sets that name it in `anchored_by`.
    Feature kinds come from the config's models that name the set; an anchor stored with other kinds
    is re-profiled from its registered data first (found beside this card, sha256-checked; a changed
    or missing file is an error). Re-registering a name with a different role or anchor, or an anchor
    with other data, is refused unless --replace; a new profile of an anchor re-bins the sets it
    anchors from their registered data (beside its card), or warns naming exactly those to
    re-register (exit 0; `replay` and `run` refuse until they are).
    A folder stands for every card (*.yaml, *.yml) in it, cards without `anchored_by` first
    (an empty folder registers nothing): `datasets register /data/datasets` in docker-compose.
    """
    from careful_monitor import gates
    from careful_monitor.app import open_store
    from careful_monitor.registry import register

    cfg = load(config_path)
    store = open_store(cfg)
    out = []
    for m in expand_manifests(manifests):
        t0 = time.perf_counter()
        reg = register(cfg, store, m, by=by or user(), allow_outside=allow_outside, replace=replace)
        rec = reg.record
        report = gates.load(store, rec.name) if rec.role == "synthetic" else None  # written by register()
        if as_json:
            out.append({"name": rec.name, "role": rec.role, "rows": rec.n_rows, "features": len(reg.profile.features),
                        "profile_bytes": len(rec.profile), "warnings": reg.warnings,
                        **({"gates": report.doc()} if report is not None else {})})
        else:
            anchored = ", anchored by " + rec.anchored_by if rec.anchored_by else ""
            click.echo(f"registered {rec.name} ({rec.role}{anchored}): "
                       f"{rec.n_rows} rows, {len(reg.profile.features)} features, "
                       f"profile {len(rec.profile) / 1024:.1f} KiB in {time.perf_counter() - t0:.1f}s")
            for w in reg.warnings:
                click.secho(f"  warning: {w}", fg="yellow")
            if report is not None:
                _print_report(report)
    if as_json:
        click.echo(orjson.dumps(out).decode())


@datasets.command("list", epilog=example("careful-monitor datasets list --config cfg.yaml --json"))
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def datasets_list(config_path: str | None, as_json: bool) -> None:
    """List registered datasets with role, anchor, state and size."""
    from careful_monitor.app import open_store

    rows = open_store(load(config_path)).list_datasets()
    if as_json:
        click.echo(orjson.dumps([{"name": r.name, "role": r.role, "anchored_by": r.anchored_by, "state": r.state,
                                  "rows": r.n_rows} for r in rows]).decode())
        return
    console().print(datasets_table(rows))


@datasets.command("show", epilog=example("careful-monitor datasets show --config cfg.yaml tickets-synth-v2"))
@config_option
@click.argument("name")
@handle_errors
def datasets_show(config_path: str | None, name: str) -> None:
    """Show one dataset's card, profile summary, last pre-flight gate report (summary) and audit log as JSON.

    `missing_features`: features the config's models monitor that this set's profile lacks
    (feature -> models); they are not compared with it. `joint_features` and `joint_categorical`: the
    numeric and categorical columns of its joint sample (what the `mmd` test and joint attribution see).
    """
    from careful_monitor import gates
    from careful_monitor.app import open_store
    from careful_monitor.engine.profile import ReferenceProfile
    from careful_monitor.errors import NotFoundError
    from careful_monitor.registry import missing_features

    cfg = load(config_path)
    store = open_store(cfg)
    rec = store.get_dataset(name)
    if rec is None:
        raise NotFoundError(f"dataset '{name}' is not registered (see `careful-monitor datasets list`)")
    prof = ReferenceProfile.from_bytes(rec.profile)
    doc = {"name": rec.name, "role": rec.role, "anchored_by": rec.anchored_by, "state": rec.state, "rows": rec.n_rows,
           "data_sha256": rec.data_sha256, "card": rec.card, "profile_bytes": len(rec.profile),
           "features": {f: {"kind": p.kind, "n": p.n, "null_rate": round(p.null_rate, 6)}
                        for f, p in prof.features.items()},
           "joint_features": prof.joint.features if prof.joint else [],
           "joint_categorical": prof.joint.categorical if prof.joint else [],
           "missing_features": missing_features(cfg, name, prof),
           "gates": _gates_summary(gates.load(store, name)),
           "audit": [{"action": a.action, "from": a.from_state, "to": a.to_state, "by": a.by, "reason": a.reason,
                      "at": a.at.isoformat()} for a in store.audit_log(name)]}
    click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())


def _lifecycle(action: str, doc: str, reason: str) -> None:
    @datasets.command(action, help=doc,
                      epilog=example(f'careful-monitor datasets {action} --config cfg.yaml tickets-synth-v2 '
                                     f'--by alice --reason "{reason}"'))
    @config_option
    @click.argument("name")
    @click.option("--by", required=True, callback=nonblank, help="Who decides (kept in the audit log; not empty).")
    @click.option("--reason", required=True, callback=nonblank, help="Why (kept in the audit log; not empty).")
    @handle_errors
    def cmd(config_path: str | None, name: str, by: str, reason: str) -> None:
        from careful_monitor.app import open_store
        from careful_monitor.registry import check_retire

        cfg = load(config_path)
        if action == "retire":
            check_retire(cfg, name)
        rec = open_store(cfg).set_dataset_state(name, action, by=by, reason=reason)
        click.echo(f"{rec.name}: now {rec.state}")


_lifecycle("review", "Put dataset NAME under review (active -> under_review).", "retirement alert")
_lifecycle("retire", "Retire dataset NAME (active|under_review -> retired): its policy state becomes retired "
           "for every model (no further alert; a running replay/run notices within governance.poll_seconds). "
           "A model's anchor cannot be retired.", "collapsed tails")
_lifecycle("reactivate", "Reactivate dataset NAME (under_review|retired -> active).", "regenerated")


@datasets.command("isolation", epilog=example("careful-monitor datasets isolation --config cfg.yaml --json"))
@config_option
@click.option("--model", default=None, help="Only the evaluation sets of this configured model.")
@click.option("--json", "as_json", is_flag=True, help="Print the checked pairs as JSON.")
@handle_errors
def datasets_isolation(config_path: str | None, model: str | None, as_json: bool) -> None:
    """Check that evaluation sets share no rows with the data that trains the models they evaluate.

    Each evaluation set is compared with every dataset in the training mix (and recorded lineage) of
    the models whose `evaluation` list names it, and with the datasets its card's
    `evaluation_isolation.excluded_from` names (or whose cards name it there): exact duplicate rows,
    near-duplicate texts (MinHash, Jaccard >= isolation.threshold) and shared 13-grams of long texts,
    from the signatures stored at registration. Prints rows checked, exact and near duplicates, the
    contamination rate and example row numbers (never the rows) per pair, and stores the results
    (/api/isolation).

    \b
    Exit codes: 0 every rate at most isolation.max_rate; 1 runtime failure;
    2 usage or config (an unregistered set, signatures to recompute); 3 check failed:
    a contamination rate above isolation.max_rate.
    """
    from careful_monitor import isolation
    from careful_monitor.app import open_store
    from careful_monitor.errors import CheckFailedError

    cfg = load(config_path)
    store = open_store(cfg)
    t0 = time.perf_counter()
    report = isolation.check(cfg, store, model=model)
    if as_json:
        click.echo(orjson.dumps(report.docs()).decode())
    else:
        if not report.results:
            click.echo("no evaluation set to check (name them in models.<model>.evaluation or register "
                       "role: evaluation cards)")
        for r in report.results:
            verdict = click.style("FAIL", fg="red") if r.rate > report.max_rate else click.style("ok", fg="green")
            click.echo(f"{r.evaluation} vs {r.dataset}: {r.rows_checked} rows checked, {r.exact} exact, "
                       f"{r.near} near ({r.near_ngram} by shared n-grams only), rate {r.rate:.2%} {verdict}")
            if r.examples["exact"] or r.examples["near"]:
                click.echo(f"  example rows: exact {r.examples['exact']}, near {r.examples['near']}")
        click.echo(f"checked {len(report.results)} pair(s) in {time.perf_counter() - t0:.1f}s")
    for n in report.notes:
        click.secho(f"  warning: {n}", fg="yellow", err=True)
    failed = report.failed
    if failed:
        worst = max(failed, key=lambda r: r.rate)
        raise CheckFailedError(
            f"isolation check failed: {len(failed)} pair(s) above isolation.max_rate {report.max_rate:.2%}, "
            f"worst {worst.evaluation} vs {worst.dataset} at {worst.rate:.2%} (remove the shared rows from one "
            "of them, or re-split the evaluation set)")


def _gates_summary(report: GateReport | None) -> dict[str, Any] | None:
    """What `datasets show` says of the last gate report (the whole report: `datasets check NAME --json`)."""
    if report is None:
        return None
    return {"computed_at": report.computed_at.strftime("%Y-%m-%dT%H:%M:%SZ"), "passed": report.passed,
            "failed": [g.name for g in report.failed],
            "not_evaluated": [g.name for g in report.gates if g.passed is None],
            "card_incomplete": {c.letter: list(c.missing) for c in report.incomplete}}


def _print_report(report: GateReport) -> None:
    """The report as a compact table, one line per gate, then the card's letters and the notes."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from careful_monitor.cli.render import printable

    def num(v: float | None) -> str:
        return "" if v is None else f"{v:.3g}"

    if report.gates:
        t = Table("gate", "value", "limit", "", "detail", title=f"pre-flight gates of {printable(report.dataset)} "
                  f"against {printable(report.anchor or '')}", title_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False)
        for g in report.gates:
            verdict = (Text("n/a", style="dim") if g.passed is None else
                       Text("ok", style="green") if g.passed else Text("FAIL", style="bold red"))
            t.add_row(g.name, num(g.value), num(g.threshold), verdict, Text(printable(g.detail)))
        console().print(t)
    letters = "  ".join(f"{c.letter} {'ok' if c.complete else 'missing ' + ', '.join(c.missing)}" for c in report.card)
    click.echo(f"  card: {letters}")
    for n in report.notes:
        click.echo(f"  note: {n}")


@datasets.command("check", epilog=example("careful-monitor datasets check --config cfg.yaml --strict "
                                          "tickets-synth-v2"))
@config_option
@click.argument("name")
@click.option("--strict", is_flag=True, help="Exit 3 when a gate fails (for CI).")
@click.option("--require-card", is_flag=True, help="With --strict: an incomplete CAREFUL letter fails too.")
@click.option("--data", "data", default=None, type=click.Path(exists=True, dir_okay=True, path_type=Path),
              help="The set's registered data file (sha256 checked), to recompute distance to closest record; "
                   "without it that gate is carried over from the last report on the same data and anchor.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@handle_errors
def datasets_check(config_path: str | None, name: str, strict: bool, require_card: bool, data: Path | None,
                   as_json: bool) -> None:
    """Re-run the pre-flight gates of dataset NAME against its anchor, print and store the report.

    A synthetic set: collapse signatures (spread, tails, coverage, diversity, entropy, confidence)
    of its profile against the anchor's, the exact-copy rate against the anchor's stored row hashes,
    distance to closest record against the anchor's joint sample (a privacy signal), near-duplicate
    clusters inside the set, and card completeness per CAREFUL letter. Any other role: card
    completeness only. The config's governance is checked first, as `replay` and `run` do.

    \b
    Exit codes: 0 checked (no gate failed, or not --strict); 1 runtime failure;
    2 usage or config (unknown dataset, --data not the registered file,
    a governance violation under governance.mode enforce); 3 check failed:
    --strict and a gate failed (with --require-card: or a card letter incomplete).
    """
    from careful_monitor import gates, governance
    from careful_monitor.app import open_store
    from careful_monitor.errors import CheckFailedError

    cfg = load(config_path)
    store = open_store(cfg)
    violations = governance.check(cfg, store)
    if violations and cfg.governance.mode == "enforce":
        raise governance.GovernanceError(violations)
    for v in violations:
        click.secho(f"  warning: governance: {v}", fg="yellow", err=True)
    report = gates.check(cfg, store, name, data=data)
    if as_json:
        click.echo(orjson.dumps(report.doc()).decode())
    else:
        _print_report(report)
        click.echo(f"{report.dataset}: {gates.summary(report)} ({report.seconds:.2f}s)")
    if strict and (report.failed or (require_card and report.incomplete)):
        what = ", ".join([g.name for g in report.failed] + ([f"card {c.letter}" for c in report.incomplete]
                                                            if require_card else []))
        raise CheckFailedError(f"pre-flight gates of {report.dataset} failed: {what} "
                               f"(see `careful-monitor datasets check {report.dataset}`; regenerate or filter the set, "
                               "or complete its card)")
