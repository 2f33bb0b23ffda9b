"""Clinician pages (HTML, Finnish or English): one per customer, one model card per problem.

Everything a page shows is computed by Scorer; this module only arranges it and renders the
Jinja templates in serving/templates/. Charts are inline SVG, so a page is one self-contained
file (it can be saved, printed or embedded in the CRM) and needs no JavaScript.

Links between pages (the language switch, the model cards) are relative to the page, and signed
with the expiry of the link the page was opened by when it was (`sign`; serving/page_links.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, Literal

import pandas as pd
from markupsafe import Markup

from base.links import customer_page_path, model_card_path
from explain.chains import suggest_chains
from explain.plots import trend_svg, waterfall_svg
from explain.reasons import Explanation
from explain.timeline import RUNNING_WORDS, customer_timeline
from explain.timeline_svg import AlertMark, RiskLane, day_text, timeline_svg
from vocabulary import numbers, vocabulary
from vocabulary.gates import gate_reasons
from scoring.errors import OutsideData
from scoring.scorer import Scorer
from serving.page_links import relative_href
from serving.whatif_section import WORDS as WHATIF_WORDS
from serving.whatif_section import section as whatif_words

Language = Literal["fi", "en"]
Sign = Callable[[str], str]  # a page path (with its query) -> the same, signed
ReadAlerts = Callable[[pd.Timestamp, pd.Timestamp], list[dict[str, Any]]]  # a span -> the customer's cards in it

DEFAULT_MONTHS = 24  # the view's span when none is asked for (shortened to the data's start)
MAX_MONTHS = 60  # the longest span a page draws: five years, the simulator's default extract

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Risk summary for customer", "other_language": "Suomeksi", "as_of": "Situation on",
        "decision_support": "Decision support: the professional's judgement decides.",
        "no_cohort": "The customer is in none of the groups that are scored on this date.",
        "reasons": "Main reasons", "raises": "raises the risk", "lowers": "lowers the risk",
        "chains": "Suggested service chains", "trend": "Risk over the past {months}",
        "waterfall": "How the reasons add up", "model": "Model", "pipeline": "feature pipeline",
        "model_card": "Model card", "problem": "Problem", "horizon": "Horizon (days)",
        "bands": "Risk bands (lower edges)", "intended_use": "Intended use", "metrics": "Test metrics",
        "importance": "What the model relies on", "feature": "Feature", "description": "Description",
        "importance_note": "Mean absolute SHAP value over {n} scored customers (log-odds).",
        "gap_outside": "not scored: outside this group at the time",
        "gap_not_eligible": "not scored: in hospital, or the outcome had already happened",
        "meaning": "What the figure means", "gate": "Model check", "failed_gates": "Checks it did not pass",
        "context": "Background", "context_note": "Who the customer is and what their services cost: it moves the figure, but is not a reason to act on.",
        "span": "Span", "month": "month", "months": "months", "timeline": "History, alerts and risk over the span",
        "timeline_note": "One row per service; a mark's date and details show when the pointer rests on it. Risk rows: the score at the first of each month, the dashed lines are the band edges.",
        "running": "Services and interventions running now", "none_running": "No service or intervention is running.",
        "since": "since", "since_data": "since at least {day} (running when the data begin)", "supply_until": "supply lasts until",
        "risks_now": "Risks now", "risk": "Risk", "band": "Band", "alerts": "Alerts and CRM feedback",
        "no_alerts": "No alerts for this customer in the span.", "alert_date": "Situation on", "alert_problems": "Problems",
        "delivery": "Delivery", "feedback": "CRM feedback", "accepted": "accepted", "overridden": "overridden",
        "no_feedback": "no feedback yet",
        "status": {"queued": "waiting for capacity", "pending": "being delivered", "delivered": "delivered", "dead": "not delivered",
                   "superseded": "replaced by a newer score", "expired": "expired in the queue"},
    },
    "fi": {
        "title": "Riskiyhteenveto asiakkaalle", "other_language": "In English", "as_of": "Tilanne",
        "decision_support": "Päätöksenteon tuki: ammattilaisen harkinta ratkaisee.",
        "no_cohort": "Asiakas ei kuulu tänä päivänä mihinkään arvioitavaan ryhmään.",
        "reasons": "Tärkeimmät syyt", "raises": "nostaa riskiä", "lowers": "laskee riskiä",
        "chains": "Ehdotetut palveluketjut", "trend": "Riski viimeisen {months} aikana",
        "waterfall": "Miten syyt muodostavat riskin", "model": "Malli", "pipeline": "piirreputki",
        "model_card": "Mallikortti", "problem": "Ennusteongelma", "horizon": "Aikaikkuna (päivää)",
        "bands": "Riskiluokat (alarajat)", "intended_use": "Käyttötarkoitus", "metrics": "Testitulokset",
        "importance": "Mihin malli nojaa", "feature": "Piirre", "description": "Kuvaus",
        "importance_note": "Keskimääräinen itseisarvoinen SHAP-arvo {n} pisteytetyllä asiakkaalla (log-odds).",
        "gap_outside": "ei arvioitu: ei kuulunut tähän ryhmään silloin",
        "gap_not_eligible": "ei arvioitu: sairaalassa, tai tapahtuma oli jo sattunut",
        "meaning": "Mitä luku tarkoittaa", "gate": "Mallin tarkistus", "failed_gates": "Tarkistukset, joita se ei läpäissyt",
        "context": "Taustatiedot", "context_note": "Kuka asiakas on ja mitä hänen palvelunsa maksavat: ne vaikuttavat lukuun, mutta eivät ole toimenpiteen syitä.",
        "span": "Aikajakso", "month": "kuukausi", "months": "kuukautta", "timeline": "Palvelut, hälytykset ja riski aikajaksolla",
        "timeline_note": "Jokainen palvelu omalla rivillään; merkin päivä ja tiedot näkyvät, kun osoitin on sen päällä. Riskirivit: arvio kunkin kuun ensimmäisenä päivänä, katkoviivat ovat riskiluokkien rajat.",
        "running": "Nyt käynnissä olevat palvelut ja interventiot", "none_running": "Mikään palvelu tai interventio ei ole käynnissä.",
        "since": "alkaen", "since_data": "viimeistään {day} alkaen (käynnissä jo aineiston alkaessa)", "supply_until": "riittää",
        "risks_now": "Riskit nyt", "risk": "Riski", "band": "Riskiluokka", "alerts": "Hälytykset ja asiakkuudenhallinnan palaute",
        "no_alerts": "Asiakkaasta ei ole hälytyksiä aikajaksolla.", "alert_date": "Tilanne", "alert_problems": "Ennusteongelmat",
        "delivery": "Toimitus", "feedback": "Palaute", "accepted": "hyväksytty", "overridden": "ohitettu",
        "no_feedback": "ei palautetta vielä",
        "status": {"queued": "odottaa kapasiteettia", "pending": "toimitetaan", "delivered": "toimitettu", "dead": "ei toimitettu",
                   "superseded": "korvattu uudemmalla arviolla", "expired": "vanheni jonossa"},
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


def view_span(scorer: Scorer, as_of: dt.date | None, months: int | None) -> tuple[pd.Timestamp, pd.Timestamp, int]:
    """(time, span start, months) of a customer view: the span is the `months` months before the
    view's time (as_of, default the end of the data). Without `months`: DEFAULT_MONTHS, or fewer
    where the data begin later. A date outside the data is refused naming as_of; a span that
    reaches before the data's start, or longer than MAX_MONTHS, naming months."""
    store = scorer.backend.history
    time = store.resolve_time(as_of)  # OutsideData naming as_of: a date in the future or before the data
    first = store.start.normalize()
    if months is None:
        months = DEFAULT_MONTHS
        while months > 1 and time - pd.DateOffset(months=months) < first:
            months -= 1
    if not 1 <= months <= MAX_MONTHS:
        raise OutsideData(f"months must be between 1 and {MAX_MONTHS}, not {months}", field="months")
    start = time - pd.DateOffset(months=months)
    if start < first:
        most = 0
        while most < MAX_MONTHS and time - pd.DateOffset(months=most + 1) >= first:
            most += 1
        raise OutsideData(f"months {months}: the span would begin on {start.date()}, before the data ({first.date()} .. "
                          f"{day_ceiling_date(store)}); at most {most} months reach back from {time.date()}", field="months")
    return time, start, months


