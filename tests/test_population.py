"""The population run (alerts/population.py, `sote-risk run`): batch scores equal the service's,
every score recorded, only alerts explained, cards link the page and carry FHIR, re-runs are
no-ops, bad input is one line."""

from __future__ import annotations

import copy
import json
import datetime as dt
import pickle
import sqlite3

import pandas as pd
import pytest

from alerts import outbox
from alerts.population import Links, PopulationError, alert_policy_for, run_population
from scoring.scorer import Scorer, ServingError
from tests.serving_fixture import MODELS_FILE, make_backend, shared_fixture, write_fixture_home
from _alerts_helpers import Receiver, run_cli

AS_OF = dt.date(2023, 12, 1)
THRESHOLD = 0.3


def budgeted(models: dict, threshold: float = THRESHOLD) -> dict:
    """The fixture models as training leaves them: a spec that states a budget, and the threshold
    training chose for it in the metadata."""
    out = {}
    for problem, model in models.items():
        model = copy.copy(model)
        model.spec = {**model.spec, "alert_policy": {"max_alerts_per_1000_per_month": 20, **model.spec["alert_policy"]}}
        model.metadata = {**model.metadata, "threshold": threshold}
        out[problem] = model
    return out


@pytest.fixture()
def backend():
    events, customers, models = shared_fixture()
    return make_backend(events, customers, budgeted(models))


@pytest.fixture()
def conn(tmp_path):
    c = outbox.connect(tmp_path / "outbox.db")
    yield c
    c.close()


def counts(conn: sqlite3.Connection) -> tuple[int, int]:
    return (conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0], conn.execute("SELECT COUNT(*) FROM alerts").fetchone()[0])


def test_population_scores_equal_the_service_and_only_alerts_are_explained(backend, conn):
    result = run_population(backend, conn, AS_OF, links=Links("http://svc:3000", "en"), today=AS_OF)
    assert result.customers == 200 and 0 < result.scored <= 200
    rows = pd.read_sql("SELECT subject_id, problem, probability, band FROM scores", conn)
    assert len(rows) == sum(p.eligible for p in result.problems) == sum(p.scores_written for p in result.problems)

    # parity: the service's Scorer gives the same probability for every (customer, problem)
    _, items = Scorer(backend).score_customers(sorted(rows["subject_id"].unique()), AS_OF, 0)
    service = {(i.customer_id, r.problem): r.probability for i in items for r in i.risks}
    assert {(int(s), p): pr for s, p, pr in rows[["subject_id", "problem", "probability"]].itertuples(index=False)} == service

    alerts = outbox.list_alerts(conn, limit=10_000)
    assert 0 < len(alerts) < len(rows)
    assert all(a["probability"] >= THRESHOLD for a in alerts)
    assert sum(p.explained for p in result.problems) == len(alerts)  # SHAP for the alerted only
    card = outbox.get_alert(conn, alerts[0]["alert_id"])["payload"]
    subject = card["extension"]["subject_pseudonym"]
    assert card["links"][0]["url"] == f"http://svc:3000/ui/customers/{subject}?as_of=2023-12-01&lang=en"
    assert card["extension"]["fhir_risk_assessment"]["resourceType"] == "RiskAssessment"
    assert card["detail"].count("\n- ") >= 1 and "(no reasons available)" not in card["detail"]


def test_rerunning_the_same_date_writes_nothing_and_raises_no_alert_twice(backend, conn):
    first = run_population(backend, conn, AS_OF, today=AS_OF)
    before = counts(conn)
    second = run_population(backend, conn, AS_OF, today=AS_OF + dt.timedelta(days=1))
    assert counts(conn) == before
    assert sum(p.scores_written + p.alerts_sent + p.alerts_queued + p.explained for p in second.problems) == 0
    assert [p.already_recorded for p in second.problems] == [p.eligible for p in first.problems]


def test_date_outside_the_data_is_one_line_and_writes_nothing(backend, conn):
    with pytest.raises(ServingError, match=r"as_of 2031-01-01 is outside the data \(2022-01-01 \.\. 2024-01-01\)"):
        run_population(backend, conn, dt.date(2031, 1, 1))
    assert counts(conn) == (0, 0)


