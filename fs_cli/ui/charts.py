"""Inline SVG charts drawn in Python: no JavaScript, no network, nothing to load at view time.

Each function takes plain numbers and returns an SVG document as text (the template inserts it as is), or "" when
there is nothing to draw. Every text that reaches the SVG goes through `_esc`: labels come from the warehouse.
"""

from __future__ import annotations

from html import escape
from typing import Any

WIDTH, HEIGHT = 640, 220
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 16, 22, 44
#: Stable colours per series name (a series keeps its colour from chart to chart); others cycle through PALETTE.
NAMED = {"inserted": "#2e7d32", "updated": "#1565c0", "deleted": "#c62828", "rows": "#6a1b9a"}
PALETTE = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#c62828", "#00838f", "#5d4037", "#ad1457"]


def _esc(text: Any) -> str:
    return escape(str(text), quote=True)


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e6:
        return f"{v / 1e6:.3g}M"
    if abs(v) >= 1e3:
        return f"{v / 1e3:.3g}k"
    return f"{v:.3g}"


def colour(name: str, i: int) -> str:
    return NAMED.get(name) or PALETTE[i % len(PALETTE)]


def _frame(title: str, body: list[str], legend: list[tuple[str, str]]) -> str:
    items = []
    x = PAD_LEFT
    for name, col in legend:
        items.append(f'<rect x="{x}" y="{HEIGHT - 14}" width="10" height="10" fill="{col}"/>'
                     f'<text x="{x + 14}" y="{HEIGHT - 5}" class="legend">{_esc(name)}</text>')
        x += 22 + 7 * len(name)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{_esc(title)}">'
            f'<title>{_esc(title)}</title><text x="{PAD_LEFT}" y="11" class="caption">{_esc(title)}</text>'
            + "".join(body) + "".join(items) + "</svg>")


def _axes(top: float, labels: list[str]) -> tuple[list[str], float, float]:
    """Y grid with 4 ticks up to `top`, x labels under evenly spaced slots; returns (elements, plot width, height)."""
    pw, ph = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM
    out = []
    for k in range(5):
        y = PAD_TOP + ph - ph * k / 4
        out.append(f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                   f'<text x="{PAD_LEFT - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{_fmt(top * k / 4)}</text>')
    n = max(len(labels), 1)
    every = max(1, n // 10)  # at most ~10 x labels
    for i, lab in enumerate(labels):
        if i % every == 0 or i == n - 1:
            x = PAD_LEFT + pw * (i + 0.5) / n
            out.append(f'<text x="{x:.1f}" y="{PAD_TOP + ph + 14}" class="tick" text-anchor="middle">{_esc(lab)}</text>')
    return out, pw, ph


def stacked_bars(title: str, labels: list[str], series: dict[str, list[float]]) -> str:
    """One bar per label, the series stacked (e.g. inserted/updated/deleted rows per commit)."""
    if not labels or not series:
        return ""
    totals = [sum(max(0.0, float(s[i] or 0)) for s in series.values()) for i in range(len(labels))]
    top = max(totals) or 1.0
    body, pw, ph = _axes(top, labels)
    n = len(labels)
    slot = pw / n
    bar = max(2.0, min(40.0, slot * 0.7))
    for i in range(n):
        y = PAD_TOP + ph
        for j, (name, values) in enumerate(series.items()):
            v = max(0.0, float(values[i] or 0))
            h = ph * v / top
            if h <= 0:
                continue
            y -= h
            x = PAD_LEFT + slot * i + (slot - bar) / 2
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colour(name, j)}">'
                        f"<title>{_esc(labels[i])}: {_esc(name)} {_fmt(v)}</title></rect>")
    return _frame(title, body, [(name, colour(name, j)) for j, name in enumerate(series)])


def lines(title: str, labels: list[str], series: dict[str, list[float | None]],
          threshold: float | None = None) -> str:
    """One polyline per series over the labels (None = a gap), with an optional dashed threshold line."""
    values = [float(v) for s in series.values() for v in s if v is not None]
    if not labels or not values:
        return ""
    top = max([*values, threshold or 0.0]) or 1.0
    top *= 1.05
    body, pw, ph = _axes(top, labels)
    n = len(labels)

    def point(i: int, v: float) -> str:
        return f"{PAD_LEFT + pw * (i + 0.5) / n:.1f},{PAD_TOP + ph - ph * max(v, 0.0) / top:.1f}"

    if threshold is not None:
        y = PAD_TOP + ph - ph * threshold / top
        body.append(f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="threshold">'
                    f"<title>threshold {_fmt(threshold)}</title></line>")
    for j, (name, vals) in enumerate(series.items()):
        col = colour(name, j)
        run: list[str] = []
        for i, v in enumerate([*vals, None]):
            if v is None:
                if len(run) > 1:
                    body.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{col}" stroke-width="2"/>')
                run = []
                continue
            p = point(i, float(v))
            run.append(p)
            x, y = p.split(",")
            body.append(f'<circle cx="{x}" cy="{y}" r="3" fill="{col}"><title>{_esc(labels[i])}: {_esc(name)} '
                        f"{_fmt(float(v))}</title></circle>")
    return _frame(title, body, [(name, colour(name, j)) for j, name in enumerate(series)])


def hbars(title: str, items: list[tuple[str, float]]) -> str:
    """Horizontal bars, one per (label, value): a distribution or a per-slice metric."""
    if not items:
        return ""
    top = max(abs(float(v)) for _, v in items) or 1.0
    row, label_w = 20, 150
    height = PAD_TOP + row * len(items) + 24
    body = []
    for i, (lab, v) in enumerate(items):
        y = PAD_TOP + row * i
        w = (WIDTH - label_w - 80) * abs(float(v)) / top
        body.append(f'<text x="{label_w - 6}" y="{y + 14}" class="tick" text-anchor="end">{_esc(str(lab)[:24])}</text>'
                    f'<rect x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row - 6}" fill="{PALETTE[0]}">'
                    f"<title>{_esc(lab)}: {_fmt(float(v))}</title></rect>"
                    f'<text x="{label_w + w + 6:.1f}" y="{y + 14}" class="tick">{_fmt(float(v))}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
            f'height="{height}" role="img" aria-label="{_esc(title)}"><title>{_esc(title)}</title>'
            + "".join(body) + "</svg>")