SPAN_CHOICES = (6, 12, 24, 36, 60)  # the spans a page offers to switch to (months)


def span_choices(scorer: Scorer, time: pd.Timestamp, current: int) -> list[int]:
    """The spans the page links to: SPAN_CHOICES that reach no earlier than the data's start, and
    the current one (so the page always marks where the reader is)."""
    first = scorer.backend.history.start.normalize()
    fits = [m for m in SPAN_CHOICES if time - pd.DateOffset(months=m) >= first]
    return sorted(set(fits) | {current})


def day_ceiling_date(store) -> dt.date:  # noqa: ANN001 (scoring.history.HistoryStore)
    from scoring.history import day_ceiling

    return day_ceiling(store.end).date()


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def months_text(months: int, lang: Language) -> str:
    if lang == "fi":
        return "kuukauden" if months == 1 else f"{months} kuukauden"
    return "month" if months == 1 else f"{months} months"


def _running(timeline, lang: Language, t: dict[str, Any]) -> list[dict[str, str]]:  # noqa: ANN001 (explain.timeline.Timeline)
    from explain.timeline_svg import _descriptions

    words, names, out = RUNNING_WORDS[lang], _descriptions()[lang], []
    for item in timeline.running:
        if item.until is not None:
            out.append({"code": item.code, "label": names.get(item.code, item.code),
                        "since": f"{day_text(item.since, lang)}; {t['supply_until']} {day_text(item.until, lang)}"})
        elif item.since_data_start:
            out.append({"code": item.code, "label": words.get(item.code, item.code),
                        "since": t["since_data"].format(day=day_text(item.since, lang))})
        else:
            out.append({"code": item.code, "label": words.get(item.code, item.code), "since": f"{t['since']} {day_text(item.since, lang)}"})
    return out


