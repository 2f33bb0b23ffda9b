"""Intervention evaluation (training/interventions.py, `sote-risk evaluate-intervention`): the naive
table against a hand count, the trial rows on a hand-made history, the counterfactual twin, the
design-based interval against the simulator's true effect, and one-line errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from training.interventions import (
    INTERVENTIONS,
    OUTCOMES,
    InterventionError,
    evaluate_intervention,
    intervention,
    naive_before_after,
    trial_rows,
)

START, END = pd.Timestamp("2023-01-01"), pd.Timestamp("2024-12-31 23:59:59")


def _events(rows: list[tuple[int, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["subject_id", "time", "code"])
    frame["time"] = pd.to_datetime(frame["time"]).astype("datetime64[us]")
    frame["numeric_value"] = np.nan
    return frame.sort_values(["subject_id", "time"], kind="stable").reset_index(drop=True)


def _customers(ids, birth_year: int = 1940) -> pd.DataFrame:
    return pd.DataFrame({"subject_id": np.asarray(ids, dtype="int64"), "birth_year": birth_year, "birth_month": 6,
                         "sex": "F", "municipality": "Lappeenranta", "language": "fi"})


HAND_HISTORY = [
    # 1: first start 2023-06-01 12:00; the window before is [2023-03-03 12:00, t0), after [t0, 2023-08-30 12:00)
    (1, "2023-03-03 11:59", "ENC/EMERGENCY"),    # just outside the window before
    (1, "2023-03-03 12:00", "ENC/EMERGENCY"),    # first instant of the window before: counts before
    (1, "2023-05-31 08:00", "ENC/EMERGENCY"),
    (1, "2023-05-31 08:00", "ADMIT/UNPLANNED"),
    (1, "2023-06-01 12:00", "REMOTE/START"),
    (1, "2023-06-01 12:00", "ENC/EMERGENCY"),    # at the start: counts after
    (1, "2023-07-01 10:00", "ADMIT/UNPLANNED"),
    (1, "2023-08-30 11:59", "ENC/EMERGENCY"),    # last minute of the window after
    (1, "2023-08-30 12:00", "ENC/EMERGENCY"),    # outside
    (1, "2023-10-01 09:00", "REMOTE/START"),     # a second start: not a user twice
    (2, "2023-02-01 09:00", "REMOTE/START"),     # too early: no 90 days before inside the extract
    (2, "2023-02-10 09:00", "ENC/EMERGENCY"),
    (3, "2024-11-01 09:00", "REMOTE/START"),     # too late: no 90 days after
    (4, "2023-06-15 09:00", "ENC/EMERGENCY"),    # never starts
    (5, "2024-01-15 09:00", "REMOTE/START"),     # a user without events
    (6, "2023-09-01 09:00", "MEDROBOT/START"),   # another service
    (6, "2023-09-02 09:00", "ENC/EMERGENCY"),
]


def _hand_count(events: pd.DataFrame, start_code: str, code: str) -> tuple[int, int, int, int, int]:
    """The plan's table counted one customer and one event at a time."""
    users = before = after = users_before = users_after = 0
    window = pd.Timedelta(days=90)
    for _, rows in events.groupby("subject_id"):
        starts = [r.time for r in rows.itertuples() if r.code == start_code]
        if not starts:
            continue
        t0 = min(starts)
        if t0 - window < START or t0 + window > END:
            continue
        users += 1
        b = sum(1 for r in rows.itertuples() if r.code == code and t0 - window <= r.time < t0)
        a = sum(1 for r in rows.itertuples() if r.code == code and t0 <= r.time < t0 + window)
        before, after = before + b, after + a
        users_before, users_after = users_before + (b > 0), users_after + (a > 0)
    return users, before, after, users_before, users_after


