"""Governance (issue 10): use limits enforced, evaluation sets, and a lifecycle that closes the loop."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from careful_monitor import governance
from careful_monitor.cards import USE_LIMITS, load_card
from careful_monitor.config import load_config
from careful_monitor.demo import scenario, write_scenario
from careful_monitor.engine.types import PolicyState
from careful_monitor.errors import ConfigError, ManifestError, RegistryError
from careful_monitor.registry import check_retire, register
from careful_monitor.runtime.pipeline import Pipeline
from careful_monitor.sinks.prometheus import Metrics
from careful_monitor.store import Store

M, ANCHOR, COLLAPSED, FAITHFUL = scenario.MODEL, scenario.ANCHOR, scenario.COLLAPSED, scenario.FAITHFUL


@pytest.fixture(scope="module")
def registered(tmp_path_factory) -> tuple[Path, dict[str, Path], list[bytes]]:
    d = tmp_path_factory.mktemp("governance")
    (d / "datasets").mkdir()
    paths = write_scenario(d, seed=11, windows=12)
    cfg = load_config(paths["config"], environ={})
    with Store(cfg.store_url) as store:
        for name in (ANCHOR, COLLAPSED, FAITHFUL):
            register(cfg, store, paths[f"card:{name}"], by="test")
    return paths["config"], paths, paths["events"].read_bytes().splitlines()


@pytest.fixture
def setup(registered, tmp_path):
    """A copy of the registered store per test."""
    cfg_path, paths, lines = registered
    cfg = load_config(cfg_path, environ={})
    copy = tmp_path / "careful.db"
    copy.write_bytes(Path(cfg.store_url.removeprefix("sqlite:///")).read_bytes())
    cfg = cfg.model_copy(update={"store": cfg.store.model_copy(update={"url": f"sqlite:///{copy}"})})
    store = Store(cfg.store_url)
    yield cfg, store, paths, lines
    store.close()


def _card(paths: dict[str, Path], base: str, **changes) -> Path:
    """A variant of one of the demo's cards, written beside it (so its data path stays inside the folder)."""
    src = paths[f"card:{base}"]
    card = {**yaml.safe_load(src.read_text()), **changes}
    out = src.parent / f"variant-{card['name']}-{abs(hash(str(changes)))}.yaml"
    out.write_text(yaml.safe_dump(card, sort_keys=False))
    return out


def _with_model(cfg, **changes):
    model = cfg.models[M].model_copy(update=changes)
    return cfg.model_copy(update={"models": {M: model}})


def _governance(cfg, **changes):
    return cfg.model_copy(update={"governance": cfg.governance.model_copy(update=changes)})


def _pipeline(cfg, store, metrics=None) -> Pipeline:
    return Pipeline(cfg, store, metrics or Metrics(CollectorRegistry()), clock=lambda: 1_800_000_000.0)


# --- A. use limits ------------------------------------------------------------------------------

def test_an_unknown_use_limit_is_a_card_error_naming_the_field_and_the_allowed_values(setup) -> None:
    _, _, paths, _ = setup
    card = _card(paths, FAITHFUL, use_limits=["no-trainig"])
    with pytest.raises(ManifestError) as err:
        load_card(card)
    assert err.value.field == "use_limits" and err.value.exit_code == 2
    assert "no-trainig" in err.value.problem and all(slug in err.value.problem for slug in USE_LIMITS)
    assert not err.value.problem.startswith("Value error")


def test_a_domain_specific_slug_is_accepted_once_the_config_declares_it(setup) -> None:
    cfg, store, paths, _ = setup
    card = _card(paths, FAITHFUL, use_limits=["no-evaluation", "no-pricing-model"])
    with pytest.raises(ManifestError, match=r"governance\.use_limits"):
        register(cfg, store, card, by="test")
    declared = _governance(cfg, use_limits=["no-pricing-model"])
    assert register(declared, store, card, by="test").record.card["use_limits"] == ["no-evaluation",
                                                                                      "no-pricing-model"]
    _pipeline(declared, store)  # recorded, not enforced: the monitor cannot know a model's purpose
    with pytest.raises(ConfigError, match=r"governance\.use_limits"):
        load_config(None, environ={}, overrides={"governance": {"use_limits": ["Pricing"]}})


