"""The alert body: a CDS Hooks card (https://cds-hooks.hl7.org, Card) plus our extension.

One card per customer per index date: a customer whose scores alert in several problems (an
older person in the acute and depression cohorts, say) gets one card that names each problem's
outcome and population with its risk and main reasons, highest risk first, never several cards
with the same summary and different probabilities.

Card members used: uuid, summary (< 140 characters), indicator, detail (markdown), source
{label, topic}, suggestions + selectionBehavior, overrideReasons, links. Our own fields sit in
the card's `extension` object, as CDS Hooks asks for non-standard members: subject_pseudonym,
as_of, language and `risks` (per problem: problem, probability, band, model_version and its
FHIR RiskAssessment).

Every word a person reads is in the CRM's language (SOTE_RISK_CRM_LANGUAGE, fi or en): the
problem, population and band words come from the vocabulary, numbers are written the way the
language writes them (vocabulary/numbers.py: "25,4 %" / "25.4%"), the rest from WORDS below.

The uuid is the outbox card id (alerts/outbox.py card_id), so the card, the Idempotency-Key and
CRM feedback all name the same thing. No personal identity is in a card: the subject is the
pseudonym only.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alerts.outbox import as_of_key, card_id
from explain.chains import suggest_chains
from explain.reasons import Reason
from scoring.bands import band_rank
from scoring.champions import Gate
from vocabulary import Language, VocabularyError, vocabulary
from vocabulary.gates import gate_reasons
from vocabulary.numbers import natural, percent

TOPIC_SYSTEM = "https://eksote.fi/sote-risk/problem"
OVERRIDE_SYSTEM = "https://eksote.fi/sote-risk/override-reason"
SUMMARY_MAX = 139
MAX_REASONS = 5

INDICATOR_BY_BAND = {"low": "info", "moderate": "info", "high": "warning", "very_high": "critical"}

# Every fixed word on a card, in both languages (the problem words are the vocabulary's).
WORDS: dict[str, dict[Language, str]] = {
    "source": {"en": "Eksote risk estimates (sote-risk)", "fi": "Eksoten riskiarviot (sote-risk)"},
    "summary": {"en": "{band} risk of {outcome} ({percent})", "fi": "{band} riski: {outcome} ({percent})"},
    "more_1": {"en": "and 1 more risk", "fi": "ja 1 muu riski"},
    "more_n": {"en": "and {n} more risks", "fi": "ja {n} muuta riskiä"},
    "heading_1": {"en": "Risk", "fi": "Riski"},
    "heading_n": {"en": "Risks, highest first", "fi": "Riskit suurimmasta alkaen"},
    "risk": {"en": "Risk {percent} ({band}) · model version {version}",
             "fi": "Riski {percent} ({band}) · mallin versio {version}"},
    "reasons": {"en": "Main reasons:", "fi": "Tärkeimmät syyt:"},
    "no_reasons": {"en": "(no reasons available)", "fi": "(syitä ei saatavilla)"},
    "note_1": {"en": "A model estimate, not a diagnosis.", "fi": "Mallin arvio, ei diagnoosi."},
    "note_n": {"en": "Model estimates, not diagnoses: each risk is estimated by its own model for its own population.",
               "fi": "Mallien arvioita, ei diagnooseja: kunkin riskin on arvioinut oman kohderyhmänsä malli."},
    "link": {"en": "Why this customer was flagged", "fi": "Miksi asiakas nousi esiin"},
    "gate": {"en": "Caution: {label}", "fi": "Huomio: {label}"},
    "failed": {"en": "Checks it did not pass: {reasons}", "fi": "Tarkistukset, joita se ei läpäissyt: {reasons}"},

}

# Offered to the CRM so its feedback uses codes we can count (alerts report).
OVERRIDE_REASONS: tuple[tuple[str, dict[Language, str]], ...] = (
    ("already-known", {"en": "Situation already known to the team", "fi": "Tilanne on jo tiimin tiedossa"}),
    ("already-in-service", {"en": "Customer already has a suitable service", "fi": "Asiakkaalla on jo sopiva palvelu"}),
    ("not-relevant", {"en": "Not relevant to this customer", "fi": "Ei koske tätä asiakasta"}),
    ("customer-declined", {"en": "Customer declined", "fi": "Asiakas kieltäytyi"}),
    ("data-wrong", {"en": "The data behind the alert is wrong", "fi": "Hälytyksen taustalla olevat tiedot ovat virheellisiä"}),
)


@dataclass(frozen=True)
class ProblemRisk:
    """One problem's part of a card: its score, and the reasons scoring gave for it."""

    problem: str
    probability: float
    band: str
    model_version: str
    reasons: Sequence[Reason] = field(default_factory=tuple)  # explain/reasons.py, as scoring made them
    # Chain labels, or {"chain", "label_en", "label_fi"} (explain.chains.SuggestedChain dumps);
    # None: derived from the risk-raising reasons with explain/chains.py's table.
    suggestions: Sequence[str | Mapping[str, Any]] | None = None
    fhir: dict[str, Any] | None = None  # the problem's FHIR RiskAssessment (alerts/fhir.py)
    gate: Gate = Gate("passed")  # the model's promotion record: a card says when it is not "passed"


