"""docker-compose.yml and the Dockerfile: no Docker engine here (SERVICES.md), so check what can be checked.

Images are pinned, ports and environment agree with the container config (validated by the real config
loader), one-shots and dependencies are wired with conditions, and every careful-monitor command a
container runs is a real CLI command with real options.
"""

from __future__ import annotations

import base64
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from careful_monitor.config import Config, load_config
from careful_monitor.demo.scenario import config_dict as demo_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
OURS = {n: s for n, s in SERVICES.items() if s.get("build")}
DOCKERFILE = (ROOT / "Dockerfile").read_text()
CONFIG = ROOT / "deploy" / "docker" / "config.yaml"
CONFIG_IN_CONTAINER = "/etc/careful-monitor/config.yaml"
ONE_SHOTS = {"init", "register", "simulate"}
#: config sections the environment may set (models are configured in the file only)
CONFIG_SECTIONS = ("window", "policy", "profile", "limits", "dead_letters", "kafka", "store", "http", "governance",
                   "isolation", "embeddings")
#: CAREFUL_MONITOR_<SECTION>__<KEY>[__<KEY>...]
ENV_KEY = re.compile(rf"CAREFUL_MONITOR_({'|'.join(s.upper() for s in CONFIG_SECTIONS)})(__[A-Z][A-Z0-9_]*)+")
#: the CLI's top-level commands a container may run
CLI_COMMANDS = {"run", "simulate", "topics", "db", "demo", "replay", "datasets", "alerts", "bench", "token", "lineage"}
#: subcommands a container runs that the CLI does not have yet: xfail(strict), so each turns into a failure
#: (remove it here) as soon as it exists. `run`, `simulate` and `topics create` exist now (issue 4).
NOT_BUILT_YET: dict[str, str] = {}


def _dockerfile_cmd() -> list[str]:
    return yaml.safe_load(re.search(r"^CMD (\[.*\])$", DOCKERFILE, re.M).group(1))


def container_commands() -> list[tuple[str, list[str]]]:
    """(where, careful-monitor argv without the program) for every command our containers run."""
    out = [("Dockerfile CMD", _dockerfile_cmd())]
    for name, svc in OURS.items():
        if svc.get("entrypoint") == ["sh", "-c"]:
            for part in " ".join(svc["command"]).split("&&"):
                words = shlex.split(re.sub(r"\s*>\s*/dev/null", "", part))
                assert words[0] == "careful-monitor", (name, part)
                out.append((name, words[1:]))
        else:
            assert "entrypoint" not in svc, name  # the image's ENTRYPOINT is careful-monitor
            out.append((name, svc["command"]))
    return out


def compose_commands() -> list[tuple[str, list[str]]]:
    """(compose service, careful-monitor argv without the program) for every command a compose container runs.

    One service may run several (`init`: `db upgrade && topics create`). A later test can run
    `careful-monitor <argv[0]> --help` for each.
    """
    return [(where, argv) for where, argv in container_commands() if where in SERVICES]


#: the commands of docker-compose.yml, read once at import
COMPOSE_COMMANDS = compose_commands()


def _subcommand(argv: list[str]) -> list[str]:
    words = []
    for w in argv:
        if w.startswith("-"):
            break
        words.append(w)
    return words[:2] if words and words[0] in ("datasets", "alerts", "topics", "db") else words[:1]


def _params():
    seen: dict[str, tuple[list[str], set[str], list[str]]] = {}
    for where, argv in container_commands():
        sub = _subcommand(argv)
        key = " ".join(sub)
        _, options, places = seen.setdefault(key, (sub, set(), []))
        options |= {w.split("=")[0] for w in argv if w.startswith("--")}
        places.append(where)
    for key, (sub, options, places) in seen.items():
        marks = [pytest.mark.xfail(strict=True, reason=NOT_BUILT_YET[key])] if key in NOT_BUILT_YET else []
        yield pytest.param(sub, sorted(options), places, id=key, marks=marks)


