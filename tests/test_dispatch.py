"""The dispatcher in-process (httpx MockTransport, fake clock): headers, retry, backoff, dead letters."""

import json
import random
import time
from datetime import date

import httpx
import pytest

from alerts import dispatcher, outbox
from alerts.dispatcher import DispatchConfig, backoff_delay, run_once
from base.errors import SoteRiskError
from alerts.webhook_signing import new_secret
from _alerts_helpers import record

SECRET = new_secret()


class Clock:
    """Starts just after the alerts were recorded (record() uses the real time)."""

    def __init__(self) -> None:
        self.now = time.time() + 1

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def conn(tmp_path):
    c = outbox.connect(tmp_path / "outbox.db")
    yield c
    c.close()


def config(**overrides):
    values = dict(webhook_url="http://127.0.0.1:9/alerts", secret=SECRET, base_delay_s=1.0, cap_delay_s=8.0,
                  max_age_s=3600.0, lease_s=20.0, request_timeout_s=5.0)
    return DispatchConfig(**(values | overrides))


def client(handler):
    return httpx.Client(transport=httpx.MockTransport(handler))


def run(conn, cfg, handler, clock):
    return run_once(conn, cfg, client=client(handler), clock=clock, today=lambda: date(2025, 3, 1), rng=random.Random(1))


def test_delivers_card_json_with_the_alert_id_as_idempotency_key(conn):
    record(conn, [1, 2])
    seen = []

    def handler(request):
        seen.append((request.headers["Idempotency-Key"], json.loads(request.content)))
        return httpx.Response(201)

    counts = run(conn, config(), handler, Clock())
    assert counts.as_dict() == {"delivered": 2, "retrying": 0, "dead": 0, "released": 0}
    assert {key for key, _ in seen} == {a["alert_id"] for a in outbox.list_alerts(conn)}
    assert all(body["uuid"] == key for key, body in seen)
    assert outbox.status_counts(conn) == {"delivered": 2}
    assert run(conn, config(), handler, Clock()).delivered == 0  # nothing twice


def test_failures_back_off_then_succeed(conn):
    record(conn, [1])
    clock = Clock()
    answers = iter([httpx.Response(500), httpx.Response(503), httpx.Response(200)])
    counts = run(conn, config(), lambda r: next(answers), clock)
    assert counts.retrying == 1
    alert = outbox.list_alerts(conn)[0]
    assert alert["last_error"] == "HTTP 500" and alert["next_attempt_at"] >= clock.now
    assert run(conn, config(), lambda r: next(answers), clock).delivered == 0  # not due yet
    clock.now += 8.0
    assert run(conn, config(), lambda r: next(answers), clock).retrying == 1
    clock.now += 8.0
    assert run(conn, config(), lambda r: next(answers), clock).delivered == 1


def test_a_refused_connection_is_an_outage_retried_until_the_alert_is_older_than_its_max_age(conn):
    """Issue 16, item 2: with 10 attempts an alert died ~8 minutes into an outage although its
    maximum age is 24 h. Now only age (or a permanent refusal) makes a dead letter."""
    record(conn, [1])
    clock = Clock()
    cfg = config(max_age_s=24 * 3600.0, cap_delay_s=180.0)

    def refused(request):
        raise httpx.ConnectError("connection refused", request=request)

    attempts, due_since = 0, clock.now - 1  # record() made it due at the real time, just before the clock
    while clock.now - due_since < 23.9 * 3600:
        counts = run(conn, cfg, refused, clock)
        attempts += counts.retrying
        assert counts.dead == 0
        clock.now += 180.0  # at most the cap: every retry is due by then
    assert attempts > 400 and outbox.status_counts(conn) == {"pending": 1}
    clock.now += 0.2 * 3600
    assert run(conn, cfg, refused, clock).dead == 1
    [dead] = outbox.list_alerts(conn, status="dead")
    assert "ConnectError" in dead["last_error"]


def test_the_default_backoff_is_capped_at_a_few_minutes_so_delivery_resumes_soon_after_an_outage(conn):
    cfg = DispatchConfig(webhook_url="http://127.0.0.1:9/alerts", secret=SECRET)
    assert cfg.cap_delay_s <= 300 and cfg.max_age_s == 24 * 3600
    assert "max_attempts" not in DispatchConfig.model_fields  # an attempt count no longer kills an alert
    record(conn, [1])
    clock = Clock()
    for _ in range(30):  # far past the attempt where 2 s * 2^(n-1) exceeds the cap
        run(conn, cfg, lambda r: httpx.Response(503), clock)
        [alert] = outbox.list_alerts(conn)
        assert alert["status"] == "pending" and alert["next_attempt_at"] - clock.now <= cfg.cap_delay_s
        clock.now = alert["next_attempt_at"]


def test_dead_letter_after_max_age(conn):
    record(conn, [1])
    clock = Clock()
    cfg = config(max_age_s=25)
    assert run(conn, cfg, lambda r: httpx.Response(500), clock).retrying == 1
    clock.now += 30
    assert run(conn, cfg, lambda r: httpx.Response(500), clock).dead == 1


def test_a_rejected_body_is_dead_at_once_but_429_retries(conn):
    record(conn, [1, 2])
    answers = {}

    def handler(request):
        key = request.headers["Idempotency-Key"]
        answers.setdefault(key, 400 if not answers else 429)
        return httpx.Response(answers[key], headers={"Retry-After": "5"})

    clock = Clock()
    counts = run(conn, config(), handler, clock)
    assert (counts.dead, counts.retrying) == (1, 1)
    retrying = outbox.list_alerts(conn, status="pending")[0]
    assert retrying["next_attempt_at"] >= clock.now + 5  # Retry-After respected


