"""Line charts as inline SVG, drawn on the server.

Why not a charting library: the dashboard's charts are a few lines of points (loss per epoch,
a metric per run); an SVG of them is some hundred elements, needs no JavaScript and nothing
fetched, is readable by screen readers (a title and a table of the values in the page) and is
checked by ordinary tests. plotly's offline bundle would add megabytes of JavaScript to each
page for the same lines.

Colours come from the CSS (`series-N` classes); every text is escaped.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 12, 44
TICKS = 5
COLOURS = 8  # series-0 .. series-7 in dashboard.css
_ids = itertools.count()


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]
    notes: Sequence[str] = ()  # one per point, shown on hover (e.g. "v3, promoted")


def number(value: float) -> str:
    return f"{value:.4g}"


def nice_ticks(low: float, high: float, count: int = TICKS) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    if high <= low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step)
    last = math.ceil(high / step)
    return [round(i * step, 12) for i in range(first, last + 1)]


def time_ticks(low: float, high: float, count: int = TICKS) -> list[float]:
    """`count` evenly spaced ticks from low to high epoch seconds (round values mean little in
    times); a single moment gets an hour either side."""
    if high <= low:
        low, high = low - 3600, high + 3600
    return [low + (high - low) * i / (count - 1) for i in range(count)]


def line_chart(
    title: str,
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    x_format: Callable[[float], str] = number,
    times: bool = False,
) -> Markup:
    """An SVG line chart (with a point marker per value) of `series`, titled `title`; with
    `times`, x values are epoch seconds."""
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points if math.isfinite(y)]
    if not xs or not ys:
        return Markup("")
    x_ticks = (time_ticks if times else nice_ticks)(min(xs), max(xs))
    y_ticks = nice_ticks(min(ys), max(ys))
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def px(x: float) -> float:
        return LEFT + (x - x0) / ((x1 - x0) or 1) * (WIDTH - LEFT - RIGHT)

    def py(y: float) -> float:
        return HEIGHT - BOTTOM - (y - y0) / ((y1 - y0) or 1) * (HEIGHT - TOP - BOTTOM)

    chart_id = f"chart-{next(_ids)}"
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}">{escape(title)}</title>',
        '<g class="grid">',
    ]
    for y in y_ticks:
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{py(y):.1f}" y2="{py(y):.1f}"/>')
        parts.append(
            f'<text class="y-tick" x="{LEFT - 6}" y="{py(y) + 4:.1f}">{escape(number(y))}</text>'
        )
    for x in x_ticks:
        parts.append(
            f'<text class="x-tick" x="{px(x):.1f}" y="{HEIGHT - BOTTOM + 16}">'
            f"{escape(x_format(x))}</text>"
        )
    parts.append("</g>")
    parts.append(
        f'<text class="axis-label" x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 6}">'
        f"{escape(x_label)}</text>"
        f'<text class="axis-label" transform="rotate(-90)" x="{-(TOP + HEIGHT - BOTTOM) / 2}" '
        f'y="14">{escape(y_label)}</text>'
    )
    for number_, s in enumerate(series):
        parts.append(_series(s, number_ % COLOURS, px, py, x_format))
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch series-{i % COLOURS}"></span>{escape(s.name)}</li>'
        for i, s in enumerate(series)
    )
    return Markup(
        f'<figure class="chart">{"".join(parts)}<ul class="legend">{legend}</ul></figure>'
    )


def _series(
    series: Series,
    colour: int,
    px: Callable[[float], float],
    py: Callable[[float], float],
    x_format: Callable[[float], str],
) -> str:
    finite = [(x, y) for x, y in series.points if math.isfinite(y)]
    line = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in finite)
    marks = []
    for index, (x, y) in enumerate(series.points):
        if not math.isfinite(y):
            continue
        note = f" ({series.notes[index]})" if index < len(series.notes) else ""
        label = f"{series.name}: {x_format(x)}, {number(y)}{note}"
        marks.append(
            f'<circle class="point" cx="{px(x):.1f}" cy="{py(y):.1f}" r="3">'
            f"<title>{escape(label)}</title></circle>"
        )
    return f'<g class="series series-{colour}"><polyline points="{line}"/>{"".join(marks)}</g>'


@dataclass(frozen=True)
class Estimate:
    """One row of an interval chart: a point estimate and its interval."""

    label: str
    value: float
    low: float
    high: float


def interval_chart(title: str, rows: Sequence[Estimate], x_label: str) -> Markup:
    """An SVG of one horizontal interval per row, its estimate marked (e.g. each variant's CTR
    and 95% interval), on a shared axis starting at 0."""
    values = [v for r in rows for v in (r.value, r.low, r.high) if math.isfinite(v)]
    if not rows or not values:
        return Markup("")
    ticks = nice_ticks(min(0.0, *values), max(values))
    x0, x1 = ticks[0], ticks[-1]
    row_height, left = 28, 120
    height = TOP + BOTTOM + row_height * len(rows)

    def px(x: float) -> float:
        return left + (x - x0) / ((x1 - x0) or 1) * (WIDTH - left - RIGHT)

    chart_id = f"chart-{next(_ids)}"
    parts = [
        f'<svg class="chart intervals" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{chart_id}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}">{escape(title)}</title>',
        '<g class="grid">',
    ]
    for x in ticks:
        parts.append(f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{TOP}" y2="{height - BOTTOM}"/>')
        parts.append(
            f'<text class="x-tick" x="{px(x):.1f}" y="{height - BOTTOM + 16}">'
            f"{escape(number(x))}</text>"
        )
    parts.append(
        f'</g><text class="axis-label" x="{(left + WIDTH - RIGHT) / 2}" y="{height - 6}">'
        f"{escape(x_label)}</text>"
    )
    for index, row in enumerate(rows):
        y = TOP + row_height * (index + 0.5)
        label = f"{row.label}: {number(row.value)} [{number(row.low)}, {number(row.high)}]"
        parts.append(
            f'<g class="series series-{index % COLOURS}">'
            f'<text class="row-label" x="{left - 8}" y="{y + 4:.1f}">{escape(row.label)}</text>'
            f'<line class="interval" x1="{px(row.low):.1f}" x2="{px(row.high):.1f}" '
            f'y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<circle class="point" cx="{px(row.value):.1f}" cy="{y:.1f}" r="4">'
            f"<title>{escape(label)}</title></circle></g>"
        )
    parts.append("</svg>")
    return Markup(f'<figure class="chart">{"".join(parts)}</figure>')
