"""What the guard in front of every route closes (issue 16: items 1, 4, 9, 10 and 13), over HTTP
on a real `sote-risk serve` of the fixture home (tests/serving_fixture.py), one process for the
module: metrics by route template behind an admin key, the body limit counted as bytes arrive
(chunked too), our own docs page and the security headers of /ui, duplicate Authorization and
TRACE refused before any key is read, keys that expire, and request text escaped in the log."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import secrets
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from serving.auth import create_key
from serving.metrics import OTHER, route_template
from tests.serving_fixture import members
from tests.serving_server import ServiceProcess, start_service

pytestmark = pytest.mark.slow

ELDERLY = "elderly-hospitalisation"
MB = 1024 * 1024
SECURITY = {"cache-control": "no-store", "x-frame-options": "DENY", "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer"}


@dataclass
class Guarded:
    service: ServiceProcess
    home: Path
    keys: dict[str, str]
    client: httpx.Client  # no Authorization header unless told
    member: int

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


@pytest.fixture(scope="module")
def guarded(fixture_home_template, tmp_path_factory):
    home = tmp_path_factory.mktemp("serving-guard") / "home"
    shutil.copytree(fixture_home_template, home)
    keys = {role: create_key(home / "keys.json", role)[0] for role in ("crm", "clinician", "admin")}
    service = start_service(home)
    client = httpx.Client(base_url=service.url, timeout=60)
    try:
        yield Guarded(service, home, keys, client, members(ELDERLY, limit=1)[0])
    finally:
        client.close()
        service.stop()


# --- item 1: /metrics --------------------------------------------------------------------------


def endpoints(metrics: str) -> set[str]:
    return set(re.findall(r'endpoint="([^"]*)"', metrics))


def test_metrics_need_an_admin_key_and_name_route_templates_only(guarded):
    assert guarded.client.get("/metrics").status_code == 401
    assert guarded.client.get("/metrics", headers=guarded.auth("crm")).status_code == 403
    page = guarded.client.get(f"/ui/customers/{guarded.member}", headers=guarded.auth("clinician"))
    assert page.status_code == 200
    pseudonyms = [str(900_000 + i) for i in range(5)]
    for pseudonym in pseudonyms:  # a probe: other customers' pages without a key, and paths that are no route
        assert guarded.client.get(f"/ui/customers/{pseudonym}").status_code == 401
        assert guarded.client.get(f"/probe-{pseudonym}/x").status_code in (401, 404)
    metrics = guarded.client.get("/metrics", headers=guarded.auth("admin"))
    assert metrics.status_code == 200
    text = metrics.text
    seen = endpoints(text)
    assert "/ui/customers/{customer_id}" in seen and OTHER in seen
    assert all(label == OTHER or route_template(label) == label or "{" in label for label in seen), seen
    for pseudonym in [str(guarded.member), *pseudonyms]:  # as a number of its own, not digits of a duration
        assert not re.search(rf"(?<![\d.]){pseudonym}(?![\d.])", text), f"a pseudonym in /metrics: {pseudonym}"
    # the page opened with a key is counted under its template, the probe's 401s under OTHER
    assert re.search(r'sote_risk_request_total\{endpoint="/ui/customers/\{customer_id\}",http_response_code="200"\} [1-9]', text)
    assert re.search(rf'sote_risk_request_total\{{endpoint="{OTHER}",http_response_code="401"\}} [1-9]', text)


def test_random_unauthorised_paths_do_not_grow_metrics(guarded):
    def size() -> tuple[int, int]:
        text = guarded.client.get("/metrics", headers=guarded.auth("admin")).text
        return len(text), len(endpoints(text))

    for _ in range(3):  # every label of the probe exists once
        guarded.client.get(f"/{secrets.token_hex(6)}")
        guarded.client.post(f"/ui/customers/{secrets.randbelow(10**6)}/{secrets.token_hex(3)}")
    before = size()
    for _ in range(300):
        guarded.client.get(f"/{secrets.token_hex(6)}")
        guarded.client.get(f"/ui/customers/{secrets.randbelow(10**6)}")
        guarded.client.post(f"/ui/customers/{secrets.randbelow(10**6)}/{secrets.token_hex(3)}")
    after = size()
    assert after[1] == before[1], (before, after)
    assert abs(after[0] - before[0]) <= 0.01 * before[0], (before, after)


# --- item 4: the body limit ----------------------------------------------------------------------


def send_chunked(url: str, path: str, headers: dict[str, str], total: int, chunk: int = 64 * 1024) -> tuple[int, int]:
    """POST a chunked body of up to `total` bytes, stopping when the server answers; (status, bytes sent)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=60)
    head = [f"POST {path} HTTP/1.1", f"Host: {parts.hostname}", "Content-Type: application/json",
            "Transfer-Encoding: chunked", *(f"{k}: {v}" for k, v in headers.items())]
    sent, data = 0, b"[" + b" " * (chunk - 1)
    response = b""
    try:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sock.setblocking(False)
        while sent < total:
            try:
                response += sock.recv(65536)
            except BlockingIOError:
                pass
            if response:
                break
            frame = f"{len(data):x}\r\n".encode() + data + b"\r\n"
            sock.setblocking(True)
            sock.sendall(frame)
            sock.setblocking(False)
            sent += len(data)
        sock.setblocking(True)
        sock.settimeout(60)
        if not response:
            sock.sendall(b"0\r\n\r\n")
        while b"\r\n\r\n" not in response:
            more = sock.recv(65536)
            if not more:
                break
            response += more
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sock.close()
    status = int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0
    return status, sent


