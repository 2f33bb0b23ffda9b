"""The outbox: deterministic ids, scores and alerts in one transaction, idempotent re-runs, the
capacity queue across days, leases and retries."""

import sqlite3
from datetime import date, datetime

import pandas as pd
import pytest

from alerts import outbox
from alerts.policy import AlertPolicy
from alerts.cycle import release_waiting, run_alert_cycle
from _alerts_helpers import PROBLEM, RUN, card_for, record, score_frame


@pytest.fixture()
def conn(tmp_path):
    c = outbox.connect(tmp_path / "outbox.db")
    yield c
    c.close()


def test_wal_mode_and_busy_timeout(conn):
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == outbox.BUSY_TIMEOUT_MS


def test_alert_id_is_deterministic_and_as_of_normalised():
    a = outbox.alert_id_for(12, PROBLEM, pd.Timestamp("2025-03-01"))
    assert a == outbox.alert_id_for(12, PROBLEM, datetime(2025, 3, 1)) == outbox.alert_id_for(12, PROBLEM, "2025-03-01T00:00:00")
    assert a == outbox.alert_id_for(12, PROBLEM, date(2025, 3, 1))
    assert a != outbox.alert_id_for(13, PROBLEM, date(2025, 3, 1))
    assert a != outbox.alert_id_for(12, "acute-hospitalisation", date(2025, 3, 1))


def test_rerunning_the_same_scores_creates_nothing_new(conn):
    first = record(conn, [1, 2, 3])
    assert (first.scores_written, first.alerts_sent) == (3, 3)
    again = record(conn, [1, 2, 3])
    assert (again.scores_written, again.already_recorded, again.alerts_sent, again.alerts_queued) == (0, 3, 0, 0)
    assert conn.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 3
    assert conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 3


def test_low_level_record_is_idempotent_and_rejects_alerts_without_their_score(conn):
    s = outbox.ScoreRecord(5, PROBLEM, datetime(2025, 3, 1), 0.7, "very_high", "m", "p", "r", "Imatra")
    a = outbox.AlertRecord(5, PROBLEM, datetime(2025, 3, 1), 0.7, "very_high", {"uuid": "x"}, "Imatra")
    for _ in range(2):
        outbox.record_scores_and_alerts(conn, [s], [a], now=0.0, today=date(2025, 3, 1))
    assert outbox.status_counts(conn) == {"pending": 1}
    with pytest.raises(ValueError, match="without their score"):
        outbox.record_scores_and_alerts(conn, [], [a], now=0.0, today=date(2025, 3, 1))


def test_score_and_alert_are_one_transaction(conn):
    """A failure while building alerts leaves neither scores nor alerts behind."""

    def broken_card(row):
        if row["subject_id"] == 3:
            raise RuntimeError("explainer failed")
        return card_for(row)

    with pytest.raises(RuntimeError):
        run_alert_cycle(conn, score_frame([1, 2, 3]), AlertPolicy(threshold=0.2), RUN, broken_card, today=date(2025, 3, 1))
    assert conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 0


def test_card_uuid_must_be_the_alert_id(conn):
    with pytest.raises(ValueError, match="uuid must be the alert id"):
        run_alert_cycle(conn, score_frame([1]), AlertPolicy(threshold=0.2), RUN, lambda r: {"uuid": "x"}, today=date(2025, 3, 1))


def test_cooldown_and_band_rise_use_the_stored_history(conn):
    policy = AlertPolicy(min_band="high", cooldown_days=60)
    record(conn, [1, 2], probability=0.3, policy=policy, as_of="2025-02-01")  # both alert (high)
    march = record(conn, [1, 2], probability=[0.3, 0.6], policy=policy, as_of="2025-03-01")
    assert march.decisions.set_index("subject_id")["decision"].to_dict() == {1: "cooldown", 2: "alert"}