def test_stack_has_every_service() -> None:
    assert set(SERVICES) == {"kafka", "postgres", "init", "register", "careful-monitor", "simulate", "prometheus",
                             "alertmanager", "webhook", "grafana"}


def test_images_are_pinned() -> None:
    for name, svc in SERVICES.items():
        image = svc["image"]
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image) and not image.endswith(":latest"), f"{name}: {image}"
        assert re.search(r":v?\d+\.\d+(\.\d+)?(-slim|-alpine)?$", image), \
            f"{name}: pin a release (major.minor at least), not {image}"
    assert re.fullmatch(r"apache/kafka:4\.\d+\.\d+", SERVICES["kafka"]["image"])
    assert re.fullmatch(r"postgres:15\.\d+", SERVICES["postgres"]["image"])
    assert {s["image"] for s in OURS.values()} == {"careful-monitor:0.1.0"}
    froms = re.findall(r"^FROM (\S+)", DOCKERFILE, re.M)
    assert len(froms) == 2 and all(re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", f) for f in froms), froms


def test_kafka_is_a_single_kraft_node_with_its_data_on_the_volume() -> None:
    env = {k: str(v) for k, v in SERVICES["kafka"]["environment"].items()}
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    node, voter = env["KAFKA_NODE_ID"], env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    assert (voter.split("@")[0] == node
            and voter.split("@")[1] == "kafka:" + re.search(r"CONTROLLER://:(\d+)", env["KAFKA_LISTENERS"]).group(1))
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"  # what CAREFUL_MONITOR_KAFKA__BOOTSTRAP names
    for k in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
              "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
        assert env[k] == "1", k
    # a base64 UUID, as kafka-storage.sh random-uuid prints (the image formats its storage with it)
    cluster_id = env["CLUSTER_ID"]
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16 and re.fullmatch(r"[\w-]{22}", cluster_id)
    (volume,) = SERVICES["kafka"]["volumes"]
    assert volume.split(":")[1] == env["KAFKA_LOG_DIRS"], "the broker's log dir must be the mounted volume"


def test_dockerfile_multi_stage_non_root_with_healthcheck() -> None:
    assert re.search(r"^FROM \S+ AS builder$", DOCKERFILE, re.M) and "pip wheel" in DOCKERFILE
    assert "COPY --from=builder /wheels" in DOCKERFILE
    assert re.search(r"^USER 10001$", DOCKERFILE, re.M) and "--uid 10001" in DOCKERFILE
    assert re.search(r"^EXPOSE 9308$", DOCKERFILE, re.M)
    health = DOCKERFILE[DOCKERFILE.index("HEALTHCHECK"):]
    assert "urllib.request" in health and "http://127.0.0.1:9308/healthz" in health
    assert re.search(r'^ENTRYPOINT \["careful-monitor"\]$', DOCKERFILE, re.M)
    assert _dockerfile_cmd() == ["run", "--config", CONFIG_IN_CONTAINER]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "deploy/kafka/dist", "tests"} <= set(ignored)


def test_container_config_is_the_demo_scenario() -> None:
    cfg = yaml.safe_load(CONFIG.read_text())
    demo = demo_config()
    assert cfg["models"] == demo["models"]
    assert cfg["models"]["ticket-router"]["anchor"] == "tickets-real"
    assert set(cfg["models"]["ticket-router"]["training_mix"]) == {"tickets-real", "tickets-synth-collapsed",
                                                                   "tickets-synth-faithful"}
    assert cfg["window"] == demo["window"] and cfg["limits"] == demo["limits"]


