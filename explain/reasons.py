"""SHAP contributions -> plain-language reasons (Finnish and English).

Pure functions: they take one row of contributions (RiskModel.contributions, log-odds, features
plus `bias`) and the customer's own feature values, and return typed records. Features of one
family (e.g. every emergency-care count) are summed into one reason, because a clinician reads
"emergency care use raises the risk" better than five correlated raw features.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

from explain.catalogue import FeatureText, fallback_text

BIAS_COLUMN = "bias"  # same name as models.risk_model.BIAS_COLUMN; kept here to stay import-light
Language = Literal["fi", "en"]
Value = float | str | None

_NO_DATA = {"en": "no data", "fi": "ei tietoa"}


class FeatureContribution(BaseModel):
    """One feature's share of the raw score (log-odds) for one customer."""

    model_config = ConfigDict(extra="forbid")

    feature: str
    family: str
    value: Value
    contribution: float
    text_en: str
    text_fi: str


class Reason(BaseModel):
    """One family's summed contribution, with the member features that make it up."""

    model_config = ConfigDict(extra="forbid")

    family: str
    feature: str  # the member with the largest effect (what alerts/cards.py keys chains on)
    label_en: str
    label_fi: str
    contribution: float
    direction: Literal["up", "down"]  # up = raises the risk (the words alerts/cards.py reads)
    text_en: str
    text_fi: str
    features: list[FeatureContribution]


class Explanation(BaseModel):
    """Every contribution for one row: base_value + sum(contributions) == raw_score."""

    model_config = ConfigDict(extra="forbid")

    base_value: float
    raw_score: float
    contributions: list[FeatureContribution]
    reasons: list[Reason]


def format_value(value: Any, lang: Language, decimals: int | None = None) -> str:
    """Whole numbers without decimals, others with `decimals` (default one); Finnish decimal comma."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return _NO_DATA[lang]
    if isinstance(value, str):
        return value
    number = float(value)
    if number.is_integer():
        text = str(int(number))
    else:
        text = f"{number:.{1 if decimals is None else max(decimals, 0)}f}"
    return text.replace(".", ",") if lang == "fi" else text


def feature_sentence(text: FeatureText, value: Any, lang: Language) -> str:
    """"5 emergency visits in the last 90 days", or "Age: 82 years" without a template."""
    template = text.template_fi if lang == "fi" else text.template_en
    never = text.never_fi if lang == "fi" else text.never_en
    if never and isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0:
        return never
    shown = format_value(value, lang, text.decimals)
    if template:
        return template.replace("{value}", shown)
    description = (text.description_fi if lang == "fi" else text.description_en) or text.name
    unit_text = (text.unit_fi or text.unit) if lang == "fi" else text.unit
    unit = f" {unit_text}" if unit_text and shown != _NO_DATA[lang] else ""
    return f"{description}: {shown}{unit}"


def family_label(text: FeatureText, lang: Language) -> str:
    label = text.family_fi if lang == "fi" else text.family_en
    return label or text.family.replace("_", " ").capitalize()


def plain_value(value: Any) -> Value:
    """A JSON-safe copy of a feature value (NaN -> None, numpy scalars -> float)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return None if math.isnan(number) else number


def explain_row(
    contributions: pd.Series,
    values: pd.Series,
    catalogue: Mapping[str, FeatureText],
) -> Explanation:
    """Turn one contributions row (features + `bias`) into contributions and family reasons.

    Reasons are ordered by the size of their effect, largest first; contributions keep the
    model's feature order.
    """
    base_value = float(contributions[BIAS_COLUMN])
    items: list[FeatureContribution] = []
    texts: dict[str, FeatureText] = {}
    for feature, contribution in contributions.items():
        if feature == BIAS_COLUMN:
            continue
        text = catalogue.get(str(feature)) or fallback_text(str(feature))
        texts[text.family] = texts.get(text.family, text)
        value = plain_value(values.get(feature))
        items.append(
            FeatureContribution(
                feature=str(feature),
                family=text.family,
                value=value,
                contribution=float(contribution),
                text_en=feature_sentence(text, value, "en"),
                text_fi=feature_sentence(text, value, "fi"),
            )
        )
    reasons = group_by_family(items, texts)
    raw_score = base_value + math.fsum(item.contribution for item in items)
    return Explanation(base_value=base_value, raw_score=raw_score, contributions=items, reasons=reasons)


