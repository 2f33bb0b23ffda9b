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
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from alerts import outbox
from alerts.outbox import AlertNotFound
from base.errors import SoteRiskError

NotFound = AlertNotFound  # the name the HTTP layer expects
NEVER_SENT = ("queued", "superseded", "expired")
NO_REASON = "(no reason given)"


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


def record_feedback(conn: sqlite3.Connection, alert_id: str, payload: Any) -> FeedbackResult:
    """Validate and store one CRM verdict on an alert; idempotent for a repeated post."""
    item = parse_feedback(alert_id, payload)
    reason = item.overrideReason.reason if item.overrideReason else None
    stamp = item.outcomeTimestamp.isoformat()
    with outbox.write_transaction(conn):
        status = outbox.get_alert(conn, alert_id)["status"]  # raises AlertNotFound naming the id
        if status in NEVER_SENT:
            raise FeedbackInvalid(f"feedback for alert {alert_id}: the alert was never sent to the CRM (status {status})")
        cur = conn.execute(
            "INSERT INTO feedback (alert_id, outcome, override_code, override_display, outcome_timestamp, received)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            (alert_id, item.outcome, reason.code if reason else None, reason.display if reason else None,
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
    latest = conn.execute(
        "SELECT p.problem, f.outcome, f.override_code, f.override_display FROM feedback f"
        " JOIN alert_problems p USING (alert_id)"
        " WHERE f.feedback_id = (SELECT g.feedback_id FROM feedback g WHERE g.alert_id = f.alert_id"
        "                        ORDER BY g.outcome_timestamp DESC, g.feedback_id DESC LIMIT 1)"
    ).fetchall()
    reports = []
    for problem in sorted(counts):
        rows = [r for r in latest if r["problem"] == problem]
        reasons: dict[tuple[str, str], int] = {}
        for r in rows:
            if r["outcome"] == "overridden":
                key = (r["override_code"] or NO_REASON, r["override_display"] or "")
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
