"""Generates the Grafana dashboards in this folder (run: python dashboards/build.py).

The JSON files are committed; this script keeps their panels consistent (datasource input,
template variables, grid layout). tests/unit/test_ops_dashboards.py checks the schema and that every
query uses exported metric names only; tests/integration/test_ops_prometheus.py runs every panel's
query against a real Prometheus scraping the demo.
"""

from __future__ import annotations

import json
from pathlib import Path

DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
HERE = Path(__file__).resolve().parent


def panel(pid: int, title: str, description: str, targets: list[tuple[str, str]], *, kind: str = "timeseries",
          x: int = 0, y: int = 0, w: int = 12, h: int = 8, unit: str | None = None, extra: dict | None = None) -> dict:
    p = {"id": pid, "type": kind, "title": title, "description": description, "datasource": DS,
         "gridPos": {"x": x, "y": y, "w": w, "h": h},
         "targets": [{"refId": chr(65 + i), "datasource": DS, "expr": expr, "legendFormat": legend}
                     for i, (expr, legend) in enumerate(targets)],
         "fieldConfig": {"defaults": {"unit": unit} if unit else {}, "overrides": []}, "options": {}}
    if extra:
        p.update(extra)
    return p


def templating(overview: bool) -> dict:
    """Datasource, model and dataset variables; the overview may show all models at once."""
    model_match = '=~"$model"' if overview else '="$model"'
    return {"list": [
        {"name": "DS_PROMETHEUS", "type": "datasource", "query": "prometheus", "label": "Prometheus", "hide": 0},
        {"name": "model", "type": "query", "datasource": DS, "query": "label_values(careful_monitor_events_total, model)",
         "definition": "label_values(careful_monitor_events_total, model)", "refresh": 2, "sort": 1,
         "includeAll": overview, "multi": overview, "label": "model"},
        {"name": "dataset", "type": "query", "datasource": DS,
         "query": f"label_values(careful_monitor_dataset_state{{model{model_match}}}, dataset)",
         "definition": f"label_values(careful_monitor_dataset_state{{model{model_match}}}, dataset)",
         "refresh": 2, "sort": 1, "includeAll": True, "multi": True, "label": "dataset"},
    ]}


def dashboard(uid: str, title: str, panels: list[dict], overview: bool) -> dict:
    return {"__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource", "pluginId": "prometheus",
                          "pluginName": "Prometheus"}],
            "uid": uid, "title": title, "schemaVersion": 39, "version": 1, "editable": True, "tags": ["careful-monitor"],
            "time": {"from": "now-6h", "to": "now"}, "refresh": "30s", "timezone": "utc",
            "templating": templating(overview), "annotations": {"list": []}, "panels": panels}


STATE_MAP = {"type": "value", "options": {"0": {"text": "ok", "color": "green"}, "1": {"text": "watch", "color": "yellow"},
                                          "2": {"text": "retire_recommended", "color": "red"},
                                          "3": {"text": "anchor_stale", "color": "orange"},
                                          "4": {"text": "retired", "color": "blue"}}}

M = 'model=~"$model"'  # overview: one, several or all models

