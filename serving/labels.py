"""Words for problems and bands, in Finnish and English (responses, pages, FHIR)."""

from __future__ import annotations

SEGMENT_TEXT = {
    "elderly": {"en": "older people and home care", "fi": "ikääntyneet ja kotihoito"},
    "children": {"en": "children and young people", "fi": "lapset ja nuoret"},
    "acute": {"en": "recent acute care", "fi": "äskettäin päivystyksessä hoidetut"},
    "depression": {"en": "depression care", "fi": "masennuksen hoito"},
}
OUTCOME_TEXT = {
    "hospitalisation": {"en": "Unplanned hospitalisation within {days} days",
                        "fi": "Suunnittelematon sairaalahoito {days} päivän sisällä"},
    "homecare_failure": {"en": "Moving to 24-hour care within {days} days",
                         "fi": "Siirtyminen ympärivuorokautiseen hoitoon {days} päivän sisällä"},
}
BAND_TEXT = {
    "low": {"en": "Low", "fi": "Matala"},
    "moderate": {"en": "Moderate", "fi": "Kohtalainen"},
    "high": {"en": "High", "fi": "Korkea"},
    "very_high": {"en": "Very high", "fi": "Erittäin korkea"},
}


def problem_label(segment: str, outcome: str, horizon_days: int, lang: str) -> str:
    template = OUTCOME_TEXT.get(outcome, {}).get(lang, outcome.replace("_", " ") + " ({days} d)")
    group = SEGMENT_TEXT.get(segment, {}).get(lang, segment)
    return f"{template.format(days=horizon_days)} ({group})"


def band_label(band: str, lang: str) -> str:
    return BAND_TEXT.get(band, {}).get(lang, band)
