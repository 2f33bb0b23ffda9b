"""The CRM outbox: every score, every card and its delivery state, and feedback, in SQLite.

Why an outbox: a card is written in the same transaction as the scores that caused it, so a
crash can never leave a score without its card or a card without its scores; delivery to the
CRM happens afterwards from this table (alerts/dispatcher.py), with retries.

One card per customer per index date. A customer whose scores alert in several problems at one
index date gets ONE card naming each of those problems (alerts/cards.py). The tables:

    scores          every score, per (subject_id, problem, as_of): what each model said
    alerts          one row per card, keyed by the card's uuid (uuid5 of subject_id and as_of):
                    its delivery state and the card itself (payload). `problem`, `probability`
                    and `band` are those of the card's first (highest-risk) problem; they rank
                    the card for capacity and show it in lists.
    alert_problems  the problems a card names, one row each (rank 1 = highest risk), each tied
                    to its score; a score is named by at most one card.
    feedback        the CRM's verdicts, per card (the card uuid is what POST /feedback names)
    policies        the alert policy last applied to each problem
    budget          the capacity budget of cards (per municipality per day) and how long a card
                    may wait for it, from the last run's policies (the dispatcher drains the
                    queue with it)

Why a card table above per-problem rows (and not a card per problem): the CRM, the
Idempotency-Key, delivery, capacity, cool-down and feedback are all about what a coordinator
receives, which is one card per customer; what each model said stays per problem in `scores`
and `alert_problems`, so nothing of the per-problem record is lost.

Identity: a card's id is a uuid5 of (subject_id, as_of), so re-running the same index date gives
the same ids and inserts nothing new (scores are unique per problem, cards per id).

Card statuses:
    queued     over today's capacity budget; waits (alerts/rules.py says what that means)
    pending    to be delivered (next_attempt_at says when; a lease says who is sending it)
    delivered  the CRM answered 2xx
    dead       gave up (older than its maximum age, or the CRM rejected the body); `alerts retry`
    superseded a newer score of the same customer arrived while it was queued
    expired    waited in the queue longer than the budget allows

Times: machine-compared times (next_attempt_at, lease_until, due_since) are epoch seconds;
times for people (created, delivered_at) are ISO 8601 UTC; days (queued_on, released_on) are
ISO dates of the region's calendar day.

Schema versions (PRAGMA user_version): 1 had one alert per (subject_id, problem, as_of); 2 has
cards; 3 (this one) adds `operator_alerts`: alerts for the operators, not the CRM (a monitored
model breached its thresholds: training/monitor_run.py), delivered by the same dispatcher with the
same leases, retries and Idempotency-Key to SOTE_RISK_OPERATOR_WEBHOOK_URL; no capacity budget. Opening a version-1 outbox migrates it in one transaction: every old alert
becomes a card naming its one problem, with its id, delivery state and feedback kept (the CRM
already holds those ids). A newer version, or a file that is not an outbox, is refused with one
line.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Literal

from base.errors import SoteRiskError
from base.settings import home

SCHEMA_VERSION = 3
BUSY_TIMEOUT_MS = 30_000
# Fixed namespace: card ids must be the same on every machine and every re-run.
ALERT_NAMESPACE = uuid.UUID("6f1c2d8e-5b7a-4c1e-9a3d-2e4b6c8d0f11")

STATUSES: tuple[str, ...] = ("queued", "pending", "delivered", "dead", "superseded", "expired")
SENT_STATUSES = ("pending", "delivered", "dead")  # released to the CRM; these count for cool-down
_SENT = ",".join(f"'{s}'" for s in SENT_STATUSES)
TABLES = ("scores", "alerts", "alert_problems", "feedback", "policies", "budget")

_SCORES = """
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
)"""

_ALERTS = """
CREATE TABLE {name} (
    alert_id        TEXT PRIMARY KEY,
    subject_id      INTEGER NOT NULL,
    as_of           TEXT    NOT NULL,
    municipality    TEXT,
    problem         TEXT    NOT NULL,
    probability     REAL    NOT NULL,
    band            TEXT    NOT NULL,
    n_problems      INTEGER NOT NULL CHECK (n_problems >= 1),
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
    FOREIGN KEY (subject_id, problem, as_of) REFERENCES scores (subject_id, problem, as_of)
)"""

_REST = """
CREATE INDEX IF NOT EXISTS alerts_due ON alerts (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS alerts_subject ON alerts (subject_id, as_of);
CREATE TABLE IF NOT EXISTS alert_problems (
    alert_id    TEXT    NOT NULL REFERENCES alerts (alert_id),
    rank        INTEGER NOT NULL CHECK (rank >= 1),
    subject_id  INTEGER NOT NULL,
    problem     TEXT    NOT NULL,
    as_of       TEXT    NOT NULL,
    probability REAL    NOT NULL,
    band        TEXT    NOT NULL,
    trigger     TEXT    NOT NULL,
    decision    TEXT    NOT NULL CHECK (decision IN ('alert', 'cooldown')),
    PRIMARY KEY (alert_id, problem),
    UNIQUE (alert_id, rank),
    UNIQUE (subject_id, problem, as_of),
    FOREIGN KEY (subject_id, problem, as_of) REFERENCES scores (subject_id, problem, as_of)
);
CREATE INDEX IF NOT EXISTS alert_problems_problem ON alert_problems (problem);
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
CREATE TABLE IF NOT EXISTS operator_alerts (
    alert_id        TEXT    PRIMARY KEY,
    kind            TEXT    NOT NULL,
    problem         TEXT    NOT NULL,
    as_of           TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    due_since       REAL,
    lease_owner     TEXT,
    lease_until     REAL,
    last_error      TEXT,
    created         TEXT    NOT NULL,
    delivered_at    TEXT,
    payload         TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS budget (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    capacity       INTEGER CHECK (capacity IS NULL OR capacity >= 1),
    queue_max_days INTEGER NOT NULL CHECK (queue_max_days >= 0),
    updated        TEXT    NOT NULL
)
"""

# Version 1's alert columns that a card keeps as they were (the rest: see _migrate_from_1).
_V1_KEPT = ("alert_id, subject_id, as_of, municipality, problem, probability, band, status, attempts, next_attempt_at,"
            " due_since, lease_owner, lease_until, last_error, created, queued_on, released_on, delivered_at, payload")
_V1_ALERT_COLUMNS = frozenset(c.strip() for c in (_V1_KEPT + ", trigger").split(","))


class AlertNotFound(SoteRiskError):
    """No card with this id in the outbox."""


class OutboxError(SoteRiskError):
    """The outbox file cannot be used by this version of sote-risk (says which file and why)."""


# ---------------------------------------------------------------------------------------------
# connection, schema and transactions


def connect(path: Path | str | None = None) -> sqlite3.Connection:
    """Open (creating or migrating if needed) the outbox; default home().outbox_db.

    WAL lets dispatchers read while a scoring run writes; the busy timeout makes concurrent
    writers wait instead of failing; synchronous=FULL because a committed card must survive
    a crash. Autocommit mode: transactions are explicit (write_transaction). A file this version
    cannot use raises OutboxError with one line naming it.
    """
    db = Path(path) if path is not None else home().outbox_db
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA synchronous = FULL")
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            conn.execute("PRAGMA foreign_keys = OFF")  # a table rebuild must not cascade; checked at the end
            _upgrade(conn, db)  # before WAL: a file that is refused is left byte for byte as it was
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as error:
        conn.close()
        raise OutboxError(f"outbox {db}: {error}") from None
    except BaseException:
        conn.close()
        raise
    return conn


def _upgrade(conn: sqlite3.Connection, db: Path) -> None:
    """Create a new outbox, or migrate a version-1 one, in one write transaction (another process
    may have done it meanwhile: the version is read again under the write lock)."""
    with write_transaction(conn):
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise OutboxError(f"outbox {db} has schema version {version}, newer than this sote-risk knows "
                              f"({SCHEMA_VERSION}); use the sote-risk that wrote it, or another --db / SOTE_RISK_HOME")
        existing = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if version == 0:
            if existing:
                raise OutboxError(f"outbox {db} is not a sote-risk outbox (no schema version; tables "
                                  f"{', '.join(sorted(existing))}); move it away or use another --db / SOTE_RISK_HOME")
            conn.execute(_SCORES)
            conn.execute(_ALERTS.format(name="alerts"))
        elif version == 1:
            _migrate_from_1(conn, db, existing)
        elif version == 2:
            pass  # 2 -> 3 adds operator_alerts (below); nothing else changes
        else:
            raise OutboxError(f"outbox {db} has unknown schema version {version}")
        for statement in _REST.split(";"):
            if statement.strip():
                conn.execute(statement)
        problems = conn.execute("PRAGMA foreign_key_check").fetchall()
        if problems:
            raise OutboxError(f"outbox {db}: {len(problems)} row(s) refer to missing rows after the upgrade "
                              f"(first: table {problems[0][0]}); nothing was changed")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _migrate_from_1(conn: sqlite3.Connection, db: Path, existing: set[str]) -> None:
    """Version 1 -> 2: each per-problem alert becomes a card naming its one problem, with the same
    id (the CRM and its feedback know it), delivery state and payload; nothing is dropped."""
    columns = {r[1] for r in conn.execute("PRAGMA table_info(alerts)")}
    if not {"scores", "alerts", "feedback"} <= existing or not _V1_ALERT_COLUMNS <= columns:
        raise OutboxError(f"outbox {db} says schema version 1 but its tables are not the version-1 outbox; "
                          "move it away or use another --db / SOTE_RISK_HOME")
    conn.execute(_ALERTS.format(name="alerts_v2"))
    conn.execute(f"INSERT INTO alerts_v2 ({_V1_KEPT}, n_problems) SELECT {_V1_KEPT}, 1 FROM alerts")
    conn.execute("CREATE TABLE alert_problems_v1 AS SELECT alert_id, subject_id, problem, as_of, probability, band, trigger"
                 " FROM alerts")
    conn.execute("DROP TABLE alerts")  # the indexes go with it; feedback's reference names `alerts`, kept below
    conn.execute("ALTER TABLE alerts_v2 RENAME TO alerts")
    for statement in _REST.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("INSERT INTO alert_problems (alert_id, rank, subject_id, problem, as_of, probability, band, trigger, decision)"
                 " SELECT alert_id, 1, subject_id, problem, as_of, probability, band, trigger, 'alert' FROM alert_problems_v1")
    conn.execute("DROP TABLE alert_problems_v1")


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE .. COMMIT (rollback on error); inside an open transaction, just joins it.

    IMMEDIATE takes the write lock up front, so read-then-write steps (claiming a card,
    reading state and recording cards) are atomic across processes.
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
    """Canonical text of an index time (naive local time, seconds): part of the card id."""
    if isinstance(as_of, str):
        as_of = datetime.fromisoformat(as_of)
    if hasattr(as_of, "to_pydatetime"):
        as_of = as_of.to_pydatetime()
    if isinstance(as_of, date) and not isinstance(as_of, datetime):
        as_of = datetime(as_of.year, as_of.month, as_of.day)
    if as_of.tzinfo is not None:
        raise ValueError("as_of must be a naive local time (like prediction_time), not tz-aware")
    return as_of.replace(microsecond=0).isoformat(timespec="seconds")


def card_id(subject_id: int, as_of: Any) -> str:
    """Deterministic id of a customer's card at an index time: the card's uuid, the outbox key,
    the Idempotency-Key and what CRM feedback names."""
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{int(subject_id)}|{as_of_key(as_of)}"))


# ---------------------------------------------------------------------------------------------
# recording scores and cards


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
class CardProblem:
    """One problem a card names: its score's probability and band, what triggered it (level or
    band_rise) and its decision (alert: new or risen; cooldown: still at its level, named so the
    card shows the whole picture)."""

    problem: str
    probability: float
    band: str
    trigger: str = "level"
    decision: Literal["alert", "cooldown"] = "alert"


@dataclass(frozen=True)
class AlertRecord:
    """A card to record: one customer at one index time, naming `problems` (highest risk first);
    `payload` is the card (alerts/cards.py) sent as the webhook body."""

    subject_id: int
    as_of: datetime
    problems: Sequence[CardProblem]
    payload: dict[str, Any]
    municipality: str | None = None
    status: Literal["pending", "queued"] = "pending"

    def __post_init__(self) -> None:
        if not self.problems:
            raise ValueError(f"card for customer {self.subject_id}: names no problem")
        names = [p.problem for p in self.problems]
        if len(set(names)) != len(names):
            raise ValueError(f"card for customer {self.subject_id}: names a problem twice ({', '.join(names)})")
        ordered = sorted(self.problems, key=lambda p: (-float(p.probability), p.problem))
        if list(self.problems) != ordered:
            raise ValueError(f"card for customer {self.subject_id}: problems must be ordered by risk, highest first")

    @property
    def alert_id(self) -> str:
        return card_id(self.subject_id, self.as_of)

    @property
    def lead(self) -> CardProblem:
        return self.problems[0]

    def keys(self) -> list[tuple[int, str, str]]:
        return [(int(self.subject_id), p.problem, as_of_key(self.as_of)) for p in self.problems]


@dataclass(frozen=True)
class RecordResult:
    scores_written: int
    alerts_written: int
    alert_ids: list[str] = field(default_factory=list)  # ids of cards newly written


def record_scores_and_alerts(
    conn: sqlite3.Connection,
    scores: Sequence[ScoreRecord],
    alerts: Sequence[AlertRecord],
    *,
    now: float,
    today: date,
) -> RecordResult:
    """Write scores and their cards in one transaction (or inside the caller's transaction).

    Idempotent: a score whose (subject_id, problem, as_of) or a card whose id is already stored
    is left as it is. Every problem a card names must come with its score in the same call.
    """
    score_keys = {(int(s.subject_id), s.problem, as_of_key(s.as_of)) for s in scores}
    orphans = [a.alert_id for a in alerts if not set(a.keys()) <= score_keys]
    if orphans:
        raise ValueError(f"cards without their scores in the same call: {', '.join(orphans[:5])}")
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
            key = as_of_key(a.as_of)
            cur = conn.execute(
                "INSERT INTO alerts (alert_id, subject_id, as_of, municipality, problem, probability, band, n_problems,"
                " status, next_attempt_at, due_since, created, queued_on, released_on, payload)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                (a.alert_id, int(a.subject_id), key, a.municipality, a.lead.problem, float(a.lead.probability),
                 a.lead.band, len(a.problems), a.status, now if pending else None, now if pending else None, created,
                 None if pending else today.isoformat(), today.isoformat() if pending else None,
                 json.dumps(a.payload, sort_keys=True)),
            )
            if not cur.rowcount:
                continue
            written_ids.append(a.alert_id)
            conn.executemany(
                "INSERT INTO alert_problems (alert_id, rank, subject_id, problem, as_of, probability, band, trigger,"
                " decision) VALUES (?,?,?,?,?,?,?,?,?)",
                [(a.alert_id, rank, int(a.subject_id), p.problem, key, float(p.probability), p.band, p.trigger, p.decision)
                 for rank, p in enumerate(a.problems, start=1)],
            )
    return RecordResult(scores_written, len(written_ids), written_ids)


def existing_score_keys(conn: sqlite3.Connection, keys: Sequence[tuple[int, str, str]]) -> set[tuple[int, str, str]]:
    """Which (subject_id, problem, as_of_key) are already scored (re-run detection)."""
    found: set[tuple[int, str, str]] = set()
    for subject_id, problem, as_of in keys:
        row = conn.execute(
            "SELECT 1 FROM scores WHERE subject_id=? AND problem=? AND as_of=?", (int(subject_id), problem, as_of)
        ).fetchone()
        if row:
            found.add((int(subject_id), problem, as_of))
    return found


def carded(conn: sqlite3.Connection, keys: Sequence[tuple[int, str]]) -> set[tuple[int, str]]:
    """Which (subject_id, as_of_key) already have a card (any status): an earlier run of the date."""
    return {(int(s), a) for s, a in keys
            if conn.execute("SELECT 1 FROM alerts WHERE subject_id=? AND as_of=? LIMIT 1", (int(s), a)).fetchone()}


def previous_state(conn: sqlite3.Connection, problem: str, keys: Sequence[tuple[int, str]]) -> list[dict[str, Any]]:
    """Per (subject_id, as_of_key) of one problem: the band of the problem's previous score, and
    the customer's last card sent before as_of (whichever problems it named) with the band this
    problem's score had at that card's index time (None when the problem was not scored then).

    The cool-down is the customer's: a card in any problem starts it (alerts/rules.py)."""
    rows = []
    for subject_id, as_of in keys:
        last_score = conn.execute(
            "SELECT band FROM scores WHERE subject_id=? AND problem=? AND as_of<? ORDER BY as_of DESC LIMIT 1",
            (int(subject_id), problem, as_of),
        ).fetchone()
        last_card = conn.execute(
            f"SELECT as_of FROM alerts WHERE subject_id=? AND as_of<? AND status IN ({_SENT}) ORDER BY as_of DESC LIMIT 1",
            (int(subject_id), as_of),
        ).fetchone()
        band_then = None
        if last_card is not None:
            then = conn.execute("SELECT band FROM scores WHERE subject_id=? AND problem=? AND as_of=?",
                                (int(subject_id), problem, last_card["as_of"])).fetchone()
            band_then = then["band"] if then else None
        rows.append({
            "subject_id": int(subject_id),
            "problem": problem,
            "last_band": last_score["band"] if last_score else None,
            "last_alert_as_of": last_card["as_of"] if last_card else None,
            "last_alert_band": band_then,
        })
    return rows


# ---------------------------------------------------------------------------------------------
# the capacity queue (cards, per municipality)


@dataclass(frozen=True)
class Budget:
    """How many cards (customers) a municipality's coordinators take per day (None: no limit),
    and how many days a card may wait for that budget before it expires."""

    capacity: int | None
    queue_max_days: int


def save_budget(conn: sqlite3.Connection, budget: Budget) -> None:
    with write_transaction(conn):
        conn.execute(
            "INSERT INTO budget (id, capacity, queue_max_days, updated) VALUES (1,?,?,?)"
            " ON CONFLICT (id) DO UPDATE SET capacity=excluded.capacity, queue_max_days=excluded.queue_max_days,"
            " updated=excluded.updated",
            (budget.capacity, budget.queue_max_days, utc_iso()),
        )


def saved_budget(conn: sqlite3.Connection) -> Budget | None:
    row = conn.execute("SELECT capacity, queue_max_days FROM budget WHERE id=1").fetchone()
    return None if row is None else Budget(row["capacity"], int(row["queue_max_days"]))


def queued_alerts(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Cards waiting for capacity: alert_id, subject_id, as_of, municipality, probability (of
    the card's highest risk), queued_on (date)."""
    rows = conn.execute(
        "SELECT alert_id, subject_id, as_of, municipality, probability, queued_on FROM alerts WHERE status='queued'"
    ).fetchall()
    return [dict(r) | {"queued_on": date.fromisoformat(r["queued_on"])} for r in rows]


def has_queued(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM alerts WHERE status='queued' LIMIT 1").fetchone() is not None


def released_today(conn: sqlite3.Connection, today: date) -> dict[str, int]:
    """Cards released today, per municipality (counted against capacity)."""
    rows = conn.execute(
        f"SELECT municipality, COUNT(*) AS n FROM alerts WHERE released_on=? AND status IN ({_SENT}) GROUP BY municipality",
        (today.isoformat(),),
    ).fetchall()
    return {r["municipality"]: int(r["n"]) for r in rows}


def release_queued(conn: sqlite3.Connection, alert_ids: Sequence[str], *, now: float, today: date) -> int:
    """Waiting cards go out: queued -> pending, due now."""
    n = 0
    with write_transaction(conn):
        for alert_id in alert_ids:
            n += conn.execute(
                "UPDATE alerts SET status='pending', released_on=?, next_attempt_at=?, due_since=?"
                " WHERE alert_id=? AND status='queued'",
                (today.isoformat(), now, now, alert_id),
            ).rowcount
    return n


def drop_queued(conn: sqlite3.Connection, reasons: Mapping[str, str]) -> int:
    """Waiting cards leave the queue unsent: alert_id -> 'superseded' | 'expired'."""
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
    """Remember the policy last applied to a problem (what `alerts report` and audits read)."""
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


DELIVERABLE = frozenset({"alerts", "operator_alerts"})  # the tables the dispatcher delivers from


def _deliverable(table: str) -> str:
    if table not in DELIVERABLE:
        raise ValueError(f"not a deliverable table: {table}")
    return table


_WHAT = {"alerts": "alert", "operator_alerts": "operator alert"}  # how an error names a row of each table


def claim_next(conn: sqlite3.Connection, *, owner: str, now: float, lease_seconds: float,
               table: str = "alerts") -> ClaimedAlert | None:
    """Lease the next due pending card to `owner` (or None when nothing is due).

    The attempt is counted at claim time, so a card that keeps killing its dispatcher shows it
    in `attempts` (`alerts list`).
    """
    _deliverable(table)
    with write_transaction(conn):
        row = conn.execute(
            f"SELECT alert_id, payload, attempts, due_since FROM {table} WHERE status='pending'"
            " AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?)"
            " ORDER BY next_attempt_at, alert_id LIMIT 1",
            (now, now),
        ).fetchone()
        if row is None:
            return None
        conn.execute(
            f"UPDATE {table} SET lease_owner=?, lease_until=?, attempts=attempts+1 WHERE alert_id=?",
            (owner, now + lease_seconds, row["alert_id"]),
        )
    return ClaimedAlert(row["alert_id"], json.loads(row["payload"]), int(row["attempts"]) + 1, float(row["due_since"] or now))


def mark_delivered(conn: sqlite3.Connection, alert_id: str, table: str = "alerts") -> None:
    """The CRM has it. Not conditional on the lease: a late 2xx is still a delivery."""
    _deliverable(table)
    with write_transaction(conn):
        conn.execute(
            f"UPDATE {table} SET status='delivered', delivered_at=?, lease_owner=NULL, lease_until=NULL,"
            " last_error=NULL WHERE alert_id=? AND status IN ('pending', 'dead')",
            (utc_iso(), alert_id),
        )


def resume_after_outage(conn: sqlite3.Connection, *, now: float, table: str = "alerts") -> int:
    """The CRM (or, for `operator_alerts`, the operator webhook) answered again: what waits out the
    backoff of a connection failure (refused, reset, timed out) is due now instead of at the random
    later time each drew. What the receiver itself answered with an error status keeps its time (a
    429 or 503 may have asked for it)."""
    _deliverable(table)
    with write_transaction(conn):
        cursor = conn.execute(
            f"UPDATE {table} SET next_attempt_at=? WHERE status='pending' AND next_attempt_at > ?"
            " AND last_error IS NOT NULL AND last_error NOT LIKE 'HTTP %' AND (lease_until IS NULL OR lease_until <= ?)",
            (now, now, now),
        )
    return cursor.rowcount


def mark_failed(
    conn: sqlite3.Connection, alert_id: str, *, owner: str, error: str, next_attempt_at: float | None,
    table: str = "alerts",
) -> None:
    """Record a failed attempt: retry at next_attempt_at, or dead when it is None.

    Only the lease holder may do this, so a dispatcher whose lease ran out cannot undo
    another dispatcher's success.
    """
    _deliverable(table)
    with write_transaction(conn):
        conn.execute(
            f"UPDATE {table} SET status=?, next_attempt_at=?, last_error=?, lease_owner=NULL, lease_until=NULL"
            " WHERE alert_id=? AND lease_owner=? AND status='pending'",
            ("pending" if next_attempt_at is not None else "dead", next_attempt_at, error[:500], alert_id, owner),
        )


def holding_table(conn: sqlite3.Connection, alert_id: str) -> str | None:
    """Which deliverable table holds `alert_id` (cards: 'alerts'; 'operator_alerts'), or None.
    The ids cannot clash: each table's are uuid5s in their own namespace."""
    for table in sorted(DELIVERABLE):
        if conn.execute(f"SELECT 1 FROM {table} WHERE alert_id=?", (alert_id,)).fetchone():
            return table
    return None


def retry_alert(conn: sqlite3.Connection, alert_id: str, *, now: float, table: str = "alerts") -> str:
    """Send a dead (or waiting-to-retry) card, or operator alert with table='operator_alerts',
    again now, with a fresh age budget; returns its status before."""
    _deliverable(table)
    with write_transaction(conn):
        row = conn.execute(f"SELECT status FROM {table} WHERE alert_id=?", (alert_id,)).fetchone()
        if row is None:
            raise AlertNotFound(f"no {_WHAT[table]} with id {alert_id} in the outbox")
        status = row["status"]
        if status not in ("dead", "pending"):
            raise SoteRiskError(f"{_WHAT[table]} {alert_id} is {status}; only dead or pending {_WHAT[table]}s can be retried")
        conn.execute(
            f"UPDATE {table} SET status='pending', attempts=0, next_attempt_at=?, due_since=?,"
            " lease_owner=NULL, lease_until=NULL WHERE alert_id=?",
            (now, now, alert_id),
        )
    return status


def retry_dead(conn: sqlite3.Connection, *, now: float, problem: str | None = None,
               as_of: date | None = None, table: str = "alerts") -> list[str]:
    """Send every dead card (or operator alert, table='operator_alerts') again now, optionally only
    those naming `problem` or of index date `as_of`, each with a fresh age budget, in one
    transaction; the ids retried, oldest first. After an outage the dead letters go back
    together, not one id at a time."""
    _deliverable(table)
    where, params = ["a.status='dead'"], []
    if problem is not None:  # a card names its problems in alert_problems; an operator alert has one
        where.append("a.alert_id IN (SELECT alert_id FROM alert_problems WHERE problem=?)" if table == "alerts"
                     else "a.problem=?")
        params.append(problem)
    if as_of is not None:
        where.append("substr(a.as_of, 1, 10)=?")  # the index date, whatever its time of day
        params.append(as_of.isoformat())
    with write_transaction(conn):
        ids = [r["alert_id"] for r in conn.execute(
            f"SELECT a.alert_id FROM {table} a WHERE {' AND '.join(where)} ORDER BY a.as_of, a.alert_id", params)]
        conn.executemany(
            f"UPDATE {table} SET status='pending', attempts=0, next_attempt_at=?, due_since=?,"
            " lease_owner=NULL, lease_until=NULL WHERE alert_id=? AND status='dead'",
            [(now, now, alert_id) for alert_id in ids],
        )
    return ids


# ---------------------------------------------------------------------------------------------
# reading


_LIST_COLUMNS = (
    "alert_id, subject_id, as_of, municipality, problem, probability, band, n_problems, status,"
    " attempts, next_attempt_at, last_error, created, delivered_at"
)


def _with_problems(conn: sqlite3.Connection, rows: Sequence[sqlite3.Row]) -> list[dict[str, Any]]:
    """Rows of cards with `problems`: the problems each names, highest risk first."""
    out = [dict(r) | {"problems": []} for r in rows]
    by_id = {r["alert_id"]: r for r in out}
    ids = list(by_id)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for p in conn.execute(
            f"SELECT alert_id, problem FROM alert_problems WHERE alert_id IN ({','.join('?' * len(chunk))})"
            " ORDER BY alert_id, rank", chunk,
        ):
            by_id[p["alert_id"]]["problems"].append(p["problem"])
    return out


def list_alerts(conn: sqlite3.Connection, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Cards, newest first: each with its highest-risk problem (`problem`, `probability`, `band`)
    and `problems`, every problem it names in order."""
    if status is not None and status not in STATUSES:
        raise SoteRiskError(f"unknown alert status {status!r}; expected one of {', '.join(STATUSES)}")
    where, params = ("WHERE status=?", [status]) if status else ("", [])
    rows = conn.execute(
        f"SELECT {_LIST_COLUMNS} FROM alerts {where} ORDER BY created DESC, alert_id LIMIT ?", (*params, limit)
    ).fetchall()
    return _with_problems(conn, rows)


def get_alert(conn: sqlite3.Connection, alert_id: str) -> dict[str, Any]:
    row = conn.execute(f"SELECT {_LIST_COLUMNS}, payload FROM alerts WHERE alert_id=?", (alert_id,)).fetchone()
    if row is None:
        raise AlertNotFound(f"no alert with id {alert_id} in the outbox")
    return _with_problems(conn, [row])[0] | {"payload": json.loads(row["payload"])}


def card_problems(conn: sqlite3.Connection, alert_id: str) -> list[dict[str, Any]]:
    """The problems a card names, highest risk first, as recorded (rank, problem, probability,
    band, trigger, decision)."""
    return [dict(r) for r in conn.execute(
        "SELECT rank, problem, probability, band, trigger, decision FROM alert_problems WHERE alert_id=? ORDER BY rank",
        (alert_id,),
    )]


def status_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Cards per status."""
    return {r["status"]: int(r["n"]) for r in conn.execute("SELECT status, COUNT(*) AS n FROM alerts GROUP BY status")}


def problem_counts(conn: sqlite3.Connection, as_of: Any | None = None) -> dict[str, int]:
    """Cards naming each problem (at one index time, or all)."""
    where, params = ("WHERE as_of=?", [as_of_key(as_of)]) if as_of is not None else ("", [])
    return {r["problem"]: int(r["n"]) for r in conn.execute(
        f"SELECT problem, COUNT(*) AS n FROM alert_problems {where} GROUP BY problem", params)}


def customer_alerts(conn: sqlite3.Connection, subject_id: int, since: Any, until: Any) -> list[dict[str, Any]]:
    """One customer's cards with an index time in [since, until], oldest first (the customer view):
    each with `problems` (rank, problem, probability, band, as recorded) and `feedback` (the CRM's
    verdicts, oldest first: outcome, override_display, outcome_timestamp)."""
    rows = conn.execute(
        f"SELECT {_LIST_COLUMNS} FROM alerts WHERE subject_id=? AND as_of>=? AND as_of<=? ORDER BY as_of, alert_id",
        (int(subject_id), as_of_key(since), as_of_key(until)),
    ).fetchall()
    out = []
    for row in rows:
        item = dict(row)
        item["problems"] = card_problems(conn, row["alert_id"])
        item["feedback"] = [dict(f) for f in conn.execute(
            "SELECT outcome, override_code, override_display, outcome_timestamp FROM feedback WHERE alert_id=?"
            " ORDER BY outcome_timestamp, feedback_id", (row["alert_id"],))]
        out.append(item)
    return out


# ---------------------------------------------------------------------------------------------
# operator alerts (a monitored model breached its thresholds)


def operator_alert_id(kind: str, *key: str) -> str:
    """A stable id (uuid5) of an operator alert: the same monitoring result gives the same id, so
    raising it again inserts nothing and the receiver deduplicates by it (Idempotency-Key)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "sote-risk:operator:" + "|".join([kind, *key])))


def record_operator_alert(conn: sqlite3.Connection, *, kind: str, problem: str, as_of: str, key: Sequence[str],
                          payload: Mapping[str, Any], now: float) -> tuple[str, bool]:
    """Queue an operator alert (pending, due now); returns its id and whether it is new."""
    alert_id = operator_alert_id(kind, problem, as_of, *key)
    with write_transaction(conn):
        cursor = conn.execute(
            "INSERT OR IGNORE INTO operator_alerts (alert_id, kind, problem, as_of, status, next_attempt_at, due_since,"
            " created, payload) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
            (alert_id, kind, problem, as_of, now, now, utc_iso(), json.dumps({**payload, "alert_id": alert_id},
                                                                             sort_keys=True)),
        )
    return alert_id, cursor.rowcount == 1


OPERATOR_STATUSES = ("pending", "delivered", "dead")


def list_operator_alerts(conn: sqlite3.Connection, *, status: str | None = None,
                         with_payload: bool = False) -> list[dict[str, Any]]:
    """Operator alerts, oldest first, with their delivery state (and their payload, parsed)."""
    if status is not None and status not in OPERATOR_STATUSES:
        raise SoteRiskError(f"unknown operator alert status {status!r}; expected one of {', '.join(OPERATOR_STATUSES)}")
    query = ("SELECT alert_id, kind, problem, as_of, status, attempts, next_attempt_at, last_error, created, delivered_at"
             + (", payload" if with_payload else "") + " FROM operator_alerts")
    rows = conn.execute(query + (" WHERE status=?" if status else "") + " ORDER BY created, alert_id",
                        (status,) if status else ()).fetchall()
    out = [dict(r) for r in rows]
    for row in out:
        if with_payload:
            row["payload"] = json.loads(row["payload"])
    return out


def operator_status_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Operator alerts per status."""
    return {r["status"]: int(r["n"])
            for r in conn.execute("SELECT status, COUNT(*) AS n FROM operator_alerts GROUP BY status")}
