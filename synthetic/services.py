"""Event emitters, one function per service area, for one month of the simulation.

Emitters only write events: they read the state at the month's start, its hazards, what the
timed processes drew and what latent.advance() decided, and they use their own random stream
(so emission never changes the latent world). Counts are Poisson per person-month, spread
uniformly over the person's exposure in the month; a global pass later drops everything that
falls inside a hospital stay, before entry or after death or moving away.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from synthetic.codes import C, homecare_team_units, mental_units, municipal_units, unit_id
from synthetic.config import CareConfig, SimulatorConfig
from synthetic.latent import CONDITIONS, Rates, State, on_chronic_medication, sud_on
from synthetic.timed import DEATH, MOVED, Timed

NAN = np.nan


@dataclass
class EventBuffer:
    """Events as chunks of parallel arrays (pool index, float days, code index, value, unit index)."""

    subject: list[np.ndarray] = field(default_factory=list)
    time: list[np.ndarray] = field(default_factory=list)
    code: list[np.ndarray] = field(default_factory=list)
    value: list[np.ndarray] = field(default_factory=list)
    unit: list[np.ndarray] = field(default_factory=list)

    def add(self, subject: np.ndarray, time: np.ndarray, code: int | np.ndarray,
            value: float | np.ndarray = NAN, unit: int | np.ndarray = 0) -> None:
        n = len(subject)
        if n == 0:
            return
        self.subject.append(np.asarray(subject, dtype="int64"))
        self.time.append(np.asarray(time, dtype="float64"))
        self.code.append(np.broadcast_to(np.asarray(code, dtype="int16"), (n,)).copy())
        self.value.append(np.broadcast_to(np.asarray(value, dtype="float64"), (n,)).copy())
        self.unit.append(np.broadcast_to(np.asarray(unit, dtype="int32"), (n,)).copy())

    def arrays(self) -> tuple[np.ndarray, ...]:
        if not self.subject:
            return (np.zeros(0, "int64"), np.zeros(0), np.zeros(0, "int16"), np.zeros(0), np.zeros(0, "int32"))
        return tuple(np.concatenate(parts) for parts in (self.subject, self.time, self.code, self.value, self.unit))


@dataclass
class Aux:
    """Emission-only per-person state (does not affect any hazard)."""

    team: np.ndarray  # home care team index within the municipality
    doses: np.ndarray  # medication robot doses per day
    ad_next: np.ndarray  # next antidepressant dispensing due (days)
    rai_next: np.ndarray  # next interRAI assessment due (days)
    med_next: np.ndarray  # next chronic medication purchase due, one row per class (days)
    falls_3m: np.ndarray  # falls in each of the three previous months, newest first (interRAI falls item)
    rai_need: np.ndarray  # need at the last interRAI assessment (NaN: none yet); what the team compares against


@dataclass
class Month:
    """Everything an emitter may read for one month."""

    m: int
    ms: float
    me: float
    s: State
    r: Rates
    ch: dict[str, np.ndarray]
    tm: Timed
    active: np.ndarray
    lo: np.ndarray  # exposure start per person
    hi: np.ndarray  # exposure end per person (month end or exit)
    municipality: np.ndarray
    rng: np.random.Generator
    config: SimulatorConfig
    aux: Aux
    pc_scale: np.ndarray  # health centre (doctor, nurse, remote) scale factors
    # interRAI assessments draw from their own stream, so when and how often clients are assessed
    # changes no other event.
    rng_rai: np.random.Generator


def spread(mo: Month, idx: np.ndarray, mean: np.ndarray, start: np.ndarray | None = None,
           end: np.ndarray | None = None, office: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Poisson counts over each person's exposure [start, end) (mean is per full month)."""
    lo = mo.lo[idx] if start is None else start
    hi = mo.hi[idx] if end is None else end
    span = np.maximum(hi - lo, 0.0)
    counts = mo.rng.poisson(np.maximum(mean, 0.0) * span / (mo.me - mo.ms))
    subj = np.repeat(idx, counts)
    lo_r, span_r = np.repeat(lo, counts), np.repeat(span, counts)
    t = lo_r + mo.rng.random(len(subj)) * span_r
    if office:
        t = np.floor(t) + (8.0 + 8.0 * mo.rng.random(len(subj))) / 24.0
        keep = (t >= lo_r) & (t < lo_r + span_r)
        subj, t = subj[keep], t[keep]
    return subj, t


def _pick(mo: Month, subj: np.ndarray, p: np.ndarray | float) -> np.ndarray:
    return mo.rng.random(len(subj)) < p


def _score(rng: np.random.Generator, x: np.ndarray, sd: float, lo: float, hi: float) -> np.ndarray:
    """A recorded scale score: the latent value plus the instrument's error, rounded and clipped."""
    return np.clip(np.rint(x + sd * rng.standard_normal(len(x))), lo, hi)


# ---------------------------------------------------------------------------------------------


def primary_care(mo: Month, buf: EventBuffer) -> None:
    idx = np.flatnonzero(mo.active)
    s, r = mo.s, mo.r
    a = r.age[idx]
    mult = pc_multiplier(s, r, idx)
    hc_unit = municipal_units("HC")[mo.municipality[idx]]
    unit_of = np.zeros(len(mo.active), "int32")
    unit_of[idx] = hc_unit
    doc_mean, nurse_mean, remote_mean = (mo.pc_scale[k] * profile(k, a) * mult for k in range(3))
    subj, t = spread(mo, idx, doc_mean, office=True)
    buf.add(subj, t, C.of("ENC/HC_DOCTOR"), unit=unit_of[subj])
    _doctor_diagnoses(mo, buf, subj, t, unit_of[subj])
    _condition_codes(mo, buf, subj, t, unit_of[subj], acute=False)
    s2, t2 = spread(mo, idx, nurse_mean, office=True)
    buf.add(s2, t2, C.of("ENC/HC_NURSE"), unit=unit_of[s2])
    s3, t3 = spread(mo, idx, remote_mean, office=True)
    buf.add(s3, t3, C.of("ENC/HC_REMOTE"), unit=unit_of[s3])
    # Nurses code with ICPC-2 as well: hypertension and diabetes follow-up, infections.
    for code, cond, p in (("ICPC2/K86", s.htn, 0.25), ("ICPC2/T90", s.dm, 0.3)):
        pick = cond[s2] & _pick(mo, s2, p)
        buf.add(s2[pick], t2[pick], C.of(code), unit=unit_of[s2[pick]])
    pick = _pick(mo, s2, 0.08)
    buf.add(s2[pick], t2[pick], C.of("ICPC2/R74"), unit=unit_of[s2[pick]])
    # Missed appointments: more with depression and among young adults.
    miss = mo.config.care.missed_appointment_share * (doc_mean + nurse_mean) * np.where(s.dep[idx], 2.5, 1.0) \
        * np.where((a >= 18) & (a < 35), 1.5, 1.0)
    s4, t4 = spread(mo, idx, miss, office=True)
    buf.add(s4, t4, C.of("ENC/MISSED_APPOINTMENT"), unit=unit_of[s4])
    s5, t5 = spread(mo, idx, 0.5 * doc_mean, office=True)
    buf.add(s5, t5, C.of("ASSESS/HTA"), unit=unit_of[s5])


