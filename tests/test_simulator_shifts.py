"""Simulator shifts (config.ShiftConfig): a coding change changes only the records from its month
on; a home care capacity cut and a service roll-out change the world from their month on, and the
truth with it; an ageing shift brings older in-movers from its month on and changes nobody else;
no shift (or a switch that changes nothing) leaves every output as it was."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from sote_risk.commands.simulate import _read_shifts
from synthetic.config import AgeingShift, CodingChange, HomeCareCut, ServiceRollout, ShiftConfig, SimulatorConfig
from synthetic.population import build_population, mover_weights, older_in_movers
from synthetic.regions import region_config
from synthetic.simulate import _generator, simulate
from synthetic.timeline import Calendar, month_index

START = dt.date(2023, 1, 1)
BASE = dict(customers=2500, years=2, seed=5)


@pytest.fixture(scope="module")
def quiet():
    return simulate(SimulatorConfig(**BASE))


@pytest.fixture(scope="module")
def recoded():
    shifts = ShiftConfig(coding=(CodingChange(start=START, code="ICPC2/R74", recorded_as="ICD10/J18.9"),
                                 CodingChange(start=START, code="ICPC2/K86")))
    return simulate(SimulatorConfig(**BASE, shifts=shifts))


def _before(events: pd.DataFrame, date: dt.date) -> pd.DataFrame:
    return events[events["time"] < pd.Timestamp(date)].reset_index(drop=True)


def test_no_shift_is_the_default_and_says_nothing(quiet):
    assert not SimulatorConfig().shifts.any
    assert "shifts" not in quiet.metadata


def test_a_coding_change_renames_or_drops_the_code_from_its_month_only(quiet, recoded):
    q, r = quiet.events, recoded.events
    pd.testing.assert_frame_equal(_before(q, START), _before(r, START))
    after_q, after_r = q[q["time"] >= pd.Timestamp(START)], r[r["time"] >= pd.Timestamp(START)]
    assert (after_q["code"] == "ICPC2/R74").sum() > 100 and (after_q["code"] == "ICPC2/K86").sum() > 100
    assert not after_r["code"].isin(["ICPC2/R74", "ICPC2/K86"]).any()
    # R74 became J18.9, K86 disappeared, nothing else changed (same rows, same times).
    expected = after_q[after_q["code"] != "ICPC2/K86"].copy()
    expected["code"] = expected["code"].replace({"ICPC2/R74": "ICD10/J18.9"})
    key = ["subject_id", "time", "code", "unit"]
    a = expected[key].sort_values(key, kind="stable").reset_index(drop=True)
    b = after_r[key].sort_values(key, kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(a.astype(str), b.astype(str))
    assert recoded.metadata["shifts"]["coding"][0]["recorded_as"] == "ICD10/J18.9"


def test_a_coding_change_leaves_the_world_and_its_truth_alone(quiet, recoded):
    pd.testing.assert_frame_equal(quiet.risk, recoded.risk)
    pd.testing.assert_frame_equal(quiet.latent, recoded.latent)
    pd.testing.assert_frame_equal(quiet.customers, recoded.customers)


def test_a_coding_change_refuses_structural_codes_and_dates_outside_the_extract():
    with pytest.raises(ValidationError, match="cannot change"):
        CodingChange(start=START, code="ADMIT/UNPLANNED")
    with pytest.raises(ValidationError, match="cannot change"):
        CodingChange(start=START, code="ICPC2/R74", recorded_as="RAI/CPS")  # carries a value
    with pytest.raises(ValidationError, match="first day of a month"):
        CodingChange(start=dt.date(2023, 1, 15), code="ICPC2/R74")
    with pytest.raises(ValidationError, match="inside the extract"):
        SimulatorConfig(**BASE, shifts=ShiftConfig(coding=(CodingChange(start=dt.date(2030, 1, 1), code="ICPC2/R74"),)))


def test_a_home_care_cut_changes_the_world_from_its_month_and_the_truth_knows(quiet):
    cut = simulate(SimulatorConfig(**BASE, shifts=ShiftConfig(
        homecare_cut=HomeCareCut(start=START, need_rise=0.1, assessment_multiplier=0.5))))
    # Nothing recorded before the cut's month changes.
    pd.testing.assert_frame_equal(_before(quiet.events, START), _before(cut.events, START))

    def starts(ds):
        ev = ds.events
        return int(((ev["code"] == "HOMECARE/START") & (ev["time"] >= pd.Timestamp(START))).sum())

    assert starts(cut) < 0.6 * starts(quiet)
    late = pd.Timestamp(dt.date(2023, 10, 1))

    def share(ds):
        lat = ds.latent
        old = lat[(lat["month"] == late) & (lat["age"] >= 75)]
        return old["home_care"].mean()

    assert share(cut) < share(quiet)
    # The truth at an index date before the cut looks through it: its home-care failure rows differ,
    # while the truth of months before the cut's horizon (>180 days before) does not.
    risk_q, risk_c = quiet.risk, cut.risk
    hf = lambda r, t: r[(r["outcome"] == "homecare_failure") & (r["prediction_time"] == t)]  # noqa: E731
    early = pd.Timestamp(dt.date(2022, 3, 1))
    np.testing.assert_array_equal(hf(risk_q, early)["true_probability"], hf(risk_c, early)["true_probability"])
    just_before = pd.Timestamp(dt.date(2022, 12, 1))
    assert not np.array_equal(hf(risk_q, just_before)["true_probability"].to_numpy(),
                              hf(risk_c, just_before)["true_probability"].to_numpy())
    # Truth and outcomes agree after the cut as they do without it (the truth is the shifted world's).
    after = cut.risk[(cut.risk["prediction_time"] >= pd.Timestamp(START)) & cut.risk["observed"].notna()
                     & (cut.risk["outcome"] == "hospitalisation")]
    observed, expected = after["observed"].astype(float).sum(), after["true_probability"].sum()
    assert abs(observed - expected) < 4 * np.sqrt(expected) + 0.05 * expected


# ---------------------------------------------------------------------------------------------
# Service roll-outs and the ageing shift

ROLLOUT = (ServiceRollout(start=START, service="remote", uptake_multiplier=3.0),
           ServiceRollout(start=START, service="medrobot", uptake_multiplier=3.0),
           ServiceRollout(start=START, service="rehab", uptake_multiplier=2.0))  # 2: rehab's chances stay <= 1
AGEING = AgeingShift(start=START, in_movers_65_plus_multiplier=5.0)
# The ratio of start chances needs more starts than 2,500 residents give (4 remote starts in a
# year): 20,000 residents, no truth, from the extract's seventh month.
LARGE = dict(customers=20_000, years=2, seed=5, compute_truth=False)
LARGE_START = dt.date(2022, 7, 1)


@pytest.fixture(scope="module")
def rolled():
    return simulate(SimulatorConfig(**BASE, shifts=ShiftConfig(rollouts=ROLLOUT)))


@pytest.fixture(scope="module")
def aged():
    return simulate(SimulatorConfig(**BASE, shifts=ShiftConfig(ageing=AGEING)))


def _frames(ds) -> dict[str, pd.DataFrame]:
    return {"events": ds.events, "customers": ds.customers, "risk": ds.risk, "latent": ds.latent,
            "interventions": ds.interventions}


def test_switches_that_change_nothing_leave_every_output_as_it_was(quiet):
    """A roll-out at multiplier 1 and an ageing shift at 1 draw no random number differently: every
    frame is the quiet world's, byte for byte; and the default config dumps as before."""
    neutral = ShiftConfig(rollouts=tuple(ServiceRollout(start=START, service=s, uptake_multiplier=1.0)
                                         for s in ("remote", "medrobot", "rehab")),
                          ageing=AgeingShift(start=START, in_movers_65_plus_multiplier=1.0))
    same = simulate(SimulatorConfig(**BASE, shifts=neutral))
    for name, frame in _frames(quiet).items():
        pd.testing.assert_frame_equal(frame, _frames(same)[name], check_exact=True, obj=name)
    assert same.metadata["shifts"]["ageing"]["in_movers_65_plus_multiplier"] == 1.0
    assert len(same.metadata["shifts"]["rollouts"]) == 3
    # truth/simulator_config.json and dataset.json of a run without the new switches read as before.
    assert SimulatorConfig().model_dump(mode="json")["shifts"] == {"coding": [], "homecare_cut": None}
    assert "rollouts" not in ShiftConfig(homecare_cut=HomeCareCut(start=START)).model_dump(mode="json")


