"""The local CRM receiver in-process: dedup by Idempotency-Key, 400s, failure modes (every
request signed as the dispatcher signs it; tests/test_webhook_signing.py checks the refusals)."""

import json
import time
import warnings

import pytest

with warnings.catch_warnings():  # starlette nags about its httpx-based test client; it works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from alerts import webhook_signing as ws
from alerts.cards import CardInput, ProblemRisk, build_card
from alerts.crm_receiver import create_app
from _alerts_helpers import PROBLEM, flagged

SECRET = ws.new_secret()


@pytest.fixture()
def client(tmp_path):
    with TestClient(create_app(tmp_path / "crm.db", secret=SECRET)) as c:
        yield c


def signed(raw: bytes, msg_id: str) -> dict:
    return ws.signed_headers(ws.secret_key(SECRET), msg_id, int(time.time()), raw)


def a_card(subject_id=None):
    """The card of a real test-region customer, with the reasons the scoring path gives them."""
    who = flagged()
    return build_card(CardInput(who.subject_id if subject_id is None else subject_id, who.time,
                                [ProblemRisk(PROBLEM, who.probability, who.band, who.model_version, who.reasons)]))


def post(client, card, key=None):
    raw = json.dumps(card).encode()
    msg_id = (key or card.get("uuid") or "k") if key is not False else card["uuid"]
    headers = signed(raw, msg_id) | ({} if key is False else {"Idempotency-Key": msg_id})
    return client.post("/alerts", content=raw, headers=headers | {"Content-Type": "application/json"})


def test_a_repeated_key_returns_the_original_receipt_and_is_stored_once(client):
    card = a_card()
    first = post(client, card)
    second = post(client, card)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["receipt_id"] == first.json()["receipt_id"] and second.json()["duplicate"]
    items = client.get("/received").json()["items"]
    assert len(items) == 1 and items[0]["deliveries"] == 2 and items[0]["body"] == card
    assert items[0]["body"]["detail"].count("\n- ") == len(flagged().reasons)  # the reasons arrive as sent
    assert items[0]["idempotency_key"] == card["uuid"]


@pytest.mark.parametrize(
    "body, key, message",
    [  # bodies are built in the test (a card needs the test region, which is built on first use)
        (lambda: a_card(), False, "Idempotency-Key"),
        (lambda: {"summary": "x"}, "k1", "uuid"),
        (lambda: {**a_card(), "indicator": "urgent"}, "k2", "indicator"),
        (lambda: {**a_card(), "summary": "x" * 140}, "k3", "summary"),
    ],
    ids=["no-key", "no-uuid", "bad-indicator", "long-summary"],
)
def test_bad_requests_get_400_and_are_not_stored(client, body, key, message):
    response = post(client, body(), key)
    assert response.status_code == 400 and message in response.json()["error"]
    assert client.get("/received").json()["count"] == 0


def test_invalid_json_is_400(client):
    response = client.post("/alerts", content=b"{not json", headers={"Idempotency-Key": "k", **signed(b"{not json", "k")})
    assert response.status_code == 400


def test_failure_modes_and_fail_count(client):
    card = a_card()
    assert client.post("/admin/mode", json={"mode": "fail500"}).status_code == 200
    assert post(client, card).status_code == 500
    client.post("/admin/mode", json={"mode": "down"})
    assert post(client, card).status_code == 503
    client.post("/admin/mode", json={"mode": "fail500", "fail_count": 2})
    assert [post(client, card).status_code for _ in range(3)] == [500, 500, 201]
    assert client.get("/health").json()["mode"] == "ok"
    assert client.post("/admin/mode", json={"mode": "sideways"}).status_code == 400
