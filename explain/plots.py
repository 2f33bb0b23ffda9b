"""Charts for people: a per-customer waterfall and a model-level SHAP summary.

The waterfall is drawn as hand-written inline SVG: it is on every clinician page, so it must cost
microseconds rather than a matplotlib figure (~100 ms), carry the same plain-language labels as the
reasons, and scale and print cleanly. The model-card summary is drawn once per model with the shap
package (beeswarm), as the design asks for shap's own plots where they exist.
"""

from __future__ import annotations

import io
from html import escape

import numpy as np
import pandas as pd

from explain.reasons import Explanation, Language, Reason
from explain.shap_import import load_shap

_TITLES = {
    "en": ("How the risk score is built", "Effect on the risk score (log-odds)", "Average", "Other factors", "This customer"),
    "fi": ("Miten riskipisteet muodostuvat", "Vaikutus riskipisteisiin (log-odds)", "Keskimäärin", "Muut tekijät", "Tämä asiakas"),
}
_RAISE, _LOWER, _NEUTRAL = "#c0392b", "#2471a3", "#7f8c8d"


def waterfall_steps(explanation: Explanation, max_steps: int) -> list[tuple[str, str, float]]:
    """(family key, kind, delta) steps: the largest families, then the rest as one step."""
    reasons: list[Reason] = explanation.reasons
    shown = reasons[:max_steps]
    rest = sum(r.contribution for r in reasons[max_steps:])
    steps = [(r.family, "family", r.contribution) for r in shown]
    if len(reasons) > max_steps:
        steps.append(("__other__", "other", rest))
    return steps


def waterfall_svg(explanation: Explanation, lang: Language = "en", max_steps: int = 8) -> str:
    """An SVG waterfall from the base value to this customer's raw score, one bar per family."""
    title, axis, base_label, other_label, total_label = _TITLES[lang]
    labels = {r.family: (r.label_fi if lang == "fi" else r.label_en) for r in explanation.reasons}
    steps = waterfall_steps(explanation, max_steps)

    rows: list[tuple[str, float, float, str]] = [(base_label, 0.0, explanation.base_value, _NEUTRAL)]
    position = explanation.base_value
    for family, kind, delta in steps:
        label = other_label if kind == "other" else labels[family]
        rows.append((label, position, position + delta, _RAISE if delta > 0 else _LOWER))
        position += delta
    rows.append((total_label, 0.0, explanation.raw_score, _NEUTRAL))

    ends = [v for _, a, b, _ in rows for v in (a, b)]
    low, high = min(ends), max(ends)
    span = (high - low) or 1.0
    low, high = low - 0.05 * span, high + 0.05 * span
    label_w, bar_w, row_h, top = 230, 360, 26, 10
    width, height = label_w + bar_w + 70, top + row_h * len(rows) + 34

    def x(value: float) -> float:
        return label_w + (value - low) / (high - low) * bar_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="waterfall" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-label="{escape(title)}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",  # the page gives the visible caption
        f'<line x1="{x(0.0):.1f}" y1="{top - 4}" x2="{x(0.0):.1f}" y2="{height - 30}" stroke="#bbb" stroke-dasharray="3,3"/>',
    ]
    for i, (label, start, end, colour) in enumerate(rows):
        y = top + i * row_h
        left, right = sorted((x(start), x(end)))
        delta = end - start
        shown = f"{end:+.2f}" if colour == _NEUTRAL else f"{delta:+.2f}"
        parts.append(f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(label)}</text>')
        parts.append(
            f'<rect class="bar" x="{left:.1f}" y="{y + 4}" width="{max(right - left, 1.5):.1f}" '
            f'height="{row_h - 8}" fill="{colour}"><title>{escape(label)}: {shown}</title></rect>'
        )
        parts.append(f'<text x="{right + 4:.1f}" y="{y + 16}" fill="#333">{shown}</text>')
    parts.append(f'<text x="{label_w}" y="{height - 10}" fill="#555">{escape(axis)}</text>')
    parts.append("</svg>")
    return "".join(parts)


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
    numeric = pd.DataFrame(index=features.index)
    for name in shown.columns:
        column = features[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            numeric[name] = column.cat.codes.astype(float).replace(-1, np.nan)
        else:
            numeric[name] = pd.to_numeric(column, errors="coerce").astype(float)
    # plot_size=None below makes shap draw on this current figure.
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


def trend_svg(points: list[tuple[str, float | None]], bands: tuple[float, float, float], title: str) -> str:
    """A small line chart of one problem's probability over time, with the band edges shaded.

    points: (label, probability or None where the customer was not in the cohort), oldest first.
    bands: the moderate, high and very-high lower edges, drawn as dashed lines.
    """
    width, height, left, right, top, bottom = 420, 150, 40, 10, 22, 28
    values = [p for _, p in points if p is not None]
    ceiling = min(1.0, max([*values, bands[-1]]) * 1.15) if values else bands[-1] * 1.15
    ceiling = ceiling or 1.0
    n = max(len(points) - 1, 1)

    def x(i: int) -> float:
        return left + i * (width - left - right) / n

    def y(p: float) -> float:
        return top + (1 - p / ceiling) * (height - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="trend" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family="sans-serif" font-size="10" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for edge, colour in zip(bands, ("#f5b041", "#e67e22", "#c0392b")):
        if edge <= ceiling:
            parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(edge):.1f}" y2="{y(edge):.1f}" stroke="{colour}" stroke-dasharray="4,3"/>')
            parts.append(f'<text x="{left - 4}" y="{y(edge) + 3:.1f}" text-anchor="end" fill="{colour}">{edge:.0%}</text>')
    segment: list[str] = []
    for i, (_, p) in enumerate(points):  # gaps where the customer was outside the cohort
        if p is None:
            if len(segment) > 1:
                parts.append(f'<polyline fill="none" stroke="#1f618d" stroke-width="2" points="{" ".join(segment)}"/>')
            segment = []
            continue
        segment.append(f"{x(i):.1f},{y(p):.1f}")
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(p):.1f}" r="3" fill="#1f618d"><title>{escape(points[i][0])}: {p:.1%}</title></circle>')
    if len(segment) > 1:
        parts.append(f'<polyline fill="none" stroke="#1f618d" stroke-width="2" points="{" ".join(segment)}"/>')
    for i, (label, _) in enumerate(points):
        if i in (0, len(points) - 1) or i % 3 == 0:
            parts.append(f'<text x="{x(i):.1f}" y="{height - 10}" text-anchor="middle" fill="#555">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