@pytest.mark.parametrize("path, role", [("/score", "crm"), ("/score_history", "crm"), ("/feedback", "crm"),
                                        ("/reload", "admin"), ("/predict_row", "crm"), ("/page_link", "clinician")])
def test_a_chunked_body_past_the_limit_is_refused_as_it_arrives(guarded, path, role):
    status, sent = send_chunked(guarded.service.url, path, guarded.auth(role), total=48 * MB)
    assert status == 413, (status, sent)
    assert sent < 24 * MB, f"the server read {sent / MB:.0f} MB before refusing"
    assert guarded.client.get("/readyz").status_code == 200


def test_a_body_within_the_limit_still_reaches_the_route(guarded):
    body = b'{"customer_id": %d}' % guarded.member + b" " * (2 * MB)
    response = guarded.client.post("/score", content=body, headers={**guarded.auth("crm"), "Content-Type": "application/json"})
    assert response.status_code == 200 and response.json()["customer_id"] == guarded.member


# --- item 10: docs page and /ui headers ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/docs"])
def test_our_docs_page_loads_nothing_from_elsewhere(guarded, path):
    response = guarded.client.get(path)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    text = response.text.lower()
    assert "<script" not in text and "googletagmanager" not in text and "http://" not in text and "https://" not in text
    assert 'href="docs.json"' in text and guarded.client.get("/docs.json").status_code == 200
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_fastapi_docs_under_ui_are_gone(guarded):
    for path in ("/ui/docs", "/ui/redoc", "/ui/openapi.json"):
        assert guarded.client.get(path, headers=guarded.auth("admin")).status_code == 404, path


def assert_secured(response: httpx.Response) -> str:
    for name, value in SECURITY.items():
        assert response.headers.get(name) == value, (response.request.url, name, response.headers.get(name))
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "http" not in policy and "*" not in policy and "unsafe-eval" not in policy
    return policy


