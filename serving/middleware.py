"""ASGI middleware in front of every route: API keys and roles, signed page links, and request
media types.

Pure ASGI (no BaseHTTPMiddleware) so it costs microseconds and never buffers bodies. POST
/predict_row, once checked, is answered here (serving/row_endpoint.py says why). It runs
before BentoML parses a body, which is also where the media-type guard belongs: BentoML would
parse `multipart/form-data` without a boundary (or urlencoded, or its pickle format) and answer
500; here such requests get a 415 that says what to send.

A GET of a clinician page or a model card without an Authorization header may instead carry a
signed link (serving/page_links.py): it opens as role clinician (key id "signed-link"), and the
route learns the link's expiry from the request state. A refusal a browser asked for (Accept:
text/html) is a small HTML page with the reason in Finnish and English; API clients get JSON.

Before any key is looked at: TRACE gets 405 (nothing here echoes a request back), and a request
with two Authorization headers gets 400 (which one a proxy, a log and this guard read could
differ). Every request body is counted as it arrives, whatever the route and whether or not it
says its length (chunked encoding does not): past MAX_BODY_BYTES the client gets 413 and the
route sees the client gone, so no route ever holds more than the limit. Every response under
/ui carries the security headers of serving/headers.py. / and /docs answer our own docs page
(serving/docs_page.py), /metrics the Prometheus series (serving/metrics.py) to admin keys.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from serving import page_links, row_endpoint
from serving.auth import KeyExpired, KeyRing, allowed
from serving.docs_page import docs_page
from serving.headers import page_headers, with_security_headers
from serving.problems import PROBLEM_JSON, ProblemResponses, problem

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]

# Route -> action (serving/auth.PERMISSIONS). Prefix routes end with "/".
ACTIONS = {
    "/score": "score",
    "/score_history": "score_history",
    "/score_batch": "score_batch",
    "/predict_row": "predict_row",
    "/explain": "explain",
    "/fhir_risk_assessment": "fhir",
    "/reload": "reload",
    "/feedback": "feedback",
    "/page_link": "page_link",
    "/ui/customers/": "page",
    "/ui/model_card/": "model_card",
    "/ui/costs": "costs",
    "/ui/costs.csv": "costs",
    "/ui/monitoring/": "monitoring",
    "/metrics": "metrics",
}
# Health probes and the API docs: no key (probes have none). /metrics is not among them: it
# tells who uses the service how much (admin keys only; a scraper gets its own admin key).
PUBLIC = {"/", "/docs", "/docs.json", "/healthz", "/livez", "/readyz"}
DOCS_PAGES = {"/", "/docs"}
OPENAPI_PATH = "/docs.json"
JSON_BODY_ROUTES = {route for route in ACTIONS if not route.endswith("/") and route != "/metrics" and not route.startswith("/ui/")}
MAX_BODY_BYTES = 16 * 1024 * 1024
IDENTITY = "sote_identity"
METHOD_NOT_ALLOWED = frozenset({"TRACE", "CONNECT"})


def action_for(path: str) -> str | None:
    if path in ACTIONS:
        return ACTIONS[path]
    for route, action in ACTIONS.items():
        if route.endswith("/") and path.startswith(route):
            return action
    return None


async def _reply(send: Callable[[dict], Awaitable[None]], status: int, detail: str, field: str | None,
                 headers: list | None = None) -> None:
    """A refusal as problem details (serving/problems.py; the FHIR route's send makes it an OperationOutcome)."""
    payload = json.dumps(problem(status, detail, field)).encode("utf-8")
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", PROBLEM_JSON.encode("ascii")), (b"content-length", str(len(payload)).encode()),
                    *(headers or [])],
    })
    await send({"type": "http.response.body", "body": payload})


def allowed_methods(path: str) -> str:
    """The Allow header of a 405: JSON routes take POST, everything else is read with GET."""
    return "POST" if path in JSON_BODY_ROUTES else "GET, HEAD"


