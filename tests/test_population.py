"""The population run (alerts/population.py, `sote-risk run`): batch scores equal the service's,
every score recorded, only alerts explained, cards link the page and carry FHIR, re-runs are
no-ops, bad input is one line.

On the test region (tests/serving_fixture.py): the real feature pipeline over a small simulated
population, scored by the five pinned LightGBM champions."""

from __future__ import annotations

import copy
import datetime as dt
import json
import sqlite3

import pandas as pd
import pytest

from alerts import outbox
from alerts.population import TOP_REASONS, Links, PopulationError, alert_policy_for, run_population
from scoring.champions import champion_from_model
from scoring.errors import OutsideData
from scoring.scorer import Scorer
from tests.serving_fixture import make_backend, members, models, span, store
from _alerts_helpers import Receiver, run_cli

AS_OF = dt.date(2024, 12, 1)  # the data span 2022-01-01 .. 2025-01-01
THRESHOLD = 0.3  # not the pinned models' own (0.2): the run must take the one the model carries


def budgeted(chosen: dict, threshold: float | None = THRESHOLD) -> dict:
    """The models as training leaves them: a spec whose alert_policy states only a budget, and the
    threshold training chose for that budget in the metadata (None: no threshold)."""
    for model in chosen.values():
        policy = {k: v for k, v in model.spec["alert_policy"].items() if k not in ("threshold", "min_band")}
        model.spec["alert_policy"] = {**policy, "max_alerts_per_1000_per_month": 20}
        model.metadata.pop("threshold", None)
        if threshold is not None:
            model.metadata["threshold"] = threshold
    return chosen


@pytest.fixture()
def backend():
    return make_backend(budgeted(models()))


@pytest.fixture()
def conn(tmp_path):
    c = outbox.connect(tmp_path / "outbox.db")
    yield c
    c.close()


def counts(conn: sqlite3.Connection) -> tuple[int, int]:
    return (conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0], conn.execute("SELECT COUNT(*) FROM alerts").fetchone()[0])


def recorded(conn: sqlite3.Connection) -> dict[tuple[int, str], float]:
    rows = pd.read_sql("SELECT subject_id, problem, probability FROM scores", conn)
    return {(int(s), p): float(pr) for s, p, pr in rows.itertuples(index=False)}


def detail_lines(reasons) -> list[str]:
    return [f"- {'↑' if r.direction == 'up' else '↓'} {r.text_en}" for r in reasons]


def test_population_scores_equal_the_service_and_only_alerts_are_explained(backend, conn):
    from fhir.resources.R4B.riskassessment import RiskAssessment

    from explain.chains import suggest_chains

    result = run_population(backend, conn, AS_OF, links=Links("http://svc:3000", "en"), today=AS_OF)
    time = pd.Timestamp(AS_OF)
    assert result.as_of == time and result.customers == len(store().ids())
    scores = recorded(conn)

    # every eligible customer of every problem is scored and recorded: the cohorts found by the
    # feature package directly, not through scoring
    for run in result.problems:
        expected = set(members(run.problem, time))
        assert {s for s, p in scores if p == run.problem} == expected and expected
        assert run.eligible == run.scores_written == len(expected) and run.already_recorded == 0
    assert len(scores) == sum(p.scores_written for p in result.problems)
    assert result.scored == len({s for s, _ in scores}) < result.customers

    # parity: the service's Scorer (what /score runs) gives the same probability for every pair
    scorer = Scorer(backend)
    _, items = scorer.score_customers(sorted({s for s, _ in scores}), AS_OF, 0)
    assert {(i.customer_id, r.problem): r.probability for i in items for r in i.risks} == scores

    # alerts: exactly the scores at or over the threshold training chose (a fresh outbox: no
    # cooldown, no budget); SHAP only for them
    alerts = outbox.list_alerts(conn, limit=10_000)
    assert {(a["subject_id"], a["problem"]) for a in alerts} == {k for k, pr in scores.items() if pr >= THRESHOLD}
    assert 0 < len(alerts) < len(scores) and {p.threshold for p in result.problems} == {THRESHOLD}
    assert [p.explained for p in result.problems] == [p.alerts_sent + p.alerts_queued for p in result.problems]

    # every card: the page link, a valid FHIR RiskAssessment, and the reasons the service gives
    _, explained = scorer.score_customers(sorted({a["subject_id"] for a in alerts}), AS_OF, TOP_REASONS)
    service = {(i.customer_id, r.problem): r for i in explained for r in i.risks}
    for alert in alerts:
        card = outbox.get_alert(conn, alert["alert_id"])["payload"]
        subject, problem = card["extension"]["subject_pseudonym"], card["extension"]["problem"]
        assert (subject, problem) == (alert["subject_id"], alert["problem"])
        assert card["links"][0]["url"] == f"http://svc:3000/ui/customers/{subject}?as_of=2024-12-01&lang=en"
        fhir = RiskAssessment.model_validate(card["extension"]["fhir_risk_assessment"])
        assert fhir.subject.reference == f"Patient/{subject}"
        assert float(fhir.prediction[0].probabilityDecimal) == pytest.approx(scores[subject, problem], abs=1e-6)
        reasons = service[subject, problem].reasons
        assert len(reasons) == TOP_REASONS
        assert [line for line in card["detail"].splitlines() if line.startswith("- ")] == detail_lines(reasons)
        assert [s["label"] for s in card.get("suggestions", [])] == [c.label_en for c in suggest_chains(reasons)]


