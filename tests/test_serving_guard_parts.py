"""The guard's pure parts, in process: metric labels, the body limit, security headers and log
escaping (the same things over HTTP: tests/test_serving_guard.py)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from serving.headers import content_security_policy, with_security_headers
from serving.logs import RedactValidationErrors, escape_text
from serving.metrics import OTHER, endpoint_label, route_template
from serving.middleware import BodyLimit


@pytest.mark.parametrize("path, template", [
    ("/score", "/score"), ("/ui/customers/121076", "/ui/customers/{customer_id}"),
    ("/ui/model_card/elderly-hospitalisation", "/ui/model_card/{problem}"), ("/metrics", "/metrics"), ("/", "/"),
    ("/ui/customers/", None), ("/ui/customers/1/x", None), ("/score/", None), ("/nope", None), ("/static_content/a.js", None),
])
def test_a_path_has_its_route_template_or_none(path, template):
    assert route_template(path) == template


def test_refused_and_unknown_paths_share_one_label():
    assert endpoint_label("/ui/customers/121076", 200) == "/ui/customers/{customer_id}"
    assert endpoint_label("/ui/customers/121076", 403) == "/ui/customers/{customer_id}"
    assert endpoint_label("/ui/customers/121076", 401) == OTHER
    assert endpoint_label("/a8f3e1", 404) == endpoint_label("/score", 401) == OTHER


def run_limited(chunks: list[bytes], limit: int) -> tuple[list[dict], list[dict]]:
    """An app that reads the whole body and answers 200, behind BodyLimit; (what the client got,
    what the app received)."""
    incoming = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent, seen = [], []

    async def receive() -> dict:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    async def app(receive, send) -> None:  # noqa: ANN001
        while True:
            message = await receive()
            seen.append(message)
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    limit_ = BodyLimit(receive, send, limit)
    asyncio.run(app(limit_.receive, limit_.send))
    return sent, seen


def test_the_body_limit_counts_chunks_as_they_arrive():
    sent, seen = run_limited([b"x" * 10] * 100, limit=35)
    assert sent[0]["status"] == 413 and len(sent) == 2  # the app's own 200 is dropped
    assert [m["type"] for m in seen] == ["http.request"] * 3 + ["http.disconnect"]  # it stopped at the 4th chunk
    ok, seen = run_limited([b"x" * 10] * 3, limit=30)
    assert ok[0]["status"] == 200 and len(seen) == 3


def test_security_headers_are_forced_and_a_page_keeps_its_own_policy():
    style = "body { color: #222; }"
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    policy = content_security_policy(f"<html><style>{style}</style><svg><style type='text/css'>{style}</style></svg>")
    assert policy.count(f"'sha256-{digest}'") == 1 and "http" not in policy and "default-src 'none'" in policy
    headers = dict(with_security_headers([(b"cache-control", b"private, max-age=60"), (b"content-security-policy", b"x")]))
    assert headers[b"cache-control"] == b"no-store" and headers[b"content-security-policy"] == b"x"
    assert headers[b"x-frame-options"] == b"DENY" and headers[b"x-content-type-options"] == b"nosniff"
    assert dict(with_security_headers([]))[b"content-security-policy"].startswith(b"default-src 'none'")


def test_escaped_text_has_no_line_breaks_or_controls():
    forged = "\n2026-01-01 [INFO] forged\r\x1b[31m\u2028\u202e\\n"
    escaped = escape_text(forged)
    assert escaped == "\\x0a2026-01-01 [INFO] forged\\x0d\\x1b[31m\\u2028\\u202e\\\\n"
    assert escaped.isprintable() and escape_text("Lappeenranta ä €") == "Lappeenranta ä €"


def test_a_rejected_requests_field_names_reach_the_log_escaped():
    class Body(BaseModel):
        model_config = ConfigDict(extra="forbid")
        customer_id: int

    with pytest.raises(ValidationError) as caught:
        Body.model_validate({"customer_id": 1, "\n2026-01-01 [INFO] forged": 1})
    record = logging.LogRecord("bentoml", logging.ERROR, __file__, 1, "Exception on %s [%s]", ("/score\n", "POST"),
                               (ValidationError, caught.value, None))
    assert RedactValidationErrors().filter(record)
    message = record.getMessage()
    assert "\n" not in message and record.exc_info is None and record.levelname == "WARNING"
    assert message == "rejected request on /score\\x0a: 1 validation error(s) in \\x0a2026-01-01 [INFO] forged"


def test_a_body_cut_short_is_one_line_not_a_traceback():
    from starlette.requests import ClientDisconnect

    record = logging.LogRecord("bentoml", logging.ERROR, __file__, 1, "Exception on %s [%s]", ("/score", "POST"),
                               (ClientDisconnect, ClientDisconnect(), None))
    assert RedactValidationErrors().filter(record)
    assert record.exc_info is None and record.levelname == "INFO" and "/score" in record.getMessage()


def test_only_routes_are_traced():
    import re

    from serving.metrics import untraced_urls

    untraced = re.compile(untraced_urls(("/score", "/reload")))
    for url in ("http://h:3000/score", "https://sote.example.fi/reload", "http://h/ui/customers/42", "http://h/ui/model_card/x"):
        assert not untraced.search(url), url
    for url in ("http://h:3000/", "http://h/a8f3e1", "http://h/score/x", "http://h/predict_row", "http://h/ui/customers/1/2",
                "http://h/metrics", "http://h/ui/customers/"):
        assert untraced.search(url), url