def method_allowed(path: str, method: str) -> bool:
    """Whether a known route takes this method; answered before any key is looked at (which
    routes take which method is public, in the OpenAPI document). Unknown paths: True (they
    are refused later, as 401 or 404)."""
    if path not in PUBLIC and action_for(path) is None:
        return True
    return method in (("POST",) if path in JSON_BODY_ROUTES else ("GET", "HEAD"))


def authorization_headers(scope: Scope) -> int:
    return sum(1 for name, _ in scope.get("headers", []) if name.lower() == b"authorization")


def is_page(path: str) -> bool:
    return path == "/ui" or path.startswith("/ui/")


TOO_LARGE = f"request body is larger than {MAX_BODY_BYTES} bytes"


class BodyLimit:
    """The request's receive and send for the route behind the guard, counting body bytes as they
    arrive. Past the limit the client is answered 413 here (unless the route has started its
    response) and the route is told the client went away, so it stops reading; whatever it
    answers after that is dropped. The route has then held at most `limit` bytes of the body."""

    def __init__(self, receive, send, limit: int) -> None:  # noqa: ANN001 (ASGI)
        self._receive, self._send, self.limit = receive, send, limit
        self.received, self.refused, self.started = 0, False, False

    async def receive(self) -> dict:
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.refused = True
                if not self.started:
                    self.started = True
                    # No `Connection: close`: uvicorn would close with the body unread, the kernel
                    # would reset the connection, and most clients would never read this 413.
                    # Kept alive, the server discards the rest of the body as it comes.
                    await _reply(self._send, 413, TOO_LARGE, "body")
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: dict) -> None:
        if self.refused:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


async def _secured(send, message: dict) -> None:  # noqa: ANN001 (ASGI)
    if message["type"] == "http.response.start":
        message = {**message, "headers": with_security_headers(list(message.get("headers", [])))}
    await send(message)


async def _html(send: Callable[[dict], Awaitable[None]], text: str) -> None:
    payload = text.encode("utf-8")
    headers = {"content-type": "text/html; charset=utf-8", "content-length": str(len(payload)), **page_headers(text)}
    await send({"type": "http.response.start", "status": 200,
                "headers": [(k.encode("ascii"), v.encode("ascii")) for k, v in headers.items()]})
    await send({"type": "http.response.body", "body": payload})


async def _json(send: Callable[[dict], Awaitable[None]], payload: bytes) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


async def _metrics(send: Callable[[dict], Awaitable[None]]) -> None:
    import anyio

    from serving.metrics import exposition

    payload, media = await anyio.to_thread.run_sync(exposition)  # reads every worker's files
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", media.encode("ascii")), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


async def _refuse(send: Callable[[dict], Awaitable[None]], refused: page_links.LinkRefused, headers: dict[str, str]) -> None:
    """A page request that may not open: HTML with the reason for a browser, JSON for a client."""
    extra = [(b"www-authenticate", b'Bearer realm="sote-risk"')] if refused.status == 401 else []
    if not page_links.wants_html(headers):
        await _reply(send, refused.status, refused.en, refused.field, extra)
        return
    payload = page_links.refusal_page(refused).encode("utf-8")
    await send({
        "type": "http.response.start", "status": refused.status,
        "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(payload)).encode()),
                    (b"cache-control", b"no-store"), (b"referrer-policy", b"no-referrer"), *extra],
    })
    await send({"type": "http.response.body", "body": payload})


