"""interRAI HC assessments as the instrument behaves: a same-day repeat agrees as interRAI's reliability
studies report (scale by scale, measured from the emitter's own scoring function on the simulated home
care clients), and a share of clients is reassessed in the weeks after a hospital stay (a return
assessment), which switching off changes nothing but the interRAI rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthetic.config import SimulatorConfig
from synthetic.services import RaiInputs, interrai_scales
from synthetic.simulate import simulate

FUNCTIONAL = ("adlh", "iadl")
SYMPTOM = ("chess", "drs", "abs")


@pytest.fixture(scope="module")
def clients() -> RaiInputs:
    """The latent state of 65+ home care clients, month by month, as the simulation evolved it (so the
    spread of frailty, cognition and symptoms is the one the emitter meets)."""
    lat = simulate(SimulatorConfig(customers=12000, years=2, seed=31, compute_truth=False)).latent
    c = lat[lat["home_care"] & (lat["age"] >= 65) & ~lat["in_hospital"]]
    assert len(c) > 4000
    num = lambda name: c[name].to_numpy(dtype="float64")  # noqa: E731
    flag = lambda name: c[name].to_numpy(dtype=bool)  # noqa: E731
    return RaiInputs(f=num("frailty"), cog=num("cognition"), acute=num("acute_instability"),
                     hf=flag("heart_failure"), copd=flag("copd"), dep=flag("depressed"),
                     dep_sev=num("mood_severity"), bpsd=flag("behavioural_symptoms"))


def _same_day_r(x: RaiInputs, care) -> dict[str, float]:
    """Two independent assessments of the same states (fresh random streams): Pearson r per scale."""
    first = interrai_scales(x, np.random.default_rng(101), care)
    second = interrai_scales(x, np.random.default_rng(202), care)
    return {k: float(np.corrcoef(first[k], second[k])[0, 1]) for k in first}


def test_same_day_reliability_meets_the_published_level(clients):
    care = SimulatorConfig().care
    r = _same_day_r(clients, care)
    for k in FUNCTIONAL:
        assert abs(r[k] - care.rai_scale_reliability) < 0.04, (k, r[k])
    for k in SYMPTOM:
        assert abs(r[k] - care.rai_item_kappa.value) < 0.05, (k, r[k])
    assert r["cps"] >= care.rai_scale_reliability, r["cps"]
    # MAPLe is computed from the scales, so it is as repeatable as they are (a two-step scale).
    assert r["maple"] > 0.75, r["maple"]


def test_the_old_assessment_error_fails_the_reliability_check(clients):
    """The check can fail: the earlier errors (0.8 scale points for ADL-H and IADL, simulator 1.3) give a
    same-day repeat far below the sourced level."""
    care = SimulatorConfig().care.model_copy(update={"rai_adlh_noise_sd": 0.8, "rai_iadl_noise_sd": 0.8})
    r = _same_day_r(clients, care)
    for k in FUNCTIONAL:
        assert r[k] < care.rai_scale_reliability - 0.15, (k, r[k])


def test_scales_stay_in_their_ranges_and_follow_the_state(clients):
    care = SimulatorConfig().care
    s = interrai_scales(clients, np.random.default_rng(7), care)
    for k, hi in (("adlh", 6), ("iadl", 6), ("cps", 6), ("chess", 5), ("drs", 14), ("abs", 12), ("maple", 5)):
        v = s[k]
        assert v.min() >= (1 if k == "maple" else 0) and v.max() <= hi and np.all(v == np.rint(v)), k
    # Validity, not only repeatability: ADL-H rises with frailty, DRS with depression, ABS with behaviour.
    assert np.corrcoef(s["adlh"], clients.f)[0, 1] > 0.6
    assert s["drs"][clients.dep].mean() > s["drs"][~clients.dep].mean() + 2
    assert s["abs"][clients.bpsd].mean() > s["abs"][~clients.bpsd].mean() + 2


def _next_assessment_after_discharge(ds) -> np.ndarray:
    """Days from each unplanned discharge of a client in home care (at the start of the admission's
    month) to the client's next interRAI assessment (inf: none)."""
    ev = ds.events
    adm = ev.loc[ev["code"] == "ADMIT/UNPLANNED", ["subject_id", "time"]].rename(columns={"time": "admit"})
    adm["month"] = adm["admit"].dt.to_period("M").dt.to_timestamp()
    lat = ds.latent[["subject_id", "month", "home_care"]]
    adm = adm.merge(lat, on=["subject_id", "month"])
    adm = adm[adm["home_care"]].sort_values("admit")
    dis = ev.loc[ev["code"] == "DISCHARGE", ["subject_id", "time"]].rename(columns={"time": "discharge"})
    stays = pd.merge_asof(adm, dis.sort_values("discharge"), left_on="admit", right_on="discharge",
                          by="subject_id", direction="forward").dropna(subset=["discharge"])
    rai = ev.loc[ev["code"] == "RAI/MAPLE", ["subject_id", "time"]].sort_values("time")
    nxt = pd.merge_asof(stays.sort_values("discharge"), rai, left_on="discharge", right_on="time",
                        by="subject_id", direction="forward")
    return ((nxt["time"] - nxt["discharge"]).dt.total_seconds() / 86400).fillna(np.inf).to_numpy()


