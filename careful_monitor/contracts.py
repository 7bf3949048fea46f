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
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from careful_monitor.engine.evaluate import round_p, round_value
from careful_monitor.engine.types import Alert, Attribution, Evidence, QualityRate, TestOutcome, WindowResult

_MIN_TS = -62135596800.0  # 0001-01-01T00:00:00Z
_MAX_TS = 253402300799.0  # 9999-12-31T23:59:59Z, the last second datetime can hold


def round_values(xs: Sequence[float]) -> list[float]:
    """`round_value` of many numbers at once: the same floats, in a few array operations.

    y = x * 1e6 is off the exact product by at most |y| 2^-53, so rint(y) is the integer Python's
    correctly rounded `round(x, 6)` picks unless the exact product lies within that of a half; those
    values (a band of 4e-16 |y|), |x| >= 1e9 and non-finite ones are rounded one by one with `round_value`.
    k / 1e6 is then the float nearest to the decimal k * 10^-6, as `round` returns.
    """
    x = np.asarray(xs, dtype=float)
    with np.errstate(invalid="ignore", over="ignore"):
        y = x * 1e6
        out = np.rint(y) / 1e6
        lone = ~(np.abs(x) < 1e9) | (np.abs(y - np.floor(y) - 0.5) <= 4e-16 * np.abs(y))
    values = out.tolist()
    for i in np.flatnonzero(lone).tolist():
        values[i] = round_value(xs[i])
    return values


_POW10 = 10.0 ** np.arange(23)  # exact doubles


def round_ps(ps: Sequence[float]) -> list[float]:
    """`round_p` (6 significant digits) of many p-values at once: the same floats.

    With e = floor(log10 p) and m = 5 - e, the 6 digits are the integer nearest p * 10^m; 10^m is an
    exact double for 0 <= m <= 22 (p from 1e-17 up to 1e5), so rint and one division give the float
    nearest to the decimal, as formatting with `.6g` and parsing back does. Values outside that range,
    near a half (as in `round_values`), or whose scaled value is not 6 digits are done one by one.
    """
    p = np.asarray(ps, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        m = 5 - np.floor(np.log10(np.abs(p)))
        ok = np.isfinite(m) & (m >= 0) & (m <= 22)
        scale = _POW10[np.where(ok, m, 0).astype(np.int64)]
        y = p * scale
        out = np.rint(y) / scale
        a = np.abs(y)
        lone = ~ok | ~((a >= 1e5) & (a < 1e6)) | (np.abs(y - np.floor(y) - 0.5) <= 4e-16 * a)
    values = out.tolist()
    for i in np.flatnonzero(lone).tolist():
        values[i] = round_p(ps[i])
    return values


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


def _tests_json(tests: Sequence[TestOutcome]) -> list[dict[str, Any]]:
    """`test_json` of every test of a window, rounded in bulk (the same values)."""
    stats = round_values([t.result.statistic for t in tests])
    ps = round_ps([t.result.p_value for t in tests])
    effects = round_values([t.result.effect for t in tests])
    return [{"feature": t.feature, "reference": t.reference, "test": t.result.test, "statistic": st,
             "p_value": p, "effect": ef, "flagged": t.flagged}
            for t, st, p, ef in zip(tests, stats, ps, effects, strict=True)]


def _quality_json(quality: Sequence[QualityRate]) -> list[dict[str, Any]]:
    """`quality_json` of every rate of a window, rounded in bulk (the same values)."""
    rounded = round_values([q.value for q in quality] + [q.anchor for q in quality])
    return [{"feature": q.feature, "signal": q.signal, "value": v, "anchor": a}
            for q, v, a in zip(quality, rounded[:len(quality)], rounded[len(quality):], strict=True)]


def window_json(w: WindowResult) -> dict[str, Any]:
    """A window result as stored and served by `/api/models/<model>/windows`."""
    return {
        "model": w.model, "window": w.window, "window_start": w.window_start, "window_end": w.window_end,
        "n_events": w.n_events, "model_versions": list(w.model_versions), "version": w.version,
        "flagged": w.flagged, "flagged_features": list(w.flagged_features),
        "evidence": [evidence_json(e) for e in w.evidence],
        "tests": _tests_json(w.tests),
        "quality": _quality_json(w.quality),
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


def public_card(card: dict[str, Any]) -> dict[str, Any]:
    """The card as served: `data` relative to the card's folder; an absolute one (older records) as its name."""
    data = card.get("data")
    if isinstance(data, str) and (PurePosixPath(data).is_absolute() or PureWindowsPath(data).is_absolute()):
        return {**card, "data": PurePosixPath(data.replace("\\", "/")).name}
    return card
