"""Plots as pure functions of data -> one SVG string, written by hand rather than with matplotlib.

Why hand-written SVG: no 40 MB plotting dependency on CI or a board, byte-identical output for identical data,
and every data mark is an element with class "data" and a <title> carrying its number and evidence label, so
a reader hovers a point to see it and the browser test can count what was drawn.
Every function takes plain numbers (lists, numpy arrays) and returns the <svg> element as text.
"""

from __future__ import annotations

import base64
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import cast

import numpy as np

WIDTH = 760
FONT = "font-family:system-ui,sans-serif;font-size:11px"
# Tableau 10: distinguishable, print-safe.
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")
# viridis at 9 evenly spaced points, interpolated linearly between them.
VIRIDIS = np.array([[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141], [39, 173, 129],
                    [92, 200, 99], [170, 220, 50], [253, 231, 37]], dtype=np.float64)
# a nonzero share is drawn at least this wide (pixels), so a reader can find and hover it
MIN_BAR = 0.5
# a dot plot's marker (a budget) joins the axis only within this factor of the largest value
MARKER_REACH = 10.0
DIVERGING = np.array([[33, 102, 172], [247, 247, 247], [178, 24, 43]], dtype=np.float64)


@dataclass(frozen=True)
class Scale:
    """Maps data values in [lo, hi] to pixels in [start, stop], linearly or on log10."""

    lo: float
    hi: float
    start: float
    stop: float
    log: bool = False

    def _t(self, value: float) -> float:
        if self.log:
            return math.log10(value)
        return value

    def __call__(self, value: float) -> float:
        lo, hi = self._t(self.lo), self._t(self.hi)
        span = hi - lo or 1.0
        return self.start + (self._t(value) - lo) / span * (self.stop - self.start)

    def ticks(self) -> list[float]:
        """About five round values inside the range: 1-2-5 steps, or powers of ten (with 2 and 5 if few)."""
        if self.log:
            first, last = math.floor(math.log10(self.lo)), math.ceil(math.log10(self.hi))
            mantissas = (1.0,) if last - first > 2 else (1.0, 2.0, 5.0)
            values = [m * 10.0**e for e in range(first, last + 1) for m in mantissas]
        else:
            raw = (self.hi - self.lo) / 5 or 1.0
            power = 10.0 ** math.floor(math.log10(raw))
            step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
            values = [i * step for i in range(math.ceil(self.lo / step), math.floor(self.hi / step) + 1)]
        return [v for v in values if self.lo * (1 - 1e-9) <= v <= self.hi * (1 + 1e-9) or self.lo == self.hi]


def span(values: Sequence[float], log: bool, pad: float = 0.05) -> tuple[float, float]:
    """A range holding every value with a margin; log ranges use positive values only."""
    data = [v for v in values if math.isfinite(v) and (v > 0 or not log)]
    if not data:
        return (1.0, 10.0) if log else (0.0, 1.0)
    lo, hi = min(data), max(data)
    if log:
        factor = (hi / lo) ** pad if hi > lo else 2.0
        return lo / factor, hi * factor
    margin = (hi - lo) * pad or abs(hi) * 0.1 or 1.0
    return lo - margin, hi + margin


def number(value: float) -> str:
    """Compact tick text: 1.5k, 26M, 3G, 0.05."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def _text(x: float, y: float, content: str, anchor: str = "middle", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {extra}>{escape(content)}</text>'


def _svg(height: float, title: str, body: list[str]) -> str:
    """The <svg> element: fixed width, scalable, titled for screen readers."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" '
            f'height="{height:.0f}" role="img" aria-label="{escape(title)}" style="{FONT}">'
            f"<title>{escape(title)}</title>{''.join(body)}</svg>")