PC_PROFILE_AGES = (0, 7, 18, 65, 75)
PC_PROFILE = (
    (0.8, 0.6, 1.0, 1.8, 2.4),  # doctor visits a year
    (1.0, 1.2, 2.3, 4.0, 5.0),  # nurse visits
    (1.0, 0.8, 1.7, 2.4, 2.6),  # remote contacts
)


def profile(kind: int, age: np.ndarray) -> np.ndarray:
    band = np.searchsorted(np.array(PC_PROFILE_AGES), age, side="right") - 1
    return np.array(PC_PROFILE[kind])[band] / 12.0


def pc_multiplier(s: State, r: Rates, idx: np.ndarray) -> np.ndarray:
    chronic = s.hf[idx].astype(float) + s.copd[idx] + s.dm[idx] + s.htn[idx] + s.dem[idx]
    return np.exp(1.0 * r.f[idx] + 0.25 * chronic + 0.4 * s.dep[idx] + 0.25 * s.acute[idx] + 0.4 * s.u[idx]
                  - 0.5 * s.c24[idx])


def pc_scales(config: SimulatorConfig, s: State, r: Rates, active: np.ndarray) -> np.ndarray:
    """Scale factors so that the population's mean visits a year hit the THL figures."""
    idx = np.flatnonzero(active)
    mult = pc_multiplier(s, r, idx)
    c = config.care
    total, doctor, remote_share = c.hc_visits_per_inhabitant.value, c.hc_doctor_per_inhabitant.value, c.hc_remote_share.value
    targets = (doctor, total * (1 - remote_share) - doctor, total * remote_share)
    return np.array([targets[k] / 12.0 / np.mean(profile(k, r.age[idx]) * mult) for k in range(3)])


def _doctor_diagnoses(mo: Month, buf: EventBuffer, subj: np.ndarray, t: np.ndarray, unit: np.ndarray) -> None:
    s, r = mo.s, mo.r
    n = len(subj)
    u = mo.rng.random((9, n))
    rules = (
        ("ICPC2/K86", s.htn[subj] & (u[0] < 0.35)),
        ("ICPC2/T90", s.dm[subj] & (u[1] < 0.45)),
        ("ICPC2/R74", u[2] < 0.12 * np.exp(0.3 * s.acute[subj])),
        ("ICPC2/A04", ((r.f[subj] > 0.3) & (u[3] < 0.25)) | (u[3] < 0.02)),
        ("ICPC2/P76", s.dep_dx[subj] & (u[4] < 0.5)),
        ("ICD10/I50.9", s.hf[subj] & (u[5] < 0.25)),
        ("ICD10/F03", s.dem_dx[subj] & (u[6] < 0.18)),
        ("ICD10/G30", s.dem_dx[subj] & (u[6] >= 0.18) & (u[6] < 0.26)),
    )
    for code, pick in rules:
        buf.add(subj[pick], t[pick], C.of(code), unit=unit[pick])
    # PHQ-9: follow-up of diagnosed depression, and occasional screening of adults.
    phq = (s.dep_dx[subj] & (u[7] < 0.4)) | ((r.age[subj] >= 18) & (u[8] < 0.01))
    buf.add(subj[phq], t[phq], C.of("PHQ9"), _phq9(mo, subj[phq]), unit[phq])
    alcohol = sud_on(s, r.age)[subj] & _pick(mo, subj, mo.config.mental.sud_dx_per_doctor_visit)
    buf.add(subj[alcohol], t[alcohol], C.of("ICD10/F10.2"), unit=unit[alcohol])


def _phq9(mo: Month, subj: np.ndarray) -> np.ndarray:
    s = mo.s
    latent = np.where(s.dep[subj], s.dep_sev[subj], np.minimum(s.dep_sev[subj], 9.0))
    return _score(mo.rng, latent, 2.5, 0, 27)


