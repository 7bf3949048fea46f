"""Grafana dashboards: schema, variables, and only metric names careful-monitor really exports.

Grafana itself is not available here (SERVICES.md); every panel's query is also run against a real
Prometheus scraping the demo in tests/integration/test_ops_prometheus.py, through `dashboard_queries`.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
#: variables Grafana defines itself
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms", "__from",
                     "__to"}
#: the question each dashboard must answer, as the metrics its panels must use
REQUIRED_METRICS = {
    "careful-overview.json": {"careful_monitor_events_total", "careful_monitor_consumer_lag",
                              "careful_monitor_event_lag_seconds", "careful_monitor_dead_letters_total",
                              "careful_monitor_windows_total",
                              "careful_monitor_dataset_state", "careful_monitor_retirement_alerts_total"},
    "careful-model.json": {"careful_monitor_drift_statistic", "careful_monitor_drift_p_value",
                           "careful_monitor_drift_detected", "careful_monitor_collapse_signal",
                           "careful_monitor_synthetic_affinity",
                           "careful_monitor_synthetic_share", "careful_monitor_dataset_state",
                           "careful_monitor_collapse_signal_by_version"},
}
#: the metric contract (docs/ARCHITECTURE "Outputs"): name -> labels; histograms also have _bucket/_sum/_count
CONTRACT_METRICS: dict[str, tuple[str, ...]] = {
    "careful_monitor_events_total": ("model", "outcome"),
    "careful_monitor_windows_total": ("model",),
    "careful_monitor_drift_statistic": ("model", "feature", "reference", "test"),
    "careful_monitor_drift_p_value": ("model", "feature", "reference", "test"),
    "careful_monitor_drift_detected": ("model", "feature"),
    "careful_monitor_collapse_signal": ("model", "feature", "signal"),
    "careful_monitor_synthetic_affinity": ("model", "dataset"),
    "careful_monitor_synthetic_share": ("model", "dataset"),
    "careful_monitor_dataset_state": ("model", "dataset"),
    "careful_monitor_retirement_alerts_total": ("model", "dataset"),
    "careful_monitor_dead_letters_total": ("reason",),
    "careful_monitor_event_lag_seconds": ("model",),
    "careful_monitor_consumer_lag": ("topic", "partition"),
    "careful_monitor_collapse_signal_by_version": ("model", "version", "feature", "signal"),
    "careful_monitor_window_processing_seconds": (),
    "careful_monitor_build_info": ("version",),
    "careful_monitor_last_event_timestamp_seconds": ("model",),
    "careful_monitor_ready": (),
}
HISTOGRAMS = {"careful_monitor_window_processing_seconds"}
#: metrics beyond the contract that dashboards may use: name -> labels; each is exported and documented in
#: README's metric table
DOCUMENTED_EXTRAS: dict[str, tuple[str, ...]] = {
    "careful_monitor_collapse_signal_version_trend": ("model", "feature", "signal"),
    "careful_monitor_data_quality": ("model", "feature", "signal"),
    "careful_monitor_synthetic_share_stderr": ("model", "dataset"),
    "careful_monitor_synthetic_group_share": ("model", "dataset"),
    "careful_monitor_governance_violations": ("model", "dataset", "rule"),
    "careful_monitor_isolation_contamination_ratio": ("evaluation", "dataset"),
    "careful_monitor_dataset_review_due_timestamp_seconds": ("dataset",),
    "careful_monitor_open_window_events": ("model",),
}
#: families on the registry that are prometheus_client's own collectors (the process and the interpreter),
#: not careful-monitor's: no panel needs them (any process dashboard shows them)
COLLECTOR_PREFIXES = ("process_", "python_")
_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_PROMQL_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset",
                    "bool", "inf", "nan"}


def dashboard_queries(path: Path, substitutions: dict[str, str]) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of a dashboard, template variables replaced.

    Keys of `substitutions` are variable names with or without the `$` (`model`, `$__rate_interval`);
    a variable without a substitution is left as it is.
    """
    subst = {k.lstrip("$"): v for k, v in substitutions.items()}

    def replace(m: re.Match) -> str:
        name = next(g for g in m.groups() if g)
        return subst.get(name, m.group(0))

    return [(p["title"], _VAR.sub(replace, t["expr"]))
            for p in json.loads(path.read_text())["panels"] for t in p["targets"]]


def exported_families() -> dict[str, str]:
    """Metric family name -> type, for every family careful_monitor/sinks/prometheus.py puts on its registry."""
    from careful_monitor.sinks.prometheus import Metrics

    return {f.name: f.type for f in Metrics().registry.collect()}