def test_full_jitter_stays_within_the_capped_exponential():
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
        delays = [backoff_delay(attempt, 0.5, 30.0, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # spread over the whole range, not a fixed delay


def test_config_is_validated():
    with pytest.raises(ValueError, match="lease_s must exceed"):
        config(lease_s=5.0, request_timeout_s=10.0)
    with pytest.raises(ValueError, match="extra"):
        DispatchConfig(webhook_url="http://127.0.0.1/x", secret=SECRET, retries=3)


def test_config_needs_a_webhook(monkeypatch, tmp_path):
    monkeypatch.setenv("SOTE_RISK_HOME", str(tmp_path))
    monkeypatch.delenv(dispatcher.WEBHOOK_ENV, raising=False)
    with pytest.raises(SoteRiskError, match="SOTE_RISK_CRM_WEBHOOK_URL"):
        dispatcher.config_from_env()
    monkeypatch.setenv(dispatcher.WEBHOOK_ENV, "http://127.0.0.1:9/alerts")
    assert dispatcher.config_from_env(max_age_s=60).max_age_s == 60


def test_each_pass_releases_alerts_waiting_for_capacity_on_a_later_day(conn):
    from alerts.policy import AlertPolicy

    record(conn, [1, 2, 3], policy=AlertPolicy(threshold=0.2, capacity_per_municipality_per_day=2))
    ok = lambda r: httpx.Response(200)  # noqa: E731
    assert run(conn, config(), ok, Clock()).as_dict() == {"delivered": 2, "retrying": 0, "dead": 0, "released": 0}
    next_day = run_once(conn, config(), client=client(ok), clock=Clock(), today=lambda: date(2025, 3, 2))
    assert (next_day.released, next_day.delivered) == (1, 1)


def test_backoff_stays_at_the_cap_however_many_attempts_a_day_long_outage_makes():
    """Without an attempt limit a day of retries at a 120 s cap is ~1,400 attempts; 2 ** 1024
    does not fit a float, so the exponent must stop growing once the cap is reached."""
    rng = random.Random(3)
    assert all(0 <= backoff_delay(attempt, 2.0, 120.0, rng) <= 120.0 for attempt in (1024, 1025, 5000, 10**6))


def test_once_the_crm_is_back_the_cards_waiting_out_an_outage_go_in_the_same_pass(conn):
    """A 30-minute outage drained over ~114 s: each card waited out the random backoff it drew
    before the CRM came back (benchmarks/outage.py). Now the first card that gets through after
    failing makes the others due; cards the CRM answered 429 keep the time it asked for."""
    record(conn, [1, 2, 3, 4, 5])
    clock = Clock()
    cfg = config(base_delay_s=100.0, cap_delay_s=100.0)
    up = {"yes": False}

    def crm(request):
        if not up["yes"]:
            raise httpx.ConnectError("connection refused", request=request)
        if request.headers["Idempotency-Key"] == throttled:
            return httpx.Response(429, headers={"Retry-After": "90"})
        return httpx.Response(201)

    throttled = None
    assert run(conn, cfg, crm, clock).retrying == 5  # all refused, each due at a random time within 100 s
    up["yes"] = True
    waits = sorted(a["next_attempt_at"] - clock.now for a in outbox.list_alerts(conn, status="pending"))
    clock.now += waits[0] + 0.001  # the first card is due again; the others not yet
    counts = run(conn, cfg, crm, clock)
    assert counts.delivered == 5 and waits[1] > 0.001  # without the resume, only the first would go
    # A card the CRM itself throttled keeps its time:
    record(conn, [6, 7])
    throttled = outbox.list_alerts(conn, status="pending")[0]["alert_id"]
    up["yes"] = False
    run(conn, cfg, crm, clock)  # both refused
    up["yes"] = True
    clock.now += 100.001
    run(conn, cfg, crm, clock)
    assert [a["alert_id"] for a in outbox.list_alerts(conn, status="pending")] == [throttled]


def test_once_the_operator_webhook_is_back_the_operator_alerts_waiting_out_its_outage_go_in_the_same_pass(conn):
    """The same resume for operator alerts: the first that gets through after failing makes the
    others waiting out a connection failure due at once, not at the random times they drew."""
    from alerts.dispatcher import deliver_operator_alerts

    for problem in ("acute-hospitalisation", "children-hospitalisation", "elderly-hospitalisation"):
        outbox.record_operator_alert(conn, kind="monitor_breach", problem=problem, as_of="2026-02-01", key=("champion",),
                                     payload={"problem": problem}, now=time.time())
    clock = Clock()
    cfg = config(base_delay_s=100.0, cap_delay_s=100.0)
    up = {"yes": False}

    def webhook(request):
        if not up["yes"]:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(201)

    deliver = lambda: deliver_operator_alerts(conn, cfg, client=client(webhook), clock=clock,  # noqa: E731
                                              rng=random.Random(1))
    assert deliver().retrying == 3
    up["yes"] = True
    waits = sorted(a["next_attempt_at"] - clock.now for a in outbox.list_operator_alerts(conn, status="pending"))
    clock.now += waits[0] + 0.001  # the first is due again; the others not yet
    assert waits[1] > 0.001
    assert deliver().delivered == 3  # without the resume, only the first would go
    assert outbox.list_operator_alerts(conn, status="pending") == []