@pytest.mark.parametrize("world", ["rolled", "aged"])
def test_nothing_before_the_start_month_changes(quiet, world, request):
    shifted = request.getfixturevalue(world)
    pd.testing.assert_frame_equal(_before(quiet.events, START), _before(shifted.events, START))
    month = lambda lat: lat[lat["month"] < pd.Timestamp(START)].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(month(quiet.latent), month(shifted.latent))
    # Everyone in the region before the start is who they were (birth, sex, municipality, language).
    there = quiet.events.loc[quiet.events["time"] < pd.Timestamp(START), "subject_id"].unique()
    people = lambda c: c[c["subject_id"].isin(there)].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(people(quiet.customers), people(shifted.customers))
    assert shifted.metadata["shifts"] == ShiftConfig(rollouts=ROLLOUT if world == "rolled" else (),
                                                     ageing=AGEING if world == "aged" else None).model_dump(
                                                         mode="json", exclude_none=True)


def _starts(ds, flag: str, eligible, since: dt.date, until: dt.date | None = None) -> tuple[int, int]:
    """(eligible person-months in [since, until), how many of them started the service in the
    month), read from the latent truth: eligible on the month's 1st, running on the next month's 1st."""
    lat = ds.latent.sort_values(["subject_id", "month"], kind="stable")
    nxt = lat.groupby("subject_id").shift(-1)
    consecutive = (nxt["month"] - lat["month"]).dt.days.between(28, 31)
    months = (lat["month"] >= pd.Timestamp(since)) & (lat["month"] < pd.Timestamp(until or dt.date.max))
    at_risk = eligible(lat, nxt, ds.config) & consecutive & months
    return int(at_risk.sum()), int((at_risk & nxt[flag].fillna(False).astype(bool)).sum())


