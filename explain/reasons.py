"""SHAP contributions -> plain-language reasons (Finnish and English).

Pure functions: they take one row of contributions (LightGBM's pred_contrib, log-odds: the
features then the bias) with the customer's own feature values, and return typed records. The
words come from the feature catalogue (features/catalogue.py, one entry per feature with both
languages). Features of one family (e.g. every emergency-care count) are summed into one reason,
because a clinician reads "emergency care use raises the risk" better than five correlated raw
features.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from features.catalogue import FeatureInfo, family_words, feature_info
from vocabulary import Language

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


def feature_sentence(info: FeatureInfo, value: Any, lang: Language) -> str:
    """"5 emergency visits in the last 90 days": the catalogue's template with the value; a missing
    value (NaN: never on record, fewer than two measurements) says the catalogue's "never" sentence
    ("No emergency department visits on record"). Zero is a value, not "never"."""
    template = info.template_fi if lang == "fi" else info.template_en
    never = info.never_fi if lang == "fi" else info.never_en
    if never and (value is None or (isinstance(value, float) and math.isnan(value))):
        return never
    return template.replace("{value}", format_value(value, lang, info.decimals))


def family_label(family: str, lang: Language) -> str:
    return family_words(family, lang)


def catalogue_entries(names: Sequence[str]) -> list[FeatureInfo]:
    """The catalogue entry of every feature a model reads; a feature without one is an error."""
    try:
        return [feature_info(str(name)) for name in names]
    except KeyError as error:
        raise ValueError(f"feature {error.args[0]!r} has no entry in the feature catalogue (features/catalogue.py)") from None


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


def explanation(names: Sequence[str], contributions: Sequence[float], values: Sequence[Any]) -> Explanation:
    """Every feature's contribution and the family reasons of one row: names[i] has
    contributions[i] and values[i]; the bias is contributions[len(names)] (a pred_contrib row).
    Reasons are ordered by the size of their effect, largest first; contributions keep the
    model's feature order."""
    infos = catalogue_entries(names)
    base_value = float(contributions[len(names)])
    items = [
        FeatureContribution(
            feature=str(name), family=info.family, value=(value := plain_value(values[i])), contribution=float(contributions[i]),
            text_en=feature_sentence(info, value, "en"), text_fi=feature_sentence(info, value, "fi"),
        )
        for i, (name, info) in enumerate(zip(names, infos))
    ]
    raw_score = base_value + math.fsum(item.contribution for item in items)
    return Explanation(base_value=base_value, raw_score=raw_score, contributions=items, reasons=group_by_family(items))


def top_reasons(names: Sequence[str], contributions: Sequence[float], values: Sequence[Any], k: int) -> list[Reason]:
    """explanation(...).reasons[:k] without the records nobody reads: families are ranked on
    their sums first, and only the shown members of the k largest get sentences (a row has ~130
    features, 95 of them in one family; the service shows 5 reasons). Equal to the long way
    (tested)."""
    if k <= 0:
        return []
    infos = catalogue_entries(names)
    members: dict[str, list[int]] = {}
    for index, info in enumerate(infos):
        members.setdefault(info.family, []).append(index)
    floats = [float(c) for c in contributions[: len(names)]]
    totals = {family: math.fsum(floats[i] for i in indexes) for family, indexes in members.items()}
    reasons = []
    for family in _by_effect(list(members), [totals[f] for f in members])[:k]:
        indexes = members[family]
        shown = [indexes[i] for i in _shown([floats[i] for i in indexes], totals[family])]
        items = [
            FeatureContribution(
                feature=str(names[i]), family=family, value=(value := plain_value(values[i])), contribution=floats[i],
                text_en=feature_sentence(infos[i], value, "en"), text_fi=feature_sentence(infos[i], value, "fi"),
            )
            for i in shown
        ]
        reasons.append(_reason(family, totals[family], items))
    return reasons


def group_by_family(items: list[FeatureContribution]) -> list[Reason]:
    families: dict[str, list[FeatureContribution]] = {}
    for item in items:
        families.setdefault(item.family, []).append(item)
    reasons = []
    for family, members in families.items():
        total = math.fsum(member.contribution for member in members)
        shown = [members[i] for i in _shown([m.contribution for m in members], total)]
        reasons.append(_reason(family, total, shown))
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


def _reason(family: str, total: float, shown: list[FeatureContribution]) -> Reason:
    return Reason(
        family=family,
        feature=shown[0].feature,
        label_en=family_label(family, "en"),
        label_fi=family_label(family, "fi"),
        contribution=total,
        direction="up" if total > 0 else "down",
        text_en="; ".join(m.text_en for m in shown[:3]),
        text_fi="; ".join(m.text_fi for m in shown[:3]),
        features=shown,
    )
