"""Inline SVG charts for the HTML report: horizontal stacked bars and latency box plots.

Every chart is a self-contained ``<svg>`` string (no external fonts, styles or scripts) with
``role="img"``, a ``<title>`` and a ``<desc>`` for screen readers, a legend in words, and a
``<title>`` tooltip on each mark. Text is escaped here; callers pass plain strings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from dynconform.reports._text import escape_html, truncate

__all__ = ["Box", "Series", "box_plot", "stacked_bars"]

_WIDTH = 720
_LABEL_W = 190
_RIGHT_W = 70
_ROW_H = 26
_GAP = 8
_LEGEND_H = 30
_FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="12"'
_MAX_LABEL = 24


@dataclass(frozen=True, slots=True)
class Series:
    """One stacked series: its name, fill colour and the text colour drawn on it."""

    name: str
    color: str
    ink: str = "#ffffff"


@dataclass(frozen=True, slots=True)
class Box:
    """The summary of one latency series as a box plot draws it."""

    name: str
    count: int
    min: float
    p50: float
    p90: float
    p99: float
    mean: float
    max: float
    unit: str = "ms"


def _e(text: object) -> str:
    return escape_html(str(text))


def _num(value: float) -> str:
    """A compact label for a measured value (3 significant digits at most)."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def _open(chart_id: str, title: str, desc: str, height: int) -> list[str]:
    return [
        f'<svg class="chart" id="{_e(chart_id)}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {_WIDTH} {height}" width="{_WIDTH}" height="{height}" role="img" '
        f'aria-labelledby="{_e(chart_id)}-title {_e(chart_id)}-desc" {_FONT}>',
        f'<title id="{_e(chart_id)}-title">{_e(title)}</title>',
        f'<desc id="{_e(chart_id)}-desc">{_e(desc)}</desc>',
    ]


def _legend(items: Sequence[tuple[str, str]], y: int) -> list[str]:
    """Swatch-and-word legend entries laid out left to right (each item: colour or a mark)."""
    out: list[str] = []
    x = _LABEL_W
    for color, name in items:
        out.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{_e(color)}"/>')
        out.append(f'<text x="{x + 16}" y="{y + 10}" fill="currentColor">{_e(name)}</text>')
        x += 28 + 7 * len(name)
    return out