def exported_metric_names() -> set[str]:
    """Series names the service can export, read from the metrics careful_monitor/sinks/prometheus.py declares."""
    from careful_monitor.sinks.prometheus import Metrics

    names = set()
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
        else:
            names.add(family.name)
    return names


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (strings, label matchers, ranges and grouping clauses removed)."""
    e = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\$\w+", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)(\s*\()?", e):
        if not m.group(2) and m.group(1) not in _PROMQL_KEYWORDS:
            names.add(m.group(1))
    return names


def contract_metric_tokens(expr: str) -> set[str]:
    """`careful_monitor_*` names in an expression, histogram suffixes folded onto the histogram's name."""
    out = set()
    for name in re.findall(r"careful_monitor_[a-z_]+", expr):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        out.add(base if base in HISTOGRAMS else name)
    return out


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_the_metric_name_parser_reads_the_sink() -> None:
    names = exported_metric_names()
    assert {"careful_monitor_events_total", "careful_monitor_dataset_state",
            "careful_monitor_window_processing_seconds_bucket", "careful_monitor_consumer_lag",
            "careful_monitor_collapse_signal_by_version"} <= names
    assert "careful_monitor_events" not in names
    assert promql_metric_names('histogram_quantile(0.95, sum by (le) (rate(a_bucket{x="y"}[5m]))) '
                               '/ on (m) group_left b') == {"a_bucket", "b"}