def emergency(mo: Month, buf: EventBuffer, stays_prev_end: np.ndarray) -> None:
    """ER visits (without admission), paramedic contacts, unplanned stays with their ER visit."""
    s, r = mo.s, mo.r
    idx = np.flatnonzero(mo.active)
    er = unit_id("EKKS/ER")
    # Exactly the visits latent.advance() drew for the month (they feed the bounce-back hazard), at
    # uniform times in the month; those outside the person's exposure (before entry, after an exit)
    # are dropped, which thins the Poisson count to the exposure as spread() did.
    n = np.asarray(mo.ch["er_visits"])[idx]
    subj = np.repeat(idx, n)
    t = mo.ms + mo.rng.random(len(subj)) * (mo.me - mo.ms)
    inside = (t >= mo.lo[subj]) & (t < mo.hi[subj])
    subj, t = subj[inside], t[inside]
    buf.add(subj, t, C.of("ENC/EMERGENCY"), unit=er)
    _er_diagnoses(mo, buf, subj, t, er)
    drunk = sud_on(s, r.age)[subj] & _pick(mo, subj, mo.config.mental.sud_dx_per_er_visit)
    buf.add(subj[drunk], t[drunk], C.of("ICD10/F10.0"), unit=er)
    _condition_codes(mo, buf, subj, t, er, acute=True)
    old = r.age[idx] >= 65
    para = np.where(old, 0.008 * np.exp(2.5 * r.f[idx] + 0.4 * s.acute[idx]) * np.where(s.hc[idx], 1.5, 1.0), 0.0015)
    s2, t2 = spread(mo, idx, para)
    buf.add(s2, t2, C.of("ENC/PARAMEDIC"), unit=unit_id("EKKS/EMS"))

    st = mo.tm.stays
    if len(st.subject):
        ward = unit_id("EKKS/WARD")
        # The ER visit just before each admission (1-6 hours, never back into an earlier stay).
        prev = stays_prev_end.copy()
        er_t = np.empty(len(st.subject))
        for j in range(3):
            sel = np.flatnonzero(st.order == j)
            who = st.subject[sel]
            gap = st.admit[sel] - np.maximum(prev[who], mo.lo[who])
            delay = np.minimum((1 + 5 * mo.rng.random(len(sel))) / 24.0, 0.5 * gap)
            er_t[sel] = st.admit[sel] - delay
            prev[who] = st.discharge[sel]
        buf.add(st.subject, er_t, C.of("ENC/EMERGENCY"), unit=er)
        buf.add(st.subject, st.admit, C.of("ADMIT/UNPLANNED"), unit=ward)
        _admission_diagnoses(mo, buf, st.subject, st.admit, st.hip, ward)
        # DISCHARGE rows are written at the end from the stay store (a stay may still be cut short).


# Main diagnoses of non-admitted ER visits (assumption, shaped like Finnish ER case mixes: about
# a fifth injuries, then pains, infections and intoxications). A visit is low-acuity with the
# person's share er_low_d / er_d; the main diagnosis is recorded at 85 % of visits (coding is
# incomplete) and nonspecific abdominal pain comes from either kind, so the codes separate the
# two kinds only partly.
ER_CODED = 0.85
ER_LOW_CODES = (("ICD10/S93.4", 0.45), ("ICD10/M54.5", 0.25), ("ICD10/F10.0", 0.15), ("ICD10/R10.4", 0.15))
ER_MEDICAL_CODES = (("ICD10/J18.9", 0.3), ("ICD10/N39.0", 0.3), ("ICD10/R10.4", 0.25), ("ICPC2/R74", 0.15))


def _er_diagnoses(mo: Month, buf: EventBuffer, subj: np.ndarray, t: np.ndarray, unit: int) -> None:
    s, r = mo.s, mo.r
    u = mo.rng.random((5, len(subj)))
    with np.errstate(invalid="ignore", divide="ignore"):
        p_low = np.where(r.er_d[subj] > 0, r.er_low_d[subj] / r.er_d[subj], 0.0)
    low = u[0] < p_low
    # Medical visits of people with heart failure or COPD carry its code (exacerbations).
    hf = ~low & s.hf[subj] & (u[1] < 0.3)
    copd = ~low & ~hf & s.copd[subj] & (u[1] >= 0.3) & (u[1] < 0.6)
    for code, pick in (("ICD10/I50.9", hf), ("ICD10/J44.1", copd)):
        buf.add(subj[pick], t[pick], C.of(code), unit=unit)
    coded = ~hf & ~copd & (u[2] < ER_CODED)
    adult = r.age[subj] >= 18
    for kind, table in ((low, ER_LOW_CODES), (~low, ER_MEDICAL_CODES)):
        edges = np.cumsum([p for _, p in table])
        which = np.searchsorted(edges, u[3] * edges[-1], side="right")
        for j, (code, _) in enumerate(table):
            pick = kind & coded & (which == j)
            if code == "ICD10/F10.0":  # intoxications only for adults; children's go to the injury code
                buf.add(subj[pick & ~adult], t[pick & ~adult], C.of("ICD10/S93.4"), unit=unit)
                pick = pick & adult
            buf.add(subj[pick], t[pick], C.of(code), unit=unit)


INJURY_ADMISSION_CODES = ("ICD10/S06.0", "ICD10/S82.8")  # concussion; fracture of the lower leg


def _admission_diagnoses(mo: Month, buf: EventBuffer, subj: np.ndarray, t: np.ndarray, hip: np.ndarray, unit: int) -> None:
    s, r = mo.s, mo.r
    u = mo.rng.random((5, len(subj)))
    # A stay is for an injury with the person's share of injury admissions (hip fractures apart).
    ui = mo.rng.random(len(subj))
    with np.errstate(invalid="ignore", divide="ignore"):
        p_inj = np.where(r.adm_d[subj] > 0, r.adm_inj_d[subj] / r.adm_d[subj], 0.0)
    injury = ~hip & (ui < p_inj)
    head = ui < 0.5 * p_inj
    buf.add(subj[injury & head], t[injury & head], C.of(INJURY_ADMISSION_CODES[0]), unit=unit)
    buf.add(subj[injury & ~head], t[injury & ~head], C.of(INJURY_ADMISSION_CODES[1]), unit=unit)
    rules = (
        ("ICD10/S72.0", hip),
        ("ICD10/I50.9", ~injury & s.hf[subj] & (u[0] < 0.5)),
        ("ICD10/J44.1", ~injury & s.copd[subj] & (u[1] < 0.5)),
        ("ICD10/F32.1", s.dep_dx[subj] & (s.dep_n[subj] <= 1) & (u[2] < 0.15)),
        ("ICD10/F33", s.dep_dx[subj] & (s.dep_n[subj] > 1) & (u[2] < 0.15)),
        ("ICD10/F03", s.dem_dx[subj] & (u[3] < 0.25)),
        ("ICD10/G30", s.dem_dx[subj] & (u[3] >= 0.25) & (u[3] < 0.35)),
        ("ICD10/F10.2", sud_on(s, mo.r.age)[subj] & (u[4] < mo.config.mental.sud_dx_per_specialist_contact)),
    )
    for code, pick in rules:
        buf.add(subj[pick], t[pick], C.of(code), unit=unit)
    _condition_codes(mo, buf, subj, t, unit, acute=True)