def _axes(x: Scale, y: Scale, x_label: str, y_label: str, y_ticks: bool = True) -> list[str]:
    """Frame, grid lines, tick labels and axis titles."""
    top, bottom = min(y.start, y.stop), max(y.start, y.stop)
    left, right = min(x.start, x.stop), max(x.start, x.stop)
    out = [f'<g class="axis" stroke="#ccc" fill="none"><rect x="{left:.1f}" y="{top:.1f}" '
           f'width="{right - left:.1f}" height="{bottom - top:.1f}" stroke="#888"/>']
    out += [f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top:.1f}" y2="{bottom:.1f}"/>' for t in x.ticks()]
    out += [f'<line x1="{left:.1f}" x2="{right:.1f}" y1="{y(t):.1f}" y2="{y(t):.1f}"/>' for t in y.ticks()] * y_ticks
    out.append('</g><g class="axis" fill="#333">')
    out += [_text(x(t), bottom + 14, number(t)) for t in x.ticks()]
    out += [_text(left - 5, y(t) + 4, number(t), "end") for t in y.ticks()] * y_ticks
    out.append(_text((left + right) / 2, bottom + 32, x_label))
    out.append(_text(14, (top + bottom) / 2, y_label, extra=f'transform="rotate(-90 14 {(top + bottom) / 2:.1f})"'))
    out.append("</g>")
    return out


def _legend(items: Sequence[tuple[str, str]], x: float, y: float) -> list[str]:
    """Colour swatches with labels, one line each."""
    out = ['<g class="legend">']
    for i, (label, color) in enumerate(items):
        out.append(f'<rect x="{x:.1f}" y="{y + 15 * i:.1f}" width="10" height="10" fill="{color}"/>')
        out.append(_text(x + 14, y + 15 * i + 9, label, "start"))
    out.append("</g>")
    return out


def _point(x: float, y: float, color: str, tip: str, shape: str = "circle") -> str:
    """One data mark with its tooltip."""
    if shape == "square":
        mark = f'<rect class="data" x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{color}"'
    else:
        mark = f'<circle class="data" cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{color}"'
    return f'{mark} fill-opacity="0.85" stroke="#222" stroke-width="0.5"><title>{escape(tip)}</title>' \
           f'{"</rect>" if shape == "square" else "</circle>"}'


@dataclass(frozen=True)
class Dot:
    """One value on a category plot: row (category), series (colour), value, tooltip."""

    row: str
    series: str
    value: float
    tip: str


def dot_plot(dots: Sequence[Dot], title: str, x_label: str, log: bool = True,
             marker: float | None = None, marker_label: str = "") -> str:
    """Categories down the side, one coloured dot per series on a (log) value axis; an optional vertical marker
    line (a budget). Used for median latency per variant x provider x threads."""
    rows = list(dict.fromkeys(d.row for d in dots))
    series = list(dict.fromkeys(d.series for d in dots))
    colors = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(series)}
    row_h, top, left, legend_w = 22, 30, 180, 210
    height = top + row_h * max(len(rows), 1) + 50
    values = [d.value for d in dots]
    shown = marker if marker and marker <= MARKER_REACH * max(values, default=marker) else None
    x = Scale(*span(values + ([shown] if shown else []), log), left, WIDTH - legend_w, log)
    y = Scale(-0.5, len(rows) - 0.5, top, top + row_h * len(rows))
    body = [_text(WIDTH / 2, 16, title, extra='font-weight="bold"')]
    body += _axes(x, y, x_label, "", y_ticks=False)
    body += [f'<line class="axis" x1="{left}" x2="{WIDTH - legend_w}" y1="{y(i):.1f}" y2="{y(i):.1f}" '
             f'stroke="#eee"/>' + _text(left - 6, y(i) + 4, row, "end") for i, row in enumerate(rows)]
    if shown:
        body.append(f'<line class="marker" x1="{x(shown):.1f}" x2="{x(shown):.1f}" y1="{y.start}" '
                    f'y2="{y.stop}" stroke="#c00" stroke-dasharray="4 3"><title>{escape(marker_label)}</title></line>')
    elif marker:  # far beyond every value: say where it is instead of squeezing the dots
        body.append(_text(WIDTH - legend_w - 4, top - 4, f"{marker_label} (off scale) \u2192", "end",
                          'class="marker" fill="#c00"'))
    index = {row: i for i, row in enumerate(rows)}
    jitter = {s: (i - (len(series) - 1) / 2) * min(3.0, 12 / max(len(series), 1)) for i, s in enumerate(series)}
    body += [_point(x(d.value), y(index[d.row]) + jitter[d.series], colors[d.series], d.tip)
             for d in dots if d.value > 0 or not log]
    body += _legend([(s, colors[s]) for s in series], WIDTH - legend_w + 10, top)
    return _svg(height, title, body)


