"""Ground truth: the true probability of each outcome within its horizon, given the state at the
index time (first day of a month, 00:00).

The estimand (features/labels.py) is the cumulative incidence with death as a competing event:
the probability that the outcome happens within the horizon before the customer dies. Death
first is a negative; moving away first censors the row (training drops it), as does a horizon
past the extract end (which the truth does not see: its rows simply have no label).

P(outcome first) and P(moving away first) within the horizon are computed by Monte Carlo over the
future of the latent state, Rao-Blackwellised: along each simulated path the outcome itself is
never sampled; instead, with hazards constant within a month, the probability that the outcome
is the first of {outcome, death, moving away} within each month's exposure is added in closed
form,

    P = sum_k S_k * lam_o / (lam_o + lam_x) * exp(-lam_x * f_k) * (1 - exp(-(lam_o + lam_x) * (e_k - f_k)))

where lam_o is the outcome hazard, lam_x = death + moving away, f_k the part of month k still
spent in a hospital stay that is running at the index time (no unplanned admission can start
then; zero for 24-hour care), e_k the days of month k inside the horizon, and S_k the
probability of reaching month k with neither the outcome nor an exit. The same sum with moving
away in place of the outcome (lam_m / lam_x of the exits during f_k, lam_m / (lam_o + lam_x)
after) gives P(moving away first). The path's state for month k+1 is drawn with
latent.advance() given that neither happened in month k (so for hospitalisation: no
admission; for home-care failure: admissions are sampled, since they change the 24-hour care
hazard). Month 0 uses the exact state at the index time and needs no paths.

A row is labelled unless moving away comes first, so the probability on the label's definition,
the quantity a model trained on the labels estimates, is

    true_probability = P(outcome first) / (1 - P(moving away first))

(the outcome before death, among the rows moving away does not censor), and P(outcome first)
itself, the incidence in the region as observed (moving away a competing exit too), is kept as
`true_incidence`. Moving away is rare (~1-3 % a year), so the two differ little; before
simulator 1.5 death censored the row as well and true_probability was P(outcome | alive through
the horizon), ~15 % above the incidence for home care clients over 180 days.
"""

from __future__ import annotations

import numpy as np

from synthetic.config import SimulatorConfig
from synthetic.latent import N_U, N_Z, Indicators, Norms, Rates, State, advance, post_discharge_multiplier, rates
from synthetic.timed import first_time, length_of_stay
from synthetic.timeline import Calendar