@dataclass(frozen=True)
class CardInput:
    """One customer at one index time, with every problem the card names (any order)."""

    subject_id: int
    as_of: datetime
    risks: Sequence[ProblemRisk]
    page_url: str | None = None  # the clinician page (signed, on the public URL: alerts/population.py Links)


def build_card(item: CardInput, *, language: Language | None = None) -> dict[str, Any]:
    """The webhook body of one customer's card (a JSON-ready dict), in `language` (default: the
    CRM's, SOTE_RISK_CRM_LANGUAGE)."""
    lang: Language = language or _crm_language()
    if lang not in ("fi", "en"):
        raise ValueError(f"card: language {lang!r} is not fi or en")
    risks = _ordered(item)
    card_uuid = card_id(item.subject_id, item.as_of)
    lead = risks[0]
    chains = _chains(risks, lang)
    card: dict[str, Any] = {
        "uuid": card_uuid,
        "summary": _summary(risks, lang),
        "indicator": INDICATOR_BY_BAND[max((r.band for r in risks), key=band_rank)],
        "detail": _detail(risks, lang),
        "source": {"label": WORDS["source"][lang],
                   "topic": {"system": TOPIC_SYSTEM, "code": lead.problem,
                             "display": vocabulary().problem_label(lead.problem, lang)}},
        "overrideReasons": [{"system": OVERRIDE_SYSTEM, "code": code, "display": display[lang]}
                            for code, display in OVERRIDE_REASONS],
        "links": [],
        "extension": {
            "subject_pseudonym": int(item.subject_id),
            "as_of": as_of_key(item.as_of),
            "language": lang,
            "risks": [{"problem": r.problem, "probability": round(float(r.probability), 4), "band": r.band,
                       "model_version": r.model_version, "gate": {"status": r.gate.status, "reasons": list(r.gate.reasons)},
                       "fhir_risk_assessment": r.fhir} for r in risks],
        },
    }
    if chains:
        card["suggestions"] = [
            {"label": label, "uuid": str(uuid.uuid5(uuid.UUID(card_uuid), code or label)), "isRecommended": i == 0}
            for i, (code, label) in enumerate(chains)
        ]
        card["selectionBehavior"] = "any"
    if item.page_url:
        card["links"].append({"label": WORDS["link"][lang], "url": item.page_url, "type": "absolute"})
    return card


def _crm_language() -> Language:
    from base.settings import settings

    return settings().crm_language


