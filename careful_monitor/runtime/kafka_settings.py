"""Kafka client settings from `kafka.security`, for kafka-python and aiokafka. Secrets never logged."""

from __future__ import annotations

from typing import Any

from careful_monitor.config import Config
from careful_monitor.errors import ConfigError

SECRET_KEYS = ("sasl_plain_password",)


def _password(cfg: Config) -> str | None:
    sec = cfg.kafka.security
    if not sec.password_file:
        return None
    path = cfg.resolve_path(sec.password_file)
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError("kafka.security.password_file", f"cannot read {path}: {exc.strerror}",
                          "point it at a readable file holding only the password") from None


def kafka_python_kwargs(cfg: Config) -> dict[str, Any]:
    """Security keyword settings for kafka-python's KafkaConsumer / KafkaProducer / KafkaAdminClient."""
    sec = cfg.kafka.security
    out: dict[str, Any] = {"security_protocol": sec.protocol}
    if sec.protocol.startswith("SASL"):
        if not sec.sasl_mechanism:
            raise ConfigError("kafka.security.sasl_mechanism", f"protocol {sec.protocol} needs a SASL mechanism",
                              "set it to PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
        out.update(sasl_mechanism=sec.sasl_mechanism, sasl_plain_username=sec.username,
                   sasl_plain_password=_password(cfg))
    if sec.ca_file:
        ca = cfg.resolve_path(sec.ca_file)
        if not ca.is_file():
            raise ConfigError("kafka.security.ca_file", f"{ca} does not exist", "point it at the broker's CA certificate (PEM)")
        out["ssl_cafile"] = str(ca)
    return out


def redacted(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The same settings with secrets masked, for logs and the API."""
    return {k: ("***" if k in SECRET_KEYS and v else v) for k, v in kwargs.items()}
