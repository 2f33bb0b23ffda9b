"""The outbox: deterministic card ids, scores and cards in one transaction, one card per customer
naming each problem, idempotent re-runs, the customer's cool-down, the capacity queue of cards
across days, leases and retries, and the migration of a version-1 outbox."""

import json
import sqlite3
from datetime import date, datetime

import pandas as pd
import pytest

from alerts import outbox
from alerts.policy import AlertPolicy
from alerts.cycle import release_waiting, run_alert_cycle
from _alerts_helpers import PROBLEM, RUN, card_for, record, record_many, score_frame, scores_of

ACUTE, DEPRESSION, HOMECARE = "acute-hospitalisation", "depression-hospitalisation", "elderly-homecare_failure"


@pytest.fixture()
def conn(tmp_path):
    c = outbox.connect(tmp_path / "outbox.db")
    yield c
    c.close()


def test_wal_mode_and_busy_timeout(conn):
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == outbox.BUSY_TIMEOUT_MS


def test_card_id_is_deterministic_per_customer_and_index_time():
    a = outbox.card_id(12, pd.Timestamp("2025-03-01"))
    assert a == outbox.card_id(12, datetime(2025, 3, 1)) == outbox.card_id(12, "2025-03-01T00:00:00")
    assert a == outbox.card_id(12, date(2025, 3, 1))
    assert a != outbox.card_id(13, date(2025, 3, 1))
    assert a != outbox.card_id(12, date(2025, 4, 1))
    assert not hasattr(outbox, "alert_id_for")  # an id per problem would mean a card per problem


def test_rerunning_the_same_scores_creates_nothing_new(conn):
    first = record(conn, [1, 2, 3])
    assert (first.scores_written, first.alerts_sent) == (3, 3)
    again = record(conn, [1, 2, 3])
    assert (again.scores_written, again.already_recorded, again.alerts_sent, again.alerts_queued) == (0, 3, 0, 0)
    assert conn.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 3
    assert conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 3


def test_low_level_record_is_idempotent_and_rejects_cards_without_their_scores(conn):
    march = datetime(2025, 3, 1)
    s = outbox.ScoreRecord(5, PROBLEM, march, 0.7, "very_high", "m", "p", "r", "Imatra")
    t = outbox.ScoreRecord(5, ACUTE, march, 0.8, "very_high", "m", "p", "r", "Imatra")
    a = outbox.AlertRecord(5, march, [outbox.CardProblem(ACUTE, 0.8, "very_high"), outbox.CardProblem(PROBLEM, 0.7, "very_high")],
                           {"uuid": "x"}, "Imatra")
    for _ in range(2):
        outbox.record_scores_and_alerts(conn, [s, t], [a], now=0.0, today=date(2025, 3, 1))
    assert outbox.status_counts(conn) == {"pending": 1}
    assert [(p["rank"], p["problem"]) for p in outbox.card_problems(conn, a.alert_id)] == [(1, ACUTE), (2, PROBLEM)]
    with pytest.raises(ValueError, match="without their scores"):
        outbox.record_scores_and_alerts(conn, [s], [a], now=0.0, today=date(2025, 3, 1))  # ACUTE's score missing
    with pytest.raises(ValueError, match="ordered by risk"):
        outbox.AlertRecord(5, march, [outbox.CardProblem(PROBLEM, 0.7, "very_high"), outbox.CardProblem(ACUTE, 0.8, "very_high")],
                           {"uuid": "x"})
    with pytest.raises(ValueError, match="names no problem"):
        outbox.AlertRecord(5, march, [], {"uuid": "x"})


def test_score_and_alert_are_one_transaction(conn):
    """A failure while building alerts leaves neither scores nor alerts behind."""

    def broken_card(rows):
        if rows["subject_id"].iloc[0] == 3:
            raise RuntimeError("explainer failed")
        return card_for(rows)

    with pytest.raises(RuntimeError):
        run_alert_cycle(conn, score_frame([1, 2, 3]), AlertPolicy(threshold=0.2), RUN, broken_card, today=date(2025, 3, 1))
    assert conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 0


