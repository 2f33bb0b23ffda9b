"""Monitoring charts as inline SVG (one self-contained page, nothing to load, no script): a figure
over the index months as lines, with an interval band where there is one, the thresholds as
horizontal lines and the breached months marked. Numbers are written the page's language's way
(vocabulary/numbers.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from vocabulary import numbers

MONTHS_FI = ("tammi", "helmi", "maalis", "huhti", "touko", "kesä", "heinä", "elo", "syys", "loka", "marras", "joulu")
MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def month_label(month: str, lang: str) -> str:
    """'2026-03-01' -> 'maalis 2026' / 'Mar 2026'."""
    year, number = int(month[:4]), int(month[5:7])
    return f"{(MONTHS_FI if lang == 'fi' else MONTHS_EN)[number - 1]} {year}"


@dataclass
class Series:
    key: str
    label: str
    values: list[float | None]
    colour: str
    dashed: bool = False
    low: list[float | None] | None = None  # the interval band, where there is one
    high: list[float | None] | None = None


@dataclass
class Line:
    value: float
    label: str
    colour: str = "#c0392b"


@dataclass
class Chart:
    cls: str
    title: str
    months: list[str]  # 'YYYY-MM-DD'
    series: list[Series]
    lines: list[Line] = field(default_factory=list)
    breached: list[bool] = field(default_factory=list)
    decimals: int = 2
    percent: bool = False
    floor: float | None = None  # the y axis starts at most here (0 for PSI and rates)


def _fmt(value: float, chart: Chart, lang: str) -> str:
    return numbers.percent(value, lang, 1) if chart.percent else numbers.number(value, lang, chart.decimals)


def line_chart(chart: Chart, lang: str) -> str:
    width, height, left, right, top, bottom = 720, 230, 56, 12, 10, 58
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for s in chart.series for v in (*s.values, *(s.low or ()), *(s.high or ())) if v is not None]
    values += [line.value for line in chart.lines]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if chart.floor is not None:
        low = min(low, chart.floor)
    if high - low < 1e-9:
        high = low + 1.0
    pad = (high - low) * 0.08
    low, high = (low if chart.floor is not None and low == chart.floor else low - pad), high + pad
    n = len(chart.months)

    def x(i: int) -> float:
        return left + (plot_w * (i + 0.5) / n if n else 0)

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - low) / (high - low))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="{chart.cls}" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" font-family="sans-serif" font-size="11" aria-label="{escape(chart.title)}">',
             f"<title>{escape(chart.title)}</title>",
             f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fbfbfb" stroke="#ddd"/>']
    for k in range(5):  # grid and y labels
        v = low + (high - low) * k / 4
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 4}" y="{y(v) + 4:.1f}" text-anchor="end" fill="#555">{escape(_fmt(v, chart, lang))}</text>')
    for i, month in enumerate(chart.months):  # a label at every January and at the first month
        if i == 0 or month[5:7] == "01":
            parts.append(f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}" stroke="#555"/>')
            parts.append(f'<text x="{x(i):.1f}" y="{top + plot_h + 16}" text-anchor="middle" fill="#555">'
                         f'{escape(month_label(month, lang))}</text>')
    for line in chart.lines:
        parts.append(f'<line class="threshold" x1="{left}" x2="{left + plot_w}" y1="{y(line.value):.1f}" y2="{y(line.value):.1f}" '
                     f'stroke="{line.colour}" stroke-dasharray="2 3"><title>{escape(line.label)}: '
                     f'{escape(_fmt(line.value, chart, lang))}</title></line>')
    for series in chart.series:
        if series.low is not None and series.high is not None:
            for i in range(n):
                lo, hi = series.low[i], series.high[i]
                if lo is not None and hi is not None:
                    parts.append(f'<rect class="band" data-series="{series.key}" x="{x(i) - plot_w / n * 0.3:.1f}" '
                                 f'y="{y(hi):.1f}" width="{plot_w / n * 0.6:.1f}" height="{max(y(lo) - y(hi), 0.5):.1f}" '
                                 f'fill="{series.colour}" fill-opacity="0.18"/>')
        run: list[str] = []
        for i, v in enumerate([*series.values, None]):
            if v is not None:
                run.append(f"{x(i):.1f},{y(v):.1f}")
                continue
            if len(run) > 1:
                dash = ' stroke-dasharray="5 4"' if series.dashed else ""
                parts.append(f'<polyline class="series" data-series="{series.key}" points="{" ".join(run)}" fill="none" '
                             f'stroke="{series.colour}" stroke-width="2"{dash}/>')
            run = []
        for i, v in enumerate(series.values):
            if v is not None:
                parts.append(f'<circle class="point" data-series="{series.key}" cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" '
                             f'fill="{series.colour}"><title>{escape(series.label)}, {escape(month_label(chart.months[i], lang))}: '
                             f'{escape(_fmt(v, chart, lang))}</title></circle>')
    for i, hit in enumerate(chart.breached):
        if hit:
            parts.append(f'<circle class="breach" cx="{x(i):.1f}" cy="{top + 6}" r="4" fill="#c0392b"/>')
    legend_y = height - 14
    offset = float(left)
    for series in chart.series:
        dash = ' stroke-dasharray="5 4"' if series.dashed else ""
        parts.append(f'<line x1="{offset:.1f}" x2="{offset + 18:.1f}" y1="{legend_y - 4}" y2="{legend_y - 4}" '
                     f'stroke="{series.colour}" stroke-width="2"{dash}/>')
        parts.append(f'<text x="{offset + 22:.1f}" y="{legend_y}">{escape(series.label)}</text>')
        offset += 30 + 6.2 * len(series.label)
    parts.append("</svg>")
    return "".join(parts)