# Who may start each service in a month (latent.advance): home care clients with CPS < 3 (remote
# visits); home care clients at missed-dose risk (the robot); 65+ not in 24-hour care who were
# discharged or fell in the month (rehabilitation; a fall adds >= 1 to the decaying fall history).
_ELIGIBLE = {
    "remote": ("remote_visits", lambda lat, nxt, c: lat["home_care"] & ~lat["remote_visits"] & (lat["cognition"] < 3)),
    "medrobot": ("medication_robot", lambda lat, nxt, c: lat["home_care"] & ~lat["medication_robot"]
                 & ((lat["cognition"] >= 1) | (lat["adherence"] < 0.85) | lat["depressed"])),
    "rehab": ("rehabilitation", lambda lat, nxt, c: (lat["age"] >= 65) & ~lat["rehabilitation"] & ~lat["care24h"]
              & (nxt["recent_discharge"].fillna(False).astype(bool)
                 | (nxt["fall_history"] > c.care.care24h_fall_memory * lat["fall_history"] + 0.5))),
}


@pytest.fixture(scope="module")
def large_pair():
    config = SimulatorConfig(**LARGE)
    rollouts = tuple(r.model_copy(update={"start": LARGE_START}) for r in ROLLOUT)
    return config, simulate(config), simulate(config.model_copy(update={"shifts": ShiftConfig(rollouts=rollouts)}))


@pytest.mark.parametrize("rollout", ROLLOUT, ids=lambda r: r.service)
def test_a_rollout_multiplies_the_monthly_chance_of_starting(large_pair, rollout):
    """After the roll-out, the eligible start the service `uptake_multiplier` times as often as in
    the quiet world over the same months (within 3 standard errors of the log rate ratio)."""
    config, quiet_large, rolled_large = large_pair
    flag, eligible = _ELIGIBLE[rollout.service]
    n_q, k_q = _starts(quiet_large, flag, eligible, LARGE_START)
    n_r, k_r = _starts(rolled_large, flag, eligible, LARGE_START)
    assert k_q >= 30, (k_q, n_q)  # enough starts for the ratio to mean something
    ratio = (k_r / n_r) / (k_q / n_q)  # 2.83, 2.95, 2.04 at this seed
    se = np.sqrt(1 / k_q + 1 / k_r)
    assert abs(np.log(ratio / rollout.uptake_multiplier)) < 3 * se, (ratio, se)
    # Before the roll-out, the same chance in both worlds (they are the same world then).
    assert _starts(quiet_large, flag, eligible, config.start, LARGE_START) == \
        _starts(rolled_large, flag, eligible, config.start, LARGE_START)


