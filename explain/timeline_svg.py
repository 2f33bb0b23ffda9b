"""The coordinator's timeline as one inline SVG (no script, nothing to load), drawn server-side.

One shared time axis across the page's width; each lane of explain/timeline.py that has something
in the span on its own row (frequent events as monthly bars with their count, stays and services
as bars, values as points), then the alerts with their CRM feedback, then each problem's monthly
risk with its band edges. Every drawn event mark has class `mark`, its lane and the number of the
lane's events it stands for (`data-events`), so the marks can be counted against the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from html import escape

import pandas as pd

from explain.timeline import LANES, Language, Mark, Timeline
from vocabulary.numbers import natural, percent

LANE_COLOURS = {
    "contacts": "#2471a3", "remote_contacts": "#5dade2", "mental": "#8e44ad", "emergency": "#e67e22",
    "hospital": "#c0392b", "homecare": "#27ae60", "remote": "#5dade2", "medrobot": "#48c9b0", "iot": "#7f8c8d",
    "rehab": "#16a085", "care24h": "#6e2c00", "informal_care": "#a04000", "interrai": "#34495e", "phq9": "#8e44ad",
    "medication": "#b7950b", "diagnoses": "#566573", "child_welfare": "#d98880", "life": "#000000",
}
HEIGHTS = {"homecare": 34, "remote": 30, "medrobot": 34, "phq9": 40, "interrai": 24}
TICK_H, RISK_H, ALERT_H = 20, 46, 22
WIDTH, LABEL_W, RIGHT, AXIS_H = 940, 220, 40, 30
RAI_SHORT = {"RAI/ADLH": "ADL-H", "RAI/CPS": "CPS"}  # written beside the mark where there is room; every item in its tooltip
WORDS = {
    "en": {"title": "The customer's timeline", "alerts": "Alerts and CRM feedback", "now": "now",
           "running": "running", "accepted": "accepted", "overridden": "overridden", "no_feedback": "no feedback yet",
           "per_month": "{n} in {month}", "stay": "stay", "days": "days", "doses": "doses taken", "minutes": "min",
           "missed": "missed dose", "phq_line": "10: moderate", "since_before": "began before the span",
           "supplied": "supplied for {n} days", "max": "max", "max_note": "the busiest month's count (the tallest bar)"},
    "fi": {"title": "Asiakkaan aikajana", "alerts": "Hälytykset ja asiakkuudenhallinnan palaute", "now": "nyt",
           "running": "jatkuu", "accepted": "hyväksytty", "overridden": "ohitettu", "no_feedback": "ei palautetta vielä",
           "per_month": "{n} kuussa {month}", "stay": "jakso", "days": "vrk", "doses": "annosta otettu", "minutes": "min",
           "missed": "annos jäi ottamatta", "phq_line": "10: keskivaikea", "since_before": "alkoi ennen jaksoa",
           "supplied": "toimitettu {n} vrk:n tarpeeseen", "max": "enint.", "max_note": "vilkkaimman kuukauden määrä (korkein pylväs)"},
}


MONTHS = {"en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
          "fi": ("tammi", "helmi", "maalis", "huhti", "touko", "kesä", "heinä", "elo", "syys", "loka", "marras", "joulu")}


@dataclass(frozen=True)
class RiskLane:
    problem: str
    label: str  # the outcome (first line)
    group: str  # the population (second line)
    points: Sequence[tuple[pd.Timestamp, float | None, str | None]]  # (time, probability or None, why not)
    edges: tuple[float, float, float]  # moderate, high, very high lower edges
    gap_words: dict[str, str]


@dataclass(frozen=True)
class AlertMark:
    day: pd.Timestamp
    outcome: str | None  # accepted / overridden / None (no feedback)
    text: str  # what the mark's tooltip says (problems, risk, delivery)


@lru_cache(maxsize=1)
def _descriptions() -> dict[str, dict[str, str]]:
    from data_contracts.catalogue import code_descriptions

    return code_descriptions()


def day_text(ts: pd.Timestamp, lang: Language) -> str:
    return f"{ts.day}.{ts.month}.{ts.year}" if lang == "fi" else f"{ts:%Y-%m-%d}"


def timeline_svg(timeline: Timeline, risks: Sequence[RiskLane], alerts: Sequence[AlertMark], lang: Language) -> str:
    words, names = WORDS[lang], _descriptions()[lang]
    start, end = timeline.start, timeline.end
    plot_w = WIDTH - LABEL_W - RIGHT
    length = max((end - start).value, 1)

    def x(ts: pd.Timestamp) -> float:
        return LABEL_W + min(max((pd.Timestamp(ts) - start).value / length, 0.0), 1.0) * plot_w

    rows: list[tuple[str, str, int]] = []  # (kind, key, height)
    for lane in LANES:
        if lane.key in timeline.lanes:
            rows.append(("lane", lane.key, HEIGHTS.get(lane.key, TICK_H)))
    if alerts:
        rows.append(("alerts", "alerts", ALERT_H))
    rows += [("risk", r.problem, RISK_H) for r in risks]
    height = AXIS_H + sum(h for _, _, h in rows) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="timeline" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="11" aria-label="{escape(words["title"])}">',
        f"<title>{escape(words['title'])}</title>",
    ]
    parts += _axis(timeline, x, height, lang)
    y = AXIS_H
    labels = {lane.key: (lane.fi if lang == "fi" else lane.en) for lane in LANES}
    for k, (kind, key, h) in enumerate(rows):
        shade = "#f4f6f7" if k % 2 == 0 else "#ffffff"
        parts.append(f'<g class="lane" data-lane="{escape(key)}"><rect x="0" y="{y}" width="{WIDTH}" height="{h}" fill="{shade}"/>')
        if kind == "lane":
            marks = timeline.lanes[key]
            count = sum(m.events for m in marks)
            # a lane drawn only for a service running since before the span has no event in it:
            # "(0)" beside its bar would read as "nothing", so the count is said only when there is one
            shown = f'<tspan fill="#777"> ({escape(natural(count, lang))})</tspan>' if count else ""
            parts.append(f'<text x="{LABEL_W - 8}" y="{y + h / 2 + 4:.1f}" text-anchor="end">{escape(labels[key])}'
                         f'{shown}</text>')
            parts += _lane(key, marks, x, y, h, names, words, lang, end, labels[key])
        elif kind == "alerts":
            parts.append(f'<text x="{LABEL_W - 8}" y="{y + h / 2 + 4:.1f}" text-anchor="end">{escape(words["alerts"])}</text>')
            parts += _alerts(alerts, x, y, h, words)
        else:
            risk = next(r for r in risks if r.problem == key)
            parts.append(f'<text x="{LABEL_W - 8}" y="{y + h / 2 - 2:.1f}" text-anchor="end" font-weight="bold" font-size="10">'
                         f'{escape(_clip(risk.label, 38))}<title>{escape(risk.label)} ({escape(risk.group)})</title></text>'
                         f'<text x="{LABEL_W - 8}" y="{y + h / 2 + 11:.1f}" text-anchor="end" fill="#555" font-size="10">'
                         f'{escape(_clip(risk.group, 38))}</text>')
            parts += _risk(risk, x, y, h, lang)
        parts.append("</g>")
        y += h
    now = x(end)
    parts.append(f'<line class="now" x1="{now:.1f}" x2="{now:.1f}" y1="{AXIS_H - 6}" y2="{height - 8}" stroke="#1f618d" '
                 f'stroke-width="1.5"/><text x="{now + 3:.1f}" y="{AXIS_H - 8}" fill="#1f618d">{escape(words["now"])}</text>')
    parts.append("</svg>")
    return "\n".join(parts)  # apart: a page's readable text never runs one mark's words into the next


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def _axis(timeline: Timeline, x, height: int, lang: Language) -> list[str]:  # noqa: ANN001 (a local function)
    months = list(timeline.months)
    step = 1 if len(months) <= 13 else (3 if len(months) <= 37 else 6)
    parts = []
    for m in months:
        if m < timeline.start.normalize().replace(day=1):
            continue
        at = x(max(m, timeline.start))
        strong = m.month == 1
        parts.append(f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{AXIS_H - 4}" y2="{height - 8}" stroke="{"#bbb" if strong else "#e3e3e3"}"/>')
        if (m.month - 1) % step == 0 and at <= WIDTH - RIGHT - 20:
            parts.append(f'<text x="{at + 2:.1f}" y="{AXIS_H - 10}" fill="#555" font-size="10">{MONTHS[lang][m.month - 1]} {m.year}</text>')
    return parts


def _title(mark: Mark, names: dict[str, str], words: dict[str, str], lang: Language, lane_label: str) -> str:
    """A mark's tooltip. Words first and the date last in brackets: the page's readable text (tooltips
    included) then never puts two numbers side by side."""
    what = names.get(mark.codes[0], mark.codes[0])
    if mark.kind == "month":
        text = words["per_month"].format(n=natural(mark.events, lang), month=f"{mark.start.month}/{mark.start.year}")
        extra = ""
        if mark.codes[0] == "MEDROBOT/DISPENSE":
            extra = f", {natural(mark.value or 0, lang)} {words['doses']}"
        elif mark.value:
            extra = f", {natural(round(mark.value), lang)} {words['minutes']}"
        return f"{lane_label}: {text}{extra}"
    if mark.kind == "period":
        until = words["running"] if mark.open_end else day_text(mark.end, lang)
        began = f"{words['since_before']}" if mark.open_start else day_text(mark.start, lang)
        return f"{what} ({began} – {until})"
    when = day_text(mark.start, lang)
    if mark.kind == "group":
        items = "; ".join(f"{names.get(c, c)} {natural(v, lang)}" for c, v in mark.items if v == v)
        return f"{items} ({when})"
    if mark.kind == "supply":
        return f"{what}, {words['supplied'].format(n=natural(mark.value or 1, lang))} ({when})"
    if mark.value is not None:
        return f"{what} {natural(mark.value, lang)} ({when})"
    return f"{what} ({when})"


def _attrs(mark: Mark) -> str:
    return f'class="mark {mark.kind}" data-lane="{mark.lane}" data-events="{mark.events}" data-code="{escape(mark.codes[0])}"'


def _lane(key: str, marks: list[Mark], x, y: int, h: int, names: dict[str, str], words: dict[str, str],  # noqa: ANN001
          lang: Language, end: pd.Timestamp, lane_label: str) -> list[str]:
    colour = LANE_COLOURS.get(key, "#555")
    parts = []
    months = [m for m in marks if m.kind == "month"]
    high = {code: max((m.events for m in months if m.codes[0] == code), default=1) for code in {m.codes[0] for m in months}}
    supplies = sorted({m.codes[0] for m in marks if m.kind == "supply"})
    values = [m for m in marks if m.kind == "value" and m.value is not None]
    starts = [x(m.start) for m in marks]
    for i, mark in enumerate(marks):
        room = (starts[i + 1] if i + 1 < len(marks) else WIDTH - RIGHT + 30) - starts[i]
        title = f"<title>{escape(_title(mark, names, words, lang, lane_label))}</title>"
        left = x(mark.start)
        if mark.kind == "period":
            right = x(mark.end if mark.end is not None else end)
            fill = "#c0392b" if mark.codes[0] == "ADMIT/UNPLANNED" else ("#7fb3d5" if mark.codes[0] == "ADMIT/PLANNED" else colour)
            opacity = "0.85" if key in ("hospital", "rehab", "care24h", "child_welfare") else "0.18"
            parts.append(f'<rect {_attrs(mark)} x="{left:.1f}" y="{y + 4}" width="{max(right - left, 2.5):.1f}" height="{h - 8}" '
                         f'fill="{fill}" fill-opacity="{opacity}" rx="2">{title}</rect>')
        elif mark.kind == "month":
            right = x(mark.end)
            share = mark.events / high[mark.codes[0]]
            bar_h = max(share * (h - 8), 2)
            parts.append(f'<rect {_attrs(mark)} x="{left + 1:.1f}" y="{y + h - 3 - bar_h:.1f}" width="{max(right - left - 2, 1.5):.1f}" '
                         f'height="{bar_h:.1f}" fill="{colour}">{title}</rect>')
        elif mark.kind == "supply":
            row = supplies.index(mark.codes[0])
            row_h = (h - 4) / max(len(supplies), 1)
            right = x(min(mark.end, end))
            parts.append(f'<rect {_attrs(mark)} x="{left:.1f}" y="{y + 2 + row * row_h:.1f}" width="{max(right - left, 2):.1f}" '
                         f'height="{max(row_h - 2, 2):.1f}" fill="{colour}" fill-opacity="0.7">{title}</rect>')
        elif mark.kind == "value":
            if mark.value is None:
                parts.append(f'<circle {_attrs(mark)} cx="{left:.1f}" cy="{y + h - 6}" r="3" fill="none" stroke="{colour}">{title}</circle>')
                continue
            cy = y + h - 4 - mark.value / 27 * (h - 10)
            parts.append(f'<circle {_attrs(mark)} cx="{left:.1f}" cy="{cy:.1f}" r="3.5" fill="{colour}">{title}</circle>')
            if room >= 16:
                parts.append(f'<text x="{left + 5:.1f}" y="{cy + 3:.1f}" font-size="9" fill="#333">{escape(natural(mark.value, lang))}</text>')
        elif mark.kind == "group":
            shown = " · ".join(f"{RAI_SHORT[c]} {natural(v, lang)}" for c, v in mark.items if c in RAI_SHORT and v == v)
            cy = y + h / 2
            parts.append(f'<path {_attrs(mark)} d="M{left:.1f},{cy - 6:.1f} l5,6 l-5,6 l-5,-6 z" fill="{colour}">{title}</path>')
            if shown and room > 5.2 * len(shown) + 10:
                parts.append(f'<text x="{left + 7:.1f}" y="{cy + 4:.1f}" font-size="9" fill="#333">{escape(shown)}</text>')
        else:  # tick
            missed = mark.codes[0] in ("MEDROBOT/MISSED_DOSE", "ENC/MISSED_APPOINTMENT")
            stroke = "#c0392b" if missed or mark.codes[0] in ("IOT/FALL_ALARM", "CHILDWELFARE/PLACEMENT") else colour
            top = y + 3 if key != "medrobot" else y + 2
            bottom = y + h - 3 if key != "medrobot" else y + 10
            parts.append(f'<line {_attrs(mark)} x1="{left:.1f}" x2="{left:.1f}" y1="{top}" y2="{bottom}" stroke="{stroke}" '
                         f'stroke-width="{2 if not missed else 1.5}">{title}</line>')
    if months:
        biggest = max(m.events for m in months)
        parts.append(f'<text x="{WIDTH - RIGHT + 4}" y="{y + 12}" font-size="9" fill="#555">{escape(words["max"])} '
                     f'{escape(natural(biggest, lang))}<title>{escape(words["max_note"])}</title></text>')
    if values and key == "phq9":
        line_y = y + h - 4 - 10 / 27 * (h - 10)
        parts.insert(0, f'<line x1="{LABEL_W}" x2="{WIDTH - RIGHT}" y1="{line_y:.1f}" y2="{line_y:.1f}" stroke="#d68910" '
                        f'stroke-dasharray="3,3"><title>{escape(words["phq_line"])}</title></line>')
        if len(values) > 1:
            points = " ".join(f"{x(m.start):.1f},{y + h - 4 - (m.value or 0) / 27 * (h - 10):.1f}" for m in values)
            parts.insert(1, f'<polyline fill="none" stroke="{colour}" stroke-opacity="0.5" points="{points}"/>')
    return parts


def _alerts(alerts: Sequence[AlertMark], x, y: int, h: int, words: dict[str, str]) -> list[str]:  # noqa: ANN001
    colours = {"accepted": "#27ae60", "overridden": "#7f8c8d", None: "#e67e22"}
    parts = []
    for alert in alerts:
        at, said = x(alert.day), words.get(alert.outcome or "no_feedback", "")
        parts.append(f'<path class="alert-mark" data-outcome="{alert.outcome or "none"}" d="M{at:.1f},{y + h - 4} l0,-{h - 8} '
                     f'l9,4 l-9,4" fill="{colours[alert.outcome]}" stroke="{colours[alert.outcome]}" stroke-width="1.5">'
                     f"<title>{escape(alert.text)} – {escape(said)}</title></path>")
    return parts


def _risk(risk: RiskLane, x, y: int, h: int, lang: Language) -> list[str]:  # noqa: ANN001
    values = [p for _, p, _ in risk.points if p is not None]
    ceiling = min(1.0, max([*values, risk.edges[1]]) * 1.15) or 1.0

    def ry(p: float) -> float:
        return y + h - 5 - p / ceiling * (h - 10)

    parts = []
    for edge, colour in zip(risk.edges, ("#f5b041", "#e67e22", "#c0392b")):
        if edge <= ceiling:
            parts.append(f'<line x1="{LABEL_W}" x2="{WIDTH - RIGHT}" y1="{ry(edge):.1f}" y2="{ry(edge):.1f}" stroke="{colour}" '
                         f'stroke-dasharray="4,3"/>')
    lines: list[str] = []
    dots: list[str] = []
    segment: list[str] = []
    for when, p, why in [*risk.points, (None, None, None)]:
        if p is None and len(segment) > 1:
            lines.append(f'<polyline fill="none" stroke="#1f618d" stroke-width="2" points="{" ".join(segment)}"/>')
        if when is None:
            break
        at = x(when)
        label = f"{when.month}/{when.year}" if when.day == 1 else day_text(when, lang)
        if p is None:
            segment = []
            dots.append(f'<circle class="risk-gap" data-risk="{risk.problem}" cx="{at:.1f}" cy="{ry(0):.1f}" r="2.5" fill="none" '
                        f'stroke="#999"><title>{escape(label)}: {escape(risk.gap_words.get(why or "", ""))}</title></circle>')
            continue
        segment.append(f"{at:.1f},{ry(p):.1f}")
        colour = "#c0392b" if p >= risk.edges[2] else ("#e67e22" if p >= risk.edges[1] else ("#d68910" if p >= risk.edges[0] else "#27ae60"))
        dots.append(f'<circle class="risk-point" data-risk="{risk.problem}" cx="{at:.1f}" cy="{ry(p):.1f}" r="3" fill="{colour}">'
                    f"<title>{escape(label)}: {escape(percent(p, lang))}</title></circle>")
    parts += lines + dots
    last = risk.points[-1] if risk.points else None
    if last is not None and last[1] is not None:
        parts.append(f'<text x="{x(last[0]) + 5:.1f}" y="{ry(last[1]) + 4:.1f}" font-size="10" font-weight="bold" fill="#1f618d">'
                     f"{escape(percent(last[1], lang, 0))}</text>")
    return parts
