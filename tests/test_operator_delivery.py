"""Operator alerts through the delivery commands, as an operator uses them: `alerts dispatch`
(`--once` and the loop) delivers them to SOTE_RISK_OPERATOR_WEBHOOK_URL beside the cards, counted
apart; `alerts retry --operator` sends a dead one again; a kind whose webhook is not set waits in
the outbox and the output says so. Real CLI, real outbox, receivers on loopback."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from alerts import outbox, webhook_signing
from alerts.operator import KIND
from _alerts_helpers import HookReceiver, Receiver, cli, record, stop, wait_until
from tests.test_alert_cli import run_cli  # noqa: F401 (the fixture: sote_risk.cli.main in-process)

OPERATOR_ENV, CRM_ENV = "SOTE_RISK_OPERATOR_WEBHOOK_URL", "SOTE_RISK_CRM_WEBHOOK_URL"


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """An empty home (its outbox as the CLI opens it), no webhook set."""
    monkeypatch.setenv("SOTE_RISK_HOME", str(tmp_path))
    monkeypatch.delenv(OPERATOR_ENV, raising=False)
    monkeypatch.delenv(CRM_ENV, raising=False)
    conn = outbox.connect()
    yield conn
    conn.close()


def operator_alert(conn, problem="elderly-hospitalisation", month="2024-12", now=None) -> str:
    alert_id, _ = outbox.record_operator_alert(
        conn, kind=KIND, problem=problem, as_of=f"{month}-01", key=("champion", "1", month),
        payload={"type": KIND, "problem": problem, "latest_breach": f"{month}: psi"},
        now=time.time() if now is None else now)
    return alert_id


def kill(conn, table="operator_alerts") -> str:
    """The next due alert of `table` dead, as a refusing receiver leaves it."""
    claimed = outbox.claim_next(conn, owner="t", now=1e12, lease_seconds=10, table=table)
    outbox.mark_failed(conn, claimed.alert_id, owner="t", error="HTTP 400", next_attempt_at=None, table=table)
    return claimed.alert_id


def status(conn, alert_id) -> str:
    return next(r["status"] for r in outbox.list_operator_alerts(conn) if r["alert_id"] == alert_id)


def dispatch_once(run_cli, *args):  # noqa: F811
    result = run_cli("alerts", "dispatch", "--once", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_a_dead_operator_alert_is_sent_again_by_retry_and_delivered_by_dispatch_once(home, run_cli, tmp_path,  # noqa: F811
                                                                                     monkeypatch):
    alert_id = operator_alert(home)
    stored = json.loads(home.execute("SELECT payload FROM operator_alerts").fetchone()[0])
    with HookReceiver(status=400) as receiver:  # the operators' webhook refuses it: dead at once
        monkeypatch.setenv(OPERATOR_ENV, receiver.url)
        first, _ = dispatch_once(run_cli)
        assert first["operator"] == {"delivered": 0, "retrying": 0, "dead": 1}
        listed = run_cli("alerts", "operator", "--status", "dead")
        assert listed.stdout.startswith(alert_id) and "last_error=HTTP 400" in listed.stdout

        receiver.status = 201
        retried = run_cli("alerts", "retry", "--operator", alert_id)
        assert retried.returncode == 0 and retried.stdout == f"operator alert {alert_id}: dead -> pending\n"
        assert status(home, alert_id) == "pending"
        second, err = dispatch_once(run_cli)
    assert second["operator"] == {"delivered": 1, "retrying": 0, "dead": 0}
    # no CRM webhook: the cards' part says they wait, and nothing else was sent
    assert second["skipped"] == f"{CRM_ENV} is not set: cards wait in the outbox" and second["delivered"] == 0
    assert f"{CRM_ENV} is not set" in err and OPERATOR_ENV not in err
    assert status(home, alert_id) == "delivered"
    assert run_cli("alerts", "operator", "--status", "dead").stdout == "no operator alerts with status dead\n"

    assert receiver.ids() == [alert_id, alert_id]
    sent = receiver.requests[-1]
    assert json.loads(sent["body"]) == stored and stored["alert_id"] == alert_id
    key = webhook_signing.secret_key(webhook_signing.load_secret(tmp_path / "crm_webhook_secret"))
    assert webhook_signing.verify(key, sent["headers"], sent["body"], now=time.time()) == alert_id
    assert sent["headers"]["webhook-id"] == sent["headers"]["idempotency-key"] == alert_id


def test_dispatch_with_only_the_crm_webhook_delivers_cards_and_says_operator_alerts_wait(home, run_cli):  # noqa: F811
    record(home, [1])
    [card] = outbox.list_alerts(home)
    alert_id = operator_alert(home)
    with HookReceiver() as crm:
        counts, err = dispatch_once(run_cli, "--webhook", crm.url)
    assert counts["delivered"] == 1 and crm.ids() == [card["alert_id"]]  # the card; never the operator alert
    assert counts["operator"] == {"delivered": 0, "retrying": 0, "dead": 0, "waiting": 1,
                                  "skipped": f"{OPERATOR_ENV} is not set: operator alerts wait in the outbox"}
    assert err == f"{OPERATOR_ENV} is not set: operator alerts wait in the outbox\n"
    [row] = outbox.list_operator_alerts(home)
    assert (row["alert_id"], row["status"], row["attempts"]) == (alert_id, "pending", 0)


@pytest.mark.slow
def test_a_card_and_operator_alerts_in_one_pass_go_each_to_their_webhook_counted_apart(home, run_cli, monkeypatch,  # noqa: F811
                                                                                       tmp_path):
    record(home, [1])
    [card] = outbox.list_alerts(home)
    ops = {operator_alert(home, month=m) for m in ("2024-11", "2024-12")}
    crm = Receiver(tmp_path / "crm.db")  # the project's CRM stand-in: it verifies the signature and takes only cards
    try:
        with HookReceiver() as operators:
            monkeypatch.setenv(OPERATOR_ENV, operators.url)
            counts, err = dispatch_once(run_cli, "--webhook", f"{crm.url}/alerts")  # --webhook: the CRM's only
        received = crm.received()
    finally:
        crm.stop()
    assert counts == {"delivered": 1, "retrying": 0, "dead": 0, "released": 0,
                      "operator": {"delivered": 2, "retrying": 0, "dead": 0}}
    assert err == ""
    assert [r["idempotency_key"] for r in received] == [card["alert_id"]]
    assert set(operators.ids()) == ops and len(operators.ids()) == 2
    assert all(r["path"] == "/hook" for r in operators.requests)
    assert outbox.operator_status_counts(home) == {"delivered": 2}


@pytest.mark.parametrize("max_age, outcome", [(None, "retrying"), ("5", "dead")])
def test_the_delivery_options_apply_to_operator_alerts_too(home, run_cli, monkeypatch, max_age, outcome):  # noqa: F811
    """An operator alert due for 60 s meets an outage (503): retried by default (a day's age),
    dead under --max-age 5."""
    alert_id = operator_alert(home, now=time.time() - 60)
    with HookReceiver(status=503) as operators:
        monkeypatch.setenv(OPERATOR_ENV, operators.url)
        counts, _ = dispatch_once(run_cli, *(("--max-age", max_age) if max_age else ()))
    assert counts["operator"][outcome] == 1 and sum(counts["operator"].values()) == 1
    assert operators.ids() == [alert_id]
    assert status(home, alert_id) == ("dead" if outcome == "dead" else "pending")


def test_retry_all_dead_operator_narrowed_by_problem_leaves_cards_alone(home, run_cli):  # noqa: F811
    record(home, [1])
    dead_card = kill(home, table="alerts")
    hospital = operator_alert(home, problem="elderly-hospitalisation")
    homecare = operator_alert(home, problem="elderly-homecare_failure")
    kill(home)
    kill(home)
    assert outbox.operator_status_counts(home) == {"dead": 2}

    dead = run_cli("alerts", "dead")
    assert dead_card in dead.stdout and dead.stdout.splitlines()[-1].startswith("2 dead operator alerts:")
    report = run_cli("alerts", "report")
    assert report.stdout.splitlines()[-1].startswith("operator alerts (monitoring): 0 pending, 0 delivered, 2 dead")

    one = run_cli("alerts", "retry", "--all-dead", "--operator", "--problem", "elderly-homecare_failure")
    assert one.returncode == 0, one.stderr
    assert one.stdout == f"1 dead operator alert -> pending (problem elderly-homecare_failure)\n  {homecare}\n"
    assert (status(home, homecare), status(home, hospital)) == ("pending", "dead")
    assert outbox.get_alert(home, dead_card)["status"] == "dead"  # --operator: operator alerts only

    cards = run_cli("alerts", "retry", "--all-dead")  # without --operator: cards only
    assert cards.stdout.startswith("1 dead alert -> pending") and status(home, hospital) == "dead"
    rest = run_cli("alerts", "retry", "--all-dead", "--operator")
    assert rest.stdout == f"1 dead operator alert -> pending\n  {hospital}\n"
    assert outbox.operator_status_counts(home) == {"pending": 2}


@pytest.fixture()
def kinds(home):
    """A dead card, a delivered operator alert and a dead one, by name."""
    record(home, [1])
    card = kill(home, table="alerts")
    delivered = operator_alert(home, month="2024-11", now=0.0)
    dead = operator_alert(home, month="2024-12", now=1.0)
    outbox.mark_delivered(home, delivered, table="operator_alerts")
    kill(home)
    return {"card": card, "delivered": delivered, "dead": dead}


@pytest.mark.parametrize("args, message", [
    (("--operator", "no-such-id"), "error: no operator alert with id no-such-id in the outbox"),
    (("--operator", "{delivered}"), "error: operator alert {delivered} is delivered; only dead or pending operator "
                                    "alerts can be retried"),
    (("{dead}",), "error: {dead} is an operator alert, not a card: `sote-risk alerts retry --operator {dead}`"),
    (("--operator", "{card}"), "error: {card} is a card, not an operator alert: `sote-risk alerts retry {card}`"),
    (("--operator",), "error: alerts retry: give one alert id, or --all-dead"),
    (("--operator", "{dead}", "--all-dead"), "error: alerts retry: give one alert id, or --all-dead"),
    (("--operator", "{dead}", "--problem", "p"), "error: alerts retry: give one alert id, or --all-dead"),
])
def test_retry_errors_are_one_line_and_change_nothing(home, kinds, run_cli, args, message):  # noqa: F811
    before = (outbox.list_operator_alerts(home), outbox.list_alerts(home))
    result = run_cli("alerts", "retry", *(a.format(**kinds) for a in args))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(message.format(**kinds)) and len(result.stderr.splitlines()) == 1
    assert (outbox.list_operator_alerts(home), outbox.list_alerts(home)) == before


@pytest.mark.parametrize("operator_url, message", [
    (None, f"error: no webhook to deliver to: set {CRM_ENV} (or --webhook) for cards, {OPERATOR_ENV} for operator alerts"),
    ("http://ops.example.org/hook", f"error: the operator webhook ({OPERATOR_ENV}) must be an https URL"),
])
def test_dispatch_errors_are_one_line(home, run_cli, monkeypatch, operator_url, message):  # noqa: F811
    operator_alert(home)
    if operator_url:
        monkeypatch.setenv(OPERATOR_ENV, operator_url)
    result = run_cli("alerts", "dispatch", "--once")
    assert result.returncode == 2 and result.stderr.startswith(message) and len(result.stderr.splitlines()) == 1
    assert outbox.operator_status_counts(home) == {"pending": 1}


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_the_dispatch_loop_delivers_operator_alerts_and_says_cards_wait(home, tmp_path):
    """The loop (no --once) in its own process: it says once that cards wait (no CRM webhook),
    delivers the operator alert, and prints both kinds' totals when stopped."""
    alert_id = operator_alert(home)
    with HookReceiver() as operators:
        env = {"SOTE_RISK_HOME": str(tmp_path), OPERATOR_ENV: operators.url}
        process = cli("alerts", "dispatch", "--poll-interval", "0.1", env=env,
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: status(home, alert_id) == "delivered" or process.poll() is not None, timeout=60,
                       what="the operator alert delivered")
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                out, err = process.communicate(timeout=30)
            finally:
                stop(process)
    assert process.returncode == 0, err
    assert operators.ids() == [alert_id]
    total = json.loads(out.strip().splitlines()[-1])
    assert total["operator"] == {"delivered": 1, "retrying": 0, "dead": 0}
    assert total["skipped"] == f"{CRM_ENV} is not set: cards wait in the outbox" and total["waiting"] == 0
    said = [line for line in err.splitlines() if "is not set" in line]
    assert len(said) == 1 and said[0].endswith(f"INFO {CRM_ENV} is not set: cards wait in the outbox")
