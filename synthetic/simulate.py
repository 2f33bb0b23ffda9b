"""Orchestration: month by month for the whole population at once; returns frames, writes nothing.

    simulate(SimulatorConfig(customers=20_000, years=3, seed=42)) -> SimulatedDataset

Each month: hazards from the state on the 1st (latent.rates) -> the truth for everyone in the
region on the 1st (truth.py) -> the month's timed processes (death, moving away, 24-hour care,
unplanned stays; timed.py) -> the state on the 1st of the next month (latent.advance) -> the
month's events (services.py). A burn-in (default 24 months, no deaths or moves, no events) lets
services and states settle before the extract starts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from synthetic.codes import C, catalogue, region_units, units
from data_contracts.catalogue import LANGUAGES
from synthetic.config import SimulatorConfig
from synthetic.latent import N_U, N_Z, Indicators, Rates, State, advance, compute_norms, initial_state, rates
from synthetic.population import NOT_ENTERING, Population, build_population, older_in_movers
from synthetic.services import (
    CHRONIC_MEDICATION,
    Aux,
    EventBuffer,
    Month,
    children,
    chronic_medication,
    condition_care,
    elderly_care,
    emergency,
    life,
    mental_health,
    pc_scales,
    planned_stays,
    primary_care,
    running_services,
)
from synthetic.timed import N_TIMED_U, N_TIMED_Z, draw_timed
from synthetic.timeline import Calendar, days_to_datetime, month_index, month_start_days
from synthetic.truth import label_probability, outcome_probability, whatif_probabilities

SIMULATOR_VERSION = "1.5.0"  # 1.1: true_probability on the labels definition, true_incidence; 24-hour care spread factors; 1.2: childhood-onset conditions, family adversity, low-acuity ER use, chronic medication adherence, injury admissions, living situation and informal care, alcohol use disorder, self-harm; 1.3: the interRAI falls item (RAI/FALLS); 1.4: bounce-back admissions after non-admitted ER visits, interRAI scale reliability, return and significant-change reassessments; 1.5: death within the horizon is a competing event (a negative, not censored) in true_probability and observed
SECOND = 1.0 / 86_400.0

# Order of simultaneous events of one customer (lower first); everything else is 5. A service
# that ends and restarts at the same instant writes its END first (6 before 7), as the contracts
# and the features' tie order (codes.csv order) read it.
_PRIORITY = {
    "ENC/EMERGENCY": 2, "ADMIT/UNPLANNED": 3, "ADMIT/PLANNED": 3, "DISCHARGE": 6, "HOMECARE/END": 6,
    "REHAB/END": 6, "CHILDWELFARE/OPEN_CARE_END": 6, "CARE24H/START": 8, "DEATH": 9, "MOVE/OUT": 9, "MOVE/IN": 0,
    "HOMECARE/START": 7, "REHAB/START": 7, "REMOTE/START": 7, "MEDROBOT/START": 7,
    "CHILDWELFARE/OPEN_CARE_START": 7, "CHILDWELFARE/PLACEMENT": 7,
}
# Service state changes that fall inside a hospital stay are recorded at its discharge instead.
_SHIFT_TO_DISCHARGE = ("HOMECARE/START", "HOMECARE/END", "REHAB/START", "REHAB/END", "REMOTE/START",
                       "MEDROBOT/START", "CHILDWELFARE/OPEN_CARE_START", "CHILDWELFARE/OPEN_CARE_END",
                       "CHILDWELFARE/PLACEMENT")


@dataclass(frozen=True)
class SimulatedDataset:
    """The dataset (events, customers, metadata) and the simulator's ground truth."""

    events: pd.DataFrame
    customers: pd.DataFrame
    metadata: dict
    risk: pd.DataFrame
    latent: pd.DataFrame
    interventions: pd.DataFrame
    config: SimulatorConfig = field(repr=False)
    events_table: pa.Table = field(repr=False)
    # simulate(whatif_month=...): per customer and intervention, the true hospitalisation probability
    # at that month's start as simulated and had the intervention started then (None by default).
    whatif: pd.DataFrame | None = field(default=None, repr=False)


