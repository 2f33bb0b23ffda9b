"""Clinician pages (HTML, Finnish or English): one per customer, one model card per problem.

Everything a page shows is computed by Scorer; this module only arranges it and renders the
Jinja templates in serving/templates/. Charts are inline SVG, so a page is one self-contained
file (it can be saved, printed or embedded in the CRM) and needs no JavaScript.

Links between pages (the language switch, the model cards) are relative to the page, and signed
with the expiry of the link the page was opened by when it was (`sign`; serving/page_links.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Literal

from markupsafe import Markup

from base.links import customer_page_path, model_card_path
from explain.chains import suggest_chains
from explain.plots import trend_svg, waterfall_svg
from explain.reasons import Explanation
from vocabulary import numbers, vocabulary
from vocabulary.gates import gate_reasons
from scoring.scorer import Scorer
from serving.page_links import relative_href

Language = Literal["fi", "en"]
Sign = Callable[[str], str]  # a page path (with its query) -> the same, signed

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Risk summary for customer", "other_language": "Suomeksi", "as_of": "Situation on",
        "decision_support": "Decision support: the professional's judgement decides.",
        "no_cohort": "The customer is in none of the groups that are scored on this date.",
        "reasons": "Main reasons", "raises": "raises the risk", "lowers": "lowers the risk",
        "chains": "Suggested service chains", "trend": "Risk over the past 12 months",
        "waterfall": "How the reasons add up", "model": "Model", "pipeline": "feature pipeline",
        "model_card": "Model card", "problem": "Problem", "horizon": "Horizon (days)",
        "bands": "Risk bands (lower edges)", "intended_use": "Intended use", "metrics": "Test metrics",
        "importance": "What the model relies on", "feature": "Feature", "description": "Description",
        "importance_note": "Mean absolute SHAP value over {n} scored customers (log-odds).",
        "gap_outside": "not scored: outside this group at the time",
        "gap_not_eligible": "not scored: in hospital, or the outcome had already happened",
        "meaning": "What the figure means", "gate": "Model check", "failed_gates": "Checks it did not pass",
        "context": "Background", "context_note": "Who the customer is and what their services cost: it moves the figure, but is not a reason to act on.",
    },
    "fi": {
        "title": "Riskiyhteenveto asiakkaalle", "other_language": "In English", "as_of": "Tilanne",
        "decision_support": "Päätöksenteon tuki: ammattilaisen harkinta ratkaisee.",
        "no_cohort": "Asiakas ei kuulu tänä päivänä mihinkään arvioitavaan ryhmään.",
        "reasons": "Tärkeimmät syyt", "raises": "nostaa riskiä", "lowers": "laskee riskiä",
        "chains": "Ehdotetut palveluketjut", "trend": "Riski viimeisen 12 kuukauden aikana",
        "waterfall": "Miten syyt muodostavat riskin", "model": "Malli", "pipeline": "piirreputki",
        "model_card": "Mallikortti", "problem": "Ennusteongelma", "horizon": "Aikaikkuna (päivää)",
        "bands": "Riskiluokat (alarajat)", "intended_use": "Käyttötarkoitus", "metrics": "Testitulokset",
        "importance": "Mihin malli nojaa", "feature": "Piirre", "description": "Kuvaus",
        "importance_note": "Keskimääräinen itseisarvoinen SHAP-arvo {n} pisteytetyllä asiakkaalla (log-odds).",
        "gap_outside": "ei arvioitu: ei kuulunut tähän ryhmään silloin",
        "gap_not_eligible": "ei arvioitu: sairaalassa, tai tapahtuma oli jo sattunut",
        "meaning": "Mitä luku tarkoittaa", "gate": "Mallin tarkistus", "failed_gates": "Tarkistukset, joita se ei läpäissyt",
        "context": "Taustatiedot", "context_note": "Kuka asiakas on ja mitä hänen palvelunsa maksavat: ne vaikuttavat lukuun, mutta eivät ole toimenpiteen syitä.",
    },
}


@lru_cache(maxsize=1)
def environment():  # noqa: ANN201 (jinja2 type)
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("serving", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True, lstrip_blocks=True,
    )


def percent(probability: float, lang: Language) -> str:
    return numbers.percent(probability, lang)


def linker(page: str, sign: Sign | None) -> Callable[[str], str]:
    """Targets (absolute page paths) -> hrefs relative to `page`, signed when `sign` is given."""
    return lambda target: relative_href(sign(target) if sign else target, page)


def customer_page(scorer: Scorer, subject_id: int, as_of: dt.date | None, lang: Language, top_k: int = 5,
                  sign: Sign | None = None) -> tuple[str, list[Any]]:
    """The page's HTML and the risks shown on it (for the audit log). `sign`: the page was opened by
    a signed link, and its links are signed the same way."""
    href = linker(customer_page_path(subject_id, as_of, lang), sign)
    time = scorer.backend.history.resolve_time(as_of)
    trends = scorer.trend(subject_id, time)  # one pass over the timeline; it leaves `time`'s rows in the cache
    score = scorer.score_customer(subject_id, as_of, 0)
    sections = []
    for risk in score.risks:
        champion = scorer.champion(risk.problem)
        explained = scorer.explain(subject_id, risk.problem, as_of)
        explanation = Explanation(
            base_value=explained.base_value, raw_score=explained.raw_score,
            contributions=explained.contributions, reasons=explained.reasons, context=explained.context,
        )
        bands = champion.bands
        points = [(f"{day:%m/%y}", value, why) for day, value, why in trends.get(risk.problem, [])]
        gaps = {"outside": TEXT[lang]["gap_outside"], "not_eligible": TEXT[lang]["gap_not_eligible"]}
        label = vocabulary().problem_label(champion.problem, lang)
        sections.append({
            "problem": risk.problem, "label": label, "percent": percent(risk.probability, lang),
            "band": risk.band, "band_label": vocabulary().band_label(risk.band, lang),
            "reasons": [
                {"direction": r.direction, "label": r.label_fi if lang == "fi" else r.label_en,
                 "text": r.text_fi if lang == "fi" else r.text_en}
                for r in explained.reasons[:top_k]
            ],
            "context": [
                {"family": r.family, "label": r.label_fi if lang == "fi" else r.label_en, "text": r.text_fi if lang == "fi" else r.text_en}
                for r in explained.context
            ],
            "chains": [
                {"chain": c.chain, "label": c.label_fi if lang == "fi" else c.label_en, "why": c.why_fi if lang == "fi" else c.why_en}
                for c in suggest_chains(explained.reasons[:top_k])
            ],
            "trend_svg": Markup(trend_svg(points, (bands.moderate, bands.high, bands.very_high), label, gaps, lang)),
            "waterfall_svg": Markup(waterfall_svg(explanation, champion.model.calibrator.transform, risk.probability, lang)),
            "meaning": vocabulary().meaning(risk.problem, lang),
            "gate": risk.gate.status, "gate_label": vocabulary().gate_label(risk.gate.status, lang),
            "gate_reasons": gate_reasons(risk.gate.reasons, lang),
            "model_version": risk.model_version, "pipeline_version": risk.pipeline_version,
            "model_card_url": href(model_card_path(risk.problem, lang)),
        })
    html = environment().get_template("customer.html.j2").render(
        lang=lang, other_lang="en" if lang == "fi" else "fi", t=TEXT[lang], customer_id=subject_id,
        other_language_url=href(customer_page_path(subject_id, as_of, "en" if lang == "fi" else "fi")),
        as_of=time.date().isoformat(), risks=sections, note=score.note,
    )
    return html, score.risks
