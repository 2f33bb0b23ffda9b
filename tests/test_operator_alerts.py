"""Operator alerts (alerts/operator.py): a monitored model's new breach is queued once in the outbox
(schema 3's operator_alerts, a version-2 outbox upgraded in place) and delivered by the dispatcher
to the operator webhook with the card delivery's guarantees (Idempotency-Key, signature, retry on
an outage, dead when refused)."""

from __future__ import annotations

import json
import random

import httpx
import pytest

from alerts import dispatcher, outbox
from alerts.operator import KIND, raise_breach_alert
from tests.test_monitoring import world  # noqa: F401 (the fixture)

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # base64 of 24 bytes, test only


def test_a_version_2_outbox_gains_the_operator_table_and_keeps_its_rows(tmp_path):
    path = tmp_path / "outbox.db"
    conn = outbox.connect(path)
    conn.execute("INSERT INTO policies (problem, policy, updated) VALUES ('p', '{}', 'now')")
    conn.execute("DROP TABLE operator_alerts")
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    again = outbox.connect(path)
    try:
        assert again.execute("PRAGMA user_version").fetchone()[0] == outbox.SCHEMA_VERSION == 3
        assert outbox.saved_policies(again) == {"p": "{}"}
        assert outbox.list_operator_alerts(again) == []
    finally:
        again.close()


def test_a_breach_raises_one_operator_alert_and_the_same_breach_none_again(tmp_path, world):  # noqa: F811
    conn = outbox.connect(tmp_path / "outbox.db")
    try:
        shifted, quiet = world["shifted"], world["quiet"]
        assert raise_breach_alert(conn, quiet, "champion", "run-q") is None
        alert_id, new = raise_breach_alert(conn, shifted, "champion", "run-1", now=100.0)
        assert new
        again_id, again_new = raise_breach_alert(conn, shifted, "champion", "run-2", now=200.0)  # a re-run: nothing new
        assert again_id == alert_id and not again_new
        [row] = outbox.list_operator_alerts(conn)
        assert (row["kind"], row["problem"], row["status"]) == (KIND, shifted.problem, "pending")
        payload = json.loads(conn.execute("SELECT payload FROM operator_alerts").fetchone()[0])
        assert payload["latest_breach"].startswith("2024-12") and payload["breached_months"] == len(shifted.breaches)
        assert payload["alert_id"] == alert_id and payload["page"].startswith(f"/ui/monitoring/{shifted.problem}")
    finally:
        conn.close()


def _config(**extra) -> dispatcher.DispatchConfig:
    return dispatcher.DispatchConfig(webhook_url="http://127.0.0.1:9/operator", secret=SECRET, base_delay_s=1.0,
                                     cap_delay_s=1.0, **extra)


def _queued(tmp_path):
    conn = outbox.connect(tmp_path / "outbox.db")
    alert_id, _ = outbox.record_operator_alert(conn, kind=KIND, problem="elderly-hospitalisation", as_of="2024-12-01",
                                               key=("champion", "1", "2024-12"), payload={"type": KIND}, now=0.0)
    return conn, alert_id


def test_operator_alerts_are_delivered_with_the_cards_guarantees(tmp_path):
    conn, alert_id = _queued(tmp_path)
    seen = []
    answers = iter([503, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(next(answers))

    client = httpx.Client(transport=httpx.MockTransport(handler))
    try:  # an outage (503): retried after the backoff, not at once
        first = dispatcher.deliver_operator_alerts(conn, _config(), client=client, clock=lambda: 10.0,
                                                   rng=random.Random(0))
        assert first.as_dict()["retrying"] == 1 and outbox.list_operator_alerts(conn)[0]["status"] == "pending"
        second = dispatcher.deliver_operator_alerts(conn, _config(), client=client, clock=lambda: 20.0)
        assert second.as_dict()["delivered"] == 1
    finally:
        client.close()
    [row] = outbox.list_operator_alerts(conn)
    assert row["status"] == "delivered" and row["attempts"] == 2
    assert [r.headers["Idempotency-Key"] for r in seen] == [alert_id, alert_id]
    assert all("webhook-signature" in r.headers for r in seen)
    assert json.loads(seen[-1].content)["alert_id"] == alert_id
    assert outbox.list_alerts(conn) == []  # the CRM's cards are another table
    conn.close()


def test_an_operator_alert_the_receiver_refuses_is_dead(tmp_path):
    conn, _ = _queued(tmp_path)
    client = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(400)))
    try:
        counts = dispatcher.deliver_operator_alerts(conn, _config(), client=client, clock=lambda: 5.0)
    finally:
        client.close()
    assert counts.as_dict()["dead"] == 1
    [row] = outbox.list_operator_alerts(conn)
    assert row["status"] == "dead" and row["last_error"] == "HTTP 400"
    conn.close()


def test_an_operator_webhook_off_loopback_must_be_https(monkeypatch):
    from base.errors import SoteRiskError
    from base.settings import settings

    monkeypatch.setenv("SOTE_RISK_OPERATOR_WEBHOOK_URL", "http://ops.example.org/hook")
    settings.cache_clear() if hasattr(settings, "cache_clear") else None
    try:
        with pytest.raises(SoteRiskError, match="operator webhook .*SOTE_RISK_OPERATOR_WEBHOOK_URL.* must be an https URL"):
            dispatcher.operator_config_from_env()
    finally:
        monkeypatch.delenv("SOTE_RISK_OPERATOR_WEBHOOK_URL")
        settings.cache_clear() if hasattr(settings, "cache_clear") else None
