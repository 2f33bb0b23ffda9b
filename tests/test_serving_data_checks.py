"""`sote-risk serve` and /score_history against the data they rest on (issue 16): serve refuses a
broken dataset in one line before it binds the port; a posted history is scored inside the
data's span (default its end) and audited as a posted history, not as the stored customer with
that id. Real `sote-risk serve` subprocesses on copies of the fixture home."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys

import httpx
import pandas as pd
import pytest

from serving.audit import POSTED, posted_hash, read_audit
from serving.auth import create_key
from tests.serving_fixture import members, posted_history, store
from tests.serving_server import REPO, free_port, service_env, start_service

pytestmark = pytest.mark.slow

ELDERLY = "elderly-hospitalisation"


def serve_exits(home, timeout: float = 60.0) -> tuple[int, str, int]:
    """Run `sote-risk serve` on the home; (exit code, stderr, port). A server that starts instead
    of refusing is stopped (its process group) and fails the test."""
    port = free_port()
    command = [sys.executable, "-c", "from sote_risk.cli import main; main()", "serve", "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1"]
    process = subprocess.Popen(command, cwd=REPO, env=service_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"serve did not refuse the broken dataset within {timeout:.0f} s: it started")
    return process.returncode, err, port


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_serve_refuses_a_broken_events_file_in_one_line_before_binding(fixture_home, damage):
    events = fixture_home / "data" / "events.parquet"
    if damage == "missing":
        events.unlink()
    else:
        content = events.read_bytes()
        events.write_bytes(content[: len(content) // 2])
    code, err, port = serve_exits(fixture_home)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "events" in lines[0], err
    assert "Traceback" not in err and "serving " not in err
    assert not port_open(port)


def test_serve_refuses_customers_fewer_than_dataset_json_says(fixture_home):
    customers = fixture_home / "data" / "customers.parquet"
    pd.read_parquet(customers).iloc[:-1].to_parquet(customers, index=False)
    code, err, _ = serve_exits(fixture_home)
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1 and "customers" in lines[0] and "dataset.json" in lines[0], err


# --- /score_history: as_of and the audit log ----------------------------------------------------


@pytest.fixture(scope="module")
def live(fixture_home_template, tmp_path_factory):
    home = tmp_path_factory.mktemp("data-checks") / "home"
    shutil.copytree(fixture_home_template, home)
    key = create_key(home / "keys.json", "crm")[0]
    service = start_service(home)
    client = httpx.Client(base_url=service.url, timeout=60, headers={"Authorization": f"Bearer {key}"})
    try:
        yield home, client
    finally:
        client.close()
        service.stop()


def test_score_history_defaults_to_the_end_of_the_data_and_refuses_dates_past_it(live):
    _, client = live
    subject = members(ELDERLY, limit=1)[0]
    body = posted_history(subject, with_as_of=False)
    end = store().resolve_time(None).date()
    default = client.post("/score_history", json=body)
    assert default.status_code == 200, default.text
    assert default.json()["as_of"] == end.isoformat()
    assert default.json()["risks"] == client.post("/score", json={"customer_id": subject}).json()["risks"]
    for as_of in ("9999-12-31", (end + pd.Timedelta(days=1)).isoformat(), "1990-01-01"):
        refused = client.post("/score_history", json={**body, "as_of": as_of})
        assert refused.status_code == 422, (as_of, refused.text)
        assert "as_of" in str(refused.json()) and "outside the data" in refused.text, refused.text


def test_a_posted_history_is_audited_as_posted_not_as_the_stored_customer(live):
    home, client = live
    subject = members(ELDERLY, limit=2)[1]
    before = read_audit(home / "audit.db", subject)
    body = posted_history(subject, with_as_of=False)
    assert client.post("/score_history", json=body).status_code == 200
    assert read_audit(home / "audit.db", subject) == before  # not a read of customer `subject`'s record
    posted = [e for e in read_audit(home / "audit.db", POSTED) if e.endpoint == "score_history"]
    assert posted and posted[-1].customer == POSTED and posted[-1].problems
    assert posted[-1].posted is not None and str(subject) not in posted[-1].posted
    assert client.post("/score", json={"customer_id": subject}).status_code == 200
    assert [e.endpoint for e in read_audit(home / "audit.db", subject)][len(before):] == ["score"]


def test_posted_hash_names_the_history_not_the_order_of_its_keys():
    customer = {"subject_id": 7, "birth_year": 1940}
    events = [{"time": "2024-01-01T10:00:00", "code": "ENC/HC_NURSE"}]
    same = posted_hash(dict(reversed(list(customer.items()))), [dict(reversed(list(events[0].items())))])
    assert posted_hash(customer, events) == same
    assert posted_hash(customer, events) != posted_hash({**customer, "subject_id": 8}, events)
    assert len(posted_hash(customer, events)) == 16