def test_a_no_training_set_in_the_training_mix_refuses_to_start_naming_model_dataset_rule_and_fix(setup) -> None:
    cfg, store, paths, _ = setup
    register(cfg, store, _card(paths, FAITHFUL, use_limits=["no-training"]), by="test")
    with pytest.raises(governance.GovernanceError) as err:
        _pipeline(cfg, store)
    assert err.value.exit_code == 2
    [v] = err.value.violations
    assert (v.model, v.dataset, v.rule) == (M, FAITHFUL, "no-training")
    text = str(err.value)
    assert M in text and FAITHFUL in text and "no-training" in text and "fix: remove" in text
    assert "governance.mode: warn" in text


def test_warn_mode_starts_logs_one_line_and_exports_the_violation(setup, caplog) -> None:
    cfg, store, paths, _ = setup
    register(cfg, store, _card(paths, FAITHFUL, use_limits=["no-training", "no-production-monitoring"]), by="t")
    metrics = Metrics(CollectorRegistry())
    with caplog.at_level("WARNING", logger="careful_monitor.runtime.pipeline"):
        _pipeline(_governance(cfg, mode="warn"), store, metrics)
    lines = [r for r in caplog.records if "governance" in r.getMessage()]
    assert len(lines) == 1 and "2 violation(s)" in lines[0].getMessage()
    text = metrics.exposition().decode()
    for rule in ("no-training", "no-production-monitoring"):
        assert (f'careful_monitor_governance_violations{{dataset="{FAITHFUL}",model="{M}",rule="{rule}"}} 1.0'
                in text)
    assert set(governance.RULES) >= {"no-training", "no-production-monitoring"}


def test_fine_tuning_is_checked_against_no_fine_tuning_only_when_the_model_is_fine_tuned(setup) -> None:
    cfg, store, paths, _ = setup
    register(cfg, store, _card(paths, FAITHFUL, use_limits=["no-fine-tuning"]), by="test")
    assert governance.check(cfg, store) == []
    [v] = governance.check(_with_model(cfg, training_kind="fine-tuning"), store)
    assert (v.dataset, v.rule) == (FAITHFUL, "no-fine-tuning")


def test_the_demo_config_and_cards_have_no_violation(setup) -> None:
    cfg, store, _, _ = setup
    assert governance.check(cfg, store) == []  # the collapsed set says no-evaluation and no model evaluates on it


# --- B. evaluation datasets ---------------------------------------------------------------------

def test_an_evaluation_set_registers_and_warns_when_no_model_names_it(setup) -> None:
    cfg, store, paths, _ = setup
    card = _card(paths, ANCHOR, name="tickets-eval", role="evaluation")
    reg = register(cfg, store, card, by="test")
    assert reg.record.role == "evaluation"
    assert any("not in any model's evaluation list" in w for w in reg.warnings)
    named = _with_model(cfg, evaluation=["tickets-eval"])
    assert not any("evaluation list" in w for w in register(named, store, card, by="test").warnings)
    assert governance.check(named, store) == []
    _pipeline(named, store)  # an evaluation set is not a reference of the monitor


def test_an_unregistered_or_no_evaluation_set_in_the_evaluation_list_is_a_violation(setup) -> None:
    cfg, store, _, _ = setup
    bad = _with_model(cfg, evaluation=["nobody-registered-me", COLLAPSED])
    found = {(v.dataset, v.rule) for v in governance.check(bad, store)}
    # the collapsed set also trains the model: evaluating on it breaks isolation too
    assert found == {("nobody-registered-me", "unregistered"), (COLLAPSED, "no-evaluation"),
                     (COLLAPSED, "evaluation-in-training")}
    with pytest.raises(governance.GovernanceError, match="nobody-registered-me"):
        _pipeline(bad, store)


