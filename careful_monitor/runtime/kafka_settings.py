"""Kafka client keyword settings from `kafka.security`, for kafka-python and for aiokafka.

The config names files, never secrets: the SASL password is read from `password_file` (resolved
against the config's folder, surrounding whitespace stripped) each time settings are built. The
password travels as a `Secret`, a `str` whose repr is masked, so a settings dict that ends up in a
log line or a traceback does not show it; `redacted()` masks it explicitly for logs and the API.

With TLS or SASL, building settings first checks, once per process and setting, that a bootstrap
broker accepts them (`check_credentials`): both clients retry a refused login or an untrusted
certificate until their own timeout and then report only that they could not bootstrap, so a wrong
password or CA would otherwise be a 30-second wait for a line that does not name the cause. While
the service runs, `CredentialsWatch` repeats that handshake: a user deleted or a password changed on
the brokers makes the service not-ready (the clients themselves only log and retry).

>>> from careful_monitor.config import load_config
>>> kafka_python_kwargs(load_config(None, environ={}))
{'security_protocol': 'PLAINTEXT'}
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any

from careful_monitor.config import Config
from careful_monitor.errors import BrokerError, ConfigError

log = logging.getLogger(__name__)

#: settings whose values are secrets, in either client's vocabulary
SECRET_KEYS = frozenset({"sasl_plain_password"})
MASK = "***"
#: how long `check_credentials` waits for one broker's TLS and SASL handshake, seconds
CHECK_TIMEOUT_S = 10.0
#: how often `CredentialsWatch` repeats the handshake while the service runs, seconds
RECHECK_S = 5.0


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
    check_credentials(cfg)
    return out


def aiokafka_kwargs(cfg: Config) -> dict[str, Any]:
    """Security settings for aiokafka's AIOKafkaConsumer / AIOKafkaProducer (what Faust runs on)."""
    out = _aiokafka_settings(cfg)
    check_credentials(cfg)
    return out


def _aiokafka_settings(cfg: Config) -> dict[str, Any]:
    protocol = cfg.kafka.security.protocol
    out: dict[str, Any] = {"security_protocol": protocol}
    if _uses_sasl(protocol):
        out.update(_sasl(cfg))
    if _uses_ssl(protocol):
        # aiokafka refuses SSL without a context; with cafile None it trusts the system CAs
        from aiokafka.helpers import create_ssl_context

        out["ssl_context"] = create_ssl_context(cafile=_ca_file(cfg))
    return out


#: settings `check_credentials` found accepted (or could not judge) in this process
_checked: set[tuple[str, ...]] = set()
_checked_lock = threading.Lock()


def check_credentials(cfg: Config) -> None:
    """Raise BrokerError (exit 2, one line) when the brokers refuse the TLS trust or the SASL login.

    One handshake per bootstrap broker (TLS, then SASL; what every client connection does first),
    until one is accepted; each check is done once per process and setting. An unreachable broker
    is no verdict: the clients' own connect and retry decide then. PLAINTEXT is not checked.
    """
    sec = cfg.kafka.security
    if sec.protocol == "PLAINTEXT":
        return
    kw = _aiokafka_settings(cfg)
    key = (cfg.kafka.bootstrap, sec.protocol, str(sec.sasl_mechanism), str(sec.username),
           str(kw.get("sasl_plain_password", "")), str(_ca_file(cfg) if _uses_ssl(sec.protocol) else None))
    with _checked_lock:
        if key in _checked:
            return
    refusal = _refusal(cfg.kafka.bootstrap, kw)
    if refusal:
        raise BrokerError(f"Kafka at {cfg.kafka.bootstrap} refused the connection: {refusal}")
    if refusal is None:  # accepted; "" (no broker could be asked) is checked again next time
        with _checked_lock:
            _checked.add(key)