def stacked_bars(
    chart_id: str,
    title: str,
    rows: Sequence[tuple[str, Sequence[int]]],
    series: Sequence[Series],
    *,
    unit: str = "checks",
) -> str:
    """Horizontal stacked bars: one row per label, one segment per series, totals at the end.

    ``rows`` holds ``(label, counts)`` with one count per series, in the order of ``series``.
    """
    totals = [sum(counts) for _, counts in rows]
    scale_max = max(totals, default=0) or 1
    bar_w = _WIDTH - _LABEL_W - _RIGHT_W
    height = _LEGEND_H + max(len(rows), 1) * (_ROW_H + _GAP) + _GAP
    described = "; ".join(
        f"{label}: "
        + ", ".join(f"{n} {s.name}" for s, n in zip(series, counts, strict=True) if n)
        + f" ({total} {unit})"
        for (label, counts), total in zip(rows, totals, strict=True)
    )
    out = _open(chart_id, title, described or f"no {unit}", height)
    out += _legend([(s.color, s.name) for s in series], 6)
    if not rows:
        out.append(f'<text x="{_LABEL_W}" y="{_LEGEND_H + 18}" fill="currentColor">no data</text>')
    for i, ((label, counts), total) in enumerate(zip(rows, totals, strict=True)):
        y = _LEGEND_H + _GAP + i * (_ROW_H + _GAP)
        mid = y + _ROW_H / 2 + 4
        out.append(
            f'<text x="{_LABEL_W - 8}" y="{mid}" text-anchor="end" fill="currentColor">'
            f"<title>{_e(label)}</title>{_e(truncate(label, _MAX_LABEL))}</text>"
        )
        x = float(_LABEL_W)
        for s, n in zip(series, counts, strict=True):
            if n <= 0:
                continue
            w = bar_w * n / scale_max
            out.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{_ROW_H}" '
                f'fill="{_e(s.color)}"><title>{_e(label)}: {n} {_e(s.name)}</title></rect>'
            )
            if w >= 8 * len(str(n)) + 6:
                out.append(
                    f'<text x="{x + w / 2:.1f}" y="{mid}" text-anchor="middle" '
                    f'fill="{_e(s.ink)}" aria-hidden="true">{n}</text>'
                )
            x += w
        out.append(
            f'<text x="{x + 6:.1f}" y="{mid}" fill="currentColor" aria-hidden="true">{total}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def _nice_step(span: float) -> float:
    raw = span / 5 or 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _scale(lo: float, hi: float) -> tuple[bool, float, float, list[float]]:
    """``(log, lo, hi, ticks)``: a log scale when the values span more than two decades."""
    positive = max(lo, 1e-3)
    if hi / positive > 100:
        lo_exp = math.floor(math.log10(positive))
        hi_exp = math.ceil(math.log10(hi))
        return True, 10.0**lo_exp, 10.0**hi_exp, [10.0**k for k in range(lo_exp, hi_exp + 1)]
    step = _nice_step(hi)
    top = math.ceil(hi / step) * step or step
    ticks = [round(i * step, 10) for i in range(round(top / step) + 1)]
    return False, 0.0, top, ticks


def box_plot(chart_id: str, title: str, boxes: Sequence[Box]) -> str:
    """One horizontal box plot per series on a shared axis: whiskers from min to max, the box
    from p50 to p90 with a bar at p50, a tick at p99 and a dot at the mean."""
    units = sorted({b.unit for b in boxes}) or ["ms"]
    lo = min((b.min for b in boxes), default=0.0)
    hi = max((b.max for b in boxes), default=1.0) or 1.0
    log, axis_lo, axis_hi, ticks = _scale(lo, hi)
    plot_w = _WIDTH - _LABEL_W - _RIGHT_W
    rows_h = max(len(boxes), 1) * (_ROW_H + _GAP)
    height = _LEGEND_H + _GAP + rows_h + 36

    def px(value: float) -> float:
        if log:
            v = min(max(value, axis_lo), axis_hi)
            frac = (math.log10(v) - math.log10(axis_lo)) / (
                math.log10(axis_hi) - math.log10(axis_lo)
            )
        else:
            frac = (value - axis_lo) / ((axis_hi - axis_lo) or 1.0)
        return _LABEL_W + plot_w * min(max(frac, 0.0), 1.0)

    described = "; ".join(
        f"{b.name}: {b.count} samples, min {_num(b.min)}, p50 {_num(b.p50)}, "
        f"p90 {_num(b.p90)}, p99 {_num(b.p99)}, max {_num(b.max)}, mean {_num(b.mean)} {b.unit}"
        for b in boxes
    )
    out = _open(chart_id, title, described or "no measurements", height)
    legend = [
        ("#56B4E9", "p50\u2013p90"),
        ("#0072B2", "p50"),
        ("#D55E00", "p99"),
        ("currentColor", "mean"),
        ("#777777", "min\u2013max"),
    ]
    out += _legend(legend, 6)
    top = _LEGEND_H + _GAP
    bottom = top + rows_h
    for tick in ticks:
        x = px(tick)
        out.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#8888" '
            f'stroke-dasharray="2 3"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle" fill="currentColor">'
            f"{_e(_num(tick))}</text>"
        )
    axis = f"{' / '.join(units)}{' (log scale)' if log else ''}"
    out.append(
        f'<text x="{_LABEL_W + plot_w / 2:.1f}" y="{bottom + 30}" text-anchor="middle" '
        f'fill="currentColor">{_e(axis)}</text>'
    )
    for i, b in enumerate(boxes):
        y = top + i * (_ROW_H + _GAP)
        mid = y + _ROW_H / 2
        tip = (
            f"{b.name}: n={b.count} min={_num(b.min)} p50={_num(b.p50)} p90={_num(b.p90)} "
            f"p99={_num(b.p99)} max={_num(b.max)} mean={_num(b.mean)} {b.unit}"
        )
        out.append(f"<g><title>{_e(tip)}</title>")
        out.append(
            f'<text x="{_LABEL_W - 8}" y="{mid + 4}" text-anchor="end" fill="currentColor">'
            f"{_e(truncate(b.name, _MAX_LABEL))}</text>"
        )
        x_min, x_max = px(b.min), px(b.max)
        out.append(
            f'<line x1="{x_min:.1f}" y1="{mid}" x2="{x_max:.1f}" y2="{mid}" stroke="#777777"/>'
        )
        for x in (x_min, x_max):
            out.append(
                f'<line x1="{x:.1f}" y1="{mid - 6}" x2="{x:.1f}" y2="{mid + 6}" stroke="#777777"/>'
            )
        x50, x90 = px(b.p50), px(b.p90)
        out.append(
            f'<rect x="{x50:.1f}" y="{y + 4}" width="{max(x90 - x50, 1.5):.1f}" '
            f'height="{_ROW_H - 8}" fill="#56B4E9" stroke="#0072B2"/>'
        )
        out.append(
            f'<line x1="{x50:.1f}" y1="{y + 2}" x2="{x50:.1f}" y2="{y + _ROW_H - 2}" '
            f'stroke="#0072B2" stroke-width="3"/>'
        )
        x99 = px(b.p99)
        out.append(
            f'<line x1="{x99:.1f}" y1="{y + 2}" x2="{x99:.1f}" y2="{y + _ROW_H - 2}" '
            f'stroke="#D55E00" stroke-width="2"/>'
        )
        out.append(f'<circle cx="{px(b.mean):.1f}" cy="{mid}" r="3" fill="currentColor"/>')
        out.append(
            f'<text x="{_WIDTH - _RIGHT_W + 6}" y="{mid + 4}" fill="currentColor" '
            f'aria-hidden="true">n={b.count}</text>'
        )
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)
