"""The few exception types careful-monitor raises; each carries what the user needs to fix the cause."""

from __future__ import annotations


class CarefulError(Exception):
    """Base class. `exit_code` is what the CLI exits with when this escapes a command."""

    exit_code = 1


class ConfigError(CarefulError):
    """The configuration is invalid: names the key, the problem and the fix."""

    exit_code = 2

    def __init__(self, key: str, problem: str, fix: str = "") -> None:
        self.key, self.problem, self.fix = key, problem, fix
        msg = f"config error at '{key}': {problem}"
        if fix:
            msg += f" (fix: {fix})"
        super().__init__(msg)


class ManifestError(CarefulError):
    """A dataset card (manifest) is invalid or its data cannot be read: names the field."""

    exit_code = 2

    def __init__(self, manifest: str, field: str, problem: str) -> None:
        self.manifest, self.field, self.problem = manifest, field, problem
        super().__init__(f"{manifest}: field '{field}': {problem}")


class RegistryError(CarefulError):
    """A registry operation is not allowed (unknown dataset, bad lifecycle transition, missing anchor)."""

    exit_code = 2


class StoreError(CarefulError):
    """The store cannot be used (unreachable, schema not migrated, ...)."""

    exit_code = 1


class NotFoundError(CarefulError):
    """A named thing (alert, dataset, model) does not exist."""

    exit_code = 2


class HttpBindError(CarefulError, OSError):
    """The HTTP server cannot listen (port in use, address not available); also an OSError for callers."""

    exit_code = 2


class BrokerError(CarefulError):
    """The Kafka broker cannot be used (unreachable, authentication refused): names the bootstrap."""

    exit_code = 2


class CheckFailedError(CarefulError):
    """A check ran and the data failed it: exit 3, so CI can gate on it.

    Distinct from 1 (runtime failure) and 2 (usage or config): e.g. `datasets isolation` when a
    contamination rate is above `isolation.max_rate`.
    """

    exit_code = 3


class PeersNotInstalledError(CarefulError):
    """`bench --peers` without the peers' venvs: `make bench-peers` installs them."""

    exit_code = 2