overview = dashboard("careful-overview", "careful-monitor: overview", [
    panel(1, "Events per second", "Is every model's traffic arriving, and how much is rejected?",
          [(f'sum by (model, outcome) (rate(careful_monitor_events_total{{{M}}}[$__rate_interval]))', "{{model}} {{outcome}}")],
          unit="ops", x=0, y=0),
    panel(2, "Dead letters by reason", "Are producers sending events the service must reject, and why?",
          [("sum by (reason) (rate(careful_monitor_dead_letters_total[$__rate_interval]))", "{{reason}}")], unit="ops", x=12, y=0),
    panel(3, "Event lag", "How old is each model's newest event when it is processed?",
          [(f"careful_monitor_event_lag_seconds{{{M}}}", "{{model}}")], unit="s", x=0, y=8),
    panel(4, "Consumer lag", "How far behind the events topic is the service (Kafka runtime)?",
          [("sum by (topic) (careful_monitor_consumer_lag)", "{{topic}}")], unit="short", x=12, y=8),
    panel(5, "Windows evaluated", "Are windows closing and being evaluated?",
          [(f"sum by (model) (rate(careful_monitor_windows_total{{{M}}}[$__rate_interval]))", "{{model}}")], unit="ops", x=0, y=16),
    panel(6, "Window evaluation time (p95)", "Does evaluating a window stay fast?",
          [("histogram_quantile(0.95, sum by (le) (rate(careful_monitor_window_processing_seconds_bucket[$__rate_interval])))", "p95")],
          unit="s", x=12, y=16),
    panel(7, "Dataset states", "Which datasets are on watch, recommended for retirement, or stale anchors?",
          [(f'careful_monitor_dataset_state{{{M}, dataset=~"$dataset"}}', "{{model}} / {{dataset}}")], kind="table",
          x=0, y=24, w=12,
          extra={"fieldConfig": {"defaults": {"mappings": [STATE_MAP]}, "overrides": []},
                 "options": {"showHeader": True}, "transformations": [{"id": "labelsToFields", "options": {}}]}),
    panel(8, "Retirement alerts", "How many retirement / stale-anchor alerts has each dataset raised?",
          [(f'sum by (model, dataset) (careful_monitor_retirement_alerts_total{{{M}, dataset=~"$dataset"}})', "{{model}} / {{dataset}} total"),
           (f'sum by (model, dataset) (increase(careful_monitor_retirement_alerts_total{{{M}, dataset=~"$dataset"}}[$__range]))',
            "{{model}} / {{dataset}} in range")],
          kind="bargauge", x=12, y=24, w=12),
    # freshness of each model beside "Event lag", which freezes when no event arrives
    panel(9, "Time since the newest event", "Has a model gone quiet (event lag only moves when events arrive)?",
          [(f"time() - careful_monitor_last_event_timestamp_seconds{{{M}}}", "{{model}}")], unit="s", x=0, y=32),
    panel(10, "Events in the open window", "How full is each model's open window, and is it filling?",
          [(f"careful_monitor_open_window_events{{{M}}}", "{{model}}")], unit="short", x=12, y=32),
    # governance: what the registry's checks found (README "Governance", "Evaluation isolation", "Reviews")
    panel(11, "Governance violations", "Which model uses a dataset against its card (governance.mode: warn)?",
          [(f'sum by (model, dataset, rule) (careful_monitor_governance_violations{{{M}, dataset=~"$dataset"}})',
            "{{model}} / {{dataset}} {{rule}}")], kind="table", x=0, y=40, w=12,
          extra={"options": {"showHeader": True}, "transformations": [{"id": "labelsToFields", "options": {}}]}),
    panel(12, "Evaluation set contamination", "Which evaluation set shares rows with a dataset it must be isolated from?",
          [("max by (evaluation, dataset) (careful_monitor_isolation_contamination_ratio)",
            "{{evaluation}} vs {{dataset}}")], kind="bargauge", x=12, y=40, w=12,
          extra={"fieldConfig": {"defaults": {"unit": "percentunit", "min": 0, "max": 1,
                                              "thresholds": {"mode": "absolute", "steps": [
                                                  {"color": "green", "value": None}, {"color": "red", "value": 0.0001}]}},
                                 "overrides": []}}),
    panel(13, "Time until dataset review", "Which dataset's CAREFUL review is due soon or overdue (negative)?",
          [("careful_monitor_dataset_review_due_timestamp_seconds - time()", "{{dataset}}")], kind="bargauge",
          x=0, y=48, w=12,
          extra={"fieldConfig": {"defaults": {"unit": "s", "thresholds": {"mode": "absolute", "steps": [
              {"color": "red", "value": None}, {"color": "orange", "value": 0}, {"color": "green", "value": 14 * 86400}]}},
              "overrides": []}}),
    panel(14, "Service ready and version", "Can every worker process and persist events, and which version runs?",
          [("min(careful_monitor_ready)", "ready"), ("count by (version) (careful_monitor_build_info)", "workers on {{version}}")],
          kind="stat", x=12, y=48, w=12,
          extra={"fieldConfig": {"defaults": {}, "overrides": [
              {"matcher": {"id": "byFrameRefID", "options": "A"}, "properties": [{"id": "mappings", "value": [
                  {"type": "value", "options": {"0": {"text": "not ready", "color": "red"},
                                                "1": {"text": "ready", "color": "green"}}}]}]}]}}),
], overview=True)

