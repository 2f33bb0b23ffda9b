"""The feature catalogue: every feature's meaning, unit, expected direction and plain language.

Explanations read it to turn SHAP values into sentences ("5 emergency department visits in the
last 90 days"), `sote-risk features describe` prints it, and a test fails if a produced feature
has no entry. Entries are declared as data below; the utilisation family is expanded from one
row per service category (its codes, service area and nouns) times the windows, so the wording
of 95 similar features stays consistent.

Missing values. `NaN` means "never / not applicable" (no such event on record before the index
time, fewer than two measurements for a change, no denominator for a share). LightGBM routes NaN
to the learned side of every split, so "never" is a value of its own instead of a fake large
number. Every feature that can be NaN has a `never_en` / `never_fi` sentence for explanations.
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
class FeatureInfo:
    """One feature. `direction`: +1 risk expected to rise with the value, -1 to fall, 0 unknown.

    `kind`: numeric (float64), flag (float64 0/1) or categorical (pandas category with
    `categories` fixed here). Templates contain `{value}`; `decimals` says how to round it.
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


@dataclass(frozen=True)
class ServiceCategory:
    """A utilisation category: key codes of one catalogue service area, with its nouns."""

    name: str
    service_area: str
    codes: tuple[str, ...]
    plural_en: str  # "emergency department visits"
    partitive_fi: str  # "päivystyskäyntejä" (Finnish partitive plural, used after numbers)
    direction: int