def test_naive_before_after_equals_a_hand_count_on_a_hand_made_history():
    events = _events(HAND_HISTORY)
    rows = {row.outcome: row for row in naive_before_after(events, START, END, intervention("remote_visits"))}
    for key, code, _ in OUTCOMES:
        row = rows[key]
        assert (row.users, row.before, row.after, row.users_before, row.users_after) == _hand_count(events, "REMOTE/START", code)
    er, adm = rows["er_visits"], rows["unplanned_admissions"]
    assert (er.users, er.before, er.after) == (2, 2, 2)  # customers 1 and 5
    assert (adm.before, adm.after) == (1, 1)
    assert er.per100_before == 100.0 and er.change_units == 0.0
    assert adm.change_percent == 0.0
    robot = {row.outcome: row for row in naive_before_after(events, START, END, intervention("medication_robot"))}
    assert (robot["er_visits"].users, robot["er_visits"].before, robot["er_visits"].after) == (1, 0, 1)


def test_trial_rows_on_a_hand_made_history():
    """A starter is a not-yet-starter in the months before its start, a starter in the month of it and
    gone after; time zero is the next month's first day; month events are baseline."""
    end = pd.Timestamp("2024-06-30 23:59")
    events = _events([
        (1, "2023-01-01 00:00", "HOMECARE/START"),
        (1, "2023-07-10 09:00", "REMOTE/START"),
        (2, "2023-01-01 00:00", "HOMECARE/START"),
        (2, "2023-07-20 09:00", "ENC/EMERGENCY"),
        (2, "2023-11-05 09:00", "HOMECARE/END"),
        (3, "2023-03-01 09:00", "ENC/EMERGENCY"),  # no home care: never eligible
        (4, "2023-01-01 00:00", "HOMECARE/START"),
        (4, "2023-09-15 09:00", "DEATH"),
    ])
    rows = trial_rows(events, _customers([1, 2, 3, 4]), START, end, intervention("remote_visits"))
    one = rows.loc[rows["subject_id"] == 1].set_index("month")
    assert list(one.index.strftime("%Y-%m")) == ["2023-03", "2023-04", "2023-05", "2023-06", "2023-07"]
    assert list(one["starter"]) == [False, False, False, False, True]
    assert (one["T"] == one.index + pd.offsets.MonthBegin(1)).all()
    two = rows.loc[rows["subject_id"] == 2].set_index("month")
    assert two.index.min() == pd.Timestamp("2023-03-01") and two.index.max() == pd.Timestamp("2023-11-01")
    assert not two["starter"].any()
    assert two.loc["2023-07-01", "er_visit"] and two.loc["2023-07-01", "er_visits_pre"] == 1
    assert two.loc["2023-06-01", "er_visits_post"] == 1 and not two.loc["2023-06-01", "er_visit"]
    assert 3 not in set(rows["subject_id"])
    four = rows.loc[rows["subject_id"] == 4, "month"]
    assert four.max() == pd.Timestamp("2023-08-01")  # dies in September: alive at 2023-09-01, not at 2023-10-01


def test_unknown_intervention_is_a_one_line_error():
    with pytest.raises(InterventionError, match="unknown intervention 'robots'.*remote_visits, medication_robot"):
        intervention("robots")


# ---------------------------------------------------------------------------------------------
# The simulator's counterfactual twin and the truth


@pytest.fixture(scope="module")
def small_region():
    from synthetic.config import SimulatorConfig
    from synthetic.simulate import simulate

    config = SimulatorConfig(customers=20_000, years=5, seed=7, compute_truth=False)
    return config, simulate(config)


def test_twin_without_a_change_is_the_dataset_itself():
    """Home care's multiplier is 1 already: switching it off from the extract start changes nothing."""
    from synthetic.config import SimulatorConfig
    from synthetic.simulate import simulate

    config = SimulatorConfig(customers=1_500, years=2, seed=3, compute_truth=False)
    assert simulate(config, effects_off=("homecare",)).events.equals(simulate(config).events)


