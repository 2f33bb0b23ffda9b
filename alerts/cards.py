"""The alert body: a CDS Hooks card (https://cds-hooks.hl7.org, Card) plus our extension.

Card members used: uuid, summary (< 140 characters), indicator, detail (markdown), source
{label, url?, topic}, suggestions + selectionBehavior, overrideReasons, links. Our own fields
sit in the card's `extension` object, as CDS Hooks asks for non-standard members:
subject_pseudonym, problem, as_of, probability, band, model_version, fhir_risk_assessment.

The uuid is the outbox alert id, so the card, the Idempotency-Key and CRM feedback all name
the same thing. No personal identity is in a card: the subject is the pseudonym only.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from explain.chains import suggest_chains
from explain.reasons import Reason
from scoring.bands import band_rank
from alerts.outbox import alert_id_for, as_of_key
from vocabulary import vocabulary

SOURCE_LABEL = "sote-risk (Eksote)"
TOPIC_SYSTEM = "https://eksote.fi/sote-risk/problem"
OVERRIDE_SYSTEM = "https://eksote.fi/sote-risk/override-reason"
SUMMARY_MAX = 139
MAX_REASONS = 5

INDICATOR_BY_BAND = {"low": "info", "moderate": "info", "high": "warning", "very_high": "critical"}


# Offered to the CRM so its feedback uses codes we can count (alerts report).
OVERRIDE_REASONS = (
    ("already-known", "Situation already known to the team"),
    ("already-in-service", "Customer already has a suitable service"),
    ("not-relevant", "Not relevant to this customer"),
    ("customer-declined", "Customer declined"),
    ("data-wrong", "The data behind the alert is wrong"),
)


@dataclass(frozen=True)
class CardInput:
    subject_id: int
    problem: str
    as_of: datetime
    probability: float
    band: str
    model_version: str
    reasons: Sequence[Reason] = field(default_factory=tuple)  # explain/reasons.py, as scoring made them
    # Chain labels, or {"chain", "label_en", "label_fi"} (explain.chains.SuggestedChain dumps);
    # None: derived from the risk-raising reasons with explain/chains.py's table.
    suggestions: Sequence[str | Mapping[str, Any]] | None = None
    page_url: str | None = None
    fhir: dict[str, Any] | None = None  # a FHIR RiskAssessment built by the service


def build_card(item: CardInput, *, language: Literal["en", "fi"] = "en") -> dict[str, Any]:
    """The webhook body for one alert (a JSON-ready dict)."""
    band_rank(item.band)  # unknown bands fail here, not in the CRM
    if not 0.0 <= item.probability <= 1.0:
        raise ValueError(f"card: probability {item.probability} is outside 0..1")
    reasons = [r if isinstance(r, Reason) else Reason.model_validate(r) for r in item.reasons]  # refused naming the field
    card_id = alert_id_for(item.subject_id, item.problem, item.as_of)
    chains = _suggestions(reasons, language) if item.suggestions is None else [_given(s, language) for s in item.suggestions]

    card: dict[str, Any] = {
        "uuid": card_id,
        "summary": _summary(item, language),
        "indicator": INDICATOR_BY_BAND[item.band],
        "detail": _detail(item, reasons, language),
        "source": {"label": SOURCE_LABEL, "topic": {"system": TOPIC_SYSTEM, "code": item.problem,
                                                    "display": _outcome_text(item.problem, "en")}},
        "overrideReasons": [{"system": OVERRIDE_SYSTEM, "code": c, "display": d} for c, d in OVERRIDE_REASONS],
        "links": [],
        "extension": {
            "subject_pseudonym": int(item.subject_id),
            "problem": item.problem,
            "as_of": as_of_key(item.as_of),
            "probability": round(float(item.probability), 4),
            "band": item.band,
            "model_version": item.model_version,
            "fhir_risk_assessment": item.fhir,
        },
    }
    if chains:
        card["suggestions"] = [
            {"label": label, "uuid": str(uuid.uuid5(uuid.UUID(card_id), code or label)), "isRecommended": i == 0}
            for i, (code, label) in enumerate(chains)
        ]
        card["selectionBehavior"] = "any"
    if item.page_url:
        card["links"].append({"label": "Why this customer was flagged" if language == "en" else "Miksi asiakas nousi esiin",
                              "url": item.page_url, "type": "absolute"})
    return card


def _suggestions(reasons: Sequence[Reason], language: str) -> list[tuple[str | None, str]]:
    """(code, label) of the chains the reasons suggest: explain/chains.py's suggest_chains, the
    same the clinician page shows, so the card and the page never disagree."""
    return [(chain.chain, chain.label_fi if language == "fi" else chain.label_en) for chain in suggest_chains(list(reasons))]


def _given(suggestion: str | Mapping[str, Any], language: str) -> tuple[str | None, str]:
    if isinstance(suggestion, str):
        return None, suggestion
    label = suggestion.get(f"label_{language}") or suggestion.get("label_en") or suggestion.get("label")
    if not label:
        raise ValueError(f"card: suggestion {suggestion.get('chain')!r} has no label")
    return suggestion.get("chain"), str(label)


def _outcome_text(problem: str, language: str) -> str:
    """The outcome in words with its horizon, from the same texts the service and pages use."""
    return vocabulary().outcome_text(problem, language)


def _summary(item: CardInput, language: str) -> str:
    band = vocabulary().band_label(item.band, language)
    risk = "risk of" if language == "en" else "riski:"
    text = f"{band} {risk} {_outcome_text(item.problem, language)} ({item.probability:.0%})"
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"


def _detail(item: CardInput, reasons: Sequence[Reason], language: str) -> str:
    heading = "**Main reasons**" if language == "en" else "**Tärkeimmät syyt**"
    lines = [heading, ""]
    for r in reasons[:MAX_REASONS]:
        text = r.text_en if language == "en" else r.text_fi
        arrow = "↑" if r.direction == "up" else "↓"
        lines.append(f"- {arrow} {text}")
    if not reasons:
        lines.append("- (no reasons available)" if language == "en" else "- (syitä ei saatavilla)")
    note = ("Model estimate, not a diagnosis; model version " if language == "en"
            else "Mallin arvio, ei diagnoosi; mallin versio ")
    lines += ["", f"_{note}{item.model_version}._"]
    return "\n".join(lines)
