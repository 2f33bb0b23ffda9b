"""The service over HTTP: a real `sote-risk serve` (BentoML) subprocess on 127.0.0.1 with a
small fixture home; one process for the module, its process group killed at the end."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest
from fhir.resources.R4B.riskassessment import RiskAssessment

from serving.api_types import MAX_BATCH
from serving.audit import read_audit
from alerts import outbox
from serving.auth import create_key
from tests.serving_fixture import END, FEATURES, make_dataset, toy_rows, write_fixture_home
from tests.serving_server import ServiceProcess, start_service
from _alerts_helpers import PROBLEM as ALERT_PROBLEM, record

pytestmark = pytest.mark.slow

ELDERLY = "elderly-hospitalisation"


@dataclass
class Live:
    service: ServiceProcess
    home: Path
    keys: dict[str, str]
    models: dict
    client: httpx.Client

    def post(self, path: str, body, role: str | None = "admin", **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        headers.update(kwargs.pop("headers", {}))
        if isinstance(body, (bytes, str)):
            return self.client.post(path, content=body, headers={"Content-Type": "application/json", **headers})
        return self.client.post(path, json=body, headers=headers)

    def get(self, path: str, role: str | None = "admin", **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        return self.client.get(path, headers=headers, **kwargs)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    home = tmp_path_factory.mktemp("serving-home")
    models = write_fixture_home(home)
    keys = {role: create_key(home / "keys.json", role)[0] for role in ("crm", "clinician", "admin")}
    conn = outbox.connect(home / "outbox.db")
    record(conn, [1, 2, 3])  # alerts the CRM can give feedback on
    conn.close()
    service = start_service(home)
    client = httpx.Client(base_url=service.url, timeout=30)
    try:
        yield Live(service, home, keys, models, client)
    finally:
        client.close()
        service.stop()


def elderly_member(live: Live) -> int:
    for subject in range(1, 201):
        body = live.post("/score", {"customer_id": subject, "top_k": 0}).json()
        if any(r["problem"] == ELDERLY for r in body["risks"]):
            return subject
    raise AssertionError("no elderly member in the fixture")


HISTORY = {
    "customer": {"subject_id": 7, "birth_year": 1940, "birth_month": 3, "sex": "F", "municipality": "Lemi", "language": "fi"},
    "events": [{"time": "2023-05-01T10:00:00", "code": "ENC/EMERGENCY"}, {"time": "2023-05-03T10:00:00+03:00", "code": "IOT/FALL_ALARM"}],
    "as_of": "2023-06-01",
}
ALERT = outbox.alert_id_for(1, ALERT_PROBLEM, "2025-03-01")
VERDICT = {"card": ALERT, "outcome": "overridden", "overrideReason": {"reason": {"code": "already-known"}},
           "outcomeTimestamp": "2025-03-02T09:30:00+02:00"}
ROW = {"age_years": 82, "sex": "F", "er_visits_90d": 3, "missed_doses_30d": 2, "fall_alarms_180d": 1, "homecare_visits_30d": 10}
# (method, path, body, roles that may call it)
ENDPOINTS = [
    ("POST", "/score", {"customer_id": 5}, {"crm", "clinician", "admin"}),
    ("POST", "/score_history", HISTORY, {"crm", "clinician", "admin"}),
    ("POST", "/score_batch", {"customer_ids": [1, 2, 3]}, {"crm", "admin"}),
    ("POST", "/predict_row", {"problem": ELDERLY, "features": ROW}, {"crm", "admin"}),
    ("POST", "/explain", {"customer_id": 5, "problem": ELDERLY}, {"clinician", "admin"}),
    ("POST", "/fhir_risk_assessment", {"customer_id": 5, "problem": ELDERLY}, {"crm", "admin"}),
    ("POST", "/reload", {}, {"admin"}),
    ("POST", "/feedback", VERDICT, {"crm", "admin"}),
    ("GET", "/ui/customers/5?lang=en", None, {"clinician", "admin"}),
    ("GET", f"/ui/model_card/{ELDERLY}", None, {"crm", "clinician", "admin"}),
]


@pytest.mark.parametrize("method, path, body, roles", ENDPOINTS, ids=[e[1].split("?")[0] for e in ENDPOINTS])
def test_every_endpoint_checks_key_and_role(live, method, path, body, roles):
    def call(role=None, headers=None):
        headers = headers or ({"Authorization": f"Bearer {live.keys[role]}"} if role else {})
        if method == "GET":
            return live.client.get(path, headers=headers)
        return live.client.post(path, json=body, headers=headers)

    missing = call()
    assert missing.status_code == 401 and "API key" in missing.json()["error"]
    assert call(headers={"Authorization": "Bearer sr_deadbeef.nope"}).status_code == 401
    assert call(headers={"Authorization": f"Basic {live.keys['admin']}"}).status_code == 401
    for role in ("crm", "clinician", "admin"):
        response = call(role)
        if role in roles:
            assert response.status_code == 200, (role, response.text[:500])
        else:
            assert response.status_code == 403 and role in response.json()["error"], (role, response.text)


def test_score_matches_the_in_memory_model(live):
    """Parity: the service's probability equals the model's for the same feature rows."""
    events = pd.read_parquet(live.home / "data" / "events.parquet")
    customers = pd.read_parquet(live.home / "data" / "customers.parquet")
    batch = live.post("/score_batch", {"customer_ids": list(range(1, 31)), "top_k": 0}, role="crm").json()
    checked = 0
    for item in batch["results"]:
        for risk in item["risks"]:
            model = live.models[risk["problem"]]
            row = toy_rows(events, customers, [item["customer_id"]], [END])
            assert risk["probability"] == float(model.predict_proba(row)[0])
            single = live.post("/score", {"customer_id": item["customer_id"], "top_k": 0}, role="crm").json()
            assert risk in single["risks"]
            checked += 1
    assert checked > 10


def test_predict_row_over_http_equals_the_in_memory_model(live):
    """The route the guard answers itself (serving/row_endpoint.py): the model's probability for
    crm and admin keys, 401/403 without a key or with a clinician's, 4xx naming the field; counted
    in BentoML's Prometheus metrics, left out of the access log (the other routes stay in it)."""
    events = pd.read_parquet(live.home / "data" / "events.parquet")
    customers = pd.read_parquet(live.home / "data" / "customers.parquet")
    model = live.models[ELDERLY]
    rows = toy_rows(events, customers, list(range(1, 21)), [END])[model.feature_names]
    for i, (_, row) in enumerate(rows.iterrows()):
        features = {k: (None if pd.isna(v) else (v if isinstance(v, str) else float(v))) for k, v in row.items()}
        response = live.post("/predict_row", {"problem": ELDERLY, "features": features}, role=("crm", "admin")[i % 2])
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["probability"] == float(model.predict_proba(row.to_frame().T.infer_objects())[0])
        assert body["problem"] == ELDERLY and body["band"] and body["model_version"]
    posted = {"problem": ELDERLY, "features": ROW}
    assert live.post("/predict_row", posted, role=None).status_code == 401
    assert live.post("/predict_row", posted, headers={"Authorization": "Bearer sr_deadbeef.nope"}, role=None).status_code == 401
    assert live.post("/predict_row", posted, role="clinician").status_code == 403
    extra = live.post("/predict_row", {**posted, "colour": "red"}, role="crm")
    assert extra.status_code == 400 and extra.json()["detail"][0]["loc"] == ["colour"]
    assert live.post("/predict_row", {"problem": "nope-nope", "features": ROW}, role="crm").json()["field"] == "problem"
    assert live.client.get("/predict_row", headers={"Authorization": f"Bearer {live.keys['crm']}"}).status_code == 405
    metrics = live.client.get("/metrics").text
    assert any('endpoint="/predict_row"' in line and 'http_response_code="200"' in line
               for line in metrics.splitlines() if line.startswith("sote_risk_request_total"))
    log = live.service.log.read_text()
    assert "path=/score," in log and "path=/predict_row" not in log