def test_card_uuid_must_be_the_card_id(conn):
    with pytest.raises(ValueError, match="uuid must be the card id"):
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


# --- one card per customer ------------------------------------------------------------------------


def test_a_customer_alerted_in_several_problems_gets_one_card_naming_each(conn):
    scores = scores_of((1, PROBLEM, 0.4), (1, ACUTE, 0.6), (1, DEPRESSION, 0.1), (2, ACUTE, 0.3), (3, DEPRESSION, 0.05))
    result = record_many(conn, scores)
    assert (result.scores_written, result.alerts_sent, result.alerts_queued) == (5, 2, 0)
    # every score is recorded per problem; one card per customer whose scores alert
    assert conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 5
    cards = {a["subject_id"]: a for a in outbox.list_alerts(conn)}
    assert sorted(cards) == [1, 2]
    assert cards[1]["problems"] == [ACUTE, PROBLEM]  # highest risk first; DEPRESSION is below its level
    assert (cards[1]["problem"], cards[1]["probability"], cards[1]["n_problems"]) == (ACUTE, 0.6, 2)
    assert cards[1]["alert_id"] == outbox.card_id(1, date(2025, 3, 1))
    card = outbox.get_alert(conn, cards[1]["alert_id"])["payload"]
    assert card["uuid"] == cards[1]["alert_id"]
    assert [r["problem"] for r in card["extension"]["risks"]] == [ACUTE, PROBLEM]
    assert card["summary"].endswith("(60.0%) and 1 more risk")
    recorded = outbox.card_problems(conn, cards[1]["alert_id"])
    assert [(p["rank"], p["problem"], p["probability"], p["decision"]) for p in recorded] == [
        (1, ACUTE, 0.6, "alert"), (2, PROBLEM, 0.4, "alert")]
    decided = result.decisions.set_index(["subject_id", "problem"])
    assert decided.loc[(1, DEPRESSION), "decision"] == "below_level" and decided.loc[(1, DEPRESSION), "card"] == -1
    assert decided.loc[(1, ACUTE), "card"] == decided.loc[(1, PROBLEM), "card"] != decided.loc[(2, ACUTE), "card"]
    # a re-run of the date writes nothing
    again = record_many(conn, scores)
    assert (again.scores_written, again.already_recorded, again.alerts_sent, again.alerts_queued) == (0, 5, 0, 0)
    assert len(outbox.list_alerts(conn)) == 2 and outbox.problem_counts(conn) == {ACUTE: 2, PROBLEM: 1}


def cycle(conn, rows, as_of, policies, today=None):
    scores = scores_of(*rows, as_of=as_of)
    problems = sorted(set(scores["problem"]))
    return run_alert_cycle(conn, scores, {p: policies[p] for p in problems}, {p: RUN for p in problems}, card_for,
                           today=today or pd.Timestamp(as_of).date())


def carded_customers(result) -> dict[int, list[str]]:
    return {int(c.subject_id): list(c.problems) for c in result.cards.itertuples()}


