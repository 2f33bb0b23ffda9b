"""Latent states, the hazards they imply, and their monthly evolution.

The same three functions drive the simulation and the ground truth:
    rates(state, mi)                     hazards for month mi, from the state at its first day
    advance(state, mi, rates, U, Z, ind) the state at the first day of month mi + 1
    draw_shapes()                        how many uniforms / normals advance() consumes per person
so the truth's Monte Carlo paths follow exactly the law of the simulated world. All randomness
that feeds back into the state is drawn as fixed-shape arrays (one row per purpose, one column
per person), so two runs with the same seed share their random numbers even when an
intervention's effect differs (common random numbers).

Time-varying "indicators" that come from the timed processes of the month (admitted, hip
fracture, discharged, moved to 24-hour care) are passed in: the simulation takes them from the
events it drew; the truth samples them conditionally on the outcome not having happened yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import ndtri

from synthetic.config import ConditionConfig, SimulatorConfig
from synthetic.population import move_out_yearly
from synthetic.timeline import month_start_days

N_BANDS = 21
DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12

# Rows of the uniform matrix U and the normal matrix Z consumed by advance().
(U_DEM, U_HF, U_COPD, U_DM, U_HTN, U_DEP, U_DEPDX, U_AD, U_PTA, U_HC, U_REMOTE, U_ROBOT, U_REHAB,
 U_CRISIS, U_OPEN, U_PLACE, U_FALL, U_NOTIF, U_DEMDX, U_ALONE, U_CGD, U_BPSD, U_ICF, U_SH,
 U_ASTHMA, U_EPI, U_T1D, U_CP, U_ER) = range(29)
N_U = 29
Z_FRAIL, Z_ACUTE, Z_COG, Z_SEV, Z_FAM, Z_ADH = range(6)
N_Z = 6

STATIC = ("birth_mi", "female", "u", "hc_int", "adh_ind", "iot", "sud", "er_prop")
DYNAMIC = (
    "frail_z", "acute", "cog", "dem", "dem_dx", "hf", "copd", "dm", "htn",
    "dep", "dep_sev", "dep_dx", "dep_n", "ad_on", "ad_stop", "adh_noise",
    "fam_r", "crisis", "cw_open", "placed",
    "hc", "remote", "robot", "rehab_left", "c24", "busy", "recent_dc", "fall_hist",
    # living situation and informal care (home-care failure); self-harm history (depression)
    "alone", "cg_distress", "bpsd", "ic_fee", "sh_hist", "loss_hist",
    "asthma", "epi", "t1d", "cp",
    # non-admitted ER visits of the month before (+ memory x older ones): bounce-back admissions
    "er_recent",
)
# Childhood-onset chronic conditions: State field -> config.conditions field.
CONDITIONS = (("asthma", "asthma"), ("epi", "epilepsy"), ("t1d", "type1_diabetes"), ("cp", "cerebral_palsy"))
_CONDITION_U = {"asthma": U_ASTHMA, "epi": U_EPI, "t1d": U_T1D, "cp": U_CP}


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class State:
    """Struct of arrays, one element per person (or per person x Monte Carlo path)."""

    __slots__ = STATIC + DYNAMIC

    def __init__(self, **arrays: np.ndarray) -> None:
        for name in STATIC + DYNAMIC:
            setattr(self, name, arrays[name])

    def __len__(self) -> int:
        return len(self.frail_z)

    def as_dict(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in STATIC + DYNAMIC}

    def take(self, index: np.ndarray) -> "State":
        return State(**{name: value[index] for name, value in self.as_dict().items()})

    def replace(self, **changes: np.ndarray) -> "State":
        arrays = self.as_dict()
        arrays.update(changes)
        return State(**arrays)


@dataclass(frozen=True)
class Norms:
    """Per-age-band base hazards chosen so that band averages meet the targets (per day / month)."""

    adm: np.ndarray
    er: np.ndarray
    death: np.ndarray
    notif: np.ndarray
    er_low: np.ndarray  # low-acuity ER visits (without admission)
    adm_inj: np.ndarray  # unplanned admissions for injuries and poisonings
    c24: float = 1.0  # divides the 24-hour care hazard: the mean of its extra factors among 65+ home care clients


def mean_frailty_logit(config: SimulatorConfig, age: np.ndarray) -> np.ndarray:
    h = config.health
    return h.frailty_logit_at_40 + h.frailty_logit_per_year * np.maximum(age - 40.0, 0.0)


def condition_incidence(cond: ConditionConfig, age: np.ndarray) -> np.ndarray:
    """Yearly onset hazard by age (step profile)."""
    return _step_profile(cond.incidence_yearly, np.asarray(age, dtype="float64"))


@lru_cache(maxsize=16)
def _prevalence_by_month(cond: ConditionConfig) -> np.ndarray:
    months = np.arange(0, 12 * 112)
    inc = condition_incidence(cond, months / 12.0) / 12.0
    rem = cond.remission_yearly / 12.0
    p = np.zeros(len(months) + 1)
    for k in range(len(months)):
        p[k + 1] = p[k] + inc[k] * (1 - p[k]) - rem * p[k]
    return p


def condition_prevalence(cond: ConditionConfig, age: np.ndarray) -> np.ndarray:
    """Share with the condition active at `age`, from the onset and remission rates (monthly steps
    from birth; the same law advance() follows, so the initial state is in balance with it)."""
    p = _prevalence_by_month(cond)
    return np.interp(np.asarray(age, dtype="float64") * 12.0, np.arange(len(p)), p)


def initial_state(config: SimulatorConfig, age: np.ndarray, female: np.ndarray, birth_mi: np.ndarray,
                  rng: np.random.Generator) -> State:
    """Draw each person's state at the age they have when they first appear."""
    n = len(age)
    h, m, c = config.health, config.mental, config.care
    U = rng.random((22, n))
    Z = rng.standard_normal((8, n))
    U2 = rng.random((5, n))  # living situation, carer, behaviour, informal care, alcohol use disorder
    frail_z = mean_frailty_logit(config, age) + h.frailty_logit_sd * Z[0]
    f = sigmoid(frail_z)
    dem = (age >= 60) & (U[0] < np.clip(0.12 * np.exp(0.1 * (age - 82)), 0, 0.6))
    cog = np.where(dem, np.clip(1.0 + rng.exponential(1.3, n), 0, 6),
                   np.where(age > 70, np.clip(0.3 * np.abs(Z[1]), 0, 0.9), 0.0))
    need = f + 0.06 * cog
    male = ~female
    hf = (age >= 40) & (U[1] < np.clip(0.01 * np.exp(0.08 * (age - 60)), 0, 0.35))
    copd = (age >= 40) & (U[2] < np.clip(0.03 + 0.0015 * (age - 50), 0, 0.12) * np.where(male, 1.4, 1.0))
    dm = (age >= 30) & (U[3] < np.clip(0.1 + 0.004 * (age - 60), 0.01, 0.25))
    htn = (age >= 30) & (U[4] < np.clip(0.3 + 0.012 * (age - 60), 0.02, 0.7))
    sud = U2[4] < sud_share(config, age, female)
    dep = U[5] < (np.where(age >= 15, 0.035, np.where(age >= 10, 0.01, 0.0))
                  * np.where(sud & (age >= 15), m.sud_depression_onset_multiplier, 1.0))
    dep_sev = np.where(dep, np.clip(13 + 4 * np.abs(Z[2]), 5, 27), np.clip(3 + 2 * np.abs(Z[2]), 0, 9))
    dep_dx = dep & (U[6] < 0.6)
    ad_on = dep_dx & (U[7] < config.mental.antidepressant_start_share)
    dep_n = (dep.astype("int16") + rng.poisson(np.where(age >= 18, 0.3, 0.0)).astype("int16"))
    fam_r = Z[3]
    child = age < 18
    crisis = child & (U[8] < 0.025 * np.exp(0.8 * fam_r))
    cw_open = child & (U[9] < np.clip(0.012 * np.exp(0.9 * fam_r) + 0.2 * crisis, 0, 0.9))
    placed = child & ~cw_open & (U[10] < 0.005 * np.exp(0.9 * fam_r))
    thr = config.care.need_threshold_homecare
    c24 = (age >= 70) & (U[11] < 0.85 * sigmoid((need - 0.68) / 0.05))
    hc = (age >= 65) & ~c24 & (U[12] < 0.9 * sigmoid((need - thr) / 0.04))
    remote = hc & (cog < 3) & (U[13] < 0.2)
    robot = hc & (U[14] < 0.3)
    alone = U2[0] < alone_share(config, age, female)
    bpsd = dem & (U2[1] < np.clip(c.bpsd_onset_monthly / (c.bpsd_onset_monthly + c.bpsd_remission_monthly) * cog / 3, 0, 0.5))
    onset = cg_distress_onset(config, need, bpsd)
    cg_distress = (age >= 65) & ~alone & (U2[2] < onset / (onset + c.cg_distress_remission_monthly))
    ic_fee = hc & ~alone & (need > thr) & (U2[3] < 0.25)
    # From a spare uniform row (not a new draw), so every other initial value keeps its numbers.
    er_sd = h.er_propensity_sd
    rho = h.er_propensity_u_correlation
    er_z = rho * Z[4] + np.sqrt(1 - rho * rho) * ndtri(np.clip(U[17], 1e-12, 1 - 1e-12))
    er_prop = er_sd * er_z - er_sd**2 / 2
    # Rows 18-21 of U (17 is the ER-use propensity's): one per childhood-onset condition.
    cond = {field: U[18 + k] < condition_prevalence(getattr(config.conditions, name), age)
            for k, (field, name) in enumerate(CONDITIONS)}
    return State(
        birth_mi=birth_mi, female=female,
        u=h.individual_frailty_sd * Z[4] - h.individual_frailty_sd**2 / 2,
        hc_int=0.5 * Z[5], adh_ind=0.5 * Z[6], iot=U[15] < config.care.iot_share_of_homecare,
        frail_z=frail_z, acute=Z[7], cog=cog, dem=dem, dem_dx=dem & (U[16] < 0.6),
        hf=hf, copd=copd, dm=dm, htn=htn, dep=dep, dep_sev=dep_sev, dep_dx=dep_dx, dep_n=dep_n,
        ad_on=ad_on, ad_stop=np.full(n, 10**6, dtype="int64"), adh_noise=rng.standard_normal(n),
        fam_r=fam_r, crisis=crisis, cw_open=cw_open, placed=placed,
        hc=hc, remote=remote, robot=robot, rehab_left=np.zeros(n, dtype="int8"), c24=c24,
        busy=np.full(n, -np.inf), recent_dc=np.zeros(n, bool), fall_hist=np.zeros(n),
        sud=sud, alone=alone, cg_distress=cg_distress, bpsd=bpsd, ic_fee=ic_fee, sh_hist=np.zeros(n),
        loss_hist=np.zeros(n), er_prop=er_prop,
        **cond,
        # No recent ER visits at the first draw (no new random numbers, so every other initial value
        # keeps its numbers); the 24-month burn-in fills it before the extract starts.
        er_recent=np.zeros(n),
    )


