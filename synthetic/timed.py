"""The timed processes of a month: death, moving away, 24-hour care and unplanned stays.

Hazards are constant within a month (set by the state on its first day), so each first event
time is an exponential draw from the start of the person's exposure; the truth uses the same
law in closed form. Draws are fixed-shape (common random numbers across runs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthetic.config import SimulatorConfig
from synthetic.latent import Rates, State, post_discharge_multiplier

N_TIMED_U = 7  # death, move, 24-hour care, three admissions, hip fracture
N_TIMED_Z = 3  # three lengths of stay
MAX_STAYS_PER_MONTH = 3
DEATH, MOVED = 1, 2


def first_time(start: np.ndarray, u: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """Exponential first event time after start (inf where the rate is zero)."""
    with np.errstate(divide="ignore"):
        return start - np.log(u) / np.where(rate > 0, rate, 0.0)


def length_of_stay(r: Rates, z: np.ndarray) -> np.ndarray:
    """Unplanned length of stay (days): lognormal, longer with age and frailty, capped at 90."""
    return np.clip(np.exp(0.3 + 0.012 * r.age + 1.5 * r.f + 0.7 * z), 0.1, 90.0)


@dataclass
class MonthStays:
    subject: np.ndarray  # pool index
    admit: np.ndarray
    discharge: np.ndarray
    order: np.ndarray  # 0 = first admission of the month for that person
    hip: np.ndarray


@dataclass
class Timed:
    exit_t: np.ndarray  # inf if no exit this month
    exit_kind: np.ndarray  # 0 none, 1 death, 2 moved
    c24_t: np.ndarray  # inf if no move to 24-hour care this month
    stays: MonthStays
    admitted: np.ndarray
    hip: np.ndarray


def end_stays_at(admit: np.ndarray, discharge: np.ndarray, *moments: np.ndarray) -> np.ndarray:
    """Discharges ended early by each moment that falls during the stay (a move to 24-hour care,
    death or moving away). Each moment is checked on its own: a stay that begins after the move to
    24-hour care (admitted from the care home) still ends at a death during it; checking only the
    earliest moment missed that, and the stay ran on past the death."""
    for moment in moments:
        inside = (admit <= moment) & (moment < discharge)
        discharge = np.where(inside, moment, discharge)
    return discharge


def draw_timed(s: State, r: Rates, ms: float, me: float, lo: np.ndarray, active: np.ndarray,
               U: np.ndarray, Z: np.ndarray, config: SimulatorConfig) -> Timed:
    """Event times of the month for everyone active; `lo` is where exposure starts (entry or ms)."""
    t_death = first_time(lo, U[0], r.death_d)
    t_move = first_time(lo, U[1], r.move_d)
    exit_t = np.minimum(t_death, t_move)
    exits = active & (exit_t < me)
    exit_kind = np.where(exits, np.where(t_death <= t_move, DEATH, MOVED), 0).astype("int8")
    exit_t = np.where(exits, exit_t, np.inf)
    c24_t = first_time(lo, U[2], r.c24_d)
    c24_t = np.where(active & (c24_t < me) & (c24_t < exit_t), c24_t, np.inf)
    hi = np.minimum(me, exit_t)

    base = r.adm_d
    lam = base * post_discharge_multiplier(s, ms, config)
    free = np.maximum(lo, s.busy)
    subj, adm, dis, order, hips = [], [], [], [], []
    alive = active.copy()
    admitted = np.zeros(len(s), bool)
    hip_first = np.zeros(len(s), bool)
    for j in range(MAX_STAYS_PER_MONTH):
        t = first_time(free, U[3 + j], lam)
        ok = alive & (t < hi)
        idx = np.flatnonzero(ok)
        if not len(idx):
            break
        los = length_of_stay(r.take(idx), Z[j, idx])
        d = t[idx] + los
        hip = (U[6, idx] < r.p_hip[idx]) if j == 0 else np.zeros(len(idx), bool)
        if j == 0:
            admitted[idx] = True
            hip_first[idx] = hip
        subj.append(idx)
        adm.append(t[idx])
        dis.append(d)
        order.append(np.full(len(idx), j, dtype="int8"))
        hips.append(hip)
        free = np.full(len(s), np.inf)
        free[idx] = d
        alive = ok
        lam = base * config.care.readmission_multiplier
    stays = MonthStays(
        subject=np.concatenate(subj) if subj else np.zeros(0, "int64"),
        admit=np.concatenate(adm) if adm else np.zeros(0),
        discharge=np.concatenate(dis) if dis else np.zeros(0),
        order=np.concatenate(order) if order else np.zeros(0, "int8"),
        hip=np.concatenate(hips) if hips else np.zeros(0, bool),
    )
    stays.discharge = end_stays_at(stays.admit, stays.discharge, c24_t[stays.subject], exit_t[stays.subject])
    return Timed(exit_t=exit_t, exit_kind=exit_kind, c24_t=c24_t, stays=stays, admitted=admitted, hip=hip_first)
