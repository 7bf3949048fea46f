"""docker-compose.yml and the Dockerfile: they cannot run here (no Docker engine), so check what can be checked."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from careful_monitor.config import load_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
OURS = {n: s for n, s in SERVICES.items() if s.get("build")}


def compose_commands() -> list[list[str]]:
    """careful-monitor subcommands the containers run (including inside `sh -c` strings)."""
    out = []
    for svc in OURS.values():
        cmd = svc["command"]
        if svc.get("entrypoint") == ["sh", "-c"]:
            for part in " ".join(cmd).split("&&"):
                words = shlex.split(part.replace(">/dev/null", ""))
                out.append(words[1:] if words[0] == "careful-monitor" else words)
        else:
            out.append(cmd)
    return out


def test_images_are_pinned() -> None:
    for name, svc in SERVICES.items():
        if "image" in svc:
            image = svc["image"]
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", image) and not image.endswith(":latest"), f"{name}: {image}"
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("FROM "):
            assert re.match(r"FROM python:3\.11\.\d+-slim", line), line


def test_dockerfile_runs_as_non_root_with_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "USER 10001" in text and "HEALTHCHECK" in text and "/healthz" in text and "EXPOSE 9308" in text
    assert text.count("FROM ") == 2  # multi-stage


def test_ports_and_environment_agree_with_config() -> None:
    cfg_path = ROOT / "deploy" / "docker" / "config.yaml"
    svc = SERVICES["careful-monitor"]
    env = {k: str(v) for k, v in svc["environment"].items()}
    cfg = load_config(cfg_path, environ=env)  # every variable is a valid config key
    assert svc["ports"] == [f"{cfg.http.port}:{cfg.http.port}"]
    assert cfg.http.host == "0.0.0.0" and cfg.kafka.bootstrap == "kafka:9092"
    assert cfg.store_url.startswith("postgresql://") and "@postgres:" in cfg.store_url
    prom = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert prom["scrape_configs"][0]["static_configs"][0]["targets"] == [f"careful-monitor:{cfg.http.port}"]
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    for name, svc in OURS.items():
        for k in svc.get("environment", {}):
            assert re.fullmatch(r"CAREFUL_MONITOR_[A-Z_]+__[A-Z_]+", k), (name, k)
    for name, svc in SERVICES.items():
        assert "healthcheck" in svc or name in ("init", "migrate", "register", "simulate"), name


@pytest.mark.parametrize("command", compose_commands(), ids=lambda c: " ".join(c[:2]))
def test_container_commands_are_real_cli_commands(command: list[str]) -> None:
    words = [w for w in command if not w.startswith("-")]
    sub = [w for w in words[:2] if not w.startswith("/")]
    r = subprocess.run([sys.executable, "-m", "careful_monitor.cli", *sub, "--help"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for option in [w for w in command if w.startswith("--")]:
        assert option in r.stdout, f"{' '.join(sub)} has no {option}"
