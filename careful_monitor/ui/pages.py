"""The evidence pages: what each page shows, gathered from the store, and rendered with Jinja2 on the server.

`alert_context` (and the other `*_context` functions) read the store and return plain data;
`render` turns a context into HTML (autoescaped: every user-provided string is escaped) or, for
`report --format md`, Markdown. The aiohttp routes are in `careful_monitor.ui.routes`; `report`
renders the same alert page without forms, with the stylesheet inline.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from careful_monitor.contracts import public_card
from careful_monitor.engine.comparisons.catalogue import SIGNATURE_NAMES
from careful_monitor.errors import NotFoundError
from careful_monitor.evidence import joint_trend, with_absent_reason
from careful_monitor.explain import card_answers, explain
from careful_monitor.ui import svg

if TYPE_CHECKING:
    from careful_monitor.config import Config
    from careful_monitor.store import Store

#: windows shown in trends and the model page
RECENT_WINDOWS = 30
#: the runbook section of each alert state (careful_monitor/runbooks.md, also docs/runbooks.md)
RUNBOOK_SECTIONS = {"retire_recommended": "CarefulDatasetRetireRecommended", "anchor_stale": "CarefulAnchorStale"}


def alert_href(alert_id: str) -> str:
    """The alert page's path, the id percent-encoded (it holds ':' and user-chosen names)."""
    return "/ui/alerts/" + quote(alert_id, safe="")