def test_a_rollout_writes_more_starts_and_renames_nothing(quiet, rolled):
    after = lambda ds: ds.events[ds.events["time"] >= pd.Timestamp(START)]  # noqa: E731
    for code in ("REMOTE/START", "MEDROBOT/START", "REHAB/START"):
        assert (after(rolled)["code"] == code).sum() > 1.5 * (after(quiet)["code"] == code).sum(), code
    assert set(after(rolled)["code"]) == set(after(quiet)["code"])
    assert set(rolled.interventions["intervention"]) == set(quiet.interventions["intervention"])


def test_a_rollout_reaches_the_truth(quiet, rolled):
    """The truth's future paths run the roll-out's rule: index dates whose horizon ends before the
    roll-out can act keep their truth, the month before it already sees it (for people old enough to
    get the services), and whoever got a service through it has a lower true probability than the
    quiet world gives them."""
    key = ["subject_id", "prediction_time", "outcome", "horizon_days"]
    both = quiet.risk.merge(rolled.risk, on=key, suffixes=("_q", "_r"))
    assert len(both) == len(quiet.risk) == len(rolled.risk)
    # A start in the roll-out's first month acts from the month after it (2023-02).
    acts = pd.Timestamp(dt.date(2023, 2, 1))
    unreached = both["prediction_time"] + pd.to_timedelta(both["horizon_days"], unit="D") < acts
    np.testing.assert_array_equal(both.loc[unreached, "true_probability_q"], both.loc[unreached, "true_probability_r"])
    assert unreached.sum() > 0.3 * len(both)

    ages = quiet.latent[["subject_id", "month", "age"]].rename(columns={"month": "prediction_time"})
    month_before = both[(both["prediction_time"] == pd.Timestamp(dt.date(2022, 12, 1)))
                        & (both["outcome"] == "hospitalisation")].merge(ages, on=["subject_id", "prediction_time"])
    change = month_before["true_probability_r"] - month_before["true_probability_q"]
    assert (change != 0).sum() >= 10 and change[change != 0].mean() < 0
    assert (change[month_before["age"] < 64] == 0).all()  # no service within 90 days before 65

    # People who got a service through the roll-out, at the first month it runs: the truth is lower.
    # The comparison is exact only where both worlds have the same residents (the truth's random
    # numbers are then shared): checked, not assumed.
    flags = ["remote_visits", "medication_robot", "rehabilitation"]
    lat = quiet.latent[["subject_id", "month", *flags]].merge(
        rolled.latent[["subject_id", "month", *flags]], on=["subject_id", "month"], suffixes=("_q", "_r"))
    lat = lat.sort_values(["subject_id", "month"], kind="stable")
    gained = pd.Series(False, index=lat.index)
    for flag in flags:
        previous = lat.groupby("subject_id")[[f"{flag}_q", f"{flag}_r"]].shift(1).fillna(True).astype(bool)
        gained |= lat[f"{flag}_r"] & ~lat[f"{flag}_q"] & ~previous[f"{flag}_r"] & ~previous[f"{flag}_q"]
    first = lat[gained & (lat["month"] > pd.Timestamp(START))].groupby("subject_id").head(1)
    first = first.rename(columns={"month": "prediction_time"})[["subject_id", "prediction_time"]]
    hosp = both[both["outcome"] == "hospitalisation"].merge(first, on=["subject_id", "prediction_time"])
    same_residents = [t for t in hosp["prediction_time"].unique()
                      if set(quiet.risk.loc[quiet.risk["prediction_time"] == t, "subject_id"])
                      == set(rolled.risk.loc[rolled.risk["prediction_time"] == t, "subject_id"])]
    hosp = hosp[hosp["prediction_time"].isin(same_residents)]
    assert len(hosp) >= 30, len(hosp)
    assert (hosp["true_probability_r"] < hosp["true_probability_q"]).all()

    # Truth and outcomes agree after the roll-out as they do without it.
    after = rolled.risk[(rolled.risk["prediction_time"] >= pd.Timestamp(START)) & rolled.risk["observed"].notna()
                        & (rolled.risk["outcome"] == "hospitalisation")]
    observed, expected = after["observed"].astype(float).sum(), after["true_probability"].sum()
    assert abs(observed - expected) < 4 * np.sqrt(expected) + 0.05 * expected


def _replaced(quiet, aged) -> pd.Index:
    """The in-movers the ageing shift replaced: born at another time or of the other sex."""
    q, a = quiet.customers.set_index("subject_id"), aged.customers.set_index("subject_id")
    return q.index[(q["birth_year"] != a["birth_year"]) | (q["birth_month"] != a["birth_month"]) | (q["sex"] != a["sex"])]