def _alert_rows(found: list[dict[str, Any]], lang: Language, t: dict[str, Any]) -> tuple[list[dict[str, Any]], list[AlertMark]]:
    from datetime import datetime

    rows, marks = [], []
    for alert in found:
        day = pd.Timestamp(alert["as_of"])
        problems = "; ".join(f"{vocabulary().problem_label(p['problem'], lang)} {percent(p['probability'], lang)}"
                             for p in alert["problems"])
        verdicts = sorted(alert["feedback"], key=lambda f: datetime.fromisoformat(f["outcome_timestamp"]))
        last = verdicts[-1] if verdicts else None
        outcome = last["outcome"] if last else None
        said = t[outcome] if outcome else t["no_feedback"]
        if last is not None and last.get("override_display"):
            said += f": {last['override_display']}"
        if last is not None:
            said += f" ({day_text(pd.Timestamp(datetime.fromisoformat(last['outcome_timestamp'])).tz_localize(None), lang)})"
        status = t["status"].get(alert["status"], alert["status"])
        rows.append({"id": alert["alert_id"], "day": day_text(day, lang), "problems": problems, "status": alert["status"],
                     "status_label": status, "outcome": outcome or "none", "feedback": said})
        marks.append(AlertMark(day, outcome, f"{day_text(day, lang)}: {problems} ({status})"))
    return rows, marks


