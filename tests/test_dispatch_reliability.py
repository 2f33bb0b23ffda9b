"""Delivery with real processes over loopback: CRM outage, kill -9 mid-delivery, two dispatchers.

Every wait is a bounded poll (no timed assertions); every started process is stopped in a
finaliser. Backoff and leases are small so the suite stays fast.
"""

import subprocess

import pytest

from alerts import outbox
from alerts.dispatcher import config_from_env, run_once
from _alerts_helpers import Receiver, cli, free_port, record, stop, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

FAST = ["--base-delay", "0.05", "--cap-delay", "0.3", "--max-age", "3600",
        "--poll-interval", "0.05"]


@pytest.fixture()
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("SOTE_RISK_HOME", str(tmp_path / "home"))
    return {"SOTE_RISK_HOME": str(tmp_path / "home")}


@pytest.fixture()
def processes():
    started = []
    yield started
    for p in started:
        if isinstance(p, Receiver):
            p.stop()
        else:
            stop(p)


@pytest.fixture()
def conn(tmp_path):
    c = outbox.connect(tmp_path / "outbox.db")
    yield c
    c.close()


def dispatcher(tmp_path, port, *extra):
    return cli("alerts", "dispatch", "--db", str(tmp_path / "outbox.db"),
               "--webhook", f"http://127.0.0.1:{port}/alerts", *FAST, *extra,
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def all_delivered(conn, n):
    return lambda: outbox.status_counts(conn) == {"delivered": n}


def assert_exactly_once(receiver, conn):
    items = receiver.received()
    keys = [i["idempotency_key"] for i in items]
    assert len(keys) == len(set(keys))
    assert set(keys) == {a["alert_id"] for a in outbox.list_alerts(conn, limit=1000)}
    assert all(i["body"]["uuid"] == i["idempotency_key"] for i in items)
    return items


def test_crm_outage_then_recovery_delivers_every_alert_exactly_once(tmp_path, env, conn, processes):
    port = free_port()  # nothing listens yet: connection refused
    processes.append(dispatcher(tmp_path, port, "--lease", "5", "--timeout", "2"))
    record(conn, range(1, 11))
    wait_until(lambda: all(a["attempts"] >= 2 and "ConnectError" in (a["last_error"] or "")
                           for a in outbox.list_alerts(conn)), what="refused attempts")

    receiver = Receiver(tmp_path / "crm.db", port=port, mode="fail500")
    processes.append(receiver)
    record(conn, range(11, 21), as_of="2025-03-02")  # alerts keep coming during the outage
    wait_until(lambda: sum((a["last_error"] or "") == "HTTP 500" for a in outbox.list_alerts(conn)) >= 5,
               what="500 answers")
    assert outbox.status_counts(conn) == {"pending": 20}

    receiver.mode("ok")
    wait_until(all_delivered(conn, 20), what="all 20 delivered")
    assert len(assert_exactly_once(receiver, conn)) == 20


def test_kill_9_mid_delivery_then_restart_loses_nothing_and_sends_nothing_twice(tmp_path, env, conn, processes):
    receiver = Receiver(tmp_path / "crm.db")
    processes.append(receiver)
    receiver.mode("delay", delay_s=60)  # store, then hold the answer: the sender never hears back
    record(conn, range(1, 6))
    args = ("--lease", "2", "--timeout", "1.5")
    first = dispatcher(tmp_path, receiver.port, *args)
    processes.append(first)
    [stored] = wait_until(receiver.received, what="the first alert to reach the CRM")
    first.kill()  # SIGKILL: no clean-up, the lease stays behind
    first.wait(timeout=10)
    receiver.mode("ok")
    assert outbox.status_counts(conn).get("delivered", 0) == 0

    processes.append(dispatcher(tmp_path, receiver.port, *args))
    wait_until(all_delivered(conn, 5), what="all 5 delivered after restart")
    items = {i["idempotency_key"]: i for i in assert_exactly_once(receiver, conn)}
    assert len(items) == 5
    assert items[stored["idempotency_key"]]["deliveries"] >= 2  # sent again, deduplicated by the CRM


def test_two_dispatchers_never_send_the_same_alert_twice(tmp_path, env, conn, processes):
    receiver = Receiver(tmp_path / "crm.db")
    processes.append(receiver)
    record(conn, range(1, 41))
    for _ in range(2):
        processes.append(dispatcher(tmp_path, receiver.port, "--lease", "10", "--timeout", "5"))
    wait_until(all_delivered(conn, 40), what="all 40 delivered")
    items = assert_exactly_once(receiver, conn)
    assert [i["deliveries"] for i in items] == [1] * 40  # leases kept the two apart


def test_rerecording_the_same_scores_sends_nothing_new(tmp_path, env, conn, processes):
    receiver = Receiver(tmp_path / "crm.db")
    processes.append(receiver)
    record(conn, range(1, 4))
    once = ["alerts", "dispatch", "--once", "--db", str(tmp_path / "outbox.db"),
            "--webhook", f"{receiver.url}/alerts"]
    first = subprocess.run([*cli_args(*once)], capture_output=True, text=True, timeout=60)
    assert first.returncode == 0 and '"delivered": 3' in first.stdout
    assert record(conn, range(1, 4)).alerts_sent == 0
    config = config_from_env(webhook_url=f"{receiver.url}/alerts")  # signs with the home's secret, as the receiver verifies
    assert run_once(conn, config).delivered == 0
    assert len(assert_exactly_once(receiver, conn)) == 3


def cli_args(*args):
    import sys

    return [sys.executable, "-c", "from sote_risk.cli import main; main()", *args]
