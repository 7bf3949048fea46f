"""Kafka client keyword settings from `kafka.security`, for kafka-python and for aiokafka.

The config names files, never secrets: the SASL password is read from `password_file` (resolved
against the config's folder, surrounding whitespace stripped) each time settings are built. The
password travels as a `Secret`, a `str` whose repr is masked, so a settings dict that ends up in a
log line or a traceback does not show it; `redacted()` masks it explicitly for logs and the API.

>>> from careful_monitor.config import load_config
>>> kafka_python_kwargs(load_config(None, environ={}))
{'security_protocol': 'PLAINTEXT'}
"""

from __future__ import annotations

from typing import Any

from careful_monitor.config import Config
from careful_monitor.errors import ConfigError

#: settings whose values are secrets, in either client's vocabulary
SECRET_KEYS = frozenset({"sasl_plain_password"})
MASK = "***"


class Secret(str):
    """A string that keeps its value for the client but shows `'***'` in reprs (dicts, logs)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(MASK)


def _uses_sasl(protocol: str) -> bool:
    return protocol.startswith("SASL_")


def _uses_ssl(protocol: str) -> bool:
    return protocol.endswith("SSL")


def _password(cfg: Config) -> Secret:
    sec = cfg.kafka.security
    key = "kafka.security.password_file"
    fix = "point it at a readable file that holds only the password"
    if not sec.password_file:
        raise ConfigError(key, f"protocol {sec.protocol} needs a password and none is configured", f"set it: {fix}")
    path = cfg.resolve_path(sec.password_file)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(key, f"{path} does not exist", fix) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(key, f"cannot read {path} ({reason})", fix) from None
    password = text.strip()
    if not password:
        raise ConfigError(key, f"{path} is empty", fix)
    return Secret(password)


def _sasl(cfg: Config) -> dict[str, Any]:
    sec = cfg.kafka.security
    if not sec.sasl_mechanism:
        raise ConfigError("kafka.security.sasl_mechanism", f"protocol {sec.protocol} needs a SASL mechanism",
                          "set it to PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
    if not sec.username:
        raise ConfigError("kafka.security.username", f"protocol {sec.protocol} needs a user name", "set it")
    return {"sasl_mechanism": sec.sasl_mechanism, "sasl_plain_username": sec.username,
            "sasl_plain_password": _password(cfg)}


def _ca_file(cfg: Config) -> str | None:
    """The CA bundle to verify the brokers with; None means the system's default CAs."""
    ca = cfg.kafka.security.ca_file
    if not ca:
        return None
    path = cfg.resolve_path(ca)
    if not path.is_file():
        raise ConfigError("kafka.security.ca_file", f"{path} does not exist",
                          "point it at the brokers' CA certificate (PEM), or remove it to use the system CAs")
    return str(path)


def kafka_python_kwargs(cfg: Config) -> dict[str, Any]:
    """Security settings for kafka-python's KafkaConsumer, KafkaProducer and KafkaAdminClient."""
    protocol = cfg.kafka.security.protocol
    out: dict[str, Any] = {"security_protocol": protocol}
    if _uses_sasl(protocol):
        out.update(_sasl(cfg))
    if _uses_ssl(protocol):
        ca = _ca_file(cfg)
        if ca:
            out["ssl_cafile"] = ca
    return out


def aiokafka_kwargs(cfg: Config) -> dict[str, Any]:
    """Security settings for aiokafka's AIOKafkaConsumer / AIOKafkaProducer (what Faust runs on)."""
    protocol = cfg.kafka.security.protocol
    out: dict[str, Any] = {"security_protocol": protocol}
    if _uses_sasl(protocol):
        out.update(_sasl(cfg))
    if _uses_ssl(protocol):
        # aiokafka refuses SSL without a context; with cafile None it trusts the system CAs
        from aiokafka.helpers import create_ssl_context

        out["ssl_context"] = create_ssl_context(cafile=_ca_file(cfg))
    return out


def redacted(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The same settings with every secret masked, for logs and the API.

    >>> redacted({"security_protocol": "SASL_SSL", "sasl_plain_password": "hunter2"})
    {'security_protocol': 'SASL_SSL', 'sasl_plain_password': '***'}
    """
    return {k: (MASK if k in SECRET_KEYS and v else v) for k, v in kwargs.items()}