def test_rerunning_the_same_date_writes_nothing_and_raises_no_alert_twice(backend, conn):
    first = run_population(backend, conn, AS_OF, today=AS_OF)
    before = counts(conn)
    assert before[1] == first.alerts > 0
    second = run_population(backend, conn, AS_OF, today=AS_OF + dt.timedelta(days=1))
    assert counts(conn) == before
    assert sum(p.scores_written + p.alerts_sent + p.alerts_queued + p.explained for p in second.problems) == 0
    assert [p.already_recorded for p in second.problems] == [p.eligible for p in first.problems]
    assert second.scored == first.scored


def test_date_outside_the_data_is_one_line_and_writes_nothing(backend, conn):
    start, end = span()
    with pytest.raises(OutsideData, match=rf"^as_of 2031-01-01 is outside the data \({start.date()} \.\. {end.date()}\)$"):
        run_population(backend, conn, dt.date(2031, 1, 1))
    assert counts(conn) == (0, 0)


def test_a_problem_without_a_threshold_stops_the_run_before_any_work(conn):
    chosen = budgeted(models())
    chosen["elderly-homecare_failure"].metadata.pop("threshold")
    with pytest.raises(PopulationError, match="^elderly-homecare_failure: no alert threshold"):
        run_population(make_backend(chosen), conn, AS_OF, today=AS_OF)
    assert counts(conn) == (0, 0)


def test_alert_policy_comes_from_the_spec_with_trainings_threshold(backend):
    champion = backend.champions["elderly-hospitalisation"]
    policy = alert_policy_for(champion)
    assert policy.threshold == THRESHOLD and policy.bands == champion.bands

    def with_model(spec_policy=None, metadata=None):
        model = copy.copy(champion.model)
        model.spec = {**model.spec, "alert_policy": spec_policy if spec_policy is not None else model.spec["alert_policy"]}
        model.metadata = metadata if metadata is not None else dict(model.metadata)
        return champion_from_model(champion.problem, model, champion.version)

    given = alert_policy_for(with_model({"threshold": 0.4, "cooldown_days": 60}))
    assert (given.threshold, given.cooldown_days) == (0.4, 60)  # the spec's own threshold wins
    assert alert_policy_for(with_model(metadata={**champion.model.metadata, "threshold": 1.0})).threshold < 1.0
    with pytest.raises(PopulationError, match="elderly-hospitalisation: no alert threshold"):
        alert_policy_for(with_model({"max_alerts_per_1000_per_month": 20}, {"model_version": "9"}))
    with pytest.raises(PopulationError, match="^elderly-hospitalisation: alert_policy: "):
        alert_policy_for(with_model({"threshold": 0.4, "cooldown_days": -1}))


# --- the command, over loopback with a CRM receiver ------------------------------------------------