def test_explain_is_additive_and_in_plain_words(live):
    subject = elderly_member(live)
    body = live.post("/explain", {"customer_id": subject, "problem": ELDERLY}, role="clinician").json()
    total = body["base_value"] + sum(c["contribution"] for c in body["contributions"])
    assert total == pytest.approx(body["raw_score"], abs=1e-6)
    assert [c["feature"] for c in body["contributions"]] == FEATURES
    er = next(c for c in body["contributions"] if c["feature"] == "er_visits_90d")
    assert er["text_en"] == f"{int(er['value'])} emergency visits in the last 90 days"
    assert "päivystyskäyntiä" in er["text_fi"]
    score = live.post("/score", {"customer_id": subject, "top_k": 3}, role="clinician").json()
    risk = next(r for r in score["risks"] if r["problem"] == ELDERLY)
    assert risk["probability"] == body["probability"] and len(risk["reasons"]) == 3
    assert risk["reasons"] == body["reasons"][:3]


def test_fhir_resource_validates(live):
    subject = elderly_member(live)
    body = live.post("/fhir_risk_assessment", {"customer_id": subject, "problem": ELDERLY}, role="crm").json()
    resource = RiskAssessment.model_validate(body)
    assert resource.subject.reference == f"Patient/{subject}" and resource.prediction[0].whenPeriod.end


