"""The cost view's charts as inline SVG (one self-contained page, nothing to load, no script):
cost by segment stacked by service area, the concentration curve, cost per customer-day of each
model of service production. Numbers are written the page's language's way (vocabulary/numbers.py)."""

from __future__ import annotations

from html import escape

import pandas as pd

from costs.words import area_label, model_label, row_label
from vocabulary import numbers

# one colour per service area (the catalogue's), stable across pages and languages
AREA_COLOURS = {
    "HOSPITAL": "#c0392b", "PRIMARY": "#2471a3", "HOMECARE": "#27ae60", "EMERGENCY": "#e67e22",
    "MENTAL": "#8e44ad", "ASSESSMENT": "#7f8c8d", "REHAB": "#16a085", "CHILDHEALTH": "#f1c40f",
    "SOCIAL": "#a04000", "REMOTE": "#5dade2", "CARE24H": "#6e2c00", "MEDROBOT": "#48c9b0",
    "CHILDWELFARE": "#d98880", "IOT": "#aab7b8",
}
OTHER = "#bbbbbb"
TEXT = {
    "en": {"customers": "share of customers, costliest first", "cost": "share of cost", "even": "even spread",
           "per_day": "euros per customer-day", "own": "own service", "all": "all services"},
    "fi": {"customers": "asiakkaiden osuus kalleimmasta alkaen", "cost": "kustannusten osuus", "even": "tasainen jakauma",
           "per_day": "euroa asiakaspäivää kohden", "own": "oma palvelu", "all": "kaikki palvelut"},
}


def _svg(cls: str, width: int, height: int, title: str) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="{cls}" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" font-family="sans-serif" font-size="11" aria-label="{escape(title)}">',
            f"<title>{escape(title)}</title>"]


