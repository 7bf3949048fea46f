"""Kafka client settings from `kafka.security`: both clients' vocabularies, files resolved, secrets masked."""

from __future__ import annotations

import doctest
import inspect
import logging
import ssl
from pathlib import Path

import pytest
import yaml

from careful_monitor.config import Config, load_config
from careful_monitor.errors import ConfigError
from careful_monitor.runtime import kafka_settings
from careful_monitor.runtime.kafka_settings import aiokafka_kwargs, kafka_python_kwargs, redacted

PASSWORD = "s3cr3t-Pa55"

# A self-signed CA (EC P-256, valid to 2126), so the SSL context loads a real certificate anywhere.
CA_PEM = """\
-----BEGIN CERTIFICATE-----
MIIBmzCCAUGgAwIBAgIUXcAO1mySWhTUSy1ZoiFcNgnwWsgwCgYIKoZIzj0EAwIw
IjEgMB4GA1UEAwwXY2FyZWZ1bC1tb25pdG9yIHRlc3QgQ0EwIBcNMjYxMTI1MDI1
OTUzWhgPMjEyNjExMDEwMjU5NTNaMCIxIDAeBgNVBAMMF2NhcmVmdWwtbW9uaXRv
ciB0ZXN0IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEhj4S6Fa5Uh5gI1rK
BBQe7lOFqFUg94blr2CQ5GHrZ6uxCzYUVl+Sjg5OvC3om+aqKo0Wr5w3OnpGY2m0
IbWr0KNTMFEwHQYDVR0OBBYEFJygQ0+SchVJawQw6JNJ9/UHsX3WMB8GA1UdIwQY
MBaAFJygQ0+SchVJawQw6JNJ9/UHsX3WMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZI
zj0EAwIDSAAwRQIgBIxG1S/XqN9uAFyYpLn7h9sFYF5P/mQEs2pRjIzRGWQCIQDL
ubtwkSW9agq1QbuNhuxmPcllGPKQXQygWMxyNgq4oQ==
-----END CERTIFICATE-----
"""


def config_in(folder: Path, security: dict, environ: dict[str, str] | None = None) -> Config:
    """A config file in `folder` (so relative paths resolve there) with this `kafka.security`."""
    path = folder / "conf" / "careful.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"kafka": {"security": security}}))
    return load_config(path, environ=environ or {})


@pytest.fixture
def secured(tmp_path: Path) -> Config:
    """SASL_SSL with SCRAM, the password and CA as files next to the config, given relatively."""
    conf = tmp_path / "conf"
    (conf / "secrets").mkdir(parents=True)
    (conf / "secrets" / "kafka.pw").write_text(f"  {PASSWORD}\n")
    (conf / "ca.pem").write_text(CA_PEM)
    return config_in(tmp_path, {"protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "username": "monitor",
                                "password_file": "secrets/kafka.pw", "ca_file": "ca.pem"})


def test_plaintext_by_default_for_both_clients() -> None:
    cfg = load_config(None, environ={})
    assert kafka_python_kwargs(cfg) == {"security_protocol": "PLAINTEXT"}
    assert aiokafka_kwargs(cfg) == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_for_kafka_python_resolves_files_against_the_config_folder(secured: Config, tmp_path: Path) -> None:
    kw = kafka_python_kwargs(secured)
    assert kw == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "monitor",
                  "sasl_plain_password": PASSWORD, "ssl_cafile": str(tmp_path / "conf" / "ca.pem")}
    # the client gets the plain value: it encodes it for the SASL handshake
    assert kw["sasl_plain_password"].encode() == PASSWORD.encode()


def test_sasl_ssl_for_aiokafka_builds_an_ssl_context_with_the_ca(secured: Config) -> None:
    kw = aiokafka_kwargs(secured)
    ctx = kw.pop("ssl_context")
    assert kw == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "monitor",
                  "sasl_plain_password": PASSWORD}
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED
    assert [dict(c["subject"][0])["commonName"] for c in ctx.get_ca_certs()] == ["careful-monitor test CA"]


def test_ssl_without_ca_file_trusts_the_system_cas(tmp_path: Path) -> None:
    cfg = config_in(tmp_path, {"protocol": "SSL"})
    assert kafka_python_kwargs(cfg) == {"security_protocol": "SSL"}
    ctx = aiokafka_kwargs(cfg)["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED


def test_sasl_plaintext_needs_no_ca(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "pw").write_text(PASSWORD)
    cfg = config_in(tmp_path, {"protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "username": "u",
                               "password_file": "pw", "ca_file": "not-used.pem"})
    assert kafka_python_kwargs(cfg) == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
                                        "sasl_plain_username": "u", "sasl_plain_password": PASSWORD}
    assert aiokafka_kwargs(cfg) == kafka_python_kwargs(cfg)


