"""Charts for people: a per-customer waterfall and a model-level SHAP summary.

The waterfall is drawn as hand-written inline SVG: it is on every clinician page, so it must cost
microseconds rather than a matplotlib figure (~100 ms), carry the same plain-language labels as the
reasons, and scale and print cleanly. The model-card summary is drawn once per model with the shap
package (beeswarm), as the design asks for shap's own plots where they exist.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from html import escape

import numpy as np
import pandas as pd

from explain.reasons import Explanation, Language, Reason
from explain.shap_import import load_shap
from vocabulary.numbers import number, percent

_TITLES = {
    "en": ("How the reasons add up to the risk", "Change in the risk, percentage points (in the order shown)", "Average customer",
           "Other factors", "This customer"),
    "fi": ("Miten syyt muodostavat riskin", "Muutos riskiin, prosenttiyksikköä (esitetyssä järjestyksessä)", "Keskimääräinen asiakas",
           "Muut tekijät", "Tämä asiakas"),
}
_POINTS = {"en": "pp", "fi": "%-yks."}
_BACKGROUND = {"en": "context", "fi": "taustatekijä"}  # marks a background family (never a reason)
_RAISE, _LOWER, _NEUTRAL = "#c0392b", "#2471a3", "#7f8c8d"


def waterfall_steps(explanation: Explanation, max_steps: int) -> list[tuple[str, str, float]]:
    """(family key, kind, delta in log-odds) steps: the background families first (who the
    customer is: "context"), then the largest reasons, then the rest as one step; every family
    is in exactly one step, so the steps add up to the raw score."""
    background: list[Reason] = explanation.context
    reasons: list[Reason] = explanation.reasons
    room = max(max_steps - len(background), 1)
    steps = [(r.family, "context", r.contribution) for r in background]
    steps += [(r.family, "family", r.contribution) for r in reasons[:room]]
    if len(reasons) > room:
        steps.append(("__other__", "other", sum(r.contribution for r in reasons[room:])))
    return steps


def waterfall_rows(explanation: Explanation, to_probability: Callable[[np.ndarray], np.ndarray], lang: Language,
                   shown: float, max_steps: int = 8) -> list[tuple[str, float, float, str]]:
    """(label, start, end, kind) rows on the probability scale: the average customer's risk, one
    row per family moving it (each family's log-odds added in turn, then calibrated, so every step
    is the change in the displayed risk), and this customer's risk, which is the probability shown
    on the page (`shown`, the calibrated booster score: the contributions' sum can differ from the
    booster's own raw score in the last digits, and the chart must end where the headline does)."""
    _, _, base_label, other_label, total_label = _TITLES[lang]
    labels = {r.family: (r.label_fi if lang == "fi" else r.label_en) for r in explanation.reasons}
    labels |= {r.family: f"{r.label_fi if lang == 'fi' else r.label_en} ({_BACKGROUND[lang]})" for r in explanation.context}
    steps = waterfall_steps(explanation, max_steps)
    positions = np.cumsum([explanation.base_value] + [delta for _, _, delta in steps])
    probability = np.asarray(to_probability(positions), dtype=float)
    probability[-1] = shown
    rows = [(base_label, 0.0, float(probability[0]), "total")]
    for i, (family, kind, _) in enumerate(steps, start=1):
        change = float(probability[i] - probability[i - 1])
        direction = "up" if change > 0 else ("down" if change < 0 else "none")
        rows.append((other_label if kind == "other" else labels[family], float(probability[i - 1]), float(probability[i]), direction))
    rows.append((total_label, 0.0, float(probability[-1]), "total"))
    return rows


def waterfall_svg(explanation: Explanation, to_probability: Callable[[np.ndarray], np.ndarray], shown: float,
                  lang: Language = "en", max_steps: int = 8) -> str:
    """An SVG waterfall on the probability scale, from the average customer's risk to this
    customer's, one bar per family (its change in percentage points)."""
    title, axis, *_ = _TITLES[lang]
    rows = waterfall_rows(explanation, to_probability, lang, shown, max_steps)
    colours = {"up": _RAISE, "down": _LOWER, "none": _NEUTRAL, "total": _NEUTRAL}
    high = max(max(a, b) for _, a, b, _ in rows) or 1.0
    label_w, bar_w, row_h, top = 230, 340, 26, 10
    width, height = label_w + bar_w + 90, top + row_h * len(rows) + 34

    def x(value: float) -> float:
        return label_w + value / (high * 1.05) * bar_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="waterfall" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-label="{escape(title)}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",  # the page gives the visible caption
    ]
    for i, (label, start, end, kind) in enumerate(rows):
        y = top + i * row_h
        left, right = sorted((x(start), x(end)))
        if kind == "total":
            shown = percent(end, lang)
        else:
            change = (end - start) * 100
            sign = "+" if change > 0 else ""
            shown = f"{sign}{number(change, lang, 1)} {_POINTS[lang]}"
        parts.append(f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(label)}</text>')
        parts.append(
            f'<rect class="bar {kind}" x="{left:.1f}" y="{y + 4}" width="{max(right - left, 1.5):.1f}" '
            f'height="{row_h - 8}" fill="{colours[kind]}"><title>{escape(label)}: {escape(shown)}</title></rect>'
        )
        parts.append(f'<text class="value" x="{right + 4:.1f}" y="{y + 16}" fill="#333">{escape(shown)}</text>')
    parts.append(f'<text x="{label_w}" y="{height - 10}" fill="#555">{escape(axis)}</text>')
    parts.append("</svg>")
    return "".join(parts)