def sud_share(config: SimulatorConfig, age: np.ndarray, female: np.ndarray) -> np.ndarray:
    """Chance of a (static) alcohol use disorder liability; it acts from age 15 (sud_on)."""
    m = config.mental
    return np.where(female, m.sud_share_women, m.sud_share_men) * np.where(age >= 70, 0.5, 1.0)


def sud_on(s: State, age: np.ndarray) -> np.ndarray:
    return s.sud & (age >= 15)


def alone_share(config: SimulatorConfig, age: np.ndarray, female: np.ndarray) -> np.ndarray:
    """Share living alone by age and sex at the first draw (below 65 the 65 level; it only acts 65+)."""
    c = config.care
    years = np.maximum(age - 65.0, 0.0)
    return np.where(female, np.minimum(c.alone_share_women_at_65 + 0.015 * years, 0.85),
                    np.minimum(c.alone_share_men_at_65 + 0.008 * years, 0.6))


def cg_distress_onset(config: SimulatorConfig, need: np.ndarray, bpsd: np.ndarray) -> np.ndarray:
    """Monthly onset of caregiver distress: heavier care (need) and behavioural symptoms wear carers out."""
    c = config.care
    return np.clip(c.cg_distress_onset_monthly * np.exp(4.0 * (need - 0.5)) * np.where(bpsd, 2.0, 1.0), 0.0, 0.5)


