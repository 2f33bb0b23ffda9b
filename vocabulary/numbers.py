"""Numbers as each language writes them, for everything a person reads (pages, cards, sentences,
FHIR texts): Finnish "45 578", "25,4 %", "45 578 €", "−2,1"; English "45,578", "25.4%", "€45,578",
"−2.1". The thousands separator in Finnish is a no-break space, so a number never wraps; negative
numbers take the minus sign (U+2212) in both languages.
"""

from __future__ import annotations

import math

from vocabulary import Language

NBSP = "\u00a0"
MINUS = "\u2212"


def number(value: float, lang: Language, decimals: int = 0) -> str:
    """A number rounded to `decimals` places (whole numbers without decimals when decimals=0)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise ValueError("a missing value has no number: say what is missing instead")
    places = max(decimals, 0)
    text = f"{abs(float(value)):,.{places}f}"  # "45,578.5"
    if lang == "fi":
        text = text.replace(",", NBSP).replace(".", ",")
    negative = float(value) < 0 and round(abs(float(value)), places) != 0  # no "−0"
    return f"{MINUS}{text}" if negative else text


def natural(value: float, lang: Language, decimals: int = 1) -> str:
    """A whole number without decimals, anything else with `decimals` places (counts, days, scores)."""
    value = float(value)
    return number(value, lang, 0 if value.is_integer() else decimals)


def percent(probability: float, lang: Language, decimals: int = 1) -> str:
    """A probability (0..1) as a percentage: fi "25,4 %", en "25.4%"."""
    shown = number(float(probability) * 100, lang, decimals)
    return f"{shown}{NBSP}%" if lang == "fi" else f"{shown}%"


def euros(value: float, lang: Language) -> str:
    """Whole euros: fi "45 578 €", en "€45,578"."""
    shown = number(round(float(value)), lang, 0)
    if lang == "fi":
        return f"{shown}{NBSP}€"
    return f"{MINUS}€{shown[1:]}" if shown.startswith(MINUS) else f"€{shown}"
