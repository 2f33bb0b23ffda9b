"""The feature catalogue: every feature's meaning, unit, expected direction and plain language.

Explanations read it to turn SHAP values into sentences ("5 emergency department visits in the
last 90 days"), `sote-risk features describe` prints it, and a test fails if a produced feature
has no entry. Entries are declared as data below; the utilisation family is expanded from one
row per service category (its codes, service area and nouns) times the windows, so the wording
of 95 similar features stays consistent.

Missing values. `NaN` means "never / not applicable" (no such event on record before the index
time, fewer than two measurements for a change, no denominator for a share). LightGBM routes NaN
to the learned side of every split, so "never" is a value of its own instead of a fake large
number. Every feature has a `never_en` / `never_fi` sentence for a missing value: what NaN means
where it can be NaN, "not known" where a value should always be there (a posted row without it).

Sentences (explain/reasons.py `feature_sentence` reads them; tests/test_feature_sentences.py walks
every entry over missing, zero, flag, small, typical and large values in both languages):
- numeric: `template_*` with `{value}`, the number written as vocabulary/numbers.py writes it in
  each language: `shown_as` "number" (whole numbers without decimals, others with `decimals`),
  "signed" (a change: "+3", "−2"), "percent" (a share 0-1 as "25 %"/"25%", `decimals` places)
  or "euros" ("45 578 €"/"€45,578"). `said` holds the sentences of particular values *as shown*
  (after rounding to the shown precision): 0 ("No emergency department visits in the last 90
  days", "less than a day ago"), 1 (English singular, Finnish nominative: "1 päivä sitten"), and
  the coded values of a few interRAI items (lives alone 0/1, falls 0-2);
- flag (0/1): `template_*` is the sentence when the flag is set, `no_*` when it is not;
- categorical: `template_*` with `{value}`, the category in words from `value_words`
  (code, English, Finnish): "Sukupuoli: nainen".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

# The fixed category lists of the demographic features are the contracts' lists (one source).
from data_contracts.catalogue import LANGUAGES, MUNICIPALITIES, SEXES  # noqa: F401 (re-exported)

WINDOWS_DAYS: tuple[int, ...] = (30, 90, 365)
TREND_DAYS = 90  # trend = count in (t-90, t] minus count in (t-180, t-90]


@dataclass(frozen=True)
class Said:
    """The sentence of one value as it is shown (`{value}` may appear: "1 day ago")."""

    value: float
    en: str
    fi: str


@dataclass(frozen=True)
class FeatureInfo:
    """One feature. `direction`: +1 risk expected to rise with the value, -1 to fall, 0 unknown.

    `kind`: numeric (float64), flag (float64 0/1) or categorical (pandas category with
    `categories` fixed here). How the sentences are made: the module docstring.
    """

    name: str
    family: str
    kind: Literal["numeric", "flag", "categorical"]
    unit_en: str
    unit_fi: str
    direction: int
    description_en: str
    description_fi: str
    template_en: str
    template_fi: str
    never_en: str | None = None
    never_fi: str | None = None
    decimals: int = 0
    categories: tuple[str, ...] | None = None
    codes: tuple[str, ...] = field(default=())
    shown_as: Literal["number", "signed", "percent", "euros"] = "number"
    said: tuple[Said, ...] = ()
    no_en: str | None = None  # a flag that is not set
    no_fi: str | None = None
    value_words: tuple[tuple[str, str, str], ...] = ()  # categorical: (code, English, Finnish)


@dataclass(frozen=True)
class ServiceCategory:
    """A utilisation category: key codes of one catalogue service area, with its nouns."""

    name: str
    service_area: str
    codes: tuple[str, ...]
    plural_en: str  # "emergency department visits"
    singular_en: str  # "emergency department visit" (after 1, and "Last emergency department visit")
    partitive_fi: str  # "päivystyskäyntejä" (Finnish partitive plural: "Ei päivystyskäyntejä")
    singular_fi: str  # "päivystyskäynti" (nominative: after 1, and "Viimeisin päivystyskäynti")
    direction: int


SERVICE_CATEGORIES: tuple[ServiceCategory, ...] = (
    ServiceCategory("er_visits", "EMERGENCY", ("ENC/EMERGENCY",), "emergency department visits", "emergency department visit",
                    "päivystyskäyntejä", "päivystyskäynti", 1),
    ServiceCategory("paramedic_contacts", "EMERGENCY", ("ENC/PARAMEDIC",), "paramedic contacts without transport",
                    "paramedic contact without transport", "ensihoidon kohtaamisia ilman kuljetusta",
                    "ensihoidon kohtaaminen ilman kuljetusta", 1),
    ServiceCategory("primary_visits", "PRIMARY", ("ENC/HC_DOCTOR", "ENC/HC_NURSE", "ENC/HC_REMOTE"), "health centre contacts",
                    "health centre contact", "terveyskeskuskäyntejä tai -yhteydenottoja", "terveyskeskuskäynti tai -yhteydenotto", 1),
    ServiceCategory("missed_appointments", "PRIMARY", ("ENC/MISSED_APPOINTMENT",), "missed appointments", "missed appointment",
                    "käyttämättä jääneitä vastaanottoaikoja", "käyttämättä jäänyt vastaanottoaika", 1),
    ServiceCategory("psychiatry_visits", "MENTAL", ("ENC/PSYCHIATRY",), "psychiatric outpatient visits", "psychiatric outpatient visit",
                    "psykiatrian avohoitokäyntejä", "psykiatrian avohoitokäynti", 1),
    ServiceCategory("crisis_contacts", "MENTAL", ("ENC/CRISIS",), "mental health crisis contacts", "mental health crisis contact",
                    "mielenterveyden kriisikäyntejä", "mielenterveyden kriisikäynti", 1),
    ServiceCategory("child_health_visits", "CHILDHEALTH", ("ENC/CHILD_HEALTH",), "child health clinic visits", "child health clinic visit",
                    "lastenneuvolakäyntejä", "lastenneuvolakäynti", 0),
    ServiceCategory("school_health_visits", "CHILDHEALTH", ("ENC/SCHOOL_HEALTH",), "school health care visits", "school health care visit",
                    "kouluterveydenhuollon käyntejä", "kouluterveydenhuollon käynti", 0),
    ServiceCategory("unplanned_admissions", "HOSPITAL", ("ADMIT/UNPLANNED",), "unplanned hospital admissions", "unplanned hospital admission",
                    "päivystyksellisiä sairaalajaksoja", "päivystyksellinen sairaalajakso", 1),
    ServiceCategory("planned_admissions", "HOSPITAL", ("ADMIT/PLANNED",), "planned hospital admissions", "planned hospital admission",
                    "suunniteltuja sairaalajaksoja", "suunniteltu sairaalajakso", 1),
    ServiceCategory("homecare_visits", "HOMECARE", ("HOMECARE/VISIT",), "home care visits", "home care visit",
                    "kotihoidon käyntejä", "kotihoidon käynti", 1),
    ServiceCategory("remote_visits", "REMOTE", ("REMOTE/VIDEO_VISIT",), "remote (video) home care visits", "remote (video) home care visit",
                    "kotihoidon etäkäyntejä", "kotihoidon etäkäynti", 0),
    ServiceCategory("rehab_visits", "REHAB", ("REHAB/VISIT",), "home rehabilitation visits", "home rehabilitation visit",
                    "kotikuntoutuskäyntejä", "kotikuntoutuskäynti", 0),
    ServiceCategory("fall_alarms", "IOT", ("IOT/FALL_ALARM",), "fall alarms", "fall alarm", "kaatumishälytyksiä", "kaatumishälytys", 1),
    ServiceCategory("inactivity_alarms", "IOT", ("IOT/INACTIVITY_ALARM",), "inactivity alarms", "inactivity alarm",
                    "liikkumattomuushälytyksiä", "liikkumattomuushälytys", 1),
    ServiceCategory("missed_doses", "MEDROBOT", ("MEDROBOT/MISSED_DOSE",), "missed medication robot doses", "missed medication robot dose",
                    "lääkerobotin ottamatta jääneitä annoksia", "lääkerobotin ottamatta jäänyt annos", 1),
    ServiceCategory("assessments", "ASSESSMENT", ("ASSESS/PTA", "ASSESS/HTA"), "service or care need assessments",
                    "service or care need assessment", "palvelu- tai hoidon tarpeen arviointeja", "palvelu- tai hoidon tarpeen arviointi", 1),
    ServiceCategory("childwelfare_notifications", "CHILDWELFARE", ("CHILDWELFARE/NOTIFICATION",), "child welfare notifications",
                    "child welfare notification", "lastensuojeluilmoituksia", "lastensuojeluilmoitus", 1),
    ServiceCategory("antidepressant_dispensings", "MEDICATION", ("MED/ANTIDEPRESSANT",), "antidepressant dispensings",
                    "antidepressant dispensing", "masennuslääketoimituksia", "masennuslääketoimitus", 0),
    # A fee that stops means the co-resident carer stopped (died, moved to care, gave up).
    ServiceCategory("informal_care_fees", "SOCIAL", ("SOCIAL/INFORMAL_CARE_FEE",), "informal care allowance fees",
                    "informal care allowance fee", "omaishoidon tuen hoitopalkkioita", "omaishoidon tuen hoitopalkkio", 0),
    ServiceCategory("alcohol_diagnoses", "DIAGNOSIS", ("ICD10/F10.0", "ICD10/F10.2"), "alcohol use disorder or intoxication diagnoses",
                    "alcohol use disorder or intoxication diagnosis", "alkoholihäiriö- tai alkoholimyrkytysdiagnooseja",
                    "alkoholihäiriö- tai alkoholimyrkytysdiagnoosi", 1),
    ServiceCategory("self_harm_presentations", "DIAGNOSIS", ("ICD10/X84",), "self-harm presentations", "self-harm presentation",
                    "itsensä vahingoittamisen vuoksi tehtyjä käyntejä", "itsensä vahingoittamisen vuoksi tehty käynti", 1),
)
# Chronic condition groups counted by `chronic_conditions` (ever on record before the index time).
CHRONIC_CONDITIONS: dict[str, tuple[str, ...]] = {
    "dementia": ("ICD10/F03", "ICD10/G30"),
    "heart_failure": ("ICD10/I50.9",),
    "copd": ("ICD10/J44.1",),
    "diabetes": ("ICPC2/T90",),
    "hypertension": ("ICPC2/K86",),
    # Childhood-onset conditions a paediatrician counts (they drive children's admissions). Type 1
    # diabetes is its own group: `diabetes` is ICPC-2 T90 (type 2, adult primary care), and one
    # person with both codes would be counted twice as two conditions.
    "asthma": ("ICD10/J45",),
    "epilepsy": ("ICD10/G40",),
    "type1_diabetes": ("ICD10/E10",),
    "cerebral_palsy": ("ICD10/G80",),
}
# Chronic conditions with a "days since last coded" feature: recent coding marks an active phase
# (an exacerbation, seizures, unstable glucose) more than a diagnosis years ago.
CONDITION_RECENCY: tuple[str, ...] = ("asthma", "epilepsy", "type1_diabetes")  # cerebral palsy is static
_CHRONIC_WORDS = {  # en, fi
    "dementia": ("dementia", "Muistisairaus (dementia)"),
    "heart_failure": ("heart failure", "Sydämen vajaatoiminta"),
    "copd": ("COPD", "Keuhkoahtaumatauti"),
    "diabetes": ("diabetes", "Diabetes"),
    "hypertension": ("hypertension", "Verenpainetauti"),
    "asthma": ("asthma", "Astma"),
    "epilepsy": ("epilepsy", "Epilepsia"),
    "type1_diabetes": ("type 1 diabetes", "Tyypin 1 diabetes"),
    "cerebral_palsy": ("cerebral palsy", "CP-oireyhtymä"),
}
RAI_SCALES: dict[str, tuple[str, str, str]] = {  # name -> code, English, Finnish
    "maple": ("RAI/MAPLE", "MAPLe priority level (1-5)", "MAPLe-palvelutarveluokka (1-5)"),
    "cps": ("RAI/CPS", "Cognitive Performance Scale CPS (0-6)", "kognitiivisen suoriutumisen mittari CPS (0-6)"),
    "adlh": ("RAI/ADLH", "ADL hierarchy ADL-H (0-6)", "päivittäisten toimintojen hierarkia ADL-H (0-6)"),
    "chess": ("RAI/CHESS", "health instability CHESS (0-5)", "terveydentilan epävakaus CHESS (0-5)"),
    # IADL reaches the milder end of disability that ADL-H (floor 0) does not; DRS is the only
    # depression measure most home care clients have (few see psychiatry). Both are in every
    # assessment the simulator and the contracts carry.
    "iadl": ("RAI/IADL", "IADL capacity (0-6)", "asioiden hoitamisen kyky IADL (0-6)"),
    "drs": ("RAI/DRS", "Depression Rating Scale DRS (0-14)", "masennusoireasteikko DRS (0-14)"),
    # Living arrangement, caregiver distress and behaviour: what interRAI HC records about the
    # informal support that keeps a client at home (placement predictors beyond need).
    "lives_alone": ("RAI/LIVES_ALONE", "lives alone (0/1)", "asuu yksin (0/1)"),
    "cg_distress": ("RAI/CG_DISTRESS", "caregiver distress (0/1)", "omaishoitajan uupumus (0/1)"),
    "abs": ("RAI/ABS", "Aggressive Behaviour Scale ABS (0-12)", "aggressiivisen käyttäytymisen asteikko ABS (0-12)"),
    # Falls in the 90 days before the assessment (interRAI HC item J1): the falls of clients without
    # fall sensors, whom no alarm records.
    "falls": ("RAI/FALLS", "falls in the last 90 days (0-2, 2: two or more)", "kaatumiset viimeisen 90 päivän aikana (0-2, 2: kaksi tai useampi)"),
}
# Short names of the interRAI items, for the sentences of a missing value ("No interRAI assessment
# of falls on record": the label "falls in the last 90 days (0-2 ...)" would read as "no falls").
_RAI_WORDS: dict[str, tuple[str, str]] = {  # name -> English, Finnish
    "maple": ("MAPLe priority level", "MAPLe-palvelutarveluokka"),
    "cps": ("cognitive performance (CPS)", "kognitiivinen suoriutuminen (CPS)"),
    "adlh": ("ADL hierarchy (ADL-H)", "ADL-hierarkia (ADL-H)"),
    "chess": ("health instability (CHESS)", "terveydentilan epävakaus (CHESS)"),
    "iadl": ("IADL capacity", "IADL-kyky"),
    "drs": ("depression rating (DRS)", "masennusoireet (DRS)"),
    "lives_alone": ("living arrangement", "asumismuoto"),
    "cg_distress": ("caregiver distress", "omaishoitajan uupumus"),
    "abs": ("aggressive behaviour (ABS)", "aggressiivinen käyttäytyminen (ABS)"),
    "falls": ("falls", "kaatumiset"),
}
DEPRESSION_CODES: tuple[str, ...] = ("ICD10/F32.1", "ICD10/F33", "ICPC2/P76")
ANTIDEPRESSANT_GRACE_DAYS = 7  # a refill later than supply end + 7 days counts as a gap
READMISSION_DAYS = 30
FREQUENT_ATTENDER_ER_365D = 4
# Main diagnoses that mark an ER visit as low-acuity (injury, back pain, intoxication) or as an
# acute medical illness (pneumonia, urinary infection); these codes come only from ER visits.
ER_LOW_ACUITY_CODES: tuple[str, ...] = ("ICD10/S93.4", "ICD10/M54.5", "ICD10/F10.0")
ER_MEDICAL_CODES: tuple[str, ...] = ("ICD10/J18.9", "ICD10/N39.0")
INJURY_CODES: tuple[str, ...] = ("ICD10/S06.0", "ICD10/S82.8")  # injuries treated in hospital (not hip fractures)
# Long-term medicines bought at a pharmacy, one code per class (each class has its own refills).
CHRONIC_MEDICATION_CODES: tuple[str, ...] = ("MED/ATC_C", "MED/ATC_R03", "MED/ATC_A10")
CHRONIC_MED_GRACE_DAYS = 14  # a purchase later than supply end + 14 days counts as a refill gap


def _said(*sentences: tuple[float, str, str]) -> tuple[Said, ...]:
    return tuple(Said(float(value), en, fi) for value, en, fi in sentences)


def _num(name, family, unit, direction, en, fi, t_en, t_fi, *, never, decimals=0, codes=(), shown_as="number", said=()):
    return FeatureInfo(name, family, "numeric", unit[0], unit[1], direction, en, fi, t_en, t_fi, never[0], never[1],
                       decimals, None, tuple(codes), shown_as, _said(*said))


def _count(name, family, direction, en, fi, *, many, one, none, never, unit=None, decimals=0, codes=()):
    """A count: `many`, `one` and `none` are (English, Finnish) sentences for other values, 1 and 0."""
    return _num(name, family, unit or COUNT, direction, en, fi, many[0], many[1], never=never, decimals=decimals,
                codes=codes, said=((0, *none), (1, *one)))


def _since(name, family, direction, en, fi, lead, *, never, codes=()):
    """Days since something: "{lead} 12 days ago", "1 day ago", "less than a day ago" (rounds to 0)."""
    lead_en, lead_fi = lead
    return _num(name, family, DAYS, direction, en, fi, f"{lead_en} {{value}} days ago", f"{lead_fi} {{value}} päivää sitten",
                never=never, codes=codes,
                said=((0, f"{lead_en} less than a day ago", f"{lead_fi} alle vuorokausi sitten"),
                      (1, f"{lead_en} {{value}} day ago", f"{lead_fi} {{value}} päivä sitten")))


def _change(name, family, unit, direction, en, fi, t_en, t_fi, *, same, never, decimals=0, codes=(), said=()):
    """A change, written with its sign ("+3", "−2"); `same` is the sentence when it rounds to 0."""
    return _num(name, family, unit, direction, en, fi, t_en, t_fi, never=never, decimals=decimals, codes=codes,
                shown_as="signed", said=((0, *same), *said))


def _flag(name, family, direction, en, fi, *, yes, no, never, codes=()):
    """A 0/1 flag: the template is the sentence when it is set (`yes`), `no` when it is not."""
    return FeatureInfo(name, family, "flag", "yes/no (1/0)", "kyllä/ei (1/0)", direction, en, fi, yes[0], yes[1],
                       never[0], never[1], codes=tuple(codes), no_en=no[0], no_fi=no[1])


COUNT = ("count", "lukumäärä")
DAYS = ("days", "päivää")
SCORE = ("score", "pistettä")


def _demographics() -> list[FeatureInfo]:
    return [
        FeatureInfo("sex", "demographics", "categorical", "category", "luokka", 0, "Sex", "Sukupuoli",
                    "Sex: {value}", "Sukupuoli: {value}", "Sex not recorded", "Sukupuoli ei tiedossa", categories=SEXES,
                    value_words=(("F", "female", "nainen"), ("M", "male", "mies"))),
        FeatureInfo("municipality", "demographics", "categorical", "category", "luokka", 0,
                    "Municipality of residence", "Kotikunta", "Municipality: {value}", "Kotikunta: {value}",
                    "Municipality not known", "Kotikunta ei tiedossa", categories=MUNICIPALITIES,
                    value_words=tuple((m, m, m) for m in MUNICIPALITIES)),  # the same name in both languages
        FeatureInfo("language", "demographics", "categorical", "category", "luokka", 0,
                    "Language of service (fi, sv, other)", "Asiointikieli (fi, sv, muu)",
                    "Language of service: {value}", "Asiointikieli: {value}",
                    "Language of service not known", "Asiointikieli ei tiedossa", categories=LANGUAGES,
                    value_words=(("fi", "Finnish", "suomi"), ("sv", "Swedish", "ruotsi"),
                                 ("other", "other than Finnish or Swedish", "muu kuin suomi tai ruotsi"))),
        _num("age_years", "demographics", ("years", "vuotta"), 1,
             "Age on the index date in completed years (birth month precision)",
             "Ikä indeksipäivänä täysinä vuosina (syntymäkuukauden tarkkuudella)",
             "Age {value} years", "Ikä {value} vuotta", never=("Age not known", "Ikä ei tiedossa"),
             said=((0, "Under 1 year old", "Alle 1-vuotias"), (1, "Age {value} year", "Ikä {value} vuosi"))),
    ]


def _utilisation() -> list[FeatureInfo]:
    rows = []
    for c in SERVICE_CATEGORIES:
        en_cap = c.plural_en[0].upper() + c.plural_en[1:]
        fi_cap = c.partitive_fi[0].upper() + c.partitive_fi[1:]
        for w in WINDOWS_DAYS:
            rows.append(_count(
                f"{c.name}_{w}d", "utilisation", c.direction,
                f"Number of {c.plural_en} in the {w} days up to the index time",
                f"{fi_cap} indeksihetkeä edeltävän {w} päivän aikana (lukumäärä)",
                many=(f"{{value}} {c.plural_en} in the last {w} days", f"{fi_cap} viimeisen {w} päivän aikana: {{value}}"),
                one=(f"{{value}} {c.singular_en} in the last {w} days", f"{{value}} {c.singular_fi} viimeisen {w} päivän aikana"),
                none=(f"No {c.plural_en} in the last {w} days", f"Ei {c.partitive_fi} viimeisen {w} päivän aikana"),
                never=(f"{en_cap} in the last {w} days: not known", f"{fi_cap} viimeisen {w} päivän aikana: ei tiedossa"),
                codes=c.codes))
        rows.append(_since(
            f"{c.name}_days_since", "utilisation", -c.direction,
            f"Days from the last of the {c.plural_en} to the index time (empty if none on record)",
            f"Päiviä viimeisimmästä tapahtumasta ({c.partitive_fi}) indeksihetkeen (tyhjä, jos ei yhtään)",
            (f"Last {c.singular_en}", f"Viimeisin {c.singular_fi}"),
            never=(f"No {c.plural_en} on record", f"Ei {c.partitive_fi} tiedoissa"), codes=c.codes))
        rows.append(_change(
            f"{c.name}_trend", "utilisation", ("count difference", "lukumäärän muutos"), c.direction,
            f"Trend in {c.plural_en}: count in the last {TREND_DAYS} days minus the {TREND_DAYS} days before",
            f"{fi_cap}: viimeisen {TREND_DAYS} päivän määrä miinus sitä edeltävän {TREND_DAYS} päivän määrä",
            f"Change in {c.plural_en}, last {TREND_DAYS} days vs the {TREND_DAYS} days before: {{value}}",
            f"{fi_cap} viimeisen {TREND_DAYS} päivän aikana edeltäviin {TREND_DAYS} päivään verrattuna: {{value}}",
            same=(f"As many {c.plural_en} in the last {TREND_DAYS} days as in the {TREND_DAYS} days before",
                  f"{fi_cap} yhtä monta viimeisen {TREND_DAYS} päivän aikana kuin edeltävän {TREND_DAYS} päivän aikana"),
            never=(f"Change in {c.plural_en}, last {TREND_DAYS} days vs the {TREND_DAYS} days before: not known",
                   f"{fi_cap} viimeisen {TREND_DAYS} päivän aikana edeltäviin {TREND_DAYS} päivään verrattuna: "
                   "muutos ei tiedossa"),
            codes=c.codes))
    return rows


def _cost() -> list[FeatureInfo]:
    return [
        _num("cost_eur_365d", "cost", ("EUR", "euroa"), 1,
             "Cost of all services in the 365 days up to the index time (events' cost_eur)",
             "Kaikkien palvelujen kustannukset indeksihetkeä edeltävän 365 päivän aikana",
             "Services costing {value} in the last 365 days",
             "Palvelujen kustannukset viimeisen 365 päivän aikana: {value}", shown_as="euros",
             never=("Service costs in the last 365 days: not known", "Palvelujen kustannukset viimeisen 365 päivän aikana: ei tiedossa"),
             said=((0, "No service costs in the last 365 days", "Ei palvelukustannuksia viimeisen 365 päivän aikana"),)),
        _count("units_distinct_365d", "cost", 1,
               "Care fragmentation: distinct organisational units with events in the last 365 days",
               "Hoidon pirstaleisuus: eri toimintayksiköiden määrä viimeisen 365 päivän aikana", unit=("units", "yksikköä"),
               many=("Care from {value} different units in the last 365 days", "Palveluja {value} eri yksiköstä viimeisen 365 päivän aikana"),
               one=("Care from {value} unit in the last 365 days", "Palveluja {value} yksiköstä viimeisen 365 päivän aikana"),
               none=("No care from any unit in the last 365 days", "Ei palveluja miltään yksiköltä viimeisen 365 päivän aikana"),
               never=("Number of units giving care in the last 365 days: not known",
                      "Palveluja antaneiden yksiköiden määrä viimeisen 365 päivän aikana: ei tiedossa")),
    ]


def _diagnoses() -> list[FeatureInfo]:
    all_codes = tuple(code for codes in CHRONIC_CONDITIONS.values() for code in codes)
    rows = [_count("chronic_conditions", "diagnoses", 1,
                   "Number of chronic condition groups ever diagnosed (dementia, heart failure, COPD, diabetes, hypertension, "
                   "asthma, epilepsy, type 1 diabetes, cerebral palsy)",
                   "Diagnosoitujen pitkäaikaissairausryhmien määrä (muistisairaus, sydämen vajaatoiminta, keuhkoahtaumatauti, "
                   "diabetes, verenpainetauti, astma, epilepsia, tyypin 1 diabetes, CP-oireyhtymä)",
                   unit=("conditions", "sairautta"),
                   many=("{value} chronic conditions on record", "Pitkäaikaissairauksia tiedoissa: {value}"),
                   one=("{value} chronic condition on record", "{value} pitkäaikaissairaus tiedoissa"),
                   none=("No chronic conditions on record", "Ei pitkäaikaissairauksia tiedoissa"),
                   never=("Number of chronic conditions: not known", "Pitkäaikaissairauksien määrä: ei tiedossa"), codes=all_codes)]
    for name, codes in CHRONIC_CONDITIONS.items():
        en, fi = _CHRONIC_WORDS[name]
        en_cap = en[0].upper() + en[1:]
        rows.append(_flag(f"dx_{name}", "diagnoses", 1,
                          f"A {en} diagnosis on record before the index time",
                          f"{fi}: diagnoosi kirjattu ennen indeksihetkeä",
                          yes=(f"{en_cap} diagnosis on record", f"{fi}: diagnoosi kirjattu"),
                          no=(f"No {en} diagnosis on record", f"{fi}: ei diagnoosia tiedoissa"),
                          never=(f"{en_cap} diagnosis: not known", f"{fi}: diagnoosi ei tiedossa"), codes=codes))
    for name in CONDITION_RECENCY:
        en, fi = _CHRONIC_WORDS[name]
        rows.append(_since(f"dx_{name}_days_since", "diagnoses", -1,
                           f"Days since {en} was last recorded at a visit (empty if never on record)",
                           f"{fi}: päiviä viimeisimmästä kirjauksesta käynnillä (tyhjä, jos ei kirjattu)",
                           (f"{en[0].upper() + en[1:]} last recorded", f"{fi}: kirjattu viimeksi"),
                           never=(f"No {en} on record", f"{fi}: ei kirjauksia"), codes=CHRONIC_CONDITIONS[name]))
    rows.append(_count("hip_fracture_365d", "diagnoses", 1,
                       "Hip fracture diagnoses in the last 365 days", "Lonkkamurtumadiagnoosit viimeisen 365 päivän aikana",
                       many=("{value} hip fracture diagnoses in the last 365 days", "Lonkkamurtumadiagnooseja viimeisen 365 päivän aikana: {value}"),
                       one=("{value} hip fracture diagnosis in the last 365 days", "{value} lonkkamurtumadiagnoosi viimeisen 365 päivän aikana"),
                       none=("No hip fracture diagnoses in the last 365 days", "Ei lonkkamurtumadiagnooseja viimeisen 365 päivän aikana"),
                       never=("Hip fracture diagnoses in the last 365 days: not known",
                              "Lonkkamurtumadiagnooseja viimeisen 365 päivän aikana: ei tiedossa"), codes=("ICD10/S72.0",)))
    rows.append(_count("dx_weakness_365d", "diagnoses", 1,
                       "Weakness or tiredness diagnoses (ICPC2 A04) in the last 365 days",
                       "Heikotus- tai väsymysdiagnoosit (ICPC2 A04) viimeisen 365 päivän aikana",
                       many=("{value} weakness or tiredness diagnoses in the last 365 days",
                             "Heikotus- tai väsymysdiagnooseja viimeisen 365 päivän aikana: {value}"),
                       one=("{value} weakness or tiredness diagnosis in the last 365 days",
                            "{value} heikotus- tai väsymysdiagnoosi viimeisen 365 päivän aikana"),
                       none=("No weakness or tiredness diagnoses in the last 365 days",
                             "Ei heikotus- tai väsymysdiagnooseja viimeisen 365 päivän aikana"),
                       never=("Weakness or tiredness diagnoses in the last 365 days: not known",
                              "Heikotus- tai väsymysdiagnooseja viimeisen 365 päivän aikana: ei tiedossa"), codes=("ICPC2/A04",)))
    rows.append(_count("injury_dx_365d", "diagnoses", 1,
                       "Injury diagnoses treated in hospital (concussion, lower leg fracture) in the last 365 days",
                       "Sairaalassa hoidettujen vammojen diagnoosit (aivotärähdys, säären murtuma) viimeisen 365 päivän aikana",
                       many=("{value} injuries treated in hospital in the last 365 days",
                             "Sairaalassa hoidettuja vammoja viimeisen 365 päivän aikana: {value}"),
                       one=("{value} injury treated in hospital in the last 365 days",
                            "{value} sairaalassa hoidettu vamma viimeisen 365 päivän aikana"),
                       none=("No injuries treated in hospital in the last 365 days",
                             "Ei sairaalassa hoidettuja vammoja viimeisen 365 päivän aikana"),
                       never=("Injuries treated in hospital in the last 365 days: not known",
                              "Sairaalassa hoidettuja vammoja viimeisen 365 päivän aikana: ei tiedossa"), codes=INJURY_CODES))
    # A gap rounds to 0 while the supply lasts or ran out less than half a day ago (supplies are
    # counted in whole days): no gap.
    rows.append(_num("chronic_med_gap_days", "diagnoses", DAYS, 1,
                     "Days without chronic medication (heart, lung or diabetes medicine): the longest of the classes' "
                     "index time minus the end of its last purchased supply, 0 if all covered (empty if never purchased)",
                     "Päiviä ilman pitkäaikaislääkettä (sydän-, keuhko- tai diabeteslääke): pisin lääkeryhmän "
                     "indeksihetki miinus viimeisimmän oston riittävyyden loppu, 0 jos kaikki riittävät (tyhjä, jos ei ostoja)",
                     "Out of a chronic medicine for {value} days", "Pitkäaikaislääke loppunut {value} päivää sitten",
                     never=("No chronic medication purchases on record", "Ei pitkäaikaislääkkeiden ostoja tiedoissa"),
                     said=((0, "No gap in chronic medication supply", "Ei katkosta pitkäaikaislääkkeiden saannissa"),
                           (1, "Out of a chronic medicine for {value} day", "Pitkäaikaislääke loppunut {value} päivä sitten")),
                     codes=CHRONIC_MEDICATION_CODES))
    rows.append(_count("chronic_med_late_refills_365d", "diagnoses", 1,
                       f"Chronic medication purchases in the last 365 days that came more than {CHRONIC_MED_GRACE_DAYS} days "
                       "after the previous supply of the same class ran out",
                       f"Viimeisen 365 päivän pitkäaikaislääkkeiden ostot, jotka tulivat yli {CHRONIC_MED_GRACE_DAYS} päivää "
                       "saman lääkeryhmän edellisen oston loppumisen jälkeen",
                       many=("{value} gaps in chronic medication purchases in the last 365 days",
                             "Katkoksia pitkäaikaislääkkeiden ostoissa viimeisen 365 päivän aikana: {value}"),
                       one=("{value} gap in chronic medication purchases in the last 365 days",
                            "{value} katkos pitkäaikaislääkkeiden ostoissa viimeisen 365 päivän aikana"),
                       none=("No gaps in chronic medication purchases in the last 365 days",
                             "Ei katkoksia pitkäaikaislääkkeiden ostoissa viimeisen 365 päivän aikana"),
                       never=("Gaps in chronic medication purchases in the last 365 days: not known",
                              "Katkoksia pitkäaikaislääkkeiden ostoissa viimeisen 365 päivän aikana: ei tiedossa"),
                       codes=CHRONIC_MEDICATION_CODES))
    return rows


def _hospital() -> list[FeatureInfo]:
    return [
        _count("bed_days_365d", "hospital", 1,
               "Hospital bed days of stays discharged in the last 365 days", "Viimeisen 365 päivän aikana päättyneiden sairaalajaksojen hoitopäivät",
               unit=("days", "hoitopäivää"), decimals=1,
               many=("{value} days in hospital in the last 365 days", "Sairaalahoitopäiviä viimeisen 365 päivän aikana: {value}"),
               one=("{value} day in hospital in the last 365 days", "{value} sairaalahoitopäivä viimeisen 365 päivän aikana"),
               none=("No days in hospital in the last 365 days", "Ei sairaalahoitopäiviä viimeisen 365 päivän aikana"),
               never=("Days in hospital in the last 365 days: not known", "Sairaalahoitopäiviä viimeisen 365 päivän aikana: ei tiedossa"),
               codes=("DISCHARGE",)),
        _num("bed_days_last_stay", "hospital", DAYS, 1,
             "Length of the last completed hospital stay (empty if no stay on record)", "Viimeisimmän päättyneen sairaalajakson pituus (tyhjä, jos ei jaksoja)",
             "The last hospital stay lasted {value} days", "Viimeisin sairaalajakso kesti {value} päivää",
             never=("No hospital stays on record", "Ei sairaalajaksoja tiedoissa"), decimals=1, codes=("DISCHARGE",),
             said=((0, "The last hospital stay lasted less than a day", "Viimeisin sairaalajakso kesti alle vuorokauden"),
                   (1, "The last hospital stay lasted {value} day", "Viimeisin sairaalajakso kesti {value} päivän"))),
        _since("discharge_days_since", "hospital", -1,
               "Days since the last hospital discharge (empty if none on record)", "Päiviä viimeisimmästä sairaalasta kotiutuksesta (tyhjä, jos ei yhtään)",
               ("Discharged from hospital", "Kotiutunut sairaalasta"),
               never=("No hospital discharges on record", "Ei sairaalasta kotiutuksia tiedoissa"), codes=("DISCHARGE",)),
        _flag("discharged_30d", "hospital", 1,
              "Discharged from hospital in the last 30 days", "Kotiutunut sairaalasta viimeisen 30 päivän aikana",
              yes=("Discharged from hospital in the last 30 days", "Kotiutunut sairaalasta viimeisen 30 päivän aikana"),
              no=("Not discharged from hospital in the last 30 days", "Ei kotiutumista sairaalasta viimeisen 30 päivän aikana"),
              never=("Discharge from hospital in the last 30 days: not known",
                     "Kotiutuminen sairaalasta viimeisen 30 päivän aikana: ei tiedossa"),
              codes=("DISCHARGE",)),
        _count("unplanned_readmissions_365d", "hospital", 1,
               f"Unplanned admissions in the last 365 days within {READMISSION_DAYS} days of a previous discharge",
               f"Päivystykselliset sairaalajaksot viimeisen 365 päivän aikana, jotka alkoivat {READMISSION_DAYS} päivän sisällä edellisestä kotiutuksesta",
               many=(f"{{value}} readmissions within {READMISSION_DAYS} days of discharge in the last 365 days",
                     f"Uusintajaksoja ({READMISSION_DAYS} päivän sisällä kotiutuksesta) viimeisen 365 päivän aikana: {{value}}"),
               one=(f"{{value}} readmission within {READMISSION_DAYS} days of discharge in the last 365 days",
                    f"{{value}} uusintajakso ({READMISSION_DAYS} päivän sisällä kotiutuksesta) viimeisen 365 päivän aikana"),
               none=(f"No readmissions within {READMISSION_DAYS} days of discharge in the last 365 days",
                     f"Ei uusintajaksoja ({READMISSION_DAYS} päivän sisällä kotiutuksesta) viimeisen 365 päivän aikana"),
               never=(f"Readmissions within {READMISSION_DAYS} days of discharge in the last 365 days: not known",
                      f"Uusintajaksoja ({READMISSION_DAYS} päivän sisällä kotiutuksesta) viimeisen 365 päivän aikana: ei tiedossa"),
               codes=("ADMIT/UNPLANNED", "DISCHARGE")),
    ]


def _emergency() -> list[FeatureInfo]:
    n = FREQUENT_ATTENDER_ER_365D
    return [
        _count("er_visits_180d", "emergency", 1,
               "Number of emergency department visits in the 180 days up to the index time",
               "Päivystyskäynnit indeksihetkeä edeltävän 180 päivän aikana (lukumäärä)",
               many=("{value} emergency department visits in the last 180 days", "Päivystyskäyntejä viimeisen 180 päivän aikana: {value}"),
               one=("{value} emergency department visit in the last 180 days", "{value} päivystyskäynti viimeisen 180 päivän aikana"),
               none=("No emergency department visits in the last 180 days", "Ei päivystyskäyntejä viimeisen 180 päivän aikana"),
               never=("Emergency department visits in the last 180 days: not known",
                      "Päivystyskäyntejä viimeisen 180 päivän aikana: ei tiedossa"), codes=("ENC/EMERGENCY",)),
        _flag("er_frequent_attender", "emergency", 1,
              f"Frequent attender: at least {n} emergency department visits in the last 365 days",
              f"Päivystyksen suurkäyttäjä: vähintään {n} päivystyskäyntiä viimeisen 365 päivän aikana",
              yes=(f"Frequent emergency department attender ({n} or more visits in the last 365 days)",
                   f"Päivystyksen suurkäyttäjä (vähintään {n} käyntiä viimeisen 365 päivän aikana)"),
              no=(f"Not a frequent emergency department attender (fewer than {n} visits in the last 365 days)",
                  f"Ei päivystyksen suurkäyttäjä (alle {n} käyntiä viimeisen 365 päivän aikana)"),
              never=("Frequent emergency department attendance: not known", "Päivystyksen suurkäyttö: ei tiedossa"),
              codes=("ENC/EMERGENCY",)),
        _count("er_low_acuity_dx_365d", "emergency", 0,
               "Emergency visits in the last 365 days with a low-acuity main diagnosis (ankle sprain, low back pain, alcohol intoxication)",
               "Päivystyskäynnit viimeisen 365 päivän aikana, joiden päädiagnoosi on lievä (nilkan nyrjähdys, alaselkäkipu, alkoholimyrkytys)",
               many=("{value} emergency visits for an injury or minor complaint in the last 365 days",
                     "Päivystyskäyntejä vamman tai lievän vaivan vuoksi viimeisen 365 päivän aikana: {value}"),
               one=("{value} emergency visit for an injury or minor complaint in the last 365 days",
                    "{value} päivystyskäynti vamman tai lievän vaivan vuoksi viimeisen 365 päivän aikana"),
               none=("No emergency visits for an injury or minor complaint in the last 365 days",
                     "Ei päivystyskäyntejä vamman tai lievän vaivan vuoksi viimeisen 365 päivän aikana"),
               never=("Emergency visits for an injury or minor complaint in the last 365 days: not known",
                      "Päivystyskäyntejä vamman tai lievän vaivan vuoksi viimeisen 365 päivän aikana: ei tiedossa"),
               codes=ER_LOW_ACUITY_CODES),
        _count("er_medical_dx_365d", "emergency", 1,
               "Emergency visits in the last 365 days with an acute medical main diagnosis (pneumonia, urinary tract infection)",
               "Päivystyskäynnit viimeisen 365 päivän aikana, joiden päädiagnoosi on äkillinen sisätauti (keuhkokuume, virtsatieinfektio)",
               many=("{value} emergency visits for pneumonia or a urinary infection in the last 365 days",
                     "Päivystyskäyntejä keuhkokuumeen tai virtsatieinfektion vuoksi viimeisen 365 päivän aikana: {value}"),
               one=("{value} emergency visit for pneumonia or a urinary infection in the last 365 days",
                    "{value} päivystyskäynti keuhkokuumeen tai virtsatieinfektion vuoksi viimeisen 365 päivän aikana"),
               none=("No emergency visits for pneumonia or a urinary infection in the last 365 days",
                     "Ei päivystyskäyntejä keuhkokuumeen tai virtsatieinfektion vuoksi viimeisen 365 päivän aikana"),
               never=("Emergency visits for pneumonia or a urinary infection in the last 365 days: not known",
                      "Päivystyskäyntejä keuhkokuumeen tai virtsatieinfektion vuoksi viimeisen 365 päivän aikana: ei tiedossa"),
               codes=ER_MEDICAL_CODES),
    ]


def _homecare() -> list[FeatureInfo]:
    no_visits = ("No home care visits in the last 90 days", "Ei kotihoidon käyntejä viimeisen 90 päivän aikana")
    per_month = ("visits per 30 days", "käyntiä / 30 päivää")
    return [
        _flag("homecare_active", "homecare", 1, "Regular home care running at the index time",
              "Säännöllinen kotihoito käynnissä indeksihetkellä",
              yes=("Regular home care running", "Säännöllinen kotihoito käynnissä"),
              no=("No regular home care running", "Ei säännöllistä kotihoitoa käynnissä"),
              never=("Regular home care: not known", "Säännöllinen kotihoito: ei tiedossa"), codes=("HOMECARE/START", "HOMECARE/END")),
        _num("homecare_days_in_service", "homecare", DAYS, 0,
             "Days since the running home care started (empty if no home care running)",
             "Päiviä käynnissä olevan kotihoidon alkamisesta (tyhjä, jos ei kotihoitoa)",
             "In regular home care for {value} days", "Säännöllisessä kotihoidossa {value} päivää",
             never=("Not in regular home care", "Ei säännöllisessä kotihoidossa"), codes=("HOMECARE/START", "HOMECARE/END"),
             said=((0, "Regular home care started less than a day ago", "Säännöllinen kotihoito alkoi alle vuorokausi sitten"),
                   (1, "In regular home care for {value} day", "Säännöllisessä kotihoidossa {value} päivä"))),
        _count("homecare_visits_per_month", "homecare", 1,
               "Home care visits per 30 days, averaged over the last 90 days", "Kotihoidon käynnit 30 päivää kohden viimeisen 90 päivän keskiarvona",
               unit=per_month, decimals=1,
               many=("{value} home care visits per month", "Kotihoidon käyntejä kuukaudessa: {value}"),
               one=("{value} home care visit per month", "{value} kotihoidon käynti kuukaudessa"), none=no_visits,
               never=("Home care visits per month: not known", "Kotihoidon käyntejä kuukaudessa: ei tiedossa"), codes=("HOMECARE/VISIT",)),
        _change("homecare_visits_per_month_trend", "homecare", per_month, 1,
                "Change in home care visits per 30 days: last 90 days vs the 90 days before",
                "Kotihoidon käyntien muutos 30 päivää kohden: viimeiset 90 päivää vs. edeltävät 90 päivää",
                "Home care visits per month changed by {value} (last 90 days vs the 90 days before)",
                "Kotihoidon käyntimäärä kuukaudessa muuttui (viimeiset 90 päivää vs. edeltävät 90 päivää): {value}",
                same=("Home care visits per month unchanged (last 90 days vs the 90 days before)",
                      "Kotihoidon käyntimäärä kuukaudessa ennallaan (viimeiset 90 päivää vs. edeltävät 90 päivää)"),
                never=("Change in home care visits per month: not known", "Kotihoidon käyntimäärän muutos: ei tiedossa"),
                decimals=1, codes=("HOMECARE/VISIT",)),
        _count("homecare_minutes_30d", "homecare", 1,
               "Total length of home care visits in the last 30 days", "Kotihoidon käyntien yhteiskesto viimeisen 30 päivän aikana",
               unit=("minutes", "minuuttia"),
               many=("{value} minutes of home care in the last 30 days", "Kotihoitoa viimeisen 30 päivän aikana: {value} minuuttia"),
               one=("{value} minute of home care in the last 30 days", "Kotihoitoa viimeisen 30 päivän aikana: {value} minuutti"),
               none=("No minutes of home care recorded in the last 30 days", "Ei kirjattua kotihoitoaikaa viimeisen 30 päivän aikana"),
               never=("Minutes of home care in the last 30 days: not known", "Kotihoidon minuutit viimeisen 30 päivän aikana: ei tiedossa"),
               codes=("HOMECARE/VISIT",)),
        _num("homecare_minutes_per_visit_90d", "homecare", ("minutes", "minuuttia"), 1,
             "Average length of a home care visit in the last 90 days (empty if no visits)",
             "Kotihoidon käynnin keskimääräinen kesto viimeisen 90 päivän aikana (tyhjä, jos ei käyntejä)",
             "Home care visits lasted {value} minutes on average in the last 90 days",
             "Kotihoidon käynnit kestivät viimeisen 90 päivän aikana keskimäärin {value} minuuttia",
             never=no_visits, decimals=1, codes=("HOMECARE/VISIT",),
             said=((0, "No length recorded for the home care visits of the last 90 days",
                    "Viimeisen 90 päivän kotihoidon käynneille ei ole kirjattu kestoa"),
                   (1, "Home care visits lasted {value} minute on average in the last 90 days",
                    "Kotihoidon käynnit kestivät viimeisen 90 päivän aikana keskimäärin {value} minuutin"))),
        _flag("remote_active", "homecare", 0, "Remote (video) home care visits in use", "Kotihoidon etäkäynnit käytössä",
              yes=("Remote (video) home care visits in use", "Kotihoidon etäkäynnit käytössä"),
              no=("No remote (video) home care visits in use", "Ei kotihoidon etäkäyntejä käytössä"),
              never=("Remote home care visits: not known", "Kotihoidon etäkäynnit: ei tiedossa"), codes=("REMOTE/START",)),
        _num("remote_visit_share_90d", "homecare", ("share 0-1", "osuus 0-1"), 0,
             "Share of remote visits among all home care visits in the last 90 days (empty if no visits)",
             "Etäkäyntien osuus kaikista kotihoidon käynneistä viimeisen 90 päivän aikana (tyhjä, jos ei käyntejä)",
             "{value} of home care visits were remote in the last 90 days", "Etäkäyntien osuus kotihoidon käynneistä viimeisen 90 päivän aikana: {value}",
             never=no_visits, shown_as="percent", codes=("REMOTE/VIDEO_VISIT", "HOMECARE/VISIT")),
        _flag("medrobot_active", "homecare", 0, "Medication robot in use", "Lääkerobotti käytössä",
              yes=("Medication robot in use", "Lääkerobotti käytössä"), no=("No medication robot in use", "Ei lääkerobottia käytössä"),
              never=("Medication robot: not known", "Lääkerobotti: ei tiedossa"), codes=("MEDROBOT/START",)),
        _num("medrobot_missed_dose_rate_30d", "homecare", ("share 0-1", "osuus 0-1"), 1,
             "Missed medication robot doses / all due doses in the last 30 days (empty if no robot events)",
             "Lääkerobotin ottamatta jääneet annokset / kaikki annokset viimeisen 30 päivän aikana (tyhjä, jos ei tapahtumia)",
             "{value} of medication robot doses missed in the last 30 days", "Lääkerobotin annoksista jäi ottamatta viimeisen 30 päivän aikana: {value}",
             never=("No medication robot doses in the last 30 days", "Ei lääkerobotin annoksia viimeisen 30 päivän aikana"),
             shown_as="percent", codes=("MEDROBOT/MISSED_DOSE", "MEDROBOT/DISPENSE")),
        _flag("rehab_active", "homecare", 0, "Home rehabilitation running at the index time",
              "Kotikuntoutus käynnissä indeksihetkellä",
              yes=("Home rehabilitation running", "Kotikuntoutus käynnissä"),
              no=("No home rehabilitation running", "Ei kotikuntoutusta käynnissä"),
              never=("Home rehabilitation: not known", "Kotikuntoutus: ei tiedossa"), codes=("REHAB/START", "REHAB/END")),
    ]


# interRAI items coded 0/1 or 0-2 read as words, not as "lives alone (0/1): 1".
_AT_LAST = ("at the last interRAI assessment", "viimeisimmässä interRAI-arviossa")
_SINCE_PREVIOUS = ("since the previous interRAI assessment", "edellisen interRAI-arvion jälkeen")
_RAI_SAID: dict[str, tuple[tuple[tuple[float, str, str], ...], tuple[tuple[float, str, str], ...]]] = {  # name -> last, change
    "lives_alone": (
        ((0, f"Not living alone {_AT_LAST[0]}", f"Ei asunut yksin {_AT_LAST[1]}"),
         (1, f"Living alone {_AT_LAST[0]}", f"Asui yksin {_AT_LAST[1]}")),
        ((0, f"Living arrangement unchanged {_SINCE_PREVIOUS[0]}", f"Asumismuoto ennallaan {_SINCE_PREVIOUS[1]}"),
         (1, f"Started living alone {_SINCE_PREVIOUS[0]}", f"Alkanut asua yksin {_SINCE_PREVIOUS[1]}"),
         (-1, f"No longer living alone {_SINCE_PREVIOUS[0]}", f"Ei enää asu yksin {_SINCE_PREVIOUS[1]}")),
    ),
    "cg_distress": (
        ((0, f"No caregiver distress {_AT_LAST[0]}", f"Ei omaishoitajan uupumusta {_AT_LAST[1]}"),
         (1, f"Caregiver distress {_AT_LAST[0]}", f"Omaishoitajan uupumus {_AT_LAST[1]}")),
        ((0, f"Caregiver distress unchanged {_SINCE_PREVIOUS[0]}", f"Omaishoitajan uupumus ennallaan {_SINCE_PREVIOUS[1]}"),
         (1, f"Caregiver distress appeared {_SINCE_PREVIOUS[0]}", f"Omaishoitajan uupumus ilmaantunut {_SINCE_PREVIOUS[1]}"),
         (-1, f"Caregiver distress no longer recorded {_SINCE_PREVIOUS[0]}",
          f"Omaishoitajan uupumusta ei enää kirjattu {_SINCE_PREVIOUS[1]}")),
    ),
    "falls": (
        ((0, "No falls in the 90 days before the last interRAI assessment",
          "Ei kaatumisia viimeisintä interRAI-arviota edeltäneiden 90 päivän aikana"),
         (1, "One fall in the 90 days before the last interRAI assessment",
          "Yksi kaatuminen viimeisintä interRAI-arviota edeltäneiden 90 päivän aikana"),
         (2, "Two or more falls in the 90 days before the last interRAI assessment",
          "Kaksi tai useampia kaatumisia viimeisintä interRAI-arviota edeltäneiden 90 päivän aikana")),
        (),
    ),
}


def _assessments() -> list[FeatureInfo]:
    rows = []
    for name, (code, en, fi) in RAI_SCALES.items():
        short_en, short_fi = _RAI_WORDS[name]
        last_said, change_said = _RAI_SAID.get(name, ((), ()))
        rows.append(_num(f"rai_{name}_last", "assessments", SCORE, 1,
                         f"Last interRAI {en} (empty if never assessed)", f"Viimeisin interRAI {fi} (tyhjä, jos ei arviota)",
                         f"Last interRAI {en}: {{value}}", f"Viimeisin interRAI {fi}: {{value}}",
                         never=(f"No interRAI assessment of {short_en} on record", f"Ei interRAI-arviota tiedoissa: {short_fi}"),
                         codes=(code,), said=last_said))
        unchanged = (0, f"interRAI {en} unchanged since the previous assessment", f"interRAI {fi} ennallaan edelliseen arvioon verrattuna")
        rows.append(_change(f"rai_{name}_change", "assessments", SCORE, 1,
                            f"Change in interRAI {en} between the last two assessments (empty if fewer than two)",
                            f"Muutos interRAI {fi} kahden viimeisimmän arvion välillä (tyhjä, jos alle kaksi arviota)",
                            f"interRAI {en} changed by {{value}} since the previous assessment",
                            f"interRAI {fi} muuttui edellisestä arviosta: {{value}}",
                            same=(change_said or (unchanged,))[0][1:],
                            never=(f"Fewer than two interRAI assessments of {short_en}", f"Alle kaksi interRAI-arviota: {short_fi}"),
                            codes=(code,), said=change_said[1:]))
    rows.append(_since("rai_days_since", "assessments", 0,
                       "Days since the last interRAI assessment (any of its scales; empty if none)",
                       "Päiviä viimeisimmästä interRAI-arviosta (mikä tahansa asteikko; tyhjä, jos ei arviota)",
                       ("Last interRAI assessment", "Viimeisin interRAI-arvio"),
                       never=("No interRAI assessment on record", "Ei interRAI-arviota tiedoissa"),
                       codes=tuple(code for code, _, _ in RAI_SCALES.values())))
    return rows


def _child_welfare() -> list[FeatureInfo]:
    return [
        _flag("childwelfare_open_care_active", "child_welfare", 1, "Child welfare open care running at the index time",
              "Lastensuojelun avohuolto käynnissä indeksihetkellä",
              yes=("Child welfare open care running", "Lastensuojelun avohuolto käynnissä"),
              no=("No child welfare open care running", "Ei lastensuojelun avohuoltoa käynnissä"),
              never=("Child welfare open care: not known", "Lastensuojelun avohuolto: ei tiedossa"),
              codes=("CHILDWELFARE/OPEN_CARE_START", "CHILDWELFARE/OPEN_CARE_END")),
        _count("childwelfare_placements_365d", "child_welfare", 1, "Placements outside the home in the last 365 days",
               "Kodin ulkopuoliset sijoitukset viimeisen 365 päivän aikana",
               many=("{value} placements outside the home in the last 365 days",
                     "Kodin ulkopuolisia sijoituksia viimeisen 365 päivän aikana: {value}"),
               one=("{value} placement outside the home in the last 365 days",
                    "{value} kodin ulkopuolinen sijoitus viimeisen 365 päivän aikana"),
               none=("No placements outside the home in the last 365 days",
                     "Ei kodin ulkopuolisia sijoituksia viimeisen 365 päivän aikana"),
               never=("Placements outside the home in the last 365 days: not known",
                      "Kodin ulkopuolisia sijoituksia viimeisen 365 päivän aikana: ei tiedossa"),
               codes=("CHILDWELFARE/PLACEMENT",)),
        _flag("childwelfare_placed_ever", "child_welfare", 1, "Ever placed outside the home (on record)",
              "Sijoitettu kodin ulkopuolelle joskus (tiedoissa)",
              yes=("Placed outside the home at some time (on record)", "Sijoitettu joskus kodin ulkopuolelle (tiedoissa)"),
              no=("No placement outside the home on record", "Ei kodin ulkopuolisia sijoituksia tiedoissa"),
              never=("Placement outside the home: not known", "Kodin ulkopuolinen sijoitus: ei tiedossa"),
              codes=("CHILDWELFARE/PLACEMENT",)),
    ]


def _mental_health() -> list[FeatureInfo]:
    fewer_than_two = ("Fewer than two PHQ-9 measurements", "Alle kaksi PHQ-9-mittausta")
    no_phq9 = ("No PHQ-9 on record", "Ei PHQ-9-mittausta tiedoissa")
    return [
        _num("phq9_last", "mental_health", SCORE, 1, "Last PHQ-9 score (0-27; empty if never measured)",
             "Viimeisin PHQ-9-pistemäärä (0-27; tyhjä, jos ei mittausta)", "Last PHQ-9 score {value}", "Viimeisin PHQ-9-pistemäärä {value}",
             never=no_phq9, codes=("PHQ9",)),
        _change("phq9_change", "mental_health", SCORE, 1, "PHQ-9 change between the last two measurements (empty if fewer than two)",
                "PHQ-9-muutos kahden viimeisimmän mittauksen välillä (tyhjä, jos alle kaksi)",
                "PHQ-9 changed by {value} points between the last two measurements",
                "PHQ-9-pistemäärä muuttui kahden viimeisimmän mittauksen välillä: {value}",
                same=("PHQ-9 unchanged between the last two measurements", "PHQ-9-pistemäärä ennallaan kahden viimeisimmän mittauksen välillä"),
                said=((1, "PHQ-9 changed by {value} point between the last two measurements",
                       "PHQ-9-pistemäärä muuttui kahden viimeisimmän mittauksen välillä: {value}"),
                      (-1, "PHQ-9 changed by {value} point between the last two measurements",
                       "PHQ-9-pistemäärä muuttui kahden viimeisimmän mittauksen välillä: {value}")),
                never=fewer_than_two, codes=("PHQ9",)),
        _change("phq9_slope_per_30d", "mental_health", ("points per 30 days", "pistettä / 30 päivää"), 1,
                "PHQ-9 slope between the last two measurements, points per 30 days (empty if fewer than two)",
                "PHQ-9:n muutosnopeus kahden viimeisimmän mittauksen välillä, pistettä 30 päivässä (tyhjä, jos alle kaksi)",
                "PHQ-9 changing by {value} points per month", "PHQ-9-pistemäärän muutos kuukaudessa: {value} pistettä",
                same=("PHQ-9 steady between the last two measurements", "PHQ-9-pistemäärä pysynyt ennallaan kahden viimeisimmän mittauksen välillä"),
                said=((1, "PHQ-9 changing by {value} point per month", "PHQ-9-pistemäärän muutos kuukaudessa: {value} piste"),
                      (-1, "PHQ-9 changing by {value} point per month", "PHQ-9-pistemäärän muutos kuukaudessa: {value} piste")),
                never=fewer_than_two, decimals=1, codes=("PHQ9",)),
        _since("phq9_days_since", "mental_health", 0, "Days since the last PHQ-9 (empty if never measured)",
               "Päiviä viimeisimmästä PHQ-9-mittauksesta (tyhjä, jos ei mittausta)", ("Last PHQ-9 measured", "Viimeisin PHQ-9-mittaus"),
               never=no_phq9, codes=("PHQ9",)),
        _since("depression_dx_days_since", "mental_health", -1,
               "Days since the last depression diagnosis (F32.1, F33, P76; empty if none on record)",
               "Päiviä viimeisimmästä masennusdiagnoosista (F32.1, F33, P76; tyhjä, jos ei diagnoosia)",
               ("Last depression diagnosis", "Viimeisin masennusdiagnoosi"),
               never=("No depression diagnosis on record", "Ei masennusdiagnoosia tiedoissa"), codes=DEPRESSION_CODES),
        # A gap rounds to 0 while the supply lasts or ran out less than half a day ago: no gap.
        _num("antidepressant_gap_days", "mental_health", DAYS, 1,
             "Days without antidepressant supply: index time minus the end of the last dispensed supply, 0 if covered (empty if never dispensed)",
             "Päiviä ilman masennuslääkettä: indeksihetki miinus viimeisimmän toimituksen riittävyyden loppu, 0 jos riittää (tyhjä, jos ei toimituksia)",
             "Out of antidepressants for {value} days", "Masennuslääke loppunut {value} päivää sitten",
             never=("No antidepressants dispensed on record", "Ei masennuslääketoimituksia tiedoissa"),
             said=((0, "No gap in antidepressant supply", "Ei katkosta masennuslääkkeen saannissa"),
                   (1, "Out of antidepressants for {value} day", "Masennuslääke loppunut {value} päivä sitten")),
             codes=("MED/ANTIDEPRESSANT",)),
        _count("antidepressant_late_refills_365d", "mental_health", 1,
               f"Antidepressant dispensings in the last 365 days that came more than {ANTIDEPRESSANT_GRACE_DAYS} days after the previous supply ran out",
               f"Viimeisen 365 päivän masennuslääketoimitukset, jotka tulivat yli {ANTIDEPRESSANT_GRACE_DAYS} päivää edellisen toimituksen loppumisen jälkeen",
               many=("{value} gaps in antidepressant dispensing in the last 365 days",
                     "Katkoksia masennuslääkkeen toimituksissa viimeisen 365 päivän aikana: {value}"),
               one=("{value} gap in antidepressant dispensing in the last 365 days",
                    "{value} katkos masennuslääkkeen toimituksissa viimeisen 365 päivän aikana"),
               none=("No gaps in antidepressant dispensing in the last 365 days",
                     "Ei katkoksia masennuslääkkeen toimituksissa viimeisen 365 päivän aikana"),
               never=("Gaps in antidepressant dispensing in the last 365 days: not known",
                      "Katkoksia masennuslääkkeen toimituksissa viimeisen 365 päivän aikana: ei tiedossa"),
               codes=("MED/ANTIDEPRESSANT",)),
    ]


# What a reason's heading says: one family's features summed (explain/reasons.py), in both languages.
FAMILY_WORDS: dict[str, tuple[str, str]] = {  # family -> (English, Finnish)
    "demographics": ("Age and background", "Ikä ja taustatiedot"),
    "utilisation": ("Use of services", "Palvelujen käyttö"),
    "cost": ("Service costs", "Palvelujen kustannukset"),
    "diagnoses": ("Diagnoses and medication", "Diagnoosit ja lääkitys"),
    "hospital": ("Hospital stays", "Sairaalajaksot"),
    "emergency": ("Emergency care", "Päivystys"),
    "homecare": ("Home care", "Kotihoito"),
    "assessments": ("interRAI assessments", "interRAI-arvioinnit"),
    "child_welfare": ("Child welfare", "Lastensuojelu"),
    "mental_health": ("Mental health", "Mielenterveys"),
}


# Families that describe who the customer is (age, sex, municipality, language) and what their
# services cost as a whole. They move a model's risk, but a nurse can act on none of them, and
# "high service cost lowers the risk" read as a cause misleads: reasons come from the other
# families (services, events, diagnoses, assessments); these are shown beside them as context.
BACKGROUND_FAMILIES: frozenset[str] = frozenset({"demographics", "cost"})


def is_background(family: str) -> bool:
    """Whether a family is context (who the customer is), never a reason to act on."""
    if family not in FAMILY_WORDS:
        raise KeyError(f"unknown feature family {family!r}")
    return family in BACKGROUND_FAMILIES


def family_words(family: str, lang: str) -> str:
    """A feature family's name in Finnish or English (every family has both; tested)."""
    en, fi = FAMILY_WORDS[family]
    return fi if lang == "fi" else en


_BUILDERS = {
    "demographics": _demographics,
    "utilisation": _utilisation,
    "cost": _cost,
    "diagnoses": _diagnoses,
    "hospital": _hospital,
    "emergency": _emergency,
    "homecare": _homecare,
    "assessments": _assessments,
    "child_welfare": _child_welfare,
    "mental_health": _mental_health,
}


@lru_cache(maxsize=1)
def catalogue() -> tuple[FeatureInfo, ...]:
    """Every feature, grouped by family in a fixed order (the order of feature columns)."""
    entries = tuple(entry for build in _BUILDERS.values() for entry in build())
    names = [e.name for e in entries]
    if len(names) != len(set(names)):
        raise RuntimeError("feature catalogue has duplicate names")
    return entries


def feature_info(name: str) -> FeatureInfo:
    return _by_name()[name]


@lru_cache(maxsize=1)
def _by_name() -> dict[str, FeatureInfo]:
    return {e.name: e for e in catalogue()}