def test_alert_policy_comes_from_the_spec_with_trainings_threshold(backend):
    champion = backend.champions["elderly-hospitalisation"]
    policy = alert_policy_for(champion)
    assert policy.threshold == THRESHOLD and policy.bands == champion.bands
    given = copy.copy(champion.model)
    given.spec = {**given.spec, "alert_policy": {"threshold": 0.4, "cooldown_days": 60}}
    assert alert_policy_for(type(champion)(**{**champion.__dict__, "model": given})).cooldown_days == 60
    bare = copy.copy(champion.model)
    bare.metadata = {"model_version": "9"}
    bare.spec = {**bare.spec, "alert_policy": {"max_alerts_per_1000_per_month": 20}}
    with pytest.raises(PopulationError, match="elderly-hospitalisation: no alert threshold"):
        alert_policy_for(type(champion)(**{**champion.__dict__, "model": bare}))


# --- the command, over loopback with a CRM receiver ------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_run_command_delivers_and_a_rerun_of_the_month_creates_no_new_alerts(tmp_path):
    home = tmp_path / "home"
    models = write_fixture_home(home)
    with open(home / MODELS_FILE, "wb") as handle:
        pickle.dump(budgeted(models), handle)
    receiver = Receiver(tmp_path / "crm.db")
    env = {"SOTE_RISK_HOME": str(home), "SOTE_RISK_BACKEND": "tests.serving_fixture:backend_from_home",
           "SOTE_RISK_CRM_WEBHOOK_URL": f"{receiver.url}/alerts"}
    try:
        first = run_cli("run", "--as-of", AS_OF.isoformat(), env=env, timeout=120)
        assert first.returncode == 0, first.stderr[-2000:]
        summary = json.loads(first.stdout.strip().splitlines()[-1])
        conn = outbox.connect(home / "outbox.db")
        delivered = outbox.status_counts(conn).get("delivered", 0)
        assert delivered > 0 and summary["delivered"]["delivered"] == delivered
        assert len(receiver.received()) == delivered
        before = counts(conn)

        second = run_cli("run", "--as-of", AS_OF.isoformat(), env=env, timeout=120)
        assert second.returncode == 0, second.stderr[-2000:]
        again = json.loads(second.stdout.strip().splitlines()[-1])
        assert all(p["alerts_sent"] == 0 and p["new_scores"] == 0 for p in again["problems"].values())
        assert counts(conn) == before and len(receiver.received()) == delivered
        assert all(item["deliveries"] == 1 for item in receiver.received())  # nothing sent twice
    finally:
        receiver.stop()


@pytest.mark.parametrize("args, message", [
    (["--as-of", "2031-01-01"], "error: as_of 2031-01-01 is outside the data"),
])
def test_run_command_bad_date_is_one_line(tmp_path, args, message):
    home = tmp_path / "home"
    write_fixture_home(home)
    env = {"SOTE_RISK_HOME": str(home), "SOTE_RISK_BACKEND": "tests.serving_fixture:backend_from_home"}
    result = run_cli("run", *args, env=env, timeout=60)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert result.returncode != 0 and len(errors) == 1 and errors[0].startswith(message), result.stderr
    assert not (home / "outbox.db").exists() or counts(outbox.connect(home / "outbox.db")) == (0, 0)


def test_run_command_without_champions_is_one_line(tmp_path):
    result = run_cli("run", "--as-of", "2024-12-01", env={"SOTE_RISK_HOME": str(tmp_path / "empty")}, timeout=120)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert result.returncode != 0 and len(errors) == 1, result.stderr
    assert errors[0].startswith("error: cannot run the population: acute-hospitalisation: no version")


def test_served_problems_follow_the_environment(monkeypatch):
    from scoring.backend import PROBLEMS_ENV, BackendError, served_problems

    declared = ["acute-hospitalisation", "elderly-hospitalisation"]
    monkeypatch.delenv(PROBLEMS_ENV, raising=False)
    assert served_problems(declared) == declared
    monkeypatch.setenv(PROBLEMS_ENV, " elderly-hospitalisation ,")
    assert served_problems(declared) == ["elderly-hospitalisation"]
    monkeypatch.setenv(PROBLEMS_ENV, "nope-nope")
    with pytest.raises(BackendError, match="SOTE_RISK_PROBLEMS: unknown problem\\(s\\) nope-nope"):
        served_problems(declared)