@pytest.mark.parametrize("name", sorted(OURS))
def test_environment_is_valid_config(name: str) -> None:
    svc = OURS[name]
    env = {k: str(v) for k, v in svc.get("environment", {}).items()}
    for k in env:
        assert ENV_KEY.fullmatch(k), (f"{name}: {k} is not CAREFUL_MONITOR_<SECTION>__<KEY> "
                                      f"with SECTION in {CONFIG_SECTIONS}")
    assert f"./{CONFIG.relative_to(ROOT)}:{CONFIG_IN_CONTAINER}:ro" in svc["volumes"]
    cfg = load_config(CONFIG, environ=env)  # raises ConfigError on an unknown key or a bad value
    assert cfg.kafka.bootstrap == "kafka:9092"
    assert cfg.store_url == "postgresql://careful@postgres:5432/careful"
    assert cfg.http.port == 9308 and cfg.http.host == "0.0.0.0"
    # 0.0.0.0 only with a token: the file `init` writes into the volume every careful-monitor container mounts
    assert cfg.http.auth_token_file == "/home/careful/secrets/http-token"
    assert "http-token:/home/careful/secrets" in svc["volumes"]


def test_config_sections_are_the_config_models_sections() -> None:
    sections = {name for name, f in Config.model_fields.items()
                if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel)}
    assert set(CONFIG_SECTIONS) == sections


def test_compose_commands_start_with_a_cli_command() -> None:
    services = {where for where, _ in COMPOSE_COMMANDS}
    assert services == set(OURS), "every service built from this repo runs careful-monitor"
    for where, argv in COMPOSE_COMMANDS:
        assert argv and argv[0] in CLI_COMMANDS, f"{where}: `careful-monitor {' '.join(argv)}`"
    assert ("careful-monitor", ["run", "--config", CONFIG_IN_CONTAINER]) in COMPOSE_COMMANDS
    assert [argv[:2] for where, argv in COMPOSE_COMMANDS if where == "init"] == [
        ["token", "/home/careful/secrets/http-token"], ["db", "upgrade"], ["topics", "create"]]
    assert [argv[0] for where, argv in COMPOSE_COMMANDS if where == "simulate"] == ["simulate"]


def test_ports_agree_with_config_and_prometheus() -> None:
    cm = SERVICES["careful-monitor"]
    cfg = load_config(CONFIG, environ={k: str(v) for k, v in cm["environment"].items()})
    assert cm["ports"] == [f"{cfg.http.port}:{cfg.http.port}"]
    assert re.search(rf"^EXPOSE {cfg.http.port}$", DOCKERFILE, re.M)
    assert f"127.0.0.1:{cfg.http.port}/readyz" in " ".join(cm["healthcheck"]["test"])
    prom = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in prom["scrape_configs"] if j["job_name"] == "careful-monitor"]
    assert job["static_configs"][0]["targets"] == [f"careful-monitor:{cfg.http.port}"]
    (am_target,) = prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    host, port = am_target.split(":")
    assert host in SERVICES and SERVICES[host]["ports"] == [f"{port}:{port}"]
    assert any(v.startswith("./deploy/prometheus:/etc/prometheus") for v in SERVICES["prometheus"]["volumes"])
    assert any(v.startswith("./deploy/alertmanager:/etc/alertmanager") for v in SERVICES["alertmanager"]["volumes"])


def test_dependencies_have_conditions_and_healthchecks() -> None:
    for name, svc in SERVICES.items():
        if name not in ONE_SHOTS:
            assert "healthcheck" in svc, f"{name} needs a healthcheck"
        for dep, spec in svc.get("depends_on", {}).items():
            assert dep in SERVICES, (name, dep)
            cond = spec["condition"]
            if cond == "service_healthy":
                assert "healthcheck" in SERVICES[dep], (name, dep)
            else:
                assert cond == "service_completed_successfully" and dep in ONE_SHOTS, (name, dep, cond)
    init = " ".join(SERVICES["init"]["command"])
    assert "db upgrade" in init and "topics create" in init
    assert set(SERVICES["init"]["depends_on"]) == {"kafka", "postgres"}
    assert set(SERVICES["careful-monitor"]["depends_on"]) == {"init", "register"}