class _Stays:
    """All hospital stays (growing arrays), so a running stay can be cut short later."""

    def __init__(self) -> None:
        self.subject: list[np.ndarray] = []
        self.admit: list[np.ndarray] = []
        self.discharge: list[np.ndarray] = []
        self.cuts: list[tuple[np.ndarray, np.ndarray]] = []  # (global row, new discharge)
        self.n = 0

    def add(self, subject: np.ndarray, admit: np.ndarray, discharge: np.ndarray) -> np.ndarray:
        rows = np.arange(self.n, self.n + len(subject))
        self.subject.append(subject)
        self.admit.append(admit)
        self.discharge.append(discharge)
        self.n += len(subject)
        return rows

    def cut(self, rows: np.ndarray, discharge: np.ndarray) -> None:
        self.cuts.append((rows, discharge))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.n:
            return np.zeros(0, "int64"), np.zeros(0), np.zeros(0)
        subject = np.concatenate(self.subject)
        admit = np.concatenate(self.admit)
        discharge = np.concatenate(self.discharge)
        for rows, value in self.cuts:
            discharge[rows] = np.minimum(discharge[rows], value)
        return subject, admit, discharge


def _generator(seed: int, stream: int, m: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream, m + 100_000])))


def simulate(config: SimulatorConfig, progress: Callable[[int, int], None] | None = None, *,
             effects_off: tuple[str, ...] = (), whatif_month: dt.date | None = None) -> SimulatedDataset:
    """Simulate the region; deterministic for config (same config -> identical frames).

    effects_off names interventions (`SimulatorConfig.without_effect` names) whose effect is
    switched off from the extract start only: the counterfactual twin of `simulate(config)`. The
    burn-in, the hazard norms and every random number stay the factual run's, so each customer's
    history is the factual one until an intervention of theirs takes effect (only the events'
    times within a month and interRAI assessments, drawn from streams shared in turn, can differ).
    `without_effect` on the config instead changes the whole world: the burn-in diverges and the
    band norms (which meet the calibration targets with the effects in place) change everyone's
    hazards.

    whatif_month (the first day of an extract month) adds `whatif`: for every resident at that
    day's start who is 65 or over or in home care and not in 24-hour care, the true hospitalisation
    probability as simulated and had each intervention started that day (truth.whatif_probabilities,
    from a random stream of its own: every other output is the same as without it).
    """
    world = config.without_effect(*effects_off) if effects_off else config
    if effects_off:
        world = world.model_copy(update={"compute_truth": False})
    cal = Calendar(first_extract_mi=month_index(config.start), n_extract=12 * config.years, burn_in=config.burn_in_months)
    rng_pop = _generator(config.seed, 0, 0)
    pop = build_population(config, cal, rng_pop)
    n = len(pop)
    first_mi = np.where(pop.entry_mi == NOT_ENTERING, cal.first_extract_mi - cal.burn_in, pop.entry_mi)
    age0 = np.maximum(first_mi - pop.birth_mi, 0) / 12.0
    s = initial_state(config, age0, pop.female, pop.birth_mi, rng_pop)
    aux = Aux(
        team=rng_pop.integers(0, 60, n),
        doses=rng_pop.choice([1, 2, 3, 4], size=n, p=[0.1, 0.4, 0.35, 0.15]),
        ad_next=cal.start(-cal.burn_in) + rng_pop.random(n) * 90.0,
        rai_next=cal.start(-cal.burn_in) + rng_pop.random(n) * 182.0,
        # Staggered over the first supply from the extract start (emission starts there).
        med_next=cal.start(0) + rng_pop.random((len(CHRONIC_MEDICATION), n)) * 90.0,
        falls_3m=np.zeros((3, n), dtype="int64"),
        rai_need=np.full(n, np.nan),
    )
    if config.shifts.ageing is not None:
        pop, s = _age_in_movers(config, pop, s)
    # Pseudonyms: a seeded permutation, so ids say nothing about entry order.
    sid_of_pool = 100_000 + config.subject_id_offset + _generator(config.seed, 4, 0).permutation(n).astype("int64")
    exited = np.zeros(n, bool)
    exit_t = np.full(n, np.inf)
    stay_row = np.full(n, -1, dtype="int64")
    stays = _Stays()
    buf = EventBuffer()
    truth_rows: list[pd.DataFrame] = []
    whatif_m = _whatif_index(whatif_month, cal)
    whatif: pd.DataFrame | None = None
    latent_rows: list[dict[str, np.ndarray]] = []
    m0 = -cal.burn_in
    norms = compute_norms(config, s, cal.first_extract_mi + m0, (pop.birth_mi <= cal.first_extract_mi + m0) & (pop.entry_mi == NOT_ENTERING))
    pc_scale = np.ones(3)
    total = cal.burn_in + cal.n_extract

    for m in range(m0, cal.n_extract):
        mi = cal.first_extract_mi + m
        ms, me = cal.start(m), cal.start(m + 1)
        active = (pop.birth_mi <= mi) & (pop.entry_mi <= mi) & ~exited
        at_start = active & (pop.entry_t <= ms)
        lo = np.maximum(ms, pop.entry_t)
        if m == 0:
            norms = compute_norms(config, s, mi, at_start)
        cfg = world if m >= 0 else config  # the counterfactual twin differs from the extract start on
        r = rates(s, mi, cfg, norms)
        if m == 0:
            pc_scale = pc_scales(config, s, rates(s, mi, config, norms) if effects_off else r, at_start)
        if m >= 0:
            idx = np.flatnonzero(at_start)
            idx = idx[np.argsort(sid_of_pool[idx], kind="stable")]
            latent_rows.append(_latent_row(s, r, idx, ms))
            if world.compute_truth:
                truth_rows.append(_truth(s, r, idx, m, cal, config, norms))
            if m == whatif_m:
                whatif = _whatif(s, r, idx, m, cal, config, norms, sid_of_pool)

        rng = _generator(config.seed, 1, m)
        U = rng.random((N_U, n))
        Z = rng.standard_normal((N_Z, n))
        Ut = rng.random((N_TIMED_U, n))
        Zt = rng.standard_normal((N_TIMED_Z, n))
        tm = draw_timed(s, r, ms, me, lo, active, Ut, Zt, cfg)

        # A stay running into this month ends early at death, moving away or 24-hour care.
        busy = s.busy.copy()
        cut = np.minimum(tm.exit_t, tm.c24_t)
        trunc = np.flatnonzero(active & (busy > ms) & (cut < busy))
        stays.cut(stay_row[trunc], cut[trunc])
        busy[trunc] = cut[trunc]
        carried_end = busy.copy()
        discharged = active & (busy >= ms) & (busy < me)
        st = tm.stays
        for j in range(3):
            sel = np.flatnonzero(st.order == j)
            if not len(sel):
                break
            who = st.subject[sel]
            stay_row[who] = stays.add(who, st.admit[sel], st.discharge[sel])
            busy[who] = st.discharge[sel]
            discharged[who] |= st.discharge[sel] < me
        ind = Indicators(admitted=tm.admitted, hip=tm.hip, discharged=discharged, c24_now=tm.c24_t < np.inf)
        s_next, changes = advance(s, mi, r, U, Z, ind, cfg, active=active)
        s_next = s_next.replace(busy=busy)

        if m >= 0:
            hi = np.minimum(me, tm.exit_t)
            mo = Month(m=m, ms=ms, me=me, s=s, r=r, ch=changes, tm=tm, active=active, lo=lo, hi=hi,
                       municipality=pop.municipality, rng=_generator(config.seed, 2, m), config=cfg,
                       aux=aux, pc_scale=pc_scale, rng_rai=_generator(config.seed, 6, m))
            if m == 0:
                first = np.flatnonzero(at_start)
                running_services(mo, buf, first, np.full(len(first), ms))
            entering = np.flatnonzero(active & (pop.entry_t >= ms) & (pop.entry_t < me))
            running_services(mo, buf, entering, pop.entry_t[entering])
            primary_care(mo, buf)
            emergency(mo, buf, carried_end)
            who, a, d = planned_stays(mo, buf, carried_end)
            stays.add(who, a, d)
            mental_health(mo, buf)
            chronic_medication(mo, buf)
            elderly_care(mo, buf)
            children(mo, buf)
            life(mo, buf, pop.moved_in, pop.entry_t)
            condition_care(mo, buf)

        # Falls of this month join the interRAI falls item's three-month memory (burn-in too, so the
        # first assessments of the extract see the months before it).
        aux.falls_3m = np.vstack([np.asarray(changes["falls"], dtype="int64"), aux.falls_3m[:2]])
        left = tm.exit_kind > 0
        if m >= 0:
            exit_t[left] = tm.exit_t[left]
            exited |= left
        else:
            # Burn-in: whoever dies or moves away is replaced by a newcomer of the same age, so the
            # population at the extract start is the one drawn and has met selection by mortality.
            s_next = _replace(config, s_next, np.flatnonzero(left), mi + 1, _generator(config.seed, 5, m))
            aux.falls_3m[:, left] = 0
        s = s_next
        if progress is not None:
            progress(m - m0 + 1, total)

    dataset = _finish(world, cal, pop, buf, stays, exit_t, truth_rows, latent_rows, sid_of_pool)
    return dataset if whatif is None else replace(dataset, whatif=whatif)


