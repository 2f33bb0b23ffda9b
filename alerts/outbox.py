"""The CRM outbox: every score, every alert and its delivery state, and feedback, in SQLite.

Why an outbox: an alert is written in the same transaction as the score that caused it, so a
crash can never leave a score without its alert or an alert without its score; delivery to the
CRM happens afterwards from this table (alerts/dispatcher.py), with retries.

Identity: an alert's id is a uuid5 of (subject_id, problem, as_of), so re-running the same
index date gives the same ids and inserts nothing new (scores are unique on the same key).

Alert statuses:
    queued     over today's capacity budget; waits (alerts/rules.py says what that means)
    pending    to be delivered (next_attempt_at says when; a lease says who is sending it)
    delivered  the CRM answered 2xx
    dead       gave up (max attempts, max age, or the CRM rejected the body); `alerts retry`
    superseded a newer score of the same customer and problem arrived while it was queued
    expired    waited in the queue longer than the policy allows

Times: machine-compared times (next_attempt_at, lease_until, due_since) are epoch seconds;
times for people (created, delivered_at) are ISO 8601 UTC; days (queued_on, released_on) are
ISO dates of the region's calendar day.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Literal

from base.settings import home
from base.errors import SoteRiskError

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000
# Fixed namespace: alert ids must be the same on every machine and every re-run.
ALERT_NAMESPACE = uuid.UUID("6f1c2d8e-5b7a-4c1e-9a3d-2e4b6c8d0f11")

STATUSES: tuple[str, ...] = ("queued", "pending", "delivered", "dead", "superseded", "expired")
SENT_STATUSES = ("pending", "delivered", "dead")  # released to the CRM; these count for cool-down

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scores (
    subject_id       INTEGER NOT NULL,
    problem          TEXT    NOT NULL,
    as_of            TEXT    NOT NULL,
    probability      REAL    NOT NULL CHECK (probability >= 0 AND probability <= 1),
    band             TEXT    NOT NULL,
    model_version    TEXT    NOT NULL,
    pipeline_version TEXT    NOT NULL,
    run_id           TEXT    NOT NULL,
    municipality     TEXT,
    created          TEXT    NOT NULL,
    PRIMARY KEY (subject_id, problem, as_of)
);
CREATE TABLE IF NOT EXISTS alerts (
    alert_id        TEXT PRIMARY KEY,
    subject_id      INTEGER NOT NULL,
    problem         TEXT    NOT NULL,
    as_of           TEXT    NOT NULL,
    municipality    TEXT,
    probability     REAL    NOT NULL,
    band            TEXT    NOT NULL,
    trigger         TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN
                        ('queued', 'pending', 'delivered', 'dead', 'superseded', 'expired')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    due_since       REAL,
    lease_owner     TEXT,
    lease_until     REAL,
    last_error      TEXT,
    created         TEXT    NOT NULL,
    queued_on       TEXT,
    released_on     TEXT,
    delivered_at    TEXT,
    payload         TEXT    NOT NULL,
    UNIQUE (subject_id, problem, as_of),
    FOREIGN KEY (subject_id, problem, as_of) REFERENCES scores (subject_id, problem, as_of)
);
CREATE INDEX IF NOT EXISTS alerts_due ON alerts (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS alerts_subject ON alerts (problem, subject_id, as_of);
CREATE TABLE IF NOT EXISTS feedback (
    feedback_id       INTEGER PRIMARY KEY,
    alert_id          TEXT NOT NULL REFERENCES alerts (alert_id),
    outcome           TEXT NOT NULL CHECK (outcome IN ('accepted', 'overridden')),
    override_code     TEXT,
    override_display  TEXT,
    outcome_timestamp TEXT NOT NULL,
    received          TEXT NOT NULL,
    UNIQUE (alert_id, outcome, outcome_timestamp)
);
CREATE TABLE IF NOT EXISTS policies (
    problem TEXT PRIMARY KEY,
    policy  TEXT NOT NULL,
    updated TEXT NOT NULL
);
"""


class AlertNotFound(SoteRiskError):
    """No alert with this id in the outbox."""


# ---------------------------------------------------------------------------------------------
# connection and transactions


