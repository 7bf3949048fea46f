"""An alert in plain words, from its JSON document: the demo, `alerts show`, the evidence page and `report`.

>>> a = {"alert_id": "m:d:10:retire_recommended", "state": "retire_recommended", "since_window": 8, "window": 10,
...      "model_versions": ["8"], "dataset": "d", "affinity": 0.9, "share": 0.5, "action": "retire d",
...      "evidence": [{"feature": "inputs.x", "signal": "spread_ratio", "value": 0.5, "p_value": 1e-9}]}
>>> lines = explain(a)
>>> lines[0], lines[-1], lines[-2]
('ALERT m:d:10:retire_recommended', '  action: retire d', '    - inputs.x spread_ratio = 0.5 (p = 1e-09)')
>>> "for 3 windows" in lines[2] and "about 50%" in lines[2]
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: the CAREFUL questions a card answers (README "Governance"), each with the card fields that answer it
CAREFUL_ANSWERS = (
    ("C", "Purpose: why does this dataset exist?", ("purpose",)),
    ("A", "Anchor: which real data does it imitate?", ("anchored_by",)),
    ("R", "Record: where did it come from?", ("provenance",)),
    ("E", "Evaluation isolation: what must it never touch?", ("evaluation_isolation",)),
    ("F", "Filtering: which gates did it pass, where are the rejects?", ("filtering",)),
    ("U", "Use limits: what may it not be used for?", ("use_limits",)),
    ("L", "Lifecycle: who owns it, when is it reviewed?", ("lifecycle",)),
)


def explain(alert: Mapping[str, Any], *, evidence: int = 6) -> list[str]:
    """The alert's explanation as lines of text (no markup: the caller escapes or prints it)."""
    versions = ", ".join(alert.get("model_versions") or []) or "none"
    lines = [f"ALERT {alert['alert_id']}",
             f"  state: {alert['state']} (watch since window {alert['since_window']}, "
             f"raised at window {alert['window']}, model versions {versions})"]
    if alert["state"] == "retire_recommended":
        since = alert["since_window"] if alert["since_window"] is not None else alert["window"]
        lines.append(f"  why: live traffic has been drifting away from the real anchor for "
                     f"{alert['window'] - since + 1} windows, and the drift points toward "
                     f"{alert['dataset']} (affinity {alert['affinity'] or 0:.2f}; "
                     f"about {alert['share'] or alert.get('group_share') or 0:.0%} of a window looks "
                     f"like it). The collapse fingerprints are in the evidence:")
    else:
        lines.append("  why: live traffic moved away from the anchor in a way no synthetic set explains:")
    for e in alert["evidence"][:evidence]:
        lines.append(f"    - {e['feature']} {e['signal']} = {e['value']:.3g} (p = {e['p_value']:.2g})")
    lines.append(f"  action: {alert['action']}")
    return lines


def card_answers(card: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """(letter, question, the card's answer or None) for the seven CAREFUL questions."""
    out = []
    for letter, question, fields in CAREFUL_ANSWERS:
        values = {f: card.get(f) for f in fields if card.get(f) not in (None, "", [], {})}
        out.append((letter, question, (next(iter(values.values())) if len(values) == 1 else values) or None))
    return out