def _refusal(bootstrap: str, kw: dict[str, Any]) -> str | None:
    """None when a bootstrap broker accepts these settings; why they refuse them; "" when none could be asked."""
    refused: list[tuple[str, str]] = []
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit():
            return ""  # the clients name a malformed bootstrap themselves
        problem = _handshake(host.strip("[]"), int(port), kw)
        if problem is None:
            return None
        if problem:
            refused.append((server.strip(), problem))
    if len(refused) == 1:
        return refused[0][1]
    return "; ".join(f"{server}: {problem}" for server, problem in refused)


class CredentialsWatch:
    """While the service runs: do the brokers still accept its TLS trust and SASL login? (`accepted`)

    A daemon thread repeats `check_credentials`' handshake every `every` seconds with the settings
    the service started with, and calls `on_change()` after each verdict, so the service can
    recompute its readiness. A broker that cannot be asked leaves the last verdict standing.
    PLAINTEXT has nothing to check: `accepted` stays True and no thread runs.
    """

    def __init__(self, cfg: Config, on_change: Callable[[], None] = lambda: None, *, every: float = RECHECK_S) -> None:
        self.cfg, self.on_change, self.every = cfg, on_change, every
        self.accepted = True
        self.refusal: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.cfg.kafka.security.protocol == "PLAINTEXT" or self._thread is not None:
            return
        kw = _aiokafka_settings(self.cfg)  # now: the password the clients were built with
        self._thread = threading.Thread(target=self._watch, args=(kw,), name="careful-credentials-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self, kw: dict[str, Any]) -> None:
        bootstrap = self.cfg.kafka.bootstrap
        while not self._stop.wait(self.every):
            refusal = _refusal(bootstrap, kw)
            if refusal and refusal != self.refusal:
                log.error("not ready: Kafka at %s refuses the service's credentials now: %s", bootstrap, refusal)
            elif refusal is None and not self.accepted:
                log.info("Kafka at %s accepts the service's credentials again", bootstrap)
            if refusal != "":  # no verdict from an unreachable broker: keep the last one
                self.accepted, self.refusal = refusal is None, refusal
            if not self._stop.is_set():
                self.on_change()


def _handshake(host: str, port: int, kw: dict[str, Any]) -> str | None:
    """None when the broker accepted us; the refusal with its fix; "" when it could not be asked."""
    from aiokafka.conn import create_conn
    from aiokafka.errors import SaslAuthenticationFailed, UnsupportedSaslMechanismError

    async def attempt() -> None:
        conn = await asyncio.wait_for(create_conn(host, port, client_id="careful-monitor-check",
                                                  request_timeout_ms=int(CHECK_TIMEOUT_S * 1000), **kw),
                                      CHECK_TIMEOUT_S)
        conn.close()

    outcome: list[BaseException | None] = []

    def target() -> None:  # its own thread and loop: callers may be inside a running event loop
        try:
            asyncio.run(attempt())
            outcome.append(None)
        except BaseException as exc:  # judged below
            outcome.append(exc)

    thread = threading.Thread(target=target, name="careful-credentials-check", daemon=True)
    thread.start()
    thread.join(CHECK_TIMEOUT_S + 5)
    if not outcome:
        return ""
    exc = outcome[0]
    if exc is None:
        return None
    if isinstance(exc, SaslAuthenticationFailed):
        said = str(exc).split(": ", 1)[-1]  # the broker's words, without aiokafka's "[Error 58] ...:" prefix
        return (f"SASL authentication failed ({said}); check kafka.security.username and the password in "
                "kafka.security.password_file")
    if isinstance(exc, UnsupportedSaslMechanismError):
        return f"{exc}; set kafka.security.sasl_mechanism to one the broker enables"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"its TLS certificate is not trusted ({exc.verify_message}); point kafka.security.ca_file at "
                "the CA that signed the brokers' certificates")
    return ""  # unreachable, reset (a listener of another protocol), timed out: for the clients to report


def redacted(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The same settings with every secret masked, for logs and the API.

    >>> redacted({"security_protocol": "SASL_SSL", "sasl_plain_password": "hunter2"})
    {'security_protocol': 'SASL_SSL', 'sasl_plain_password': '***'}
    """
    return {k: (MASK if k in SECRET_KEYS and v else v) for k, v in kwargs.items()}