def _ordered(item: CardInput) -> list[ProblemRisk]:
    """The risks checked (known problem and band, probability in 0..1, each problem once, reasons
    of the one Reason type) and ordered highest first (ties: problem id)."""
    if not item.risks:
        raise ValueError(f"card for customer {item.subject_id}: names no problem")
    names = [r.problem for r in item.risks]
    if len(set(names)) != len(names):
        raise ValueError(f"card for customer {item.subject_id}: names a problem twice ({', '.join(names)})")
    checked = []
    for r in item.risks:
        try:
            vocabulary().problem(r.problem)  # unknown problems fail here, not in the CRM
        except VocabularyError as error:
            raise ValueError(f"card: {error}") from None
        band_rank(r.band)
        if not 0.0 <= float(r.probability) <= 1.0:
            raise ValueError(f"card: {r.problem}: probability {r.probability} is outside 0..1")
        reasons = tuple(x if isinstance(x, Reason) else Reason.model_validate(x) for x in r.reasons)  # refused naming the field
        checked.append(ProblemRisk(r.problem, float(r.probability), r.band, str(r.model_version), reasons,
                                   r.suggestions, r.fhir, r.gate))
    return sorted(checked, key=lambda r: (-r.probability, r.problem))


def _chains(risks: Sequence[ProblemRisk], lang: Language) -> list[tuple[str | None, str]]:
    """(code, label) of the chains the card suggests: each problem's, in the card's order, once.
    Derived ones come from explain/chains.py's suggest_chains, the same the clinician page
    shows, so the card and the page never disagree."""
    found: dict[str, tuple[str | None, str]] = {}
    for r in risks:
        if r.suggestions is None:
            given = [(c.chain, c.label_fi if lang == "fi" else c.label_en) for c in suggest_chains(list(r.reasons))]
        else:
            given = [_given(s, lang) for s in r.suggestions]
        for code, label in given:
            found.setdefault(code or label, (code, label))
    return list(found.values())


def _given(suggestion: str | Mapping[str, Any], language: Language) -> tuple[str | None, str]:
    if isinstance(suggestion, str):
        return None, suggestion
    label = suggestion.get(f"label_{language}")
    if not label:
        raise ValueError(f"card: suggestion {suggestion.get('chain')!r} has no label_{language}")
    return suggestion.get("chain"), str(label)


def _summary(risks: Sequence[ProblemRisk], lang: Language) -> str:
    lead = risks[0]
    text = WORDS["summary"][lang].format(band=vocabulary().band_label(lead.band, lang),
                                         outcome=vocabulary().outcome_text(lead.problem, lang),
                                         percent=percent(lead.probability, lang))
    more = len(risks) - 1
    if more:
        text += " " + (WORDS["more_1"][lang] if more == 1 else WORDS["more_n"][lang].format(n=natural(more, lang)))
    if any(r.gate.status != "passed" for r in risks):
        text = "⚠ " + text
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"


def _detail(risks: Sequence[ProblemRisk], lang: Language) -> str:
    heading = WORDS["heading_1" if len(risks) == 1 else "heading_n"][lang]
    lines = [f"**{heading}**"]
    for number, r in enumerate(risks, start=1):
        lines += ["", f"**{number}. {vocabulary().problem_label(r.problem, lang)}**",
                  WORDS["risk"][lang].format(percent=percent(r.probability, lang),
                                             band=vocabulary().band_label(r.band, lang).lower(), version=r.model_version),
                  f"_{vocabulary().meaning(r.problem, lang)}_"]  # what the figure means (a cumulative incidence)
        if r.gate.status != "passed":  # nothing that failed its checks looks like it passed
            lines += ["", "⚠ " + WORDS["gate"][lang].format(label=vocabulary().gate_label(r.gate.status, lang))]
            if r.gate.reasons:
                lines.append(WORDS["failed"][lang].format(reasons="; ".join(gate_reasons(r.gate.reasons, lang))))
        lines += ["", WORDS["reasons"][lang]]
        for reason in r.reasons[:MAX_REASONS]:
            text = reason.text_fi if lang == "fi" else reason.text_en
            lines.append(f"- {'↑' if reason.direction == 'up' else '↓'} {text}")
        if not r.reasons:
            lines.append(f"- {WORDS['no_reasons'][lang]}")
    lines += ["", f"_{WORDS['note_1' if len(risks) == 1 else 'note_n'][lang]}_"]
    return "\n".join(lines)
