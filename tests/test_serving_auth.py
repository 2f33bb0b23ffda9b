"""API keys (hashed, salted, shown once), roles, the audit log and their CLI commands."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from serving.audit import AuditEntry, AuditLog, read_audit
from serving.auth import PERMISSIONS, ROLES, KeyRing, allowed, create_key, parse_bearer, read_keys, revoke_key
from serving.middleware import ACTIONS, action_for
from sote_risk.cli import app
from base.errors import SoteRiskError


def test_keys_are_stored_hashed_with_their_own_salt(tmp_path):
    path = tmp_path / "keys.json"
    first, record = create_key(path, "crm")
    second, _ = create_key(path, "crm")
    text = path.read_text()
    secret = first.split(".", 1)[1]
    assert secret not in text and second.split(".", 1)[1] not in text
    stored = json.loads(text)["keys"]
    assert len({k["salt"] for k in stored}) == 2 and len({k["sha256"] for k in stored}) == 2
    assert record.key_id in first and (path.stat().st_mode & 0o777) == 0o600


def test_keyring_accepts_only_exact_keys_and_sees_new_and_revoked_ones(tmp_path):
    path = tmp_path / "keys.json"
    ring = KeyRing(path)
    key, record = create_key(path, "clinician")
    assert ring.identify(f"Bearer {key}").role == "clinician"
    assert ring.identify(f"bearer {key}").key_id == record.key_id
    assert ring.identify(f"Bearer {key}x") is None
    assert ring.identify(key) is None and ring.identify(None) is None and ring.identify("Bearer ") is None
    assert ring.identify(f"Bearer sr_{record.key_id}.") is None
    revoke_key(path, record.key_id)
    assert ring.identify(f"Bearer {key}") is None


def test_bearer_parsing():
    assert parse_bearer("Bearer sr_ab12.secret") == ("ab12", "secret")
    assert parse_bearer("Basic abc") is None and parse_bearer("Bearer nope") is None


def test_unknown_role_is_refused(tmp_path):
    with pytest.raises(SoteRiskError, match="unknown role 'root'"):
        create_key(tmp_path / "keys.json", "root")


@pytest.mark.parametrize("action", sorted(PERMISSIONS))
def test_admin_may_do_everything_and_roles_follow_the_issue(action):
    assert allowed("admin", action)
    crm = {"score", "score_history", "score_batch", "predict_row", "fhir", "model_card", "feedback"}
    clinician = {"score", "score_history", "explain", "page", "model_card", "page_link"}
    assert allowed("crm", action) == (action in crm)
    assert allowed("clinician", action) == (action in clinician)


def test_every_guarded_route_maps_to_a_known_action():
    assert set(ACTIONS.values()) == set(PERMISSIONS)
    assert action_for("/ui/customers/12") == "page" and action_for("/score") == "score" and action_for("/nope") is None


def test_audit_log_appends_and_lists_one_customer(tmp_path):
    log = AuditLog(tmp_path / "audit.db")
    entry = dict(time="2024-01-01T00:00:00+00:00", key_id="k1", role="crm", endpoint="score",
                 problems=["elderly-hospitalisation"], model_versions=["elderly-hospitalisation:3"])
    log.append([AuditEntry(customer=5, **entry), AuditEntry(customer=6, **entry)])
    log.close()
    rows = read_audit(tmp_path / "audit.db", 5)
    assert [(r.customer, r.key_id, r.problems) for r in rows] == [(5, "k1", ["elderly-hospitalisation"])]
    assert read_audit(tmp_path / "missing.db", 5) == []


def test_cli_keys_create_list_revoke_and_audit(tmp_path, monkeypatch):
    monkeypatch.setenv("SOTE_RISK_HOME", str(tmp_path))
    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "--role", "admin"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[0]
    assert key.startswith("sr_")
    listed = runner.invoke(app, ["keys", "list"])
    key_id = key[3:].split(".")[0]
    assert key_id in listed.stdout and "admin" in listed.stdout and key.split(".")[1] not in listed.stdout
    bad = runner.invoke(app, ["keys", "create", "--role", "root"])
    assert bad.exit_code != 0
    AuditLog(tmp_path / "audit.db").append([AuditEntry(
        time="2024-01-01T00:00:00+00:00", key_id=key_id, role="admin", endpoint="explain", customer=42,
        problems=["acute-hospitalisation"], model_versions=["acute-hospitalisation:5"])])
    audited = runner.invoke(app, ["audit", "--customer", "42"])
    assert audited.exit_code == 0 and "explain" in audited.stdout and key_id in audited.stdout
    assert runner.invoke(app, ["keys", "revoke", key_id]).exit_code == 0
    assert read_keys(tmp_path / "keys.json").keys == []
    assert set(ROLES) == {"crm", "clinician", "admin"}


def test_keys_expire_and_the_refusal_names_when(tmp_path):
    import datetime as dt

    from serving.auth import KeyExpired, parse_duration, utc_now

    path = tmp_path / "keys.json"
    made = utc_now() - dt.timedelta(days=91)
    old, record = create_key(path, "crm", parse_duration("90d"), now=made)
    fresh, fresh_record = create_key(path, "crm", parse_duration("2w"))
    forever, forever_record = create_key(path, "crm")
    assert record.expires == (made + dt.timedelta(days=90)).isoformat(timespec="seconds")
    assert forever_record.expires is None and fresh_record.expires is not None
    ring = KeyRing(path)
    with pytest.raises(KeyExpired, match=f"expired on {re.escape(record.expires)}"):
        ring.identify(f"Bearer {old}")
    assert ring.identify(f"Bearer {old}x") is None  # the expiry is told only to who holds the key
    assert ring.identify(f"Bearer {fresh}").role == "crm" and ring.identify(f"Bearer {forever}").role == "crm"
    with pytest.raises(KeyExpired):
        ring.identify(f"Bearer {fresh}", now=utc_now() + dt.timedelta(weeks=2, seconds=1))
    assert parse_duration("12h") == dt.timedelta(hours=12) and parse_duration("2w") == dt.timedelta(days=14)
    for bad in ("0d", "90", "1y", "-3d", "d"):
        with pytest.raises(SoteRiskError, match="--expires-in"):
            parse_duration(bad)


def test_cli_keys_create_with_expiry_and_list_shows_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SOTE_RISK_HOME", str(tmp_path))
    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "--role", "crm", "--expires-in", "90d"])
    assert created.exit_code == 0, created.output
    assert "expires 20" in created.stderr
    plain = runner.invoke(app, ["keys", "create", "--role", "admin"])
    import datetime as dt

    from serving.auth import utc_now

    create_key(tmp_path / "keys.json", "clinician", dt.timedelta(days=1), now=utc_now() - dt.timedelta(days=2))
    lines = runner.invoke(app, ["keys", "list"]).stdout.strip().splitlines()
    record = read_keys(tmp_path / "keys.json").keys
    assert lines[0] == f"{record[0].key_id}\tcrm\t{record[0].created}\texpires {record[0].expires}"
    assert lines[1].endswith("\texpires never") and plain.exit_code == 0
    assert lines[2].endswith(f"\texpires {record[2].expires} (expired)")
    assert runner.invoke(app, ["keys", "create", "--role", "crm", "--expires-in", "soon"]).exit_code != 0
