"""The monitoring page of one problem (admin role; Finnish or English): the latest `sote-risk
monitor` run of the problem's model under an alias, as plots over the index months and a table.

What it shows is the run's record in the home (training/monitor_run.py `write_latest`,
<home>/monitoring/<problem>/<alias>.json, or one region's, <home>/monitoring/<problem>/region=<name>/
<alias>.json, when a multi-region features folder was monitored region by region: the page then
names its region and links every region's, marking those with a breach); this module only
arranges and words it and renders serving/templates/monitoring.html.j2. The page names no
customer (monthly counts and figures), so its reads are not audited per customer; the guard asks
for an admin key.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlencode

from markupsafe import Markup

from features.catalogue import feature_info
from serving.pages import environment
from training.monitor_plots import Chart, Line, Series, line_chart, month_label
from training.spec import Monitoring
from vocabulary import numbers, problem_ids, vocabulary

Language = Literal["fi", "en"]

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Model monitoring", "other_language": "Suomeksi",
        "summary": ("Version {version} ({alias}), monitored on {as_of}: {months} index months from {first} to {last}, "
                    "{complete} of them with complete outcomes."),
        "breached": "Thresholds breached:", "no_breach": "No threshold breached in the months shown.",
        "notice": "Gradual drift, not a breach ({month}): {features}.",
        "other_step": ("A step in features the model hardly uses, not a breach (from {month}): {features}. "
                       "A change in how something is recorded shows like this."),
        "drift": "Drift against the training data",
        "drift_note": ("Population stability index (PSI) of the score and of the most drifted of the model's ten most "
                       "important features, against the training period and against the feature's own previous months. "
                       "Red dots: months with a breach."),
        "feature": "Feature (ten most important)", "psi_reference": "PSI against training",
        "psi_recent": "PSI against the previous months",
        "performance": "Performance", "auroc_note": ("AUROC by index month: realised where the outcomes are complete (with "
                                                     "its 95% interval), before that estimated from the scores alone."),
        "oe_note": "Observed / expected outcomes (1 = calibrated) with its 95% interval; the dotted lines are the band.",
        "slope_note": "Calibration slope (1 = the risks spread as far as the outcomes) with its 95% interval.",
        "alerts": "Alerts", "alerts_note": "Share of the month's scored customers at or above the alert threshold.",
        "feedback": "CRM feedback on the alerts",
        "feedback_note": ("Alert cards sent to the CRM at the month's index dates and the coordinators' latest verdict on "
                          "each; the shares are of the cards with a verdict."),
        "feedback_unknown": ("CRM feedback is not known for this run: it read no outbox (no alert card had been raised "
                             "on this home)."),
        "feedback_none": "No CRM feedback yet on the cards of the months shown.",
        "cards_sent": "Cards sent", "with_feedback": "With feedback", "accepted": "Accepted", "overridden": "Overridden",
        "no_cards": "no cards sent", "no_feedback": "no feedback",
        "months": "Months", "month": "Month", "rows": "Scored", "alert_rate": "Alert rate", "score_psi": "Score PSI",
        "auroc": "AUROC", "oe": "Observed / expected", "slope": "Calibration slope", "est": "est.",
        "series_score": "score", "series_feature": "most drifted feature", "series_recent": "same, against the previous months",
        "series_realised": "realised", "series_estimated": "estimated", "series_alerts": "alert rate",
        "threshold": "threshold", "band": "band",
        "kind_score": "the score's distribution moved (PSI {value})",
        "kind_feature": "a step in {features}", "kind_oe": "calibration: observed / expected {value} outside {low}–{high}",
        "kind_slope": "calibration: slope {value} outside {low}–{high}",
        "kind_oe_sustained": "calibration: observed / expected {value}, its interval on the same side of 1 for {months} complete months in a row",
        "kind_code": ("a step in recording: {what} recorded {events} times in {month} against {low}–{high} a month "
                      "before; read by {features}"),
        "kind_oe_after_step": ("calibration: observed / expected {value}, its interval wholly {side} 1 since the step "
                               "in recording ({month})"),
        "above": "above", "below": "below",
        "code_notice": ("A step in recording, not a breach ({month}): {what}, read only by features the model hardly "
                        "uses."),
        "region": "Region {region}.", "regions": "Regions:", "region_breached": "breach",
        "definitions": ("Drift compares a month's customers with the training period, bin by bin; 0.1 is usually read as a "
                        "moderate and 0.2 as a major shift. A feature's drift breaches only when it came as a step against "
                        "its previous months; a slow change over years is shown as a notice. Calibration is judged only "
                        "when the whole interval lies outside its band. The score is the chance of the outcome within the "
                        "horizon, before death."),
    },
    "fi": {
        "title": "Mallin seuranta", "other_language": "In English",
        "summary": ("Versio {version} ({alias}), seurattu {as_of}: {months} indeksikuukautta {first}–{last}, "
                    "joista {complete} kuukauden tulemat ovat jo täydet."),
        "breached": "Raja-arvot ylittyivät:", "no_breach": "Raja-arvot eivät ylittyneet näytetyillä kuukausilla.",
        "notice": "Hidas muutos, ei ylitys ({month}): {features}.",
        "other_step": ("Äkillinen muutos muuttujissa, joita malli tuskin käyttää, ei ylitys ({month} alkaen): {features}. "
                       "Näin näkyy esimerkiksi muutos siinä, miten jokin kirjataan."),
        "drift": "Muutos opetusaineistoon verrattuna",
        "drift_note": ("Riskipistemäärän ja mallin kymmenestä tärkeimmästä muuttujasta eniten muuttuneen jakauman "
                       "vakausindeksi (PSI) opetusjaksoon ja muuttujan omiin edellisiin kuukausiin verrattuna. "
                       "Punaiset pisteet: kuukaudet, joilla raja ylittyi."),
        "feature": "Muuttuja (kymmenen tärkeintä)", "psi_reference": "PSI opetusjaksoon",
        "psi_recent": "PSI edellisiin kuukausiin",
        "performance": "Suorituskyky", "auroc_note": ("AUROC indeksikuukausittain: toteutunut, kun tulemat ovat täydet "
                                                     "(95 %:n luottamusväli), sitä ennen arvioitu pelkistä pistemääristä."),
        "oe_note": "Havaitut / odotetut tulemat (1 = kalibroitu) ja 95 %:n luottamusväli; pisteviivat ovat sallittu alue.",
        "slope_note": "Kalibraation kulmakerroin (1 = riskit hajoavat yhtä paljon kuin tulemat) ja 95 %:n luottamusväli.",
        "alerts": "Hälytykset", "alerts_note": "Kuukauden pisteytetyistä asiakkaista hälytysrajan ylittäneiden osuus.",
        "feedback": "Koordinaattorien palaute hälytyksistä",
        "feedback_note": ("Kuukauden indeksipäivinä lähetetyt hälytyskortit ja koordinaattorin viimeisin arvio kustakin; "
                          "osuudet on laskettu korteista, joista on palaute."),
        "feedback_unknown": ("Palautetta ei tiedetä tälle ajolle: lähtevien hälytysten kantaa ei luettu (tässä "
                             "kotihakemistossa ei ollut tehty yhtään hälytyskorttia)."),
        "feedback_none": "Näytettyjen kuukausien korteista ei ole vielä palautetta.",
        "cards_sent": "Lähetetyt kortit", "with_feedback": "Palaute saatu", "accepted": "Hyväksytty",
        "overridden": "Ohitettu", "no_cards": "ei lähetettyjä kortteja", "no_feedback": "ei palautetta",
        "months": "Kuukaudet", "month": "Kuukausi", "rows": "Pisteytetty", "alert_rate": "Hälytysosuus",
        "score_psi": "Pistemäärän PSI", "auroc": "AUROC", "oe": "Havaitut / odotetut", "slope": "Kulmakerroin",
        "est": "arvio", "series_score": "riskipistemäärä", "series_feature": "eniten muuttunut muuttuja",
        "series_recent": "sama edellisiin kuukausiin", "series_realised": "toteutunut", "series_estimated": "arvioitu",
        "series_alerts": "hälytysosuus", "threshold": "raja", "band": "sallittu alue",
        "kind_score": "pistemäärän jakauma muuttui (PSI {value})",
        "kind_feature": "äkillinen muutos: {features}",
        "kind_oe": "kalibraatio: havaitut / odotetut {value}, sallittu {low}–{high}",
        "kind_slope": "kalibraatio: kulmakerroin {value}, sallittu {low}–{high}",
        "kind_oe_sustained": "kalibraatio: havaitut / odotetut {value}, luottamusväli samalla puolella ykköstä {months} täyttä kuukautta peräkkäin",
        "kind_code": ("äkillinen muutos kirjaamisessa: {what}, {events} kirjausta ({month}), aiemmin {low}–{high} "
                      "kuukaudessa; sitä lukevat {features}"),
        "kind_oe_after_step": ("kalibraatio: havaitut / odotetut {value}, luottamusväli kokonaan {side} ykkösen "
                               "kirjaamisen muutoksesta ({month}) lähtien"),
        "above": "yli", "below": "alle",
        "code_notice": ("Äkillinen muutos kirjaamisessa, ei ylitys ({month}): {what}; sitä lukevat vain muuttujat, "
                        "joita malli tuskin käyttää."),
        "region": "Alue {region}.", "regions": "Alueet:", "region_breached": "ylitys",
        "definitions": ("Muutos vertaa kuukauden asiakkaita opetusjaksoon luokka luokalta; arvoa 0,1 pidetään yleensä "
                        "kohtalaisena ja 0,2 suurena muutoksena. Muuttujan muutos ylittää rajan vain, kun se tuli "
                        "äkillisesti edellisiin kuukausiin verrattuna; vuosien hidas muutos näytetään huomautuksena. "
                        "Kalibraatiota arvioidaan vain, kun koko luottamusväli on sallitun alueen ulkopuolella. "
                        "Pistemäärä on tuleman todennäköisyys ennustejakson aikana ennen kuolemaa."),
    },
}


def page_path(problem: str, lang: str, alias: str = "champion", region: str = "") -> str:
    query = {"lang": lang, **({"alias": alias} if alias != "champion" else {}), **({"region": region} if region else {})}
    return f"{problem}?{urlencode(query)}"


def has_breach(record: dict[str, Any]) -> bool:
    return any(m.get("breaches") for m in record.get("months", []))


def shown_record(single: dict[str, Any] | None, regions: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The record a page without `region` shows: the home's one region's, unless a region-by-region
    run is as new or newer; then the region with the newest breached month (a breach in any region
    is the problem's; the first by name among equals), else the first region by name."""
    if not regions:
        return single
    newest = max(r["as_of"] for r in regions.values())
    if single is not None and single["as_of"] > newest:
        return single

    def last_breach(record: dict[str, Any]) -> str:
        return max((m["month"] for m in record["months"] if m.get("breaches")), default="")

    newest_breach = max(last_breach(r) for r in regions.values())
    return next(r for _, r in sorted(regions.items()) if last_breach(r) == newest_breach)


