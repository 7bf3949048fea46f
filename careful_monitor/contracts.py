"""The JSON contracts of ARCHITECTURE.md, written from the engine's typed results.

Every adapter that shows a window result or an alert (store, alerts topic, HTTP API, CLI `--json`)
serialises it here, at its own boundary, so there is one definition of each document. Numbers are
rounded as they are stored (statistics, effects and rates to 6 decimals, p-values to 6
significant digits); times become RFC 3339 UTC strings where the contract has strings.

>>> from careful_monitor.engine.types import Evidence
>>> evidence_json(Evidence("inputs.x", "ks", 0.12345678, 1.234567891e-9, 0.12345678))
{'feature': 'inputs.x', 'signal': 'ks', 'value': 0.123457, 'p_value': 1.23457e-09, 'effect': 0.123457}
>>> iso(1764000000.5), iso(-1e15), iso(1e20)
('2025-11-24T16:00:00Z', '0001-01-01T00:00:00Z', '9999-12-31T23:59:59Z')
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from careful_monitor.engine.evaluate import round_p, round_value
from careful_monitor.engine.types import Alert, Attribution, Evidence, QualityRate, TestOutcome, WindowResult

_MIN_TS = -62135596800.0  # 0001-01-01T00:00:00Z
_MAX_TS = 253402300799.0  # 9999-12-31T23:59:59Z, the last second datetime can hold


def iso(ts: float) -> str:
    """Epoch seconds as 'YYYY-MM-DDTHH:MM:SSZ' (seconds truncated); out-of-range times are clamped."""
    ts = min(max(float(ts), _MIN_TS), _MAX_TS) if ts == ts else 0.0
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def evidence_json(e: Evidence) -> dict[str, Any]:
    doc = {"feature": e.feature, "signal": e.signal, "value": round_value(e.value), "p_value": round_p(e.p_value),
           "effect": round_value(e.effect)}
    if e.tokens:  # text tests name the words that moved ("+w" more / novel, "-w" fewer); absent otherwise
        doc["tokens"] = list(e.tokens)
    return doc


def test_json(t: TestOutcome) -> dict[str, Any]:
    r = t.result
    return {"feature": t.feature, "reference": t.reference, "test": r.test, "statistic": round_value(r.statistic),
            "p_value": round_p(r.p_value), "effect": round_value(r.effect), "flagged": t.flagged}


test_json.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def quality_json(q: QualityRate) -> dict[str, Any]:
    return {"feature": q.feature, "signal": q.signal, "value": round_value(q.value), "anchor": round_value(q.anchor)}


def attribution_json(a: Attribution) -> dict[str, Any]:
    return {"dataset": a.dataset, "affinity": round(a.affinity, 6),
            "share": None if a.share is None else round(a.share, 6),
            "share_se": round(a.share_se, 6), "share_identifiable": a.identifiable,
            "group_share": None if a.group_share is None else round(a.group_share, 6),
            "group_share_se": None if a.group_share_se is None else round(a.group_share_se, 6),
            "indistinguishable_from": list(a.indistinguishable_from)}


def window_json(w: WindowResult) -> dict[str, Any]:
    """A window result as stored and served by `/api/models/<model>/windows`."""
    return {
        "model": w.model, "window": w.window, "window_start": w.window_start, "window_end": w.window_end,
        "n_events": w.n_events, "model_versions": list(w.model_versions), "version": w.version,
        "flagged": w.flagged, "flagged_features": list(w.flagged_features),
        "evidence": [evidence_json(e) for e in w.evidence],
        "tests": [test_json(t) for t in w.tests],
        "quality": [quality_json(q) for q in w.quality],
        "attribution": [attribution_json(a) for a in w.attribution],
        "blamed": list(w.blamed), "states": {k: str(v) for k, v in w.states.items()},
        "detector_hits": w.detector_hits,
        "counts": {f: list(c) for f, c in w.counts.items()},
    }


def alert_json(a: Alert, trained_versions: Sequence[str] = ()) -> dict[str, Any]:
    """An alert as README documents it (stored, published on the alerts topic, listed by the CLI and API).

    `trained_versions` are the recorded model versions whose training mix includes the alert's dataset
    (the lineage, which the engine does not know: the pipeline passes them from the store).
    """
    return {
        "alert_id": a.alert_id, "model": a.model, "dataset": a.dataset, "state": str(a.state),
        "since_window": a.since_window, "window": a.window, "window_end": iso(a.window_end),
        "created_at": iso(a.created_at), "model_versions": list(a.model_versions),
        "evidence": [evidence_json(e) for e in a.evidence],
        "affinity": None if a.affinity is None else round_value(a.affinity),
        "share": None if a.share is None else round_value(a.share),
        "share_identifiable": a.share_identifiable,
        "group_share": None if a.group_share is None else round_value(a.group_share),
        "indistinguishable_from": list(a.indistinguishable_from), "action": a.action,
        "trained_versions": list(trained_versions), "acked_by": None, "acked_at": None,
    }