def test_the_cool_down_is_the_customers_whichever_problem_alerted(conn):
    """A customer carded in any problem is not carded again within the cool-down unless one of the
    problems' bands is higher than it was at that card (a problem not scored then counts as risen)."""
    level = AlertPolicy(threshold=0.2, cooldown_days=60)
    policies = {PROBLEM: level, DEPRESSION: level, ACUTE: AlertPolicy(threshold=0.3, cooldown_days=60)}
    february = cycle(conn, [
        (1, PROBLEM, 0.30),
        (2, PROBLEM, 0.30), (2, DEPRESSION, 0.27),
        (3, PROBLEM, 0.30), (3, ACUTE, 0.26),  # acute is high but under its own level (0.3)
        (4, PROBLEM, 0.30), (4, ACUTE, 0.15),
        (6, PROBLEM, 0.30),
    ], "2025-02-01", policies)
    assert carded_customers(february) == {1: [PROBLEM], 2: [PROBLEM, DEPRESSION], 3: [PROBLEM], 4: [PROBLEM], 6: [PROBLEM]}
    march = cycle(conn, [
        (1, PROBLEM, 0.35),  # same band: cool-down
        (2, PROBLEM, 0.30), (2, DEPRESSION, 0.30),  # both the same bands: cool-down
        (3, PROBLEM, 0.10), (3, ACUTE, 0.32),  # acute now at its level, but in the same band as at the card: cool-down
        (4, PROBLEM, 0.30), (4, ACUTE, 0.55),  # acute rose (moderate -> very high): a card, naming both
        (5, PROBLEM, 0.30),  # never carded
        (6, PROBLEM, 0.30), (6, DEPRESSION, 0.30),  # depression was not scored at the card: a new risk
    ], "2025-03-01", policies)
    assert carded_customers(march) == {4: [ACUTE, PROBLEM], 5: [PROBLEM], 6: [DEPRESSION, PROBLEM]}
    decided = march.decisions.set_index(["subject_id", "problem"])["decision"]
    assert decided[(3, ACUTE)] == decided[(1, PROBLEM)] == decided[(2, DEPRESSION)] == "cooldown"
    assert [(p["problem"], p["decision"]) for p in outbox.card_problems(conn, outbox.card_id(4, date(2025, 3, 1)))] == [
        (ACUTE, "alert"), (PROBLEM, "cooldown")]  # still at its level: named, so the card shows the whole picture
    # the customers' cool-down counts from their last card: 1 (Feb 1) is free again 60 days on; 4 (Mar 1) is not
    april = cycle(conn, [(1, PROBLEM, 0.35), (4, PROBLEM, 0.30), (4, ACUTE, 0.55)], "2025-04-02", policies)
    assert carded_customers(april) == {1: [PROBLEM]}
    # one card per customer and date, whatever the number of problems
    counts = conn.execute("SELECT COUNT(*), COUNT(DISTINCT subject_id || as_of) FROM alerts").fetchone()
    assert counts[0] == counts[1] == 5 + 3 + 1


def test_capacity_counts_customers_not_problem_alerts(conn):
    policies = {PROBLEM: AlertPolicy(threshold=0.2, capacity_per_municipality_per_day=2),
                ACUTE: AlertPolicy(threshold=0.2, capacity_per_municipality_per_day=5),
                DEPRESSION: AlertPolicy(threshold=0.2)}  # one team takes every card: the tightest budget, 2
    day1 = cycle(conn, [
        (1, PROBLEM, 0.9), (1, ACUTE, 0.8), (1, DEPRESSION, 0.7),  # one customer, three problems: one card
        (2, ACUTE, 0.5), (3, DEPRESSION, 0.6),
        (4, PROBLEM, 0.4, "Lemi"), (4, ACUTE, 0.3, "Lemi"),
    ], "2025-03-01", policies)
    assert (day1.alerts_sent, day1.alerts_queued) == (3, 1)
    sent = {a["subject_id"]: a["municipality"] for a in outbox.list_alerts(conn, status="pending")}
    assert sent == {1: "Imatra", 3: "Imatra", 4: "Lemi"}  # Imatra's two highest-risk customers, not 2 of customer 1's 3 alerts
    assert [a["subject_id"] for a in outbox.list_alerts(conn, status="queued")] == [2]
    assert outbox.saved_budget(conn) == outbox.Budget(capacity=2, queue_max_days=7)
    assert release_waiting(conn, today=date(2025, 3, 1)) == {"released": 0, "dropped": 0}
    assert release_waiting(conn, today=date(2025, 3, 2)) == {"released": 1, "dropped": 0}
    assert outbox.status_counts(conn) == {"pending": 4}


def test_a_problem_scored_later_on_a_carded_date_does_not_make_a_second_card(conn):
    first = record_many(conn, scores_of((1, PROBLEM, 0.4)))
    later = record_many(conn, scores_of((1, ACUTE, 0.9), (2, ACUTE, 0.9)))  # e.g. a problem served from today on
    assert first.alerts_sent == 1 and carded_customers(later) == {2: [ACUTE]}
    assert later.decisions.set_index(["subject_id", "problem"]).loc[(1, ACUTE), "decision"] == "already_carded"
    assert later.scores_written == 2 and len(outbox.list_alerts(conn)) == 2


