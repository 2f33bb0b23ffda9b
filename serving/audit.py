"""The audit log: who read which customer's risk, when, through which endpoint, from which models.

SQLite in the home folder (home().audit_db). Rows carry the customer's pseudonym (subject_id),
the key id and role; never a key, never personal data. Append-only from the service.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    key_id TEXT NOT NULL,
    role TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    customer INTEGER NOT NULL,
    problems TEXT NOT NULL,
    model_versions TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_customer ON audit (customer, time);
"""


class AuditEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    time: str
    key_id: str
    role: str
    endpoint: str
    customer: int
    problems: list[str]
    model_versions: list[str]


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


class AuditLog:
    """One connection guarded by a lock: writes are tiny, and SQLite serialises writers anyway."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        # WAL + NORMAL: an append costs tens of microseconds, and several workers can write.
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def append(self, entries: Iterable[AuditEntry]) -> None:
        rows = [
            (e.time, e.key_id, e.role, e.endpoint, e.customer, json.dumps(e.problems), json.dumps(e.model_versions))
            for e in entries
        ]
        if not rows:
            return
        with self._lock:
            self._connection.executemany(
                "INSERT INTO audit (time, key_id, role, endpoint, customer, problems, model_versions) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def close(self) -> None:
        self._connection.close()


def read_audit(path: Path, customer: int) -> list[AuditEntry]:
    """Every read of one customer's risk, oldest first (for `sote-risk audit --customer`)."""
    if not path.exists():
        return []
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT time, key_id, role, endpoint, customer, problems, model_versions "
            "FROM audit WHERE customer = ? ORDER BY time, id",
            (customer,),
        ).fetchall()
    finally:
        connection.close()
    return [
        AuditEntry(
            time=time, key_id=key_id, role=role, endpoint=endpoint, customer=subject,
            problems=json.loads(problems), model_versions=json.loads(versions),
        )
        for time, key_id, role, endpoint, subject, problems, versions in rows
    ]