@cache
def _env() -> Environment:
    env = Environment(loader=PackageLoader("careful_monitor.ui", "templates"),
                      autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["alert_href"] = alert_href
    env.filters["quote"] = lambda s: quote(str(s), safe="")
    env.globals["histogram"] = svg.histogram
    env.globals["joint_plot"] = svg.joint_plot
    env.globals["absent_reason"] = lambda code: svg.ABSENT.get(code or "not_stored", svg.ABSENT["not_stored"])
    env.globals["joint_effect"] = lambda test: svg.JOINT_EFFECTS.get(test, "effect")
    return env


@cache
def stylesheet() -> str:
    return resources.files("careful_monitor.ui").joinpath("static/style.css").read_text(encoding="utf-8")


def render(template: str, **context: Any) -> str:
    return _env().get_template(template).render(**context)


@cache
def runbooks() -> str:
    return resources.files("careful_monitor").joinpath("runbooks.md").read_text(encoding="utf-8")


def runbook_section(state: str) -> tuple[str, str]:
    """(title, Markdown) of the runbook section for an alert state; ('', '') when there is none."""
    name = RUNBOOK_SECTIONS.get(state)
    if name is None:
        return "", ""
    m = re.search(rf"^## ({re.escape(name)}[^\n]*)\n(.*?)(?=^## |\Z)", runbooks(), re.M | re.S)
    if not m:
        return "", ""
    body = re.sub(r'^<a id="[^"]*"></a>\s*$', "", m.group(2), flags=re.M)  # anchors for the rules' runbook_url
    return m.group(1), body.strip()


def markdown_html(text: str) -> Markup:
    """CommonMark to HTML with raw HTML disabled (markdown-it-py, which rich already brings)."""
    from markdown_it import MarkdownIt

    return Markup(MarkdownIt("commonmark", {"html": False}).render(text))


def _state_runs(windows: Sequence[Mapping[str, Any]], dataset: str) -> list[dict[str, Any]]:
    """The dataset's policy state over windows as runs: [{state, from, to}], oldest first."""
    runs: list[dict[str, Any]] = []
    for w in windows:
        state = (w.get("states") or {}).get(dataset)
        if state is None:
            continue
        if runs and runs[-1]["state"] == state and runs[-1]["to"] == w["window"] - 1:
            runs[-1]["to"] = w["window"]
        else:
            runs.append({"state": state, "from": w["window"], "to": w["window"]})
    return runs


def _attribution_trend(windows: Sequence[Mapping[str, Any]], dataset: str) -> dict[str, list[float | None]]:
    share, affinity = [], []
    for w in windows:
        a = next((x for x in w.get("attribution") or [] if x["dataset"] == dataset), None)
        share.append(None if a is None else (a["share"] if a["share"] is not None else a.get("group_share")))
        affinity.append(None if a is None else a["affinity"])
    return {"share": share, "affinity": affinity}


def _thresholds(cfg: Config | None) -> dict[str, float]:
    from careful_monitor.config import AttributionConfig

    a = cfg.policy.attribution if cfg is not None else AttributionConfig()
    return {"min share": a.min_share, "min affinity": a.min_affinity}


def _min_effect(cfg: Config | None) -> dict[str, float]:
    from careful_monitor.config import MinEffect

    return (cfg.policy.min_effect if cfg is not None else MinEffect()).model_dump()


def alert_context(store: Store, alert_id: str, cfg: Config | None = None) -> dict[str, Any]:
    """Everything the alert page shows. Raises NotFoundError for an unknown alert."""
    from careful_monitor.lineage import lineage_doc

    alert = store.get_alert(alert_id)
    model, dataset = alert["model"], alert["dataset"]
    windows = [w for w in store.last_windows(model, RECENT_WINDOWS * 4) if w["window"] <= alert["window"]]
    windows = windows[-RECENT_WINDOWS:]
    xs = [w["window"] for w in windows]
    trend = (svg.trend(f"{dataset}: share and affinity over windows {xs[0]}..{xs[-1]}", xs,
                       _attribution_trend(windows, dataset), _thresholds(cfg))
             if xs and alert["state"] == "retire_recommended" else None)
    rec = store.get_dataset(dataset)
    title, runbook = runbook_section(alert["state"])
    return {
        "alert": alert, "explanation": "\n".join(explain(alert, evidence=12)),
        "plots": [with_absent_reason(p, alert["state"]) for p in store.alert_plots(alert_id)],
        "joint": joint_trend(windows, alert, _min_effect(cfg)),
        "trend": trend, "timeline": _state_runs(windows, dataset),
        "dataset": rec, "answers": card_answers(rec.card) if rec else [],
        "audit": store.audit_log(dataset) if rec else [],
        "lineage": lineage_doc(store, model), "runbook_title": title,
        "runbook": markdown_html(runbook) if runbook else None,
    }


def alerts_context(store: Store, *, model: str | None, dataset: str | None, state: str | None) -> dict[str, Any]:
    every = store.list_alerts()
    shown = [a for a in every if (model is None or a["model"] == model) and (dataset is None or a["dataset"] == dataset)
             and (state is None or a["state"] == state or (state == "open" and not a["acked_by"])
                  or (state == "acknowledged" and a["acked_by"]))]
    shown.sort(key=lambda a: (a["created_at"], a["window"]), reverse=True)  # newest first
    return {"alerts": shown, "models": sorted({a["model"] for a in every}),
            "datasets": sorted({a["dataset"] for a in every}),
            "states": ["open", "acknowledged", "retire_recommended", "anchor_stale"],
            "selected": {"model": model, "dataset": dataset, "state": state}}


def model_context(store: Store, model: str, *, last: int = RECENT_WINDOWS) -> dict[str, Any]:
    windows = store.last_windows(model, last)
    xs = [w["window"] for w in windows]
    signals: dict[str, dict[str, list[float | None]]] = {}
    for i, w in enumerate(windows):
        anchor = next((t["reference"] for t in w.get("tests") or []), None)
        for t in w.get("tests") or []:
            if t["test"] in SIGNATURE_NAMES and t["reference"] == anchor:
                series = signals.setdefault(t["test"], {})
                series.setdefault(t["feature"], [None] * len(windows))[i] = t["statistic"]
    trends = [(sig, svg.trend(f"{sig} per window", xs, lines, signal=sig)) for sig, lines in sorted(signals.items())]
    return {"model": model, "windows": list(reversed(windows)), "trends": trends,
            "alerts": store.list_alerts(model=model)}


def dataset_context(store: Store, name: str, cfg: Config | None = None) -> dict[str, Any]:
    rec = store.get_dataset(name)
    if rec is None:
        raise NotFoundError(f"no dataset named '{name}' is registered")
    used = []
    if cfg is not None:
        for m, c in cfg.models.items():
            roles = [r for r, hit in (("anchor", c.anchor == name), ("training mix", name in c.training_mix),
                                      ("evaluation", name in c.evaluation)) if hit]
            if roles:
                used.append({"model": m, "as": ", ".join(roles)})
    trained = sorted({(r.model, r.version) for r in store.lineage() if r.dataset == name})
    return {"dataset": rec, "card": public_card(rec.card), "answers": card_answers(rec.card),
            "audit": store.audit_log(name), "used": used, "trained": trained,
            "alerts": store.list_alerts(dataset=name)}