def test_an_evaluation_set_in_the_training_mix_is_a_violation(setup) -> None:
    cfg, store, paths, _ = setup
    register(cfg, store, _card(paths, ANCHOR, name="tickets-eval", role="evaluation"), by="test")
    mix = {**cfg.models[M].training_mix, "tickets-eval": 0.1}
    rules = {(v.dataset, v.rule) for v in governance.check(_with_model(cfg, training_mix=mix), store)}
    assert rules == {("tickets-eval", "evaluation-in-training")}


# --- C. lifecycle --------------------------------------------------------------------------------

def _replay(p: Pipeline, lines: list[bytes]):
    report = p.handle(lines)
    p.persist(report.outcomes)
    return report.outcomes


def test_a_retired_set_raises_no_alert_but_stays_in_the_attribution_basis(setup) -> None:
    cfg, store, _, lines = setup
    before = _replay(_pipeline(cfg, store), lines)
    assert [a.dataset for o in before for a in o.alerts] == [COLLAPSED]  # the drift this scenario plants
    store.reset_states()
    # the same events into a store where the collapsed set is retired
    cfg_path = Path(cfg.store_url.removeprefix("sqlite:///"))
    fresh = cfg_path.with_name("fresh.db")
    with Store(f"sqlite:///{fresh}") as other:
        for rec in store.list_datasets():
            other.put_dataset(name=rec.name, role=rec.role, anchored_by=rec.anchored_by, card=rec.card,
                              profile=rec.profile, n_rows=rec.n_rows, data_sha256=rec.data_sha256, by="t")
        other.set_dataset_state(COLLAPSED, "retire", by="t", reason="collapsed")
        c2 = cfg.model_copy(update={"store": cfg.store.model_copy(update={"url": f"sqlite:///{fresh}"})})
        metrics = Metrics(CollectorRegistry())
        p = _pipeline(c2, other, metrics)
        assert p.monitors[M].states()[COLLAPSED] == PolicyState.RETIRED
        after = _replay(p, lines)
    assert [a for o in after for a in o.alerts] == []  # no further alert, and no anchor_stale either
    assert all(o.result.states[COLLAPSED] == PolicyState.RETIRED for o in after)
    shares = lambda outs: [o.result.attribution_of(COLLAPSED).share for o in outs]  # noqa: E731
    assert shares(after) == shares(before) and any(s is not None and s > 0.1 for s in shares(after))
    assert f'careful_monitor_dataset_state{{dataset="{COLLAPSED}",model="{M}"}} 4.0' in metrics.exposition().decode()


def test_a_running_pipeline_picks_up_retire_and_reactivate_within_poll_seconds(setup) -> None:
    cfg, store, _, lines = setup
    now = [0.0]
    metrics = Metrics(CollectorRegistry())
    p = Pipeline(cfg, store, metrics, clock=lambda: 1_800_000_000.0, poll_clock=lambda: now[0])
    gauge = lambda: metrics.dataset_state.labels(M, COLLAPSED)._value.get()  # noqa: E731
    store.set_dataset_state(COLLAPSED, "retire", by="cli", reason="collapsed")
    now[0] = cfg.governance.poll_seconds - 1
    assert p.poll_lifecycle_if_due() == [] and gauge() == 0
    now[0] = cfg.governance.poll_seconds
    p.handle(lines[:10])  # the poll rides on the next batch (and on the Kafka loop's idle polls)
    assert gauge() == 4 and p.monitors[M].states()[COLLAPSED] == PolicyState.RETIRED and M in p.dirty
    # the snapshot keeps the state (engine state codec), and a restart re-reads it from the registry anyway
    p.persist([])
    assert _pipeline(cfg, store).monitors[M].states()[COLLAPSED] == PolicyState.RETIRED
    store.set_dataset_state(COLLAPSED, "reactivate", by="cli", reason="regenerated")
    now[0] += cfg.governance.poll_seconds
    assert p.poll_lifecycle_if_due() == [(M, COLLAPSED)] and gauge() == 0
    assert p.monitors[M].states()[COLLAPSED] == PolicyState.OK