def test_return_assessment_after_a_hospital_stay_and_its_switch():
    on = SimulatorConfig(customers=20000, years=2, seed=37, compute_truth=False)
    off = on.model_copy(update={"care": on.care.model_copy(update={"rai_after_discharge_share": 0.0})})
    ds_on, ds_off = simulate(on), simulate(off)
    d_on, d_off = _next_assessment_after_discharge(ds_on), _next_assessment_after_discharge(ds_off)
    assert len(d_on) == len(d_off) > 200  # the same stays: the switch changes no hospital event
    lo, hi = on.care.rai_after_discharge_days
    window = lambda d: float(np.mean((d >= lo) & (d <= hi)))  # noqa: E731
    # Off: only the six-monthly cadence, which lands in a three-week window for about a tenth of stays.
    assert window(d_off) < 0.15
    # On: half of the clients are picked; completion (85 %), deaths, moves to 24-hour care and
    # readmissions within the window (the assessment falls inside the new stay) take some away.
    assert window(d_on) > window(d_off) + 0.15
    # Nothing comes sooner than the return assessment's earliest day, beyond the routine ones.
    assert abs(float(np.mean(d_on < lo)) - float(np.mean(d_off < lo))) < 0.03
    # The assessments draw from their own stream: every other event is the same.
    keep_on = ds_on.events[~ds_on.events["code"].str.startswith("RAI/")].reset_index(drop=True)
    keep_off = ds_off.events[~ds_off.events["code"].str.startswith("RAI/")].reset_index(drop=True)
    pd.testing.assert_frame_equal(keep_on, keep_off)


def _assessment_intervals(ds) -> pd.DataFrame:
    """Consecutive assessments of a client: days between them and the rise in latent need between the
    starts of their months."""
    ev = ds.events
    rai = ev.loc[ev["code"] == "RAI/MAPLE", ["subject_id", "time"]].sort_values(["subject_id", "time"])
    rai["month"] = rai["time"].dt.to_period("M").dt.to_timestamp()
    lat = ds.latent.assign(need=ds.latent["frailty"] + 0.06 * ds.latent["cognition"])[["subject_id", "month", "need"]]
    rai = rai.merge(lat, on=["subject_id", "month"], how="left").sort_values(["subject_id", "time"])
    prev = rai.groupby("subject_id").shift(1)
    out = pd.DataFrame({"days": (rai["time"] - prev["time"]).dt.total_seconds() / 86400,
                        "rise": rai["need"] - prev["need"]})
    return out.dropna()


def test_significant_change_reassessment_and_its_switch():
    base = SimulatorConfig(customers=20000, years=2, seed=41, compute_truth=False)
    base = base.model_copy(update={"care": base.care.model_copy(update={"rai_after_discharge_share": 0.0})})
    off = base.model_copy(update={"care": base.care.model_copy(update={"rai_significant_change_monthly": 0.0})})
    ds_on, ds_off = simulate(base), simulate(off)
    on_i, off_i = _assessment_intervals(ds_on), _assessment_intervals(ds_off)
    # Off: the six-monthly cadence (182 +- 25 days) alone; a new home care episode may come sooner.
    assert (off_i["days"] < 120).mean() < 0.005
    # On: reassessments come early for clients whose need rose (a rise of 0.07 within months is
    # uncommon: a few per cent of the intervals), and only for them.
    early = on_i[on_i["days"] < 120]
    assert len(early) > 15 and len(early) / len(on_i) > 0.01
    threshold = base.care.rai_significant_change_need
    assert early["rise"].median() > threshold - 0.02  # the latent need at the months' starts
    assert on_i.loc[on_i["days"] >= 150, "rise"].median() < threshold / 2
    keep_on = ds_on.events[~ds_on.events["code"].str.startswith("RAI/")].reset_index(drop=True)
    keep_off = ds_off.events[~ds_off.events["code"].str.startswith("RAI/")].reset_index(drop=True)
    pd.testing.assert_frame_equal(keep_on, keep_off)