@pytest.mark.slow
def test_design_interval_contains_the_true_effect(small_region):
    """20,000 residents, 5 years, seed 7 (chosen before looking): for each intervention the matched
    difference-in-differences interval holds the true effect on the same starters (their events
    minus their events in the twin without the effect), and the twin is the same region."""
    from synthetic.counterfactual import counterfactual_events

    config, dataset = small_region
    start, end = pd.Timestamp(dataset.metadata["extract_start"]), pd.Timestamp(dataset.metadata["extract_end"])
    for name in INTERVENTIONS:
        twin = counterfactual_events(config, name)
        report = evaluate_intervention(dataset.events, dataset.customers, start, end, name,
                                       counterfactual_events=twin, bootstrap=300, seed=1)
        assert report.twin_agreement is not None and report.twin_agreement > 0.99, (name, report.twin_agreement)
        assert report.design.matched >= 100, (name, report.design.matched)
        assert not report.notes, report.notes
        assert all(abs(value) < 1.0 for value in report.placebo.values()), report.placebo  # per 100 starters
        naive = {row.outcome: row for row in report.naive}
        for key, _, _ in OUTCOMES:
            effect, true = report.design.effects[key], report.truth[key]
            assert effect.low < effect.estimate < effect.high
            assert effect.contains(true.estimate), (name, key, effect, true)
            if name == "home_rehabilitation":  # started after a crisis: the naive drop is regression to the mean
                assert naive[key].change_units < effect.low - 10, (key, naive[key].change_units, effect)


@pytest.mark.slow
def test_a_twin_of_another_seed_is_refused(small_region):
    from synthetic.counterfactual import counterfactual_events

    config, dataset = small_region
    other = counterfactual_events(config.model_copy(update={"seed": 8}), "medication_robot")
    start, end = pd.Timestamp(dataset.metadata["extract_start"]), pd.Timestamp(dataset.metadata["extract_end"])
    report = evaluate_intervention(dataset.events, dataset.customers, start, end, "medication_robot",
                                   counterfactual_events=other, bootstrap=0)
    assert report.truth is None and report.twin_agreement < 0.2
    assert any("no true effect shown" in note for note in report.notes)


# ---------------------------------------------------------------------------------------------
# The command line


def run_cli(*args: str, home) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "SOTE_RISK_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.run([sys.executable, "-c", "from sote_risk.cli import main; main()", *args],
                          capture_output=True, text=True, env=env)


def test_cli_unknown_intervention_is_one_line(tmp_path):
    result = run_cli("evaluate-intervention", "--intervention", "robot", "--data", str(tmp_path), home=tmp_path / "home")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: unknown intervention 'robot': choose one of remote_visits, medication_robot, home_rehabilitation"]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("make", ["missing", "empty", "metadata only"])
def test_cli_folder_without_data_is_one_line(tmp_path, make):
    folder = tmp_path / "region"
    if make != "missing":
        folder.mkdir()
    if make == "metadata only":
        (folder / "dataset.json").write_text(json.dumps({"extract_start": "2023-01-01", "extract_end": "2024-01-01"}))
    result = run_cli("evaluate-intervention", "--intervention", "remote_visits", "--data", str(folder), home=tmp_path / "home")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(folder) in lines[0], lines
    assert "Traceback" not in result.stderr


def test_cli_evaluates_a_small_simulated_region(tmp_path):
    """The command end to end on a small simulated folder: both tables, the truth columns."""
    from synthetic.config import SimulatorConfig
    from synthetic.io import write_simulated
    from synthetic.simulate import simulate

    folder = tmp_path / "region"
    write_simulated(simulate(SimulatorConfig(customers=3_000, years=3, seed=5, compute_truth=False)), folder)
    result = run_cli("evaluate-intervention", "--intervention", "home_rehabilitation", "--data", str(folder),
                     "--bootstrap", "50", home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Naive before/after (the plan's table)" in out and "change (percentage units)" in out
    assert "true effect" in out and "truth inside" in out
    lines = [line.split() for line in out.splitlines() if line.startswith("  ER visits")]
    assert len(lines) == 2  # the naive row and the design row

    import shutil  # a real extract has no simulator truth: the estimate without the truth, and why

    shutil.rmtree(folder / "truth")
    result = run_cli("evaluate-intervention", "--intervention", "home_rehabilitation", "--data", str(folder),
                     "--bootstrap", "50", home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    assert "truth inside" not in result.stdout
    assert "note: true effect not shown:" in result.stdout and "not simulated data" in result.stdout