_PYPLOT = threading.Lock()  # pyplot's state is global: see shap_summary_svg


def mean_abs_importance(contributions: pd.DataFrame) -> pd.Series:
    """Global importance: mean |SHAP| per feature over a sample, largest first (no `bias`)."""
    values = contributions.drop(columns=["bias"], errors="ignore").abs().mean()
    return values.sort_values(ascending=False)


def shap_summary_svg(contributions: pd.DataFrame, features: pd.DataFrame, max_display: int = 15) -> str:
    """shap's beeswarm summary of a sample (model card). Categorical features are coloured by code."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    shap = load_shap()

    shown = contributions.drop(columns=["bias"], errors="ignore")
    columns = {}
    for name in shown.columns:
        column = features[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            columns[name] = column.cat.codes.astype(float).replace(-1, np.nan)
        else:
            columns[name] = pd.to_numeric(column, errors="coerce").astype(float)
    numeric = pd.DataFrame(columns, index=features.index)  # one frame, not a column at a time
    # shap draws with pyplot, whose current figure is one per process: two model cards rendered at
    # once in the service's threads drew on each other's figure (a 500, "Argument must be an image
    # or collection in this Axes"). One at a time; plot_size=None makes shap draw on this figure.
    with _PYPLOT:
        plt.figure(figsize=(8, 0.4 * min(max_display, shown.shape[1]) + 1.5))
        try:
            shap.summary_plot(
                shown.to_numpy(), numeric.to_numpy(), feature_names=list(shown.columns),
                max_display=max_display, show=False, plot_size=None,
            )
            buffer = io.StringIO()
            plt.savefig(buffer, format="svg", bbox_inches="tight")
        finally:
            plt.close("all")
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog so it can be inlined in HTML


def trend_svg(points: list[tuple[str, float | None, str | None]], bands: tuple[float, float, float], title: str,
              gap_words: dict[str, str], lang: Language = "en") -> str:
    """A small line chart of one problem's probability over time, with the band edges dashed.

    points: (label, probability, why) oldest first; where the customer was not scored the
    probability is None and `why` (a key of gap_words) says why: such months are drawn as open
    circles on the axis with their reason, and listed under the chart.
    bands: the moderate, high and very-high lower edges.
    """
    width, left, right, top, bottom = 420, 44, 16, 22, 28
    reasons = [why for _, p, why in points if p is None and why]
    legend = list(dict.fromkeys(reasons))
    height = 150 + 14 * len(legend)
    plot_bottom = 150 - bottom
    values = [p for _, p, _ in points if p is not None]
    ceiling = min(1.0, max([*values, bands[-1]]) * 1.15) if values else bands[-1] * 1.15
    ceiling = ceiling or 1.0
    n = max(len(points) - 1, 1)

    def x(i: int) -> float:
        return left + i * (width - left - right) / n

    def y(p: float) -> float:
        return top + (1 - p / ceiling) * (plot_bottom - top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="trend" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family="sans-serif" font-size="10" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for edge, colour in zip(bands, ("#f5b041", "#e67e22", "#c0392b")):
        if edge <= ceiling:
            parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(edge):.1f}" y2="{y(edge):.1f}" stroke="{colour}" stroke-dasharray="4,3"/>')
            parts.append(f'<text x="{left - 4}" y="{y(edge) + 3:.1f}" text-anchor="end" fill="{colour}">{escape(percent(edge, lang, 0))}</text>')
    segment: list[str] = []
    for i, (label, p, why) in enumerate(points):
        if p is None:
            if len(segment) > 1:
                parts.append(f'<polyline fill="none" stroke="#1f618d" stroke-width="2" points="{" ".join(segment)}"/>')
            segment = []
            said = gap_words.get(why or "", "")
            parts.append(f'<circle class="gap" data-why="{escape(why or "")}" cx="{x(i):.1f}" cy="{y(0):.1f}" r="3" fill="none" '
                         f'stroke="#999"><title>{escape(label)}: {escape(said)}</title></circle>')
            continue
        segment.append(f"{x(i):.1f},{y(p):.1f}")
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(p):.1f}" r="3" fill="#1f618d"><title>{escape(label)}: '
                     f'{escape(percent(p, lang))}</title></circle>')
    if len(segment) > 1:
        parts.append(f'<polyline fill="none" stroke="#1f618d" stroke-width="2" points="{" ".join(segment)}"/>')
    last = len(points) - 1
    for i, (label, _, _) in enumerate(points):
        if i in (0, last) or (i % 3 == 0 and last - i >= 2):  # no label crowding the last one
            anchor = "start" if i == 0 else ("end" if i == last else "middle")
            parts.append(f'<text x="{x(i):.1f}" y="{plot_bottom + 16}" text-anchor="{anchor}" fill="#555">{escape(label)}</text>')
    for k, why in enumerate(legend):
        parts.append(f'<circle cx="{left + 4}" cy="{plot_bottom + 30 + 14 * k - 3}" r="3" fill="none" stroke="#999"/>'
                     f'<text class="gap-legend" x="{left + 12}" y="{plot_bottom + 30 + 14 * k}" fill="#555">'
                     f'{escape(gap_words.get(why, why))}</text>')
    parts.append("</svg>")
    return "".join(parts)