def _whatifs(scorer: Scorer, subject_id: int, time: pd.Timestamp, risks: list[Any],
             estimates: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    """Per problem shown, the what-if of each intervention (serving/whatif_section.py)."""
    if estimates is None:
        return {}
    from serving.whatif_section import Risk, whatifs

    shown = []
    for risk in risks:
        problem = vocabulary().problem(risk.problem)
        shown.append(Risk(risk.problem, risk.probability, vocabulary().outcome(problem.outcome).code, problem.horizon_days))
    return whatifs(estimates, scorer.backend.history.history, subject_id, time, shown)


def customer_page(scorer: Scorer, subject_id: int, as_of: dt.date | None, lang: Language, top_k: int = 5,
                  sign: Sign | None = None, months: int | None = None,
                  read_alerts: ReadAlerts | None = None,
                  whatif: Mapping[str, Any] | None = None) -> tuple[str, list[Any]]:
    """The page's HTML and the risks shown on it (for the audit log). `sign`: the page was opened by
    a signed link, and its links are signed the same way. `months`: the span of the timeline and
    the risk trends (view_span); `read_alerts`: the customer's cards in a span (the outbox);
    `whatif`: the stored intervention estimates (training.whatif; None: no what-if block at all)."""
    time, start, span_months = view_span(scorer, as_of, months)
    href = linker(customer_page_path(subject_id, as_of, lang, months), sign)
    trends = scorer.trend(subject_id, time, span_months + 1, since=start)  # one pass; `time`'s rows stay cached
    score = scorer.score_customer(subject_id, as_of, 0)
    t = TEXT[lang]
    sections = []
    risk_lanes = []
    for problem, champion in scorer.champions.items():
        series = trends.get(problem, [])
        if any(p is not None for _, p, _ in series):
            bands = champion.bands
            words = vocabulary()
            risk_lanes.append(RiskLane(problem, _capital(words.outcome_text(champion.problem, lang)),
                                       words.segment(champion.segment).name(lang),
                                       [(pd.Timestamp(day), p, why) for day, p, why in series],
                                       (bands.moderate, bands.high, bands.very_high),
                                       {"outside": t["gap_outside"], "not_eligible": t["gap_not_eligible"]}))
    found_whatifs = _whatifs(scorer, subject_id, time, score.risks, whatif)
    for risk in score.risks:
        champion = scorer.champion(risk.problem)
        explained = scorer.explain(subject_id, risk.problem, as_of)
        explanation = Explanation(
            base_value=explained.base_value, raw_score=explained.raw_score,
            contributions=explained.contributions, reasons=explained.reasons, context=explained.context,
        )
        bands = champion.bands
        points = [(f"{day:%m/%y}", value, why) for day, value, why in trends.get(risk.problem, [])]
        gaps = {"outside": t["gap_outside"], "not_eligible": t["gap_not_eligible"]}
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
            "whatif": whatif_words(found_whatifs[risk.problem], lang) if risk.problem in found_whatifs else None,
        })
    store = scorer.backend.history
    timeline = customer_timeline(store.history, subject_id, start, time, store.start)
    alert_rows, alert_marks = _alert_rows(read_alerts(start, time) if read_alerts is not None else [], lang, t)
    html = environment().get_template("customer.html.j2").render(
        lang=lang, other_lang="en" if lang == "fi" else "fi", t=t, customer_id=subject_id,
        other_language_url=href(customer_page_path(subject_id, as_of, "en" if lang == "fi" else "fi", months)),
        as_of=time.date().isoformat(), risks=sections, note=score.note, months=span_months,
        trend_caption=t["trend"].format(months=months_text(span_months, lang)),
        span=f"{day_text(start, lang)} – {day_text(time, lang)}",
        timeline_svg=Markup(timeline_svg(timeline, risk_lanes, alert_marks, lang)),
        lanes=list(timeline.lanes), running=_running(timeline, lang, t), alerts=alert_rows,
        whatif_words=WHATIF_WORDS[lang],
        spans=[{"months": m, "current": m == span_months, "label": f"{m} {t['month'] if m == 1 else t['months']}",
                "url": href(customer_page_path(subject_id, as_of, lang, m))}
               for m in span_choices(scorer, time, span_months)],
    )
    return html, score.risks