def _feature_label(name: str, lang: Language) -> str:
    try:
        info = feature_info(name)
    except KeyError:
        return name
    return info.description_fi if lang == "fi" else info.description_en


def _num(value: float | None, lang: Language, decimals: int = 2) -> str:
    """A figure; three decimals only below 1 (1,000 reads as a thousand in English, 3,315 as
    English grouping in Finnish)."""
    if value is None:
        return "–"
    return numbers.number(value, lang, min(decimals, 2) if abs(value) >= 1 else decimals)


def _interval(value: float | None, low: float | None, high: float | None, lang: Language, decimals: int = 2) -> str:
    if value is None:
        return "–"
    if low is None or high is None:
        return _num(value, lang, decimals)
    return f"{_num(value, lang, decimals)} ({_num(low, lang, decimals)}–{_num(high, lang, decimals)})"


def _breach_text(month: dict[str, Any], thresholds: dict[str, Any], lang: Language) -> str:
    t = TEXT[lang]
    said = []
    kinds = [k for k in (month.get("breach_kinds") or "").split(",") if k]
    for kind in kinds:
        if kind == "score":
            said.append(t["kind_score"].format(value=_num(month["score_psi"], lang)))
        elif kind == "feature":
            names = [n for n in (month.get("drift_features") or "").split(",") if n]
            said.append(t["kind_feature"].format(features=", ".join(_feature_label(n, lang) for n in names)))
        elif kind == "code":
            for step in _code_steps(month):
                if step["top_features"]:
                    said.append(t["kind_code"].format(
                        what=_code_label(step["code"], lang), events=numbers.number(step["events"], lang),
                        month=month_label(step["month"], lang), low=numbers.number(step["previous_low"], lang),
                        high=numbers.number(step["previous_high"], lang),
                        features=", ".join(_feature_label(n, lang) for n in step["top_features"] + step["other_features"])))
        elif kind == "oe_after_step":
            value = month["observed_expected"]
            said.append(t["kind_oe_after_step"].format(value=_num(value, lang), side=t["above" if value > 1 else "below"],
                                                       month=month_label(month.get("step_since") or month["month"], lang)))
        elif kind == "oe_sustained":
            said.append(t["kind_oe_sustained"].format(value=_num(month["observed_expected"], lang),
                                                      months=thresholds.get("oe_sustained_months", Monitoring().oe_sustained_months)))
        elif kind in ("oe", "slope"):
            value = month["observed_expected"] if kind == "oe" else month["calibration_slope"]
            low, high = thresholds["oe_band" if kind == "oe" else "slope_band"]
            said.append(t[f"kind_{kind}"].format(value=_num(value, lang), low=_num(low, lang), high=_num(high, lang)))
    return f"{month_label(month['month'], lang)}: " + "; ".join(said)