def _competing(lam_o: np.ndarray, lam_x: np.ndarray, lam_m: np.ndarray, blocked: np.ndarray,
               exposure: float) -> tuple[np.ndarray, np.ndarray]:
    """(P(outcome first), P(moving away first)) within [0, exposure] when the outcome hazard runs
    only from `blocked` on and the exit hazard lam_x (death + moving away lam_m) from 0."""
    total = lam_o + lam_x
    before = np.minimum(blocked, exposure)
    span = np.maximum(exposure - blocked, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share_o = np.where(total > 0, lam_o / total, 0.0)
        share_m = np.where(total > 0, lam_m / total, 0.0)
        move_of_exits = np.where(lam_x > 0, lam_m / lam_x, 0.0)
    reach = np.exp(-lam_x * before)
    hit = -np.expm1(-total * span)
    return share_o * reach * hit, move_of_exits * -np.expm1(-lam_x * before) + share_m * reach * hit


def _hosp_month(s: State, r: Rates, ms: float, length: float, exposure: float, config: SimulatorConfig):
    blocked = np.clip(s.busy - ms, 0.0, None)
    lam_a = r.adm_d * post_discharge_multiplier(s, ms, config)
    lam_x = r.death_d + r.move_d
    term, move_term = _competing(lam_a, lam_x, r.move_d, blocked, exposure)
    survive = np.exp(-lam_x * length - lam_a * np.maximum(length - blocked, 0.0))
    return term, move_term, survive


def _c24_month(r: Rates, length: float, exposure: float):
    lam_c = r.c24_d
    lam_x = r.death_d + r.move_d
    term, move_term = _competing(lam_c, lam_x, r.move_d, np.zeros_like(lam_c), exposure)
    return term, move_term, np.exp(-(lam_c + lam_x) * length)


def _path_step(s: State, r: Rates, mi: int, ms: float, me: float, rng: np.random.Generator,
               config: SimulatorConfig, sample_admissions: bool) -> State:
    """One month of a truth path, given no outcome and no exit in it."""
    n = len(s)
    U = rng.random((N_U, n), dtype=np.float32)
    Z = rng.standard_normal((N_Z, n), dtype=np.float32)
    extra = rng.random((3, n), dtype=np.float32)
    pre_discharge = (s.busy >= ms) & (s.busy < me)
    busy = s.busy
    if sample_admissions:
        free = np.maximum(ms, s.busy)
        t = first_time(free, extra[0], r.adm_d * post_discharge_multiplier(s, ms, config))
        admitted = t < me
        hip = admitted & (extra[1] < r.p_hip)
        dc = t + length_of_stay(r, rng.standard_normal(n, dtype=np.float32))
        busy = np.where(admitted, dc, s.busy)
        discharged = pre_discharge | (admitted & (dc < me))
        c24_now = np.zeros(n, bool)
    else:
        admitted = np.zeros(n, bool)
        hip = admitted
        discharged = pre_discharge
        c24_now = extra[2] < -np.expm1(-r.c24_d * (me - ms))
    ind = Indicators(admitted=admitted, hip=hip, discharged=discharged, c24_now=c24_now)
    new, _ = advance(s, mi, r, U, Z, ind, config)
    if sample_admissions:
        new = new.replace(busy=busy)
    return new


def outcome_probability(s: State, r: Rates, m: int, calendar: Calendar, config: SimulatorConfig,
                        norms: Norms, rng: np.random.Generator, outcome: str) -> tuple[np.ndarray, np.ndarray]:
    """(P(outcome first), P(moving away first)) of the race {outcome, death, moving away} within
    the horizon of `outcome` for every person in s (state and rates at month m's start);
    label_probability() combines them."""
    if outcome == "hospitalisation":
        horizon, paths = config.truth.hospitalisation_days, config.truth.hospitalisation_paths
    elif outcome == "homecare_failure":
        horizon, paths = config.truth.homecare_failure_days, config.truth.homecare_failure_paths
    else:
        raise ValueError(f"unknown outcome {outcome!r}")
    exposure = calendar.exposure(m, horizon)
    mi0 = calendar.first_extract_mi + m

    def month(state: State, rr: Rates, k: int):
        ms, length = calendar.start(m + k), calendar.length(m + k)
        if outcome == "hospitalisation":
            return _hosp_month(state, rr, ms, length, exposure[k], config)
        return _c24_month(rr, length, exposure[k])

    term0, move0, survive0 = month(s, r, 0)
    result, moves = term0.copy(), move0.copy()
    if len(exposure) == 1 or len(s) == 0:
        return result, moves
    block = max(1, config.truth.chunk_rows // paths)
    for lo in range(0, len(s), block):
        idx = np.arange(lo, min(lo + block, len(s)))
        rep = np.repeat(idx, paths)
        state, rr = s.take(rep), r.take(rep)
        alive = np.repeat(survive0[idx], paths)
        acc, acc_m = np.zeros(len(rep)), np.zeros(len(rep))
        for k in range(1, len(exposure)):
            ms, me = calendar.start(m + k - 1), calendar.start(m + k)
            state = _path_step(state, rr, mi0 + k - 1, ms, me, rng, config, outcome == "homecare_failure")
            rr = rates(state, mi0 + k, config, norms)
            term, move_term, survive = month(state, rr, k)
            acc += alive * term
            acc_m += alive * move_term
            alive = alive * survive
        result[idx] += acc.reshape(len(idx), paths).mean(axis=1)
        moves[idx] += acc_m.reshape(len(idx), paths).mean(axis=1)
    return result, moves


def label_probability(incidence: np.ndarray, moved_first: np.ndarray) -> np.ndarray:
    """P(outcome first | the row is not censored), the labels' definition: positive = outcome
    before death or moving away; negative = death first, or neither within the horizon;
    censored (dropped) = moving away first."""
    kept = 1.0 - moved_first
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(kept > 0, np.clip(incidence / kept, 0.0, 1.0), 0.0)


# The what-if truth: each intervention forced to start at an index month (simulate(whatif_month=...)).
# Names are the CLI's (training/interventions.py); the state change is the one advance() makes when
# the intervention starts, so its effect (synthetic/README.md) acts from the month's first day on.
WHATIF_INTERVENTIONS = ("remote_visits", "medication_robot", "home_rehabilitation")


def forced_start(s: State, intervention: str, config: SimulatorConfig) -> State:
    """The state with `intervention` started for everyone in it (already on it: unchanged)."""
    n = len(s)
    if intervention == "remote_visits":
        return s.replace(remote=np.ones(n, bool))  # acts only while home care runs, as in rates()
    if intervention == "medication_robot":
        return s.replace(robot=np.ones(n, bool))
    if intervention == "home_rehabilitation":
        months = config.interventions.rehab_months
        return s.replace(rehab_left=np.full(n, months, dtype=s.rehab_left.dtype))
    raise ValueError(f"unknown intervention {intervention!r}")


def whatif_probabilities(s: State, m: int, calendar: Calendar, config: SimulatorConfig, norms: Norms,
                         seed_sequence: list[int]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per intervention: the true hospitalisation probability (the labels' definition) of everyone
    in `s` at month m's start as they are, and with the intervention started then. Both use the
    same random numbers (one fresh generator from `seed_sequence` each), so their difference is
    the intervention's effect and not Monte Carlo noise."""
    from synthetic.latent import rates

    mi = calendar.first_extract_mi + m

    def probability(state: State) -> np.ndarray:
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed_sequence)))
        incidence, moved = outcome_probability(state, rates(state, mi, config, norms), m, calendar, config, norms, rng,
                                               "hospitalisation")
        return label_probability(incidence, moved)

    base = probability(s)
    return {name: (base, probability(forced_start(s, name, config))) for name in WHATIF_INTERVENTIONS}