def segment_area_svg(areas: pd.DataFrame, rows: list[str], lang: str, title: str, labels: dict[str, str] | None = None) -> str:
    """Horizontal bars, one per row (segment), the cost split by service area (largest areas first)."""
    totals = {row: float(areas.loc[row, "cost_eur"].sum()) for row in rows}
    order = areas.loc[rows[0]]["cost_eur"].sort_values(ascending=False)
    shown = [a for a, v in order.items() if v > 0]
    label_w, bar_w, row_h, top = 210, 430, 26, 8
    legend_rows = (len(shown) + 2) // 3
    width, height = label_w + bar_w + 100, top + row_h * len(rows) + 14 + 16 * legend_rows
    high = max(totals.values()) or 1.0
    parts = _svg("segment-areas", width, height, title)
    for i, row in enumerate(rows):
        y, x = top + i * row_h, float(label_w)
        name = (labels or {}).get(row) or row_label(row, lang)
        parts.append(f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(name)}</text>')
        for area in shown:
            value = float(areas.loc[(row, area), "cost_eur"])
            if value <= 0:
                continue
            w = value / high * bar_w
            parts.append(f'<rect class="bar" data-row="{escape(row)}" data-area="{area}" x="{x:.1f}" y="{y + 4}" width="{w:.2f}" '
                         f'height="{row_h - 8}" fill="{AREA_COLOURS.get(area, OTHER)}"><title>{escape(name)}, '
                         f'{escape(area_label(area, lang))}: {escape(numbers.euros(value, lang))}</title></rect>')
            x += w
        parts.append(f'<text class="value" x="{x + 4:.1f}" y="{y + 16}" fill="#333">{escape(numbers.euros(totals[row], lang))}</text>')
    base = top + row_h * len(rows) + 8
    for k, area in enumerate(shown):
        lx, ly = 10 + (k % 3) * 250, base + (k // 3) * 16
        parts.append(f'<rect x="{lx}" y="{ly}" width="10" height="10" fill="{AREA_COLOURS.get(area, OTHER)}"/>'
                     f'<text class="legend" x="{lx + 14}" y="{ly + 9}">{escape(area_label(area, lang))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def concentration_svg(curve: pd.DataFrame, concentration: pd.DataFrame, lang: str, title: str) -> str:
    """Cumulative share of cost against share of customers (costliest first), the top 1/5/10 % marked."""
    words = TEXT[lang]
    width, height, left, right, top, bottom = 420, 300, 48, 16, 14, 40
    pw, ph = width - left - right, height - top - bottom

    def x(v: float) -> float:
        return left + v * pw

    def y(v: float) -> float:
        return top + (1 - v) * ph

    parts = _svg("concentration", width, height, title)
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{x(0)}" x2="{x(1)}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#eee"/>'
                     f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="#555">{escape(numbers.percent(tick, lang, 0))}</text>'
                     f'<text x="{x(tick):.1f}" y="{height - bottom + 14}" text-anchor="middle" fill="#555">{escape(numbers.percent(tick, lang, 0))}</text>')
    parts.append(f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(1)}" stroke="#999" stroke-dasharray="4,3"><title>{escape(words["even"])}</title></line>')
    valid = curve.dropna()
    if len(valid):
        points = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in zip(valid["customer_share"], valid["cost_share"]))
        parts.append(f'<polyline class="curve" fill="none" stroke="#1f618d" stroke-width="2" points="{points}"/>')
    for percent, item in concentration.iterrows():
        share = float(item["share_of_cost"])
        if share != share:  # no cost at all
            continue
        at = int(percent) / 100
        text = f"{numbers.percent(at, lang, 0)}: {numbers.percent(share, lang, 0)}"
        parts.append(f'<circle class="top" data-top="{int(percent)}" cx="{x(at):.1f}" cy="{y(share):.1f}" r="4" fill="#c0392b">'
                     f"<title>{escape(text)}</title></circle>"
                     f'<text x="{x(at) + 7:.1f}" y="{y(share) + 4 + 12 * (int(percent) == 1):.1f}" fill="#c0392b">{escape(text)}</text>')
    parts.append(f'<text x="{left + pw / 2:.1f}" y="{height - 6}" text-anchor="middle" fill="#555">{escape(words["customers"])}</text>')
    parts.append(f'<text x="12" y="{top + ph / 2:.1f}" text-anchor="middle" fill="#555" transform="rotate(-90 12 {top + ph / 2:.1f})">'
                 f'{escape(words["cost"])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def production_svg(production: pd.DataFrame, lang: str, title: str) -> str:
    """Cost per customer-day of each model: the own service's and all services' (lighter), side by side."""
    words = TEXT[lang]
    rows = [(m, item) for m, item in production.iterrows() if item["customer_days"] > 0]
    label_w, bar_w, row_h, top = 290, 330, 30, 8
    width, height = label_w + bar_w + 90, top + row_h * max(len(rows), 1) + 30
    high = max([float(item["all_cost_per_day"]) for _, item in rows] + [1.0])
    parts = _svg("production", width, height, title)
    for i, (model, item) in enumerate(rows):
        y = top + i * row_h
        name = model_label(str(model), lang)
        parts.append(f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end">{escape(name)}</text>')
        for k, (key, colour) in enumerate((("all_cost_per_day", "#aed6f1"), ("own_cost_per_day", "#1f618d"))):
            value = float(item[key])
            w = max(value / high * bar_w, 1.0)
            h = row_h - 8 if k == 0 else row_h - 16
            parts.append(f'<rect class="bar {key}" data-model="{model}" x="{label_w}" y="{y + 4 + 4 * k}" width="{w:.1f}" height="{h}" '
                         f'fill="{colour}"><title>{escape(name)}, {escape(words["own" if k else "all"])}: '
                         f'{escape(numbers.euros(value, lang))}</title></rect>')
        parts.append(f'<text class="value" x="{label_w + float(item["all_cost_per_day"]) / high * bar_w + 4:.1f}" y="{y + 17}" fill="#333">'
                     f'{escape(numbers.euros(float(item["all_cost_per_day"]), lang))}</text>')
    ly = height - 18
    for k, (key, colour) in enumerate((("own", "#1f618d"), ("all", "#aed6f1"))):
        parts.append(f'<rect x="{label_w + 170 * k}" y="{ly}" width="10" height="10" fill="{colour}"/>'
                     f'<text class="legend" x="{label_w + 170 * k + 14}" y="{ly + 9}">{escape(words[key])}</text>')
    parts.append(f'<text x="10" y="{ly + 9}" fill="#555">{escape(words["per_day"])}</text>')
    parts.append("</svg>")
    return "".join(parts)
