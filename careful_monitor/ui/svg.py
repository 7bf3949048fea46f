"""Server-side SVG plots of the evidence pages: no JavaScript, no plotting library, every label escaped.

`histogram(plot)` draws an `evidence.plot_for` document as grouped bars, one `<g class="series"
data-series=...>` per series (anchor, window, synthetic); a missing synthetic series is a dashed,
empty legend entry `<g class="series-absent">` that says why. `trend(...)` draws lines over window
indices with dashed threshold lines; `joint_plot(doc)` draws an `evidence.joint_trend` document, the
window-level joint test's effect per window against its floor, flagged windows filled. Each has a
`<title>` and a `<desc>` and returns `markupsafe.Markup` for the templates.

>>> svg = histogram({"feature": "inputs.x", "kind": "numeric", "labels": ["< 0", ">= 0"],
...                  "anchor": [0.5, 0.5], "window": [0.9, 0.1], "synthetic": [1.0, 0.0], "n_window": 10})
>>> svg.count('class="series"'), 'data-series="synthetic"' in svg
(3, True)
>>> "<script>" in histogram({"feature": "<script>", "kind": "categorical", "labels": ["<script>"],
...                          "anchor": [1.0], "window": [1.0], "synthetic": None, "n_window": 1})
False
>>> stale = histogram({"feature": "x", "kind": "numeric", "labels": ["< 0", ">= 0"], "anchor": [0.5, 0.5],
...                    "window": [0.9, 0.1], "synthetic": None, "synthetic_absent": "no_blamed_set", "n_window": 10})
>>> stale.count('class="series"'), 'class="series-absent" data-series="synthetic"' in stale
(2, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

#: series colours (Okabe-Ito, distinguishable with colour-blindness), also used by the legend
COLOURS = {"anchor": "#0072B2", "window": "#D55E00", "synthetic": "#CC79A7"}
NAMES = {"anchor": "real anchor", "window": "live window", "synthetic": "blamed synthetic set"}
_W, _H, _LEFT, _RIGHT, _TOP, _BOTTOM = 720, 260, 48, 12, 28, 76
#: why a plot has no synthetic series (evidence.ABSENT_REASONS), as the legend and the page say it
ABSENT = {"no_blamed_set": "none: no synthetic set is blamed (anchor stale)",
          "feature_missing": "none: the blamed set has no values of this feature",
          "grid_mismatch": "none: the blamed set is not on the anchor's grid",
          "not_stored": "none stored with this alert"}
#: what the effect of each window-level joint test measures (engine/comparisons/joint.py, mmd.py)
JOINT_EFFECTS = {"mmd": "bias-corrected MMD of the copula scores (kernel units)",
                 "joint": "largest change of a pairwise copula correlation"}


def _fmt(x: float) -> str:
    return f"{x:.1f}"


def _legend(series: Sequence[str], x0: float) -> list[str]:
    out, x = [], x0
    for s in series:
        out.append(f'<rect x="{_fmt(x)}" y="6" width="12" height="12" fill="{COLOURS[s]}"/>'
                   f'<text x="{_fmt(x + 16)}" y="16" font-size="12">{escape(NAMES[s])}</text>')
        x += 24 + 7 * len(NAMES[s])
    return out


def histogram(plot: Mapping[str, Any]) -> Markup:
    """Grouped bars of shares per bin or category: anchor, window and (when known) the synthetic set."""
    labels: list[str] = list(plot["labels"])
    series = [s for s in ("anchor", "window", "synthetic") if plot.get(s) is not None]
    values = {s: [float(v) for v in plot[s]] for s in series}
    top = max([max(v, default=0.0) for v in values.values()] + [1e-9])
    n = max(len(labels), 1)
    inner_w, inner_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    slot = inner_w / n
    bar = max(slot * 0.8 / max(len(series), 1), 1.0)
    title = f"{plot['feature']}: share per {'token' if plot['kind'] == 'text' else 'bin'}"
    absent = None if "synthetic" in series else ABSENT.get(plot.get("synthetic_absent") or "not_stored",
                                                            ABSENT["not_stored"])
    units = {"text": "tokens", "categorical": "categories"}.get(plot["kind"], "bins")
    desc = (f"Share of values in each of {n} {units} for the " + ", the ".join(NAMES[s] for s in series)
            + ("" if absent is None else f"; {NAMES['synthetic']}: {absent}") + ".")
    parts = [f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" role="img" '
             f'aria-label="{escape(title)}" data-feature="{escape(plot["feature"])}">',
             f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>",
             f'<line x1="{_LEFT}" y1="{_TOP + inner_h}" x2="{_W - _RIGHT}" y2="{_TOP + inner_h}" stroke="#444"/>',
             f'<text x="4" y="{_TOP + 10}" font-size="11">{top:.0%}</text>',
             f'<text x="4" y="{_TOP + inner_h}" font-size="11">0</text>']
    parts += _legend(series, _LEFT)
    if absent is not None:
        lx = float(_LEFT + sum(24 + 7 * len(NAMES[s]) for s in series))
        label = f"{NAMES['synthetic']}: {absent}"
        parts.append(f'<g class="series-absent" data-series="synthetic" '
                     f'data-reason="{escape(plot.get("synthetic_absent") or "not_stored")}">'
                     f'<rect x="{_fmt(lx)}" y="6" width="12" height="12" fill="none" stroke="{COLOURS["synthetic"]}" '
                     f'stroke-dasharray="2 2"/><text x="{_fmt(lx + 16)}" y="16" font-size="12">{escape(label)}</text>'
                     "</g>")
    for k, s in enumerate(series):
        rects = []
        for i, v in enumerate(values[s]):
            h = inner_h * v / top
            x = _LEFT + i * slot + slot * 0.1 + k * bar
            rects.append(f'<rect x="{_fmt(x)}" y="{_fmt(_TOP + inner_h - h)}" width="{_fmt(bar)}" '
                         f'height="{_fmt(h)}"><title>{escape(NAMES[s])}, {escape(labels[i])}: {v:.1%}</title></rect>')
        parts.append(f'<g class="series" data-series="{s}" fill="{COLOURS[s]}">{"".join(rects)}</g>')
    step = max(1, n // 24)  # at most ~24 axis labels
    for i in range(0, n, step):
        x = _LEFT + (i + 0.5) * slot
        text = labels[i] if len(labels[i]) <= 14 else labels[i][:13] + "\u2026"
        parts.append(f'<text x="{_fmt(x)}" y="{_TOP + inner_h + 12}" font-size="10" text-anchor="end" '
                     f'transform="rotate(-40 {_fmt(x)} {_TOP + inner_h + 12})">{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def trend(title: str, xs: Sequence[int], lines: Mapping[str, Sequence[float | None]],
          thresholds: Mapping[str, float] | None = None, *, signal: str | None = None) -> Markup:
    """Lines over window indices (None breaks a line), with dashed, labelled threshold lines."""
    thresholds = dict(thresholds or {})
    ys = [y for v in lines.values() for y in v if y is not None] + list(thresholds.values())
    lo, hi = min([*ys, 0.0]), max([*ys, 1e-09])
    if hi - lo < 1e-12:
        hi = lo + 1.0
    w, h, left, top, bottom = 720, 200, 48, 24, 28
    inner_w, inner_h = w - left - 12, h - top - bottom
    x0, x1 = (min(xs), max(xs)) if xs else (0, 1)
    span = max(x1 - x0, 1)

    def px(x: float) -> float:
        return left + inner_w * (x - x0) / span

    def py(y: float) -> float:
        return top + inner_h * (1 - (y - lo) / (hi - lo))

    palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"]
    extra = f' data-signal="{escape(signal)}"' if signal else ""
    parts = [f'<svg class="trend-plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" '
             f'aria-label="{escape(title)}"{extra}>', f"<title>{escape(title)}</title>",
             f'<text x="4" y="{top + 8}" font-size="11">{hi:.3g}</text>',
             f'<text x="4" y="{top + inner_h}" font-size="11">{lo:.3g}</text>',
             f'<text x="{left}" y="{h - 6}" font-size="11">window {x0}</text>',
             f'<text x="{w - 12}" y="{h - 6}" font-size="11" text-anchor="end">window {x1}</text>']
    for name, level in thresholds.items():
        parts.append(f'<line class="threshold" x1="{left}" x2="{w - 12}" y1="{_fmt(py(level))}" '
                     f'y2="{_fmt(py(level))}" stroke="#555" stroke-dasharray="4 3"/><text x="{w - 14}" '
                     f'y="{_fmt(py(level) - 3)}" font-size="10" text-anchor="end">{escape(name)} {level:.3g}</text>')
    legend_x = left
    for k, (name, values) in enumerate(lines.items()):
        colour = palette[k % len(palette)]
        segments: list[list[str]] = []
        current: list[str] = []
        for x, y in zip(xs, values, strict=True):
            if y is None:
                if current:
                    segments.append(current)
                current = []
            else:
                current.append(f"{_fmt(px(x))},{_fmt(py(y))}")
        if current:
            segments.append(current)
        body = "".join(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(seg)}"/>'
                       for seg in segments)
        parts.append(f'<g class="line" data-line="{escape(name)}">{body}</g>'
                     f'<rect x="{legend_x}" y="4" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{legend_x + 14}" y="13" font-size="11">{escape(name)}</text>')
        legend_x += 30 + 7 * len(name)
    parts.append("</svg>")
    return Markup("".join(parts))


def joint_plot(doc: Mapping[str, Any]) -> Markup:
    """A window-level joint test's effect per window (an `evidence.joint_trend` document) against its floor.

    Filled points: windows where the test was flagged (significant after BH and at least the floor);
    hollow: not flagged; a dotted line marks the alert's window.

    >>> svg = joint_plot({"feature": "joint", "test": "mmd", "windows": [4, 5], "effect": [0.0, 0.12],
    ...                   "statistic": [30.0, 900.0], "p_value": [0.2, 0.0], "flagged": [False, True],
    ...                   "floor": 0.01, "floor_key": "mmd", "alert_window": 5})
    >>> svg.count('class="point flagged"'), svg.count('class="point"'), "<desc>" in svg
    (1, 1, True)
    """
    test, xs = str(doc["test"]), [int(x) for x in doc["windows"]]
    effects: list[float | None] = [None if v is None else float(v) for v in doc["effect"]]
    floor, alert_window = float(doc["floor"]), int(doc["alert_window"])
    w, h, left, right, top, bottom = 720, 220, 48, 12, 28, 30
    inner_w, inner_h = w - left - right, h - top - bottom
    hi = max([v for v in effects if v is not None] + [floor, 1e-9]) * 1.15
    x0, x1 = (min(xs), max(xs)) if xs else (alert_window, alert_window)
    span = max(x1 - x0, 1)

    def px(x: float) -> float:
        return left + inner_w * (x - x0) / span if x1 > x0 else left + inner_w / 2

    def py(y: float) -> float:
        return top + inner_h * (1 - y / hi)

    measure = JOINT_EFFECTS.get(test, "effect")
    flagged_at = [x for x, f in zip(xs, doc["flagged"], strict=True) if f]
    title = f"joint ({test}): effect per window, windows {x0}..{x1}"
    desc = (f"{measure} of the joint features between each window and the real anchor; dashed: the floor "
            f"policy.min_effect.{doc.get('floor_key') or test} = {floor:.3g}; flagged (significant after "
            f"Benjamini-Hochberg and at least the floor) in windows "
            f"{', '.join(map(str, flagged_at)) or 'none'}; the alert was raised at window {alert_window}.")
    colour = COLOURS["window"]
    ax = px(alert_window)
    right_half = ax > left + inner_w / 2  # label on the side with room
    anchor_end = ' text-anchor="end"' if right_half else ""
    alert_label = (f'<text x="{_fmt(ax - 3 if right_half else ax + 3)}" y="{top + 10}" font-size="10"'
                   f"{anchor_end}>alert</text>")
    parts = [f'<svg class="joint-plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" '
             f'aria-label="{escape(title)}" data-feature="joint" data-test="{escape(test)}">',
             f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>",
             f'<line x1="{left}" y1="{top + inner_h}" x2="{w - right}" y2="{top + inner_h}" stroke="#444"/>',
             f'<text x="4" y="{top + 8}" font-size="11">{hi:.3g}</text>',
             f'<text x="4" y="{top + inner_h}" font-size="11">0</text>',
             f'<text x="{left}" y="{h - 6}" font-size="11">window {x0}</text>',
             f'<text x="{w - right}" y="{h - 6}" font-size="11" text-anchor="end">window {x1}</text>',
             f'<line class="threshold" x1="{left}" x2="{w - right}" y1="{_fmt(py(floor))}" y2="{_fmt(py(floor))}" '
             f'stroke="#555" stroke-dasharray="4 3"/><text x="{w - right - 2}" y="{_fmt(py(floor) - 3)}" '
             f'font-size="10" text-anchor="end">floor {floor:.3g}</text>',
             f'<line class="alert-window" x1="{_fmt(ax)}" x2="{_fmt(ax)}" y1="{top}" '
             f'y2="{top + inner_h}" stroke="#000" stroke-dasharray="1 3"/>{alert_label}']
    segments: list[list[str]] = [[]]
    for x, y in zip(xs, effects, strict=True):
        if y is None:
            segments.append([])
        else:
            segments[-1].append(f"{_fmt(px(x))},{_fmt(py(y))}")
    lines = "".join(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(seg)}"/>'
                    for seg in segments if len(seg) > 1)
    points = []
    for x, y, st, p, f in zip(xs, effects, doc["statistic"], doc["p_value"], doc["flagged"], strict=True):
        if y is None:
            continue
        tip = (f"window {x}: effect {y:.3g}, statistic {float(st):.4g}, p = {float(p):.2g}, "
               f"{'flagged' if f else 'not flagged'}")
        points.append(f'<circle class="point{" flagged" if f else ""}" cx="{_fmt(px(x))}" cy="{_fmt(py(y))}" r="4" '
                      f'fill="{colour if f else "#fff"}" stroke="{colour}" stroke-width="2">'
                      f"<title>{escape(tip)}</title></circle>")
    parts.append(f'<g class="line" data-line="effect">{lines}{"".join(points)}</g>')
    label = f"effect: {measure}"
    parts.append(f'<g class="legend"><rect x="{left}" y="6" width="12" height="12" fill="{colour}"/>'
                 f'<text x="{left + 16}" y="16" font-size="12">{escape(label)}</text>'
                 f'<circle cx="{left + 40 + 7 * len(label)}" cy="12" r="4" fill="{colour}"/>'
                 f'<text x="{left + 48 + 7 * len(label)}" y="16" font-size="12">flagged</text>'
                 f'<circle cx="{left + 120 + 7 * len(label)}" cy="12" r="4" fill="#fff" stroke="{colour}" '
                 f'stroke-width="2"/><text x="{left + 128 + 7 * len(label)}" y="16" font-size="12">not flagged</text>'
                 "</g>")
    parts.append("</svg>")
    return Markup("".join(parts))