def _whatif_index(month: dt.date | None, cal: Calendar) -> int | None:
    """The extract month index of a what-if date (its month's first day), or None."""
    if month is None:
        return None
    month = pd.Timestamp(month)
    m = month_index(month.date()) - cal.first_extract_mi
    if month != month.normalize().replace(day=1) or not 0 <= m < cal.n_extract:
        raise ValueError(f"whatif_month {month.date()} is not the first day of an extract month")
    return m


def _whatif(s: State, r: Rates, idx: np.ndarray, m: int, cal: Calendar, config: SimulatorConfig, norms,
            sid_of_pool: np.ndarray) -> pd.DataFrame:
    who = idx[(s.hc[idx] | (r.age[idx] >= 65.0)) & ~s.c24[idx]]
    found = whatif_probabilities(s.take(who), m, cal, config, norms, [config.seed, 7, m + 100_000])
    return pd.concat([pd.DataFrame({"subject_id": sid_of_pool[who].astype("int64"), "intervention": name,
                                    "true_probability": base, "true_probability_with": forced})
                      for name, (base, forced) in found.items()], ignore_index=True)


def _age_in_movers(config: SimulatorConfig, pop: Population, s: State) -> tuple[Population, State]:
    """An ageing shift (config.shifts.ageing): older in-movers from its month on, each with a first
    state drawn at the age they move in, as for any in-mover. From a random stream of its own (8),
    after every other first draw, so nobody else's numbers change."""
    rng = _generator(config.seed, 8, 0)
    pop, who = older_in_movers(config, pop, rng)
    s = s.replace(birth_mi=pop.birth_mi, female=pop.female)
    return pop, _replace(config, s, who, pop.entry_mi[who], rng)