def _code_steps(month: dict[str, Any]) -> list[dict[str, Any]]:
    """The month's steps in recorded codes (training/monitoring.py model_code_steps, stored as JSON)."""
    import json

    text = month.get("code_steps") or ""
    return json.loads(text) if text else []


def _code_label(code: str, lang: Language) -> str:
    """A code as a person reads it: the catalogue's description in the page's language."""
    from data_contracts.catalogue import code_descriptions

    return code_descriptions()[lang].get(code, code)


def monitoring_page(record: dict[str, Any], lang: Language, alias: str = "champion",
                    regions: dict[str, dict[str, Any]] | None = None) -> str:
    """The page's HTML for a monitoring record (training/monitor_run.report_record); `regions`:
    every region's latest record of the problem when it was monitored region by region (links)."""
    t = TEXT[lang]
    region = record.get("region", "")
    other = "en" if lang == "fi" else "fi"
    words = vocabulary()
    problem = record["problem"]
    months = record["months"]
    keys = [m["month"] for m in months]
    thresholds = record["thresholds"]
    breached = [bool(m.get("breaches")) for m in months]
    complete = [m for m in months if m.get("complete")]

    def column(name: str, realised_only: bool = False) -> list[float | None]:
        return [m.get(name) if (m.get("complete") or not realised_only) else None for m in months]

    drift = Chart("drift", t["drift"], keys, [
        Series("score", t["series_score"], column("score_psi"), "#1f618d"),
        Series("feature", t["series_feature"], column("top_feature_psi"), "#d68910"),
        Series("recent", t["series_recent"], column("top_feature_step_psi"), "#d68910", dashed=True),
    ], [Line(thresholds["max_feature_psi"], t["threshold"]), Line(thresholds["step_feature_psi"], t["threshold"], "#e59866")],
        breached, decimals=2, floor=0.0)
    estimated = [None if m.get("complete") and m.get("auroc") is not None else m.get("estimated_auroc") for m in months]
    auroc = Chart("auroc", t["auroc"], keys, [
        Series("realised", t["series_realised"], column("auroc", True), "#1f618d",
               low=column("auroc_ci_low", True), high=column("auroc_ci_high", True)),
        Series("estimated", t["series_estimated"], estimated, "#7f8c8d", dashed=True),
    ], [], breached, decimals=2)
    oe = Chart("observed-expected", t["oe"], keys, [
        Series("realised", t["series_realised"], column("observed_expected", True), "#1f618d",
               low=column("observed_expected_ci_low", True), high=column("observed_expected_ci_high", True)),
    ], [Line(thresholds["oe_band"][0], t["band"]), Line(thresholds["oe_band"][1], t["band"])], breached, decimals=2)
    slope = Chart("slope", t["slope"], keys, [
        Series("realised", t["series_realised"], column("calibration_slope", True), "#1f618d",
               low=column("calibration_slope_ci_low", True), high=column("calibration_slope_ci_high", True)),
    ], [Line(thresholds["slope_band"][0], t["band"]), Line(thresholds["slope_band"][1], t["band"])], breached, decimals=2)
    alerts = Chart("alert-rate", t["alert_rate"], keys, [
        Series("alerts", t["series_alerts"], column("alert_rate"), "#8e44ad")], [], breached, percent=True, floor=0.0)

    last = len(months) - 1
    features = [{"key": name, "label": _feature_label(name, lang),
                 "psi": _num((record["feature_psi"].get(name) or [None])[last] if last >= 0 else None, lang, 3),
                 "step": _num((record["feature_step_psi"].get(name) or [None])[last] if last >= 0 else None, lang, 3)}
                for name in record["top_features"]]
    rows = []
    for m in months:
        realised = m.get("complete") and m.get("auroc") is not None
        rows.append({
            "key": m["month"][:7], "label": month_label(m["month"], lang), "breached": bool(m.get("breaches")),
            "rows": numbers.number(m["rows"], lang), "alert_rate": numbers.percent(m["alert_rate"], lang, 1),
            "score_psi": _num(m["score_psi"], lang, 3),
            "auroc": (_interval(m.get("auroc"), m.get("auroc_ci_low"), m.get("auroc_ci_high"), lang, 3) if realised
                      else f"{t['est']} {_num(m.get('estimated_auroc'), lang, 3)}"),
            "oe": (_interval(m.get("observed_expected"), m.get("observed_expected_ci_low"),
                             m.get("observed_expected_ci_high"), lang) if realised else "–"),
            "slope": (_interval(m.get("calibration_slope"), m.get("calibration_slope_ci_low"),
                                m.get("calibration_slope_ci_high"), lang) if realised else "–"),
        })
    feedback, feedback_state = _feedback_rows(months, lang)
    notices = []
    gradual = [m for m in months if m.get("gradual_features")]
    if gradual:
        m = gradual[-1]
        notices.append(t["notice"].format(month=month_label(m["month"], lang), features=", ".join(
            _feature_label(n, lang) for n in m["gradual_features"].split(","))))
    stepped = [m for m in months if m.get("other_step_features")]
    if stepped:
        names = list(dict.fromkeys(n for m in stepped for n in m["other_step_features"].split(",")))
        notices.append(t["other_step"].format(month=month_label(stepped[0]["month"], lang),
                                              features=", ".join(_feature_label(n, lang) for n in names)))
    for step in [step for m in months for step in _code_steps(m) if not step["top_features"]]:
        notices.append(t["code_notice"].format(month=month_label(step["month"], lang), what=_code_label(step["code"], lang)))
    summary = (t["region"].format(region=region) + " " if region else "") + t["summary"].format(
        version=record["model_version"], alias=alias, as_of=_date(record["as_of"], lang), months=len(months),
        first=month_label(keys[0], lang) if keys else "–", last=month_label(keys[-1], lang) if keys else "–",
        complete=len(complete))
    problems = [{"label": words.problem_label(p, lang), "current": p == problem, "url": page_path(p, lang, alias, region)}
                for p in problem_ids()]
    region_links = [{"name": name, "current": name == region, "breached": has_breach(other),
                     "url": page_path(problem, lang, alias, name)} for name, other in (regions or {}).items()]
    return environment().get_template("monitoring.html.j2").render(
        lang=lang, other_lang=other, t=t, problem_label=words.problem_label(problem, lang), summary=summary,
        other_language_url=page_path(problem, other, alias, region), problems=problems, regions=region_links,
        breached=any(breached), breaches=[{"month": m["month"][:7], "text": _breach_text(m, thresholds, lang)}
                                          for m in months if m.get("breaches")],
        notices=notices, features=features, months=rows,
        drift_svg=Markup(line_chart(drift, lang)), auroc_svg=Markup(line_chart(auroc, lang)),
        oe_svg=Markup(line_chart(oe, lang)), slope_svg=Markup(line_chart(slope, lang)),
        alerts_svg=Markup(line_chart(alerts, lang)), feedback=feedback, feedback_state=feedback_state,
    )


