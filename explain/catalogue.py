"""The words explain/ needs about each feature, as a typed record.

features/ owns the feature catalogue; scoring/backend.py converts its entries into these records
so that explain/ depends on nothing but this small shape (and still works when a feature has no
catalogue entry: the name itself is then shown).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Direction = Literal["higher_is_riskier", "lower_is_riskier", "neutral"]


class FeatureText(BaseModel):
    """How one feature is named and phrased for people.

    template_en / template_fi carry a `{value}` placeholder ("{value} emergency visits in the
    last 90 days"); without a template the description and unit are shown instead.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    family: str = "other"
    family_en: str | None = None
    family_fi: str | None = None
    description_en: str | None = None
    description_fi: str | None = None
    unit: str | None = None
    unit_fi: str | None = None
    direction: Direction = "neutral"
    template_en: str | None = None
    template_fi: str | None = None
    never_en: str | None = None  # said instead of the template when the value is 0 ("No falls ...")
    never_fi: str | None = None
    decimals: int = 0


def fallback_text(name: str) -> FeatureText:
    """A feature the catalogue does not describe: show its name rather than nothing."""
    return FeatureText(name=name, family="other", description_en=name, description_fi=name)