def test_the_password_file_can_come_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "env.pw").write_text(PASSWORD + "\r\n")
    cfg = config_in(tmp_path, {"protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "username": "u"},
                    environ={"CAREFUL_MONITOR_KAFKA__SECURITY__PASSWORD_FILE": "env.pw"})
    assert kafka_python_kwargs(cfg)["sasl_plain_password"] == PASSWORD


@pytest.mark.parametrize("make_file,problem", [
    (lambda conf: None, "does not exist"),
    (lambda conf: (conf / "kafka.pw").mkdir(), "cannot read"),  # unreadable even for root
    (lambda conf: (conf / "kafka.pw").write_text(" \n"), "is empty"),
    (lambda conf: (conf / "kafka.pw").write_bytes(b"\xff\xfe\xfa"), "cannot read"),
])
@pytest.mark.parametrize("build", [kafka_python_kwargs, aiokafka_kwargs])
def test_a_missing_or_unreadable_password_file_is_a_config_error(tmp_path: Path, make_file, problem, build) -> None:
    (tmp_path / "conf").mkdir()
    make_file(tmp_path / "conf")
    cfg = config_in(tmp_path, {"protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "username": "u",
                               "password_file": "kafka.pw"})
    with pytest.raises(ConfigError) as err:
        build(cfg)
    assert err.value.key == "kafka.security.password_file"
    assert problem in err.value.problem and str(tmp_path / "conf" / "kafka.pw") in err.value.problem
    assert err.value.fix and err.value.exit_code == 2


@pytest.mark.parametrize("security,key", [
    ({"protocol": "SASL_SSL", "username": "u", "password_file": "pw"}, "kafka.security.sasl_mechanism"),
    ({"protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "password_file": "pw"}, "kafka.security.username"),
    ({"protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "username": "u"}, "kafka.security.password_file"),
    ({"protocol": "SSL", "ca_file": "missing.pem"}, "kafka.security.ca_file"),
])
def test_incomplete_security_settings_name_the_key(tmp_path: Path, security: dict, key: str) -> None:
    cfg = config_in(tmp_path, security)
    for build in (kafka_python_kwargs, aiokafka_kwargs):
        with pytest.raises(ConfigError) as err:
            build(cfg)
        assert err.value.key == key


def test_the_password_is_masked_in_reprs_logs_and_redacted(secured: Config, caplog) -> None:
    kw = kafka_python_kwargs(secured)
    assert redacted(kw)["sasl_plain_password"] == "***"
    assert {k: v for k, v in redacted(kw).items() if k != "sasl_plain_password"} == \
        {k: v for k, v in kw.items() if k != "sasl_plain_password"}
    with caplog.at_level(logging.INFO):
        logging.getLogger("careful_monitor.test").info("kafka settings %s / %r", kw, aiokafka_kwargs(secured))
    for shown in (repr(kw), str(kw), caplog.text, str(redacted(kw))):
        assert PASSWORD not in shown
    assert redacted({"security_protocol": "PLAINTEXT"}) == {"security_protocol": "PLAINTEXT"}


def test_errors_never_contain_the_password(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "pw").write_text(PASSWORD)
    cfg = config_in(tmp_path, {"protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "username": "u",
                               "password_file": "pw", "ca_file": "missing.pem"})
    with pytest.raises(ConfigError) as err:
        kafka_python_kwargs(cfg)
    assert PASSWORD not in str(err.value) and PASSWORD not in repr(err.value)


def test_the_keys_are_each_clients_own_settings(secured: Config) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient

    for client in (KafkaProducer, KafkaConsumer, KafkaAdminClient):
        assert set(kafka_python_kwargs(secured)) <= set(client.DEFAULT_CONFIG), client
    for client in (AIOKafkaProducer, AIOKafkaConsumer):
        assert set(aiokafka_kwargs(secured)) <= set(inspect.signature(client).parameters), client


def test_docstring_examples() -> None:
    assert doctest.testmod(kafka_settings).failed == 0


def test_faust_runtime_gets_the_same_credentials(tmp_path) -> None:
    from careful_monitor.config import load_config
    from careful_monitor.runtime.faust_app import faust_credentials

    (tmp_path / "pw").write_text("s3cret\n")
    cfg = load_config(None, environ={}, overrides={"kafka": {"security": {
        "protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512", "username": "svc",
        "password_file": str(tmp_path / "pw")}}})
    creds = faust_credentials(cfg)
    assert creds.username == "svc" and creds.password == "s3cret" and "SCRAM" in str(creds.mechanism)
    assert "s3cret" not in repr(cfg)
    assert faust_credentials(load_config(None, environ={})) is None