def _feedback_rows(months: list[dict[str, Any]], lang: Language) -> tuple[list[dict[str, str]], str]:
    """The CRM feedback table's rows (months with cards sent) and the page's state: 'unknown' (no
    outbox: a record without the counts), 'none' (no verdict on any card shown) or 'some'. A month
    without a verdict says so, never 0 %."""
    t = TEXT[lang]
    if not months or any(m.get("crm_sent") is None for m in months):
        return [], "unknown"
    rows = []
    for m in months:
        sent, judged = int(m["crm_sent"]), int(m["crm_feedback"])
        if not sent:
            continue

        shares = {kind: (f"{numbers.number(int(m[f'crm_{kind}']), lang)} "
                         f"({numbers.percent(m[f'crm_{kind}_share'], lang, 0)})" if judged else t["no_feedback"])
                  for kind in ("accepted", "overridden")}
        rows.append({"key": m["month"][:7], "label": month_label(m["month"], lang), "sent": numbers.number(sent, lang),
                     "judged": numbers.number(judged, lang) if judged else t["no_feedback"], **shares})
    return rows, "some" if any(int(m["crm_feedback"]) for m in months) else "none"


def _date(text: str, lang: Language) -> str:
    year, month, day = (int(p) for p in text[:10].split("-"))
    return f"{day}.{month}.{year}" if lang == "fi" else f"{day} {('Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec')[month - 1]} {year}"