def test_one_cycle_refuses_two_index_times_of_a_customer_and_missing_policies(conn):
    two_dates = pd.concat([scores_of((1, PROBLEM, 0.4)), scores_of((1, ACUTE, 0.4), as_of="2025-04-01")])
    with pytest.raises(ValueError, match="one index time per customer"):
        record_many(conn, two_dates)
    with pytest.raises(ValueError, match="policies: none for problem"):
        run_alert_cycle(conn, scores_of((1, PROBLEM, 0.4), (1, ACUTE, 0.4)), {PROBLEM: AlertPolicy(threshold=0.2)},
                        {PROBLEM: RUN, ACUTE: RUN}, card_for, today=date(2025, 3, 1))
    with pytest.raises(ValueError, match="give one per problem"):
        run_alert_cycle(conn, scores_of((1, PROBLEM, 0.4), (1, ACUTE, 0.4)), AlertPolicy(threshold=0.2), RUN, card_for,
                        today=date(2025, 3, 1))
    assert outbox.status_counts(conn) == {}


# --- schema versions ------------------------------------------------------------------------------

# The version-1 outbox as sote-risk wrote it before cards (alerts/outbox.py at db25ddb): one
# alert per (subject_id, problem, as_of).
V1_SCHEMA = """
CREATE TABLE scores (
    subject_id INTEGER NOT NULL, problem TEXT NOT NULL, as_of TEXT NOT NULL,
    probability REAL NOT NULL CHECK (probability >= 0 AND probability <= 1), band TEXT NOT NULL,
    model_version TEXT NOT NULL, pipeline_version TEXT NOT NULL, run_id TEXT NOT NULL, municipality TEXT,
    created TEXT NOT NULL, PRIMARY KEY (subject_id, problem, as_of));
CREATE TABLE alerts (
    alert_id TEXT PRIMARY KEY, subject_id INTEGER NOT NULL, problem TEXT NOT NULL, as_of TEXT NOT NULL,
    municipality TEXT, probability REAL NOT NULL, band TEXT NOT NULL, trigger TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'pending', 'delivered', 'dead', 'superseded', 'expired')),
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL, due_since REAL, lease_owner TEXT, lease_until REAL,
    last_error TEXT, created TEXT NOT NULL, queued_on TEXT, released_on TEXT, delivered_at TEXT, payload TEXT NOT NULL,
    UNIQUE (subject_id, problem, as_of),
    FOREIGN KEY (subject_id, problem, as_of) REFERENCES scores (subject_id, problem, as_of));
CREATE INDEX alerts_due ON alerts (status, next_attempt_at);
CREATE INDEX alerts_subject ON alerts (problem, subject_id, as_of);
CREATE TABLE feedback (
    feedback_id INTEGER PRIMARY KEY, alert_id TEXT NOT NULL REFERENCES alerts (alert_id),
    outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'overridden')), override_code TEXT, override_display TEXT,
    outcome_timestamp TEXT NOT NULL, received TEXT NOT NULL, UNIQUE (alert_id, outcome, outcome_timestamp));
CREATE TABLE policies (problem TEXT PRIMARY KEY, policy TEXT NOT NULL, updated TEXT NOT NULL);
PRAGMA user_version = 1;
"""