SEL = 'model="$model"'

model = dashboard("careful-model", "careful-monitor: model", [
    panel(1, "Dataset state timeline", "When did each dataset enter watch, retire_recommended or anchor_stale?",
          [(f'careful_monitor_dataset_state{{{SEL}, dataset=~"$dataset"}}', "{{dataset}}")], kind="state-timeline",
          x=0, y=0, w=24, h=6, extra={"fieldConfig": {"defaults": {"mappings": [STATE_MAP]}, "overrides": []}}),
    panel(2, "Synthetic affinity", "Does the live drift point toward a synthetic set (1 = straight at it)?",
          [(f'careful_monitor_synthetic_affinity{{{SEL}, dataset=~"$dataset"}}', "{{dataset}}")], x=0, y=6),
    panel(3, "Synthetic share", "What share of live traffic looks like each synthetic set (gaps: not identifiable; "
          "a group's share: sets the window cannot tell apart)?",
          [(f'careful_monitor_synthetic_share{{{SEL}, dataset=~"$dataset"}}', "{{dataset}}"),
           (f'careful_monitor_synthetic_group_share{{{SEL}, dataset=~"$dataset"}}', "{{dataset}} (its group)")],
          unit="percentunit", x=12, y=6),
    panel(4, "Collapse signals", "Are tails thinning, spread shrinking, rare categories vanishing, text repeating, confidence inflating?",
          [(f"careful_monitor_collapse_signal{{{SEL}}}", "{{feature}} {{signal}}")], x=0, y=14, w=24, h=9),
    panel(5, "Drift statistics vs each reference", "How far is each feature from the anchor and from each synthetic set?",
          [(f'careful_monitor_drift_statistic{{{SEL}, reference=~"$dataset", test=~"ks|js|psi"}}',
            "{{feature}} {{test}} vs {{reference}}")], x=0, y=23),
    panel(6, "Drift p-values vs each reference", "Which tests are significant (before Benjamini-Hochberg)?",
          [(f'min by (feature, reference) (careful_monitor_drift_p_value{{{SEL}, reference=~"$dataset"}})',
            "{{feature}} vs {{reference}}")], x=12, y=23,
          extra={"fieldConfig": {"defaults": {"custom": {"scaleDistribution": {"type": "log", "log": 10}}}, "overrides": []}}),
    panel(7, "Flagged features", "Which features were flagged (BH + effect floor) in the last window?",
          [(f"careful_monitor_drift_detected{{{SEL}}}", "{{feature}}")], kind="state-timeline", x=0, y=31, w=24, h=6),
    panel(8, "Collapse signals by model version", "Does a collapse signature creep over retraining cycles?",
          [(f"careful_monitor_collapse_signal_by_version{{{SEL}}}", "v{{version}} {{feature}} {{signal}}"),
           (f"careful_monitor_collapse_signal_version_trend{{{SEL}}}", "trend {{feature}} {{signal}}")],
          kind="barchart", x=0, y=37, w=24, h=9),
    panel(9, "Data quality", "Are null rates, type mismatches or unseen categories rising?",
          [(f"careful_monitor_data_quality{{{SEL}}}", "{{feature}} {{signal}}")], unit="percentunit", x=0, y=46, w=24),
    panel(10, "Synthetic share uncertainty", "How precisely is each synthetic set's share known (gaps: not identifiable)?",
          [(f'careful_monitor_synthetic_share_stderr{{{SEL}, dataset=~"$dataset"}}', "{{dataset}} standard error")],
          unit="percentunit", x=0, y=54, w=24),
], overview=False)

if __name__ == "__main__":
    for name, d in (("careful-overview.json", overview), ("careful-model.json", model)):
        (HERE / name).write_text(json.dumps(d, indent=2) + "\n")
        print(f"wrote {name}")