def test_page_over_http_is_html_with_band(live):
    subject = elderly_member(live)
    response = live.get(f"/ui/customers/{subject}?lang=fi", role="clinician")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert 'data-band="' in response.text and "Tärkeimmät syyt" in response.text
    assert live.get("/ui/customers/999999", role="clinician").status_code == 404


@pytest.mark.parametrize("path, body, status, field", [
    ("/score", b'{"customer_id": ', 400, "Invalid JSON"),
    ("/score", {"customer_id": "five"}, 400, "customer_id"),
    ("/score", {"customer_id": 5, "colour": "red"}, 400, "colour"),
    ("/score", {}, 400, "customer_id"),
    ("/score", {"customer_id": -3}, 400, "customer_id"),
    ("/score", {"customer_id": 2**70}, 400, "customer_id"),
    ("/score", {"customer_id": 5, "as_of": "2023-02-30"}, 400, "as_of"),
    ("/score", {"customer_id": 5, "as_of": "2031-01-01"}, 422, "as_of"),
    ("/score", {"customer_id": 999999}, 404, "customer_id"),
    ("/score", {"customer_id": 5, "top_k": 500}, 400, "top_k"),
    ("/score_batch", {"customer_ids": list(range(1, MAX_BATCH + 2))}, 400, "customer_ids"),
    ("/score_batch", {"customer_ids": []}, 400, "customer_ids"),
    ("/explain", {"customer_id": 5, "problem": "nope-nope"}, 404, "problem"),
    ("/explain", {"customer_id": 5, "problem": "x"}, 400, "problem"),
    ("/predict_row", {"problem": ELDERLY, "features": {"age_years": 80}}, 422, "er_visits_90d"),
    ("/predict_row", {"problem": ELDERLY, "features": {**ROW, "age_years": "old"}}, 422, "features"),
    ("/predict_row", {"problem": ELDERLY, "features": {**ROW, "sex": "X"}}, 422, "sex"),
    ("/score_history", {**HISTORY, "events": [{"time": "2023-05-01T10:00:00", "code": "NOPE/CODE"}]}, 422, "code"),
    ("/score_history", {**HISTORY, "events": [{"time": "1850-05-01T10:00:00", "code": "ENC/EMERGENCY"}]}, 400, "time"),
    ("/score_history", {**HISTORY, "customer": {**HISTORY["customer"], "municipality": "Helsinki"}}, 400, "municipality"),
    ("/score_history", {**HISTORY, "extra": 1}, 400, "extra"),
    ("/feedback", {**VERDICT, "card": "00000000-0000-0000-0000-000000000000"}, 404, "card"),
    ("/feedback", {**VERDICT, "outcome": "maybe"}, 400, "outcome"),
    ("/feedback", {k: v for k, v in VERDICT.items() if k != "outcomeTimestamp"}, 400, "outcomeTimestamp"),
    ("/feedback", {**VERDICT, "outcomeTimestamp": "2025-03-02T09:30:00"}, 400, "outcomeTimestamp"),
    ("/feedback", {**VERDICT, "outcome": "accepted"}, 400, "overrideReason"),
    ("/feedback", {**VERDICT, "overrideReason": {"reason": {"code": ""}}}, 400, "overrideReason"),
    ("/feedback", {**VERDICT, "verdict": "yes"}, 400, "verdict"),
])
def test_bad_input_gets_a_4xx_naming_the_field(live, path, body, status, field):
    response = live.post(path, body)
    assert response.status_code == status, response.text[:500]
    assert field in response.text


@pytest.mark.parametrize("content_type", ["multipart/form-data", "application/x-www-form-urlencoded", "text/plain",
                                          "application/vnd.bentoml+pickle"])
def test_non_json_bodies_are_refused_not_crashed(live, content_type):
    response = live.client.post("/score", content=b"customer_id=5",
                                headers={"Authorization": f"Bearer {live.keys['crm']}", "Content-Type": content_type})
    assert response.status_code == 415 and "Content-Type" in response.json()["field"]


