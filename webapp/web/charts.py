"""Stacked bar charts as inline SVG (templates/dashboard/_chart.html places them, with their table).

Hand-written because no chart script may run under our CSP and the few server-side
plotting libraries draw images (matplotlib) or ship inline styles (pygal): a stacked
bar chart is a few lines of arithmetic. The SVG is written here rather than in Jinja
because a page of ten endpoints has 3,000 shapes, which a template loop renders five
times slower. It scales with its viewBox; the stylesheet (static/dashboard.css) colours
it and sizes its text for phones. Every chart has a title, a description and a table.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from markupsafe import Markup, escape

from ..domain.delivery_stats import OUTCOMES, Period

WIDTH, HEIGHT = 480, 200
LEFT, RIGHT, TOP, BOTTOM = 40, 6, 10, 24  # room for the axis labels


@dataclass(slots=True)
class Segment:
    outcome: str
    y: float
    height: float


@dataclass(slots=True)
class Bar:
    x: float
    width: float
    label: str          # the period, as the table and the hover text say it
    counts: dict
    segments: list[Segment]

    @property
    def hover(self) -> str:
        return f"{self.label}: " + ", ".join(f"{self.counts[o]} {o}" for o in OUTCOMES)


@dataclass(slots=True)
class Tick:
    position: float
    text: str
    minor: bool = False  # hidden on narrow screens


@dataclass(frozen=True)
class BarChart:
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    totals: dict  # per outcome, over all bars
    total: int
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    baseline: int = HEIGHT - BOTTOM


def nice_ceiling(value: int) -> int:
    """The axis top: 1, 2, 2.5 or 5 times a power of ten, at least ``value``."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(math.ceil(step * power) for step in (1, 2, 2.5, 5, 10) if step * power >= value)


def compact(number: float) -> str:
    """An axis label that fits: 950, 2.5k, 10k, 1.2M (and 2.5, half of an axis that tops at 5)."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if number >= size:
            return f"{number / size:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{number:g}"


def bar_chart(periods: list[Period], label, tick_every: int, tick_text) -> BarChart:
    """``label(period)`` names a bar; every ``tick_every``-th bar gets ``tick_text(period)`` under it."""
    counts = [{o: p.counts[o] for o in OUTCOMES} for p in periods]
    top = nice_ceiling(max((sum(c.values()) for c in counts), default=0))
    scale = (HEIGHT - TOP - BOTTOM) / top
    slot = (WIDTH - LEFT - RIGHT) / max(len(periods), 1)
    bars, x_ticks = [], []
    for index, (period, found) in enumerate(zip(periods, counts)):
        x = LEFT + index * slot
        y, segments = HEIGHT - BOTTOM, []
        for outcome in OUTCOMES:
            if found[outcome]:
                height = scale * found[outcome]
                y -= height
                segments.append(Segment(outcome, round(y, 2), round(height, 2)))
        bars.append(Bar(round(x + slot * 0.15, 2), round(slot * 0.7, 2), label(period), found, segments))
        if index % tick_every == 0:
            x_ticks.append(Tick(round(x + slot / 2, 2), tick_text(period), minor=(index // tick_every) % 2 == 1))
    y_ticks = [Tick(round(HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * share, 2), compact(top * share))
               for share in ((0, 0.5, 1) if top > 1 else (0, 1))]
    totals = {o: sum(c[o] for c in counts) for o in OUTCOMES}
    return BarChart(bars, y_ticks, x_ticks, totals, sum(totals.values()))


def hourly(periods: list[Period]) -> BarChart:
    return bar_chart(periods, lambda p: f"{p.start:%H}:00–{(p.start.hour + 1) % 24:02d}:00 UTC", 3,
                     lambda p: f"{p.start:%H}:00")


def daily(periods: list[Period]) -> BarChart:
    return bar_chart(periods, lambda p: f"{p.start:%Y-%m-%d} (UTC)", 5, lambda p: f"{p.start:%d %b}")


def svg(chart: BarChart, id_: str, title: str, description: str) -> Markup:
    """The chart as an <svg> element: labelled by its title and description, a hover text per bar."""
    parts = [f'<svg class="chart-svg" viewBox="0 0 {chart.width} {chart.height}" role="img" '
             f'aria-labelledby="{id_}-svg-title {id_}-desc">',
             f'<title id="{id_}-svg-title">{escape(title)}</title><desc id="{id_}-desc">{escape(description)}</desc>']
    for tick in chart.y_ticks:
        parts.append(f'<line class="grid" x1="{chart.plot_left}" x2="{chart.plot_right}" y1="{tick.position}" '
                     f'y2="{tick.position}"/><text class="axis axis-y" x="{chart.plot_left - 6}" '
                     f'y="{tick.position}">{tick.text}</text>')
    # Bar labels and tick texts are made here of digits, dates and "UTC": nothing to escape.
    for bar in chart.bars:
        parts.append(f'<g class="bar"><title>{bar.hover}</title><rect class="bar-hit" x="{bar.x}" y="0" '
                     f'width="{bar.width}" height="{chart.baseline}"/>')
        parts.extend(f'<rect class="bar-{s.outcome}" x="{bar.x}" y="{s.y}" width="{bar.width}" height="{s.height}"/>'
                     for s in bar.segments)
        parts.append("</g>")
    parts.extend(f'<text class="axis axis-x{" minor" if tick.minor else ""}" x="{tick.position}" '
                 f'y="{chart.height - 6}">{tick.text}</text>' for tick in chart.x_ticks)
    parts.append("</svg>")
    return Markup("".join(parts))


def table_rows(chart: BarChart) -> Markup:
    """The chart's numbers as table rows (its text alternative), one per bar."""
    return Markup("".join(f'<tr><th scope="row">{bar.label}</th>'
                          + "".join(f"<td>{bar.counts[o]}</td>" for o in OUTCOMES) + "</tr>"
                          for bar in chart.bars))