def test_the_ageing_shift_brings_older_in_movers_and_changes_nobody_else(quiet, aged):
    replaced = _replaced(quiet, aged)
    moved_in = aged.events[(aged.events["code"] == "MOVE/IN") & (aged.events["time"] >= pd.Timestamp(START))]
    assert len(replaced) >= 8 and set(replaced) <= set(moved_in["subject_id"])
    born = aged.customers.set_index("subject_id").loc[replaced]
    entry = moved_in.set_index("subject_id").loc[replaced, "time"]
    assert ((entry.dt.year - born["birth_year"]) >= 65).all()  # 65+ at moving in (to within a year)
    # Everyone else lives the same life (their own random numbers, the same hazards): same states.
    others = lambda lat: lat[~lat["subject_id"].isin(replaced)].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(others(quiet.latent), others(aged.latent))

    # So the region's 65+ grow faster after the start than in the quiet world.
    def old(ds, month):
        lat = ds.latent
        return int((lat.loc[lat["month"] == pd.Timestamp(month), "age"] >= 65).sum())

    last = quiet.latent["month"].max()
    growth_q, growth_a = old(quiet, last) - old(quiet, START), old(aged, last) - old(aged, START)
    assert growth_a > growth_q + 0.5 * len(replaced), (growth_q, growth_a, len(replaced))


