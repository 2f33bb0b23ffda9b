"""`sote-risk alerts ...` and `sote-risk crm-receiver`: thin commands, one-line errors."""

import json

import pytest

from alerts import feedback, outbox
from _alerts_helpers import record


@pytest.fixture()
def run_cli(monkeypatch, capsys):
    """The real entry point (sote_risk.cli.main) in-process: fast, same one-line error path."""
    from types import SimpleNamespace

    from sote_risk.cli import main

    def run(*args):
        monkeypatch.setattr("sys.argv", ["sote-risk", *args])
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code or 0
        out = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)

    return run


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SOTE_RISK_HOME", str(tmp_path))
    conn = outbox.connect()  # the home folder's outbox.db, as the CLI opens it
    record(conn, [1, 2])
    claimed = outbox.claim_next(conn, owner="t", now=1e12, lease_seconds=10)
    outbox.mark_failed(conn, claimed.alert_id, owner="t", error="HTTP 400", next_attempt_at=None)
    other = next(a["alert_id"] for a in outbox.list_alerts(conn) if a["alert_id"] != claimed.alert_id)
    outbox.mark_delivered(conn, other)
    feedback.record_feedback(conn, other, {"outcome": "overridden", "overrideReason": {"code": "already-known"},
                                           "outcomeTimestamp": "2025-03-02T08:00:00Z"})
    yield {"dead": claimed.alert_id, "delivered": other}
    conn.close()


def test_list_show_dead_retry_report(home, run_cli):
    listed = run_cli("alerts", "list")
    assert listed.returncode == 0 and home["dead"] in listed.stdout and home["delivered"] in listed.stdout
    assert all(line.endswith("elderly-hospitalisation") or "last_error=" in line for line in listed.stdout.splitlines())
    dead = run_cli("alerts", "dead")
    assert home["dead"] in dead.stdout and "HTTP 400" in dead.stdout and home["delivered"] not in dead.stdout
    shown = json.loads(run_cli("alerts", "show", home["delivered"]).stdout)
    assert shown["status"] == "delivered" and shown["payload"]["uuid"] == home["delivered"]
    assert shown["problems"] == ["elderly-hospitalisation"]
    retried = run_cli("alerts", "retry", home["dead"])
    assert retried.returncode == 0 and "dead -> pending" in retried.stdout
    report = run_cli("alerts", "report")
    assert "elderly-hospitalisation: sent 2, delivered 1" in report.stdout and "already-known: 1" in report.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("alerts", "show", "no-such-id"), "error: no alert with id no-such-id"),
        (("alerts", "list", "--status", "lost"), "error: unknown alert status 'lost'"),
        (("alerts", "dispatch", "--once", "--webhook", "http://127.0.0.1:9/a", "--lease", "1", "--timeout", "5"),
         "error: dispatch config: "),
        (("crm-receiver", "--port", "9", "--mode", "sideways"), "error: unknown receiver mode"),
        (("alerts", "dispatch", "--once", "--webhook", "http://crm.example.fi/alerts"),
         "error: the CRM webhook (SOTE_RISK_CRM_WEBHOOK_URL or --webhook) must be an https URL"),
    ],
)
def test_errors_are_one_line(home, run_cli, args, message):
    result = run_cli(*args)
    assert result.returncode == 2 and result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_an_outbox_of_a_newer_version_is_one_line(tmp_path, run_cli):
    import sqlite3

    path = tmp_path / "newer.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 9")
    result = run_cli("alerts", "list", "--db", str(path))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(f"error: outbox {path} has schema version 9, newer than this sote-risk knows (3)")


def test_dispatch_without_a_webhook_says_which_variable(home, run_cli, monkeypatch):
    monkeypatch.delenv("SOTE_RISK_CRM_WEBHOOK_URL", raising=False)
    result = run_cli("alerts", "dispatch", "--once")
    assert result.returncode == 2 and "SOTE_RISK_CRM_WEBHOOK_URL" in result.stderr


def _kill_every_pending(conn):
    while (claimed := outbox.claim_next(conn, owner="t", now=1e12, lease_seconds=10)) is not None:
        outbox.mark_failed(conn, claimed.alert_id, owner="t", error="HTTP 400", next_attempt_at=None)


def test_retry_all_dead_with_problem_and_date_filters(home, run_cli):
    """Issue 16, item 2: after an outage the operator revives every dead letter in one command,
    or those of one problem or one index date, instead of one id at a time."""
    from _alerts_helpers import record_many, scores_of

    conn = outbox.connect()
    other = "elderly-homecare_failure"
    record_many(conn, scores_of((11, other, 0.9), (12, "elderly-hospitalisation", 0.9)))
    record_many(conn, scores_of((13, other, 0.9)))
    record_many(conn, scores_of((14, other, 0.9), as_of="2025-04-01"), today=__import__("datetime").date(2025, 4, 1))
    ids = {a["subject_id"]: a["alert_id"] for a in outbox.list_alerts(conn) if a["subject_id"] > 10}
    _kill_every_pending(conn)
    assert outbox.status_counts(conn)["dead"] == 5  # the fixture's one and these four

    by_problem = run_cli("alerts", "retry", "--all-dead", "--problem", other, "--as-of", "2025-03-01")
    assert by_problem.returncode == 0, by_problem.stderr
    assert by_problem.stdout.startswith("2 dead alerts -> pending")
    assert {a["alert_id"] for a in outbox.list_alerts(conn, status="pending")} == {ids[11], ids[13]}
    everything = run_cli("alerts", "retry", "--all-dead")
    assert everything.returncode == 0 and everything.stdout.startswith("3 dead alerts -> pending")
    assert outbox.status_counts(conn).get("dead", 0) == 0
    assert run_cli("alerts", "retry", "--all-dead").stdout.startswith("0 dead alerts -> pending")
    conn.close()


@pytest.mark.parametrize("args", [(), ("some-id", "--all-dead"), ("some-id", "--problem", "x"), ("--problem", "x")])
def test_retry_needs_one_id_or_all_dead(home, run_cli, args):
    result = run_cli("alerts", "retry", *args)
    assert result.returncode == 2 and result.stderr.startswith("error: ")
    assert "--all-dead" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_report_prints_no_terminal_escapes_from_crm_text(home, run_cli):
    """Issue 16, item 9: a verdict stored before text was cleaned still reaches the terminal clean."""
    conn = outbox.connect()
    conn.execute("INSERT INTO feedback (alert_id, outcome, override_code, override_display, outcome_timestamp, received)"
                 " VALUES (?, 'overridden', ?, ?, '2025-03-03T08:00:00Z', '2025-03-03T08:00:01Z')",
                 (home["delivered"], "x\x1b]0;owned\x07", "\x1b[2J\x1b[1;1Hfine\r\nforged line\u202e"))
    conn.close()
    printed = run_cli("alerts", "report").stdout
    assert "override x (fine forged line): 1" in printed
    assert not any(ord(ch) < 32 and ch != "\n" or 0x7f <= ord(ch) < 0xa0 or ch == "\u202e" for ch in printed)