def _replace(config: SimulatorConfig, s: State, who: np.ndarray, mi: int | np.ndarray, rng: np.random.Generator) -> State:
    """Fresh states (drawn as at the start) for the people in `who` at month index mi (one, or one
    each), keeping their birth and sex."""
    if not len(who):
        return s
    fresh = initial_state(config, (mi - s.birth_mi[who]) / 12.0, s.female[who], s.birth_mi[who], rng)
    arrays = s.as_dict()
    for name, values in fresh.as_dict().items():
        column = arrays[name].copy()
        column[who] = values
        arrays[name] = column
    return State(**arrays)


def _truth(s: State, r: Rates, idx: np.ndarray, m: int, cal: Calendar, config: SimulatorConfig, norms) -> pd.DataFrame:
    rng = _generator(config.seed, 3, m)
    sub, rsub = s.take(idx), r.take(idx)
    i_h, x_h = outcome_probability(sub, rsub, m, cal, config, norms, rng, "hospitalisation")
    hc = np.flatnonzero(sub.hc)
    i_f, x_f = outcome_probability(sub.take(hc), rsub.take(hc), m, cal, config, norms, rng, "homecare_failure")
    incidence = np.concatenate([i_h, i_f])
    return pd.DataFrame({
        "pool": np.concatenate([idx, idx[hc]]),
        "m": np.full(len(idx) + len(hc), m, dtype="int16"),
        "outcome": np.repeat(np.array([0, 1], dtype="int8"), [len(idx), len(hc)]),
        "true_probability": label_probability(incidence, np.concatenate([x_h, x_f])),
        "true_incidence": incidence,
    })