def test_older_in_movers_get_the_states_of_their_age(quiet, aged):
    """A replaced in-mover's first state is drawn at the age they move in, as for any in-mover: their
    frailty matches the quiet world's residents of their five-year band that month, not the young
    in-mover they replaced."""
    replaced = _replaced(quiet, aged)
    first = aged.latent[aged.latent["subject_id"].isin(replaced)].groupby("subject_id").head(1)
    band = lambda age: (age // 5).astype(int)  # noqa: E731
    lat = quiet.latent
    reference = lat.assign(band=band(lat["age"])).groupby(["month", "band"])["frailty"].mean().rename("reference")
    first = first.assign(band=band(first["age"])).join(reference, on=["month", "band"])
    gap = first["frailty"] - first["reference"]
    se = gap.std() / np.sqrt(len(gap))
    assert abs(gap.mean()) < 3 * se, (gap.mean(), se)
    unshifted = quiet.latent[quiet.latent["subject_id"].isin(replaced)].groupby("subject_id").head(1)
    older = first.set_index("subject_id")["frailty"] - unshifted.set_index("subject_id")["frailty"]
    assert older.mean() > 3 * older.std() / np.sqrt(len(older)), older.describe()


def test_the_ageing_shift_multiplies_the_odds_of_a_65_plus_in_mover():
    """The population alone (no simulation, so many in-movers): after the start, the odds that an
    in-mover is 65+ are `in_movers_65_plus_multiplier` times the quiet draw's (within 3 standard
    errors of the log odds ratio); before it, and for residents and births, nothing changes."""
    start = dt.date(2023, 1, 1)
    config = SimulatorConfig(customers=400_000, years=5, seed=3,
                             shifts=ShiftConfig(ageing=AgeingShift(start=start, in_movers_65_plus_multiplier=4.0)))
    calendar = Calendar(first_extract_mi=month_index(config.start), n_extract=12 * config.years, burn_in=24)
    pop = build_population(config, calendar, _generator(config.seed, 0, 0))
    shifted, who = older_in_movers(config, pop, _generator(config.seed, 8, 0))
    after = pop.moved_in & (pop.entry_mi >= month_index(start))
    assert set(who) <= set(np.flatnonzero(after))
    unchanged = ~np.isin(np.arange(len(pop)), who)
    np.testing.assert_array_equal(pop.birth_mi[unchanged], shifted.birth_mi[unchanged])
    np.testing.assert_array_equal(pop.female[unchanged], shifted.female[unchanged])
    for name in ("municipality", "language", "entry_mi", "entry_t", "moved_in"):
        np.testing.assert_array_equal(getattr(pop, name), getattr(shifted, name))
    old = lambda p: (p.entry_mi[after] - p.birth_mi[after]) >= 65 * 12  # noqa: E731
    a, b = int(old(pop).sum()), int((~old(pop)).sum())
    c, d = int(old(shifted).sum()), int((~old(shifted)).sum())
    odds_ratio = (c / d) / (a / b)
    se = np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    assert abs(np.log(odds_ratio / 4.0)) < 3 * se, (odds_ratio, se)
    # The quiet draw itself follows the movers' age structure (a check on the reference).
    share = mover_weights(config)[13:].sum()
    assert abs(a / (a + b) - share) < 3 * np.sqrt(share * (1 - share) / (a + b))


def test_rollouts_and_ageing_refuse_bad_values():
    with pytest.raises(ValidationError, match="'remote', 'medrobot' or 'rehab'"):
        ServiceRollout(start=START, service="robot", uptake_multiplier=2.0)
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        ServiceRollout(start=START, service="remote", uptake_multiplier=-1.0)
    with pytest.raises(ValidationError, match="first day of a month"):
        ServiceRollout(start=dt.date(2023, 1, 15), service="remote", uptake_multiplier=2.0)
    with pytest.raises(ValidationError, match="at most one roll-out per service"):
        ShiftConfig(rollouts=(ServiceRollout(start=START, service="rehab", uptake_multiplier=2.0),
                              ServiceRollout(start=dt.date(2023, 6, 1), service="rehab", uptake_multiplier=3.0)))
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        AgeingShift(start=START, in_movers_65_plus_multiplier=0.5)
    with pytest.raises(ValidationError, match="first day of a month"):
        AgeingShift(start=dt.date(2023, 1, 2), in_movers_65_plus_multiplier=2.0)
    late = dt.date(2030, 1, 1)
    for shifts in (ShiftConfig(rollouts=(ServiceRollout(start=late, service="remote", uptake_multiplier=2.0),)),
                   ShiftConfig(ageing=AgeingShift(start=late, in_movers_65_plus_multiplier=2.0))):
        assert shifts.any
        with pytest.raises(ValidationError, match="inside the extract"):
            SimulatorConfig(**BASE, shifts=shifts)
    with pytest.raises(ValueError, match="unknown service"):
        ShiftConfig().uptake_multiplier("homecare", 300)


def test_the_shifts_yaml_reads_back_what_the_config_says(tmp_path, rolled):
    """`simulate --shifts FILE`: the YAML file gives the same ShiftConfig as the Python one, and
    dataset.json's `shifts` reads back into it."""
    shifts = ShiftConfig(coding=(CodingChange(start=START, code="ICPC2/R74"),), homecare_cut=HomeCareCut(start=START),
                         rollouts=ROLLOUT, ageing=AGEING)
    path = tmp_path / "shifts.yaml"
    path.write_text(yaml.safe_dump(shifts.model_dump(mode="json", exclude_none=True)), encoding="utf-8")
    config = region_config("eksote", **BASE, shifts=_read_shifts(path))
    assert config.shifts == shifts
    written = "rollouts:\n  - {start: 2023-01-01, service: remote, uptake_multiplier: 3}\n" \
              "ageing: {start: 2023-01-01, in_movers_65_plus_multiplier: 5}\n"
    path.write_text(written, encoding="utf-8")
    assert region_config("eksote", **BASE, shifts=_read_shifts(path)).shifts == ShiftConfig(rollouts=ROLLOUT[:1],
                                                                                            ageing=AGEING)
    assert ShiftConfig.model_validate(rolled.metadata["shifts"]) == ShiftConfig(rollouts=ROLLOUT)


@pytest.mark.parametrize("written, message", [
    ("rollouts: [{start: 2023-01-01, service: robot, uptake_multiplier: 2}]", "service: Input should be"),
    ("rollouts: [{start: 2023-01-01, service: remote, uptake_multiplier: -2}]", "greater than or equal to 0 (got -2)"),
    ("rollouts: [{start: 2023-01-15, service: remote, uptake_multiplier: 2}]", "first day of a month"),
    ("ageing: {start: 2031-01-01, in_movers_65_plus_multiplier: 2}", "inside the extract"),
    ("ageing: {start: 2023-01-01, in_movers_65_plus_multiplier: 0.5}", "greater than or equal to 1"),
])
def test_bad_shifts_are_one_line_errors(tmp_path, written, message):
    path = tmp_path / "shifts.yaml"
    path.write_text(written + "\n", encoding="utf-8")
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-c", "from sote_risk.cli import main; main()", "simulate", "--customers",
                             "100", "--years", "2", "--shifts", str(path), "--out", str(out)],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("error: --shifts")
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
