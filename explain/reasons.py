"""SHAP contributions -> plain-language reasons (Finnish and English).

Pure functions: they take one row of contributions (LightGBM's pred_contrib, log-odds: the
features then the bias) with the customer's own feature values, and return typed records. The
words come from the feature catalogue (features/catalogue.py, one entry per feature with both
languages). Features of one family (e.g. every emergency-care count) are summed into one reason,
because a clinician reads "emergency care use raises the risk" better than five correlated raw
features.

Reasons come only from families a nurse can act on (services, events, diagnoses, assessments);
the background families (age, sex, municipality, language; service costs: features/catalogue.py
BACKGROUND_FAMILIES) are returned apart as `context`, so a page shows them as who the customer
is, not as causes. Reasons and context together hold every family: base value + reasons +
context == raw score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from features.catalogue import FeatureInfo, family_words, feature_info, is_background
from vocabulary import Language
from vocabulary.numbers import euros, natural, percent

Value = float | str | None


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
    """Every contribution for one row: base_value + sum(contributions) == raw_score, and the
    same sum by family: reasons (families to act on) and context (background families)."""

    model_config = ConfigDict(extra="forbid")

    base_value: float
    raw_score: float
    contributions: list[FeatureContribution]
    reasons: list[Reason]
    context: list[Reason]


def format_value(value: Any, lang: Language, decimals: int = 0,
                 shown_as: Literal["number", "signed", "percent", "euros"] = "number") -> str:
    """A value as each language writes it (vocabulary/numbers.py): "number" is a whole number
    without decimals and others with `decimals` places ("12", "32,9"); "signed" the same with its
    sign ("+3", "−2"; no sign on a value shown as 0); "percent" a share 0-1 ("25 %", "25%");
    "euros" whole euros ("45 578 €", "€45,578"). A missing value has no number: raises."""
    if _missing(value):
        raise ValueError("a missing value has no number: its sentence is the catalogue's never_* sentence")
    value = float(value)
    if shown_as == "euros":
        return euros(value, lang)
    if shown_as == "percent":
        return percent(value, lang, decimals)
    text = natural(value, lang, decimals)
    if shown_as == "signed" and value > 0 and text.strip("0,.") != "":
        return f"+{text}"
    return text


def feature_sentence(info: FeatureInfo, value: Any, lang: Language) -> str:
    """What a person reads about one feature's value, from the catalogue (features/catalogue.py):
    a missing value (None, NaN: never on record, fewer than two measurements) says the "never"
    sentence; a flag its set or not-set sentence; a category its words; a number the sentence the
    catalogue has for that value as shown ("No emergency department visits ..." for 0, the
    singular for 1), else the template with the number as the language writes it. Zero is a
    value, not "never"."""
    en = lang == "en"
    if _missing(value):
        never = info.never_en if en else info.never_fi
        if never is None:
            raise ValueError(f"feature {info.name!r} has no sentence for a missing value in the catalogue")
        return never
    template = info.template_en if en else info.template_fi
    if info.kind == "categorical":
        words = {code: (word_en, word_fi) for code, word_en, word_fi in info.value_words}
        if str(value) not in words:
            raise ValueError(f"feature {info.name!r}: value {value!r} is not one of its categories {list(words)}")
        return template.replace("{value}", words[str(value)][0 if en else 1])
    if info.kind == "flag":
        if float(value) != 0:
            return template
        no = info.no_en if en else info.no_fi
        if no is None:
            raise ValueError(f"flag {info.name!r} has no sentence for a flag that is not set in the catalogue")
        return no
    shown = format_value(value, "en", info.decimals, info.shown_as)
    for said in info.said:
        if format_value(said.value, "en", info.decimals, info.shown_as) == shown:
            template = said.en if en else said.fi
            break
    return template.replace("{value}", format_value(value, lang, info.decimals, info.shown_as))


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return math.isnan(value)
    except TypeError:
        return False


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
    families = group_by_family(items)
    return Explanation(base_value=base_value, raw_score=raw_score, contributions=items,
                       reasons=[r for r in families if not is_background(r.family)],
                       context=[r for r in families if is_background(r.family)])


def top_reasons(names: Sequence[str], contributions: Sequence[float], values: Sequence[Any], k: int) -> list[Reason]:
    """explanation(...).reasons[:k] without the records nobody reads: families are ranked on
    their sums first, and only the shown members of the k largest get sentences (a row has ~130
    features, 95 of them in one family; the service shows 5 reasons). Equal to the long way
    (tested)."""
    return _family_reasons(names, contributions, values, background=False, k=k)


def context(names: Sequence[str], contributions: Sequence[float], values: Sequence[Any]) -> list[Reason]:
    """explanation(...).context: the background families of one row, largest effect first."""
    return _family_reasons(names, contributions, values, background=True, k=None)


def _family_reasons(names: Sequence[str], contributions: Sequence[float], values: Sequence[Any], *,
                    background: bool, k: int | None) -> list[Reason]:
    """The k (None: all) families of one kind with the largest effect, as reasons."""
    if k is not None and k <= 0:
        return []
    infos = catalogue_entries(names)
    members: dict[str, list[int]] = {}
    for index, info in enumerate(infos):
        if is_background(info.family) == background:
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
