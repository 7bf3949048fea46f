"""`careful-monitor datasets`: register CAREFUL cards, list and show them, move them through their lifecycle."""

from __future__ import annotations

import time

import click
import orjson

from careful_monitor.cli.common import config_option, example, handle_errors, load, nonblank, user
from careful_monitor.cli.render import console, datasets_table


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
              help="Allow re-registering a name with another role or anchor (warns which sets to re-register).")
@handle_errors
def datasets_register(config_path: str | None, manifests: tuple[str, ...], by: str | None, as_json: bool,
                      allow_outside: bool, replace: bool) -> None:
    """Validate CAREFUL card MANIFEST(s), profile the data, store card + profile.

    Register the anchor (role: real) before the synthetic sets that name it in `anchored_by`.
    Re-registering a name with a different role or anchor is refused unless --replace.
    A folder stands for every card (*.yaml, *.yml) in it, cards without `anchored_by` first
    (an empty folder registers nothing): `datasets register /data/datasets` in docker-compose.
    """
    from careful_monitor.app import open_store
    from careful_monitor.registry import register

    cfg = load(config_path)
    store = open_store(cfg)
    out = []
    for m in expand_manifests(manifests):
        t0 = time.perf_counter()
        reg = register(cfg, store, m, by=by or user(), allow_outside=allow_outside, replace=replace)
        rec = reg.record
        if as_json:
            out.append({"name": rec.name, "role": rec.role, "rows": rec.n_rows, "features": len(reg.profile.features),
                        "profile_bytes": len(rec.profile), "warnings": reg.warnings})
        else:
            anchored = ", anchored by " + rec.anchored_by if rec.anchored_by else ""
            click.echo(f"registered {rec.name} ({rec.role}{anchored}): "
                       f"{rec.n_rows} rows, {len(reg.profile.features)} features, "
                       f"profile {len(rec.profile) / 1024:.1f} KiB in {time.perf_counter() - t0:.1f}s")
            for w in reg.warnings:
                click.secho(f"  warning: {w}", fg="yellow")
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
    """Show one dataset's card, profile summary and audit log as JSON."""
    from careful_monitor.app import open_store
    from careful_monitor.engine.profile import ReferenceProfile
    from careful_monitor.errors import NotFoundError

    store = open_store(load(config_path))
    rec = store.get_dataset(name)
    if rec is None:
        raise NotFoundError(f"dataset '{name}' is not registered (see `careful-monitor datasets list`)")
    prof = ReferenceProfile.from_bytes(rec.profile)
    doc = {"name": rec.name, "role": rec.role, "anchored_by": rec.anchored_by, "state": rec.state, "rows": rec.n_rows,
           "data_sha256": rec.data_sha256, "card": rec.card, "profile_bytes": len(rec.profile),
           "features": {f: {"kind": p.kind, "n": p.n, "null_rate": round(p.null_rate, 6)}
                        for f, p in prof.features.items()},
           "joint_features": prof.joint.features if prof.joint else [],
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