def _condition_codes(mo: Month, buf: EventBuffer, subj: np.ndarray, t: np.ndarray, unit: int | np.ndarray,
                     acute: bool) -> None:
    """Diagnosis codes of the childhood-onset chronic conditions at visits of people who have them."""
    conds = mo.config.conditions
    u = mo.rng.random((len(CONDITIONS), len(subj)))
    for k, (state_field, name) in enumerate(CONDITIONS):
        c = getattr(conds, name)
        pick = getattr(mo.s, state_field)[subj] & (u[k] < (c.dx_share_acute if acute else c.dx_share_doctor_visit))
        buf.add(subj[pick], t[pick], C.of(c.icd10), unit=unit if np.ndim(unit) == 0 else unit[pick])


def condition_care(mo: Month, buf: EventBuffer) -> None:
    """Follow-up of the childhood-onset chronic conditions: planned visits (asthma and diabetes
    nurse, epilepsy and cerebral palsy doctor) coded with the condition, and the diagnosis at a doctor visit in the
    month of onset. Run last in the month, so the other emitters' random draws stay as they were."""
    s, conds = mo.s, mo.config.conditions
    hc_unit = municipal_units("HC")[mo.municipality]
    for state_field, name in CONDITIONS:
        c = getattr(conds, name)
        visit = "ENC/HC_DOCTOR" if state_field in ("epi", "cp") else "ENC/HC_NURSE"
        idx = np.flatnonzero(mo.active & getattr(s, state_field))
        subj, t = spread(mo, idx, np.full(len(idx), c.visits_yearly / 12.0), office=True)
        buf.add(subj, t, C.of(visit), unit=hc_unit[subj])
        buf.add(subj, t, C.of(c.icd10), unit=hc_unit[subj])
        new = np.flatnonzero(mo.ch[f"{state_field}_onset"] & mo.active)
        t2 = np.floor(mo.lo[new] + mo.rng.random(len(new)) * (mo.hi[new] - mo.lo[new])) + 10.0 / 24.0
        ok = (t2 >= mo.lo[new]) & (t2 < mo.hi[new])
        new, t2 = new[ok], t2[ok]
        buf.add(new, t2, C.of("ENC/HC_DOCTOR"), unit=hc_unit[new])
        buf.add(new, t2, C.of(c.icd10), unit=hc_unit[new])


