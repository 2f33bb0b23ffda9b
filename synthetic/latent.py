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

from synthetic.config import ConditionConfig, SimulatorConfig
from synthetic.population import move_out_yearly

N_BANDS = 21
DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12

# Rows of the uniform matrix U and the normal matrix Z consumed by advance().
(U_DEM, U_HF, U_COPD, U_DM, U_HTN, U_DEP, U_DEPDX, U_AD, U_PTA, U_HC, U_REMOTE, U_ROBOT, U_REHAB,
 U_CRISIS, U_OPEN, U_PLACE, U_FALL, U_NOTIF, U_DEMDX, U_ASTHMA, U_EPI, U_T1D, U_CP) = range(23)
N_U = 23
Z_FRAIL, Z_ACUTE, Z_COG, Z_SEV, Z_FAM, Z_ADH = range(6)
N_Z = 6

STATIC = ("birth_mi", "female", "u", "hc_int", "adh_ind", "iot")
DYNAMIC = (
    "frail_z", "acute", "cog", "dem", "dem_dx", "hf", "copd", "dm", "htn",
    "dep", "dep_sev", "dep_dx", "dep_n", "ad_on", "ad_stop", "adh_noise",
    "fam_r", "crisis", "cw_open", "placed",
    "hc", "remote", "robot", "rehab_left", "c24", "busy", "recent_dc", "fall_hist",
    "asthma", "epi", "t1d", "cp",
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
    h = config.health
    U = rng.random((21, n))
    Z = rng.standard_normal((8, n))
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
    dep = U[5] < np.where(age >= 15, 0.035, np.where(age >= 10, 0.01, 0.0))
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
    # Rows 17-20 of U: one per childhood-onset condition.
    cond = {field: U[17 + k] < condition_prevalence(getattr(config.conditions, name), age)
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
        **cond,
    )


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
    death_p = np.interp(mid, c.death_age_knots, c.death_yearly)
    notif_share = np.where(mid < 5, 0.07, np.where(mid < 10, 0.085, np.where(mid < 15, 0.125, 0.135)))
    notif_share = np.where(mid < 18, notif_share, 0.0) * config.child.notification_share_target.value / 0.10
    return {
        "adm": er * admitted,
        "er": er * (1 - admitted),
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
    adm = (3.2 * f + 0.55 * s.acute + s.u + 0.7 * s.hf + 0.6 * s.copd + 0.25 * s.dm + 0.3 * s.dem
           + 0.35 * s.dep + child_crisis + np.where(old, 0.8 * (1 - adh), 0.0) + log_mult
           + family + cond_adm)
    er = (3.5 * f + 0.6 * s.acute + 1.8 * s.u + 0.6 * s.hf + 0.6 * s.copd + 0.2 * s.dm + 0.5 * s.dep
          + 0.4 * child_crisis + log_mult + family + cond_er)
    death = (3.0 * f + 0.6 * s.hf + 0.5 * s.copd + 0.5 * s.dem + 0.25 * s.acute + 0.4 * ~s.female
             + 0.3 * s.c24)
    notif = np.where(age < 18, 0.9 * s.fam_r + 1.6 * s.crisis, 0.0)
    return {"adm": adm, "er": er, "death": death, "notif": notif}


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
    out = {}
    for key in ("adm", "er", "death", "notif"):
        mult = np.exp(eta[key][active])
        total = np.bincount(band, weights=mult, minlength=N_BANDS)
        count = np.bincount(band, minlength=N_BANDS)
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
    depression and acute health instability."""
    c = config.care
    return (np.exp(c.care24h_fall_log_hazard * np.minimum(s.fall_hist, 2.0)
                   + c.care24h_instability_log_hazard * s.acute)
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
    adm_d: np.ndarray  # unplanned admission (before the post-discharge multiplier)
    er_d: np.ndarray  # ER visits without admission
    death_d: np.ndarray
    move_d: np.ndarray
    c24_d: np.ndarray
    p_hip: np.ndarray
    fall_m: np.ndarray
    notif_m: np.ndarray

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
    return Rates(
        age=age, band=band, f=f, need=need, adh=adh,
        adm_d=norms.adm[band] * np.exp(eta["adm"]),
        er_d=norms.er[band] * np.exp(eta["er"]),
        death_d=norms.death[band] * np.exp(eta["death"]),
        move_d=np.where(s.c24, 0.1, 1.0) * -np.log1p(-move_out_yearly(config, age)) / DAYS_PER_YEAR,
        c24_d=c24_d,
        p_hip=np.where(old, np.clip(0.06 * f / 0.3 * np.where(s.female, 1.3, 1.0), 0, 0.4), 0.0),
        fall_m=fall_m,
        notif_m=np.where(age < 18, norms.notif[band] * np.exp(eta["notif"]), 0.0),
    )


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
               * np.where(age < 12, 0.1, 1.0) * np.exp(1.2 * r.f) * np.where(s.crisis & (age < 18), 3.0, 1.0))
    remit_p = m.remission_monthly + m.remission_bonus_treated * s.ad_on
    dep_onset = act & ~s.dep & (U[U_DEP] < onset_p)
    dep_remit = act & s.dep & (U[U_DEP] < remit_p)
    dep = (s.dep | dep_onset) & ~dep_remit
    dep_sev = np.where(dep_onset, np.clip(13 + 4 * np.abs(Z[Z_SEV]), 5, 27),
                       np.where(dep, np.clip(s.dep_sev + Z[Z_SEV] - 0.3 * s.ad_on, 5, 27),
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

    # Elderly care: PTA -> home care, recovery, remote visits, medication robot, rehabilitation.
    old = age >= 65
    free = act & old & ~s.hc & ~s.c24 & ~ind.c24_now
    p_pta = 0.01 + 0.35 * sigmoid((r.need - c.need_threshold_homecare) / 0.04) + 0.2 * ind.discharged * (age >= 75)
    pta = free & (U[U_PTA] < p_pta)
    hc_start = pta & (U[U_HC] < sigmoid((r.need - c.need_threshold_homecare + 0.02) / 0.03))
    hc_end = act & s.hc & ~ind.c24_now & (U[U_HC] < 0.08 * sigmoid((c.need_threshold_homecare - 0.06 - r.need) / 0.03))
    in_hc = s.hc & ~hc_end & ~ind.c24_now
    remote_start = act & in_hc & ~s.remote & (s.cog < 3) & (U[U_REMOTE] < iv.remote_start_monthly)
    risk = (s.cog >= 1) | (r.adh < 0.85) | s.dep
    robot_start = act & in_hc & ~s.robot & risk & (U[U_ROBOT] < iv.medrobot_start_monthly)
    p_rehab = iv.rehab_after_discharge * ind.discharged + iv.rehab_after_fall * (falls > 0)
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
        frail_z=frail_z, acute=acute, cog=cog, dem=dem, dem_dx=s.dem_dx | dem_dx_new,
        hf=hf, copd=copd, dm=dm, htn=htn, dep=dep, dep_sev=dep_sev, dep_dx=dep_dx, dep_n=dep_n,
        ad_on=ad_on, ad_stop=ad_stop_at, adh_noise=adh_noise,
        fam_r=fam_r, crisis=crisis, cw_open=cw_open, placed=placed,
        hc=hc, remote=remote, robot=robot, rehab_left=rehab_left, c24=c24, busy=busy,
        recent_dc=ind.discharged.copy(),
        fall_hist=c.care24h_fall_memory * s.fall_hist + np.minimum(falls, 2),
        **cond_new,
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
        "dep_onset": dep_onset, **cond_onset,
    }
    return new, changes