def test_every_ui_response_carries_the_security_headers(guarded):
    member, admin = guarded.member, guarded.auth("admin")
    page = guarded.client.get(f"/ui/customers/{member}", headers=admin)
    card = guarded.client.get(f"/ui/model_card/{ELDERLY}", headers=admin)
    for response in (page, card):
        assert response.status_code == 200
        policy = assert_secured(response)
        styles = re.findall(r"<style\b[^>]*>(.*?)</style>", response.text, flags=re.S)
        assert styles
        for style in styles:  # each inline style element is allowed by its own hash, nothing more
            digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in policy
        assert "'unsafe-inline'" not in policy.split("style-src ", 1)[1]
    refusals = [
        guarded.client.get(f"/ui/customers/{member}"),  # no key: JSON 401
        guarded.client.get(f"/ui/customers/{member}", headers={"Accept": "text/html"}),  # no key, a browser: HTML 401
        guarded.client.get(f"/ui/customers/{member}", headers=guarded.auth("crm")),  # 403
        guarded.client.get("/ui/customers/999999999", headers=admin),  # 404 unknown customer
        guarded.client.get(f"/ui/customers/{member}?lang=sv", headers=admin),  # 400: not a language the schema takes
        guarded.client.get("/ui/nowhere", headers=admin),  # 404 no route
    ]
    assert [r.status_code for r in refusals] == [401, 401, 403, 404, 400, 404]
    for response in refusals:
        assert_secured(response)


# --- item 13: Authorization, TRACE, expiry -----------------------------------------------------


def test_two_authorization_headers_are_refused(guarded):
    headers = [("Authorization", f"Bearer {guarded.keys['crm']}"), ("Authorization", f"Bearer {guarded.keys['admin']}")]
    for path in ("/score", "/reload"):
        response = guarded.client.post(path, json={"customer_id": guarded.member} if path == "/score" else {}, headers=headers)
        assert response.status_code == 400 and response.json()["field"] == "Authorization", (path, response.text)
    # the same key twice is still two headers
    twice = [("Authorization", f"Bearer {guarded.keys['crm']}")] * 2
    assert guarded.client.post("/score", json={"customer_id": guarded.member}, headers=twice).status_code == 400


@pytest.mark.parametrize("path, allow", [("/score", "POST"), ("/reload", "POST"), ("/ui/customers/1", "GET, HEAD"),
                                         ("/metrics", "GET, HEAD"), ("/nowhere", "GET, HEAD")])
def test_trace_is_405_before_any_key(guarded, path, allow):
    for headers in ({}, guarded.auth("admin")):
        response = guarded.client.request("TRACE", path, headers=headers)
        assert response.status_code == 405 and response.headers["allow"] == allow, (path, response.status_code)


def test_an_expired_key_gets_401_naming_its_expiry_and_a_valid_one_works(guarded):
    keys = guarded.home / "keys.json"
    old, old_record = create_key(keys, "crm", dt.timedelta(days=90), now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=91))
    fresh, _ = create_key(keys, "crm", dt.timedelta(days=90))
    body = {"customer_id": guarded.member}
    refused = guarded.client.post("/score", json=body, headers={"Authorization": f"Bearer {old}"})
    assert refused.status_code == 401
    assert "expired" in refused.json()["detail"] and old_record.expires in refused.json()["detail"]
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    assert guarded.client.post("/score", json=body, headers={"Authorization": f"Bearer {fresh}"}).status_code == 200
    # a wrong secret for the expired key id says nothing about expiry
    wrong = guarded.client.post("/score", json=body, headers={"Authorization": f"Bearer sr_{old_record.key_id}.nope"})
    assert wrong.status_code == 401 and "expired" not in wrong.text


# --- item 9: request text in the log -------------------------------------------------------------


FORGED = "\n2026-01-01 [INFO] forged"


def test_a_key_name_cannot_start_a_log_line(guarded):
    body = {"customer_id": guarded.member, FORGED: 1, "x\r\u2028y\x1b[31m": 2}
    response = guarded.client.post("/score", json=body, headers=guarded.auth("crm"))
    assert response.status_code == 400
    path = guarded.client.get("/nowhere%0A2026-01-01%20[INFO]%20forged-path", headers=guarded.auth("admin"))
    assert path.status_code == 404
    log = guarded.service.log.read_text(encoding="utf-8", errors="replace")
    lines = log.splitlines()
    assert not [line for line in lines if "forged" in line and line.lstrip().startswith("2026-01-01 [INFO]")], \
        "a forged log line"
    assert "\\x0a2026-01-01 [INFO] forged" in log  # the key name, escaped, in the rejected request's line
    assert "\x1b" not in log and "\u2028" not in log