def test_dashboards_exist_and_uids_are_unique() -> None:
    assert [p.name for p in DASHBOARDS] == ["careful-model.json", "careful-overview.json"]
    uids = [_load(p)["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids)) and all(uids)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_schema(path: Path) -> None:
    d = _load(path)
    assert d["schemaVersion"] == 39 and d["uid"] and d["title"]
    assert [(i["name"], i["type"], i["pluginId"]) for i in d["__inputs"]] == [("DS_PROMETHEUS", "datasource",
                                                                              "prometheus")]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for p in d["panels"]:
        assert {"id", "type", "title", "gridPos", "datasource", "targets", "description"} <= set(p), p.get("title")
        assert p["description"].rstrip().endswith("?"), f"{p['title']}: the description states the question it answers"
        assert p["datasource"] == DS, p["title"]
        g = p["gridPos"]
        assert {"x", "y", "w", "h"} <= set(g) and g["x"] + g["w"] <= 24, p["title"]
        assert p["targets"], p["title"]
        ref_ids = [t["refId"] for t in p["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), p["title"]
        for t in p["targets"]:
            assert t["refId"] and t["expr"].strip() and "legendFormat" in t, p["title"]
            assert t.get("datasource", DS) == DS, p["title"]
    assert "state-timeline" in {p["type"] for p in d["panels"]} or path.name != "careful-model.json"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_template_variables(path: Path) -> None:
    d = _load(path)
    variables = d["templating"]["list"]
    by_name = {v["name"]: v for v in variables}
    assert by_name["DS_PROMETHEUS"]["type"] == "datasource" and by_name["DS_PROMETHEUS"]["query"] == "prometheus"
    assert by_name["model"]["query"] == "label_values(careful_monitor_events_total, model)"
    model_match = "=~" if by_name["model"].get("multi") else "="
    assert by_name["dataset"]["query"] == (f'label_values(careful_monitor_dataset_state{{model{model_match}"$model"}}, '
                                           'dataset)')
    if path.name == "careful-model.json":
        assert model_match == "=", "the per-model dashboard shows one model"
    # every variable used is defined (by an earlier variable, for the variables' own queries) or built in
    defined = set(BUILTIN_VARIABLES)
    for v in variables:
        assert v["type"] == "datasource" or v["datasource"] == DS, v["name"]
        for m in _VAR.finditer(v.get("query", "")):
            assert next(g for g in m.groups() if g) in defined, f"variable {v['name']} uses an undefined variable"
        defined.add(v["name"])
    for p in d["panels"]:
        texts = [json.dumps(p["datasource"])] + [t["expr"] for t in p["targets"]]
        for text in texts:
            for m in _VAR.finditer(text):
                assert next(g for g in m.groups() if g) in defined, f"{p['title']}: {m.group(0)} is not defined"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_queries_use_only_exported_metrics(path: Path) -> None:
    exported = exported_metric_names() | {"up"}
    used = set()
    for title, expr in dashboard_queries(path, {}):
        names = promql_metric_names(expr)
        assert names, f"{title}: no metric in {expr!r}"
        assert names <= exported, (f"{title}: {sorted(names - exported)} "
                                   "not exported by careful_monitor/sinks/prometheus.py")
        used |= names
    assert REQUIRED_METRICS[path.name] <= used, sorted(REQUIRED_METRICS[path.name] - used)


def test_every_exported_metric_is_on_a_panel() -> None:
    """A metric added to the sink fails here until a panel queries it (and it is in the contract or the extras)."""
    used: set[str] = set()
    for path in DASHBOARDS:
        for _, expr in dashboard_queries(path, {}):
            used |= contract_metric_tokens(expr)
    ours = {name: kind for name, kind in exported_families().items() if not name.startswith(COLLECTOR_PREFIXES)}
    assert ours and all(name.startswith("careful_monitor_") for name in ours), sorted(ours)
    series = {name + "_total" if kind == "counter" else name for name, kind in ours.items()}
    assert series - used == set(), f"exported but on no dashboard panel (add one in dashboards/build.py): " \
                                   f"{sorted(series - used)}"
    assert series <= set(CONTRACT_METRICS) | set(DOCUMENTED_EXTRAS), sorted(series - set(CONTRACT_METRICS)
                                                                          - set(DOCUMENTED_EXTRAS))


def test_metrics_are_declared_in_the_sink_only() -> None:
    """Every metric lives on the sink's registry, so the panel check above sees it: nothing else declares one."""
    declares = re.compile(r"\b(Gauge|Counter|Histogram|Summary|Info|Enum|GaugeMetricFamily|CounterMetricFamily)\(")
    elsewhere = [str(f.relative_to(ROOT)) for f in (ROOT / "careful_monitor").rglob("*.py")
                 if f != ROOT / "careful_monitor" / "sinks" / "prometheus.py"
                 and "prometheus_client" in (text := f.read_text()) and declares.search(text)]
    assert elsewhere == [], f"metrics declared outside careful_monitor/sinks/prometheus.py: {elsewhere}"


def test_contract_and_extras_have_the_labels_the_sink_gives_them() -> None:
    from prometheus_client.metrics import MetricWrapperBase

    from careful_monitor.sinks.prometheus import Metrics

    declared = {m._name + ("_total" if m._type == "counter" else ""): tuple(m._labelnames)
                for m in vars(Metrics()).values() if isinstance(m, MetricWrapperBase)}
    for name, labels in {**CONTRACT_METRICS, **DOCUMENTED_EXTRAS}.items():
        assert sorted(declared[name]) == sorted(labels), f"{name}: the sink gives it labels {declared[name]}"


def test_the_contract_is_what_the_service_exports() -> None:
    exported = exported_metric_names()
    for name in CONTRACT_METRICS:
        if name in HISTOGRAMS:
            assert {name + "_bucket", name + "_sum", name + "_count"} <= exported, name
        else:
            assert name in exported, (f"{name} is in the metric contract "
                                      "but careful_monitor/sinks/prometheus.py does not export it")
    readme = (ROOT / "README.md").read_text()
    for name in DOCUMENTED_EXTRAS:
        assert name in exported, name
        assert f"`{name.removeprefix('careful_monitor_')}`" in readme, f"{name}: not in README's metric table"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_queries_use_only_contract_metrics_and_their_labels(path: Path) -> None:
    allowed = set(CONTRACT_METRICS) | set(DOCUMENTED_EXTRAS)
    known = {**CONTRACT_METRICS, **DOCUMENTED_EXTRAS}
    for title, expr in dashboard_queries(path, {}):
        tokens = contract_metric_tokens(expr)
        assert tokens, f"{title}: no careful_monitor_ metric in {expr!r}"
        assert tokens <= allowed, f"{title}: {sorted(tokens - allowed)} is not in the metric contract"
        # label matchers on a contract metric name only its labels
        for name, matchers in re.findall(r"(careful_monitor_[a-z_]+)\{([^}]*)\}", expr):
            (base,) = contract_metric_tokens(name)
            labels = known[base]
            for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", re.sub(r'"(?:\\.|[^"\\])*"', '""', matchers)):
                assert label in (*labels, "le"), f"{title}: {name} has no label {label}"


def test_dashboard_queries_substitutes_variables() -> None:
    subst = {"model": "ticket-router", "dataset": "tickets-synth-collapsed", "$__rate_interval": "1m",
             "$__interval": "15s", "$__range": "5m"}
    for path in DASHBOARDS:
        for title, expr in dashboard_queries(path, subst):
            assert "$" not in expr, f"{title}: {expr}"
    queries = dict(dashboard_queries(ROOT / "dashboards" / "careful-overview.json", subst))
    assert queries["Events per second"] == ('sum by (model, outcome) '
                                            '(rate(careful_monitor_events_total{model=~"ticket-router"}[1m]))')


def test_committed_json_is_what_build_py_writes() -> None:
    spec = importlib.util.spec_from_file_location("dashboards_build", ROOT / "dashboards" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    for name, d in (("careful-overview.json", build.overview), ("careful-model.json", build.model)):
        assert _load(ROOT / "dashboards" / name) == d, f"run python dashboards/build.py ({name} differs)"


def test_grafana_provisioning_agrees_with_compose() -> None:
    ds = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    prom_port = compose["prometheus"]["ports"][0].split(":")[-1]
    assert source["url"] == f"http://prometheus:{prom_port}"
    prov = yaml.safe_load((PROVISIONING / "dashboards" / "careful.yml").read_text())
    (provider,) = prov["providers"]
    assert provider["type"] == "file"
    mounts = {v.split(":")[1]: v.split(":")[0] for v in compose["grafana"]["volumes"]}
    assert mounts[provider["options"]["path"]] == "./dashboards"
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"


def test_panels_named_in_the_runbooks_exist() -> None:
    text = (ROOT / "docs" / "runbooks.md").read_text()
    named = {" ".join(t.split()) for t in re.findall(r'panel\s+"([^"]+)"', text)}
    titles = {p["title"] for path in DASHBOARDS for p in _load(path)["panels"]}
    assert len(named) >= 10 and named <= titles, sorted(named - titles)