@pytest.mark.parametrize(("subcommand", "options", "places"), list(_params()))
def test_container_commands_are_real_cli_commands(subcommand: list[str], options: list[str], places: list[str]) -> None:
    r = subprocess.run([sys.executable, "-m", "careful_monitor.cli", *subcommand, "--help"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, (f"{places}: `careful-monitor {' '.join(subcommand)} --help` "
                               f"exited {r.returncode}: {r.stderr}")
    for option in options:
        assert re.search(rf"(^|\s){re.escape(option)}\b", r.stdout), f"{places}: {' '.join(subcommand)} has no {option}"


def test_commands_read_the_mounted_config() -> None:
    for where, argv in container_commands():
        if "--config" in argv:
            assert argv[argv.index("--config") + 1] == CONFIG_IN_CONTAINER, where
        else:
            assert _subcommand(argv) in (["demo"], ["token"]), f"{where}: {argv} does not read the mounted config"


DATASETS_MOUNT = "./datasets:/data/datasets:ro"


def test_the_users_datasets_folder_is_mounted_read_only_and_documented() -> None:
    for name, svc in OURS.items():
        assert DATASETS_MOUNT in svc["volumes"], f"{name}: cards in ./datasets are not visible"
    assert (ROOT / "datasets" / "README.md").is_file()  # the folder exists in a fresh clone (no root-owned mkdir)
    header = (ROOT / "docker-compose.yml").read_text().split("\nname:")[0]
    assert "/data/datasets/CARD.yaml" in header and "datasets register" in header
    # the register one-shot registers every card of the folder (a folder argument of `datasets register`)
    (register,) = [argv for where, argv in COMPOSE_COMMANDS
                   if where == "register" and argv[:2] == ["datasets", "register"]]
    assert register[-1] == "/data/datasets"
    readme = (ROOT / "datasets" / "README.md").read_text()
    assert "/data/datasets/" in readme and "--config /etc/careful-monitor/config.yaml" in readme
    # what the documented command names is a path under the mount, read by the real `datasets register`
    assert "datasets/*" in (ROOT / ".gitignore").read_text().split()
    assert "datasets" in (ROOT / ".dockerignore").read_text().split()


def test_the_monitor_does_not_restart_forever_on_a_configuration_error() -> None:
    """`run` exits 2 on a configuration error (e.g. a training-mix dataset not registered): bounded retries."""
    restart = SERVICES["careful-monitor"]["restart"]
    m = re.fullmatch(r"on-failure:(\d+)", restart)
    assert m and 1 <= int(m.group(1)) <= 10, restart
    for name, svc in SERVICES.items():
        assert svc.get("restart") not in ("always", "unless-stopped") or name not in OURS, name


def test_alertmanager_receivers_are_a_service_of_the_stack() -> None:
    import urllib.parse

    am = yaml.safe_load((ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
    hosts = set()
    for rcv in am["receivers"]:
        for hook in rcv["webhook_configs"]:
            url = urllib.parse.urlsplit(hook["url"])
            assert url.hostname not in ("127.0.0.1", "localhost"), "loopback is Alertmanager's own container"
            hosts.add((url.hostname, url.port))
    assert hosts == {("webhook", 9095)}
    hook = SERVICES["webhook"]
    assert "healthcheck" in hook and SERVICES["alertmanager"]["depends_on"]["webhook"]["condition"] == "service_healthy"
    script = hook["command"][-1]
    assert '("0.0.0.0", 9095)' in script and "def do_POST" in script
    compile(script, "webhook", "exec")  # the receiver is valid Python


def test_compose_file_validates_against_the_compose_specification() -> None:
    """docker-compose.yml against the Compose specification's JSON schema (vendored: tests/vendor/compose-spec)."""
    import json

    import jsonschema

    schema = json.loads((ROOT / "tests" / "vendor" / "compose-spec" / "compose-spec.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)
    # and the validator does catch a broken file
    broken = {**doc, "services": {**doc["services"], "kafka": {**doc["services"]["kafka"], "restart": 5,
                                                                  "ports": "9092"}}}
    assert list(validator.iter_errors(broken))
