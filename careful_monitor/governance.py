"""Governance: what the CAREFUL cards state, checked against how the config uses each dataset.

`replay` and `run` check it when they load the config (`Pipeline`): a model whose training mix uses a
dataset whose card says `no-training` (or `no-fine-tuning` for `training_kind: fine-tuning`), whose
evaluation list uses a `no-evaluation` set, which monitors against a `no-production-monitoring` set,
which trains on one of its own evaluation sets, or which names a dataset nobody registered, is a
violation. `governance.mode: enforce` (the default) refuses to start (exit 2) naming model, dataset,
rule and fix; `warn` starts, logs one line and exports `careful_monitor_governance_violations`.
Domain-specific slugs from `governance.use_limits` are recorded on the card but not checked here.
"""

from __future__ import annotations

from dataclasses import dataclass

from careful_monitor.config import Config
from careful_monitor.errors import CarefulError, ConfigError
from careful_monitor.store import DatasetRecord, Store

#: the fixed set of `rule` label values of careful_monitor_governance_violations
RULES = ("unregistered", "no-training", "no-fine-tuning", "no-evaluation", "no-production-monitoring",
         "evaluation-in-training")


@dataclass(frozen=True, slots=True)
class Violation:
    model: str
    dataset: str
    rule: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return (f"model {self.model} / dataset {self.dataset}: rule {self.rule}: {self.problem} "
                f"(fix: {self.fix})")


class GovernanceError(ConfigError):
    """The config uses datasets against their cards (governance.mode: enforce): names every violation.

    A config error (exit 2) whose key is the first violating model; the message lists them all.
    """

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations
        self.key, self.fix = f"models.{violations[0].model}", violations[0].fix
        lines = "\n".join(f"  - {v}" for v in violations)
        self.problem = f"governance violation(s), refusing to start:\n{lines}"
        CarefulError.__init__(self, f"{self.problem}\n"
                              "  (or set governance.mode: warn to start anyway and export them as metrics)")


def _limits(rec: DatasetRecord) -> set[str]:
    return set(rec.card.get("use_limits") or ())


def check(cfg: Config, store: Store) -> list[Violation]:
    """Every violation of every configured model, in config order (model, then anchor, mix, evaluation)."""
    out: list[Violation] = []
    for model, m in cfg.models.items():
        def add(dataset: str, rule: str, problem: str, fix: str, model: str = model) -> None:
            out.append(Violation(model, dataset, rule, problem, fix))

        key = f"models.{model}"
        references = list(dict.fromkeys([m.anchor, *m.training_mix]))
        for name in references:
            rec = store.get_dataset(name)
            where = f"{key}.anchor" if name == m.anchor and name not in m.training_mix else f"{key}.training_mix"
            if rec is None:
                add(name, "unregistered", f"{where} names '{name}', which is not registered",
                    f"register it (careful-monitor datasets register <its manifest>) or remove it from {where}")
                continue
            limits = _limits(rec)
            if name in m.training_mix:
                if "no-training" in limits:
                    add(name, "no-training", f"'{name}' is in {key}.training_mix but its card says no-training",
                        f"remove '{name}' from {key}.training_mix (and from the model's next training mix)")
                if m.training_kind == "fine-tuning" and "no-fine-tuning" in limits:
                    add(name, "no-fine-tuning", f"{model} is fine-tuned on '{name}' but its card says no-fine-tuning",
                        f"remove '{name}' from {key}.training_mix")
                if rec.role == "evaluation" or name in m.evaluation:
                    why = "role evaluation" if rec.role == "evaluation" else f"in {key}.evaluation"
                    add(name, "evaluation-in-training", f"'{name}' is an evaluation set ({why}) "
                        f"and in {key}.training_mix",
                        f"train on other data: remove '{name}' from {key}.training_mix")
            if "no-production-monitoring" in limits:
                add(name, "no-production-monitoring",
                    f"'{name}' is a reference the monitor compares live data of {model} with, but its card says "
                    "no-production-monitoring", f"remove '{name}' from {where} or correct its card and re-register it")
        for name in m.evaluation:
            rec = store.get_dataset(name)
            if rec is None:
                add(name, "unregistered", f"{key}.evaluation names '{name}', which is not registered",
                    f"register it (careful-monitor datasets register <its manifest>) "
                    f"or remove it from {key}.evaluation")
            elif "no-evaluation" in _limits(rec):
                add(name, "no-evaluation", f"'{name}' is in {key}.evaluation but its card says no-evaluation",
                    f"evaluate {model} on another set: remove '{name}' from {key}.evaluation")
    return out


def review_due(store: Store) -> list[tuple[str, float]]:
    """(dataset, unix time its next review is due) for every dataset whose card sets lifecycle.review_every_days.

    Due = the dataset's last lifecycle decision in the audit log (registration or re-registration, review,
    reactivation: each is a person looking at it) plus review_every_days days. Retired datasets are never due.
    """
    last: dict[str, float] = {}
    for a in store.audit_log():
        if a.action in ("registered", "re-registered", "review", "reactivate"):
            last[a.dataset] = max(last.get(a.dataset, 0.0), a.at.timestamp())
    out = []
    for rec in store.list_datasets():
        days = (rec.card.get("lifecycle") or {}).get("review_every_days")
        if rec.state == "retired" or not isinstance(days, int | float) or isinstance(days, bool) or days <= 0:
            continue
        since = last.get(rec.name, rec.registered_at.timestamp())
        out.append((rec.name, since + float(days) * 86400.0))
    return sorted(out)
