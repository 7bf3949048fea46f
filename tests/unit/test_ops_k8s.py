"""Kubernetes manifests: parse, references agree, PrometheusRule generated from the one rules file."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from careful_monitor.config import load_config

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_kustomizations_reference_existing_files() -> None:
    for k in K8S.rglob("kustomization.yaml"):
        doc = _load(k)
        for res in doc.get("resources", []):
            assert (k.parent / res).exists(), f"{k}: {res}"
        for gen in doc.get("configMapGenerator", []) + doc.get("secretGenerator", []):
            for f in gen.get("files", []):
                assert (k.parent / f.split("=")[-1]).exists(), f"{k}: {f}"


def test_deployment_service_probes_and_secrets_agree() -> None:
    base = K8S / "base"
    dep, svc, pdb, sm = (_load(base / f) for f in ("deployment.yaml", "service.yaml", "pdb.yaml", "servicemonitor.yaml"))
    pod = dep["spec"]["template"]
    c = pod["spec"]["containers"][0]
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert svc["spec"]["selector"] == pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    port = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert svc["spec"]["ports"][0]["targetPort"] in port and port["http"] == 9308
    assert sm["spec"]["endpoints"][0]["port"] == "http" and sm["spec"]["endpoints"][0]["path"] == "/metrics"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz" and c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] and c["securityContext"]["readOnlyRootFilesystem"]
    assert c["resources"]["requests"] and c["resources"]["limits"]
    # the Secrets the pod reads are the ones the example overlay generates
    overlay = _load(K8S / "overlays" / "example" / "kustomization.yaml")
    generated = {g["name"] for g in overlay["secretGenerator"]}
    used = {e["valueFrom"]["secretKeyRef"]["name"] for e in c["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    used |= {v["secret"]["secretName"] for v in pod["spec"]["volumes"] if "secret" in v}
    assert used <= generated
    # the config file is valid with the pod's environment
    env = {e["name"]: e.get("value", "postgresql://x@y/z") for e in c["env"] if "value" in e or "secretKeyRef" in e.get("valueFrom", {})}
    env.pop("CAREFUL_MONITOR_KAFKA__SECURITY__PASSWORD_FILE")
    cfg = load_config(base / "config.yaml", environ=env)
    assert cfg.http.port == 9308
    assert c["args"][0] == "run"


def test_prometheusrule_is_generated_from_the_rules_file() -> None:
    spec = importlib.util.spec_from_file_location("render", K8S / "render-prometheusrule.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (K8S / "base" / "prometheusrule.yaml").read_text() == mod.render()
    rules = _load(K8S.parent / "prometheus" / "rules" / "careful-monitor.rules.yml")
    assert _load(K8S / "base" / "prometheusrule.yaml")["spec"]["groups"] == rules["groups"]