# ---------------------------------------------------------------------------------------------
# Hazards


def _step_profile(pairs: tuple[tuple[float, float], ...], age: np.ndarray) -> np.ndarray:
    starts = np.array([a for a, _ in pairs])
    values = np.array([v for _, v in pairs])
    return values[np.searchsorted(starts, age, side="right") - 1]


def band_of(age: np.ndarray) -> np.ndarray:
    return np.clip((age // 5).astype("int64"), 0, N_BANDS - 1)


def band_targets(config: SimulatorConfig) -> dict[str, np.ndarray]:
    """Target average hazards per five-year band (ER and admission per day, death per day)."""
    mid = np.arange(N_BANDS) * 5 + 2.5
    c = config.care
    er = _step_profile(c.er_per_1000py, mid) / 1000.0 / DAYS_PER_YEAR
    admitted = _step_profile(c.admitted_share_of_er, mid)
    low = _step_profile(c.er_low_acuity_share, mid)
    injury = _step_profile(c.injury_admission_share, mid)
    death_p = np.interp(mid, c.death_age_knots, c.death_yearly)
    notif_share = np.where(mid < 5, 0.07, np.where(mid < 10, 0.085, np.where(mid < 15, 0.125, 0.135)))
    notif_share = np.where(mid < 18, notif_share, 0.0) * config.child.notification_share_target.value / 0.10
    return {
        "adm": er * admitted * (1 - injury),
        "adm_inj": er * admitted * injury,
        "er": er * (1 - admitted) * (1 - low),
        "er_low": er * (1 - admitted) * low,
        "death": -np.log1p(-death_p) / DAYS_PER_YEAR,
        "notif": notif_share * 1.3 / 12.0,
    }


def _eta(s: State, age: np.ndarray, f: np.ndarray, adh: np.ndarray, config: SimulatorConfig) -> dict[str, np.ndarray]:
    iv = config.interventions
    log_mult = (
        np.where(s.remote & s.hc, np.log(iv.remote_multiplier.value), 0.0)
        + np.where(s.robot, np.log(iv.medrobot_multiplier.value), 0.0)
        + np.where(s.rehab_left > 0, np.log(iv.rehab_multiplier), 0.0)
        + np.where(s.hc, np.log(iv.homecare_multiplier), 0.0)
        + np.where(s.c24, np.log(iv.care24h_multiplier), 0.0)
    )
    child = age < 18
    ch = config.child
    child_crisis = np.where(child & s.crisis, ch.crisis_admission_log_hazard, 0.0)
    family = np.where(child, ch.family_log_hazard.value * s.fam_r, 0.0)
    cond_adm, cond_er = condition_log_rates(s, child, config)
    old = age >= 65
    m = config.mental
    alcohol = sud_on(s, age)
    h, c = config.health, config.care
    adm = (3.2 * f + 0.55 * s.acute + s.u + 0.7 * s.hf + 0.6 * s.copd + 0.25 * s.dm + 0.3 * s.dem
           + 0.35 * s.dep + child_crisis + np.where(old, 0.8 * (1 - adh), 0.0) + log_mult
           + c.chronic_nonadherence_log_hazard.value * chronic_nonadherence(s, age, adh)
           + m.sud_admission_log_hazard * alcohol
           + m.severity_admission_log_hazard * (s.dep_sev - 13.0) * s.dep
           + m.self_harm_admission_log_hazard * np.minimum(s.sh_hist, 2.0)
           + family + cond_adm)
    er = (3.5 * f + 0.6 * s.acute + h.er_individual_weight * s.u + 0.6 * s.hf + 0.6 * s.copd + 0.2 * s.dm
          + 0.5 * s.dep + 0.4 * child_crisis + log_mult + m.sud_er_log_hazard * alcohol
          + family + cond_er)
    # Low-acuity visits (injuries, minor and social complaints): the persistent ER-use propensity,
    # a little frailty (falls), depression (psychosocial need); not u, acute illness or conditions.
    er_low = s.er_prop + h.er_low_acuity_frailty_weight * f + 0.3 * s.dep + log_mult
    # Injury and poisoning admissions: the same propensity (weaker), frailty; not u or conditions.
    adm_inj = c.injury_propensity_weight * s.er_prop + h.er_low_acuity_frailty_weight * f + log_mult
    death = (3.0 * f + 0.6 * s.hf + 0.5 * s.copd + 0.5 * s.dem + 0.25 * s.acute + 0.4 * ~s.female
             + 0.3 * s.c24)
    notif = np.where(age < 18, 0.9 * s.fam_r + 1.6 * s.crisis, 0.0)
    return {"adm": adm, "adm_inj": adm_inj, "er": er, "er_low": er_low, "death": death, "notif": notif}


def on_chronic_medication(s: State, age: np.ndarray) -> np.ndarray:
    """Adults with a condition treated by long-term medicines bought at a pharmacy (24-hour care
    residents get theirs from the unit, with no pharmacy purchase)."""
    return (age >= 18) & (s.hf | s.copd | s.dm | s.htn) & ~s.c24


def chronic_nonadherence(s: State, age: np.ndarray, adh: np.ndarray) -> np.ndarray:
    """0 at adherence >= 0.95 rising to 1 at <= 0.80, for people on chronic medication."""
    return np.where(on_chronic_medication(s, age), np.clip((0.95 - adh) / 0.15, 0.0, 1.0), 0.0)


def condition_log_rates(s: State, child: np.ndarray, config: SimulatorConfig) -> tuple[np.ndarray, np.ndarray]:
    """Log relative rates of admission and ER visits from the childhood-onset conditions."""
    adm = np.zeros(len(child))
    er = np.zeros(len(child))
    for field, name in CONDITIONS:
        c = getattr(config.conditions, name)
        on = getattr(s, field)
        adm = adm + np.where(on, np.log(np.where(child, c.admission_rr_child.value, c.admission_rr_adult)), 0.0)
        er = er + np.where(on, np.log(np.where(child, c.er_rr_child, c.er_rr_adult)), 0.0)
    return adm, er


def compute_norms(config: SimulatorConfig, s: State, mi: int, active: np.ndarray) -> Norms:
    """Base hazards per band so that the band's mean hazard over `active` people hits the target."""
    age = (mi - s.birth_mi) / 12.0
    f = sigmoid(s.frail_z)
    adh = adherence(s)
    eta = _eta(s, age, f, adh, config)
    band = band_of(age)[active]
    targets = band_targets(config)
    count = np.bincount(band, minlength=N_BANDS)
    # Bounce-back admissions are part of the band's admissions, not on top of them: their band mean
    # (from the visits the state remembers) comes off the medical admission target (floor: a fifth
    # of it, never reached with the configured sizes).
    bounce = np.bincount(band, weights=bounce_back_hazard(config, age, s.er_recent)[active], minlength=N_BANDS)
    bounce = np.where(count > 0, bounce / np.maximum(count, 1), 0.0)
    targets["adm"] = np.maximum(targets["adm"] - bounce, 0.2 * targets["adm"])
    out = {}
    for key in ("adm", "adm_inj", "er", "er_low", "death", "notif"):
        mult = np.exp(eta[key][active])
        total = np.bincount(band, weights=mult, minlength=N_BANDS)
        mean = np.where(count > 0, total / np.maximum(count, 1), 1.0)
        out[key] = targets[key] / mean
    # The extra 24-hour care factors redistribute the risk among home care clients, they do not add
    # to it: their mean over the 65+ clients is divided out (so the 24-hour care share stays where
    # need, dementia and discharges put it).
    clients = active & (age >= 65) & s.hc & ~s.c24
    extra = _c24_extra(s, config)[clients]
    return Norms(**out, c24=float(extra.mean()) if len(extra) else 1.0)


def _c24_extra(s: State, config: SimulatorConfig) -> np.ndarray:
    """24-hour care hazard factors beyond need, home care, discharge and dementia: recent falls,
    depression, acute health instability, living alone, a distressed carer and behavioural symptoms."""
    c = config.care
    return (np.exp(c.care24h_fall_log_hazard * np.minimum(s.fall_hist, 2.0)
                   + c.care24h_instability_log_hazard * s.acute
                   + c.care24h_alone_log_hazard * s.alone
                   + c.care24h_cg_distress_log_hazard * (s.cg_distress & ~s.alone)
                   + c.care24h_bpsd_log_hazard * s.bpsd
                   + c.care24h_partner_loss_log_hazard * np.minimum(s.loss_hist, 1.0))
            * np.where(s.dep, c.care24h_depression_multiplier, 1.0))


def adherence(s: State) -> np.ndarray:
    """Latent medication adherence (share of doses taken), lower with cognition and depression."""
    return sigmoid(s.adh_ind + 2.6 - 0.5 * s.cog - 0.12 * (s.dep_sev - 8.0) * s.dep + 0.5 * s.adh_noise)


@dataclass
class Rates:
    """Hazards for one month; *_d are per day, *_m are expected counts per month."""

    age: np.ndarray
    band: np.ndarray
    f: np.ndarray
    need: np.ndarray
    adh: np.ndarray
    adm_d: np.ndarray  # unplanned admission (before the post-discharge multiplier; medical and injury)
    er_d: np.ndarray  # ER visits without admission (medical and low-acuity)
    death_d: np.ndarray
    move_d: np.ndarray
    c24_d: np.ndarray
    p_hip: np.ndarray
    fall_m: np.ndarray
    notif_m: np.ndarray
    er_low_d: np.ndarray  # the low-acuity part of er_d
    adm_inj_d: np.ndarray  # the injury and poisoning part of adm_d
    bounce_d: np.ndarray  # the bounce-back part of adm_d: excess after recent non-admitted ER visits

    def take(self, index: np.ndarray) -> "Rates":
        return Rates(**{k: v[index] for k, v in self.__dict__.items()})


def rates(s: State, mi: int, config: SimulatorConfig, norms: Norms) -> Rates:
    age = (mi - s.birth_mi) / 12.0
    band = band_of(age)
    f = sigmoid(s.frail_z)
    need = f + 0.06 * s.cog
    adh = adherence(s)
    eta = _eta(s, age, f, adh, config)
    c = config.care
    old = age >= 65
    c24_d = np.where(
        old & ~s.c24,
        c.care24h_monthly_at_need_065 / DAYS_PER_MONTH * np.exp(8.0 * (need - 0.65))
        * np.where(s.hc, 1.0, 0.3) * np.where(s.recent_dc, 2.0, 1.0) * np.where(s.dem, 1.6, 1.0)
        * _c24_extra(s, config) / norms.c24,
        0.0,
    )
    h = config.health
    fall_m = np.where(age >= 50, h.fall_monthly_base + h.fall_monthly_frailty * f * f, h.fall_monthly_base / 2)
    fall_m = fall_m * np.where(s.dem, 1.5, 1.0)
    er_low_d = norms.er_low[band] * np.exp(eta["er_low"])
    adm_inj_d = norms.adm_inj[band] * np.exp(eta["adm_inj"])
    bounce_d = bounce_back_hazard(config, age, s.er_recent)
    return Rates(
        age=age, band=band, f=f, need=need, adh=adh,
        adm_d=norms.adm[band] * np.exp(eta["adm"]) + adm_inj_d + bounce_d,
        er_d=norms.er[band] * np.exp(eta["er"]) + er_low_d,
        death_d=norms.death[band] * np.exp(eta["death"]),
        move_d=np.where(s.c24, 0.1, 1.0) * -np.log1p(-move_out_yearly(config, age)) / DAYS_PER_YEAR,
        c24_d=c24_d,
        p_hip=np.where(old, np.clip(0.06 * f / 0.3 * np.where(s.female, 1.3, 1.0), 0, 0.4), 0.0),
        fall_m=fall_m,
        notif_m=np.where(age < 18, norms.notif[band] * np.exp(eta["notif"]), 0.0),
        er_low_d=er_low_d,
        adm_inj_d=adm_inj_d,
        bounce_d=bounce_d,
    )


def bounce_back_hazard(config: SimulatorConfig, age: np.ndarray, er_recent: np.ndarray) -> np.ndarray:
    """Excess unplanned admission hazard (per day) after recent non-admitted ER visits: the
    configured excess monthly probability per visit of the month before, times the decaying visit
    count (capped). Additive, not a multiplier: the published bounce-back rates rise with age far
    less than the baseline admission risk does (see config.care.bounce_back_monthly)."""
    c = config.care
    p = _step_profile(c.bounce_back_monthly, np.asarray(age, dtype="float64"))
    return -np.log1p(-p) / DAYS_PER_MONTH * np.minimum(er_recent, c.bounce_back_cap)


def post_discharge_multiplier(s: State, month_start: float, config: SimulatorConfig) -> np.ndarray:
    """Admission hazard multiplier in a month: readmission risk after a recent or same-month discharge."""
    post = s.recent_dc | (s.busy > month_start)
    return np.where(post, config.care.readmission_multiplier, 1.0)


# ---------------------------------------------------------------------------------------------
# Monthly evolution


@dataclass
class Indicators:
    """What happened this month in the timed processes (drawn by the simulation or the truth)."""

    admitted: np.ndarray
    hip: np.ndarray
    discharged: np.ndarray
    c24_now: np.ndarray


def poisson_from_uniform(u: np.ndarray, mean: np.ndarray, cap: int = 6) -> np.ndarray:
    """Inverse-CDF Poisson count (capped), so one uniform per person gives the count."""
    p = np.exp(-mean)
    cdf = p.copy()
    k = np.zeros(len(u), dtype="int64")
    for j in range(1, cap + 1):
        over = u > cdf
        if not over.any():
            break
        k += over
        p = p * mean / j
        cdf = cdf + p
    return k


def advance(s: State, mi: int, r: Rates, U: np.ndarray, Z: np.ndarray, ind: Indicators,
            config: SimulatorConfig, active: np.ndarray | None = None) -> tuple[State, dict[str, np.ndarray]]:
    """The state at the start of month mi + 1, and what changed during month mi."""
    h, m, ch, c, iv = config.health, config.mental, config.child, config.care, config.interventions
    age = r.age
    act = np.ones(len(s), bool) if active is None else active

    falls = np.where(act, poisson_from_uniform(U[U_FALL], r.fall_m), 0)
    # Non-admitted ER visits of the month (services.emergency() writes exactly these): the same
    # Poisson mean as before (hazard x month length), drawn here so that they can feed back into the
    # admission hazard of the following months (bounce-back admissions). The cap is far above the
    # counts that occur, so the law stays Poisson.
    month_days = float(month_start_days(mi + 1) - month_start_days(mi))
    er_visits = np.where(act, poisson_from_uniform(U[U_ER], r.er_d * month_days, cap=40), 0)
    notif = np.where(act & (age < 18), poisson_from_uniform(U[U_NOTIF], r.notif_m), 0)
    rehab_on = s.rehab_left > 0

    # Frailty: drift with age, weak pull to the age mean, noise, jumps, rehabilitation.
    mu = mean_frailty_logit(config, age)
    frail_z = (s.frail_z + h.frailty_logit_per_year / 12.0 * (age > 40) + h.frailty_reversion * (mu - s.frail_z)
               + h.frailty_monthly_sd * Z[Z_FRAIL] + h.frailty_jump_admission * ind.admitted
               + h.frailty_jump_hip_fracture * ind.hip + h.frailty_jump_fall * np.minimum(falls, 2)
               - iv.rehab_frailty_gain * rehab_on)
    a = h.acute_autocorrelation
    acute = a * s.acute + np.sqrt(1 - a * a) * Z[Z_ACUTE] + h.acute_jump_fall * np.minimum(falls, 2)

    # Cognition and chronic conditions.
    dem_p = h.dementia_yearly_at_80 * np.exp(h.dementia_growth_per_year * (age - 80)) / 12
    dem_onset = act & ~s.dem & (age >= 55) & (U[U_DEM] < dem_p)
    dem = s.dem | dem_onset
    cog = np.where(dem, np.clip(np.maximum(s.cog, np.where(dem_onset, 1.0, 0.0))
                                + h.cognition_decline_per_month * (1 + Z[Z_COG]), 0, 6), s.cog)
    dem_dx_new = act & dem & ~s.dem_dx & (U[U_DEMDX] < 0.06)
    hf = s.hf | ((age >= 40) & (U[U_HF] < h.heart_failure_yearly_at_80 * np.exp(0.08 * (age - 80)) / 12))
    copd = s.copd | ((age >= 40) & (U[U_COPD] < h.copd_yearly_at_70 * np.exp(0.03 * (age - 70)) / 12))
    dm = s.dm | ((age >= 30) & (U[U_DM] < h.diabetes_yearly_at_60 * np.exp(0.02 * (age - 60)) / 12))
    htn = s.htn | ((age >= 30) & (U[U_HTN] < h.hypertension_yearly_at_60 * np.exp(0.03 * (age - 60)) / 12))

    # Depression: episodes start and remit; diagnosis and antidepressants follow.
    onset_p = (m.onset_monthly * np.where(s.female, 1.4, 0.85) * np.where((age >= 18) & (age < 30), 1.3, 1.0)
               * np.where(age < 12, 0.1, 1.0) * np.exp(1.2 * r.f) * np.where(s.crisis & (age < 18), 3.0, 1.0)
               * np.where(sud_on(s, age), m.sud_depression_onset_multiplier, 1.0))
    # Antidepressants work as far as they are taken: the treatment effects scale with adherence.
    taken = np.minimum(r.adh / m.adherence_reference, 1.0)
    remit_p = m.remission_monthly + m.remission_bonus_treated * s.ad_on * taken
    dep_onset = act & ~s.dep & (U[U_DEP] < onset_p)
    dep_remit = act & s.dep & (U[U_DEP] < remit_p)
    dep = (s.dep | dep_onset) & ~dep_remit
    dep_sev = np.where(dep_onset, np.clip(13 + 4 * np.abs(Z[Z_SEV]), 5, 27),
                       np.where(dep, np.clip(s.dep_sev + Z[Z_SEV] - 0.3 * s.ad_on * taken, 5, 27),
                                np.clip(0.7 * s.dep_sev + 0.3 * (3 + 2 * np.abs(Z[Z_SEV])), 0, 12)))
    dep_n = s.dep_n + dep_onset
    dep_dx_new = act & dep & ~s.dep_dx & (age >= 12) & (U[U_DEPDX] < m.diagnosis_monthly)
    dep_dx = (s.dep_dx | dep_dx_new) & dep
    ad_start = dep_dx_new & ~s.ad_on & (U[U_AD] < m.antidepressant_start_share)
    ad_stop_at = np.where(dep_remit & s.ad_on, mi + m.antidepressant_continue_months, s.ad_stop)
    ad_stop_at = np.where(dep, 10**6, ad_stop_at)
    ad_end = act & s.ad_on & ~dep & (mi >= ad_stop_at)
    ad_on = (s.ad_on | ad_start) & ~ad_end
    adh_noise = 0.7 * s.adh_noise + np.sqrt(1 - 0.49) * Z[Z_ADH]
    sh_p = np.where(age >= 12, m.self_harm_monthly_base + s.dep * m.self_harm_monthly_depressed
                    * np.exp(0.15 * (s.dep_sev - 15.0)) * np.where(sud_on(s, age), m.self_harm_sud_multiplier, 1.0), 0.0)
    self_harm = act & (U[U_SH] < sh_p)
    sh_hist = m.self_harm_memory * s.sh_hist + self_harm

    # Elderly care: PTA -> home care, recovery, remote visits, medication robot, rehabilitation.
    old = age >= 65
    free = act & old & ~s.hc & ~s.c24 & ~ind.c24_now
    # A home care capacity cut (config.shifts) raises the bar from its month on; none by default.
    thr = c.need_threshold_homecare + config.shifts.homecare_need_rise(mi)
    p_pta = 0.01 + 0.35 * sigmoid((r.need - thr) / 0.04) + 0.2 * ind.discharged * (age >= 75)
    if config.shifts.homecare_cut is not None:
        p_pta = p_pta * config.shifts.homecare_assessment_multiplier(mi)
    pta = free & (U[U_PTA] < p_pta)
    hc_start = pta & (U[U_HC] < sigmoid((r.need - thr + 0.02) / 0.03))
    hc_end = act & s.hc & ~ind.c24_now & (U[U_HC] < 0.08 * sigmoid((thr - 0.06 - r.need) / 0.03))
    in_hc = s.hc & ~hc_end & ~ind.c24_now
    # A service roll-out (config.shifts) multiplies the chance of starting from its month on; the
    # multiplier is 1 otherwise, and the uniforms are the same either way.
    uptake = config.shifts.uptake_multiplier
    remote_p = iv.remote_start_monthly * uptake("remote", mi)
    remote_start = act & in_hc & ~s.remote & (s.cog < 3) & (U[U_REMOTE] < remote_p)
    risk = (s.cog >= 1) | (r.adh < 0.85) | s.dep
    robot_start = act & in_hc & ~s.robot & risk & (U[U_ROBOT] < iv.medrobot_start_monthly * uptake("medrobot", mi))
    p_rehab = (iv.rehab_after_discharge * ind.discharged + iv.rehab_after_fall * (falls > 0)) * uptake("rehab", mi)
    rehab_start = act & old & ~rehab_on & ~s.c24 & ~ind.c24_now & (U[U_REHAB] < p_rehab)
    rehab_left = np.where(rehab_start, iv.rehab_months, np.maximum(s.rehab_left - act, 0)).astype("int8")
    rehab_left = np.where(ind.c24_now, 0, rehab_left).astype("int8")
    rehab_end = act & rehab_on & (rehab_left == 0) & ~rehab_start

    hc = (in_hc | hc_start) & ~ind.c24_now
    # Remote visits and the robot end only with 24-hour care, death or moving away (no END code);
    # remote visits take effect only while home care runs.
    remote = (s.remote | remote_start) & ~ind.c24_now
    robot = (s.robot | robot_start) & ~ind.c24_now
    c24 = s.c24 | ind.c24_now

    # Living situation: the co-resident partner dies or moves to care; a carer's distress comes and
    # goes with the care load; behavioural symptoms of dementia come and go; the municipality pays
    # the informal care allowance while a co-resident carer looks after a home care client.
    loss_p = c.partner_loss_yearly_at_80 * np.exp(0.08 * (age - 80.0)) * np.where(s.female, 1.6, 1.0) / 12.0
    alone = s.alone | (act & (age >= 60) & (U[U_ALONE] < np.clip(loss_p, 0.0, 0.2)))
    partner_loss = alone & ~s.alone
    bpsd_on = act & dem & ~s.bpsd & (U[U_BPSD] < c.bpsd_onset_monthly * cog / 3.0)
    bpsd_off = act & s.bpsd & (U[U_BPSD] < c.bpsd_remission_monthly)
    bpsd = (s.bpsd | bpsd_on) & ~bpsd_off & dem
    cgd_on = act & old & ~s.alone & ~s.cg_distress & (U[U_CGD] < cg_distress_onset(config, r.need, s.bpsd))
    cgd_off = act & s.cg_distress & (U[U_CGD] < c.cg_distress_remission_monthly)
    cg_distress = (s.cg_distress | cgd_on) & ~cgd_off & ~alone & ~c24
    ic_start = (act & hc & ~s.ic_fee & ~alone & (r.need > c.need_threshold_homecare)
                & (U[U_ICF] < c.informal_care_start_monthly))
    ic_fee = (s.ic_fee | ic_start) & hc & ~alone & ~c24

    # Children: family situation, crises, child welfare.
    child = age < 18
    fam_r = np.where(child, 0.995 * s.fam_r + 0.1 * Z[Z_FAM], s.fam_r)
    crisis_on = act & child & ~s.crisis & (U[U_CRISIS] < ch.crisis_onset_monthly * np.exp(fam_r))
    crisis_off = act & s.crisis & (U[U_CRISIS] < ch.crisis_exit_monthly)
    crisis = ((s.crisis | crisis_on) & ~crisis_off) & child
    open_start = act & child & ~s.cw_open & ~s.placed & (notif > 0) & (
        U[U_OPEN] < ch.open_care_start_after_notification * np.exp(0.5 * s.fam_r + 0.8 * s.crisis))
    placed_new = act & s.cw_open & s.crisis & child & (U[U_PLACE] < ch.placement_monthly_in_crisis)
    open_end = act & s.cw_open & ~placed_new & ((U[U_OPEN] < ch.open_care_exit_monthly) | ~child)
    cw_open = ((s.cw_open | open_start) & ~open_end & ~placed_new) & child
    placed = (s.placed | placed_new) & child

    # Childhood-onset chronic conditions: onset and remission (one uniform each, as exclusive states).
    cond_new, cond_onset = {}, {}
    for field, name in CONDITIONS:
        cfg, was, u = getattr(config.conditions, name), getattr(s, field), U[_CONDITION_U[field]]
        onset = act & ~was & (u < condition_incidence(cfg, age) / 12.0)
        remit = act & was & (u < cfg.remission_yearly / 12.0)
        cond_new[field] = (was | onset) & ~remit
        cond_onset[f"{field}_onset"] = onset

    busy = s.busy
    new = State(
        birth_mi=s.birth_mi, female=s.female, u=s.u, hc_int=s.hc_int, adh_ind=s.adh_ind, iot=s.iot,
        er_prop=s.er_prop,
        frail_z=frail_z, acute=acute, cog=cog, dem=dem, dem_dx=s.dem_dx | dem_dx_new,
        hf=hf, copd=copd, dm=dm, htn=htn, dep=dep, dep_sev=dep_sev, dep_dx=dep_dx, dep_n=dep_n,
        ad_on=ad_on, ad_stop=ad_stop_at, adh_noise=adh_noise,
        fam_r=fam_r, crisis=crisis, cw_open=cw_open, placed=placed,
        hc=hc, remote=remote, robot=robot, rehab_left=rehab_left, c24=c24, busy=busy,
        recent_dc=ind.discharged.copy(),
        fall_hist=c.care24h_fall_memory * s.fall_hist + np.minimum(falls, 2),
        sud=s.sud, alone=alone, cg_distress=cg_distress, bpsd=bpsd, ic_fee=ic_fee, sh_hist=sh_hist,
        loss_hist=c.partner_loss_memory * s.loss_hist + partner_loss,
        **cond_new,
        er_recent=c.bounce_back_memory * s.er_recent + er_visits,
    )
    if active is not None:
        frozen = ~act
        arrays = new.as_dict()
        old_arrays = s.as_dict()
        for name in DYNAMIC:
            if name != "busy":
                arrays[name] = np.where(frozen, old_arrays[name], arrays[name])
        new = State(**arrays)
    changes = {
        "falls": falls, "notif": notif, "pta": pta, "hc_start": hc_start, "hc_end": hc_end,
        "remote_start": remote_start, "robot_start": robot_start, "rehab_start": rehab_start,
        "rehab_end": rehab_end, "dem_dx_new": dem_dx_new, "dep_dx_new": dep_dx_new, "ad_start": ad_start,
        "ad_end": ad_end, "open_start": open_start, "open_end": open_end, "placed_new": placed_new,
        "dep_onset": dep_onset, "self_harm": self_harm, "partner_loss": partner_loss, **cond_onset,
        "er_visits": er_visits,
    }
    return new, changes
