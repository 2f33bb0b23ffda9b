"""One error shape for every refusal: RFC 9457 problem details (`application/problem+json`).

A problem is `{"type", "title", "status", "detail"}` plus two members of our own: `field` (the
request part at fault: a body field, `Authorization`, `Content-Type`, `body`, `method`) and, for
a request that does not match its schema, `errors` (one `{field, message}` per violation; never
the value sent, which may be personal data). `type` is "about:blank": the status and `field`
say what went wrong, `detail` says it in words.

The FHIR route answers FHIR, so its refusals are OperationOutcome resources
(`application/fhir+json`) carrying the same status, detail and field.

Refusals we write come from `problem()`. Those BentoML and Starlette write themselves (a body
that fails its pydantic type: `{"error", "detail": [...]}`; an unknown path or method: plain
text; an unexpected error: `{"error"}`) are rewritten by `ProblemResponses`, the send wrapper
the guard puts around every response, so no other shape leaves the service.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

PROBLEM_JSON = "application/problem+json"
FHIR_JSON = "application/fhir+json"
FHIR_PATH = "/fhir_risk_assessment"

# FHIR's IssueType for each status we answer (http://hl7.org/fhir/R4/valueset-issue-type.html).
_FHIR_ISSUE = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
               409: "conflict", 413: "too-long", 415: "not-supported", 422: "processing"}


def title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem(status: int, detail: str, field: str | None = None,
            errors: Sequence[Mapping[str, str]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "about:blank", "title": title(status), "status": status, "detail": detail}
    if field is not None:
        body["field"] = field
    if errors:
        body["errors"] = [dict(e) for e in errors]
    return body


def field_path(location: Sequence[Any]) -> str:
    """pydantic's loc -> 'events.3.code' (FastAPI's leading 'body'/'query'/'path' dropped)."""
    parts = [str(p) for p in location]
    if len(parts) > 1 and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_problem(errors: Sequence[Mapping[str, Any]], model: str | None = None) -> dict[str, Any]:
    """400 for a request that does not match its schema: each violation's field and message, no
    input values (pydantic's `input` would echo what was sent)."""
    listed = [{"field": field_path(e.get("loc", ())), "message": str(e.get("msg", "invalid"))} for e in errors]
    count = len(listed)
    what = f" for {model}" if model else ""
    fields = ", ".join(dict.fromkeys(e["field"] for e in listed))
    detail = f"{count} validation error{'s' if count != 1 else ''}{what}: {fields}" if listed else f"the request does not match its schema{what}"
    return problem(400, detail, field=listed[0]["field"] if listed else "body", errors=listed)


def from_foreign(status: int, body: bytes) -> dict[str, Any]:
    """A refusal written by BentoML or Starlette -> a problem with the same status."""
    if status >= 500:  # say nothing of what failed: the server log has it
        return problem(status, "an unexpected error has occurred; the server log has the details")
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("detail"), list):  # BentoML's or FastAPI's validation errors
        found = validation_problem(data["detail"], _model_named(data.get("error")))
        found["status"], found["title"] = status, title(status)
        return found
    if isinstance(data, dict) and {"type", "title", "status"} <= set(data):
        return data
    if isinstance(data, dict):
        message = data.get("error") or data.get("detail")
        if isinstance(message, str) and message:
            return problem(status, message, field=data.get("field") if isinstance(data.get("field"), str) else None)
    text = body.decode("utf-8", "replace").strip() if data is None else ""
    return problem(status, text if 0 < len(text) <= 200 and text.isprintable() else title(status))


def _model_named(message: Any) -> str | None:
    """'1 validation error for ScoreRequest' -> 'ScoreRequest'."""
    if isinstance(message, str) and " for " in message:
        return message.rsplit(" for ", 1)[1].strip() or None
    return None


def operation_outcome(found: Mapping[str, Any]) -> dict[str, Any]:
    """The FHIR route's form of a problem: one error issue with the detail and the field."""
    issue: dict[str, Any] = {"severity": "error", "code": _FHIR_ISSUE.get(int(found["status"]), "exception"),
                             "diagnostics": str(found.get("detail", found.get("title", "")))}
    if found.get("field"):
        issue["expression"] = [str(found["field"])]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def encode(found: Mapping[str, Any], path: str) -> tuple[bytes, str]:
    """Body and media type of a refusal on this path."""
    if path == FHIR_PATH:
        return json.dumps(operation_outcome(found), ensure_ascii=False).encode("utf-8"), FHIR_JSON
    return json.dumps(found, ensure_ascii=False).encode("utf-8"), PROBLEM_JSON


def _media(headers: Sequence[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.decode("latin-1").split(";")[0].strip().lower()
    return ""


class ProblemResponses:
    """The `send` of one request, rewriting a refusal (status >= 400) that is not yet a problem
    (or, on the FHIR route, not yet an OperationOutcome) once its whole body has passed. HTML
    refusals for browsers and bodiless answers to HEAD pass as they are."""

    def __init__(self, send: Callable[[dict], Awaitable[None]], path: str, method: str) -> None:
        self._send, self.path, self.method = send, path, method
        self._start: dict | None = None
        self._chunks: list[bytes] = []

    def _keeps(self, media: str) -> bool:
        if media == "text/html" or self.method == "HEAD":
            return True
        return media == (FHIR_JSON if self.path == FHIR_PATH else PROBLEM_JSON)

    async def __call__(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            if message["status"] >= 400 and not self._keeps(_media(message.get("headers", []))):
                self._start = message
                return
        elif message["type"] == "http.response.body" and self._start is not None:
            self._chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            await self._rewrite()
            return
        await self._send(message)

    async def _rewrite(self) -> None:
        start, body = self._start, b"".join(self._chunks)
        assert start is not None
        status = start["status"]
        sent = json.loads(body) if _media(start.get("headers", [])) == PROBLEM_JSON else from_foreign(status, body)
        payload, media = encode(sent, self.path)
        kept = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-type", b"content-length")]
        await self._send({**start, "headers": [(b"content-type", media.encode("ascii")),
                                               (b"content-length", str(len(payload)).encode()), *kept]})
        await self._send({"type": "http.response.body", "body": payload})