def planned_stays(mo: Month, buf: EventBuffer, carried_end: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Elective stays, placed only where they fit: inside the month, between unplanned stays."""
    r = mo.r
    idx = np.flatnonzero(mo.active)
    yearly = np.interp(r.age[idx], [a for a, _ in mo.config.care.planned_admissions_yearly],
                       [v for _, v in mo.config.care.planned_admissions_yearly])
    want = mo.rng.random(len(idx)) < yearly / 12.0
    who = idx[want]
    day = np.floor(mo.lo[who] + mo.rng.random(len(who)) * (mo.hi[who] - mo.lo[who]))
    a = day + 8.0 / 24.0
    d = a + np.round(1 + mo.rng.exponential(1.5, len(who)))  + 10.0 / 24.0
    ok = (a >= mo.lo[who]) & (d < mo.hi[who]) & (a > carried_end[who])
    ok &= ~((a < mo.tm.c24_t[who]) & (mo.tm.c24_t[who] < d + 1e-6))
    st = mo.tm.stays
    if len(st.subject):
        # Reject overlaps with any unplanned stay (and its ER visit half a day before) this month.
        pos = np.full(len(mo.active), -1)
        pos[who] = np.arange(len(who))
        hit = pos[st.subject]
        on = hit >= 0
        clash = (st.admit[on] - 0.5 < d[hit[on]]) & (a[hit[on]] < st.discharge[on])
        ok[hit[on][clash]] = False
    who, a, d = who[ok], a[ok], d[ok]
    buf.add(who, a, C.of("ADMIT/PLANNED"), unit=unit_id("EKKS/WARD"))
    return who, a, d


# Chronic medication classes bought at a pharmacy and the conditions that call for them.
CHRONIC_MEDICATION = (("MED/ATC_C", ("hf", "htn")), ("MED/ATC_R03", ("copd",)), ("MED/ATC_A10", ("dm",)))


def chronic_medication(mo: Month, buf: EventBuffer) -> None:
    """Kela-reimbursed purchases of long-term medicines, a 3-month supply each; a non-adherent
    person comes back late (the supply lasts longer than its days), which shows as refill gaps."""
    s, r, cfg = mo.s, mo.r, mo.config.care
    on_med = mo.active & on_chronic_medication(s, r.age)
    for row, (code, conditions) in enumerate(CHRONIC_MEDICATION):
        has = np.zeros(len(s), bool)
        for name in conditions:
            has |= getattr(s, name)
        on = on_med & has
        nxt = mo.aux.med_next[row]
        for _ in range(3):
            due = np.flatnonzero(on & (nxt < mo.hi))
            if not len(due):
                break
            t = np.maximum(nxt[due], mo.lo[due])
            days = cfg.chronic_med_supply_days
            buf.add(due, t, C.of(code), days, unit_id("PHARMACY"))
            lapse = 1.0 + cfg.chronic_med_lapse_per_adherence * np.maximum(0.95 - r.adh[due], 0.0)
            nxt[due] = t + days * lapse + mo.rng.uniform(-7, 3, len(due))
        # Off the medicine (no condition, or in 24-hour care): the next purchase is due at once
        # when they are on it again.
        off = ~on & (nxt > mo.hi)
        nxt[off] = mo.hi[off]


def mental_health(mo: Month, buf: EventBuffer) -> None:
    s, r = mo.s, mo.r
    idx = np.flatnonzero(mo.active & (r.age >= 12))
    unit_of = mental_units()[mo.municipality[idx]]
    units = np.zeros(len(mo.active), "int32")
    units[idx] = unit_of
    in_care = s.dep_dx[idx]
    subj, t = spread(mo, idx, np.where(in_care, 1.0, 0.0), office=True)
    buf.add(subj, t, C.of("ENC/PSYCHIATRY"), unit=units[subj])
    u = mo.rng.random((2, len(subj)))
    phq = u[0] < 0.6
    buf.add(subj[phq], t[phq], C.of("PHQ9"), _phq9(mo, subj[phq]), units[subj[phq]])
    dx = u[1] < 0.5
    recurrent = s.dep_n[subj] > 1
    buf.add(subj[dx & ~recurrent], t[dx & ~recurrent], C.of("ICD10/F32.1"), unit=units[subj[dx & ~recurrent]])
    buf.add(subj[dx & recurrent], t[dx & recurrent], C.of("ICD10/F33"), unit=units[subj[dx & recurrent]])
    alcohol = sud_on(s, r.age)[subj] & _pick(mo, subj, mo.config.mental.sud_dx_per_specialist_contact)
    buf.add(subj[alcohol], t[alcohol], C.of("ICD10/F10.2"), unit=units[subj[alcohol]])
    crisis = (0.0004 + s.dep[idx] * 0.02 * np.exp(0.15 * (s.dep_sev[idx] - 15))
              + ((r.age[idx] < 18) & s.crisis[idx]) * 0.03)
    s2, t2 = spread(mo, idx, crisis)
    buf.add(s2, t2, C.of("ENC/CRISIS"), unit=unit_id("MENTAL/CRISIS"))
    # First diagnosis of an episode, at a health centre doctor visit this month.
    new = np.flatnonzero(mo.ch["dep_dx_new"] & mo.active)
    t3 = mo.lo[new] + mo.rng.random(len(new)) * (mo.hi[new] - mo.lo[new])
    hc = municipal_units("HC")[mo.municipality[new]]
    buf.add(new, t3, C.of("ENC/HC_DOCTOR"), unit=hc)
    buf.add(new, t3, C.of("ICPC2/P76"), unit=hc)
    buf.add(new, t3, C.of("PHQ9"), _score(mo.rng, s.dep_sev[new], 2.5, 0, 27), hc)
    starting = mo.ch["ad_start"][new]
    mo.aux.ad_next[new[starting]] = t3[starting] + 0.5
    _self_harm(mo, buf)
    antidepressants(mo, buf)


def _self_harm(mo: Month, buf: EventBuffer) -> None:
    """A self-harm episode of the month is an emergency department visit coded X60-X84 (as X84)."""
    who = np.flatnonzero(mo.ch["self_harm"] & mo.active)
    t = mo.lo[who] + mo.rng.random(len(who)) * (mo.hi[who] - mo.lo[who])
    er = unit_id("EKKS/ER")
    buf.add(who, t, C.of("ENC/EMERGENCY"), unit=er)
    buf.add(who, t, C.of("ICD10/X84"), unit=er)


def antidepressants(mo: Month, buf: EventBuffer) -> None:
    s, r = mo.s, mo.r
    on = mo.active & (s.ad_on | mo.ch["ad_start"])
    for _ in range(4):
        due = np.flatnonzero(on & (mo.aux.ad_next < mo.hi))
        if not len(due):
            break
        t = np.maximum(mo.aux.ad_next[due], mo.lo[due])
        days = np.where(mo.rng.random(len(due)) < 0.6, 90.0, 30.0)
        buf.add(due, t, C.of("MED/ANTIDEPRESSANT"), days, unit_id("PHARMACY"))
        lapse = 1.0 + 2.5 * np.maximum(0.92 - r.adh[due], 0.0)
        mo.aux.ad_next[due] = t + days * lapse + mo.rng.uniform(-3, 5, len(due))


def elderly_care(mo: Month, buf: EventBuffer) -> None:
    """Assessments, home care, remote visits, medication robot, IoT, rehabilitation, 24-hour care."""
    s, r, ch, tm, rng = mo.s, mo.r, mo.ch, mo.tm, mo.rng
    cfg = mo.config
    mun = mo.municipality
    team_first, team_count = homecare_team_units()
    own_team = team_first[mun] + mo.aux.team % team_count[mun]
    social = municipal_units("SOCIAL")[mun]
    n = len(s)

    # PTA and the start of home care a few days later.
    pta = np.flatnonzero(ch["pta"] & mo.active)
    t_pta = np.floor(mo.lo[pta] + 0.6 * rng.random(len(pta)) * (mo.hi[pta] - mo.lo[pta])) + (9 + 6 * rng.random(len(pta))) / 24
    t_pta = np.maximum(t_pta, mo.lo[pta])
    buf.add(pta, t_pta, C.of("ASSESS/PTA"), unit=social[pta])
    # A home care client who loses the co-resident partner gets a new service need assessment.
    lost = np.flatnonzero(ch["partner_loss"] & mo.active & s.hc & ~ch["pta"])
    lost = lost[rng.random(len(lost)) < cfg.care.pta_after_partner_loss]
    t_lost = mo.lo[lost] + (0.3 + 0.7 * rng.random(len(lost))) * (np.minimum(mo.hi[lost], tm.c24_t[lost]) - mo.lo[lost])
    buf.add(lost, t_lost, C.of("ASSESS/PTA"), unit=social[lost])
    starts = ch["hc_start"][pta]
    who = pta[starts]
    t_start = np.minimum(t_pta[starts] + 1 + 8 * rng.random(len(who)), 0.5 * (t_pta[starts] + mo.hi[who]))
    ok = t_start < mo.hi[who]
    buf.add(who[ok], t_start[ok], C.of("HOMECARE/START"), unit=own_team[who[ok]])
    mo.aux.rai_next[who[ok]] = t_start[ok] + 7 + 23 * rng.random(ok.sum())

    # End of home care: recovery (late in the month) or a move to 24-hour care.
    hc_cut = np.full(n, np.inf)
    ended = np.flatnonzero(ch["hc_end"] & mo.active)
    hc_cut[ended] = mo.lo[ended] + (0.7 + 0.3 * rng.random(len(ended))) * (mo.hi[ended] - mo.lo[ended])
    buf.add(ended, hc_cut[ended], C.of("HOMECARE/END"), unit=own_team[ended])
    c24 = np.flatnonzero(tm.c24_t < np.inf)
    to_end = c24[s.hc[c24]]
    buf.add(to_end, tm.c24_t[to_end], C.of("HOMECARE/END"), unit=own_team[to_end])
    rehab_stop = c24[s.rehab_left[c24] > 0]
    buf.add(rehab_stop, tm.c24_t[rehab_stop], C.of("REHAB/END"), unit=municipal_units("REHAB")[mun[rehab_stop]])
    buf.add(c24, tm.c24_t[c24], C.of("CARE24H/START"), unit=municipal_units("CARE24H")[mun[c24]])
    hc_cut = np.minimum(hc_cut, tm.c24_t)

    # Home care visits (and video visits for remote clients), at home care hours.
    cl = np.flatnonzero(mo.active & s.hc)
    end = np.minimum(mo.hi[cl], hc_cut[cl])
    mean = cfg.care.homecare_visits_median * np.exp(3.0 * (r.need[cl] - cfg.care.need_threshold_homecare) + s.hc_int[cl])
    subj, t = spread(mo, cl, mean, end=end)
    t = np.floor(t) + (7 + 14 * rng.random(len(t))) / 24
    keep = (t >= mo.lo[subj]) & (t < np.minimum(mo.hi[subj], hc_cut[subj]))
    subj, t = subj[keep], t[keep]
    video = s.remote[subj] & (rng.random(len(subj)) < cfg.interventions.remote_video_share)
    other_team = team_first[mun[subj]] + rng.integers(0, 6, len(subj)) % team_count[mun[subj]]
    unit = np.where(rng.random(len(subj)) < 0.05, other_team, own_team[subj])
    minutes = np.clip(np.rint(np.exp(np.log(25) + 0.8 * (r.need[subj] - 0.45) + 0.45 * rng.standard_normal(len(subj)))), 5, 120)
    buf.add(subj[~video], t[~video], C.of("HOMECARE/VISIT"), minutes[~video], unit[~video])
    vmin = np.clip(np.rint(np.exp(np.log(10) + 0.4 * rng.standard_normal(video.sum()))), 2, 60)
    buf.add(subj[video], t[video], C.of("REMOTE/VIDEO_VISIT"), vmin, unit_id("HOMECARE/REMOTE"))

    for flag, code, unit_name in (("remote_start", "REMOTE/START", "HOMECARE/REMOTE"), ("robot_start", "MEDROBOT/START", "MEDROBOT/EKSOTE")):
        who = np.flatnonzero(ch[flag] & mo.active)
        t = mo.lo[who] + (0.3 + 0.7 * rng.random(len(who))) * (np.minimum(mo.hi[who], hc_cut[who]) - mo.lo[who])
        buf.add(who, t, C.of(code), unit=unit_id(unit_name))

    _medication_robot(mo, buf, np.flatnonzero(mo.active & s.robot), tm.c24_t)
    _informal_care(mo, buf, cl, hc_cut, social)
    _iot(mo, buf, cl, hc_cut)
    _interrai(mo, buf, cl, hc_cut, own_team)
    _reassess_after_discharge(mo)
    _rehabilitation(mo, buf)


def _medication_robot(mo: Month, buf: EventBuffer, who: np.ndarray, cut: np.ndarray) -> None:
    if not len(who):
        return
    rng = mo.rng
    first = np.ceil(mo.lo[who] - 21 / 24)  # day whose 21:00 dispense row is the first inside exposure
    last_end = np.minimum(mo.hi[who], cut[who])
    ndays = np.clip(np.floor(last_end - 21 / 24) - first + 1, 0, 31).astype("int64")
    subj = np.repeat(who, ndays)
    offset = np.arange(ndays.sum()) - np.repeat(np.cumsum(ndays) - ndays, ndays)
    day = np.repeat(first, ndays) + offset
    doses = mo.aux.doses[subj]
    taken = rng.binomial(doses, mo.r.adh[subj])
    unit = unit_id("MEDROBOT/EKSOTE")
    buf.add(subj, day + 21 / 24, C.of("MEDROBOT/DISPENSE"), taken.astype(float), unit)
    missed = doses - taken
    ms = np.repeat(subj, missed)
    slot = np.arange(missed.sum()) - np.repeat(np.cumsum(missed) - missed, missed)
    slot_hours = np.array([8.0, 14.0, 20.0, 12.0, 17.0, 10.0])
    buf.add(ms, np.repeat(day, missed) + slot_hours[slot] / 24 + 0.25 / 24, C.of("MEDROBOT/MISSED_DOSE"), unit=unit)


def _informal_care(mo: Month, buf: EventBuffer, clients: np.ndarray, cut: np.ndarray, social: np.ndarray) -> None:
    """The informal care allowance's monthly fee, paid while a co-resident carer looks after the client."""
    who = clients[mo.s.ic_fee[clients]]
    end = np.minimum(mo.hi[who], cut[who])
    paid = np.floor(mo.ms) + 14.5  # mid-month payment day
    who = who[(paid >= mo.lo[who]) & (paid < end)]
    fee = mo.config.care.informal_care_fee_eur.value
    buf.add(who, np.full(len(who), paid), C.of("SOCIAL/INFORMAL_CARE_FEE"), fee, social[who])


def _iot(mo: Month, buf: EventBuffer, clients: np.ndarray, cut: np.ndarray) -> None:
    s = mo.s
    who = clients[s.iot[clients]]
    falls = mo.ch["falls"][who]
    subj = np.repeat(who, falls)
    end = np.minimum(mo.hi[subj], cut[subj])
    t = mo.lo[subj] + mo.rng.random(len(subj)) * (end - mo.lo[subj])
    buf.add(subj, t, C.of("IOT/FALL_ALARM"), unit=unit_id("IOT/EKSOTE"))
    mean = 0.15 * np.exp(0.8 * s.acute[who]) + 0.3 * s.dem[who]
    s2, t2 = spread(mo, who, mean, end=np.minimum(mo.hi[who], cut[who]))
    buf.add(s2, t2, C.of("IOT/INACTIVITY_ALARM"), unit=unit_id("IOT/EKSOTE"))


@dataclass(frozen=True)
class RaiInputs:
    """The latent state an interRAI HC assessment reads (one element per assessed person)."""

    f: np.ndarray  # frailty
    cog: np.ndarray
    acute: np.ndarray
    hf: np.ndarray
    copd: np.ndarray
    dep: np.ndarray
    dep_sev: np.ndarray
    bpsd: np.ndarray

    @staticmethod
    def of(s: State, r: Rates, who: np.ndarray) -> "RaiInputs":
        return RaiInputs(f=r.f[who], cog=s.cog[who], acute=s.acute[who], hf=s.hf[who], copd=s.copd[who],
                         dep=s.dep[who], dep_sev=s.dep_sev[who], bpsd=s.bpsd[who])


def interrai_scales(x: RaiInputs, rng: np.random.Generator, care: CareConfig) -> dict[str, np.ndarray]:
    """The interRAI HC scales of one assessment: each a rounded, clipped function of the latent state
    plus the assessment's own error (rater and day-to-day variation), whose size per scale is set in
    CareConfig so that a same-day repeat agrees as published (rai_*_noise_sd). Pure: the state in, the
    scores out; two calls on the same state are two independent assessments of it."""
    f, cog = x.f, x.cog
    adlh = _score(rng, 10 * (f - 0.3) + 0.8 * np.maximum(cog - 2, 0), care.rai_adlh_noise_sd, 0, 6)
    iadl = _score(rng, 12 * (f - 0.2) + 0.6 * cog, care.rai_iadl_noise_sd, 0, 6)
    cps = _score(rng, cog, care.rai_cps_noise_sd, 0, 6)
    chess = _score(rng, 1 + 0.8 * x.acute + 0.8 * x.hf + 0.5 * x.copd + 3 * (f - 0.4), care.rai_chess_noise_sd, 0, 5)
    drs = _score(rng, np.where(x.dep, x.dep_sev / 2, 1.0), care.rai_drs_noise_sd, 0, 14)
    maple = np.clip(1 + (adlh >= 2) + (cps >= 3) + ((adlh >= 4) | (cps >= 4)) + ((iadl >= 5) & (chess >= 2)), 1, 5)
    abs_score = _score(rng, np.where(x.bpsd, 4.0, 0.2), care.rai_abs_noise_sd, 0, 12)
    return {"maple": maple, "cps": cps, "adlh": adlh, "iadl": iadl, "chess": chess, "drs": drs, "abs": abs_score}


def _interrai(mo: Month, buf: EventBuffer, clients: np.ndarray, cut: np.ndarray, own_team: np.ndarray) -> None:
    s, r, rng, cfg = mo.s, mo.r, mo.rng_rai, mo.config
    _significant_change(mo, clients, cut)
    due = clients[mo.aux.rai_next[clients] < np.minimum(mo.hi[clients], cut[clients])]
    t = np.maximum(mo.aux.rai_next[due], mo.lo[due])
    mo.aux.rai_next[due] = t + cfg.care.rai_interval_months * 30.4 + rng.uniform(-25, 25, len(due))
    done = rng.random(len(due)) < cfg.care.rai_completion
    who, t = due[done], t[done]
    if not len(who):
        return
    scales = interrai_scales(RaiInputs.of(s, r, who), rng, cfg.care)
    mo.aux.rai_need[who] = r.need[who]
    # Living arrangement, the carer's distress (not always told) and the Aggressive Behaviour Scale.
    alone = s.alone[who].astype(float)
    distress = (s.cg_distress[who] & ~s.alone[who] & (rng.random(len(who)) < cfg.care.cg_distress_recorded)).astype(float)
    # interRAI HC asks about falls in the last 90 days (the Falls CAP triggers on one vs two or more);
    # the three months before the assessment's month, so no fall after it is recorded. No random
    # numbers are drawn, so every other event keeps its values.
    falls = np.minimum(mo.aux.falls_3m[:, who].sum(axis=0), 2)
    unit = own_team[who]
    for code, value in (("RAI/MAPLE", scales["maple"]), ("RAI/CPS", scales["cps"]), ("RAI/ADLH", scales["adlh"]),
                        ("RAI/IADL", scales["iadl"]), ("RAI/CHESS", scales["chess"]), ("RAI/DRS", scales["drs"]),
                        ("RAI/LIVES_ALONE", alone), ("RAI/CG_DISTRESS", distress), ("RAI/ABS", scales["abs"])):
        buf.add(who, t, C.of(code), value.astype(float), unit)
    if cfg.care.rai_records_falls:
        buf.add(who, t, C.of("RAI/FALLS"), falls.astype(float), unit)


def _significant_change(mo: Month, clients: np.ndarray, cut: np.ndarray) -> None:
    """A significant change in status reassessment (interRAI HC item A8): the home care team, who see
    the client daily, ask for one when the care need has clearly risen since the last assessment; it
    comes this month at a random time and restarts the six-month cadence. Clients not yet assessed in
    the extract have no reference and are not checked."""
    care = mo.config.care
    if care.rai_significant_change_monthly <= 0 or not len(clients):
        return
    u = mo.rng_rai.random((2, len(clients)))
    rise = mo.r.need[clients] - mo.aux.rai_need[clients]  # NaN (never assessed) compares False
    pick = (rise >= care.rai_significant_change_need) & (u[0] < care.rai_significant_change_monthly)
    who = clients[pick]
    end = np.minimum(mo.hi[who], cut[who])
    t = mo.lo[who] + u[1][pick] * (end - mo.lo[who])
    mo.aux.rai_next[who] = np.minimum(mo.aux.rai_next[who], t)


def _reassess_after_discharge(mo: Month) -> None:
    """A return assessment: a share of home care clients discharged from an unplanned stay are
    reassessed a few weeks after it (interRAI HC item A8 "return assessment"), which also restarts
    their six-month cadence. Runs after this month's routine assessments, so a routine one due before
    the stay is still done; the stay's own discharge time sets the date (it may fall next month)."""
    care = mo.config.care
    st = mo.tm.stays
    if care.rai_after_discharge_share <= 0 or not len(st.subject):
        return
    u = mo.rng_rai.random((2, len(st.subject)))
    pick = mo.active[st.subject] & mo.s.hc[st.subject] & (u[0] < care.rai_after_discharge_share)
    lo, hi = care.rai_after_discharge_days
    due = st.discharge[pick] + lo + (hi - lo) * u[1][pick]
    np.minimum.at(mo.aux.rai_next, st.subject[pick], due)


def _rehabilitation(mo: Month, buf: EventBuffer) -> None:
    s, ch, rng = mo.s, mo.ch, mo.rng
    rehab_unit = municipal_units("REHAB")[mo.municipality]
    cut = np.full(len(s), np.inf)
    ending = np.flatnonzero(ch["rehab_end"] & mo.active & (mo.tm.c24_t == np.inf))
    cut[ending] = mo.lo[ending] + (0.5 + 0.5 * rng.random(len(ending))) * (mo.hi[ending] - mo.lo[ending])
    buf.add(ending, cut[ending], C.of("REHAB/END"), unit=rehab_unit[ending])
    cut = np.minimum(cut, mo.tm.c24_t)
    on = np.flatnonzero(mo.active & (s.rehab_left > 0))
    subj, t = spread(mo, on, np.full(len(on), 7.0), end=np.minimum(mo.hi[on], cut[on]), office=True)
    buf.add(subj, t, C.of("REHAB/VISIT"), unit=rehab_unit[subj])
    start = np.flatnonzero(ch["rehab_start"] & mo.active)
    t = mo.lo[start] + (0.6 + 0.4 * rng.random(len(start))) * (mo.hi[start] - mo.lo[start])
    buf.add(start, t, C.of("REHAB/START"), unit=rehab_unit[start])


def children(mo: Month, buf: EventBuffer) -> None:
    s, r, ch, rng = mo.s, mo.r, mo.ch, mo.rng
    mun = mo.municipality
    idx = np.flatnonzero(mo.active & (r.age < 18))
    a = r.age[idx]
    small = a < 7
    mean_ch = np.where(a < 1, 0.8, 0.12) * (1 + 0.5 * s.crisis[idx])
    s1, t1 = spread(mo, idx[small], mean_ch[small], office=True)
    buf.add(s1, t1, C.of("ENC/CHILD_HEALTH"), unit=municipal_units("CHILDHEALTH")[mun[s1]])
    mean_sc = 0.12 + 0.1 * s.crisis[idx] + 0.15 * s.dep[idx]
    s2, t2 = spread(mo, idx[~small], mean_sc[~small], office=True)
    buf.add(s2, t2, C.of("ENC/SCHOOL_HEALTH"), unit=municipal_units("SCHOOLHEALTH")[mun[s2]])

    cw = municipal_units("CHILDWELFARE")[mun]
    count = np.where(mo.active, ch["notif"], 0)
    subj = np.repeat(np.arange(len(s)), count)
    t = mo.lo[subj] + rng.random(len(subj)) * (mo.hi[subj] - mo.lo[subj])
    buf.add(subj, t, C.of("CHILDWELFARE/NOTIFICATION"), unit=cw[subj])
    first = np.full(len(s), np.inf)
    np.minimum.at(first, subj, t)
    start = np.flatnonzero(ch["open_start"] & mo.active)
    ts = np.minimum(first[start] + 3 + 17 * rng.random(len(start)), 0.5 * (first[start] + mo.hi[start]))
    buf.add(start, ts, C.of("CHILDWELFARE/OPEN_CARE_START"), unit=cw[start])
    end = np.flatnonzero((ch["open_end"] | ch["placed_new"]) & mo.active)
    te = mo.lo[end] + rng.random(len(end)) * (mo.hi[end] - mo.lo[end])
    buf.add(end, te, C.of("CHILDWELFARE/OPEN_CARE_END"), unit=cw[end])
    placed = ch["placed_new"][end]
    buf.add(end[placed], te[placed], C.of("CHILDWELFARE/PLACEMENT"), unit=cw[end[placed]])


def life(mo: Month, buf: EventBuffer, moved_in: np.ndarray, entry_t: np.ndarray) -> None:
    tm = mo.tm
    dead = np.flatnonzero(tm.exit_kind == DEATH)
    buf.add(dead, tm.exit_t[dead], C.of("DEATH"))
    gone = np.flatnonzero(tm.exit_kind == MOVED)
    buf.add(gone, tm.exit_t[gone], C.of("MOVE/OUT"))
    new = np.flatnonzero(moved_in & (entry_t >= mo.ms) & (entry_t < mo.me))
    buf.add(new, entry_t[new], C.of("MOVE/IN"))


def running_services(mo: Month, buf: EventBuffer, idx: np.ndarray, t0: np.ndarray) -> None:
    """Services already running when a person enters the data (the extract start, or moving in)
    appear as their START events at that time."""
    s = mo.s
    mun = mo.municipality
    team_first, team_count = homecare_team_units()
    own_team = team_first[mun] + mo.aux.team % team_count[mun]
    rows = (
        (s.busy[idx] > mo.ms, "ADMIT/UNPLANNED", np.full(len(mun), unit_id("EKKS/WARD"))),
        (s.c24[idx], "CARE24H/START", municipal_units("CARE24H")[mun]),
        (s.hc[idx], "HOMECARE/START", own_team),
        (s.remote[idx], "REMOTE/START", np.full(len(mun), unit_id("HOMECARE/REMOTE"))),
        (s.robot[idx], "MEDROBOT/START", np.full(len(mun), unit_id("MEDROBOT/EKSOTE"))),
        (s.rehab_left[idx] > 0, "REHAB/START", municipal_units("REHAB")[mun]),
        (s.cw_open[idx], "CHILDWELFARE/OPEN_CARE_START", municipal_units("CHILDWELFARE")[mun]),
        (s.placed[idx], "CHILDWELFARE/PLACEMENT", municipal_units("CHILDWELFARE")[mun]),
    )
    for pick, code, unit in rows:
        buf.add(idx[pick], t0[pick], C.of(code), unit=unit[idx[pick]])
