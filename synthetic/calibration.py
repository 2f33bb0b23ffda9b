"""Calibration targets the simulator claims, and their measurement from a dataset's events.

`compare_to_targets(dataset)` measures every target from `dataset.events`, `dataset.customers`
and `dataset.metadata` alone (never the truth), so it works on a real extract too:

    quantity, target, measured, tolerance, ok, year, source

Person-time is counted on the monthly grid (who is in the region on the 1st of each month, and
their age then); service states (home care, robot, 24-hour care, open care) are read from their
START/END events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from synthetic.config import SimulatorConfig


@dataclass(frozen=True)
class Target:
    quantity: str
    value: float
    tolerance: float
    year: str
    source: str


def targets(config: SimulatorConfig | None = None) -> list[Target]:
    """The table of claimed targets (value, year and source come from the config's Sourced fields)."""
    c = config or SimulatorConfig()
    care, iv, ch, mental = c.care, c.interventions, c.child, c.mental

    def t(name: str, sourced, tol: float, value: float | None = None) -> Target:
        return Target(name, sourced.value if value is None else value, tol, sourced.year, sourced.source)

    return [
        t("ER visits per 1,000 PY, all ages", care.er_all_target, 35.0),
        t("ER visits per 1,000 PY, 25-64", care.er_25_64_target, 35.0),
        t("ER visits per 1,000 PY, 65-79", care.er_65_79_target, 50.0),
        t("ER visits per 1,000 PY, 80+", care.er_80plus_target, 90.0),
        t("share of 75+ with >= 4 ER visits a year", care.frequent_er_75_target, 0.02),
        t("share of 75+ in regular home care", care.homecare_share_75_target, 0.035),
        t("home care visits per client-month (incl. video)", care.homecare_visits_per_client_month, 3.0),
        t("video share of home care contacts", iv.remote_video_share_target, 0.03),
        t("medication robot share of home care customers", iv.medrobot_share_target, 0.07),
        t("share of 75+ in 24-hour care", care.care24h_share_75_target, 0.025),
        t("health centre visits per inhabitant a year", care.hc_visits_per_inhabitant, 0.6),
        t("health centre doctor visits per inhabitant a year", care.hc_doctor_per_inhabitant, 0.25),
        t("remote share of health centre contacts", care.hc_remote_share, 0.04),
        t("30-day readmission after unplanned discharge, home care clients", care.readmission_target, 0.07),
        t("30-day unplanned admission after a non-admitted ER visit, 18-64", care.bounce_back_30d_18_64_target, 0.012),
        t("7-day unplanned admission after a non-admitted ER visit, 65+", care.bounce_back_7d_65_target, 0.02),
        t("share of 0-17 with a child welfare notification a year", ch.notification_share_target, 0.025),
        t("share of 13-15 with a child welfare notification a year", ch.notification_share_13_15, 0.045),
        t("share of 0-17 in child welfare open care during a year", ch.open_care_clients_target, 0.012),
        t("share of 0-17 placed outside the home", ch.placed_share_target, 0.005),
        t("adults with a depression diagnosis or PHQ-9 >= 10 a year", mental.yearly_prevalence_target, 0.02),
        # Recorded a year, so a little under the prevalence (not every child is seen every year);
        # tolerances cover the sampling noise of a few dozen children at 20,000 residents.
        t("share of 0-17 with asthma (J45) recorded a year", c.conditions.asthma_prevalence_target, 0.025),
        t("share of 0-17 with epilepsy (G40) recorded a year", c.conditions.epilepsy_prevalence_target, 0.003),
        t("share of 0-17 with type 1 diabetes (E10) recorded a year", c.conditions.t1d_prevalence_target, 0.003),
    ]


class _Dataset(Protocol):
    events: pd.DataFrame
    customers: pd.DataFrame
    metadata: Any


def compare_to_targets(dataset: _Dataset, config: SimulatorConfig | None = None) -> pd.DataFrame:
    """Measure each target on the dataset: DataFrame[quantity, target, measured, tolerance, ok, ...].

    Targets are the config's, or (none given) those of the region dataset.json names (Eksote when
    it names none): another region is held to its own sourced figures."""
    if config is None:
        from synthetic.regions import region_config

        config = region_config(str(dataset.metadata.get("region") or "eksote"))
    m = _Measure(dataset)
    measured = {
        "ER visits per 1,000 PY, all ages": m.rate_per_py("ENC/EMERGENCY", 0, 200) * 1000,
        "ER visits per 1,000 PY, 25-64": m.rate_per_py("ENC/EMERGENCY", 25, 65) * 1000,
        "ER visits per 1,000 PY, 65-79": m.rate_per_py("ENC/EMERGENCY", 65, 80) * 1000,
        "ER visits per 1,000 PY, 80+": m.rate_per_py("ENC/EMERGENCY", 80, 200) * 1000,
        "share of 75+ with >= 4 ER visits a year": m.yearly_share(["ENC/EMERGENCY"], 75, 200, at_least=4),
        "share of 75+ in regular home care": m.mean_share_open(["HOMECARE/START"], ["HOMECARE/END"], 75, 200),
        "home care visits per client-month (incl. video)": m.homecare_visits_per_client_month(),
        "video share of home care contacts": m.count("REMOTE/VIDEO_VISIT")
        / max(m.count("REMOTE/VIDEO_VISIT") + m.count("HOMECARE/VISIT"), 1),
        "medication robot share of home care customers": m.robot_share(),
        "share of 75+ in 24-hour care": m.mean_share_open(["CARE24H/START"], [], 75, 200),
        "health centre visits per inhabitant a year": sum(
            m.rate_per_py(c, 0, 200) for c in ("ENC/HC_DOCTOR", "ENC/HC_NURSE", "ENC/HC_REMOTE")),
        "health centre doctor visits per inhabitant a year": m.rate_per_py("ENC/HC_DOCTOR", 0, 200),
        "remote share of health centre contacts": m.count("ENC/HC_REMOTE")
        / max(sum(m.count(c) for c in ("ENC/HC_DOCTOR", "ENC/HC_NURSE", "ENC/HC_REMOTE")), 1),
        "30-day readmission after unplanned discharge, home care clients": m.readmission_homecare(30),
        "30-day unplanned admission after a non-admitted ER visit, 18-64": m.admission_after_er(30, 18, 65),
        "7-day unplanned admission after a non-admitted ER visit, 65+": m.admission_after_er(7, 65, 200),
        "share of 0-17 with a child welfare notification a year": m.yearly_share(["CHILDWELFARE/NOTIFICATION"], 0, 18),
        "share of 13-15 with a child welfare notification a year": m.yearly_share(["CHILDWELFARE/NOTIFICATION"], 13, 16),
        "share of 0-17 in child welfare open care during a year": m.yearly_open_share(),
        "share of 0-17 placed outside the home": m.mean_share_open(["CHILDWELFARE/PLACEMENT"], [], 0, 18),
        "adults with a depression diagnosis or PHQ-9 >= 10 a year": m.depression_share(),
        "share of 0-17 with asthma (J45) recorded a year": m.yearly_share(["ICD10/J45"], 0, 18),
        "share of 0-17 with epilepsy (G40) recorded a year": m.yearly_share(["ICD10/G40"], 0, 18),
        "share of 0-17 with type 1 diabetes (E10) recorded a year": m.yearly_share(["ICD10/E10"], 0, 18),
    }
    rows = []
    for target in targets(config):
        value = float(measured[target.quantity])
        rows.append({
            "quantity": target.quantity, "target": target.value, "measured": value,
            "tolerance": target.tolerance, "ok": bool(abs(value - target.value) <= target.tolerance),
            "year": target.year, "source": target.source,
        })
    return pd.DataFrame(rows)


class _Measure:
    """Person-time and service states on the monthly grid, from events and customers only."""

    def __init__(self, dataset: _Dataset) -> None:
        ev = dataset.events
        self.sid = ev["subject_id"].to_numpy()
        self.time = ev["time"].to_numpy().astype("datetime64[us]")
        self.code = ev["code"].to_numpy().astype(object) if ev["code"].dtype == object else ev["code"].to_numpy()
        self.value = ev["numeric_value"].to_numpy(dtype="float64", na_value=np.nan)
        meta = dataset.metadata
        start = np.datetime64(pd.Timestamp(meta["extract_start"]).to_datetime64(), "M")
        end = np.datetime64(pd.Timestamp(meta["extract_end"]).to_datetime64(), "M")
        self.months = np.arange(start, end).astype("datetime64[us]")
        cust = dataset.customers
        self.c_sid = cust["subject_id"].to_numpy()
        order = np.argsort(self.c_sid)
        self.c_sid = self.c_sid[order]
        birth_mi = ((cust["birth_year"].to_numpy().astype("int64") - 1970) * 12
                    + cust["birth_month"].to_numpy().astype("int64") - 1)[order]
        self.birth_mi = birth_mi
        birth = birth_mi.astype("datetime64[M]").astype("datetime64[us]")
        # Entry: MOVE/IN, else birth (if born in the extract), else from the start. Exit: DEATH or MOVE/OUT.
        entry = np.maximum(birth, self.months[0])
        moved_in = self.code == "MOVE/IN"
        entry[self._cidx(self.sid[moved_in])] = self.time[moved_in]
        exit_ = np.full(len(self.c_sid), np.datetime64("2262-01-01", "us"))
        out = np.isin(self.code, ["DEATH", "MOVE/OUT"])
        exit_[self._cidx(self.sid[out])] = self.time[out]
        # present[c, k]: in the region on the 1st of month k; age[c, k] in whole years.
        self.present = (entry[:, None] <= self.months[None, :]) & (exit_[:, None] > self.months[None, :])
        month_mi = self.months.astype("datetime64[M]").astype("int64")
        self.age = (month_mi[None, :] - birth_mi[:, None]) // 12

    def _cidx(self, sid: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.c_sid, sid)

    def count(self, code: str) -> int:
        return int(np.sum(self.code == code))

    def _event_age(self, rows: np.ndarray) -> np.ndarray:
        mi = self.time[rows].astype("datetime64[M]").astype("int64")
        return (mi - self.birth_mi[self._cidx(self.sid[rows])]) // 12

    def rate_per_py(self, code: str, age_lo: int, age_hi: int) -> float:
        rows = np.flatnonzero(self.code == code)
        age = self._event_age(rows)
        n = np.sum((age >= age_lo) & (age < age_hi))
        pm = np.sum(self.present & (self.age >= age_lo) & (self.age < age_hi))
        return float(n / max(pm / 12.0, 1e-9))

    def _years(self) -> list[int]:
        """Indices of the month columns that are a 1 January with a whole year after them."""
        month_num = self.months.astype("datetime64[M]").astype("int64") % 12
        return [k for k in np.flatnonzero(month_num == 0) if k + 12 <= len(self.months)]

    def yearly_share(self, codes: list[str], age_lo: int, age_hi: int, at_least: int = 1) -> float:
        rows = np.flatnonzero(np.isin(self.code, codes))
        hits, total = 0, 0
        for k in self._years():
            lo, hi = self.months[k], self.months[k + 11] + np.timedelta64(31, "D")
            hi = hi.astype("datetime64[M]").astype("datetime64[us]")
            base = self.present[:, k] & (self.age[:, k] >= age_lo) & (self.age[:, k] < age_hi)
            sel = rows[(self.time[rows] >= lo) & (self.time[rows] < hi)]
            counts = np.bincount(self._cidx(self.sid[sel]), minlength=len(self.c_sid))
            hits += int(np.sum(base & (counts >= at_least)))
            total += int(np.sum(base))
        return hits / max(total, 1)

    def _open_matrix(self, open_codes: list[str], close_codes: list[str]) -> np.ndarray:
        """open[c, k]: the service is running on the 1st of month k (last open/close at or before it)."""
        rows = np.flatnonzero(np.isin(self.code, open_codes + close_codes))
        ci = self._cidx(self.sid[rows])
        t = self.time[rows].astype("int64")
        is_open = np.isin(self.code[rows], open_codes)
        order = np.lexsort((t, ci))
        ci, t, is_open = ci[order], t[order], is_open[order]
        shift = np.int64(2**42)
        base = self.months[0].astype("int64") - 10**15
        key = ci.astype("int64") * shift + (t - base) // 10**6
        out = np.zeros(self.present.shape, bool)
        cs = np.arange(len(self.c_sid), dtype="int64")
        for k, month in enumerate(self.months):
            q = cs * shift + (month.astype("int64") - base) // 10**6
            pos = np.searchsorted(key, q, side="right") - 1
            pc = np.maximum(pos, 0)
            ok = (pos >= 0) & (ci[pc] == cs) if len(key) else np.zeros(len(cs), bool)
            out[:, k] = ok & is_open[pc] if len(key) else False
        return out

    def mean_share_open(self, open_codes: list[str], close_codes: list[str], age_lo: int, age_hi: int) -> float:
        base = self.present & (self.age >= age_lo) & (self.age < age_hi)
        on = self._open_matrix(open_codes, close_codes) & base
        return float(on.sum() / max(base.sum(), 1))

    def homecare_visits_per_client_month(self) -> float:
        on = self._open_matrix(["HOMECARE/START"], ["HOMECARE/END"]) & self.present
        visits = self.count("HOMECARE/VISIT") + self.count("REMOTE/VIDEO_VISIT")
        return float(visits / max(on.sum(), 1))

    def robot_share(self) -> float:
        hc = self._open_matrix(["HOMECARE/START"], ["HOMECARE/END"]) & self.present
        robot = self._open_matrix(["MEDROBOT/START"], ["CARE24H/START"]) & hc
        return float(robot.sum() / max(hc.sum(), 1))

    def yearly_open_share(self) -> float:
        on = self._open_matrix(["CHILDWELFARE/OPEN_CARE_START"], ["CHILDWELFARE/OPEN_CARE_END"])
        starts = np.flatnonzero(self.code == "CHILDWELFARE/OPEN_CARE_START")
        hits, total = 0, 0
        for k in self._years():
            base = self.present[:, k] & (self.age[:, k] < 18)
            during = on[:, k : k + 12].any(axis=1)
            lo, hi = self.months[k], self.months[k + 11]
            sel = starts[(self.time[starts] >= lo) & (self.time[starts] < hi + np.timedelta64(31, "D"))]
            started = np.zeros(len(self.c_sid), bool)
            started[self._cidx(self.sid[sel])] = True
            hits += int(np.sum(base & (during | started)))
            total += int(np.sum(base))
        return hits / max(total, 1)

    def readmission_homecare(self, days: int) -> float:
        hc_open = self._open_matrix(["HOMECARE/START"], ["HOMECARE/END"])
        dis = np.flatnonzero(self.code == "DISCHARGE")
        adm_rows = np.flatnonzero(np.isin(self.code, ["ADMIT/UNPLANNED", "ADMIT/PLANNED"]))
        # Which admission each discharge closes: the previous admission of the same customer.
        fam = np.sort(np.concatenate([dis, adm_rows]))
        prev = np.r_[-1, fam[:-1]]
        closes_unplanned = {int(d) for d, p in zip(fam, prev) if p >= 0 and self.code[d] == "DISCHARGE"
                            and self.code[p] == "ADMIT/UNPLANNED" and self.sid[p] == self.sid[d]}
        dis = np.array(sorted(closes_unplanned), dtype="int64")
        if not len(dis):
            return float("nan")
        limit = np.timedelta64(days, "D")
        dis = dis[self.time[dis] + limit <= self._extract_end()]
        k = np.searchsorted(self.months, self.time[dis], side="right") - 1
        ci = self._cidx(self.sid[dis])
        dis = dis[hc_open[ci, k]]
        hit = self._to_next_unplanned_admission(dis) <= limit
        return float(hit.mean()) if len(dis) else float("nan")

    def _extract_end(self) -> np.datetime64:
        """The first instant after the extract (the month after the last index month)."""
        end = self.months[-1] + np.timedelta64(31, "D")
        return end.astype("datetime64[M]").astype("datetime64[us]")

    def _to_next_unplanned_admission(self, rows: np.ndarray) -> np.ndarray:
        """Time from each row's event to the same customer's next unplanned admission (at the same
        second or later); a very long span where there is none."""
        none = np.full(len(rows), np.timedelta64(10**6, "D"))
        unpl = np.flatnonzero(self.code == "ADMIT/UNPLANNED")
        if not len(unpl) or not len(rows):
            return none
        key_u = self.sid[unpl].astype("int64") * np.int64(2**41) + (self.time[unpl].astype("int64") // 10**6)
        order = np.argsort(key_u)
        key_u = key_u[order]
        q = self.sid[rows].astype("int64") * np.int64(2**41) + (self.time[rows].astype("int64") // 10**6)
        pos = np.searchsorted(key_u, q, side="left")
        pc = np.minimum(pos, len(key_u) - 1)
        nxt_sid, nxt_t = self.sid[unpl][order][pc], self.time[unpl][order][pc]
        found = (pos < len(key_u)) & (nxt_sid == self.sid[rows])
        return np.where(found, nxt_t - self.time[rows], none)

    def admission_after_er(self, days: int, age_lo: int = 0, age_hi: int = 200) -> float:
        """Share of non-admitted ER visits (no unplanned admission within 12 hours: the simulator
        writes the ER visit of an admission 1-6 hours before it) followed by an unplanned admission
        within `days` (bounce-back admissions; visits whose window runs past the extract are left out)."""
        er = np.flatnonzero(self.code == "ENC/EMERGENCY")
        if not len(er) or not (self.code == "ADMIT/UNPLANNED").any():
            return float("nan")
        er = er[(self.time[er] + np.timedelta64(days, "D") <= self._extract_end())]
        age = self._event_age(er)
        er = er[(age >= age_lo) & (age < age_hi)]
        gap = self._to_next_unplanned_admission(er)
        released = gap > np.timedelta64(12, "h")
        hit = released & (gap <= np.timedelta64(days, "D"))
        return float(hit.sum() / max(released.sum(), 1))

    def depression_share(self) -> float:
        dx = np.isin(self.code, ["ICD10/F32.1", "ICD10/F33", "ICPC2/P76"]) | ((self.code == "PHQ9") & (self.value >= 10))
        saved = self.code
        self.code = np.where(dx, "DEPRESSION", saved)
        try:
            return self.yearly_share(["DEPRESSION"], 18, 200)
        finally:
            self.code = saved