@dataclass(frozen=True)
class Point:
    """One run on a scatter plot: x, y, series (colour), shape ("circle" | "square"), tooltip."""

    x: float
    y: float
    series: str
    tip: str
    shape: str = "circle"


@dataclass(frozen=True)
class Line:
    """A reference line y = x / slope_per_unit drawn across the plot (e.g. latency at the peak rate)."""

    rate: float
    label: str
    dash: str = ""


def rate_scatter(points: Sequence[Point], lines: Sequence[Line], title: str, x_label: str, y_label: str) -> str:
    """Log-log scatter of work (x) against time (y) with ideal lines time = work / rate: measured latency
    against analytic multiplications, the ideal line at the target's peak."""
    series = list(dict.fromkeys(p.series for p in points))
    colors = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(series)}
    left, top, legend_w, height = 70, 30, 210, 380
    x = Scale(*span([p.x for p in points], True), left, WIDTH - legend_w, True)
    ideal = [x.lo / line.rate for line in lines] + [x.hi / line.rate for line in lines]
    y = Scale(*span([p.y for p in points] + ideal, True, 0.02), height - 50, top, True)
    body = [_text(WIDTH / 2, 16, title, extra='font-weight="bold"'), *_axes(x, y, x_label, y_label)]
    for line in lines:
        x0, x1 = x.lo, x.hi
        body.append(f'<line class="ideal" x1="{x(x0):.1f}" y1="{y(x0 / line.rate):.1f}" x2="{x(x1):.1f}" '
                    f'y2="{y(x1 / line.rate):.1f}" stroke="#c00" stroke-dasharray="{line.dash or "none"}">'
                    f"<title>{escape(line.label)}</title></line>")
    body += [_point(x(p.x), y(p.y), colors[p.series], p.tip, p.shape) for p in points if p.x > 0 and p.y > 0]
    legend = [(s, colors[s]) for s in series] + [(line.label, "#c00") for line in lines]
    body += _legend(legend, WIDTH - legend_w + 10, top)
    return _svg(height, title, body)


@dataclass(frozen=True)
class Share:
    """One node: its share of measured time and its share of analytic multiplications (None = not counted)."""

    node: str
    time: float
    mults: float | None
    tip: str


def share_bars(shares: Sequence[Share], title: str, time_label: str) -> str:
    """Paired horizontal bars per node: share of time against share of multiplications, 0..100 %."""
    row_h, top, left, legend_w = 24, 30, 170, 190
    height = top + row_h * max(len(shares), 1) + 50
    x = Scale(0.0, 1.0, left, WIDTH - legend_w)
    body = [_text(WIDTH / 2, 16, title, extra='font-weight="bold"')]
    body += _axes(Scale(0, 100, left, WIDTH - legend_w), Scale(0, 1, top, top + row_h * len(shares)),
                  "share of the whole (%)", "", y_ticks=False)
    for i, share in enumerate(shares):
        y0 = top + row_h * i + 3
        body.append(f"<g><title>{escape(share.tip)}</title>{_text(left - 6, y0 + 13, share.node, 'end')}</g>")
        for offset, value, color in ((0, share.time, PALETTE[0]), (9, share.mults, PALETTE[1])):
            if value:  # a zero (or unknown) share has nothing to draw; the row label's tooltip says it
                width = max(x(value) - left, MIN_BAR)
                body.append(f'<rect class="data" x="{left}" y="{y0 + offset:.1f}" width="{width:.1f}" height="9" '
                            f'fill="{color}"><title>{escape(share.tip)}</title></rect>')
    body += _legend([(time_label, PALETTE[0]), ("share of multiplications", PALETTE[1])],
                    WIDTH - legend_w + 10, top)
    return _svg(height, title, body)