def test_customer_in_no_cohort_gets_empty_list_with_reason(live):
    batch = live.post("/score_batch", {"customer_ids": list(range(1, 201)), "top_k": 0}, role="crm").json()
    outside = [r for r in batch["results"] if not r["risks"]]
    assert outside and all(r["note"] for r in outside)


def test_reads_are_audited_without_keys_in_logs(live):
    subject = elderly_member(live)
    before = len(read_audit(live.home / "audit.db", subject))
    live.post("/score", {"customer_id": subject}, role="crm")
    live.post("/explain", {"customer_id": subject, "problem": ELDERLY}, role="clinician")
    rows = read_audit(live.home / "audit.db", subject)[before:]
    assert [(r.role, r.endpoint) for r in rows] == [("crm", "score"), ("clinician", "explain")]
    assert rows[0].model_versions and rows[0].key_id in live.keys["crm"]
    log = live.service.log.read_text()
    for key in live.keys.values():
        assert key.split(".")[1] not in log
        assert key.split(".")[1].encode() not in (live.home / "audit.db").read_bytes()
    live.post("/score_history", {**HISTORY, "customer": {**HISTORY["customer"], "birth_year": 1777}})
    assert "1777" not in live.service.log.read_text()  # rejected input values stay out of the log


def test_feedback_is_stored_once_and_reported(live):
    from alerts.feedback import report

    alert = outbox.alert_id_for(2, ALERT_PROBLEM, "2025-03-01")
    body = {"card": alert, "outcome": "accepted", "outcomeTimestamp": "2025-03-03T08:00:00Z",
            "acceptedSuggestions": [{"id": "x"}]}
    first = live.post("/feedback", body, role="crm")
    assert first.status_code == 200 and first.json()["alert_id"] == alert and first.json()["duplicate"] is False
    again = live.post("/feedback", body, role="crm").json()
    assert again["duplicate"] is True and again["feedback_id"] == first.json()["feedback_id"]
    flat = live.post("/feedback", {**VERDICT, "card": outbox.alert_id_for(3, ALERT_PROBLEM, "2025-03-01"),
                                   "overrideReason": {"code": "not-relevant", "display": "Not relevant"}}, role="crm")
    assert flat.status_code == 200, flat.text
    conn = outbox.connect(live.home / "outbox.db")
    problem = next(r for r in report(conn) if r.problem == ALERT_PROBLEM)
    assert problem.accepted >= 1 and problem.overridden >= 1
    conn.close()


def test_infrastructure_endpoints_need_no_key(live):
    for path in ("/healthz", "/livez", "/readyz", "/metrics", "/docs.json"):
        assert live.client.get(path).status_code == 200, path
    assert "sote_risk" in live.client.get("/metrics").text


def test_openapi_describes_every_endpoint(live):
    spec = live.client.get("/docs.json").json()
    for _, path, _, _ in ENDPOINTS:
        route = path.split("?")[0].replace("/5", "/{customer_id}").replace(f"/{ELDERLY}", "/{problem}")
        assert route in spec["paths"], route
    schema = spec["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema.get("additionalProperties") is False and "customer_id" in schema["properties"]


def test_schemathesis_finds_no_server_errors(live):
    """Property-based requests from the service's own OpenAPI document: never a 5xx."""
    report = live.home / "schemathesis.xml"
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "run", f"{live.service.url}/docs.json",
        "--checks", "not_a_server_error", "--max-examples", "10", "--seed", "1", "--workers", "1",
        "--generation-database", "none", "--no-color", "--request-timeout", "20",
        "--header", f"Authorization: Bearer {live.keys['admin']}", "--exclude-path", "/reload",
        "--report", "junit", "--report-junit-path", str(report),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=live.home)
    assert result.returncode == 0, result.stdout[-4000:]


def test_reload_reads_new_data_without_restart(live):
    assert live.post("/score", {"customer_id": 500}).status_code == 404
    events, customers = make_dataset(n_customers=500, seed=11)
    events.to_parquet(live.home / "data" / "events.parquet", index=False)
    customers.to_parquet(live.home / "data" / "customers.parquet", index=False)
    reloaded = live.post("/reload", {})
    assert reloaded.status_code == 200 and reloaded.json()["customers"] == 500
    assert live.post("/score", {"customer_id": 500}).status_code == 200
