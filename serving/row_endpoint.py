"""POST /predict_row answered in the ASGI guard, after the key and role checks.

Why not through BentoML's API handler: one row takes ~0.2 ms to score, and BentoML's request
path around it (request context, router, IO descriptors, per-request tracing span, access-log
line) cost several times that; py-spy put our own work at ~15 % of a worker's time. This keeps
the API the same for clients: the route is still declared with `@bentoml.api` (so OpenAPI,
and the fallback before the service instance exists), the body is validated by the same
pydantic type with the same 400 body BentoML gives (`{"error": "N validation error for
PredictRowRequest", "detail": [...]}`, no input values echoed), scoring errors get the same
status and `{"error", "field"}` as the other routes, and the metrics middleware (it sits
outside the guard: serving/metrics.py) still counts and times the route. What the route no longer has is an
access-log line and a tracing span (serving/service.py skips both for it by configuration).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from serving.api_types import PredictRowRequest
from serving.problems import PROBLEM_JSON, problem, validation_problem
from serving.responses import error_body, row_response
from base.errors import SoteRiskError

PATH = "/predict_row"
_JSON = (b"content-type", b"application/json")
_SERVER = (b"server", b"BentoML Service/sote_risk")  # what BentoML's handler sends, kept for parity
logger = logging.getLogger("sote_risk.serving")

# The worker's Scorer, set by RiskService.__init__ (one service instance per worker process).
# None until then: the guard passes the request on to BentoML, which answers as it would.
_scorer: Any | None = None


def serve(scorer: Any) -> None:
    global _scorer
    _scorer = scorer


def active() -> bool:
    return _scorer is not None


def answer(body: bytes) -> tuple[int, bytes]:
    """Status and JSON body (problem details for a refusal) for one posted request body (tests
    call it directly)."""
    try:
        request = PredictRowRequest.model_validate_json(body or b"{}")  # BentoML reads an empty body as {}
    except ValidationError as error:
        return 400, _encoded(validation_problem(error.errors(include_context=False, include_input=False), error.title))
    try:
        response = row_response(_scorer.predict_row(request.problem, request.features))
    except SoteRiskError as error:
        return error_body(error)[0], _encoded(error_body(error)[1])
    return 200, response.__pydantic_serializer__.to_json(response)


def _encoded(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


class TooLarge(Exception):
    pass


async def _read_body(receive: Callable[[], Awaitable[dict]], max_bytes: int) -> bytes:
    """The whole body; a chunked body (no Content-Length for the guard to check) may not
    grow past max_bytes either."""
    chunks, more, size = [], True, 0
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge
        chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def handle(scope: dict, receive: Callable[[], Awaitable[dict]], send: Callable[[dict], Awaitable[None]],
                 max_bytes: int) -> None:
    """The ASGI app of the route (POST only; the guard has checked the key, role and media type)."""
    try:
        status, payload = answer(await _read_body(receive, max_bytes))
    except ConnectionError:
        return
    except TooLarge:
        status, payload = 413, _encoded(problem(413, f"request body is larger than {max_bytes} bytes", "body"))
    except Exception:  # noqa: BLE001  (a bug, not bad input: 500 without the row, as BentoML would)
        logger.exception("predict_row failed")
        status, payload = 500, _encoded(problem(500, "an unexpected error has occurred; the server log has the details"))
    media = _JSON if status == 200 else (b"content-type", PROBLEM_JSON.encode("ascii"))
    await send({"type": "http.response.start", "status": status,
                "headers": [media, (b"content-length", str(len(payload)).encode()), _SERVER]})
    await send({"type": "http.response.body", "body": payload})