SERVICE_CATEGORIES: tuple[ServiceCategory, ...] = (
    ServiceCategory("er_visits", "EMERGENCY", ("ENC/EMERGENCY",), "emergency department visits", "päivystyskäyntejä", 1),
    ServiceCategory("paramedic_contacts", "EMERGENCY", ("ENC/PARAMEDIC",), "paramedic contacts without transport", "ensihoidon kohtaamisia ilman kuljetusta", 1),
    ServiceCategory("primary_visits", "PRIMARY", ("ENC/HC_DOCTOR", "ENC/HC_NURSE", "ENC/HC_REMOTE"), "health centre contacts", "terveyskeskuskäyntejä tai -yhteydenottoja", 1),
    ServiceCategory("missed_appointments", "PRIMARY", ("ENC/MISSED_APPOINTMENT",), "missed appointments", "käyttämättä jääneitä vastaanottoaikoja", 1),
    ServiceCategory("psychiatry_visits", "MENTAL", ("ENC/PSYCHIATRY",), "psychiatric outpatient visits", "psykiatrian avohoitokäyntejä", 1),
    ServiceCategory("crisis_contacts", "MENTAL", ("ENC/CRISIS",), "mental health crisis contacts", "mielenterveyden kriisikäyntejä", 1),
    ServiceCategory("child_health_visits", "CHILDHEALTH", ("ENC/CHILD_HEALTH",), "child health clinic visits", "lastenneuvolakäyntejä", 0),
    ServiceCategory("school_health_visits", "CHILDHEALTH", ("ENC/SCHOOL_HEALTH",), "school health care visits", "kouluterveydenhuollon käyntejä", 0),
    ServiceCategory("unplanned_admissions", "HOSPITAL", ("ADMIT/UNPLANNED",), "unplanned hospital admissions", "päivystyksellisiä sairaalajaksoja", 1),
    ServiceCategory("planned_admissions", "HOSPITAL", ("ADMIT/PLANNED",), "planned hospital admissions", "suunniteltuja sairaalajaksoja", 1),
    ServiceCategory("homecare_visits", "HOMECARE", ("HOMECARE/VISIT",), "home care visits", "kotihoidon käyntejä", 1),
    ServiceCategory("remote_visits", "REMOTE", ("REMOTE/VIDEO_VISIT",), "remote (video) home care visits", "kotihoidon etäkäyntejä", 0),
    ServiceCategory("rehab_visits", "REHAB", ("REHAB/VISIT",), "home rehabilitation visits", "kotikuntoutuskäyntejä", 0),
    ServiceCategory("fall_alarms", "IOT", ("IOT/FALL_ALARM",), "fall alarms", "kaatumishälytyksiä", 1),
    ServiceCategory("inactivity_alarms", "IOT", ("IOT/INACTIVITY_ALARM",), "inactivity alarms", "liikkumattomuushälytyksiä", 1),
    ServiceCategory("missed_doses", "MEDROBOT", ("MEDROBOT/MISSED_DOSE",), "missed medication robot doses", "lääkerobotin ottamatta jääneitä annoksia", 1),
    ServiceCategory("assessments", "ASSESSMENT", ("ASSESS/PTA", "ASSESS/HTA"), "service or care need assessments", "palvelu- tai hoidon tarpeen arviointeja", 1),
    ServiceCategory("childwelfare_notifications", "CHILDWELFARE", ("CHILDWELFARE/NOTIFICATION",), "child welfare notifications", "lastensuojeluilmoituksia", 1),
    ServiceCategory("antidepressant_dispensings", "MEDICATION", ("MED/ANTIDEPRESSANT",), "antidepressant dispensings", "masennuslääketoimituksia", 0),
    # A fee that stops means the co-resident carer stopped (died, moved to care, gave up).
    ServiceCategory("informal_care_fees", "SOCIAL", ("SOCIAL/INFORMAL_CARE_FEE",), "informal care allowance fees", "omaishoidon tuen hoitopalkkioita", 0),
    ServiceCategory("alcohol_diagnoses", "DIAGNOSIS", ("ICD10/F10.0", "ICD10/F10.2"), "alcohol use disorder or intoxication diagnoses", "alkoholihäiriö- tai alkoholimyrkytysdiagnooseja", 1),
    ServiceCategory("self_harm_presentations", "DIAGNOSIS", ("ICD10/X84",), "self-harm presentations", "itsensä vahingoittamisen vuoksi tehtyjä käyntejä", 1),
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


def _num(name, family, unit, direction, en, fi, t_en, t_fi, never=None, decimals=0, codes=()):
    never_en, never_fi = never if never else (None, None)
    return FeatureInfo(name, family, "numeric", unit[0], unit[1], direction, en, fi, t_en, t_fi,
                       never_en, never_fi, decimals, None, tuple(codes))


def _flag(name, family, direction, en, fi, t_en, t_fi, codes=()):
    return FeatureInfo(name, family, "flag", "yes/no (1/0)", "kyllä/ei (1/0)", direction, en, fi, t_en, t_fi,
                       codes=tuple(codes))


COUNT = ("count", "lukumäärä")
DAYS = ("days", "päivää")
SCORE = ("score", "pistettä")


def _demographics() -> list[FeatureInfo]:
    return [
        FeatureInfo("sex", "demographics", "categorical", "category", "luokka", 0, "Sex", "Sukupuoli",
                    "Sex: {value}", "Sukupuoli: {value}", categories=SEXES),
        FeatureInfo("municipality", "demographics", "categorical", "category", "luokka", 0,
                    "Municipality of residence", "Kotikunta", "Municipality: {value}", "Kotikunta: {value}",
                    categories=MUNICIPALITIES),
        FeatureInfo("language", "demographics", "categorical", "category", "luokka", 0,
                    "Language of service (fi, sv, other)", "Asiointikieli (fi, sv, muu)",
                    "Language of service: {value}", "Asiointikieli: {value}", categories=LANGUAGES),
        _num("age_years", "demographics", ("years", "vuotta"), 1,
             "Age on the index date in completed years (birth month precision)",
             "Ikä indeksipäivänä täysinä vuosina (syntymäkuukauden tarkkuudella)",
             "Age {value} years", "Ikä {value} vuotta"),
    ]


def _utilisation() -> list[FeatureInfo]:
    rows = []
    for c in SERVICE_CATEGORIES:
        fi_cap = c.partitive_fi[0].upper() + c.partitive_fi[1:]
        for w in WINDOWS_DAYS:
            rows.append(_num(
                f"{c.name}_{w}d", "utilisation", COUNT, c.direction,
                f"Number of {c.plural_en} in the {w} days up to the index time",
                f"{fi_cap} indeksihetkeä edeltävän {w} päivän aikana (lukumäärä)",
                f"{{value}} {c.plural_en} in the last {w} days",
                f"{fi_cap} viimeisen {w} päivän aikana: {{value}}", codes=c.codes))
        rows.append(_num(
            f"{c.name}_days_since", "utilisation", DAYS, -c.direction,
            f"Days from the last of the {c.plural_en} to the index time (NaN: none on record)",
            f"Päiviä viimeisimmästä tapahtumasta ({c.partitive_fi}) indeksihetkeen (NaN: ei yhtään)",
            f"Last of the {c.plural_en} {{value}} days ago",
            f"{fi_cap}: viimeisin {{value}} päivää sitten",
            never=(f"No {c.plural_en} on record", f"Ei {c.partitive_fi} tiedoissa"), codes=c.codes))
        rows.append(_num(
            f"{c.name}_trend", "utilisation", ("count difference", "lukumäärän muutos"), c.direction,
            f"Trend in {c.plural_en}: count in the last {TREND_DAYS} days minus the {TREND_DAYS} days before",
            f"{fi_cap}: viimeisen {TREND_DAYS} päivän määrä miinus sitä edeltävän {TREND_DAYS} päivän määrä",
            f"Change in {c.plural_en}, last {TREND_DAYS} days vs the {TREND_DAYS} days before: {{value}}",
            f"{fi_cap}: muutos viimeiset {TREND_DAYS} päivää vs. edeltävät {TREND_DAYS} päivää {{value}}",
            codes=c.codes))
    return rows


def _cost() -> list[FeatureInfo]:
    return [
        _num("cost_eur_365d", "cost", ("EUR", "euroa"), 1,
             "Cost of all services in the 365 days up to the index time (events' cost_eur)",
             "Kaikkien palvelujen kustannukset indeksihetkeä edeltävän 365 päivän aikana",
             "Services costing {value} EUR in the last 365 days",
             "Palvelujen kustannukset viimeisen 365 päivän aikana: {value} euroa"),
        _num("units_distinct_365d", "cost", ("units", "yksikköä"), 1,
             "Care fragmentation: distinct organisational units with events in the last 365 days",
             "Hoidon pirstaleisuus: eri toimintayksiköiden määrä viimeisen 365 päivän aikana",
             "Care from {value} different units in the last 365 days",
             "Palveluja {value} eri yksiköstä viimeisen 365 päivän aikana"),
    ]


def _diagnoses() -> list[FeatureInfo]:
    all_codes = tuple(code for codes in CHRONIC_CONDITIONS.values() for code in codes)
    rows = [_num("chronic_conditions", "diagnoses", ("conditions", "sairautta"), 1,
                 "Number of chronic condition groups ever diagnosed (dementia, heart failure, COPD, diabetes, hypertension, "
                 "asthma, epilepsy, type 1 diabetes, cerebral palsy)",
                 "Diagnosoitujen pitkäaikaissairausryhmien määrä (muistisairaus, sydämen vajaatoiminta, keuhkoahtaumatauti, "
                 "diabetes, verenpainetauti, astma, epilepsia, tyypin 1 diabetes, CP-oireyhtymä)",
                 "{value} chronic conditions on record", "Pitkäaikaissairauksia tiedoissa: {value}", codes=all_codes)]
    for name, codes in CHRONIC_CONDITIONS.items():
        en, fi = _CHRONIC_WORDS[name]
        rows.append(_flag(f"dx_{name}", "diagnoses", 1,
                          f"A {en} diagnosis on record before the index time",
                          f"{fi}: diagnoosi kirjattu ennen indeksihetkeä",
                          f"{en[0].upper() + en[1:]} diagnosis on record: {{value}}",
                          f"{fi}: diagnoosi kirjattu {{value}}", codes=codes))
    for name in CONDITION_RECENCY:
        en, fi = _CHRONIC_WORDS[name]
        rows.append(_num(f"dx_{name}_days_since", "diagnoses", DAYS, -1,
                         f"Days since {en} was last recorded at a visit (NaN: never on record)",
                         f"{fi}: päiviä viimeisimmästä kirjauksesta käynnillä (NaN: ei kirjattu)",
                         f"{en[0].upper() + en[1:]} last recorded {{value}} days ago",
                         f"{fi}: kirjattu viimeksi {{value}} päivää sitten",
                         never=(f"No {en} on record", f"{fi}: ei kirjauksia"), codes=CHRONIC_CONDITIONS[name]))
    rows.append(_num("hip_fracture_365d", "diagnoses", COUNT, 1,
                     "Hip fracture diagnoses in the last 365 days", "Lonkkamurtumadiagnoosit viimeisen 365 päivän aikana",
                     "{value} hip fracture diagnoses in the last 365 days",
                     "Lonkkamurtumadiagnooseja viimeisen 365 päivän aikana: {value}", codes=("ICD10/S72.0",)))
    rows.append(_num("dx_weakness_365d", "diagnoses", COUNT, 1,
                     "Weakness or tiredness diagnoses (ICPC2 A04) in the last 365 days",
                     "Heikotus- tai väsymysdiagnoosit (ICPC2 A04) viimeisen 365 päivän aikana",
                     "{value} weakness or tiredness diagnoses in the last 365 days",
                     "Heikotus- tai väsymysdiagnooseja viimeisen 365 päivän aikana: {value}", codes=("ICPC2/A04",)))
    rows.append(_num("injury_dx_365d", "diagnoses", COUNT, 1,
                     "Injury diagnoses treated in hospital (concussion, lower leg fracture) in the last 365 days",
                     "Sairaalassa hoidettujen vammojen diagnoosit (aivotärähdys, säären murtuma) viimeisen 365 päivän aikana",
                     "{value} injuries treated in hospital in the last 365 days",
                     "Sairaalassa hoidettuja vammoja viimeisen 365 päivän aikana: {value}", codes=INJURY_CODES))
    rows.append(_num("chronic_med_gap_days", "diagnoses", DAYS, 1,
                     "Days without chronic medication (heart, lung or diabetes medicine): the longest of the classes' "
                     "index time minus the end of its last purchased supply, 0 if all covered (NaN: never purchased)",
                     "Päiviä ilman pitkäaikaislääkettä (sydän-, keuhko- tai diabeteslääke): pisin lääkeryhmän "
                     "indeksihetki miinus viimeisimmän oston riittävyyden loppu, 0 jos kaikki riittävät (NaN: ei ostoja)",
                     "Out of a chronic medicine for {value} days", "Pitkäaikaislääke loppunut {value} päivää sitten",
                     never=("No chronic medication purchases on record", "Ei pitkäaikaislääkkeiden ostoja tiedoissa"),
                     codes=CHRONIC_MEDICATION_CODES))
    rows.append(_num("chronic_med_late_refills_365d", "diagnoses", COUNT, 1,
                     f"Chronic medication purchases in the last 365 days that came more than {CHRONIC_MED_GRACE_DAYS} days "
                     "after the previous supply of the same class ran out",
                     f"Viimeisen 365 päivän pitkäaikaislääkkeiden ostot, jotka tulivat yli {CHRONIC_MED_GRACE_DAYS} päivää "
                     "saman lääkeryhmän edellisen oston loppumisen jälkeen",
                     "{value} gaps in chronic medication purchases in the last 365 days",
                     "Katkoksia pitkäaikaislääkkeiden ostoissa viimeisen 365 päivän aikana: {value}",
                     codes=CHRONIC_MEDICATION_CODES))
    return rows


def _hospital() -> list[FeatureInfo]:
    return [
        _num("bed_days_365d", "hospital", ("days", "hoitopäivää"), 1,
             "Hospital bed days of stays discharged in the last 365 days", "Viimeisen 365 päivän aikana päättyneiden sairaalajaksojen hoitopäivät",
             "{value} days in hospital in the last 365 days", "Sairaalahoitopäiviä viimeisen 365 päivän aikana: {value}",
             decimals=1, codes=("DISCHARGE",)),
        _num("bed_days_last_stay", "hospital", DAYS, 1,
             "Length of the last completed hospital stay (NaN: no stay on record)", "Viimeisimmän päättyneen sairaalajakson pituus (NaN: ei jaksoja)",
             "The last hospital stay lasted {value} days", "Viimeisin sairaalajakso kesti {value} päivää",
             never=("No hospital stays on record", "Ei sairaalajaksoja tiedoissa"), decimals=1, codes=("DISCHARGE",)),
        _num("discharge_days_since", "hospital", DAYS, -1,
             "Days since the last hospital discharge (NaN: none on record)", "Päiviä viimeisimmästä sairaalasta kotiutuksesta (NaN: ei yhtään)",
             "Discharged from hospital {value} days ago", "Kotiutunut sairaalasta {value} päivää sitten",
             never=("No hospital discharges on record", "Ei sairaalasta kotiutuksia tiedoissa"), codes=("DISCHARGE",)),
        _flag("discharged_30d", "hospital", 1,
              "Discharged from hospital in the last 30 days", "Kotiutunut sairaalasta viimeisen 30 päivän aikana",
              "Discharged from hospital in the last 30 days: {value}", "Kotiutunut sairaalasta viimeisen 30 päivän aikana: {value}",
              codes=("DISCHARGE",)),
        _num("unplanned_readmissions_365d", "hospital", COUNT, 1,
             f"Unplanned admissions in the last 365 days within {READMISSION_DAYS} days of a previous discharge",
             f"Päivystykselliset sairaalajaksot viimeisen 365 päivän aikana, jotka alkoivat {READMISSION_DAYS} päivän sisällä edellisestä kotiutuksesta",
             f"{{value}} readmissions within {READMISSION_DAYS} days of discharge in the last 365 days",
             f"Uusintajaksoja ({READMISSION_DAYS} päivän sisällä kotiutuksesta) viimeisen 365 päivän aikana: {{value}}",
             codes=("ADMIT/UNPLANNED", "DISCHARGE")),
    ]


def _emergency() -> list[FeatureInfo]:
    return [
        _num("er_visits_180d", "emergency", COUNT, 1,
             "Number of emergency department visits in the 180 days up to the index time",
             "Päivystyskäynnit indeksihetkeä edeltävän 180 päivän aikana (lukumäärä)",
             "{value} emergency department visits in the last 180 days",
             "Päivystyskäyntejä viimeisen 180 päivän aikana: {value}", codes=("ENC/EMERGENCY",)),
        _flag("er_frequent_attender", "emergency", 1,
              f"Frequent attender: at least {FREQUENT_ATTENDER_ER_365D} emergency department visits in the last 365 days",
              f"Päivystyksen suurkäyttäjä: vähintään {FREQUENT_ATTENDER_ER_365D} päivystyskäyntiä viimeisen 365 päivän aikana",
              "Frequent emergency department attender: {value}", "Päivystyksen suurkäyttäjä: {value}",
              codes=("ENC/EMERGENCY",)),
        _num("er_low_acuity_dx_365d", "emergency", COUNT, 0,
             "Emergency visits in the last 365 days with a low-acuity main diagnosis (ankle sprain, low back pain, alcohol intoxication)",
             "Päivystyskäynnit viimeisen 365 päivän aikana, joiden päädiagnoosi on lievä (nilkan nyrjähdys, alaselkäkipu, alkoholimyrkytys)",
             "{value} emergency visits for an injury or minor complaint in the last 365 days",
             "Päivystyskäyntejä vamman tai lievän vaivan vuoksi viimeisen 365 päivän aikana: {value}",
             codes=ER_LOW_ACUITY_CODES),
        _num("er_medical_dx_365d", "emergency", COUNT, 1,
             "Emergency visits in the last 365 days with an acute medical main diagnosis (pneumonia, urinary tract infection)",
             "Päivystyskäynnit viimeisen 365 päivän aikana, joiden päädiagnoosi on äkillinen sisätauti (keuhkokuume, virtsatieinfektio)",
             "{value} emergency visits for pneumonia or a urinary infection in the last 365 days",
             "Päivystyskäyntejä keuhkokuumeen tai virtsatieinfektion vuoksi viimeisen 365 päivän aikana: {value}",
             codes=ER_MEDICAL_CODES),
    ]


def _homecare() -> list[FeatureInfo]:
    return [
        _flag("homecare_active", "homecare", 1, "Regular home care running at the index time",
              "Säännöllinen kotihoito käynnissä indeksihetkellä", "Regular home care running: {value}",
              "Säännöllinen kotihoito käynnissä: {value}", codes=("HOMECARE/START", "HOMECARE/END")),
        _num("homecare_days_in_service", "homecare", DAYS, 0,
             "Days since the running home care started (NaN: no home care running)",
             "Päiviä käynnissä olevan kotihoidon alkamisesta (NaN: ei kotihoitoa)",
             "In regular home care for {value} days", "Säännöllisessä kotihoidossa {value} päivää",
             never=("Not in regular home care", "Ei säännöllisessä kotihoidossa"), codes=("HOMECARE/START", "HOMECARE/END")),
        _num("homecare_visits_per_month", "homecare", ("visits per 30 days", "käyntiä / 30 päivää"), 1,
             "Home care visits per 30 days, averaged over the last 90 days", "Kotihoidon käynnit 30 päivää kohden viimeisen 90 päivän keskiarvona",
             "{value} home care visits per month", "Kotihoidon käyntejä kuukaudessa: {value}",
             decimals=1, codes=("HOMECARE/VISIT",)),
        _num("homecare_visits_per_month_trend", "homecare", ("visits per 30 days", "käyntiä / 30 päivää"), 1,
             "Change in home care visits per 30 days: last 90 days vs the 90 days before",
             "Kotihoidon käyntien muutos 30 päivää kohden: viimeiset 90 päivää vs. edeltävät 90 päivää",
             "Home care visits per month changed by {value}", "Kotihoidon käyntimäärä kuukaudessa muuttui: {value}",
             decimals=1, codes=("HOMECARE/VISIT",)),
        _num("homecare_minutes_30d", "homecare", ("minutes", "minuuttia"), 1,
             "Total length of home care visits in the last 30 days", "Kotihoidon käyntien yhteiskesto viimeisen 30 päivän aikana",
             "{value} minutes of home care in the last 30 days", "Kotihoitoa viimeisen 30 päivän aikana: {value} minuuttia",
             codes=("HOMECARE/VISIT",)),
        _num("homecare_minutes_per_visit_90d", "homecare", ("minutes", "minuuttia"), 1,
             "Average length of a home care visit in the last 90 days (NaN: no visits)",
             "Kotihoidon käynnin keskimääräinen kesto viimeisen 90 päivän aikana (NaN: ei käyntejä)",
             "Home care visits lasted {value} minutes on average in the last 90 days",
             "Kotihoidon käynnit kestivät viimeisen 90 päivän aikana keskimäärin {value} minuuttia",
             never=("No home care visits in the last 90 days", "Ei kotihoidon käyntejä viimeisen 90 päivän aikana"),
             decimals=1, codes=("HOMECARE/VISIT",)),
        _flag("remote_active", "homecare", 0, "Remote (video) home care visits in use", "Kotihoidon etäkäynnit käytössä",
              "Remote home care visits in use: {value}", "Kotihoidon etäkäynnit käytössä: {value}", codes=("REMOTE/START",)),
        _num("remote_visit_share_90d", "homecare", ("share 0-1", "osuus 0-1"), 0,
             "Share of remote visits among all home care visits in the last 90 days (NaN: no visits)",
             "Etäkäyntien osuus kaikista kotihoidon käynneistä viimeisen 90 päivän aikana (NaN: ei käyntejä)",
             "{value} of home care visits were remote in the last 90 days", "Etäkäyntien osuus kotihoidon käynneistä viimeisen 90 päivän aikana: {value}",
             never=("No home care visits in the last 90 days", "Ei kotihoidon käyntejä viimeisen 90 päivän aikana"),
             decimals=2, codes=("REMOTE/VIDEO_VISIT", "HOMECARE/VISIT")),
        _flag("medrobot_active", "homecare", 0, "Medication robot in use", "Lääkerobotti käytössä",
              "Medication robot in use: {value}", "Lääkerobotti käytössä: {value}", codes=("MEDROBOT/START",)),
        _num("medrobot_missed_dose_rate_30d", "homecare", ("share 0-1", "osuus 0-1"), 1,
             "Missed medication robot doses / all due doses in the last 30 days (NaN: no robot events)",
             "Lääkerobotin ottamatta jääneet annokset / kaikki annokset viimeisen 30 päivän aikana (NaN: ei tapahtumia)",
             "{value} of medication robot doses missed in the last 30 days", "Lääkerobotin annoksista jäi ottamatta viimeisen 30 päivän aikana: {value}",
             never=("No medication robot doses in the last 30 days", "Ei lääkerobotin annoksia viimeisen 30 päivän aikana"),
             decimals=2, codes=("MEDROBOT/MISSED_DOSE", "MEDROBOT/DISPENSE")),
        _flag("rehab_active", "homecare", 0, "Home rehabilitation running at the index time",
              "Kotikuntoutus käynnissä indeksihetkellä", "Home rehabilitation running: {value}",
              "Kotikuntoutus käynnissä: {value}", codes=("REHAB/START", "REHAB/END")),
    ]


def _assessments() -> list[FeatureInfo]:
    rows = []
    for name, (code, en, fi) in RAI_SCALES.items():
        rows.append(_num(f"rai_{name}_last", "assessments", SCORE, 1,
                         f"Last interRAI {en} (NaN: never assessed)", f"Viimeisin interRAI {fi} (NaN: ei arviota)",
                         f"Last interRAI {en}: {{value}}", f"Viimeisin interRAI {fi}: {{value}}",
                         never=(f"No interRAI {en} on record", f"Ei interRAI-arviota ({fi})"), codes=(code,)))
        rows.append(_num(f"rai_{name}_change", "assessments", SCORE, 1,
                         f"Change in interRAI {en} between the last two assessments (NaN: fewer than two)",
                         f"Muutos interRAI {fi} kahden viimeisimmän arvion välillä (NaN: alle kaksi arviota)",
                         f"interRAI {en} changed by {{value}} since the previous assessment",
                         f"interRAI {fi} muuttui edellisestä arviosta: {{value}}",
                         never=(f"Fewer than two interRAI {en} assessments", f"Alle kaksi interRAI-arviota ({fi})"), codes=(code,)))
    rows.append(_num("rai_days_since", "assessments", DAYS, 0,
                     "Days since the last interRAI assessment (any of its scales; NaN: none)",
                     "Päiviä viimeisimmästä interRAI-arviosta (mikä tahansa asteikko; NaN: ei arviota)",
                     "Last interRAI assessment {value} days ago", "Viimeisin interRAI-arvio {value} päivää sitten",
                     never=("No interRAI assessment on record", "Ei interRAI-arviota tiedoissa"),
                     codes=tuple(code for code, _, _ in RAI_SCALES.values())))
    return rows


def _child_welfare() -> list[FeatureInfo]:
    return [
        _flag("childwelfare_open_care_active", "child_welfare", 1, "Child welfare open care running at the index time",
              "Lastensuojelun avohuolto käynnissä indeksihetkellä", "Child welfare open care running: {value}",
              "Lastensuojelun avohuolto käynnissä: {value}",
              codes=("CHILDWELFARE/OPEN_CARE_START", "CHILDWELFARE/OPEN_CARE_END")),
        _num("childwelfare_placements_365d", "child_welfare", COUNT, 1, "Placements outside the home in the last 365 days",
             "Kodin ulkopuoliset sijoitukset viimeisen 365 päivän aikana", "{value} placements outside the home in the last 365 days",
             "Kodin ulkopuolisia sijoituksia viimeisen 365 päivän aikana: {value}", codes=("CHILDWELFARE/PLACEMENT",)),
        _flag("childwelfare_placed_ever", "child_welfare", 1, "Ever placed outside the home (on record)",
              "Sijoitettu kodin ulkopuolelle joskus (tiedoissa)", "Ever placed outside the home: {value}",
              "Sijoitettu joskus kodin ulkopuolelle: {value}", codes=("CHILDWELFARE/PLACEMENT",)),
    ]


def _mental_health() -> list[FeatureInfo]:
    return [
        _num("phq9_last", "mental_health", SCORE, 1, "Last PHQ-9 score (0-27; NaN: never measured)",
             "Viimeisin PHQ-9-pistemäärä (0-27; NaN: ei mittausta)", "Last PHQ-9 score {value}", "Viimeisin PHQ-9-pistemäärä {value}",
             never=("No PHQ-9 on record", "Ei PHQ-9-mittausta tiedoissa"), codes=("PHQ9",)),
        _num("phq9_change", "mental_health", SCORE, 1, "PHQ-9 change between the last two measurements (NaN: fewer than two)",
             "PHQ-9-muutos kahden viimeisimmän mittauksen välillä (NaN: alle kaksi)", "PHQ-9 changed by {value} points",
             "PHQ-9 muuttui {value} pistettä", never=("Fewer than two PHQ-9 measurements", "Alle kaksi PHQ-9-mittausta"),
             codes=("PHQ9",)),
        _num("phq9_slope_per_30d", "mental_health", ("points per 30 days", "pistettä / 30 päivää"), 1,
             "PHQ-9 slope between the last two measurements, points per 30 days (NaN: fewer than two)",
             "PHQ-9:n muutosnopeus kahden viimeisimmän mittauksen välillä, pistettä 30 päivässä (NaN: alle kaksi)",
             "PHQ-9 changing by {value} points per month", "PHQ-9 muuttuu {value} pistettä kuukaudessa",
             never=("Fewer than two PHQ-9 measurements", "Alle kaksi PHQ-9-mittausta"), decimals=1, codes=("PHQ9",)),
        _num("phq9_days_since", "mental_health", DAYS, 0, "Days since the last PHQ-9 (NaN: never measured)",
             "Päiviä viimeisimmästä PHQ-9-mittauksesta (NaN: ei mittausta)", "Last PHQ-9 {value} days ago",
             "Viimeisin PHQ-9 {value} päivää sitten", never=("No PHQ-9 on record", "Ei PHQ-9-mittausta tiedoissa"),
             codes=("PHQ9",)),
        _num("depression_dx_days_since", "mental_health", DAYS, -1,
             "Days since the last depression diagnosis (F32.1, F33, P76; NaN: none on record)",
             "Päiviä viimeisimmästä masennusdiagnoosista (F32.1, F33, P76; NaN: ei diagnoosia)",
             "Last depression diagnosis {value} days ago", "Viimeisin masennusdiagnoosi {value} päivää sitten",
             never=("No depression diagnosis on record", "Ei masennusdiagnoosia tiedoissa"), codes=DEPRESSION_CODES),
        _num("antidepressant_gap_days", "mental_health", DAYS, 1,
             "Days without antidepressant supply: index time minus the end of the last dispensed supply, 0 if covered (NaN: never dispensed)",
             "Päiviä ilman masennuslääkettä: indeksihetki miinus viimeisimmän toimituksen riittävyyden loppu, 0 jos riittää (NaN: ei toimituksia)",
             "Out of antidepressants for {value} days", "Masennuslääke loppunut {value} päivää sitten",
             never=("No antidepressants dispensed on record", "Ei masennuslääketoimituksia tiedoissa"), decimals=0,
             codes=("MED/ANTIDEPRESSANT",)),
        _num("antidepressant_late_refills_365d", "mental_health", COUNT, 1,
             f"Antidepressant dispensings in the last 365 days that came more than {ANTIDEPRESSANT_GRACE_DAYS} days after the previous supply ran out",
             f"Viimeisen 365 päivän masennuslääketoimitukset, jotka tulivat yli {ANTIDEPRESSANT_GRACE_DAYS} päivää edellisen toimituksen loppumisen jälkeen",
             "{value} gaps in antidepressant dispensing in the last 365 days",
             "Katkoksia masennuslääkkeen toimituksissa viimeisen 365 päivän aikana: {value}",
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

