"""Kubernetes manifests: they parse, references agree, and the PrometheusRule is generated from the one rules file.

When kubectl (with its built-in kustomize) is on the machine, the example overlay is also rendered
for real and the rendered objects are checked against each other.
"""

from __future__ import annotations

import importlib.util
import posixpath
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from careful_monitor.config import load_config
from tests.unit.test_ops_compose import CONFIG_SECTIONS, ENV_KEY

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
OVERLAY = K8S / "overlays" / "example"


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _container(dep: dict) -> dict:
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    return c


def test_every_manifest_parses_and_kustomizations_reference_existing_files() -> None:
    for path in K8S.rglob("*.yaml"):
        assert list(yaml.safe_load_all(path.read_text())), path
    for k in K8S.rglob("kustomization.yaml"):
        doc = _load(k)
        for res in doc.get("resources", []):
            assert (k.parent / res).exists(), f"{k}: {res}"
        for gen in doc.get("configMapGenerator", []) + doc.get("secretGenerator", []):
            for f in gen.get("files", []):
                assert (k.parent / f.split("=")[-1]).exists(), f"{k}: {f}"
    kinds = {_load(BASE / r)["kind"] for r in _load(BASE / "kustomization.yaml")["resources"]}
    assert kinds == {"Deployment", "Service", "ServiceMonitor", "PrometheusRule", "PodDisruptionBudget"}
    assert [g["name"] for g in _load(BASE / "kustomization.yaml")["configMapGenerator"]] == ["careful-monitor-config"]


def test_deployment_service_probes_and_secrets_agree() -> None:
    dep, svc, pdb, sm = (_load(BASE / f)
                         for f in ("deployment.yaml", "service.yaml", "pdb.yaml", "servicemonitor.yaml"))
    pod = dep["spec"]["template"]
    c = _container(dep)
    selector = dep["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    assert svc["spec"]["selector"] == pdb["spec"]["selector"]["matchLabels"] == selector
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 9308}
    assert svc["spec"]["ports"] == [{"name": "http", "port": 9308, "targetPort": "http"}]
    assert sm["spec"]["endpoints"][0]["port"] == "http" and sm["spec"]["endpoints"][0]["path"] == "/metrics"
    common = {k: v for lab in _load(BASE / "kustomization.yaml")["labels"] for k, v in lab["pairs"].items()}
    assert sm["spec"]["selector"]["matchLabels"].items() <= common.items()  # kustomize puts these on the Service
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert (pod["spec"]["securityContext"]["runAsNonRoot"] is True
            and pod["spec"]["securityContext"]["runAsUser"] == 10001)
    assert (c["securityContext"]["readOnlyRootFilesystem"] is True
            and c["securityContext"]["allowPrivilegeEscalation"] is False)
    assert c["resources"]["requests"] and c["resources"]["limits"]
    # the config comes from the generated ConfigMap, mounted where --config points
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert c["args"] == ["run", "--config", "/etc/careful-monitor/config.yaml"]
    assert volumes["config"]["configMap"]["name"] == "careful-monitor-config"
    assert mounts["config"] == posixpath.dirname(c["args"][2])
    # the working directory is writable (read-only root filesystem)
    writable = {mounts[n] for n, v in volumes.items() if "emptyDir" in v}
    assert c["workingDir"] in writable
    # the store URL comes from a Secret; the Kafka password file from a Secret volume at the path the env names
    env = {e["name"]: e for e in c["env"]}
    assert env["CAREFUL_MONITOR_STORE__URL"]["valueFrom"]["secretKeyRef"] == {"name": "careful-monitor-store",
                                                                              "key": "url"}
    password_file = env["CAREFUL_MONITOR_KAFKA__SECURITY__PASSWORD_FILE"]["value"]
    secret_volume = next(n for n, v in volumes.items() if "secret" in v)
    assert posixpath.dirname(password_file) == mounts[secret_volume]
    assert [i["path"] for i in volumes[secret_volume]["secret"]["items"]] == [posixpath.basename(password_file)]
    # the Secrets and keys the pod reads are the ones the example overlay generates
    overlay = _load(OVERLAY / "kustomization.yaml")
    generated: dict[str, set[str]] = {}
    for g in overlay["secretGenerator"]:
        keys = [x.split("=")[0] for x in g.get("literals", []) + g.get("files", [])]
        generated[g["name"]] = set(keys)
    assert "url" in generated[env["CAREFUL_MONITOR_STORE__URL"]["valueFrom"]["secretKeyRef"]["name"]]
    secret = volumes[secret_volume]["secret"]
    assert {i["key"] for i in secret["items"]} <= generated[secret["secretName"]]
    assert overlay["images"][0]["name"] == c["image"].split(":")[0]
    assert overlay["replicas"][0]["name"] == dep["metadata"]["name"]


