"""Tiny inline-SVG line charts for the self-contained HTML report (no JS, no CDN)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 38, 44
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")
MAX_POINTS = 800  # polylines are decimated to this many points


Series = tuple[str, Sequence[float], Sequence[float]]


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _fmt(v: float, step: float) -> str:
    """A tick label with as many decimals as the tick step needs (distinct labels)."""
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    return f"{v:,.{decimals}f}".replace(",", " ") if abs(v) >= 10_000 else f"{v:.{decimals}f}"


def _step(ticks: list[float]) -> float:
    return ticks[1] - ticks[0] if len(ticks) > 1 else 1.0


def _decimate(xs: Sequence[float], ys: Sequence[float]) -> list[tuple[float, float]]:
    pts = [(float(x), float(y)) for x, y in zip(xs, ys, strict=True)]
    pts = [(x, y) for x, y in pts if math.isfinite(x) and math.isfinite(y)]
    if len(pts) <= MAX_POINTS:
        return pts
    stride = len(pts) / MAX_POINTS
    return [pts[int(i * stride)] for i in range(MAX_POINTS)] + [pts[-1]]


@dataclass(frozen=True)
class _Frame:
    """The plot area and the data → pixel mapping."""

    x0: float
    x1: float
    y0: float
    y1: float
    pw: float = WIDTH - LEFT - RIGHT
    ph: float = HEIGHT - TOP - BOTTOM

    def sx(self, x: float) -> float:
        return LEFT + (x - self.x0) / (self.x1 - self.x0) * self.pw

    def sy(self, y: float) -> float:
        return TOP + self.ph - (y - self.y0) / (self.y1 - self.y0) * self.ph


def _frame(points: list[tuple[float, float]], x_max: float | None) -> _Frame:
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(0.0, *(p[1] for p in points)), max(p[1] for p in points)
    if x_max is not None and x_max > x0:
        x1 = x_max
    if x1 <= x0:  # one x value: a window around it, not a zero-width axis
        pad = abs(x0) * 0.1 or 1.0
        x0, x1 = x0 - pad, x0 + pad
    return _Frame(x0, x1, y0, y1 if y1 > y0 else y0 + 1)


def _axes(f: _Frame, x_label: str, y_label: str) -> list[str]:
    parts = [
        f'<rect x="{LEFT}" y="{TOP}" width="{f.pw}" height="{f.ph}" fill="none" stroke="#999"/>'
    ]
    xticks, yticks = _ticks(f.x0, f.x1), _ticks(f.y0, f.y1)
    for t in xticks:
        parts.append(
            f'<text class="xtick" x="{f.sx(t):.1f}" y="{TOP + f.ph + 16}" text-anchor="middle" '
            f'font-size="11">{_fmt(t, _step(xticks))}</text>'
        )
    for t in yticks:
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + f.pw}" y1="{f.sy(t):.1f}" y2="{f.sy(t):.1f}" '
            f'stroke="#eee"/><text class="ytick" x="{LEFT - 6}" y="{f.sy(t) + 4:.1f}" '
            f'text-anchor="end" font-size="11">{_fmt(t, _step(yticks))}</text>'
        )
    parts.append(
        f'<text x="{LEFT + f.pw / 2}" y="{HEIGHT - 8}" text-anchor="middle" font-size="12">'
        f"{escape(x_label)}</text>"
        f'<text x="14" y="{TOP + f.ph / 2}" text-anchor="middle" font-size="12" '
        f'transform="rotate(-90 14 {TOP + f.ph / 2})">{escape(y_label)}</text>'
    )
    return parts


def _series(
    f: _Frame,
    k: int,
    name: str,
    pts: list[tuple[float, float]],
    step: bool,
    markers: bool,
    lines: bool,
) -> list[str]:
    color = COLORS[k % len(COLORS)]
    parts: list[str] = []
    if lines:
        coords: list[str] = []
        for i, (x, y) in enumerate(pts):
            if step and i:
                coords.append(f"{f.sx(x):.1f},{f.sy(pts[i - 1][1]):.1f}")
            coords.append(f"{f.sx(x):.1f},{f.sy(y):.1f}")
        parts.append(
            f'<polyline class="series" data-name="{escape(name)}" fill="none" '
            f'stroke="{color}" stroke-width="1.6" points="{" ".join(coords)}"/>'
        )
    if markers or not lines:
        radius = 3 if lines else 1.6
        parts.extend(
            f'<circle data-name="{escape(name)}" cx="{f.sx(x):.1f}" cy="{f.sy(y):.1f}" '
            f'r="{radius}" fill="{color}"/>'
            for x, y in pts
        )
    parts.append(
        f'<text x="{LEFT + 8}" y="{TOP + 14 + 14 * k}" font-size="11" fill="{color}">'
        f"{escape(name)}</text>"
    )
    return parts


def line_chart(
    title: str,
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    *,
    step: bool = False,
    markers: bool = False,
    lines: bool = True,
    x_max: float | None = None,
    note: str | None = None,
) -> str:
    """An ``<svg>`` element with one polyline (or, ``lines=False``, dots) per series, axes,
    ticks and a legend. ``x_max`` clips the x axis (points beyond it are not drawn; say so
    in ``note``, which is printed under the title)."""
    data = [(name, _decimate(xs, ys)) for name, xs, ys in series]
    if x_max is not None:
        data = [(name, [p for p in pts if p[0] <= x_max]) for name, pts in data]
    all_pts = [p for _, pts in data for p in pts]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
        f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" font-size="14">{escape(title)}</text>',
    ]
    if note:
        parts.append(
            f'<text class="note" x="{WIDTH / 2}" y="29" text-anchor="middle" font-size="10" '
            f'fill="#555">{escape(note)}</text>'
        )
    if not all_pts:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no data</text>')
        return "".join(parts) + "</svg>"
    frame = _frame(all_pts, x_max)
    parts.extend(_axes(frame, x_label, y_label))
    for k, (name, pts) in enumerate(data):
        parts.extend(_series(frame, k, name, pts, step, markers, lines))
    parts.append("</svg>")
    return "".join(parts)
