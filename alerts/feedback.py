"""CRM feedback on cards (CDS Hooks feedback) and the acceptance report.

The CRM names a card by its uuid (the outbox card id, one card per customer per index date);
`record_feedback(conn, alert_id, payload)` validates and stores one feedback item; the HTTP
endpoint that receives it (on the BentoML service) maps AlertNotFound -> 404 and
FeedbackInvalid -> 400 and passes the message through. A CDS Hooks item looks like
    {"card": "<alert id>", "outcome": "accepted" | "overridden",
     "overrideReason": {"reason": {"code": "...", "system": "...", "display": "..."},
                        "userComment": "..."},
     "acceptedSuggestions": [{"id": "..."}], "outcomeTimestamp": "2025-03-01T09:30:00Z"}
`overrideReason` may also be given flat as {"code", "display"}. The free-text userComment is
accepted but not stored: it may name people, and the report does not need it.

`outcomeTimestamp` is an instant: stored as UTC (`...Z`), so the same moment sent as `Z` and as
`+02:00` is one verdict, and checked to lie between 2000 and a day after now (a verdict dated
9999 would otherwise outrank every real one). The latest verdict on a card is the latest
instant, compared as times, never as text. The reason's code and display are made printable
(base/safe_text.py) before they are stored and again when reported (rows stored before this).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Set
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from alerts import outbox
from alerts.outbox import AlertNotFound
from base.errors import SoteRiskError
from base.safe_text import printable

NotFound = AlertNotFound  # the name the HTTP layer expects
NEVER_SENT = ("queued", "superseded", "expired")
NO_REASON = "(no reason given)"
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
AHEAD = timedelta(days=1)  # the CRM's clock may run ahead of ours, not by more than this


class FeedbackInvalid(SoteRiskError):
    """The feedback body is not valid; the message names the field."""


class Coding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=100)
    system: str | None = None
    display: str | None = Field(None, max_length=200)


class OverrideReason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Coding | None = None
    userComment: str | None = None  # noqa: N815 (CDS Hooks spelling)

    @model_validator(mode="before")
    @classmethod
    def _flat_coding(cls, value: Any) -> Any:
        if isinstance(value, dict) and "code" in value and "reason" not in value:
            return {"reason": {k: value[k] for k in ("code", "system", "display") if k in value},
                    **({"userComment": value["userComment"]} if "userComment" in value else {})}
        return value


class SuggestionRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str


class CardFeedback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    card: str | None = None
    outcome: Literal["accepted", "overridden"]
    overrideReason: OverrideReason | None = None  # noqa: N815
    acceptedSuggestions: list[SuggestionRef] | None = None  # noqa: N815
    outcomeTimestamp: AwareDatetime  # noqa: N815
    extension: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _reason_only_when_overridden(self) -> "CardFeedback":
        if self.outcome == "accepted" and self.overrideReason is not None:
            raise ValueError("overrideReason is only allowed with outcome 'overridden'")
        return self


@dataclass(frozen=True)
class FeedbackResult:
    alert_id: str
    outcome: str
    feedback_id: int
    duplicate: bool  # the same feedback (alert, outcome, timestamp) was already stored


def parse_feedback(alert_id: str, payload: Any) -> CardFeedback:
    """Validate one feedback item (or a CDS Hooks {"feedback": [item]} with one item)."""
    if isinstance(payload, dict) and set(payload) == {"feedback"}:
        items = payload["feedback"]
        if not isinstance(items, list) or len(items) != 1:
            raise FeedbackInvalid(f"feedback for alert {alert_id}: feedback: expected a list with one item")
        payload = items[0]
    if not isinstance(payload, dict):
        raise FeedbackInvalid(f"feedback for alert {alert_id}: body must be a JSON object")
    try:
        item = CardFeedback.model_validate(payload)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
            + (f" (got {e['input']!r})" if e["type"] == "literal_error" else "")
            for e in error.errors()
        )
        raise FeedbackInvalid(f"feedback for alert {alert_id}: {problems}") from None
    if item.card is not None and item.card != alert_id:
        raise FeedbackInvalid(f"feedback for alert {alert_id}: card: names alert {item.card}, not this one")
    return item


def outcome_instant(stamp: datetime, now: datetime) -> datetime:
    """The verdict's time in UTC; ValueError when it is before 2000 or more than a day after `now`."""
    try:
        moment = stamp.astimezone(timezone.utc)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-14:00 is past the last representable instant
        moment = None
    if moment is None or not EARLIEST <= moment <= now + AHEAD:
        raise ValueError(f"must lie between {outbox.utc_iso(EARLIEST)} and a day after now "
                         f"({outbox.utc_iso(now + AHEAD)}), got {stamp.isoformat()}")
    return moment


def _text(value: str | None) -> str | None:
    return None if value is None else (printable(value).strip() or None)


def record_feedback(conn: sqlite3.Connection, alert_id: str, payload: Any, *,
                    now: datetime | None = None) -> FeedbackResult:
    """Validate and store one CRM verdict on an alert; idempotent for a repeated post (the same
    outcome at the same instant, in whatever offset)."""
    item = parse_feedback(alert_id, payload)
    try:
        moment = outcome_instant(item.outcomeTimestamp, now or datetime.now(timezone.utc))
    except ValueError as error:
        raise FeedbackInvalid(f"feedback for alert {alert_id}: outcomeTimestamp: {error}") from None
    reason = item.overrideReason.reason if item.overrideReason else None
    stamp = outbox.utc_iso(moment)
    with outbox.write_transaction(conn):
        status = outbox.get_alert(conn, alert_id)["status"]  # raises AlertNotFound naming the id
        if status in NEVER_SENT:
            raise FeedbackInvalid(f"feedback for alert {alert_id}: the alert was never sent to the CRM (status {status})")
        cur = conn.execute(
            "INSERT INTO feedback (alert_id, outcome, override_code, override_display, outcome_timestamp, received)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            (alert_id, item.outcome, _text(reason.code) if reason else None, _text(reason.display) if reason else None,
             stamp, outbox.utc_iso()),
        )
        duplicate = cur.rowcount == 0
        row = conn.execute(
            "SELECT feedback_id FROM feedback WHERE alert_id=? AND outcome=? AND outcome_timestamp=?",
            (alert_id, item.outcome, stamp),
        ).fetchone()
    return FeedbackResult(alert_id, item.outcome, int(row["feedback_id"]), duplicate)