def connect(path: Path | str | None = None) -> sqlite3.Connection:
    """Open (creating if needed) the outbox; default home().outbox_db.

    WAL lets dispatchers read while a scoring run writes; the busy timeout makes concurrent
    writers wait instead of failing; synchronous=FULL because a committed alert must survive
    a crash. Autocommit mode: transactions are explicit (write_transaction).
    """
    db = Path(path) if path is not None else home().outbox_db
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
        with write_transaction(conn):
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return conn


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE .. COMMIT (rollback on error); inside an open transaction, just joins it.

    IMMEDIATE takes the write lock up front, so read-then-write steps (claiming an alert,
    reading state and recording alerts) are atomic across processes.
    """
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def utc_iso(moment: datetime | None = None) -> str:
    moment = moment or datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def as_of_key(as_of: Any) -> str:
    """Canonical text of an index time (naive local time, seconds): part of the alert id."""
    if isinstance(as_of, str):
        as_of = datetime.fromisoformat(as_of)
    if hasattr(as_of, "to_pydatetime"):
        as_of = as_of.to_pydatetime()
    if isinstance(as_of, date) and not isinstance(as_of, datetime):
        as_of = datetime(as_of.year, as_of.month, as_of.day)
    if as_of.tzinfo is not None:
        raise ValueError("as_of must be a naive local time (like prediction_time), not tz-aware")
    return as_of.replace(microsecond=0).isoformat(timespec="seconds")


def alert_id_for(subject_id: int, problem: str, as_of: Any) -> str:
    """Deterministic alert id (also the card uuid and the Idempotency-Key)."""
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{int(subject_id)}|{problem}|{as_of_key(as_of)}"))


# ---------------------------------------------------------------------------------------------
# recording scores and alerts


@dataclass(frozen=True)
class ScoreRecord:
    subject_id: int
    problem: str
    as_of: datetime
    probability: float
    band: str
    model_version: str
    pipeline_version: str
    run_id: str
    municipality: str | None = None


@dataclass(frozen=True)
class AlertRecord:
    """An alert to record; `payload` is the card (alerts/cards.py) sent as the webhook body."""

    subject_id: int
    problem: str
    as_of: datetime
    probability: float
    band: str
    payload: dict[str, Any]
    municipality: str | None = None
    trigger: str = "level"
    status: Literal["pending", "queued"] = "pending"

    @property
    def alert_id(self) -> str:
        return alert_id_for(self.subject_id, self.problem, self.as_of)

    @property
    def key(self) -> tuple[int, str, str]:
        return (int(self.subject_id), self.problem, as_of_key(self.as_of))


@dataclass(frozen=True)
class RecordResult:
    scores_written: int
    alerts_written: int
    alert_ids: list[str] = field(default_factory=list)  # ids of alerts newly written


def record_scores_and_alerts(
    conn: sqlite3.Connection,
    scores: Sequence[ScoreRecord],
    alerts: Sequence[AlertRecord],
    *,
    now: float,
    today: date,
) -> RecordResult:
    """Write scores and their alerts in one transaction (or inside the caller's transaction).

    Idempotent: a score or alert whose (subject_id, problem, as_of) is already stored is left
    as it is. Every alert must come with its score in the same call.
    """
    score_keys = {(int(s.subject_id), s.problem, as_of_key(s.as_of)) for s in scores}
    orphans = [a.alert_id for a in alerts if a.key not in score_keys]
    if orphans:
        raise ValueError(f"alerts without their score in the same call: {', '.join(orphans[:5])}")
    created = utc_iso()
    written_ids: list[str] = []
    with write_transaction(conn):
        scores_written = 0
        for s in scores:
            cur = conn.execute(
                "INSERT INTO scores (subject_id, problem, as_of, probability, band, model_version,"
                " pipeline_version, run_id, municipality, created) VALUES (?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT DO NOTHING",
                (int(s.subject_id), s.problem, as_of_key(s.as_of), float(s.probability), s.band,
                 s.model_version, s.pipeline_version, s.run_id, s.municipality, created),
            )
            scores_written += cur.rowcount
        for a in alerts:
            pending = a.status == "pending"
            cur = conn.execute(
                "INSERT INTO alerts (alert_id, subject_id, problem, as_of, municipality, probability,"
                " band, trigger, status, next_attempt_at, due_since, created, queued_on, released_on,"
                " payload) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                (a.alert_id, int(a.subject_id), a.problem, as_of_key(a.as_of), a.municipality,
                 float(a.probability), a.band, a.trigger, a.status,
                 now if pending else None, now if pending else None, created,
                 None if pending else today.isoformat(), today.isoformat() if pending else None,
                 json.dumps(a.payload, sort_keys=True)),
            )
            if cur.rowcount:
                written_ids.append(a.alert_id)
    return RecordResult(scores_written, len(written_ids), written_ids)


def existing_score_keys(conn: sqlite3.Connection, problem: str, keys: Sequence[tuple[int, str]]) -> set[tuple[int, str]]:
    """Which (subject_id, as_of_key) of this problem are already scored (re-run detection)."""
    found: set[tuple[int, str]] = set()
    for subject_id, as_of in keys:
        row = conn.execute(
            "SELECT 1 FROM scores WHERE subject_id=? AND problem=? AND as_of=?", (int(subject_id), problem, as_of)
        ).fetchone()
        if row:
            found.add((int(subject_id), as_of))
    return found


def previous_state(conn: sqlite3.Connection, problem: str, keys: Sequence[tuple[int, str]]) -> list[dict[str, Any]]:
    """Per (subject_id, as_of_key): the band of the previous score and the last sent alert."""
    sent = ",".join(f"'{s}'" for s in SENT_STATUSES)
    rows = []
    for subject_id, as_of in keys:
        last_score = conn.execute(
            "SELECT band FROM scores WHERE subject_id=? AND problem=? AND as_of<? ORDER BY as_of DESC LIMIT 1",
            (int(subject_id), problem, as_of),
        ).fetchone()
        last_alert = conn.execute(
            f"SELECT as_of, band FROM alerts WHERE subject_id=? AND problem=? AND as_of<? AND status IN ({sent})"
            " ORDER BY as_of DESC LIMIT 1",
            (int(subject_id), problem, as_of),
        ).fetchone()
        rows.append({
            "subject_id": int(subject_id),
            "problem": problem,
            "last_band": last_score["band"] if last_score else None,
            "last_alert_as_of": last_alert["as_of"] if last_alert else None,
            "last_alert_band": last_alert["band"] if last_alert else None,
        })
    return rows


# ---------------------------------------------------------------------------------------------
# the capacity queue


def queued_alerts(conn: sqlite3.Connection, problem: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT alert_id, subject_id, problem, as_of, municipality, probability, queued_on"
        " FROM alerts WHERE problem=? AND status='queued'",
        (problem,),
    ).fetchall()
    return [dict(r) | {"queued_on": date.fromisoformat(r["queued_on"])} for r in rows]


def has_queued(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM alerts WHERE status='queued' LIMIT 1").fetchone() is not None


def released_today(conn: sqlite3.Connection, problem: str, today: date) -> dict[str, int]:
    """Alerts of this problem released today, per municipality (counted against capacity)."""
    rows = conn.execute(
        f"SELECT municipality, COUNT(*) AS n FROM alerts WHERE problem=? AND released_on=?"
        f" AND status IN ({','.join(repr(s) for s in SENT_STATUSES)}) GROUP BY municipality",
        (problem, today.isoformat()),
    ).fetchall()
    return {r["municipality"]: int(r["n"]) for r in rows}


def release_queued(conn: sqlite3.Connection, alert_ids: Sequence[str], *, now: float, today: date) -> int:
    """Waiting alerts go out: queued -> pending, due now."""
    n = 0
    with write_transaction(conn):
        for alert_id in alert_ids:
            n += conn.execute(
                "UPDATE alerts SET status='pending', released_on=?, next_attempt_at=?, due_since=?"
                " WHERE alert_id=? AND status='queued'",
                (today.isoformat(), now, now, alert_id),
            ).rowcount
    return n


def drop_queued(conn: sqlite3.Connection, reasons: dict[str, str]) -> int:
    """Waiting alerts leave the queue unsent: alert_id -> 'superseded' | 'expired'."""
    n = 0
    with write_transaction(conn):
        for alert_id, reason in reasons.items():
            if reason not in ("superseded", "expired"):
                raise ValueError(f"drop_queued: unknown reason {reason!r}")
            n += conn.execute(
                "UPDATE alerts SET status=? WHERE alert_id=? AND status='queued'", (reason, alert_id)
            ).rowcount
    return n


def save_policy(conn: sqlite3.Connection, problem: str, policy_json: str) -> None:
    """Remember the policy last applied to a problem, so the dispatcher can drain its queue."""
    with write_transaction(conn):
        conn.execute(
            "INSERT INTO policies (problem, policy, updated) VALUES (?,?,?)"
            " ON CONFLICT (problem) DO UPDATE SET policy=excluded.policy, updated=excluded.updated",
            (problem, policy_json, utc_iso()),
        )


def saved_policies(conn: sqlite3.Connection) -> dict[str, str]:
    return {r["problem"]: r["policy"] for r in conn.execute("SELECT problem, policy FROM policies")}


# ---------------------------------------------------------------------------------------------
# delivery state (used by the dispatcher)


@dataclass(frozen=True)
class ClaimedAlert:
    alert_id: str
    payload: dict[str, Any]
    attempts: int  # including this one
    due_since: float


def claim_next(conn: sqlite3.Connection, *, owner: str, now: float, lease_seconds: float) -> ClaimedAlert | None:
    """Lease the next due pending alert to `owner` (or None when nothing is due).

    The attempt is counted at claim time, so an alert that keeps killing its dispatcher still
    reaches max attempts and goes to the dead letters instead of looping forever.
    """
    with write_transaction(conn):
        row = conn.execute(
            "SELECT alert_id, payload, attempts, due_since FROM alerts WHERE status='pending'"
            " AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?)"
            " ORDER BY next_attempt_at, alert_id LIMIT 1",
            (now, now),
        ).fetchone()
        if row is None:
            return None
        conn.execute(
            "UPDATE alerts SET lease_owner=?, lease_until=?, attempts=attempts+1 WHERE alert_id=?",
            (owner, now + lease_seconds, row["alert_id"]),
        )
    return ClaimedAlert(row["alert_id"], json.loads(row["payload"]), int(row["attempts"]) + 1, float(row["due_since"] or now))


def mark_delivered(conn: sqlite3.Connection, alert_id: str) -> None:
    """The CRM has it. Not conditional on the lease: a late 2xx is still a delivery."""
    with write_transaction(conn):
        conn.execute(
            "UPDATE alerts SET status='delivered', delivered_at=?, lease_owner=NULL, lease_until=NULL,"
            " last_error=NULL WHERE alert_id=? AND status IN ('pending', 'dead')",
            (utc_iso(), alert_id),
        )


def mark_failed(
    conn: sqlite3.Connection, alert_id: str, *, owner: str, error: str, next_attempt_at: float | None
) -> None:
    """Record a failed attempt: retry at next_attempt_at, or dead when it is None.

    Only the lease holder may do this, so a dispatcher whose lease ran out cannot undo
    another dispatcher's success.
    """
    with write_transaction(conn):
        conn.execute(
            "UPDATE alerts SET status=?, next_attempt_at=?, last_error=?, lease_owner=NULL, lease_until=NULL"
            " WHERE alert_id=? AND lease_owner=? AND status='pending'",
            ("pending" if next_attempt_at is not None else "dead", next_attempt_at, error[:500], alert_id, owner),
        )


def retry_alert(conn: sqlite3.Connection, alert_id: str, *, now: float) -> str:
    """Send a dead (or waiting-to-retry) alert again now, with a fresh attempt budget."""
    with write_transaction(conn):
        status = get_alert(conn, alert_id)["status"]
        if status not in ("dead", "pending"):
            raise SoteRiskError(f"alert {alert_id} is {status}; only dead or pending alerts can be retried")
        conn.execute(
            "UPDATE alerts SET status='pending', attempts=0, next_attempt_at=?, due_since=?,"
            " lease_owner=NULL, lease_until=NULL WHERE alert_id=?",
            (now, now, alert_id),
        )
    return status


# ---------------------------------------------------------------------------------------------
# reading


_LIST_COLUMNS = (
    "alert_id, subject_id, problem, as_of, municipality, probability, band, trigger, status,"
    " attempts, next_attempt_at, last_error, created, delivered_at"
)


def list_alerts(conn: sqlite3.Connection, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    if status is not None and status not in STATUSES:
        raise SoteRiskError(f"unknown alert status {status!r}; expected one of {', '.join(STATUSES)}")
    where, params = ("WHERE status=?", [status]) if status else ("", [])
    rows = conn.execute(
        f"SELECT {_LIST_COLUMNS} FROM alerts {where} ORDER BY created DESC, alert_id LIMIT ?", (*params, limit)
    ).fetchall()
    return [dict(r) for r in rows]


def get_alert(conn: sqlite3.Connection, alert_id: str) -> dict[str, Any]:
    row = conn.execute(f"SELECT {_LIST_COLUMNS}, payload FROM alerts WHERE alert_id=?", (alert_id,)).fetchone()
    if row is None:
        raise AlertNotFound(f"no alert with id {alert_id} in the outbox")
    return dict(row) | {"payload": json.loads(row["payload"])}


def status_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {r["status"]: int(r["n"]) for r in conn.execute("SELECT status, COUNT(*) AS n FROM alerts GROUP BY status")}
