"""Who may read `/api/*` and `/ui/*` and who may write: a bearer token, or a session cookie plus a CSRF token.

With `http.auth_token_file` set, every `/api/*` and `/ui/*` request needs either the header
`Authorization: Bearer <token>` or the session cookie that `POST /ui/login` (the token typed into a
form) sets; `/metrics`, `/healthz` and `/readyz` stay open unless `http.protect_metrics: true`.
Write requests (`POST /api/...`) always need authentication, and a cookie alone is not enough for
them: the form or header must also carry the session's CSRF token (`csrf_token` field or
`X-CSRF-Token` header). Without a token file, reads are open and writes are refused (403).

Sessions hold no server state: the cookie is `<random id>.<HMAC(token, id)>` and the CSRF token is
`HMAC(token, "csrf:" + id)`, so they survive a restart and die when the token changes. Comparisons
are constant-time.

>>> auth = HttpAuth(token="s3cret")
>>> auth.bearer_ok("Bearer s3cret"), auth.bearer_ok("Bearer nope"), auth.bearer_ok(None)
(True, False, False)
>>> sid = auth.session_id(auth.new_session())
>>> auth.csrf_ok(sid, auth.csrf_for(sid)), auth.csrf_ok(sid, "forged")
(True, False)
>>> HttpAuth(token=None).session_id("anything.at-all") is None
True
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from careful_monitor.errors import ConfigError

SESSION_COOKIE = "careful_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
#: the shortest token accepted: 16 characters (about 96 bits from `secrets.token_urlsafe(12)`)
MIN_TOKEN_CHARS = 16


@dataclass(frozen=True)
class HttpAuth:
    token: str | None = None
    protect_metrics: bool = False

    @classmethod
    def from_file(cls, path: str | None, *, protect_metrics: bool = False) -> HttpAuth:
        """Read the token from `path` (first line, stripped); ConfigError names `http.auth_token_file`."""
        if path is None:
            if protect_metrics:
                raise ConfigError("http.protect_metrics", "is true but no http.auth_token_file is set",
                                  "set http.auth_token_file to a file holding the token")
            return cls(None, False)
        key, p = "http.auth_token_file", Path(path)
        try:
            st = p.stat()
            if not stat.S_ISREG(st.st_mode):
                raise ConfigError(key, f"{path} is not a regular file", "point it at a file holding the token")
            if st.st_size > 4096:
                raise ConfigError(key, f"{path} is {st.st_size} bytes", "the file holds one token line")
            lines = p.read_text(encoding="utf-8").splitlines()
        except ConfigError:
            raise
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(key, f"cannot read {path}: {reason}",
                              "create it, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))' "
                              f"> {path}`") from None
        token = lines[0].strip() if lines else ""
        if len(token) < MIN_TOKEN_CHARS or not token.isprintable() or " " in token:
            raise ConfigError(key, f"the token in {path} must be at least {MIN_TOKEN_CHARS} printable characters "
                              "without spaces", "python -c 'import secrets; print(secrets.token_urlsafe(32))'")
        return cls(token, protect_metrics)

    @property
    def enabled(self) -> bool:
        return self.token is not None

    def bearer_ok(self, header: str | None) -> bool:
        if self.token is None or not header:
            return False
        scheme, _, value = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.token.encode())

    def _mac(self, message: str) -> str:
        assert self.token is not None
        return hmac.new(self.token.encode(), message.encode(), hashlib.sha256).hexdigest()

    def new_session(self) -> str:
        """A fresh session cookie value (only after the token was shown)."""
        sid = secrets.token_urlsafe(18)
        return f"{sid}.{self._mac('session:' + sid)}"

    def session_id(self, cookie: str | None) -> str | None:
        """The session id of a valid cookie, else None."""
        if self.token is None or not cookie or "." not in cookie:
            return None
        sid, _, mac = cookie.partition(".")
        return sid if hmac.compare_digest(mac.encode(), self._mac("session:" + sid).encode()) else None

    def csrf_for(self, sid: str) -> str:
        return self._mac("csrf:" + sid)

    def csrf_ok(self, sid: str, value: str | None) -> bool:
        return bool(value) and hmac.compare_digest(str(value).encode(), self.csrf_for(sid).encode())


def warn_if_readable(path: str | None) -> str | None:
    """A warning when the token file is readable by every user, else None.

    Group read is allowed: Kubernetes gives a Secret volume's files to the pod's fsGroup.
    """
    if path is None or os.name != "posix":
        return None
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return None
    if mode & stat.S_IROTH:
        return f"http.auth_token_file {path} is readable by every user: chmod 600 it"
    return None
