"""The segment cost view as a page (admin role; Finnish or English): charts, tables, CSV export.

Everything shown is computed by costs.cost_view over the histories the service holds; this module
arranges it and renders serving/templates/costs.html.j2. The page names no customer (groups are
counts and sums), so its reads are not audited per customer; the guard asks for an admin key.
Links (years, groups, language, CSV) are relative to the page.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlencode

import pandas as pd
from markupsafe import Markup

from costs import CostView, presets, years_of
from costs.plots import concentration_svg, production_svg, segment_area_svg
from costs.view import TOP_PERCENTS
from costs.words import model_label, row_label
from data_contracts.catalogue import load_code_catalogue
from serving.pages import environment
from vocabulary import numbers

Language = Literal["fi", "en"]

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Costs by customer segment", "other_language": "Suomeksi", "csv": "Download as CSV", "year": "Year",
        "total": "The region's cost in the year", "partial": "the data cover only part of the year",
        "total_note": "The sum of the costs of every service event in the year.",
        "segments": "Customer segments", "segment": "Segment", "customers": "Customers", "cost": "Cost",
        "per_customer": "Per customer", "share": "Share of all costs", "top": "Costliest",
        "segments_note": ("A customer belongs to a segment when its rule holds at the end of any month of the year, and can "
                          "belong to several: the rows overlap. A row is its members' whole annual cost. The last columns "
                          "show the share of the row's cost used by its costliest 1, 5 and 10 percent of customers."),
        "segment_chart": "Cost by segment and service area",
        "concentration": "Concentration of cost",
        "concentration_note": "Share of all costs used by the costliest customers (all customers of the year, costliest first).",
        "production": "Cost per customer-day by model of service production",
        "production_note": ("Dark: the model's own service (e.g. home care visits); light: every service the customers "
                            "used during those days."),
        "model": "Model", "days": "Customer-days", "own_per_day": "Own service per day", "all_per_day": "All services per day",
        "catalogue_note": ("{models}: the service events carry no cost for these days, so the per-day figures include the "
                           "catalogue's daily price ({price}); the region's annual cost above does not."),
        "group": "Customer group", "group_chart": "The group's cost by service area",
        "no_group": "Choose a group above to see its costs and service use.",
        "other_diagnoses": "Other diagnoses of the group in the year",
        "group_summary": "{customers} customers, {cost} ({share} of the region's cost), {per} per customer; the costliest 10 percent use {top}",
        "definitions": ("Costs are the unit costs of the service events (catalogue prices): a hospital stay is costed "
                        "when the patient is discharged. No individual customer is shown on this page."),
    },
    "fi": {
        "title": "Kustannukset asiakassegmenteittäin", "other_language": "In English", "csv": "Lataa CSV-tiedostona", "year": "Vuosi",
        "total": "Alueen kustannukset vuonna", "partial": "aineisto kattaa vain osan vuodesta",
        "total_note": "Vuoden kaikkien palvelutapahtumien kustannusten summa.",
        "segments": "Asiakassegmentit", "segment": "Segmentti", "customers": "Asiakkaita", "cost": "Kustannukset",
        "per_customer": "Asiakasta kohden", "share": "Osuus kaikista kustannuksista", "top": "Kalleimmat",
        "segments_note": ("Asiakas kuuluu segmenttiin, kun sen ehto täyttyy jonkin vuoden kuukauden lopussa, ja hän voi "
                          "kuulua useaan: rivit menevät osin päällekkäin. Rivi on jäsentensä koko vuoden kustannukset. "
                          "Viimeiset sarakkeet kertovat, kuinka suuren osan rivin kustannuksista sen kalleimmat 1, 5 ja "
                          "10 prosenttia asiakkaista käyttävät."),
        "segment_chart": "Kustannukset segmenteittäin ja palvelualueittain",
        "concentration": "Kustannusten kasautuminen",
        "concentration_note": "Kalleimpien asiakkaiden osuus kaikista kustannuksista (kaikki vuoden asiakkaat, kalleimmasta alkaen).",
        "production": "Asiakaspäivän hinta palvelujen tuotantomalleittain",
        "production_note": ("Tumma: tuotantomallin oma palvelu (esim. kotihoidon käynnit); vaalea: kaikki palvelut, joita "
                            "asiakkaat käyttivät näinä päivinä."),
        "model": "Tuotantomalli", "days": "Asiakaspäiviä", "own_per_day": "Oma palvelu päivässä",
        "all_per_day": "Kaikki palvelut päivässä",
        "catalogue_note": ("{models}: palvelutapahtumiin ei ole kirjattu kustannusta näiltä päiviltä, joten päiväkohtaisiin "
                           "lukuihin on lisätty luettelon päivähinta ({price}); yllä olevaan alueen vuosikustannukseen ei."),
        "group": "Asiakasryhmä", "group_chart": "Ryhmän kustannukset palvelualueittain",
        "no_group": "Valitse ryhmä yltä nähdäksesi sen kustannukset ja palvelujen käytön.",
        "other_diagnoses": "Ryhmän muut diagnoosit vuoden aikana",
        "group_summary": "{customers} asiakasta, {cost} ({share} alueen kustannuksista), {per} asiakasta kohden; kalleimmat 10 prosenttia käyttävät {top}",
        "definitions": ("Kustannukset ovat palvelutapahtumien yksikkökustannuksia (luettelohinnat): sairaalajakso "
                        "kustannetaan kotiutuksen yhteydessä. Sivulla ei näytetä yksittäisiä asiakkaita."),
    },
}


def page_path(lang: str, year: int | None = None, group: str | None = None, csv: bool = False) -> str:
    query = {"lang": lang, **({"year": year} if year is not None else {}), **({"group": group} if group else {})}
    return f"{'costs.csv' if csv else 'costs'}?{urlencode(query)}"


def _pct(value: float, lang: Language) -> str:
    return "–" if value != value else numbers.percent(value, lang)


def _eur(value: float, lang: Language) -> str:
    return "–" if value != value else numbers.euros(value, lang)


def cost_page(view: CostView, lang: Language, data_span: tuple[pd.Timestamp, pd.Timestamp], group_key: str | None = None) -> str:
    """The page's HTML for a computed view; `group_key`: the named group shown (links keep it)."""
    t = TEXT[lang]
    other = "en" if lang == "fi" else "fi"
    rows = list(view.segments.index)
    segments = [{
        "key": row, "label": row_label(str(row), lang), "customers": numbers.number(item.customers, lang),
        "cost": _eur(item.cost_eur, lang), "per_customer": _eur(item.cost_per_customer, lang), "share": _pct(item.share_of_cost, lang),
        "top": [_pct(float(view.concentration.loc[(row, p), "share_of_cost"]), lang) for p in TOP_PERCENTS],
    } for row, item in zip(rows, view.segments.itertuples())]
    production = [{
        "key": model, "label": model_label(str(model), lang), "customers": numbers.number(item.customers, lang),
        "days": numbers.number(item.customer_days, lang), "own": _eur(item.own_cost_per_day, lang), "all": _eur(item.all_cost_per_day, lang),
    } for model, item in zip(view.production.index, view.production.itertuples())]
    priced = view.production[view.production["catalogue_daily_eur"] > 0]
    notes = [t["catalogue_note"].format(models=", ".join(model_label(str(m), lang) for m in priced.index),
                                        price=", ".join(numbers.euros(v, lang) for v in priced["catalogue_daily_eur"]))] if len(priced) else []
    group = None
    if view.group is not None:
        g = view.group
        s = g.summary
        catalogue = load_code_catalogue().set_index("code")
        describe = "description_fi" if lang == "fi" else "description_en"
        group_areas = pd.concat({"group": g.areas}, names=["row", "service_area"])
        group = {
            "key": g.group.name, "label": g.group.describe(lang), "codes": ", ".join(g.codes),
            "summary": t["group_summary"].format(
                customers=numbers.number(s["customers"], lang), cost=_eur(float(s["cost_eur"]), lang),
                share=_pct(float(s["share_of_cost"]), lang), per=_eur(float(s["cost_per_customer"]), lang),
                top=_pct(float(g.concentration.loc[10, "share_of_cost"]), lang)),
            "svg": Markup(segment_area_svg(group_areas, ["group"], lang, t["group_chart"], labels={"group": g.group.describe(lang)})),
            "diagnoses": ", ".join(f"{catalogue.loc[code, describe]} {_pct(item.share_of_customers, lang)}"
                                   for code, item in g.other_diagnoses.iterrows()),
        }
    years = [{"year": y, "current": y == view.year, "url": page_path(lang, y, group_key)} for y in years_of(*data_span)]
    groups = [{"label": found.describe(lang), "current": name == group_key, "url": page_path(lang, view.year, name)}
              for name, found in presets().items()]
    return environment().get_template("costs.html.j2").render(
        lang=lang, other_lang=other, t=t, year=view.year, total=_eur(view.total_cost, lang), partial=view.partial,
        other_language_url=page_path(other, view.year, group_key), csv_url=page_path(lang, view.year, group_key, csv=True),
        years=years, segments=segments, top_percents=[numbers.percent(p / 100, lang, 0) for p in TOP_PERCENTS],
        segment_svg=Markup(segment_area_svg(view.areas, rows, lang, t["segment_chart"])),
        concentration_svg=Markup(concentration_svg(view.curve, view.concentration.loc["all"], lang, t["concentration"])),
        production_svg=Markup(production_svg(view.production, lang, t["production"])),
        production=production, production_notes=notes, groups=groups, group=group,
    )