def test_under_review_alerts_as_usual(setup) -> None:
    cfg, store, _, lines = setup
    store.set_dataset_state(COLLAPSED, "review", by="cli", reason="look")
    assert [a.dataset for o in _replay(_pipeline(cfg, store), lines) for a in o.alerts] == [COLLAPSED]


def test_retiring_a_models_anchor_is_refused_naming_register_replace(setup) -> None:
    cfg, _, _, _ = setup
    with pytest.raises(RegistryError, match=r"datasets register --replace") as err:
        check_retire(cfg, ANCHOR)
    assert M in str(err.value) and err.value.exit_code == 2
    check_retire(cfg, COLLAPSED)


def test_re_registering_with_another_role_or_anchor_needs_replace(setup) -> None:
    cfg, store, paths, _ = setup
    as_synthetic = _card(paths, ANCHOR, role="synthetic", anchored_by=FAITHFUL, provenance={"generator": "g"})
    with pytest.raises(RegistryError, match="--replace"):
        register(cfg, store, as_synthetic, by="test")
    assert store.get_dataset(ANCHOR).role == "real"
    other_anchor = _card(paths, COLLAPSED, anchored_by="tickets-real-2")
    with pytest.raises(RegistryError, match="anchored_by tickets-real -> tickets-real-2"):
        register(cfg, store, other_anchor, by="test")
    # same role and anchor: a plain re-registration, as before
    register(cfg, store, paths[f"card:{COLLAPSED}"], by="test")
    # --replace of an anchor's role says which synthetic sets need re-registering
    as_eval = _card(paths, ANCHOR, role="evaluation")
    reg = register(cfg, store, as_eval, by="test", replace=True)
    assert reg.record.role == "evaluation"
    [dep] = [w for w in reg.warnings if "re-register" in w]
    assert COLLAPSED in dep and FAITHFUL in dep


def test_the_retired_state_survives_the_engine_snapshot_codec() -> None:
    from careful_monitor.engine.policy import Policy
    from careful_monitor.engine.state import decode_state, encode_state

    p = Policy(["synth", "other"], "real")
    p.step(0, {"synth"})
    assert p.set_retired({"synth"}) == ["synth"]
    q = Policy(["synth", "other"], "real")
    q.restore(decode_state(encode_state({"policy": p.state()}))["policy"])
    assert q.states == p.states and q.state_of("synth") == PolicyState.RETIRED
    assert q.step(1, {"synth"}) == [] and q.detector_watch(1, ["synth"]) == []
    assert PolicyState.RETIRED.code == 4 and not PolicyState.RETIRED.alerting


def test_review_due_from_the_card_and_the_last_decision(setup) -> None:
    """lifecycle.review_every_days -> due = last registration/review/reactivation + days; retired: never due."""
    cfg, store, _, _ = setup
    due = dict(governance.review_due(store))
    recs = {r.name: r for r in store.list_datasets()}
    days = {n: recs[n].card["lifecycle"]["review_every_days"] for n in (ANCHOR, COLLAPSED, FAITHFUL)}
    last = {a.dataset: a.at.timestamp() for a in store.audit_log()}
    for name in (ANCHOR, COLLAPSED, FAITHFUL):
        assert due[name] == pytest.approx(last[name] + days[name] * 86400.0), name
    store.set_dataset_state(COLLAPSED, "review", by="alice", reason="quarterly")
    reviewed = store.audit_log(COLLAPSED)[-1].at.timestamp()
    assert dict(governance.review_due(store))[COLLAPSED] == pytest.approx(reviewed + days[COLLAPSED] * 86400.0)
    store.set_dataset_state(FAITHFUL, "retire", by="alice", reason="regenerated")
    assert FAITHFUL not in dict(governance.review_due(store))
    metrics = Metrics(CollectorRegistry())
    Pipeline(cfg, store, metrics)  # exported at start (and on every lifecycle poll)
    text = metrics.exposition().decode()
    assert f'careful_monitor_dataset_review_due_timestamp_seconds{{dataset="{COLLAPSED}"}}' in text
    assert f'careful_monitor_dataset_review_due_timestamp_seconds{{dataset="{FAITHFUL}"}}' not in text