def _latent_row(s: State, r: Rates, idx: np.ndarray, ms: float) -> dict[str, np.ndarray]:
    f32 = lambda x: np.asarray(x, dtype="float32")  # noqa: E731
    return {
        "pool": idx,
        "month": np.full(len(idx), ms),
        "age": f32(r.age[idx]),
        "frailty": f32(r.f[idx]),
        "cognition": f32(s.cog[idx]),
        "dementia": s.dem[idx],
        "depressed": s.dep[idx],
        "mood_severity": f32(s.dep_sev[idx]),
        "acute_instability": f32(s.acute[idx]),
        "adherence": f32(r.adh[idx]),
        "individual_risk": f32(s.u[idx]),
        "heart_failure": s.hf[idx],
        "copd": s.copd[idx],
        "diabetes": s.dm[idx],
        "hypertension": s.htn[idx],
        "family_risk": f32(np.where(r.age[idx] < 18, s.fam_r[idx], np.nan)),
        "family_crisis": s.crisis[idx],
        "child_welfare_open_care": s.cw_open[idx],
        "placed": s.placed[idx],
        "home_care": s.hc[idx],
        "remote_visits": s.remote[idx],
        "medication_robot": s.robot[idx],
        "rehabilitation": s.rehab_left[idx] > 0,
        "care24h": s.c24[idx],
        "in_hospital": s.busy[idx] > ms,
        "unplanned_admission_per_year": f32(r.adm_d[idx] * 365.25),
        "living_alone": s.alone[idx],
        "carer_distress": s.cg_distress[idx],
        "behavioural_symptoms": s.bpsd[idx],
        "informal_care_allowance": s.ic_fee[idx],
        "alcohol_use_disorder": s.sud[idx] & (r.age[idx] >= 15),
        "self_harm_history": f32(s.sh_hist[idx]),
        "partner_loss_history": f32(s.loss_hist[idx]),
        "er_propensity": f32(s.er_prop[idx]),
        "low_acuity_er_per_year": f32(r.er_low_d[idx] * 365.25),
        "injury_admission_per_year": f32(r.adm_inj_d[idx] * 365.25),
        "asthma": s.asthma[idx],
        "epilepsy": s.epi[idx],
        "type1_diabetes": s.t1d[idx],
        "cerebral_palsy": s.cp[idx],
        # The remaining 24-hour care terms, so the truth's hazard can be decomposed term by term.
        "fall_history": f32(s.fall_hist[idx]),
        "recent_discharge": s.recent_dc[idx],
        "care24h_per_year": f32(r.c24_d[idx] * 365.25),
        # Bounce-back: the decaying count of recent non-admitted ER visits and the excess it gives.
        "recent_er_visits": f32(s.er_recent[idx]),
        "bounce_back_admission_per_year": f32(r.bounce_d[idx] * 365.25),
    }


# ---------------------------------------------------------------------------------------------
# Finishing: stays' discharges, clean-up passes, pseudonyms, tables.


