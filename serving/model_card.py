"""The served model card: what a clinician or coordinator needs to trust (or not) a problem's model,
in Finnish and English.

What the model is for and for whom, what its probability means (and does not), whether it passed
its quality gates before use (or was forced past them, with the gates it failed), how well it did
on its test period (AUROC and calibration with customer-bootstrap intervals, the best baseline,
alert figures at the threshold in use; the lead time per customer, from scores before their first
outcome), which subgroups were flagged and by which rule exactly,
and what the model relies on. Everything comes from the champion itself: the model's metadata and
spec (written at training) and its registry version's tags (written at promotion).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any, Literal

import pandas as pd
from markupsafe import Markup

from base.links import model_card_path
from explain.plots import mean_abs_importance, shap_summary_svg
from features.catalogue import feature_info
from scoring.scorer import Scorer
from serving.pages import Sign
from vocabulary import vocabulary
from vocabulary.gates import flagged_groups, gate_reasons
from vocabulary.numbers import number, percent

Language = Literal["fi", "en"]

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "model_card": "Model card", "other_language": "Suomeksi", "status": "Status", "version": "Model version",
        "promoted": "Put in use", "failed": "Checks it did not pass", "intended_use": "Intended use",
        "population": "Who is scored", "scored_monthly": "Scored on the first day of every month while in the group, "
        "not in hospital and not already in the outcome.", "meaning": "What the probability means",
        "performance": "How well it did on its test period", "test_period": "Test period",
        "auroc": "Discrimination (AUROC)", "auroc_note": "0.5 is chance, 1.0 perfect ranking",
        "baseline": "Best simple baseline (AUROC)", "gain": "Gain over the baseline", "calibration": "Calibration",
        "ece": "Expected calibration error", "oe": "Observed / expected outcomes", "oe_note": "1.0 = right on average",
        "slope": "Calibration slope", "slope_note": "1.0 = predictions spread as far as the outcomes; below 1.0 = too extreme",
        "not_computed": "not computed for this model version", "interval": "95% interval",
        "threshold": "Alert threshold", "alert_rate": "Alerts per 1,000 scored customers a month", "ppv": "Share of alerts "
        "followed by the outcome (PPV)", "sensitivity": "Share of outcomes alerted in advance (sensitivity)",
        "lead": "Median days from a customer's first alert to their first outcome (alerts within the horizon "
        "before it)", "counts": "Test rows, customers, outcomes",
        "bands": "Risk bands (lower edges)", "subgroups": "Subgroups", "subgroup_rule": (
            "Each group of sex, age band, municipality and language with at least {rows} test rows and {events} outcomes "
            "is checked. A group is flagged when its AUROC is more than {auroc} below the model's AUROC within that "
            "attribute, or its observed/expected ratio is further than {oe} from 1, and in either case the gap is beyond "
            "chance (two-sided, 5% over all checks together, counting customers rather than rows). Smaller groups are "
            "reported but not judged."),
        "flagged": "Flagged groups", "none_flagged": "No group was flagged.", "unknown_flags": "Not recorded for this model version.",
        "importance": "What the model relies on", "importance_note": "Each feature's share of what the model relies on: its mean absolute effect on the "
        "risk score over {n} scored customers, as a share of all features' together.",
        "importance_gain": "Each feature's share of the model's own split gain (no customers to compute effects on).",
        "feature": "Feature", "description": "Description", "effect": "Share",
        "intended_use_missing": "",
        "external": "How it did in other regions (external validation)",
        "external_note": "The same model scored on another wellbeing services county's test period, without retraining: "
        "people and services differ there, so discrimination and calibration can change. 95% intervals by customer bootstrap.",
        "region": "Region (test period)", "intercept": "Calibration intercept", "intercept_note": "0 = right on average",
        "rows_outcomes": "Test rows / outcomes", "per_customer": "AUROC per customer",
        "recalibrated": "This version is version {source} recalibrated for {region}: its calibrator (not its trees) was "
        "refitted on {region}'s validation period, and its figures above are from {region}'s test period.",
        "recalibrated_recent": "This version is version {source} with its calibrator (not its trees) refitted on the "
        "index months {first} to {last} ({rows} rows) after a monitoring breach; its figures above are from the months "
        "after them.",
    },
    "fi": {
        "model_card": "Mallikortti", "other_language": "In English", "status": "Tila", "version": "Mallin versio",
        "promoted": "Otettu käyttöön", "failed": "Tarkistukset, joita se ei läpäissyt", "intended_use": "Käyttötarkoitus",
        "population": "Keitä arvioidaan", "scored_monthly": "Arvioidaan jokaisen kuukauden ensimmäisenä päivänä, kun "
        "asiakas kuuluu ryhmään, ei ole sairaalassa eikä tapahtuma ole jo sattunut.", "meaning": "Mitä todennäköisyys tarkoittaa",
        "performance": "Miten malli onnistui testijaksollaan", "test_period": "Testijakso",
        "auroc": "Erottelukyky (AUROC)", "auroc_note": "0,5 on sattumaa, 1,0 täydellinen järjestys",
        "baseline": "Paras yksinkertainen vertailumalli (AUROC)", "gain": "Etu vertailumalliin", "calibration": "Kalibraatio",
        "ece": "Odotettu kalibraatiovirhe", "oe": "Havaitut / odotetut tapahtumat", "oe_note": "1,0 = keskimäärin oikein",
        "slope": "Kalibraation kulmakerroin", "slope_note": "1,0 = ennusteiden hajonta vastaa tapahtumia; alle 1,0 = ennusteet liian äärimmäisiä",
        "not_computed": "ei laskettu tälle mallin versiolle", "interval": "95\u00a0%:n väli",
        "threshold": "Hälytysraja", "alert_rate": "Hälytyksiä 1\u00a0000 arvioitua asiakasta kohden kuukaudessa",
        "ppv": "Hälytyksistä osuus, joita seurasi tapahtuma (PPV)", "sensitivity": "Tapahtumista osuus, joista "
        "hälytettiin etukäteen (herkkyys)", "lead": "Päiviä asiakkaan ensimmäisestä hälytyksestä hänen ensimmäiseen "
        "tapahtumaansa, mediaani (hälytykset ennustejakson sisällä ennen sitä)",
        "counts": "Testirivit, asiakkaat, tapahtumat", "bands": "Riskiluokat (alarajat)", "subgroups": "Alaryhmät",
        "subgroup_rule": (
            "Jokainen sukupuolen, ikäryhmän, kunnan ja asiointikielen ryhmä, jossa on vähintään {rows} testiriviä ja "
            "{events} tapahtumaa, tarkistetaan. Ryhmä merkitään, kun sen AUROC on yli {auroc} alempi kuin mallin AUROC "
            "saman ominaisuuden sisällä tai sen havaittujen ja odotettujen tapahtumien suhde poikkeaa ykkösestä yli {oe}, "
            "ja kummassakin tapauksessa ero on suurempi kuin sattuma selittää (kaksisuuntaisesti, 5\u00a0% kaikkien tarkistusten "
            "yhteensä, asiakkaita eikä rivejä laskien). Pienemmät ryhmät raportoidaan mutta niitä ei arvioida."),
        "flagged": "Merkityt ryhmät", "none_flagged": "Yhtään ryhmää ei merkitty.", "unknown_flags": "Ei kirjattu tälle mallin versiolle.",
        "importance": "Mihin malli nojaa", "importance_note": "Kunkin piirteen osuus siitä, mihin malli nojaa: sen keskimääräinen vaikutus "
        "riskipisteisiin {n} arvioidulla asiakkaalla suhteessa kaikkien piirteiden vaikutukseen yhteensä.",
        "importance_gain": "Kunkin piirteen osuus mallin omasta jakohyödystä (asiakkaita vaikutusten laskemiseen ei ollut).",
        "feature": "Piirre", "description": "Kuvaus", "effect": "Osuus",
        "intended_use_missing": "Tälle mallin versiolle ei ole kirjattu käyttötarkoitusta suomeksi: se on englanninkielisessä "
        "mallikortissa.",
        "external": "Miten malli onnistui muilla alueilla (ulkoinen validointi)",
        "external_note": "Sama malli arvioituna toisen hyvinvointialueen testijaksolla ilman uudelleenkoulutusta: väestö ja "
        "palvelut eroavat, joten erottelukyky ja kalibraatio voivat muuttua. 95\u00a0%:n välit asiakkaittaisella uudelleenotannalla.",
        "region": "Alue (testijakso)", "intercept": "Kalibraation vakiotermi", "intercept_note": "0 = keskimäärin oikein",
        "rows_outcomes": "Testirivit / tapahtumat", "per_customer": "AUROC asiakkaittain",
        "recalibrated": "Tämä on versio {source} kalibroituna alueelle {region}: sen kalibraattori (ei puita) sovitettiin "
        "uudelleen alueen {region} validointijaksolla, ja yllä olevat luvut ovat alueen {region} testijaksolta.",
        "recalibrated_recent": "Tämä on versio {source}, jonka kalibraattori (ei puita) sovitettiin uudelleen "
        "indeksikuukausille {first}–{last} ({rows} riviä) seurannan raja-arvon ylityksen jälkeen; yllä olevat luvut "
        "ovat niitä seuraavilta kuukausilta.",
    },
}


def model_card(scorer: Scorer, problem: str, lang: Language, sample: tuple[pd.DataFrame, pd.DataFrame] | None,
               sign: Sign | None = None) -> str:
    """The model card's HTML. sample: (contributions, feature rows) of scored customers, or None
    (importance then from the booster's gain, so a card never fails for lack of data). sign: the
    card was opened by a signed link, and its own links are signed the same way."""
    from serving.pages import environment, linker

    href = linker(model_card_path(problem, lang), sign)
    champion = scorer.champion(problem)
    model, spec, words = champion.model, champion.model.spec or {}, vocabulary()
    metrics = model.metadata.get("metrics") or {}
    t = WORDS[lang]
    return environment().get_template("model_card.html.j2").render(
        lang=lang, other_lang="en" if lang == "fi" else "fi", t=t, problem=problem,
        other_language_url=href(model_card_path(problem, "en" if lang == "fi" else "fi")),
        label=words.problem_label(problem, lang), version=champion.version, pipeline_version=model.pipeline_version,
        gate=champion.gate.status, gate_label=words.gate_label(champion.gate.status, lang), gate_reasons=gate_reasons(champion.gate.reasons, lang),
        promoted_at=champion.tags.get("promoted_at"),
        # a version trained before the Finnish text existed says so, rather than English on a Finnish card
        intended_use=(spec.get("intended_use_fi") or (t["intended_use_missing"] if spec.get("intended_use") else None))
        if lang == "fi" else spec.get("intended_use"),
        population=words.segment(champion.segment).description(lang), meaning=words.meaning(problem, lang),
        bands=" / ".join(percent(edge, lang, 0) for edge in (champion.bands.moderate, champion.bands.high, champion.bands.very_high)),
        test_period=_test_period(model.metadata.get("periods")), performance=_performance(metrics, model.metadata, lang, t),
        subgroup_rule=_subgroup_rule(spec, lang, t), flagged=flagged_groups(champion.tags.get("subgroup_flagged"), lang),
        external=external_results(champion.tags, lang, t), recalibrated=_recalibrated(model.metadata, t, lang),
        **_importance(model, sample, lang),
    )


def _value(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    return float(value) if isinstance(value, (int, float)) and not math.isnan(float(value)) else None


def _with_interval(metrics: dict[str, Any], key: str, lang: Language, t: dict[str, str], decimals: int = 3,
                   signed: bool = False) -> str:
    value = _value(metrics, key)
    if value is None:
        return t["not_computed"]
    shown = ("+" if signed and value > 0 else "") + number(value, lang, decimals)
    low, high = _value(metrics, f"{key}_ci_low"), _value(metrics, f"{key}_ci_high")
    if low is None or high is None:
        return shown
    return f"{shown} ({t['interval']} {number(low, lang, decimals)}–{number(high, lang, decimals)})"


def _performance(metrics: dict[str, Any], metadata: dict[str, Any], lang: Language, t: dict[str, str]) -> list[tuple[str, str]]:
    """(what, value) rows in the language; a figure the version does not carry says so."""

    def plain(key: str, decimals: int = 3, as_percent: bool = False) -> str:
        value = _value(metrics, key)
        if value is None:
            return t["not_computed"]
        return percent(value, lang) if as_percent else number(value, lang, decimals)

    threshold = metadata.get("threshold")
    counts = [_value(metrics, k) for k in ("test_rows", "test_customers", "test_events")]
    return [
        (t["auroc"], f"{_with_interval(metrics, 'test_auroc', lang, t)} · {t['auroc_note']}"),
        (t["baseline"], plain("baseline_auroc")),
        (t["gain"], _with_interval(metrics, "gain_over_baseline", lang, t, signed=True)),
        (t["ece"], _with_interval(metrics, "test_ece", lang, t)),
        (t["oe"], f"{_with_interval(metrics, 'test_observed_expected', lang, t, decimals=2)} · {t['oe_note']}"),
        (t["slope"], f"{_with_interval(metrics, 'test_calibration_slope', lang, t, decimals=2)} · {t['slope_note']}"),
        (t["threshold"], percent(float(threshold), lang, 2) if threshold is not None else t["not_computed"]),
        (t["alert_rate"], plain("test_alerts_per_1000_per_month", 1)),
        (t["ppv"], plain("test_ppv", as_percent=True)),
        (t["sensitivity"], plain("test_sensitivity", as_percent=True)),
        # per customer, from the rows before their first outcome (training/customers.py); a version
        # trained before that carries only a row-level figure, which is not shown under these words
        (t["lead"], plain("test_customer_lead_days", 0)),
        (t["counts"], " / ".join(number(c, lang, 0) if c is not None else "–" for c in counts)),
    ]


def external_results(tags: dict[str, str], lang: Language, t: dict[str, str]) -> list[dict[str, str]]:
    """One row per region the version was scored on (its `external_<region>` tags, written by
    `sote-risk evaluate --external` and `recalibrate`); a tag that cannot be read is left out."""
    import json

    from data_contracts.regions import REGIONS

    rows = []
    for key in sorted(k for k in tags if k.startswith("external_")):
        try:
            figures = json.loads(tags[key])
        except ValueError:
            continue
        if not isinstance(figures, dict):
            continue
        region = str(figures.get("region", key.removeprefix("external_")))
        counts = [_value(figures, k) for k in ("test_rows", "test_events")]
        rows.append({
            "region": region,
            "title": REGIONS[region].title if region in REGIONS else region,
            "period": _test_period([figures.get("test_period")]) or "",
            "auroc": _with_interval(figures, "test_auroc", lang, t),
            "per_customer": _with_interval(figures, "test_customer_auroc", lang, t),
            "oe": _with_interval(figures, "test_observed_expected", lang, t, decimals=2),
            "slope": _with_interval(figures, "test_calibration_slope", lang, t, decimals=2),
            "intercept": _with_interval(figures, "test_calibration_intercept", lang, t, decimals=2, signed=True),
            "counts": " / ".join(number(c, lang, 0) if c is not None else "–" for c in counts),
        })
    return rows


def _recalibrated(metadata: dict[str, Any], t: dict[str, str], lang: Language = "en") -> str | None:
    """What a reader of the card must know of a recalibrated version: for another region
    (`recalibrate`), or on this region's recent months after a breach (`retrain --recalibrate`)."""
    region = metadata.get("recalibrated_for")
    months = metadata.get("recalibration_months")
    if not region and months:
        from training.monitor_plots import month_label

        return t["recalibrated_recent"].format(
            source=metadata.get("recalibrated_from", "?"), first=month_label(str(months[0]), lang),
            last=month_label(str(months[-1]), lang), rows=number(int(metadata.get("recalibration_rows") or 0), lang, 0))
    if not region:
        return None
    from data_contracts.regions import REGIONS

    title = REGIONS[region].title if region in REGIONS else str(region)
    return t["recalibrated"].format(source=metadata.get("recalibrated_from", "?"), region=title)


def _test_period(periods: Any) -> str | None:
    """The test period as a person reads it: training records "test [2026-02-01, 2026-08-01)" (the
    end excluded), shown "2026-02-01 – 2026-07-31"."""
    if not (isinstance(periods, list) and periods):
        return None
    text = str(periods[-1])
    text = text.split(" ", 1)[1] if text.startswith("test ") else text
    found = re.fullmatch(r"\[(\d{4}-\d{2}-\d{2}), (\d{4}-\d{2}-\d{2})\)", text.strip())
    if not found:
        return text
    last = dt.date.fromisoformat(found[2]) - dt.timedelta(days=1)
    return f"{found[1]} – {last.isoformat()}"


def _subgroup_rule(spec: dict[str, Any], lang: Language, t: dict[str, str]) -> str:
    gates = spec.get("gates") or {}
    return t["subgroup_rule"].format(
        rows=number(gates.get("min_subgroup_rows", 200), lang), events=number(gates.get("min_subgroup_events", 20), lang),
        auroc=number(gates.get("subgroup_auroc_tolerance", 0.1), lang, 2), oe=number(gates.get("subgroup_oe_tolerance", 0.25), lang, 2),
    )


def _importance(model: Any, sample: tuple[pd.DataFrame, pd.DataFrame] | None, lang: Language) -> dict[str, Any]:
    if sample is not None and len(sample[0]):
        contributions, rows = sample
        importance = mean_abs_importance(contributions)
        summary, size = Markup(shap_summary_svg(contributions, rows)), len(contributions)
    else:
        gain = model.booster.feature_importance(importance_type="gain")
        importance = pd.Series(gain, index=model.feature_names).sort_values(ascending=False)
        summary, size = None, 0
    total = float(importance.sum())
    rows_out = []
    for name, value in importance.head(20).items():
        info = feature_info(str(name))
        rows_out.append({"name": name, "description": info.description_fi if lang == "fi" else info.description_en,
                         "value": percent(float(value) / total if total > 0 else 0.0, lang)})
    return {"importance": rows_out, "summary_svg": summary, "sample_size": size}