def test_config_is_valid_with_the_pod_environment() -> None:
    c = _container(_load(BASE / "deployment.yaml"))
    env = {e["name"]: e.get("value", "postgresql://careful:secret@db:5432/careful") for e in c["env"]}
    for k in env:
        assert ENV_KEY.fullmatch(k), f"{k} is not CAREFUL_MONITOR_<SECTION>__<KEY> with SECTION in {CONFIG_SECTIONS}"
    cfg = load_config(BASE / "config.yaml", environ=env)  # raises ConfigError on an unknown key or a bad value
    assert cfg.http.port == c["ports"][0]["containerPort"] and cfg.http.host == "0.0.0.0"
    assert cfg.kafka.security.password_file == env["CAREFUL_MONITOR_KAFKA__SECURITY__PASSWORD_FILE"]
    assert cfg.store_url.startswith("postgresql://")
    docker_cfg = _load(ROOT / "deploy" / "docker" / "config.yaml")
    assert _load(BASE / "config.yaml")["models"] == docker_cfg["models"]


def test_prometheusrule_is_generated_from_the_rules_file() -> None:
    spec = importlib.util.spec_from_file_location("render_prometheusrule", K8S / "render-prometheusrule.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (BASE / "prometheusrule.yaml").read_text() == mod.render(), "run python deploy/k8s/render-prometheusrule.py"
    rules = _load(ROOT / "deploy" / "prometheus" / "rules" / "careful-monitor.rules.yml")
    assert _load(BASE / "prometheusrule.yaml")["spec"]["groups"] == rules["groups"]


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl (with kustomize) is not installed")
def test_example_overlay_renders_consistently() -> None:
    r = subprocess.run(["kubectl", "kustomize", str(OVERLAY)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    objs = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(r.stdout) if o}
    assert all(o["metadata"].get("namespace") == "ml-monitoring" for o in objs.values())
    dep = objs[("Deployment", "careful-monitor")]
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert dep["spec"]["replicas"] == 3
    assert _container(dep)["image"] == "registry.example.com/careful-monitor:0.1.0"
    svc, pdb, sm = objs[("Service", "careful-monitor")], objs[("PodDisruptionBudget", "careful-monitor")], \
        objs[("ServiceMonitor", "careful-monitor")]
    for sel in (dep["spec"]["selector"]["matchLabels"], svc["spec"]["selector"],
                pdb["spec"]["selector"]["matchLabels"]):
        assert sel.items() <= labels.items()
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    # every ConfigMap and Secret the pod names exists in the rendered output (with its generated name)
    for v in pod["spec"]["volumes"]:
        if "configMap" in v:
            assert ("ConfigMap", v["configMap"]["name"]) in objs
        if "secret" in v:
            assert ("Secret", v["secret"]["secretName"]) in objs
    for e in _container(dep)["env"]:
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["key"] in objs[("Secret", ref["name"])]["data"]
    rule = objs[("PrometheusRule", "careful-monitor")]
    assert rule["spec"]["groups"] == _load(ROOT / "deploy" / "prometheus" / "rules"
                                           / "careful-monitor.rules.yml")["groups"]
