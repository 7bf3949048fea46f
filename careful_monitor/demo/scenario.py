"""The demo scenario: a ticket router trained on real tickets and two synthetic sets.

- `tickets-real` (the anchor): amounts (log-normal), account age, item count, country (Zipf over
  24, with rare ones), channel, free text, and the model's label, class probabilities and score.
- `tickets-synth-collapsed`: the fingerprints of a collapsed generator: narrower amounts with thin
  tails, rare countries missing, repetitive short text, inflated confidence.
- `tickets-synth-faithful`: drawn from the same law as the anchor.
- The live stream: `stable_windows` windows like the anchor (model version 7), then version 8,
  whose inputs drift toward the collapsed set (its share ramps to `final_share`).

Everything is drawn from one `numpy.random.Generator`; timestamps advance one second per event.

>>> import numpy as np
>>> rows = sample_rows(np.random.default_rng(0), 5, "anchor")
>>> sorted(rows[0]["inputs"]), sorted(rows[0]["outputs"])
(['account_age_days', 'amount', 'channel', 'country', 'items', 'text'], ['label', 'probs', 'score'])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from careful_monitor.engine.monitor import ModelBatch
from careful_monitor.engine.profile import ReferenceProfile, build_profile

MODEL = "ticket-router"
ANCHOR = "tickets-real"
COLLAPSED = "tickets-synth-collapsed"
FAITHFUL = "tickets-synth-faithful"
START_TS = 1_764_000_000.0

LABELS = ["billing", "tech", "account"]
COUNTRIES = ["DE", "FR", "US", "GB", "ES", "IT", "NL", "PL", "SE", "BE", "AT", "CH", "DK", "FI", "NO", "IE",
             "PT", "CZ", "HU", "RO", "GR", "SK", "SI", "LU"]
CHANNELS = ["email", "chat", "phone", "web"]
_WORDS = [
    "refund", "please", "invoice", "charged", "twice", "card", "payment", "failed", "login", "password", "reset",
    "cannot", "access", "account", "locked", "error", "app", "crash", "slow", "update", "install", "broken", "link",
    "order", "delivery", "late", "missing", "item", "wrong", "size", "return", "label", "address", "change", "email",
    "phone", "number", "subscription", "cancel", "renew", "plan", "upgrade", "downgrade", "price", "discount", "coupon",
    "code", "expired", "bank", "transfer", "receipt", "tax", "vat", "export", "data", "privacy", "delete", "profile",
    "settings", "notification", "spam", "security", "two", "factor", "token", "device", "mobile", "desktop", "browser",
    "cookie", "session", "timeout", "server", "outage", "status", "page", "billing", "cycle", "credit", "balance",
    "overdue", "reminder", "fee", "late", "charge", "dispute", "chargeback", "thanks", "hello", "hi", "urgent", "asap",
    "today", "yesterday", "week", "month", "still", "waiting", "again", "help", "support", "agent", "manager",
    "escalate", "ticket", "number", "reference", "case", "open", "closed", "resolved", "unresolved", "issue", "problem",
    "question"
]
FEATURES = {"inputs.amount": "numeric", "inputs.account_age_days": "numeric", "inputs.items": "numeric",
            "inputs.country": "categorical", "inputs.channel": "categorical", "inputs.text": "text",
            "outputs.label": "categorical", "outputs.probs": "probs", "outputs.score": "numeric"}


@dataclass(frozen=True)
class Law:
    """Parameters of one data-generating law."""

    amount_sigma: float = 0.9
    countries: int = len(COUNTRIES)
    vocab: int = len(_WORDS)
    text_len: tuple[int, int] = (5, 16)
    temperature: float = 1.0


LAWS = {"anchor": Law(), "faithful": Law(),
        "collapsed": Law(amount_sigma=0.45, countries=8, vocab=25, text_len=(6, 8), temperature=0.45)}


def _zipf(k: int, s: float = 1.1) -> np.ndarray:
    p = 1.0 / np.arange(1, k + 1) ** s
    return p / p.sum()


def sample_columns(rng: np.random.Generator, n: int, law: Law) -> dict[str, Any]:
    """Columnar draw of n rows from one law (vectorised; texts are joined per row)."""
    amount = np.round(np.exp(rng.normal(3.5, law.amount_sigma, n)), 2)
    age = np.round(rng.gamma(2.0, 200.0, n), 1)
    items = rng.poisson(2.0, n) + 1
    country_p = _zipf(len(COUNTRIES))[: law.countries]
    country = np.array(COUNTRIES[: law.countries])[rng.choice(law.countries, n, p=country_p / country_p.sum())]
    channel = np.array(CHANNELS)[rng.choice(4, n, p=[0.4, 0.3, 0.2, 0.1])]
    word_p = _zipf(law.vocab, 1.0)
    lengths = rng.integers(law.text_len[0], law.text_len[1] + 1, n)
    words = np.array(_WORDS[: law.vocab])[rng.choice(law.vocab, int(lengths.sum()), p=word_p)].tolist()
    texts, pos = [], 0
    for ln in lengths.tolist():
        texts.append(" ".join(words[pos:pos + ln]))
        pos += ln
    label_idx = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    logits = rng.normal(0.0, 1.0, (n, 3))
    logits[np.arange(n), label_idx] += 1.5
    z = logits / law.temperature
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p = np.round(p, 4)
    return {"amount": amount, "age": age, "items": items, "country": country, "channel": channel, "text": texts,
            "probs": p}


def _rows(cols: dict[str, Any]) -> list[dict[str, Any]]:
    amount, age, items = cols["amount"].tolist(), cols["age"].tolist(), cols["items"].tolist()
    country, channel, probs = cols["country"].tolist(), cols["channel"].tolist(), cols["probs"].tolist()
    out = []
    for i in range(len(amount)):
        pr = probs[i]
        k = max(range(3), key=pr.__getitem__)
        out.append({"inputs": {"amount": amount[i], "account_age_days": age[i], "items": items[i],
                               "country": country[i], "channel": channel[i], "text": cols["text"][i]},
                    "outputs": {"label": LABELS[k], "probs": dict(zip(LABELS, pr, strict=True)), "score": pr[k]}})
    return out


def sample_rows(rng: np.random.Generator, n: int, law: str) -> list[dict[str, Any]]:
    """Dataset rows (`{"inputs": ..., "outputs": ...}`) from a named law."""
    return _rows(sample_columns(rng, n, LAWS[law]))


def live_events(rng: np.random.Generator, *, windows: int = 20, window_size: int = 1000, stable_windows: int = 8,
                ramp_windows: int = 4, final_share: float = 0.7, start_ts: float = START_TS) -> list[dict[str, Any]]:
    """The live stream: anchor-like, then drifting toward the collapsed law (share ramps up)."""
    events = []
    anchor_rows = sample_rows(rng, windows * window_size, "anchor")
    collapsed_rows = sample_rows(rng, windows * window_size, "collapsed")
    for w in range(windows):
        drift = w - stable_windows
        share = 0.0 if drift < 0 else final_share * min(1.0, (drift + 1) / ramp_windows)
        take = rng.random(window_size) < share
        for j in range(window_size):
            i = w * window_size + j
            row = collapsed_rows[i] if take[j] else anchor_rows[i]
            events.append({"model": MODEL, "model_version": "7" if drift < 0 else "8", "ts": start_ts + i,
                           "id": f"req-{i}", **row})
    return events


def bad_lines(ts: float) -> list[bytes]:
    """One event of each kind the service rejects, to show the dead letters."""
    return [
        b'{"model": "ticket-router", "inputs": {"amount": 12.5',  # decode: truncated JSON
        b'{"model": "ticket-router", "ts": %d, "inputs": {"amount": [1, 2]}}' % int(ts),  # schema: nested value
        b'{"inputs": {"amount": 3.0}}',  # schema: no model
        b'{"model": "fraud-scorer", "ts": %d, "inputs": {"amount": 3.0}}' % int(ts),  # unknown_model
        b'{"model": "ticket-router", "ts": %d, "inputs": {"text": "%s"}}' % (int(ts), b"x" * 70_000),  # too_large
    ]


def config_dict() -> dict[str, Any]:
    return {
        "models": {MODEL: {"anchor": ANCHOR, "training_mix": {ANCHOR: 0.4, COLLAPSED: 0.3, FAITHFUL: 0.3},
                           "features": dict(FEATURES)}},
        "window": {"size": 1000, "max_seconds": 3600, "min_size": 200},
        "limits": {"max_event_bytes": 65536, "versions_per_model": 5},
        "store": {"url": "sqlite:///careful.db"},
        "dead_letters": {"path": "dead-letters.jsonl"},
        # interactive: `datasets retire` shows in the served dataset_state within 2 s
        "governance": {"poll_seconds": 2},
    }


CARDS = {
    ANCHOR: {"name": ANCHOR, "role": "real", "purpose": "production tickets, the ground truth the mix is anchored to",
             "provenance": {"source": "ticket logs 2025Q3", "reviewer": "data-platform"},
             "lifecycle": {"owner": "data-platform", "review_every_days": 90}, "data": "tickets_real.jsonl"},
    COLLAPSED: {"name": COLLAPSED, "role": "synthetic", "purpose": "cover rare refund intents the logs under-sample",
                "anchored_by": ANCHOR,
                "provenance": {"generator": "some-llm-2025-06", "prompt_ref": "prompts/refund.txt", "seed": 7,
                               "parameters": {"temperature": 0.3}, "parent": ANCHOR},
                "evaluation_isolation": {"excluded_from": ["tickets-eval-2025q3"]},
                "filtering": {"gates": ["dedup", "toxicity<0.2"]}, "use_limits": ["no-evaluation"],
                "lifecycle": {"owner": "data-platform", "review_every_days": 30},
                "data": "tickets_synth_collapsed.parquet"},
    FAITHFUL: {"name": FAITHFUL, "role": "synthetic", "purpose": "more volume at the anchor's distribution",
               "anchored_by": ANCHOR, "provenance": {"generator": "tabular-copula-2025-09", "seed": 11},
               "lifecycle": {"owner": "data-platform", "review_every_days": 90}, "data": "tickets_synth_faithful.csv"},
}


def rows_to_columns(rows: list[dict[str, Any]]) -> dict[str, list]:
    """Dataset rows or events -> one list per monitored feature (`FEATURES`), None where a row lacks it."""
    cols: dict[str, list] = {}
    for f in FEATURES:
        section, key = f.split(".", 1)
        cols[f] = [r[section].get(key) for r in rows]
    return cols


def events_to_batch(events: list[dict[str, Any]]) -> ModelBatch:
    """Live events -> the engine's batch (timestamps, model versions, columns)."""
    return ModelBatch([e.get("ts") for e in events], [e.get("model_version") for e in events], rows_to_columns(events))


def profiles(rng: np.random.Generator) -> tuple[ReferenceProfile, dict[str, ReferenceProfile]]:
    """The anchor (20,000 rows) and the two synthetic sets (8,000 rows each) profiled from one generator."""
    anchor = build_profile(ANCHOR, "real", rows_to_columns(sample_rows(rng, 20_000, "anchor")), kinds=FEATURES,
                           rng=rng)
    sets = {name: build_profile(name, "synthetic", rows_to_columns(sample_rows(rng, 8_000, law)), kinds=FEATURES,
                                anchor=anchor, anchored_by=anchor.name, rng=rng)
            for name, law in ((COLLAPSED, "collapsed"), (FAITHFUL, "faithful"))}
    return anchor, sets