def version_1_outbox(path) -> dict[tuple[int, str], str]:
    """A version-1 outbox with customer 1 alerted twice at one date (two problems: two alerts, as
    version 1 did), one of them delivered and answered by the CRM; returns the old alert ids."""
    import uuid

    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    march = "2025-03-01T00:00:00"
    rows = [(1, PROBLEM, 0.30, "high", "delivered"), (1, ACUTE, 0.45, "high", "pending"), (2, PROBLEM, 0.25, "high", "queued")]
    ids = {}
    for subject, problem, p, band, status in rows:
        alert_id = str(uuid.uuid5(outbox.ALERT_NAMESPACE, f"{subject}|{problem}|{march}"))  # version 1's ids
        ids[subject, problem] = alert_id
        db.execute("INSERT INTO scores VALUES (?,?,?,?,?,?,?,?,?,?)", (subject, problem, march, p, band, "3", "f", "r", "Imatra", "t"))
        db.execute("INSERT INTO alerts (alert_id, subject_id, problem, as_of, municipality, probability, band, trigger, status,"
                   " created, queued_on, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                   (alert_id, subject, problem, march, "Imatra", p, band, "level", status, "t",
                    "2025-03-01" if status == "queued" else None, json.dumps({"uuid": alert_id})))
    db.execute("INSERT INTO scores VALUES (?,?,?,?,?,?,?,?,?,?)", (3, PROBLEM, march, 0.05, "low", "3", "f", "r", "Imatra", "t"))
    db.execute("INSERT INTO feedback (alert_id, outcome, override_code, outcome_timestamp, received) VALUES (?,?,?,?,?)",
               (ids[1, PROBLEM], "overridden", "already-known", "2025-03-02T08:00:00+00:00", "t"))
    db.execute("INSERT INTO policies VALUES (?,?,?)", (PROBLEM, AlertPolicy(threshold=0.2).model_dump_json(), "t"))
    db.commit()
    db.close()
    return ids


def test_a_version_1_outbox_is_migrated_keeping_every_alert_its_id_state_and_feedback(tmp_path):
    path = tmp_path / "old" / "outbox.db"
    path.parent.mkdir()
    ids = version_1_outbox(path)
    conn = outbox.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == outbox.SCHEMA_VERSION == 3
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 4
        cards = {a["alert_id"]: a for a in outbox.list_alerts(conn)}
        assert set(cards) == set(ids.values())  # the CRM and its feedback know these ids
        for (subject, problem), alert_id in ids.items():
            card = outbox.get_alert(conn, alert_id)
            assert (card["subject_id"], card["problems"], card["payload"]) == (subject, [problem], {"uuid": alert_id})
        assert {a["status"] for a in cards.values()} == {"delivered", "pending", "queued"}
        [elderly] = [r for r in __import__("alerts.feedback", fromlist=["report"]).report(conn) if r.problem == PROBLEM]
        assert (elderly.sent, elderly.overridden, elderly.queued) == (1, 1, 1)
        # the migrated alerts are the customers' last cards: customer 1 is in its cool-down in April
        april = run_alert_cycle(conn, scores_of((1, PROBLEM, 0.3), as_of="2025-04-01"), AlertPolicy(threshold=0.2, cooldown_days=60),
                                RUN, card_for, today=date(2025, 4, 1))
        assert april.decisions["decision"].tolist() == ["cooldown"] and april.alerts_sent == 0
    finally:
        conn.close()
    again = outbox.connect(path)  # a second open changes nothing
    assert len(outbox.list_alerts(again)) == 3 and again.execute("PRAGMA user_version").fetchone()[0] == 3
    again.close()


@pytest.mark.parametrize("make, message", [
    (lambda db: db.execute("PRAGMA user_version = 7"), r"has schema version 7, newer than this sote-risk knows \(3\)"),
    (lambda db: db.execute("CREATE TABLE patients (name TEXT)"), r"is not a sote-risk outbox \(no schema version; tables patients\)"),
    (lambda db: (db.execute("CREATE TABLE alerts (x TEXT)"), db.execute("PRAGMA user_version = 1")),
     "says schema version 1 but its tables are not the version-1 outbox"),
], ids=["newer", "foreign", "damaged"])
def test_an_outbox_this_version_cannot_use_is_refused_with_one_line_and_left_alone(tmp_path, make, message):
    path = tmp_path / "outbox.db"
    db = sqlite3.connect(path)
    make(db)
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(outbox.OutboxError, match=rf"^outbox {path} {message}") as refused:
        outbox.connect(path)
    assert "\n" not in str(refused.value)
    assert path.read_bytes() == before


def test_a_file_that_is_not_a_database_is_refused_with_one_line(tmp_path):
    path = tmp_path / "outbox.db"
    path.write_text("not sqlite at all, just some text that is long enough to fill a header of a database\n" * 3)
    with pytest.raises(outbox.OutboxError, match=rf"^outbox {path}: file is not a database$"):
        outbox.connect(path)
