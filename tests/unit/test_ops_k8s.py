"""Kubernetes manifests: they parse, references agree, and the PrometheusRule is generated from the one rules file.

When kubectl (with its built-in kustomize) is on the machine, the example overlay is also rendered
for real and the rendered objects are checked against each other.
"""

from __future__ import annotations

import importlib.util
import posixpath
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from careful_monitor.config import load_config
from tests.unit.test_ops_compose import CONFIG_SECTIONS, ENV_KEY

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
OVERLAY = K8S / "overlays" / "example"
#: files a secretGenerator reads that the user creates (never committed): a `.example` sits beside each
USER_FILES = {"kafka-password.txt", "http-token.txt"}


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
                path = k.parent / f.split("=")[-1]
                if path.name in USER_FILES:  # created by the user from the committed example, git-ignored
                    assert path.with_name(path.name + ".example").exists(), f"{k}: {f}"
                else:
                    assert path.exists(), f"{k}: {f}"
    kinds = {_load(BASE / r)["kind"] for r in _load(BASE / "kustomization.yaml")["resources"]}
    assert kinds == {"Deployment", "Service", "ServiceMonitor", "PrometheusRule", "PodDisruptionBudget", "Job"}
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
    secret_volume = "kafka-password"
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
    # the API binds 0.0.0.0 only with a token from a required Secret, mounted where http.auth_token_file points
    cfg = load_config(BASE / "config.yaml", environ={"CAREFUL_MONITOR_STORE__URL": "sqlite://"})
    assert cfg.http.host == "0.0.0.0" and cfg.http.auth_token_file and not cfg.http.protect_metrics
    token = volumes["http-token"]["secret"]
    assert "optional" not in token and token["defaultMode"] == 0o400
    assert posixpath.dirname(cfg.http.auth_token_file) == mounts["http-token"]
    assert [i["path"] for i in token["items"]] == [posixpath.basename(cfg.http.auth_token_file)]
    assert {i["key"] for i in token["items"]} <= generated[token["secretName"]]


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


def _render(tmp_path: Path) -> dict:
    """`kubectl kustomize` of a copy of deploy/k8s with the user's files made from their `.example`."""
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    for name in USER_FILES:
        for example in copy.rglob(name + ".example"):
            shutil.copy(example, example.with_name(name))
    r = subprocess.run(["kubectl", "kustomize", str(copy / "overlays" / "example")], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(r.stdout) if o}


def _job(path: Path) -> tuple[dict, dict]:
    job = _load(path)
    (c,) = job["spec"]["template"]["spec"]["containers"]
    return job, c


def test_no_secret_is_committed_in_the_overlay() -> None:
    for name in USER_FILES:
        assert not (OVERLAY / name).exists() or not _tracked(OVERLAY / name), f"{name} must not be committed"
        assert (OVERLAY / (name + ".example")).exists()
        ignored = subprocess.run(["git", "check-ignore", "--no-index", "-q", str(OVERLAY / name)], cwd=ROOT,
                                 capture_output=True)
        assert ignored.returncode == 0, f"{OVERLAY / name} is not git-ignored"
    text = (OVERLAY / "kustomization.yaml").read_text()
    assert "change-me" not in text and "kafka-password.txt.example" in text  # documented: copy the example


def _tracked(path: Path) -> bool:
    r = subprocess.run(["git", "ls-files", "--error-unmatch", str(path)], cwd=ROOT, capture_output=True)
    return r.returncode == 0


def test_migrate_job_runs_db_upgrade_and_workers_do_not_auto_migrate() -> None:
    job, c = _job(BASE / "migrate-job.yaml")
    assert job["kind"] == "Job" and c["args"] == ["db", "upgrade", "--config", "/etc/careful-monitor/config.yaml"]
    dep = _container(_load(BASE / "deployment.yaml"))
    assert c["image"] == dep["image"]
    env = {e["name"]: e for e in c["env"]}
    dep_env = {e["name"]: e for e in dep["env"]}
    assert env["CAREFUL_MONITOR_STORE__URL"] == dep_env["CAREFUL_MONITOR_STORE__URL"]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts["config"] == "/etc/careful-monitor"
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")
    # the pods are not workers: the Service and the PDB do not select them
    assert job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] != "worker"
    env_values = {k: v.get("value", "postgresql://careful:secret@db:5432/careful") for k, v in dep_env.items()}
    cfg = load_config(BASE / "config.yaml", environ=env_values)
    assert cfg.store.auto_migrate is False


def test_register_job_example_reads_cards_from_a_volume() -> None:
    example = K8S / "examples" / "register-job.yaml"
    job, c = _job(example)
    assert c["args"][:2] == ["datasets", "register"]
    assert c["args"][c["args"].index("--config") + 1] == "/etc/careful-monitor/config.yaml"
    cards = [a for a in c["args"] if a.endswith(".yaml") and a.startswith("/")][1:]
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert cards and all(posixpath.dirname(card) == mounts["datasets"]["mountPath"] for card in cards)
    assert mounts["datasets"]["readOnly"] is True and "persistentVolumeClaim" in volumes["datasets"]
    # the cards named are the datasets the config's models use
    cfg = _load(BASE / "config.yaml")
    used = {n for m in cfg["models"].values() for n in [m["anchor"], *m["training_mix"]]}
    assert {posixpath.basename(card).removesuffix(".yaml") for card in cards} == used
    text = example.read_text()
    assert "kubectl apply -f register-job.yaml" in text and "db-upgrade" in text
    r = subprocess.run([sys.executable, "-m", "careful_monitor.cli", "datasets", "register", "--help"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and all(o in r.stdout for o in ("--config", "--by"))


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl (with kustomize) is not installed")
def test_example_overlay_renders_consistently(tmp_path) -> None:
    objs = _render(tmp_path)
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
    # kube-prometheus-stack selects by its release label, set in the overlay
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert objs[("PrometheusRule", "careful-monitor")]["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    job = objs[("Job", "careful-monitor-db-upgrade")]
    assert _container(job)["image"] == _container(dep)["image"]
    assert not (job["spec"]["template"]["metadata"]["labels"].items() >= svc["spec"]["selector"].items())
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