class GuardMiddleware:
    """401 without a valid key, 403 for a role that may not, 415/413 for bodies we do not take."""

    def __init__(self, app: ASGIApp, keys_path: Callable[[], Any] | None = None,
                 link_secret_path: Callable[[], Any] | None = None, openapi: Callable[[], dict] | None = None) -> None:
        self.app = app
        self._openapi = openapi  # the service's OpenAPI document (serving/openapi.py), served at /docs.json
        self._openapi_bytes: bytes | None = None
        self._keys_path = keys_path
        self._keys: KeyRing | None = None
        self._link_secret_path = link_secret_path
        self._links: page_links.LinkKeeper | None = None

    def openapi_document(self) -> bytes:
        if self._openapi_bytes is None:  # built once per worker: the routes do not change while it runs
            assert self._openapi is not None
            self._openapi_bytes = json.dumps(self._openapi()).encode("utf-8")
        return self._openapi_bytes

    def keys(self) -> KeyRing:
        if self._keys is None:  # lazily: the home folder is resolved in the worker, not at import
            from base.settings import home

            self._keys = KeyRing(self._keys_path() if self._keys_path else home().keys_file)
        return self._keys

    def links(self) -> page_links.LinkKeeper:
        if self._links is None:
            from base.settings import home

            self._links = page_links.LinkKeeper(self._link_secret_path() if self._link_secret_path else home().link_secret)
        return self._links

    async def __call__(self, scope: Scope, receive, send) -> None:  # noqa: ANN001 (ASGI)
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if is_page(path):
            plain_send = send

            async def send(message: dict) -> None:  # every /ui response, refusals included
                await _secured(plain_send, message)
        method = scope.get("method", "GET")
        send = ProblemResponses(send, path, method)  # every refusal leaves as problem details
        if method in METHOD_NOT_ALLOWED or not method_allowed(path, method):
            await _reply(send, 405, f"method {method} is not allowed on {path}", "method",
                         [(b"allow", allowed_methods(path).encode("ascii"))])
            return
        if authorization_headers(scope) > 1:
            await _reply(send, 400, "send one Authorization header, not several", "Authorization")
            return
        limit = BodyLimit(receive, send, MAX_BODY_BYTES)
        if path in PUBLIC:
            if path in DOCS_PAGES and method in ("GET", "HEAD"):
                await _html(send, docs_page())
                return
            if path == OPENAPI_PATH and self._openapi is not None:
                await _json(send, self.openapi_document())
                return
            await self.app(scope, limit.receive, limit.send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        action = action_for(path)
        link_expires = None
        if ("authorization" not in headers and action in page_links.LINK_ACTIONS and method == "GET"
                and page_links.carries_signature(scope)):
            try:
                link_expires = self.links().check(page_links.request_target(scope))
            except page_links.LinkRefused as refused:
                await _refuse(send, refused, headers)
                return
            identity = page_links.LINK_IDENTITY
        else:
            try:
                identity = self.keys().identify(headers.get("authorization"))
            except KeyExpired as error:
                await _reply(send, 401, str(error), "Authorization",
                             [(b"www-authenticate", b'Bearer realm="sote-risk", error="invalid_token", error_description="expired"')])
                return
        if identity is None:
            if action in page_links.LINK_ACTIONS:  # a page: say a signed link opens it too (HTML for a browser)
                await _refuse(send, page_links.NO_CREDENTIALS, headers)
                return
            await _reply(send, 401, "a valid API key is required: send 'Authorization: Bearer <key>'", "Authorization",
                         [(b"www-authenticate", b'Bearer realm="sote-risk"')])
            return
        if action is not None and not allowed(identity.role, action):
            await _reply(send, 403, f"role {identity.role!r} may not use {path}", "Authorization")
            return
        if path == "/metrics":
            await _metrics(send)
            return
        if path in JSON_BODY_ROUTES:
            media = headers.get("content-type", "").split(";")[0].strip().lower() or "application/json"
            if media != "application/json":
                await _reply(send, 415, f"Content-Type must be application/json, not {media!r}", "Content-Type")
                return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            await _reply(send, 413, TOO_LARGE, "body")
            return
        if path == row_endpoint.PATH and method == "POST" and row_endpoint.active():
            # Probability-only scoring is answered here, not by BentoML's handler: see serving/row_endpoint.py.
            await row_endpoint.handle(scope, limit.receive, limit.send, MAX_BODY_BYTES)
            return
        state = scope.setdefault("state", {})
        state[IDENTITY] = identity
        state[page_links.LINK_EXPIRES] = link_expires  # None: opened with a key (its page's links stay plain)
        await self.app(scope, limit.receive, limit.send)