def _finish(config: SimulatorConfig, cal: Calendar, pop: Population, buf: EventBuffer, stays: _Stays,
            exit_t: np.ndarray, truth_rows: list, latent_rows: list, sid_of_pool: np.ndarray) -> SimulatedDataset:
    cat = catalogue()
    start, end = cal.extract_start, cal.extract_end
    st_subject, st_admit, st_dis = stays.arrays()
    # DISCHARGE rows: stays that end inside the extract (a stay running at the start counts from it).
    show = (st_dis > start) & (st_dis <= end)
    los = st_dis - np.maximum(st_admit, start)
    buf.add(st_subject[show], st_dis[show], C.of("DISCHARGE"), los[show], units().index("EKKS/WARD"))
    subject, time, code, value, unit = buf.arrays()
    buf.subject.clear(), buf.time.clear(), buf.code.clear(), buf.value.clear(), buf.unit.clear()

    # Integer seconds from here on, so every comparison is exact.
    sec = np.rint(time * 86_400).astype("int64")
    st_a = np.rint(np.maximum(st_admit, start) * 86_400).astype("int64")
    st_d = np.rint(st_dis * 86_400).astype("int64")
    entry_sec = np.where(np.isfinite(pop.entry_t), np.rint(np.nan_to_num(pop.entry_t, neginf=0) * 86_400), -(2**62)).astype("int64")
    exit_sec = np.where(np.isfinite(exit_t), np.rint(np.nan_to_num(exit_t, posinf=0) * 86_400), 2**62).astype("int64")
    keep = (sec >= round(start * 86_400)) & (sec <= round(end * 86_400))
    keep &= (sec >= entry_sec[subject]) & (sec <= exit_sec[subject])
    inside, stay_end = _inside_stays(subject, sec, st_subject, st_a, st_d)
    shift = inside & np.isin(code, [C.of(c) for c in _SHIFT_TO_DISCHARGE])
    original_sec = sec
    sec = np.where(shift, stay_end, sec)
    keep &= ~(inside & ~shift) & (sec <= round(end * 86_400))
    subject, sec, code, value, unit = subject[keep], sec[keep], code[keep], value[keep], unit[keep]
    original_sec = original_sec[keep]
    del time, keep
    if config.shifts.coding:
        subject, sec, code, value, unit, original_sec = _recode(config, subject, sec, code, value, unit, original_sec)
    sid = sid_of_pool[subject]
    priority = np.full(len(cat.codes), 5, dtype="int8")
    for name, p in _PRIORITY.items():
        priority[cat.index(name)] = p
    # Service starts and ends moved to one discharge instant keep the order they happened in
    # (a rehab that began and ended during the stay stays START, END); truly simultaneous ones
    # fall back to the priority (END before START: a restart).
    band = priority.copy()
    band[[cat.index(name) for name in _SHIFT_TO_DISCHARGE]] = 7
    order = np.lexsort((unit, value, code, priority[code], original_sec, band[code], sec, sid))
    sid, sec, code, value, unit = sid[order], sec[order], code[order], value[order], unit[order]
    del order, subject

    per_day = cat.per_day[code]
    cost = np.where(per_day, cat.unit_cost[code] * np.nan_to_num(value), cat.unit_cost[code])
    events_table = pa.table({
        "subject_id": pa.array(sid, pa.int64()),
        "time": pa.array(days_to_datetime(sec / 86_400.0), pa.timestamp("us")),
        "code": _dict_strings(code, cat.codes),
        "numeric_value": pa.array(value, pa.float64(), from_pandas=True),
        "service_area": _dict_strings(code, cat.service_area),
        "unit": _dict_strings(unit, region_units(config.municipality_names()), null_index=0),
        "cost_eur": pa.array(cost, pa.float64()),
    })

    birth = pop.birth_mi
    cust_order = np.argsort(sid_of_pool, kind="stable")
    customers = pd.DataFrame({
        "subject_id": sid_of_pool[cust_order],
        "birth_year": (2000 + birth[cust_order] // 12).astype("int16"),
        "birth_month": (birth[cust_order] % 12 + 1).astype("int8"),
        "sex": pd.array(np.where(pop.female[cust_order], "F", "M"), dtype="str"),
        "municipality": pd.array(np.array(config.municipality_names())[pop.municipality[cust_order]], dtype="str"),
        "language": pd.array(np.array(LANGUAGES)[pop.language[cust_order]], dtype="str"),
    })
    start_dt = dt.datetime.combine(config.start, dt.time())
    end_ts = pd.Timestamp(days_to_datetime(np.array([end]))[0]).to_pydatetime()
    metadata = {
        "name": f"synthetic-{config.region}-seed{config.seed}",
        "region": config.region,
        "source": "synthetic",
        "seed": config.seed,
        "customers": int(len(customers)),
        "extract_start": start_dt.isoformat(),
        "extract_end": end_ts.isoformat(),
        "simulator_version": SIMULATOR_VERSION,
        "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "residents_at_start": config.customers,
        "years": config.years,
    }
    if config.subject_id_offset:  # said only when set, so a single region's dataset.json reads as before
        metadata["subject_id_offset"] = config.subject_id_offset
    if config.shifts.any:  # said only when there is one, so a default dataset.json reads as before
        metadata["shifts"] = config.shifts.model_dump(mode="json", exclude_none=True)
    t_us = days_to_datetime(sec / 86_400.0)
    del sec
    risk = _risk_frame(truth_rows, sid_of_pool, cal, sid, t_us, code)
    latent = _latent_frame(latent_rows, sid_of_pool)
    interventions = _interventions(sid, t_us, code, config)
    del sid, t_us, code, value, unit
    events = events_table.to_pandas()
    events["time"] = events["time"].astype("datetime64[us]")
    return SimulatedDataset(events=events, customers=customers, metadata=metadata, risk=risk, latent=latent,
                            interventions=interventions, config=config, events_table=events_table)


def _recode(config: SimulatorConfig, subject: np.ndarray, sec: np.ndarray, code: np.ndarray, value: np.ndarray,
            unit: np.ndarray, original_sec: np.ndarray) -> tuple[np.ndarray, ...]:
    """The coding changes of config.shifts: from each change's start (the month's first second),
    events of its code are renamed or dropped. The events are final here (clean-up done, order not
    yet set), so nothing else about them changes."""
    keep = np.ones(len(code), bool)
    code = code.copy()
    for change in config.shifts.coding:
        start = round(float(month_start_days(month_index(change.start))) * 86_400)
        hit = (code == C.of(change.code)) & (sec >= start)
        if change.recorded_as is None:
            keep &= ~hit
        else:
            code[hit] = C.of(change.recorded_as)
    return subject[keep], sec[keep], code[keep], value[keep], unit[keep], original_sec[keep]


def _dict_strings(index: np.ndarray, values: tuple[str, ...], null_index: int | None = None) -> pa.Array:
    mask = None if null_index is None else (index == null_index)
    arr = pa.DictionaryArray.from_arrays(pa.array(index.astype("int32"), mask=mask), pa.array(list(values), pa.string()))
    return arr.dictionary_decode()


def _inside_stays(subject: np.ndarray, sec: np.ndarray, st_subject: np.ndarray, st_a: np.ndarray,
                  st_d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(strictly inside a stay of the same customer, that stay's end) per event; stays never overlap."""
    if not len(st_subject) or not len(subject):
        return np.zeros(len(subject), bool), sec
    shift = np.int64(2**34)
    st_key = st_subject.astype("int64") * shift + st_a
    order = np.argsort(st_key, kind="stable")
    st_key, st_subject_s, st_a_s, st_d_s = st_key[order], st_subject[order], st_a[order], st_d[order]
    ev_key = subject.astype("int64") * shift + sec
    pos = np.searchsorted(st_key, ev_key, side="right") - 1
    ok = pos >= 0
    pos_c = np.maximum(pos, 0)
    inside = ok & (st_subject_s[pos_c] == subject) & (sec > st_a_s[pos_c]) & (sec < st_d_s[pos_c])
    return inside, st_d_s[pos_c]


def _first_after(ev_sid: np.ndarray, ev_t: np.ndarray, ev_code: np.ndarray, code: str,
                 sid: np.ndarray, t_us: np.ndarray) -> np.ndarray:
    """Time (us) of the first `code` event strictly after t for each (sid, t); int64 max if none."""
    rows = ev_code == C.of(code)
    if not rows.any():  # a small or short region may have no such event at all (no death in a year)
        return np.full(len(sid), np.iinfo("int64").max, dtype="int64")
    e_sid = ev_sid[rows]
    e_t = ev_t[rows].astype("int64")
    shift = np.int64(2**41)
    base = np.int64(946_684_800_000_000)  # 2000-01-01 in us; keeps keys positive and small
    sec = lambda x: (x - base) // 1_000_000  # noqa: E731
    e_key = e_sid * shift + sec(e_t)
    order = np.argsort(e_key, kind="stable")
    e_key, e_t, e_sid = e_key[order], e_t[order], e_sid[order]
    pos = np.searchsorted(e_key, sid * shift + sec(t_us), side="right")
    pos_c = np.minimum(pos, max(len(e_key) - 1, 0))
    found = (pos < len(e_key)) & (e_sid[pos_c] == sid)
    return np.where(found, e_t[pos_c], np.iinfo("int64").max)


def _risk_frame(truth_rows: list, sid_of_pool: np.ndarray, cal: Calendar, ev_sid: np.ndarray, ev_t: np.ndarray,
                ev_code: np.ndarray) -> pd.DataFrame:
    columns = ["subject_id", "prediction_time", "outcome", "horizon_days", "true_probability", "true_incidence", "observed"]
    if not truth_rows:
        return pd.DataFrame({c: [] for c in columns})
    t = pd.concat(truth_rows, ignore_index=True)
    month_starts = np.array([cal.start(m) for m in range(cal.n_extract)])
    pred = days_to_datetime(month_starts[t["m"].to_numpy()])
    sid = sid_of_pool[t["pool"].to_numpy()]
    which = t["outcome"].to_numpy()
    horizon = np.where(which == 0, 90, 180)
    t_us = pred.astype("int64")
    end_us = days_to_datetime(np.array([cal.extract_end]))[0].astype("int64")
    limit = t_us + horizon.astype("int64") * 86_400_000_000
    observed = pd.array(np.zeros(len(t), bool), dtype="boolean")
    # As features/labels.py reads it: a horizon past the extract end censors the row (null),
    # whatever the window shows; otherwise the outcome before death or moving away is a 1, death
    # first within the horizon a 0 (a competing event), moving away first censors (null).
    death = _first_after(ev_sid, ev_t, ev_code, "DEATH", sid, t_us)
    move = _first_after(ev_sid, ev_t, ev_code, "MOVE/OUT", sid, t_us)
    exit_first = np.minimum(death, move)
    for k, code in ((0, "ADMIT/UNPLANNED"), (1, "CARE24H/START")):
        rows = which == k
        first = _first_after(ev_sid, ev_t, ev_code, code, sid[rows], t_us[rows])
        hit = (first <= limit[rows]) & (first <= exit_first[rows])
        died = ~hit & (death[rows] <= limit[rows]) & (death[rows] <= move[rows])
        moved = ~hit & ~died & (move[rows] <= limit[rows])
        value = pd.array(hit, dtype="boolean")
        value[moved | (limit[rows] > end_us)] = pd.NA
        observed[np.flatnonzero(rows)] = value
    frame = pd.DataFrame({
        "subject_id": sid,
        "prediction_time": pred,
        "outcome": pd.array(np.where(which == 0, "hospitalisation", "homecare_failure"), dtype="str"),
        "horizon_days": horizon.astype("int16"),
        "true_probability": t["true_probability"].to_numpy(),
        "true_incidence": t["true_incidence"].to_numpy(),
        "observed": observed,
    })
    return frame  # ordered by prediction_time, outcome (hospitalisation first), subject_id


def _latent_frame(rows: list, sid_of_pool: np.ndarray) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame()
    cols = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
    pool = cols.pop("pool")
    month = days_to_datetime(cols.pop("month"))
    return pd.DataFrame({"subject_id": sid_of_pool[pool], "month": month, **cols}, copy=False)  # by month, subject_id


def _effect_start(t: np.ndarray) -> np.ndarray:
    """Hazards change from the first day of the month after a start (already on if it is a 1st)."""
    month = np.asarray(t, dtype="datetime64[M]")
    first = month.astype("datetime64[us]")
    return np.where(first == t, first, (month + 1).astype("datetime64[us]"))


def _interventions(sid_all: np.ndarray, t_all: np.ndarray, code_idx: np.ndarray, config: SimulatorConfig) -> pd.DataFrame:
    """Intervention episodes (start, end) read back from the events, with their hazard multipliers."""
    iv = config.interventions
    spec = {
        "home_care": ("HOMECARE/START", "HOMECARE/END", iv.homecare_multiplier),
        "home_rehabilitation": ("REHAB/START", "REHAB/END", iv.rehab_multiplier),
        "remote_visits": ("REMOTE/START", None, iv.remote_multiplier.value),
        "medication_robot": ("MEDROBOT/START", None, iv.medrobot_multiplier.value),
    }
    names = np.array(catalogue().codes, dtype=object)
    wanted = np.isin(code_idx, [C.of(c) for c in ("DEATH", "MOVE/OUT", "CARE24H/START", "HOMECARE/START", "HOMECARE/END",
                                                  "REHAB/START", "REHAB/END", "REMOTE/START", "MEDROBOT/START")])
    sid_all, t_all, codes = sid_all[wanted], t_all[wanted], names[code_idx[wanted]]
    stop_codes = np.isin(codes, ["DEATH", "MOVE/OUT", "CARE24H/START"])
    stop = pd.Series(t_all[stop_codes], index=sid_all[stop_codes]).groupby(level=0).min()
    frames = []
    for name, (open_code, close_code, mult) in spec.items():
        rows = np.flatnonzero(np.isin(codes, [open_code, close_code] if close_code else [open_code]))
        sid, t, c = sid_all[rows], t_all[rows], codes[rows]
        is_open = c == open_code
        nxt_close = np.r_[(~is_open[1:]) & (sid[1:] == sid[:-1]), False]
        end = np.where(nxt_close, np.r_[t[1:], t[:1]], np.datetime64("NaT"))[is_open]
        o_sid, o_t = sid[is_open], t[is_open]
        fallback = stop.reindex(o_sid).to_numpy()
        if close_code is None:
            end = fallback
        else:
            end = np.where(np.isnat(end), fallback, end)
            end = np.where(np.isnat(end) | (end >= o_t), end, np.datetime64("NaT"))
        frames.append(pd.DataFrame({
            "subject_id": o_sid,
            "intervention": name,
            "start": o_t,
            "end": pd.to_datetime(end).astype("datetime64[us]"),
            "effect_start": _effect_start(o_t),
            "hazard_multiplier_admission": float(mult),
            "hazard_multiplier_er": float(mult),
        }))
    out = pd.concat(frames, ignore_index=True)
    out["intervention"] = out["intervention"].astype("str")
    return out.sort_values(["subject_id", "start", "intervention"], kind="stable").reset_index(drop=True)