def curves(x_values: np.ndarray, ys: np.ndarray, title: str, x_label: str, y_label: str,
           labels: Sequence[str] | None = None, color_each: bool = False) -> str:
    """One polyline per column of ys over x (the window over its taps, the mel filters over frequency)."""
    ys = np.asarray(ys, dtype=np.float64).reshape(len(x_values), -1)
    left, top, height = 60, 30, 300
    x = Scale(float(x_values[0]), float(x_values[-1]), left, WIDTH - 20)
    y = Scale(*span([float(ys.min()), float(ys.max())], False), height - 50, top)
    body = [_text(WIDTH / 2, 16, title, extra='font-weight="bold"'), *_axes(x, y, x_label, y_label)]
    for j in range(ys.shape[1]):
        pts = " ".join(f"{x(float(a)):.1f},{y(float(b)):.1f}" for a, b in zip(x_values, ys[:, j], strict=True))
        color = PALETTE[j % len(PALETTE)] if color_each else PALETTE[0]
        tip = labels[j] if labels else title
        body.append(f'<polyline class="data" points="{pts}" fill="none" stroke="{color}" stroke-width="1.3">'
                    f"<title>{escape(tip)}</title></polyline>")
    return _svg(height, title, body)


def _colorize(values: np.ndarray, lo: float, hi: float, anchors: np.ndarray) -> np.ndarray:
    """uint8 RGB image of values through a piecewise-linear colour map."""
    t = np.clip((values - lo) / ((hi - lo) or 1.0), 0.0, 1.0) * (len(anchors) - 1)
    i = np.minimum(t.astype(int), len(anchors) - 2)
    frac = (t - i)[..., None]
    return cast(np.ndarray, np.round(anchors[i] * (1 - frac) + anchors[i + 1] * frac).astype(np.uint8))


def png(rgb: np.ndarray) -> bytes:
    """A minimal PNG (8-bit RGB, no filter) of an [H, W, 3] uint8 array."""
    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + \
        chunk(b"IEND", b"")


@dataclass(frozen=True)
class Panel:
    """One heatmap: values [time, band], a title, its colour range and whether the map is diverging."""

    values: np.ndarray
    title: str
    lo: float
    hi: float
    diverging: bool = False
    unit: str = "dB"


def heatmaps(panels: Sequence[Panel], title: str, x_label: str = "frame", y_label: str = "mel band") -> str:
    """Panels side by side, each a pixel image (time across, band up) with its colour bar: spectrograms of the
    same signal through two variants and their difference."""
    gap, top, height, bar_h = 20, 44, 300, 10
    panel_w = (WIDTH - 50 - gap * (len(panels) - 1)) / len(panels)
    body = [_text(WIDTH / 2, 16, title, extra='font-weight="bold"')]
    for k, panel in enumerate(panels):
        left = 40 + k * (panel_w + gap)
        bottom = height - 60
        image = _colorize(np.asarray(panel.values, dtype=np.float64).T[::-1], panel.lo, panel.hi,
                          DIVERGING if panel.diverging else VIRIDIS)
        uri = "data:image/png;base64," + base64.b64encode(png(image)).decode()
        tip = f"{panel.title}: {panel.values.shape[0]} frames x {panel.values.shape[1]} bands, " \
              f"range {panel.lo:.4g} .. {panel.hi:.4g} {panel.unit}"
        body.append(_text(left + panel_w / 2, top - 8, panel.title))
        body.append(f'<image class="data" x="{left:.1f}" y="{top}" width="{panel_w:.1f}" height="{bottom - top}" '
                    f'preserveAspectRatio="none" style="image-rendering:pixelated" href="{uri}">'
                    f"<title>{escape(tip)}</title></image>")
        body.append(_text(left + panel_w / 2, bottom + 14, x_label))
        bar = _colorize(np.linspace(panel.lo, panel.hi, 64)[None, :], panel.lo, panel.hi,
                        DIVERGING if panel.diverging else VIRIDIS)
        bar_uri = "data:image/png;base64," + base64.b64encode(png(bar)).decode()
        body.append(f'<image x="{left:.1f}" y="{bottom + 22}" width="{panel_w:.1f}" height="{bar_h}" '
                    f'preserveAspectRatio="none" href="{bar_uri}"/>')
        body.append(_text(left, bottom + 44, f"{panel.lo:.3g}", "start"))
        body.append(_text(left + panel_w, bottom + 44, f"{panel.hi:.3g} {panel.unit}", "end"))
    body.append(_text(14, (top + height - 60) / 2, y_label,
                      extra=f'transform="rotate(-90 14 {(top + height - 60) / 2:.1f})"'))
    return _svg(height, title, body)