def explain_vector(
    names: Sequence[str], contributions: Sequence[float], values: Sequence[Any], catalogue: Mapping[str, FeatureText],
) -> Explanation:
    """explain_row on plain sequences: names[i] has contributions[i] and values[i]; the bias is
    contributions[len(names)] (LightGBM's pred_contrib row). Same result as explain_row."""
    row = dict(zip(names, contributions))
    row[BIAS_COLUMN] = contributions[len(names)]
    return explain_row(row, dict(zip(names, values)), catalogue)  # type: ignore[arg-type]  (mappings suffice)


def top_reasons_vector(
    names: Sequence[str], contributions: Sequence[float], values: Sequence[Any], catalogue: Mapping[str, FeatureText], k: int,
) -> list[Reason]:
    """top_reasons(explain_vector(...), k) without the records nobody reads: families are ranked
    on their sums first, and only the shown members of the k largest get sentences (a row has
    ~130 features, 95 of them in one family; the service shows 5 reasons). Equal to the long
    way (tested)."""
    if k <= 0:
        return []
    members: dict[str, list[int]] = {}
    texts: dict[str, FeatureText] = {}
    feature_texts = []
    for index, feature in enumerate(names):
        text = catalogue.get(str(feature)) or fallback_text(str(feature))
        feature_texts.append(text)
        texts.setdefault(text.family, text)
        members.setdefault(text.family, []).append(index)
    floats = [float(c) for c in contributions[: len(names)]]
    totals = {family: math.fsum(floats[i] for i in indexes) for family, indexes in members.items()}
    reasons = []
    for family in _by_effect(list(members), [totals[f] for f in members])[:k]:
        indexes = members[family]
        shown = [indexes[i] for i in _shown([floats[i] for i in indexes], totals[family])]
        items = [
            FeatureContribution(
                feature=str(names[i]), family=family, value=(value := plain_value(values[i])), contribution=floats[i],
                text_en=feature_sentence(feature_texts[i], value, "en"), text_fi=feature_sentence(feature_texts[i], value, "fi"),
            )
            for i in shown
        ]
        reasons.append(_reason(family, texts[family], totals[family], items))
    return reasons


def group_by_family(items: list[FeatureContribution], texts: Mapping[str, FeatureText]) -> list[Reason]:
    families: dict[str, list[FeatureContribution]] = {}
    for item in items:
        families.setdefault(item.family, []).append(item)
    reasons = []
    for family, members in families.items():
        total = math.fsum(member.contribution for member in members)
        shown = [members[i] for i in _shown([m.contribution for m in members], total)]
        reasons.append(_reason(family, texts[family], total, shown))
    return [reasons[i] for i in _by_effect(list(range(len(reasons))), [r.contribution for r in reasons])]


def _by_effect(keys: list[Any], totals: list[float]) -> list[Any]:
    """keys ordered by |total|, largest first; ties keep their order (a stable sort)."""
    order = sorted(range(len(keys)), key=lambda i: abs(totals[i]), reverse=True)
    return [keys[i] for i in order]


def _shown(contributions: list[float], total: float) -> list[int]:
    """Inside a family, the members that pushed the same way as the family, biggest first (all
    members if none did)."""
    same_way = [i for i, c in enumerate(contributions) if (c > 0) == (total > 0) and c != 0]
    return sorted(same_way or range(len(contributions)), key=lambda i: abs(contributions[i]), reverse=True)


def _reason(family: str, text: FeatureText, total: float, shown: list[FeatureContribution]) -> Reason:
    return Reason(
        family=family,
        feature=shown[0].feature,
        label_en=family_label(text, "en"),
        label_fi=family_label(text, "fi"),
        contribution=total,
        direction="up" if total > 0 else "down",
        text_en="; ".join(m.text_en for m in shown[:3]),
        text_fi="; ".join(m.text_fi for m in shown[:3]),
        features=shown,
    )


def top_reasons(explanation: Explanation, k: int) -> list[Reason]:
    """The k reasons with the largest effect (either direction); k=0 gives none."""
    return explanation.reasons[: max(k, 0)]


def card_reason(reason: Reason) -> dict[str, str]:
    """The four fields alerts/cards.py's Reason takes (text_en, text_fi, direction, feature)."""
    return reason.model_dump(include={"text_en", "text_fi", "direction", "feature"})
