"""Signed webhook bodies (issue 16, item 13): Standard-Webhooks-style headers from the dispatcher,
verified by the bundled CRM receiver; https required except to loopback; the secret file."""

import json
import stat
import time
import warnings

import httpx
import pytest

from alerts import dispatcher, outbox, webhook_signing as ws
from alerts.dispatcher import DispatchConfig, run_once
from base.errors import SoteRiskError
from _alerts_helpers import record

with warnings.catch_warnings():  # starlette nags about its httpx-based test client; it works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

SECRET = ws.new_secret()


def test_the_signature_is_the_standard_webhooks_one():
    """The specification's own example (standard-webhooks test vectors)."""
    key = ws.secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    body = b'{"test": 2432232314}'
    assert ws.signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_verify_refuses_a_changed_body_a_stale_time_and_a_wrong_key():
    key, now = ws.secret_key(SECRET), 1_700_000_000
    headers = ws.signed_headers(key, "card-1", now, b'{"a": 1}')
    assert ws.verify(key, headers, b'{"a": 1}', now=now + 299) == "card-1"
    for changed, body, at, match in [
        (headers, b'{"a": 2}', now, "does not match"),
        (headers, b'{"a": 1}', now + 301, "stale or replayed"),
        (headers, b'{"a": 1}', now - 301, "stale or replayed"),
        ({**headers, ws.ID: "card-2"}, b'{"a": 1}', now, "does not match"),
        ({k: v for k, v in headers.items() if k != ws.SIGNATURE}, b'{"a": 1}', now, "missing"),
    ]:
        with pytest.raises(ws.SignatureError, match=match):
            ws.verify(key, changed, body, now=at)
    with pytest.raises(ws.SignatureError, match="does not match"):
        ws.verify(ws.secret_key(ws.new_secret()), headers, b'{"a": 1}', now=now)
    rotated = {**headers, ws.SIGNATURE: f"v1,bm90IGl0 {headers[ws.SIGNATURE]}"}  # any listed signature may match
    assert ws.verify(key, rotated, b'{"a": 1}', now=now) == "card-1"


def test_the_dispatcher_signs_each_body_with_the_card_id_as_message_id(tmp_path):
    conn = outbox.connect(tmp_path / "outbox.db")
    record(conn, [1, 2])
    seen = []

    def handler(request):
        seen.append(ws.verify(ws.secret_key(SECRET), request.headers, request.content, now=time.time()))
        assert request.headers["Idempotency-Key"] == request.headers[ws.ID]
        return httpx.Response(201)

    config = DispatchConfig(webhook_url="http://127.0.0.1:9/alerts", secret=SECRET)
    assert run_once(conn, config, client=httpx.Client(transport=httpx.MockTransport(handler))).delivered == 2
    assert sorted(seen) == sorted(a["alert_id"] for a in outbox.list_alerts(conn))
    assert SECRET not in repr(config)  # a config in a traceback or log does not give the secret away
    conn.close()


@pytest.mark.parametrize("url", ["https://crm.example.fi/alerts", "http://127.0.0.1:8900/alerts",
                                 "http://127.8.0.1/a", "http://localhost:8900/alerts", "http://[::1]:8900/alerts"])
def test_https_or_loopback_is_accepted(url):
    assert DispatchConfig(webhook_url=url, secret=SECRET).webhook_url == url


@pytest.mark.parametrize("url", ["http://crm.example.fi/alerts", "http://10.0.0.5/alerts", "ftp://127.0.0.1/a",
                                 "https:///alerts", "http://localhost.evil.example/a"])
def test_plain_http_to_another_host_is_refused_in_one_line_naming_the_setting(url, monkeypatch, tmp_path):
    monkeypatch.setenv("SOTE_RISK_HOME", str(tmp_path))
    monkeypatch.setenv(dispatcher.WEBHOOK_ENV, url)
    with pytest.raises(SoteRiskError) as error:
        dispatcher.config_from_env()
    message = str(error.value)
    assert dispatcher.WEBHOOK_ENV in message and "https" in message and "\n" not in message
    with pytest.raises(ValueError, match="https"):
        DispatchConfig(webhook_url=url, secret=SECRET)


def test_the_secret_file_is_made_once_private_and_refused_when_others_can_read_it(tmp_path):
    path = tmp_path / "home" / "crm_webhook_secret"
    first = ws.load_secret(path)
    assert ws.load_secret(path) == first and first.startswith("whsec_")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    with pytest.raises(SoteRiskError, match="chmod 600"):
        ws.load_secret(path)


# --- the bundled CRM receiver verifies ------------------------------------------------------------


@pytest.fixture()
def receiver(tmp_path):
    from alerts.crm_receiver import create_app

    with TestClient(create_app(tmp_path / "crm.db", secret=SECRET)) as client:
        yield client


def card(uuid="card-1"):
    return {"uuid": uuid, "summary": "Risk", "indicator": "warning", "source": {"label": "sote-risk"}}


def post(client, body, *, key=SECRET, at=None, msg_id=None, idempotency=None):
    raw = json.dumps(body).encode()
    msg_id = msg_id or body["uuid"]
    headers = ws.signed_headers(ws.secret_key(key), msg_id, int(time.time() if at is None else at), raw)
    headers |= {"Idempotency-Key": idempotency or msg_id, "Content-Type": "application/json"}
    return client.post("/alerts", content=raw, headers=headers)


def test_the_receiver_refuses_unsigned_wrongly_signed_and_stale_bodies_with_401(receiver):
    unsigned = receiver.post("/alerts", json=card(), headers={"Idempotency-Key": "card-1"})
    wrong = post(receiver, card(), key=ws.new_secret())
    stale = post(receiver, card(), at=time.time() - 6 * 60)
    assert [r.status_code for r in (unsigned, wrong, stale)] == [401, 401, 401]
    assert "stale or replayed" in stale.json()["error"]
    assert receiver.get("/received").json()["count"] == 0
    assert post(receiver, card()).status_code == 201


def test_a_replay_within_the_window_stores_nothing_new(receiver):
    raw = json.dumps(card()).encode()
    headers = ws.signed_headers(ws.secret_key(SECRET), "card-1", int(time.time()), raw) | {"Idempotency-Key": "card-1"}
    first = receiver.post("/alerts", content=raw, headers=headers)
    replay = receiver.post("/alerts", content=raw, headers=headers | {"Idempotency-Key": "another-key"})
    again = receiver.post("/alerts", content=raw, headers=headers)
    assert (first.status_code, replay.status_code, again.status_code) == (201, 400, 200) and again.json()["duplicate"]
    assert receiver.get("/received").json()["count"] == 1


def test_a_bad_dispatch_config_says_what_is_wrong_without_the_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("SOTE_RISK_HOME", str(tmp_path))
    with pytest.raises(SoteRiskError) as error:
        dispatcher.config_from_env(webhook_url="http://127.0.0.1:9/alerts", lease_s=1.0, request_timeout_s=5.0)
    secret = (tmp_path / "crm_webhook_secret").read_text().strip()
    assert "lease_s must exceed request_timeout_s" in str(error.value)
    assert secret not in str(error.value) and secret.removeprefix("whsec_")[:12] not in str(error.value)