@dataclass(frozen=True)
class ProblemReport:
    """One problem's line of the report: counts of the cards that name it (a card naming several
    problems counts once for each), and the CRM's latest verdict on each of those cards."""

    problem: str
    sent: int  # released to the CRM (pending, delivered or dead)
    delivered: int
    dead: int
    queued: int
    with_feedback: int
    accepted: int
    overridden: int
    top_override_reasons: list[tuple[str, str, int]]  # (code, display, count)

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.with_feedback if self.with_feedback else None


def latest_verdicts(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per alert id, its feedback row with the latest instant (ties: the later stored). Times are
    parsed, so rows stored before times were kept in UTC (any offset) order correctly too."""
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = (datetime.fromisoformat(row["outcome_timestamp"]), row["feedback_id"])
        held = latest.get(row["alert_id"])
        if held is None or key > held["_order"]:
            latest[row["alert_id"]] = row | {"_order": key}
    return latest


def report(conn: sqlite3.Connection, *, top: int = 3) -> list[ProblemReport]:
    """Per problem: delivery counts of the cards naming it and, from each card's latest feedback,
    acceptance."""
    counts = {
        r["problem"]: dict(r)
        for r in conn.execute(
            "SELECT p.problem,"
            " SUM(a.status IN ('pending','delivered','dead')) AS sent, SUM(a.status='delivered') AS delivered,"
            " SUM(a.status='dead') AS dead, SUM(a.status='queued') AS queued"
            " FROM alert_problems p JOIN alerts a USING (alert_id) GROUP BY p.problem"
        )
    }
    verdicts = latest_verdicts([dict(r) for r in conn.execute(
        "SELECT feedback_id, alert_id, outcome, override_code, override_display, outcome_timestamp FROM feedback")])
    latest = [verdicts[r["alert_id"]] | {"problem": r["problem"]}
              for r in conn.execute("SELECT alert_id, problem FROM alert_problems") if r["alert_id"] in verdicts]
    reports = []
    for problem in sorted(counts):
        rows = [r for r in latest if r["problem"] == problem]
        reasons: dict[tuple[str, str], int] = {}
        for r in rows:
            if r["outcome"] == "overridden":
                key = (_text(r["override_code"]) or NO_REASON, _text(r["override_display"]) or "")
                reasons[key] = reasons.get(key, 0) + 1
        ranked = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0][0]))[:top]
        c = counts[problem]
        reports.append(ProblemReport(
            problem=problem, sent=int(c["sent"] or 0), delivered=int(c["delivered"] or 0), dead=int(c["dead"] or 0),
            queued=int(c["queued"] or 0), with_feedback=len(rows),
            accepted=sum(r["outcome"] == "accepted" for r in rows),
            overridden=sum(r["outcome"] == "overridden" for r in rows),
            top_override_reasons=[(code, display, n) for (code, display), n in ranked],
        ))
    return reports


@dataclass(frozen=True)
class MonthFeedback:
    """The cards naming one problem at the index dates of one month (a card naming several problems
    counts once for each), and the CRM's latest verdict on each: what monitoring shows beside the
    model's figures for that month (training/monitoring.attach_feedback)."""

    problem: str
    month: str  # YYYY-MM of the cards' index date
    sent: int  # released to the CRM (pending, delivered or dead)
    with_feedback: int
    accepted: int
    overridden: int


def monthly_feedback(conn: sqlite3.Connection, problems: list[str] | None = None,
                     subjects: Set[int] | None = None) -> list[MonthFeedback]:
    """Per problem and index month: cards sent and the latest verdicts on them (the acceptance
    report's counting, by month). Cards never sent (queued, superseded, expired) count nowhere: the
    CRM never saw them. `subjects`: only the cards of these customers (one region's, when one outbox
    holds the cards of several regions: `run --engine spark`)."""
    verdicts = latest_verdicts([dict(r) for r in conn.execute(
        "SELECT feedback_id, alert_id, outcome, outcome_timestamp FROM feedback")])
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for row in conn.execute("SELECT p.problem, a.as_of, a.alert_id, a.subject_id FROM alert_problems p JOIN alerts a "
                            f"USING (alert_id) WHERE a.status IN ({','.join('?' * len(outbox.SENT_STATUSES))})",
                            outbox.SENT_STATUSES):
        if problems is not None and row["problem"] not in problems:
            continue
        if subjects is not None and int(row["subject_id"]) not in subjects:
            continue
        cell = counts.setdefault((row["problem"], str(row["as_of"])[:7]),
                                 {"sent": 0, "with_feedback": 0, "accepted": 0, "overridden": 0})
        cell["sent"] += 1
        verdict = verdicts.get(row["alert_id"])
        if verdict is not None:
            cell["with_feedback"] += 1
            cell[verdict["outcome"]] += 1
    return [MonthFeedback(problem, month, **cell) for (problem, month), cell in sorted(counts.items())]