def test_capacity_queue_waits_for_the_next_day_then_drains(conn):
    policy = AlertPolicy(threshold=0.2, capacity_per_municipality_per_day=2)
    day1 = record(conn, [1, 2, 3, 4, 5], probability=[0.3, 0.9, 0.5, 0.7, 0.4], policy=policy, today=date(2025, 3, 1))
    assert (day1.alerts_sent, day1.alerts_queued) == (2, 3)
    sent = {r["subject_id"] for r in outbox.list_alerts(conn, status="pending")}
    assert sent == {2, 4}  # the two highest risks
    # same day: nothing more can go
    assert release_waiting(conn, today=date(2025, 3, 1)) == {"released": 0, "dropped": 0}
    # next day: the next two highest (0.5, 0.4), then the last one the day after
    assert release_waiting(conn, today=date(2025, 3, 2))["released"] == 2
    assert {r["subject_id"] for r in outbox.list_alerts(conn, status="pending")} == {2, 4, 3, 5}
    assert release_waiting(conn, today=date(2025, 3, 3))["released"] == 1
    assert outbox.status_counts(conn) == {"pending": 5}


def test_waiting_alerts_compete_with_new_ones_and_are_superseded_by_newer_scores(conn):
    policy = AlertPolicy(threshold=0.2, capacity_per_municipality_per_day=1, cooldown_days=0)
    record(conn, [1, 2, 3], probability=[0.9, 0.5, 0.4], policy=policy, today=date(2025, 3, 1), as_of="2025-03-01")
    # next day, new scores for 3 (newer as_of: supersedes its waiting alert) and 4 (higher than 2)
    day2 = record(conn, [3, 4], probability=[0.3, 0.8], policy=policy, today=date(2025, 3, 2), as_of="2025-03-02")
    assert day2.queue_dropped == 1
    statuses = {(r["subject_id"], r["as_of"][:10]): r["status"] for r in outbox.list_alerts(conn, limit=100)}
    assert statuses == {
        (1, "2025-03-01"): "pending", (2, "2025-03-01"): "queued", (3, "2025-03-01"): "superseded",
        (4, "2025-03-02"): "pending", (3, "2025-03-02"): "queued",
    }


def test_waiting_alerts_expire(conn):
    policy = AlertPolicy(threshold=0.2, capacity_per_municipality_per_day=1, queue_max_days=2)
    record(conn, [1, 2], policy=policy, today=date(2025, 3, 1))
    # the dispatcher was not running for days; the queued alert is too old by then
    assert release_waiting(conn, today=date(2025, 3, 4)) == {"released": 0, "dropped": 1}
    assert outbox.status_counts(conn) == {"pending": 1, "expired": 1}


def test_lease_prevents_a_second_claim_until_it_expires(conn):
    record(conn, [1])
    first = outbox.claim_next(conn, owner="a", now=1e10, lease_seconds=30)
    assert first is not None and first.attempts == 1
    assert outbox.claim_next(conn, owner="b", now=1e10 + 29, lease_seconds=30) is None
    second = outbox.claim_next(conn, owner="b", now=1e10 + 31, lease_seconds=30)
    assert second.alert_id == first.alert_id and second.attempts == 2
    # the first owner's lease is gone: its failure report must not touch the alert
    outbox.mark_failed(conn, first.alert_id, owner="a", error="late", next_attempt_at=None)
    assert outbox.get_alert(conn, first.alert_id)["status"] == "pending"
    outbox.mark_delivered(conn, first.alert_id)
    assert outbox.get_alert(conn, first.alert_id)["status"] == "delivered"


def test_retry_resets_a_dead_alert_and_refuses_others(conn):
    record(conn, [1])
    claimed = outbox.claim_next(conn, owner="a", now=1e10, lease_seconds=30)
    outbox.mark_failed(conn, claimed.alert_id, owner="a", error="HTTP 400", next_attempt_at=None)
    assert outbox.get_alert(conn, claimed.alert_id)["last_error"] == "HTTP 400"
    assert outbox.retry_alert(conn, claimed.alert_id, now=1e10) == "dead"
    alert = outbox.get_alert(conn, claimed.alert_id)
    assert (alert["status"], alert["attempts"]) == ("pending", 0)
    outbox.mark_delivered(conn, claimed.alert_id)
    with pytest.raises(outbox.SoteRiskError, match="delivered"):
        outbox.retry_alert(conn, claimed.alert_id, now=1e10)
    with pytest.raises(outbox.AlertNotFound, match="no-such-id"):
        outbox.retry_alert(conn, "no-such-id", now=1e10)


def test_outbox_rejects_impossible_rows(conn):
    with pytest.raises(sqlite3.IntegrityError):
        outbox.record_scores_and_alerts(
            conn, [outbox.ScoreRecord(1, PROBLEM, datetime(2025, 3, 1), 1.5, "high", "m", "p", "r")], [],
            now=0.0, today=date(2025, 3, 1))
