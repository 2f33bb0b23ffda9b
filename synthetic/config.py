"""Every parameter of the simulator, typed and frozen, with its source where it claims one.

A parameter that claims a public figure is a `Sourced` (value, year, source); everything else is
a plain number whose description says it is a modelling assumption. Rates are per person-year
unless the name says otherwise. Change a parameter with `config.model_copy(update=...)` or the
helpers at the bottom (never by mutation: the models are frozen).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from data_contracts.catalogue import MUNICIPALITIES
from synthetic.timeline import month_index

# The region's municipalities and languages are the contracts' lists (one source of truth).
MUNICIPALITY_NAMES: tuple[str, ...] = MUNICIPALITIES


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sourced(_Frozen):
    """A number that claims a public figure: keep value, year and source together."""

    value: float
    year: str
    source: str


def src(value: float, year: str, source: str) -> Sourced:
    return Sourced(value=value, year=year, source=source)


STATFIN = "Statistics Finland, population structure (approximate, rounded)"


class PopulationConfig(_Frozen):
    """Who lives in the region at the extract start, and how people arrive and leave."""

    municipality_sizes: tuple[tuple[str, Sourced], ...] = (
        ("Lappeenranta", src(73_000, "2022", STATFIN)),
        ("Imatra", src(25_000, "2022", STATFIN)),
        ("Lemi", src(3_000, "2022", STATFIN)),
        ("Luumäki", src(4_500, "2022", STATFIN)),
        ("Parikkala", src(4_500, "2022", STATFIN)),
        ("Rautjärvi", src(3_000, "2022", STATFIN)),
        ("Ruokolahti", src(5_000, "2022", STATFIN)),
        ("Savitaipale", src(3_200, "2022", STATFIN)),
        ("Taipalsaari", src(4_800, "2022", STATFIN)),
    )
    language_shares: tuple[tuple[str, Sourced], ...] = (
        ("fi", src(0.957, "2022", STATFIN + ", South Karelia by language")),
        ("sv", src(0.003, "2022", STATFIN + ", South Karelia by language")),
        ("other", src(0.040, "2022", STATFIN + ", South Karelia by language")),
    )
    # Relative size of the five-year age bands 0-4, 5-9, ..., 95-99, 100+ (South Karelia).
    age_band_weights: tuple[float, ...] = (
        3.9, 4.5, 5.0, 5.0, 5.3, 5.4, 5.3, 5.4, 5.5, 5.4,
        6.0, 6.8, 7.6, 7.7, 8.0, 6.0, 4.0, 2.5, 1.1, 0.25, 0.02,
    )
    age_band_source: Sourced = src(0.138, "2022", STATFIN + ", South Karelia: share aged 75+ ~13-14 %")
    female_share_by_band: tuple[float, ...] = Field(
        default=(0.49,) * 13 + (0.51, 0.51, 0.55, 0.58, 0.64, 0.72, 0.80, 0.85),
        description="assumption shaped like the Finnish sex ratio by age",
    )
    births_per_1000: Sourced = src(6.9, "2022", "Statistics Finland, live births per 1,000, South Karelia (approx.)")
    # Yearly probability of moving out of the region by age (knots, linear in between).
    move_out_age_knots: tuple[float, ...] = (0, 17, 19, 24, 30, 40, 65, 110)
    move_out_yearly: tuple[float, ...] = Field(
        default=(0.025, 0.025, 0.09, 0.10, 0.06, 0.02, 0.008, 0.006),
        description="assumption (young adults leave for study and work; Lappeenranta is a university town)",
    )
    move_in_balance: float = Field(1.0, description="in-movers per expected out-mover (assumption)")


class HealthConfig(_Frozen):
    """Latent health states: frailty, cognition, chronic conditions, acute instability."""

    frailty_logit_at_40: float = -3.2
    frailty_logit_per_year: float = Field(0.045, description="slope of mean frailty logit with age above 40")
    frailty_logit_sd: float = 0.9
    frailty_monthly_sd: float = Field(0.05, description="monthly random-walk noise of the frailty logit")
    frailty_reversion: float = Field(0.01, description="monthly pull of frailty back to the age mean")
    frailty_jump_admission: float = 0.25
    frailty_jump_hip_fracture: float = 0.6
    frailty_jump_fall: float = 0.08
    acute_autocorrelation: float = Field(0.5, description="AR(1) coefficient of monthly health instability")
    acute_jump_fall: float = 0.5
    dementia_yearly_at_80: float = Field(0.035, description="dementia incidence at 80 (assumption, ~3-4 %/year)")
    dementia_growth_per_year: float = 0.12
    cognition_decline_per_month: float = Field(0.05, description="CPS points per month once demented (~0.6/year)")
    heart_failure_yearly_at_80: float = 0.012
    copd_yearly_at_70: float = 0.004
    diabetes_yearly_at_60: float = 0.008
    hypertension_yearly_at_60: float = 0.025
    fall_monthly_base: float = 0.004
    fall_monthly_frailty: float = Field(0.25, description="falls per month = base + this * frailty^2 (x1.5 dementia)")
    individual_frailty_sd: float = Field(0.7, description="SD of the static individual log hazard (unobserved)")
    # Low-acuity ER use (issue 4): a person's tendency to come to the ER for injuries and minor or
    # social complaints is persistent and only loosely tied to their admission risk (frequent
    # attenders are a mix of the chronically ill and of people with injuries, substance use and
    # psychosocial needs: LaCalle & Rabin, Ann Emerg Med 2010; Hunt et al., Ann Emerg Med 2006).
    er_propensity_sd: float = Field(1.5, description="SD of the static log propensity for low-acuity ER visits "
                                    "(assumption; sets the spread of frequent attendance, 75+ target 3.6 %)")
    er_propensity_u_correlation: float = Field(0.0, ge=-1.0, le=1.0, description="correlation of the ER-use propensity "
                                               "with the individual log hazard u (assumption: none; 0.6 measured "
                                               "no different on the acute task)")
    er_low_acuity_frailty_weight: float = Field(1.0, description="weight of frailty in the low-acuity ER log hazard "
                                                "(assumption: frail people fall and get hurt more)")
    # Lowering it to 1.0 (as in the admission hazard) was measured and not kept: the ER cohort took
    # in more low-risk people (acute oracle AUROC up, 20,000 seed 1) and the 75+ frequent-attender
    # share fell from 0.026 to 0.017 (seed 42), further below its 0.036 target.
    er_individual_weight: float = Field(1.8, description="weight of the individual log hazard u in the medical "
                                        "(non-admitted) ER log hazard (assumption)")


class MentalConfig(_Frozen):
    """Depression episodes and their care."""

    onset_monthly: float = Field(0.003, description="base monthly onset of a depressive episode (assumption)")
    remission_monthly: float = 0.09
    remission_bonus_treated: float = 0.04
    diagnosis_monthly: float = 0.30
    antidepressant_start_share: float = 0.7
    antidepressant_continue_months: int = Field(6, description="continue 6 months after remission (Käypä hoito)")
    yearly_prevalence_target: Sourced = src(0.06, "2024", "Käypä hoito: depression, 5-7 % a year")
    # Comorbid alcohol use disorder, self-harm history, severity and antidepressant adherence: the
    # published predictors of hospitalisation in depression that the records carry (F10 codes,
    # X60-X84 at the emergency department, PHQ-9, refill gaps). Sizes are kept below the reported
    # associations because part of each runs through frailty, ER use and depression itself.
    sud_share_men: float = Field(0.07, description="static share of men 15+ with an alcohol use disorder (Pirkola et al., "
                                 "Soc Psychiatry Psychiatr Epidemiol 2005, Health 2000: 12-month AUD ~7 % of men, ~2 % of women; "
                                 "halved at 70+; assumption rounded)")
    sud_share_women: float = Field(0.02, description="static share of women 15+ with an alcohol use disorder (as above)")
    sud_depression_onset_multiplier: float = Field(1.8, description="depression onset multiplier with an alcohol use "
                                                   "disorder (Boden & Fergusson, Addiction 2011: AUD-depression OR ~2 in "
                                                   "prospective studies; assumption below it)")
    sud_admission_log_hazard: float = Field(0.45, description="log hazard of unplanned admission with an alcohol use "
                                            "disorder, HR ~1.6 (Tait & Hulse, Br J Psychiatry 2006: dependent drinkers "
                                            "with psychiatric morbidity had shorter time to all-cause admission; assumption)")
    sud_er_log_hazard: float = Field(0.5, description="log hazard of ER visits with an alcohol use disorder, HR ~1.65 "
                                     "(intoxication and injury visits; assumption)")
    sud_dx_per_doctor_visit: float = Field(0.12, description="chance a health centre doctor visit of a customer with AUD "
                                           "records F10.2 (under-recorded: in a Swedish self-harm cohort, Front Psychiatry 2024, "
                                           "~2/3 of AUD found by interview had no clinical diagnosis; assumption)")
    sud_dx_per_specialist_contact: float = Field(0.3, description="chance a psychiatric visit or an unplanned "
                                                 "admission of a customer with AUD records F10.2 (assumption)")
    sud_dx_per_er_visit: float = Field(0.25, description="chance an ER visit of a customer with AUD records F10.0 "
                                       "(acute intoxication; assumption)")
    severity_admission_log_hazard: float = Field(0.05, description="log hazard of unplanned admission per PHQ-9-scale "
                                                 "point of latent severity above 13 while depressed (severity predicts "
                                                 "psychiatric admission; assumption: +0.35 at 20)")
    self_harm_monthly_depressed: float = Field(0.0015, description="monthly self-harm presentation at severity 15 while "
                                               "depressed (x exp(0.15 per point), x sud multiplier; ~2 %/year: "
                                               "assumption; Holma et al., J Affect Disord 2020: more suicide attempts in MDD with AUD)")
    self_harm_monthly_base: float = Field(0.00003, description="monthly self-harm presentation of others aged 12+ (assumption)")
    self_harm_sud_multiplier: float = Field(1.6, description="self-harm multiplier with an alcohol use disorder (Swedish "
                                            "self-harm cohort, Front Psychiatry 2024: OR 1.60 for repeat suicidal behaviour with AUD)")
    self_harm_admission_log_hazard: float = Field(0.4, description="log hazard of unplanned admission per recent self-harm "
                                                  "presentation (decaying history, capped at 2; prior attempt predicts "
                                                  "readmission; assumption, HR 1.5 per episode)")
    self_harm_memory: float = Field(0.95, description="monthly decay of the self-harm history (half-life ~14 months; assumption)")
    adherence_reference: float = Field(0.85, description="adherence at which antidepressants give their full effect on "
                                       "severity and remission; lower adherence gives proportionally less (non-adherence "
                                       "and relapse: Käypä hoito depression; assumption)")


class ChildConfig(_Frozen):
    """Family situation of children and child welfare."""

    crisis_onset_monthly: float = 0.004
    crisis_exit_monthly: float = 0.15
    notification_share_target: Sourced = src(0.102, "2023", "THL child welfare: 10.2 % of 0-17 notified a year")
    notification_share_13_15: Sourced = src(0.158, "2023", "THL child welfare: 15.8 % of 13-15 notified a year")
    # 0.08 gave a 0.049-0.053 yearly open care share over a 5-year extract (seeds 1, 2, 42 at
    # 20,000), above THL's 3.4-3.8 %; 0.055 gives 0.037-0.041.
    open_care_start_after_notification: float = 0.055
    open_care_exit_monthly: float = 0.055
    open_care_clients_target: Sourced = src(0.036, "2023-24", "THL: open care clients 3.4-3.8 % of under-18s")
    placement_monthly_in_crisis: float = 0.02
    # Family adversity raises children's acute hospital use for as long as it lasts (injuries,
    # neglect, infections, self-harm in adolescents), not only during a crisis.
    family_log_hazard: Sourced = src(0.2, "2024", "log hazard of admission and ER per SD of family risk (children): "
                                     "with the crisis term, children in open care reach ~HR 1.3-1.5, as after a "
                                     "maltreatment evaluation (HR 1.3, 95 % CI 1.1-1.5, ED visit or admission; "
                                     "Child Abuse Negl 2024, PMC11025450)")
    crisis_admission_log_hazard: float = Field(0.25, description="extra admission log hazard during a family crisis "
                                               "(ER: 0.4 x this). Was 0.35; with the persistent family term that gave "
                                               "children in crisis 1.63 x their peers' admission hazard (seed 1, 40,000), "
                                               "above the upper CI of HR 1.3 (1.1-1.5); 0.25 gives ~1.5")
    placed_share_target: Sourced = src(0.010, "2023", "THL: ~1.0 % of children placed outside the home")


class ConditionConfig(_Frozen):
    """One chronic condition that can start in childhood: onset and remission by age, and its
    relative rates of unplanned admission and ER visits (children 0-17 and adults separately)."""

    icd10: str = Field(description="ICD-10 code recorded at visits for the condition (codes.csv)")
    incidence_yearly: tuple[tuple[float, float], ...] = Field(
        description="(age from, new cases per person-year among those without it) step profile")
    remission_yearly: float = Field(0.0, description="yearly chance that the condition stops being active")
    admission_rr_child: Sourced
    admission_rr_adult: float
    er_rr_child: float
    er_rr_adult: float
    visits_yearly: float = Field(description="condition follow-up visits a year while active (assumption)")
    dx_share_doctor_visit: float = Field(description="chance that a health centre doctor visit codes it (assumption)")
    dx_share_acute: float = Field(description="chance that an ER visit or unplanned admission codes it (assumption)")


class ConditionsConfig(_Frozen):
    """Chronic conditions that start in childhood and persist into adulthood: before these, nothing
    observable in the records ranked children's admission risk (diabetes, hypertension and the rest
    start at 30+). Effects are relative rates against peers without the condition; band
    normalisation keeps every age band's mean hazard on target, so they redistribute risk within a
    band, as in the real population."""

    asthma: ConditionConfig = ConditionConfig(
        icd10="ICD10/J45",
        # x1.25 of the first guess (0.008 / 0.005 / 0.003 / 0.0015), with 1.5 follow-up visits a
        # year instead of 1: the first gave 4.8 % of children with asthma and 3.5 % recorded a year
        # at region size (target 6 % +- 2.5, missed); this gives 6.2 % and 5.6 % (seed 1, 20,000).
        incidence_yearly=((0, 0.010), (5, 0.00625), (10, 0.00375), (18, 0.001875)),
        remission_yearly=0.03,
        admission_rr_child=src(2.0, "1996-2015", "assumption within published ranges: asthma admissions concentrate "
                               "in a few per cent of children (To et al., Pediatrics 1996; Finnish asthma admissions, "
                               "Pediatr Allergy Immunol 2000); RR 2 all-cause is below T1D's 4.7-5.8"),
        admission_rr_adult=1.3, er_rr_child=1.8, er_rr_adult=1.3,
        visits_yearly=1.5, dx_share_doctor_visit=0.35, dx_share_acute=0.35,
    )
    epilepsy: ConditionConfig = ConditionConfig(
        icd10="ICD10/G40",
        incidence_yearly=((0, 0.0006), (18, 0.0003)),
        remission_yearly=0.06,
        admission_rr_child=src(3.0, "2015-2018", "assumption between the Finnish register HR 1.39 for hospital-treated "
                               "injuries in children with epilepsy (safetylit 2015, 133,055 first-born children) and "
                               "T1D's all-cause IRR 4.7-5.8; emergency epilepsy admissions: Chin et al., ADC 2018"),
        admission_rr_adult=2.0, er_rr_child=2.0, er_rr_adult=1.6,
        visits_yearly=2.0, dx_share_doctor_visit=0.45, dx_share_acute=0.45,
    )
    type1_diabetes: ConditionConfig = ConditionConfig(
        icd10="ICD10/E10",
        incidence_yearly=((0, 0.0004), (5, 0.0006), (15, 0.0003), (20, 0.00015), (40, 0.00005)),
        remission_yearly=0.0,
        admission_rr_child=src(4.0, "2001-2015", "below the published all-cause IRR 4.7 (Icks et al., Diabetologia 2001, "
                               "first year) and 5.8 (Sayers et al., BMJ Open 2015, Welsh matched cohort)"),
        admission_rr_adult=2.0, er_rr_child=2.0, er_rr_adult=1.6,
        visits_yearly=4.0, dx_share_doctor_visit=0.5, dx_share_acute=0.5,
    )
    cerebral_palsy: ConditionConfig = ConditionConfig(
        icd10="ICD10/G80",
        # Diagnosed in the first two years (2-2.5 per 1,000 live births); lifelong.
        incidence_yearly=((0, 0.0011), (2, 0.0)),
        remission_yearly=0.0,
        admission_rr_child=src(4.0, "2004-2020", "below the ~5.3 implied by the Northern Ireland CP register "
                               "(0.3 % of 0-24-year-olds, 1.6 % of all admissions incl. elective; Dev Med Child "
                               "Neurol 2020); Finnish cohort: HR 1.2 for injuries only (Inj Prev 2020)"),
        admission_rr_adult=2.0, er_rr_child=2.0, er_rr_adult=1.5,
        visits_yearly=2.0, dx_share_doctor_visit=0.5, dx_share_acute=0.5,
    )
    t1d_incidence_target: Sourced = src(0.000522, "2015-18", "Parviainen et al., Diabetes Care 2020: T1D 52.2/100,000 PY "
                                        "under 15 in Finland (31.0/50.5/50.6 at 0-4/5-9/10-14 in 1980-2005, Harjutsalo, Lancet 2008)")
    epilepsy_incidence_target: Sourced = src(0.00061, "2012", "Saarinen et al., Epilepsy Behav 2016: drug-treated childhood "
                                             "epilepsy 61/100,000 PY (Finland, <= 15 years)")
    epilepsy_prevalence_target: Sourced = src(0.0039, "1992", "Eriksson & Koivikko, Epilepsia 1997: 3.94/1000 children "
                                              "(Tampere); Sillanpää: 3.2/1000 (Turku)")
    t1d_prevalence_target: Sourced = src(0.005, "2015-18", "derived: incidence 52-58/100,000 PY over ages 1-17 "
                                         "gives ~0.5 % of Finnish children living with T1D (Parviainen et al. 2020)")
    asthma_prevalence_target: Sourced = src(0.06, "2000s", "assumption ~5-7 % of Finnish children with diagnosed asthma "
                                            "(ISAAC Finland 13-14 y: wheeze 10-12 %; adults 6 %, FinEsS, Allergy 2001)")


class CareConfig(_Frozen):
    """Elderly care: assessments, home care, 24-hour care, and the hospital."""

    er_per_1000py: tuple[tuple[float, float], ...] = Field(
        default=(
            (0, 200.0), (18, 187.0), (25, 178.0), (65, 289.0), (80, 520.0), (85, 700.0), (90, 900.0),
        ),
        description="(age from, ER visits per 1,000 PY): 18-24, 25-64, 65-79 from Vähä et al.; "
        "0-17 assumed; 80-84/85-89/90+ chosen so 80+ averages the published 594 (Ukkonen: 768 at 80-89, "
        "1,007 at 90+ in Tampere)",
    )
    er_80plus_target: Sourced = src(594.0, "2019", "Vähä et al., Suom Lääkäril 2024: ER visits per 1,000 PY, 80+")
    er_all_target: Sourced = src(231.0, "2019", "Vähä et al., Suom Lääkäril 2024: ER visits per 1,000 PY, all")
    er_65_79_target: Sourced = src(289.0, "2019", "Vähä et al., Suom Lääkäril 2024: ER visits per 1,000 PY, 65-79")
    er_25_64_target: Sourced = src(178.0, "2019", "Vähä et al., Suom Lääkäril 2024: ER visits per 1,000 PY, 25-64")
    admitted_share_of_er: tuple[tuple[float, float], ...] = Field(
        default=((0, 0.08), (18, 0.14), (65, 0.28), (80, 0.35)),
        description="share of ER visits that end in an unplanned admission, by age (assumption)",
    )
    er_low_acuity_share: tuple[tuple[float, float], ...] = Field(
        default=((0, 0.4), (18, 0.4), (65, 0.3), (80, 0.2)),
        description="(age from, share of non-admitted ER visits that are low-acuity: injuries, minor and social "
        "complaints, driven by the ER-use propensity rather than by health); assumption inside the 8-62 % range "
        "of non-urgent ED visits in Uscher-Pines et al., Am J Manag Care 2013 (systematic review), falling with "
        "age as non-urgent users are younger there. All zero switches it off",
    )
    injury_admission_share: tuple[tuple[float, float], ...] = Field(
        default=((0, 0.10), (65, 0.05)),
        description="(age from, share of unplanned admissions that are for injuries or poisonings outside the "
        "hip fractures and falls of the frail, driven by the ER-use propensity (risk taking, alcohol) rather than "
        "by health); assumption: injuries and poisonings are one of the common main diagnosis groups of unplanned "
        "admissions, more so in the young. All zero switches it off",
    )
    injury_propensity_weight: float = Field(0.6, description="weight of the ER-use propensity in the injury admission "
                                            "log hazard (assumption: the people who come for injuries and "
                                            "intoxications are the ones admitted for them)")
    readmission_multiplier: float = Field(
        3.3, description="admission hazard multiplier in the month of and after a discharge (set so the 30-day "
        "readmission of home care clients meets readmission_target: 4.0 gave 0.27-0.29 against 0.23, 2.8 gave 0.20; "
        "20,000 and 40,000 residents, seeds 1 and 42)")
    readmission_target: Sourced = src(0.23, "2012-14", "Nordic home care clients: 30-day readmission ~20-26 % (BMC Geriatr; Klinge 2020)")
    planned_admissions_yearly: tuple[tuple[float, float], ...] = ((0, 0.01), (40, 0.03), (65, 0.07), (80, 0.06))
    hc_visits_per_inhabitant: Sourced = src(6.2, "2022", "THL: health centre visits ~6.2 per inhabitant a year")
    hc_doctor_per_inhabitant: Sourced = src(1.2, "2022", "THL: health centre doctor visits ~1.2 per inhabitant a year")
    hc_remote_share: Sourced = src(0.288, "2022", "THL: 28.8 % of health centre contacts remote")
    missed_appointment_share: float = Field(0.04, description="share of booked visits missed (assumption)")
    # Yearly death probability by age (knots), close to Finnish life tables.
    death_age_knots: tuple[float, ...] = (0, 5, 15, 25, 35, 45, 55, 60, 70, 75, 80, 85, 90, 95, 100)
    death_yearly: tuple[float, ...] = Field(
        default=(0.0005, 0.0001, 0.0003, 0.0006, 0.0010, 0.0022, 0.0050, 0.008, 0.016, 0.027,
                 0.045, 0.085, 0.16, 0.28, 0.42),
        description="approximates Statistics Finland life tables 2022 (both sexes)",
    )
    need_threshold_homecare: float = Field(0.45, description="need (frailty + 0.06 x cognition) above which a PTA leads to home care")
    homecare_share_75_target: Sourced = src(0.11, "2018", "THL: 11.0 % of 75+ in regular home care (regions 7.5-14.4 %)")
    homecare_visits_per_client_month: Sourced = src(17.0, "2019", "THL (derived): ~16 visits/month per client, ~18 for 75+")
    homecare_visits_median: float = Field(12.0, description="median home care visits per client-month at threshold need")
    care24h_monthly_at_need_065: float = Field(0.03, description="monthly hazard of 24-hour care for a home care client at need 0.65")
    care24h_share_75_target: Sourced = src(0.092, "2015", "THL: 9.2 % of 75+ in 24-hour care")
    # Beyond need and dementia, placement risk is spread over further predictors (reviews: Luppa
    # et al., Age Ageing 2010; Gaugler et al., BMC Geriatr 2007); sizes are assumptions, each
    # smaller than the reported association because part of it already runs through frailty.
    care24h_fall_log_hazard: float = Field(0.4, description="log hazard per recent fall (decaying history, capped at 2; "
                                           "Tinetti & Williams, NEJM 1997: HR 1.9 after one non-injurious fall, 3.1 after two)")
    care24h_fall_memory: float = Field(0.85, description="monthly decay of the fall history (half-life ~4 months; assumption)")
    care24h_depression_multiplier: float = Field(1.4, description="24-hour care hazard while depressed (assumption)")
    care24h_instability_log_hazard: float = Field(0.3, description="log hazard per SD of acute health instability (assumption)")
    # Living situation and informal care (Luppa et al., Age Ageing 2010; Gaugler et al., BMC Geriatr
    # 2007; Wolff et al., J Am Geriatr Soc 2018): living alone, caregiver distress and behavioural
    # symptoms of dementia raise placement risk beyond need. interRAI HC records all three; the
    # municipality records the informal care allowance (omaishoidon tuki) while a carer provides it.
    alone_share_women_at_65: float = Field(0.33, description="share of women living alone at 65, +1.5 points a year, "
                                           "capped at 0.85 (assumption shaped like Statistics Finland household data: "
                                           "most women 80+ live alone)")
    alone_share_men_at_65: float = Field(0.20, description="share of men living alone at 65, +0.8 points a year, capped at 0.6 (as above)")
    partner_loss_yearly_at_80: float = Field(0.04, description="yearly chance at 80 that the co-resident partner dies or "
                                             "moves to care (x exp(0.08 per year of age), x1.6 for women, who outlive "
                                             "older husbands; assumption shaped like widowhood rates)")
    care24h_alone_log_hazard: float = Field(0.5, description="24-hour care log hazard when living alone, HR 1.65 "
                                            "(Am J Manag Care 2014;20(12), Connecticut Home Care Program for Elders: "
                                            "OR 1.53 within a year; Wolff et al., J Am Geriatr Soc 2018, weigh it above "
                                            "dementia: between the two)")
    care24h_partner_loss_log_hazard: float = Field(0.7, description="extra 24-hour care log hazard right after losing "
                                                   "the co-resident partner, HR 2 (decaying history, capped at 1; "
                                                   "Nihtilä & Martikainen, Am J Public Health 2008, Finnish registers: "
                                                   "institutionalisation risk highest in the first months after a "
                                                   "spouse's death; assumption below their first-month figures)")
    partner_loss_memory: float = Field(0.8, description="monthly decay of the partner-loss history (half-life ~3 months; assumption)")
    pta_after_partner_loss: float = Field(0.6, description="chance that a home care client's loss of the co-resident "
                                          "partner brings a new service need assessment (PTA) that month (assumption)")
    cg_distress_onset_monthly: float = Field(0.012, description="monthly onset of caregiver distress of a co-resident carer "
                                             "at need 0.5 (x exp(4 per need unit), x2 with behavioural symptoms; "
                                             "assumption: ~20-30 % of carers of home care clients distressed in interRAI HC)")
    cg_distress_remission_monthly: float = Field(0.04, description="monthly end of caregiver distress (respite, support; assumption)")
    care24h_cg_distress_log_hazard: float = Field(0.6, description="24-hour care log hazard with a distressed carer, "
                                                  "HR 1.8 (Wolff et al., J Am Geriatr Soc 2018: high carer strain "
                                                  "weighted 4/5 of living alone in their placement score; assumption)")
    cg_distress_recorded: float = Field(0.8, description="share of distressed carers an interRAI assessment records (assumption)")
    bpsd_onset_monthly: float = Field(0.02, description="monthly onset of behavioural symptoms of dementia at CPS 3 "
                                      "(proportional to CPS; assumption: ~20 % of community dementia at a time)")
    bpsd_remission_monthly: float = Field(0.08, description="monthly end of behavioural symptoms (they fluctuate; assumption)")
    care24h_bpsd_log_hazard: float = Field(0.4, description="24-hour care log hazard with behavioural symptoms of dementia, "
                                           "HR 1.5 (Toot et al., Int Psychogeriatr 2017; Gaugler et al., Med Care 2009: "
                                           "behavioural problems among the main predictors of placement in dementia)")
    informal_care_start_monthly: float = Field(0.01, description="monthly start of the informal care allowance for a "
                                               "home care client with a co-resident carer above the home care threshold "
                                               "(assumption)")
    informal_care_fee_eur: Sourced = src(476.0, "2024", "STM: minimum informal care allowance fee, EUR per month (approx.)")
    rai_interval_months: float = Field(6.0, description="interRAI re-assessment interval for home care clients")
    rai_completion: float = Field(0.85, description="share of due interRAI assessments done")
    rai_records_falls: bool = Field(True, description="interRAI assessments record falls in the last 90 days (0, 1, 2 = two "
                                    "or more): a simplified item J1 of the interRAI HC form (interRAI HC Assessment "
                                    "Form and User's Manual, Morris et al. 2010; J1 codes no fall in 90 days / a fall "
                                    "31-90 days ago / one / two or more in the last 30 days; the Falls CAP triggers on "
                                    "it), part of the standard form Finnish RAI-HC uses; False drops the code")
    # interRAI HC scale reliability. Each scale is the latent state plus the assessment's own error;
    # its size sets how well two assessments of the same state on the same day agree. Until 1.3 the
    # errors were guesses that gave a same-day repeat r ~0.5-0.6 for ADL-H, IADL, CHESS, DRS and ABS,
    # below what interRAI's reliability studies report for the instrument.
    rai_item_kappa: Sourced = src(0.75, "2008", "Hirdes et al., BMC Health Serv Res 2008;8:277: mean weighted kappa "
                                  "0.75 of the 161 items common to interRAI instruments (paired assessments "
                                  "within 72 h by blinded assessors, 783 persons, 12 countries; over 60 % of "
                                  "items above 0.70); Morris et al., J Am Geriatr Soc 1997;45:1017: MDS-HC "
                                  "average weighted kappa 0.74")
    rai_scale_reliability: float = Field(0.85, description="same-day test-retest correlation of the functional "
                                         "scales ADL-H and IADL among home care clients (assumption from "
                                         "rai_item_kappa: a scale summing four or five items that each agree at "
                                         "~0.75 and correlate with one another agrees at ~0.85-0.9; set at the "
                                         "lower end). The symptom scales CHESS, DRS and ABS are held to the item "
                                         "level rai_item_kappa (their items are less reliable than the ADL items)")
    rai_adlh_noise_sd: float = Field(0.25, description="SD of the ADL-H assessment error (scale points, before "
                                     "rounding); gives a same-day repeat r ~rai_scale_reliability among home care "
                                     "clients (0.8 gave ~0.55; the rounding to whole points adds its own part)")
    rai_iadl_noise_sd: float = Field(0.32, description="SD of the IADL capacity assessment error; same-day r "
                                     "~rai_scale_reliability (0.8 gave ~0.6)")
    rai_cps_noise_sd: float = Field(0.5, description="SD of the CPS assessment error; same-day r ~0.9, already "
                                    "above rai_scale_reliability (cognition spreads widely among clients)")
    rai_chess_noise_sd: float = Field(0.42, description="SD of the CHESS assessment error; same-day r ~rai_item_kappa "
                                      "(0.8 gave ~0.5)")
    rai_drs_noise_sd: float = Field(0.82, description="SD of the DRS assessment error; same-day r ~rai_item_kappa "
                                    "(1.5 gave ~0.5)")
    rai_abs_noise_sd: float = Field(0.58, description="SD of the ABS assessment error; same-day r ~rai_item_kappa "
                                    "(1.2 gave ~0.5)")
    rai_after_discharge_share: float = Field(0.5, description="share of home care clients reassessed after an "
                                             "unplanned hospital stay (a return assessment, interRAI HC item A8: "
                                             "the instrument is redone after a hospital stay or a significant change "
                                             "in status, besides the routine six-monthly reassessment; how often "
                                             "Finnish home care does so is not published: assumption). 0 switches it off")
    rai_after_discharge_days: tuple[float, float] = Field((7.0, 28.0), description="a return assessment comes this "
                                                          "many days after the discharge, uniform (assumption: within "
                                                          "the first weeks back home, as the care plan is revised)")
    rai_significant_change_need: float = Field(0.07, description="rise in need (frailty + 0.06 x cognition) since "
                                               "the last interRAI assessment that the home care team notices as a "
                                               "significant change in status (about 0.8 SD of the clients' need, "
                                               "some 0.7 ADL-H points; assumption)")
    rai_significant_change_monthly: float = Field(0.4, description="monthly chance that such a change brings a "
                                                  "significant change in status reassessment (interRAI HC item A8; "
                                                  "the manual asks for one, practice does not always follow: "
                                                  "assumption). 0 switches it off")
    iot_share_of_homecare: float = Field(0.5, description="home care clients with fall and inactivity sensors (assumption)")
    # Chronic medication (issue 4): people with heart failure, COPD, diabetes or hypertension buy
    # their medicines at a pharmacy, Kela-reimbursed, at most three months at a time (Kela: one
    # purchase covers up to 3 months). Refills come late in proportion to latent non-adherence,
    # and non-adherence raises the admission hazard.
    chronic_med_supply_days: float = Field(90.0, description="days supplied per chronic medication purchase (Kela 3-month maximum)")
    chronic_med_lapse_per_adherence: float = Field(
        3.0, description="refill interval = supply x (1 + this x max(0.95 - adherence, 0)) (assumption; "
        "gives ~10-15 % of users a proportion of days covered below 0.8)")
    chronic_nonadherence_log_hazard: Sourced = src(
        0.3, "2006",
        "Ho et al., Arch Intern Med 2006 (diabetes: non-adherence, PDC < 0.8, OR 1.58 for all-cause "
        "hospitalisation); Sokol et al., Med Care 2005 (diabetes, hypertension, heart failure). Log hazard at "
        "adherence <= 0.80 for adults with one of the four conditions, 0 at >= 0.95; 0.3 keeps it, with the "
        "65+ all-medication term, at most log 1.58")
    frequent_er_75_target: Sourced = src(0.036, "2017", "Väisänen et al., Suom Lääkäril 2023: >= 4 ER visits/yr, 75+")
    # Bounce-back admissions (issue 4): patients treated and released from the ER are admitted well
    # above their age peers in the following days and weeks (Gabayan et al., Ann Emerg Med 2013;
    # Duseja et al., Ann Intern Med 2015). Hazards are constant within a month, so a visit in month m
    # raises the admission hazard from month m+1 on (on average half of its 30-day window).
    bounce_back_monthly: tuple[tuple[float, float], ...] = Field(
        default=((0, 0.015), (18, 0.05)),
        description="(age from, excess probability of an unplanned admission in the month after a month with one "
        "non-admitted ER visit): additive, not a multiplier, because published bounce-back rates rise with age far "
        "less than baseline admission risk (7-day: 4.6 % of 65+ Medicare visits, Gabayan et al., J Am Geriatr Soc "
        "2015; 2.2 % of all adult visits, Tarumi et al., Ther Clin Risk Manag 2019) while baseline risk rises ~10x. "
        "Adults' size set so the observed 30-day figure of 18-64 meets bounce_back_30d_18_64_target; children a "
        "third of it (assumption: paediatric return admissions are rarer). All zero switches it off")
    bounce_back_memory: float = Field(0.0, description="monthly decay of the recent-visit count: 0 keeps the excess "
                                      "to the month after the visit (returns and bounce-back admissions concentrate in "
                                      "the first days and weeks: Rising et al., Acad Emerg Med 2014, time-to-return "
                                      "curve; Duseja et al. 2015: 8.2 % of the 19.9 % 30-day revisits within 3 days). "
                                      "0.2 (a fifth in the month after that, 31-90 days) was measured and dropped: no "
                                      "source for an excess beyond 30 days, and more latent excess for the same 30-day "
                                      "figure (its acute oracle AUROC 0.802 / 0.788 against 0.823 / 0.794 is a test-period "
                                      "figure of development seeds 1 / 2, not the reason; docs/PROTOCOL.md)")
    bounce_back_cap: float = Field(2.0, description="cap of the recent-visit count in the hazard (assumption: a second "
                                   "visit adds as much as the first, more do not)")
    bounce_back_30d_18_64_target: Sourced = src(
        0.03, "2006-10",
        "derived: Duseja et al., Ann Intern Med 2015 (6 US states, adults): 19.9 % revisit within 30 days of a "
        "treat-and-release ED visit, 28 % of revisits admitted, i.e. ~5.6 % of all adults admitted within 30 days; "
        "with the 65+ at about twice the rate (Gabayan 2015), ~3-4.5 % remain under 65; the lower end for Finnish "
        "admission thresholds (Danish registers: 7.3-8.4 % 30-day readmission after short ED courses, all adults, "
        "Scand J Trauma Resusc Emerg Med 2024;32:32)")
    bounce_back_7d_65_target: Sourced = src(
        0.046, "2007", "Gabayan et al., J Am Geriatr Soc 2015;63:39-45: 4.6 % of ED discharges of 65+ Medicare "
        "patients admitted within 7 days (California, 505,315 visits)")


class InterventionConfig(_Frozen):
    """Who gets an intervention, and what it does to hazards (multipliers on ER and admission)."""

    remote_start_monthly: float = Field(0.012, description="monthly start among eligible home care clients (CPS < 3)")
    remote_video_share: float = Field(0.35, description="share of a remote client's home care contacts made by video")
    remote_video_share_target: Sourced = src(0.092, "2022", "LAB UAS citing Jääskeläinen & Tarvainen: video 9.2 % of home care contacts")
    remote_multiplier: Sourced = src(102 / 107, "n.d.", "Eksote presentation: ER visits 90 days before vs after remote visits, 107 -> 102 (253 users)")
    medrobot_start_monthly: float = Field(0.04, description="monthly start among home care clients at missed-dose risk")
    medrobot_share_target: Sourced = src(0.36, "n.d.", "Eksote presentation: medication robot suits ~36 % of home care customers")
    medrobot_multiplier: Sourced = src(0.90, "n.d.", "Eksote presentation: ER visits 90 days before vs after a medication robot, 10 -> 9")
    rehab_after_discharge: float = Field(0.30, description="chance of home rehabilitation after an unplanned discharge, 65+")
    rehab_after_fall: float = Field(0.20, description="chance of home rehabilitation after a fall, 65+")
    rehab_months: int = 3
    rehab_multiplier: float = Field(0.92, description="hazard multiplier while in home rehabilitation (assumption)")
    rehab_frailty_gain: float = Field(0.07, description="monthly fall of the frailty logit while in rehabilitation (assumption)")
    homecare_multiplier: float = Field(1.0, description="home care itself changes ER/admission hazard by (assumption: none)")
    care24h_multiplier: float = Field(0.8, description="ER/admission hazard in 24-hour care (on-site nursing; assumption)")


class TruthConfig(_Frozen):
    """How the ground truth is computed (Monte Carlo over the future, Rao-Blackwellised)."""

    hospitalisation_paths: int = Field(4, ge=1, le=256, description="paths per person (relative MC SD ~14 % at 4)")
    homecare_failure_paths: int = Field(48, ge=1, le=1024)
    chunk_rows: int = Field(60_000, ge=1000, description="customers per vectorised block")
    hospitalisation_days: int = 90
    homecare_failure_days: int = 180


def _first_of_month_date(value: dt.date) -> dt.date:
    if value.day != 1:
        raise ValueError(f"a shift starts on the first day of a month (got {value})")
    return value


class _FromAMonth(_Frozen):
    """A shift that applies from the first day of a month (its `start`)."""

    @field_validator("start", check_fields=False)
    @classmethod
    def _first_of_month(cls, value: dt.date) -> dt.date:
        return _first_of_month_date(value)


class CodingChange(_FromAMonth):
    """From `start` on, `code` is recorded as `recorded_as`, or no longer recorded at all (None).

    A change in how the region records, not in what happens: the latent world, its hazards and
    the truth stay as they were; only the events written from `start` on differ (an event of the
    code at or after `start`, after the clean-up passes, is renamed or dropped). Only plain event
    codes can change (no value, cost per event), and never the codes the outcomes, stays, services
    and exits are read from (admissions, discharges, service starts and ends, 24-hour care, death,
    moving)."""

    start: dt.date = Field(description="first day of the month from which the code is recorded differently")
    code: str = Field(description="the code whose recording changes, e.g. ICPC2/R74")
    recorded_as: str | None = Field(None, description="the code it is recorded as from `start` on; None: it stops "
                                    "being recorded")

    @model_validator(mode="after")
    def _plain_codes(self) -> "CodingChange":
        from synthetic.codes import recodable_codes

        allowed = recodable_codes()
        for name, code in (("code", self.code), ("recorded_as", self.recorded_as)):
            if code is not None and code not in allowed:
                raise ValueError(f"coding change: {name} {code!r} cannot change; a coding change applies to plain event "
                                 f"codes of the catalogue (no value, not an outcome, stay, service start or end, "
                                 f"exit): {', '.join(sorted(allowed))}")
        if self.recorded_as == self.code:
            raise ValueError(f"coding change: {self.code} recorded as itself is no change")
        return self


class HomeCareCut(_FromAMonth):
    """From `start` on, home care capacity is cut: the need a client must have to start home care
    (and to keep it) rises by `need_rise` (need = frailty + 0.06 x cognition; the clients' SD is
    ~0.09), and service need assessments (PTA) are made `assessment_multiplier` times as often.
    A change in the world: fewer people get home care, and those without it have the hazards of
    people without it (the truth's future paths run the same rule, so the truth stays the truth)."""

    start: dt.date = Field(description="first day of the month from which the cut applies")
    need_rise: float = Field(0.05, ge=0.0, le=0.5, description="rise of the need threshold for home care")
    assessment_multiplier: float = Field(1.0, ge=0.0, le=1.0, description="monthly chance of a PTA, relative to before")


# The services whose uptake a roll-out can change: the names of SimulatorConfig.without_effect.
RolloutService = Literal["remote", "medrobot", "rehab"]
ROLLOUT_SERVICES: tuple[str, ...] = get_args(RolloutService)


class ServiceRollout(_FromAMonth):
    """From `start` on, the monthly chance that an eligible person starts `service` is multiplied
    by `uptake_multiplier`: remote video visits (home care clients with CPS < 3,
    interventions.remote_start_monthly), the medication robot (home care clients at missed-dose
    risk, interventions.medrobot_start_monthly) or home rehabilitation (65+ after an unplanned
    discharge or a fall, interventions.rehab_after_discharge and rehab_after_fall). Who is eligible
    does not change, and a chance above 1 is 1. A change in the world: the services' effects on the
    hazards follow as modelled, and the truth's future paths run the same rule (the truth stays the
    truth). People moving in after `start` bring the services they had where they came from: their
    first state is drawn as before (assumption: the roll-out is the region's own)."""

    start: dt.date = Field(description="first day of the month from which the service is rolled out")
    service: RolloutService = Field(
        description="the service rolled out: remote (video visits), medrobot (medication robot) or rehab "
        "(home rehabilitation)")
    uptake_multiplier: float = Field(ge=0.0, description="the monthly chance of starting the service, relative to "
                                     "before (2: twice as many starts among the eligible; below 1 a cut-back)")


class AgeingShift(_FromAMonth):
    """From `start` on, the people moving into the region are older: the weight of the 65+ in the
    in-movers' age structure (population weight x moving rate by age, population.py) is multiplied
    by `in_movers_65_plus_multiplier` and the weights renormalised, so the region's 65+ grow faster
    than before. The number of in-movers stays what move_in_balance sets (out-moves balanced). An
    in-mover after `start` is, with the probability that gives the new age structure, replaced by
    one drawn from the 65+ movers (age, sex, and a first state drawn as for any in-mover of that
    age: home care, conditions and all); the others stay as they were.

    Why in-movers' ages, not their number or young people leaving: every in-mover is drawn when the
    population is built, and the pool's size sets the shape of every monthly random draw, so more
    in-movers would change everyone's random numbers from the burn-in on, and nothing before the
    start could stay as it was; ages can change without touching any other draw (the older
    in-movers come from a random stream of their own). Young residents moving out more would shrink
    the region and raise the 65+ share, but not their number."""

    start: dt.date = Field(description="first day of the month from which the in-movers are older")
    in_movers_65_plus_multiplier: float = Field(
        ge=1.0, description="weight of the 65+ in the in-movers' age structure, relative to before (1: no change; "
        "the default region's 65+ are ~9 % of in-movers, so 5 makes them ~32 %)")


class ShiftConfig(_Frozen):
    """Switches that change the region at a date, so that monitoring can be tested against a known
    cause. The default (no shift) leaves every output as it was, byte for byte."""

    coding: tuple[CodingChange, ...] = ()
    homecare_cut: HomeCareCut | None = None
    rollouts: tuple[ServiceRollout, ...] = Field((), description="service roll-outs, at most one per service")
    ageing: AgeingShift | None = Field(None, description="older in-movers from a month on")

    @model_validator(mode="after")
    def _one_change_per_code(self) -> "ShiftConfig":
        codes = [change.code for change in self.coding]
        if len(codes) != len(set(codes)):
            raise ValueError("coding changes: at most one change per code")
        return self

    @model_validator(mode="after")
    def _one_rollout_per_service(self) -> "ShiftConfig":
        services = [rollout.service for rollout in self.rollouts]
        if len(services) != len(set(services)):
            raise ValueError("roll-outs: at most one roll-out per service")
        return self

    @model_serializer(mode="wrap")
    def _switches_in_use(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        # The switches added after the first two are written only when set, so a config without
        # them dumps as before (truth/simulator_config.json and dataset.json, byte for byte).
        data = handler(self)
        for name in ("rollouts", "ageing"):
            if not getattr(self, name):
                data.pop(name, None)
        return data

    @property
    def any(self) -> bool:
        return bool(self.coding) or self.homecare_cut is not None or bool(self.rollouts) or self.ageing is not None

    def starts(self) -> list[dt.date]:
        """The start of every switch that is set."""
        starts = [change.start for change in self.coding] + [rollout.start for rollout in self.rollouts]
        starts += [switch.start for switch in (self.homecare_cut, self.ageing) if switch is not None]
        return starts

    def homecare_need_rise(self, mi: int) -> float:
        """The rise of the home care need threshold in month index mi (months since 2000-01)."""
        cut = self.homecare_cut
        if cut is None or mi < month_index(cut.start):
            return 0.0
        return cut.need_rise

    def homecare_assessment_multiplier(self, mi: int) -> float:
        cut = self.homecare_cut
        if cut is None or mi < month_index(cut.start):
            return 1.0
        return cut.assessment_multiplier

    def uptake_multiplier(self, service: str, mi: int) -> float:
        """The multiplier of `service`'s monthly start chance in month index mi (1 without a roll-out)."""
        if service not in ROLLOUT_SERVICES:
            raise ValueError(f"unknown service {service!r} (roll-outs: {', '.join(ROLLOUT_SERVICES)})")
        for rollout in self.rollouts:
            if rollout.service == service and mi >= month_index(rollout.start):
                return rollout.uptake_multiplier
        return 1.0


class SimulatorConfig(_Frozen):
    """One simulation: size, calendar, seed and every model parameter."""

    region: str = Field("eksote", description="the region simulated (data_contracts/regions.py); its parameter sets "
                        "come from synthetic/regions.py (`region_config`)")
    customers: int = Field(20_000, description="residents at the extract start")
    years: int = 5  # warm-up 12 mo + train >= 12 + gap 6 + validation 6 + gap 6 + test 6 + 180-day labels 6 (experiments/)
    seed: int = 42
    # Added to every pseudonym: the regions of one multi-region dataset get disjoint ids (a national
    # extract pseudonymises project-wide); 0 keeps a single region's ids (and bytes) as they were.
    subject_id_offset: int = Field(0, ge=0, le=2**62, description="added to every subject_id (region i of a multi-region dataset: i x 10,000,000)")
    start: dt.date = dt.date(2022, 1, 1)
    burn_in_months: int = Field(24, ge=0, le=120)
    population: PopulationConfig = PopulationConfig()
    health: HealthConfig = HealthConfig()
    mental: MentalConfig = MentalConfig()
    child: ChildConfig = ChildConfig()
    care: CareConfig = CareConfig()
    interventions: InterventionConfig = InterventionConfig()
    truth: TruthConfig = TruthConfig()
    compute_truth: bool = True
    conditions: ConditionsConfig = ConditionsConfig()
    shifts: ShiftConfig = Field(ShiftConfig(), description="changes of the world at a date (none by default)")

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        from data_contracts.regions import region

        return region(value).name

    @model_validator(mode="after")
    def _municipalities_of_the_region(self) -> "SimulatorConfig":
        from data_contracts.regions import region

        names = tuple(name for name, _ in self.population.municipality_sizes)
        if set(names) != set(region(self.region).municipalities):
            raise ValueError(f"population.municipality_sizes must name the municipalities of {self.region}: "
                             f"{', '.join(region(self.region).municipalities)} (got {', '.join(names)})")
        if len(names) > len(MUNICIPALITY_NAMES):  # the simulator's units are laid out for at most that many
            raise ValueError(f"a region may have at most {len(MUNICIPALITY_NAMES)} municipalities (got {len(names)})")
        return self

    @model_validator(mode="after")
    def _shifts_inside_the_extract(self) -> "SimulatorConfig":
        end = dt.date(self.start.year + self.years, self.start.month, 1)
        for start in self.shifts.starts():
            if not self.start <= start < end:
                raise ValueError(f"a shift must start inside the extract ({self.start} .. {end}), got {start}")
        return self

    def municipality_names(self) -> tuple[str, ...]:
        """The simulated municipalities in the order of population.municipality_sizes (population
        index i is the i-th of them)."""
        return tuple(name for name, _ in self.population.municipality_sizes)

    @field_validator("customers")
    @classmethod
    def _positive_customers(cls, value: int) -> int:
        if value < 1:
            raise ValueError("customers must be >= 1")
        return value

    @field_validator("years")
    @classmethod
    def _positive_years(cls, value: int) -> int:
        if not 1 <= value <= 30:
            raise ValueError("years must be between 1 and 30")
        return value

    @field_validator("start")
    @classmethod
    def _first_of_month(cls, value: dt.date) -> dt.date:
        if value.day != 1:
            raise ValueError("start must be the first day of a month")
        return value

    def without_effect(self, *names: str) -> "SimulatorConfig":
        """The same config with intervention effects switched off (multiplier 1, no frailty gain)."""
        update: dict[str, object] = {}
        iv = self.interventions
        for name in names:
            if name == "remote":
                update["remote_multiplier"] = iv.remote_multiplier.model_copy(update={"value": 1.0})
            elif name == "medrobot":
                update["medrobot_multiplier"] = iv.medrobot_multiplier.model_copy(update={"value": 1.0})
            elif name == "rehab":
                update["rehab_multiplier"] = 1.0
                update["rehab_frailty_gain"] = 0.0
            elif name == "homecare":
                update["homecare_multiplier"] = 1.0
            else:
                raise ValueError(f"unknown intervention {name!r}")
        return self.model_copy(update={"interventions": iv.model_copy(update=update)})


def sourced_parameters(config: SimulatorConfig) -> list[dict[str, object]]:
    """Every Sourced value in the config as rows (path, value, year, source), for docs and reports."""
    rows: list[dict[str, object]] = []

    def walk(obj: object, path: str) -> None:
        if isinstance(obj, Sourced):
            rows.append({"parameter": path, "value": obj.value, "year": obj.year, "source": obj.source})
        elif isinstance(obj, BaseModel):
            for name in type(obj).model_fields:
                walk(getattr(obj, name), f"{path}.{name}" if path else name)
        elif isinstance(obj, tuple):
            for item in obj:
                if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                    walk(item[1], f"{path}[{item[0]}]")

    walk(config, "")
    return rows
