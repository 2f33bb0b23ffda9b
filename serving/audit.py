"""The audit log: who read which customer's risk, when, through which endpoint, from which models.

SQLite in the home folder (home().audit_db). Rows carry the customer's pseudonym (subject_id),
the key id and role; never a key, never personal data. Append-only from the service.

A read through a signed page link (serving/page_links.py) has key id "signed-link", role
clinician and the link's expiry (`link_expires`); so does the making of a link (endpoint
"page_link" with the maker's key id, or "link" for `sote-risk link`). Logs written before
`link_expires` existed gain the column (empty) when the service opens them.

A history the caller posts (/score_history) is not a stored customer's record, whatever
subject_id it carries: its read is recorded as customer 0 (no pseudonym is 0: the contracts
start them at 1) with `posted`, a hash of what was posted, so `sote-risk audit --customer N` never
lists a read of a posted history as a read of customer N's record (issue 16), and the same
posted history can still be told apart from others. Logs from before gain the column too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
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
    model_versions TEXT NOT NULL,
    link_expires TEXT,
    posted TEXT
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
    link_expires: str | None = None  # ISO time in UTC: the read came through (or made) a signed link
    posted: str | None = None  # a posted history's hash (customer is then POSTED, not a stored customer)


POSTED = 0  # the customer of a posted history's read: no stored customer has pseudonym 0


def posted_hash(customer: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> str:
    """A posted history's id in the audit log: sha256 of its canonical JSON (first 16 hex digits),
    the same for the same history however its keys were ordered."""
    text = json.dumps({"customer": customer, "events": list(events)}, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


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
        columns = {row[1] for row in self._connection.execute("PRAGMA table_info(audit)")}
        for column in ("link_expires", "posted"):  # a log from before signed links, or posted histories
            if column in columns:
                continue
            try:
                self._connection.execute(f"ALTER TABLE audit ADD COLUMN {column} TEXT")
            except sqlite3.OperationalError as error:  # another worker added it a moment ago
                if "duplicate column" not in str(error):
                    raise
        self._lock = threading.Lock()

    def append(self, entries: Iterable[AuditEntry]) -> None:
        rows = [
            (e.time, e.key_id, e.role, e.endpoint, e.customer, json.dumps(e.problems), json.dumps(e.model_versions),
             e.link_expires, e.posted)
            for e in entries
        ]
        if not rows:
            return
        with self._lock:
            self._connection.executemany(
                "INSERT INTO audit (time, key_id, role, endpoint, customer, problems, model_versions, link_expires, posted) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        columns = {row[1] for row in connection.execute("PRAGMA table_info(audit)")}
        expires = "link_expires" if "link_expires" in columns else "NULL"  # a log from before signed links
        posted = "posted" if "posted" in columns else "NULL"  # ... or before posted histories were told apart
        rows = connection.execute(
            f"SELECT time, key_id, role, endpoint, customer, problems, model_versions, {expires}, {posted} "
            "FROM audit WHERE customer = ? ORDER BY time, id",
            (customer,),
        ).fetchall()
    finally:
        connection.close()
    return [
        AuditEntry(
            time=time, key_id=key_id, role=role, endpoint=endpoint, customer=subject,
            problems=json.loads(problems), model_versions=json.loads(versions), link_expires=link_expires, posted=posted,
        )
        for time, key_id, role, endpoint, subject, problems, versions, link_expires, posted in rows
    ]
