"""`careful-monitor lineage`: record which datasets trained a model version, show a model's lineage tree."""

from __future__ import annotations

import click
import orjson

from careful_monitor.cli.common import config_option, example, handle_errors, load, user


@click.group(epilog=example("careful-monitor lineage show --config cfg.yaml ticket-router"))
def lineage() -> None:
    """Which model version was trained on which datasets, with what shares (the source of truth).

    The config's training_mix stays what the monitor compares live data with; a start whose
    training_mix differs from the latest recorded version logs a warning.
    """


@lineage.command("record", epilog=example(
    "careful-monitor lineage record --config cfg.yaml ticket-router 8 "
    "--mix tickets-real=0.6 --mix tickets-synth-v2=0.4 --by alice"))
@config_option
@click.argument("model")
@click.argument("version")
@click.option("--mix", "mix_items", multiple=True, metavar="NAME=SHARE",
              help="A registered dataset and its share of the training mix, in (0, 1]; repeat it: shares sum to 1 "
                   "(within 0.01).")
@click.option("--by", default=None, help="Who records it (default: the current user).")
@handle_errors
def lineage_record(config_path: str | None, model: str, version: str, mix_items: tuple[str, ...],
                   by: str | None) -> None:
    """Record that MODEL VERSION was trained on the --mix datasets.

    A version is recorded once: recording it again with the same mix changes nothing, with
    another mix is refused. Every dataset must be registered; a retired one is refused
    (a governance violation: remove it or `datasets reactivate` it). Exit 2 on any refusal.
    """
    from careful_monitor import lineage as lin
    from careful_monitor.app import open_store

    mix = lin.parse_mix(mix_items)
    store = open_store(load(config_path))
    shown = ", ".join(f"{d}={s:g}" for d, s in mix.items())
    if lin.record(store, model, version, mix, by=by or user()):
        click.echo(f"recorded {model} version {version}: {shown}")
    else:
        click.echo(f"{model} version {version} is already recorded with this mix: unchanged")


@lineage.command("show", epilog=example("careful-monitor lineage show --config cfg.yaml ticket-router --json"))
@config_option
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the same as /api/models/<model>/lineage).")
@handle_errors
def lineage_show(config_path: str | None, model: str, as_json: bool) -> None:
    """Show MODEL's recorded versions, oldest first, with their mix.

    Per dataset: its share, role and generation depth (0 real; a synthetic set 1 + its
    provenance.parent's depth); per version the fresh-real share (real datasets registered since
    the previous version was recorded).
    """
    from careful_monitor.app import open_store
    from careful_monitor.lineage import lineage_doc

    doc = lineage_doc(open_store(load(config_path)), model)
    if as_json:
        click.echo(orjson.dumps(doc).decode())
        return
    if not doc["versions"]:
        click.echo(f"{model}: no version recorded (careful-monitor lineage record {model} VERSION --mix NAME=SHARE)")
        return
    click.echo(model)
    for i, v in enumerate(doc["versions"]):
        last_v = i == len(doc["versions"]) - 1
        click.echo(f"{'└─' if last_v else '├─'} version {v['version']}  recorded {v['recorded_at']} by "
                   f"{v['recorded_by']}  fresh-real share {v['fresh_real_share']:.2f}")
        for j, d in enumerate(v["mix"]):
            branch = "└─" if j == len(v["mix"]) - 1 else "├─"
            parent = f" <- {d['parent']}" if d["parent"] else ""
            fresh = ", fresh" if d["fresh_real"] else ""
            state = f", {d['state']}" if d["state"] not in (None, "active") else ""
            click.echo(f"{'   ' if last_v else '│  '}{branch} {d['dataset']}  {d['share']:.2f}  "
                       f"{d['role']}, generation {d['generation']}{parent}{fresh}{state}")