def summary_of(result) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def one_error_line(result) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert result.returncode != 0 and len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    return errors[0]


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_run_command_delivers_and_a_rerun_of_the_month_creates_no_new_alerts(fixture_home, tmp_path):
    """`sote-risk run` on a home with the region's data and the pinned models as champions."""
    from fhir.resources.R4B.riskassessment import RiskAssessment

    receiver = Receiver(tmp_path / "crm.db")
    env = {"SOTE_RISK_HOME": str(fixture_home), "SOTE_RISK_CRM_WEBHOOK_URL": f"{receiver.url}/alerts",
           "SOTE_RISK_PUBLIC_URL": "http://svc:3000"}
    try:
        first = summary_of(run_cli("run", "--as-of", AS_OF.isoformat(), env=env, timeout=240))
        time = pd.Timestamp(AS_OF)
        assert first["as_of"] == AS_OF.isoformat() and first["customers"] == len(store().ids())
        chosen = models()  # what the home registered as champions
        assert sorted(first["problems"]) == sorted(chosen)
        conn = outbox.connect(fixture_home / "outbox.db")
        scores = recorded(conn)
        for problem, run in first["problems"].items():
            assert run["scored"] == run["new_scores"] == len(members(problem, time)) > 0
        # the command scores what the service scores with the same champions
        _, items = Scorer(make_backend(chosen)).score_customers(sorted({s for s, _ in scores}), AS_OF, 0)
        assert scores == pytest.approx({(i.customer_id, r.problem): r.probability for i in items for r in i.risks}, abs=1e-12)
        # alerts at the threshold each model carries from training, all delivered once
        threshold = {p: m.metadata["threshold"] for p, m in chosen.items()}
        alerts = outbox.list_alerts(conn, limit=10_000)
        assert {(a["subject_id"], a["problem"]) for a in alerts} == {k for k, pr in scores.items() if pr >= threshold[k[1]]}
        delivered = outbox.status_counts(conn).get("delivered", 0)
        assert delivered == len(alerts) > 0 and first["delivered"]["delivered"] == delivered
        received = receiver.received()
        assert len(received) == delivered
        for item in received:
            card = item["body"]
            subject = card["extension"]["subject_pseudonym"]
            assert card["links"][0]["url"] == f"http://svc:3000/ui/customers/{subject}?as_of=2024-12-01&lang=fi"
            assert RiskAssessment.model_validate(card["extension"]["fhir_risk_assessment"]).subject.reference == f"Patient/{subject}"
            assert card["detail"].count("\n- ") == TOP_REASONS
        before = counts(conn)

        again = summary_of(run_cli("run", "--as-of", AS_OF.isoformat(), env=env, timeout=240))
        assert all(p["alerts_sent"] == p["new_scores"] == p["explained"] == 0 for p in again["problems"].values())
        assert all(p["already_recorded"] == first["problems"][name]["scored"] for name, p in again["problems"].items())
        assert counts(conn) == before and len(receiver.received()) == delivered
        assert all(item["deliveries"] == 1 for item in receiver.received())  # nothing sent twice
        conn.close()
    finally:
        receiver.stop()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_run_command_scores_only_the_problems_in_the_settings(fixture_home):
    env = {"SOTE_RISK_HOME": str(fixture_home), "SOTE_RISK_PROBLEMS": "elderly-hospitalisation"}
    summary = summary_of(run_cli("run", "--as-of", AS_OF.isoformat(), env=env, timeout=240))
    assert list(summary["problems"]) == ["elderly-hospitalisation"] and summary["delivered"] is None
    conn = outbox.connect(fixture_home / "outbox.db")
    assert {p for _, p in recorded(conn)} == {"elderly-hospitalisation"}
    assert summary["problems"]["elderly-hospitalisation"]["scored"] == len(members("elderly-hospitalisation", pd.Timestamp(AS_OF)))
    conn.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_run_command_bad_date_is_one_line(fixture_home):
    start, end = span()
    result = run_cli("run", "--as-of", "2031-01-01", env={"SOTE_RISK_HOME": str(fixture_home)}, timeout=240)
    assert one_error_line(result) == f"error: as_of 2031-01-01 is outside the data ({start.date()} .. {end.date()})"
    assert not (fixture_home / "outbox.db").exists() or counts(outbox.connect(fixture_home / "outbox.db")) == (0, 0)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_run_command_without_champions_is_one_line(tmp_path):
    from vocabulary import vocabulary

    result = run_cli("run", "--as-of", "2024-12-01", env={"SOTE_RISK_HOME": str(tmp_path / "empty")}, timeout=240)
    error = one_error_line(result)
    assert error.startswith("error: cannot run the population: ")
    for problem in (p.id for p in vocabulary().problems()):
        assert f"{problem}: no version of sote-risk-{problem} has alias 'champion'" in error


def test_run_command_refuses_an_unknown_setting(tmp_path):
    """There is no SOTE_RISK_BACKEND hook: a setting the code does not know is refused, not ignored."""
    home = tmp_path / "home"
    result = run_cli("run", "--as-of", "2024-12-01", env={"SOTE_RISK_HOME": str(home),
                                                           "SOTE_RISK_BACKEND": "tests.serving_fixture:backend_from_home"})
    error = one_error_line(result)
    assert error.startswith("error: unknown setting(s) SOTE_RISK_BACKEND; known: ") and "SOTE_RISK_PROBLEMS" in error
    assert not (home / "outbox.db").exists()


def test_served_problems_follow_the_settings(monkeypatch):
    from base.settings import SettingsError, settings
    from scoring.champions import served_problems
    from scoring.errors import BackendError
    from vocabulary import vocabulary

    declared = [p.id for p in vocabulary().problems()]
    assert len(declared) == 5
    monkeypatch.delenv("SOTE_RISK_PROBLEMS", raising=False)
    assert settings().problems is None and served_problems(settings().problems) == declared
    monkeypatch.setenv("SOTE_RISK_PROBLEMS", " elderly-hospitalisation ,")
    assert served_problems(settings().problems) == ["elderly-hospitalisation"]  # read at call time
    monkeypatch.setenv("SOTE_RISK_PROBLEMS", "acute-hospitalisation,elderly-homecare_failure")
    assert served_problems(settings().problems) == ["acute-hospitalisation", "elderly-homecare_failure"]
    monkeypatch.setenv("SOTE_RISK_PROBLEMS", " , ")
    assert served_problems(settings().problems) == declared  # empty counts as unset
    monkeypatch.setenv("SOTE_RISK_PROBLEMS", "nope-nope")
    with pytest.raises(BackendError, match=r"SOTE_RISK_PROBLEMS: unknown problem\(s\) nope-nope; declared: "):
        served_problems(settings().problems)
    monkeypatch.setenv("SOTE_RISK_PROBLEM", "elderly-hospitalisation")  # misspelt: refused, not ignored
    with pytest.raises(SettingsError, match=r"unknown setting\(s\) SOTE_RISK_PROBLEM;"):
        settings()
