"""The service over HTTP: a real `sote-risk serve` (BentoML) subprocess on 127.0.0.1 over the
serving region's fixture home (tests/serving_fixture.py: the real feature pipeline, five small
real LightGBM champions in the home's MLflow registry); one process for the module, its process
group killed at the end."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from fhir.resources.R4B.riskassessment import RiskAssessment

from alerts import outbox
from serving.api_types import MAX_BATCH
from serving.audit import read_audit
from serving.auth import create_key
from tests.serving_fixture import members, models, outside_every_cohort, posted_history, store
from tests.serving_server import ServiceProcess, start_service

pytestmark = pytest.mark.slow

ELDERLY = "elderly-hospitalisation"
NEW_CUSTOMER = 900_001  # not in the region: arrives with new data (test_reload_reads_new_data_without_restart)
META = ("subject_id", "prediction_time", "pipeline_version")


# --- the region's real rows, computed here by the feature package (not through the service) ----


@lru_cache(maxsize=None)
def eligible(problem: str) -> frozenset[int]:
    return frozenset(members(problem))


def feature_frame(subject_ids: list[int], segment: str) -> pd.DataFrame:
    """The segment's real feature rows of these customers at the end of the data."""
    from features import compute_features

    held = store()
    return compute_features(None, None, subject_ids, [held.resolve_time(None)] * len(subject_ids), segment,
                            history=held.history)


def plain(value: Any) -> float | str | None:
    if isinstance(value, str):
        return value
    return None if pd.isna(value) else float(value)


def posted_row(frame: pd.DataFrame, i: int) -> dict[str, float | str | None]:
    """One feature row as the CRM posts it to /predict_row: every feature of the segment."""
    row = frame.iloc[i]
    return {name: plain(row[name]) for name in frame.columns if name not in META}


def record_sent_alerts(path: Path, subjects: list[int]) -> list[str]:
    """Cards of these elderly members in the outbox, sent to the CRM (status pending), built from
    their real scores and reasons; returns the card ids (what CRM feedback names)."""
    from alerts.cards import CardInput, ProblemRisk, build_card
    from alerts.cycle import RunInfo, run_alert_cycle
    from alerts.policy import AlertPolicy
    from scoring.scorer import Scorer
    from tests.serving_fixture import make_backend

    scorer = Scorer(make_backend(models([ELDERLY])))
    time, items = scorer.score_customers(subjects, None, 3)
    risks = {item.customer_id: next(r for r in item.risks if r.problem == ELDERLY) for item in items}
    municipality = store().customers["municipality"]
    scores = pd.DataFrame({"subject_id": subjects, "problem": ELDERLY, "as_of": time,
                           "probability": [risks[s].probability for s in subjects],
                           "municipality": [municipality.loc[s] for s in subjects]})

    def card_for(rows: pd.DataFrame) -> dict:
        row = rows.iloc[0]
        risk = risks[int(row["subject_id"])]
        return build_card(CardInput(subject_id=int(row["subject_id"]), as_of=row["as_of"], risks=[
            ProblemRisk(problem=ELDERLY, probability=risk.probability, band=row["band"], model_version=risk.model_version,
                        reasons=risk.reasons)]))

    conn = outbox.connect(path)
    try:
        run = RunInfo(model_version=risks[subjects[0]].model_version, pipeline_version=risks[subjects[0]].pipeline_version,
                      run_id="fixture")
        result = run_alert_cycle(conn, scores, AlertPolicy(threshold=1e-9, cooldown_days=0), run, card_for,
                                 today=time.date())
        assert result.alerts_sent == len(subjects)
    finally:
        conn.close()
    return [outbox.card_id(s, time) for s in subjects]


# --- the service -------------------------------------------------------------------------------


@dataclass
class Live:
    service: ServiceProcess
    home: Path
    keys: dict[str, str]
    client: httpx.Client
    member: int  # an elderly-hospitalisation member at the end of the data
    row: dict[str, float | str | None]  # the member's real elderly feature row, as /predict_row takes it
    history: dict[str, Any]  # the member's stored history, as /score_history takes it
    alerts: list[str]  # alerts sent to the CRM (feedback may name them)

    def verdict(self, i: int = 0, **changes: Any) -> dict[str, Any]:
        body = {"card": self.alerts[i], "outcome": "overridden", "overrideReason": {"reason": {"code": "already-known"}},
                "outcomeTimestamp": "2025-01-02T09:30:00+02:00"}
        body.update(changes)
        return body

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
def live(fixture_home_template, tmp_path_factory):
    home = tmp_path_factory.mktemp("serving-http") / "home"
    shutil.copytree(fixture_home_template, home)
    keys = {role: create_key(home / "keys.json", role)[0] for role in ("crm", "clinician", "admin")}
    write_monitoring_record(home / "monitoring", ELDERLY)
    elderly = members(ELDERLY, limit=4)
    member = elderly[0]
    alerts = record_sent_alerts(home / "outbox.db", elderly[1:])
    row = posted_row(feature_frame([member], "elderly"), 0)
    service = start_service(home)
    client = httpx.Client(base_url=service.url, timeout=30)
    try:
        yield Live(service, home, keys, client, member, row, posted_history(member), alerts)
    finally:
        client.close()
        service.stop()


Body = Callable[[Live], Any]
# (method, route, body, roles that may call it); a route's {customer_id} is the member
ENDPOINTS: list[tuple[str, str, Body | None, set[str]]] = [
    ("POST", "/score", lambda v: {"customer_id": v.member}, {"crm", "clinician", "admin"}),
    ("POST", "/score_history", lambda v: v.history, {"crm", "clinician", "admin"}),
    ("POST", "/score_batch", lambda v: {"customer_ids": members(ELDERLY, limit=3)}, {"crm", "admin"}),
    ("POST", "/predict_row", lambda v: {"problem": ELDERLY, "features": v.row}, {"crm", "admin"}),
    ("POST", "/explain", lambda v: {"customer_id": v.member, "problem": ELDERLY}, {"clinician", "admin"}),
    ("POST", "/fhir_risk_assessment", lambda v: {"customer_id": v.member, "problem": ELDERLY}, {"crm", "admin"}),
    ("POST", "/reload", lambda v: {}, {"admin"}),
    ("POST", "/feedback", lambda v: v.verdict(), {"crm", "admin"}),
    ("POST", "/page_link", lambda v: {"customer_id": v.member}, {"clinician", "admin"}),
    ("GET", "/ui/customers/{customer_id}?lang=en", None, {"clinician", "admin"}),
    ("GET", "/ui/model_card/{problem}", None, {"crm", "clinician", "admin"}),
    ("GET", "/ui/costs?lang=en", None, {"admin"}),
    ("GET", "/ui/costs.csv", None, {"admin"}),
    ("GET", "/ui/monitoring/{problem}?lang=en", None, {"admin"}),
]


def write_monitoring_record(folder, problem: str) -> None:
    """A two-month monitoring record (training/monitor_run.report_record's shape) for the page."""
    import json

    from training.spec import Monitoring

    month = {"rows": 300, "customers": 300, "alert_rate": 0.05, "mean_score": 0.04, "score_psi": 0.01,
             "top_feature_psi": 0.02, "top_feature_step_psi": 0.01, "top_feature": "age_years", "estimated_events": 12.0,
             "estimated_auroc": 0.75, "complete": False, "breaches": "", "notices": "", "breach_kinds": "",
             "drift_features": "", "gradual_features": "", "other_step_features": ""}
    record = {"problem": problem, "alias": "champion", "model_version": "1", "as_of": "2024-12-01", "run_id": "r",
              "reference": "test", "thresholds": Monitoring().model_dump(mode="json"), "top_features": ["age_years"],
              "months": [{**month, "month": "2024-11-01"}, {**month, "month": "2024-12-01"}],
              "feature_psi": {"age_years": [0.02, 0.02]}, "feature_step_psi": {"age_years": [0.01, 0.01]},
              "breaches": [], "notes": []}
    (folder / problem).mkdir(parents=True, exist_ok=True)
    (folder / problem / "champion.json").write_text(json.dumps(record), encoding="utf-8")


@pytest.mark.parametrize("method, route, body, roles", ENDPOINTS, ids=[e[1].split("?")[0] for e in ENDPOINTS])
def test_every_endpoint_checks_key_and_role(live, method, route, body, roles):
    path = route.format(customer_id=live.member, problem=ELDERLY)

    def call(role=None, headers=None):
        headers = headers or ({"Authorization": f"Bearer {live.keys[role]}"} if role else {})
        if method == "GET":
            return live.client.get(path, headers=headers)
        return live.client.post(path, json=body(live), headers=headers)

    missing = call()
    assert missing.status_code == 401 and "API key" in refusal(missing, path)
    assert call(headers={"Authorization": "Bearer sr_deadbeef.nope"}).status_code == 401
    assert call(headers={"Authorization": f"Basic {live.keys['admin']}"}).status_code == 401
    for role in ("crm", "clinician", "admin"):
        response = call(role)
        if role in roles:
            assert response.status_code == 200, (role, response.text[:500])
        else:
            assert response.status_code == 403 and role in refusal(response, path), (role, response.text)


def refusal(response: httpx.Response, path: str) -> str:
    """What a refusal says, in the route's one shape: an OperationOutcome on the FHIR route,
    problem details everywhere else."""
    body = response.json()
    if path == "/fhir_risk_assessment":
        assert response.headers["content-type"] == "application/fhir+json" and body["resourceType"] == "OperationOutcome"
        return body["issue"][0]["diagnostics"]
    assert response.headers["content-type"] == "application/problem+json" and body["status"] == response.status_code
    return body["detail"]


def test_score_matches_the_in_memory_model(live):
    """Parity: the service scores a customer for exactly the problems the feature package finds
    them eligible for, with the model's probability on the same real feature rows."""
    fitted = models()
    ids = sorted({s for p in fitted for s in members(p, limit=6)} | set(outside_every_cohort(limit=3)))
    batch = live.post("/score_batch", {"customer_ids": ids, "top_k": 0}, role="crm").json()
    assert [item["customer_id"] for item in batch["results"]] == ids
    checked = 0
    for item in batch["results"]:
        subject = item["customer_id"]
        assert {r["problem"] for r in item["risks"]} == {p for p in fitted if subject in eligible(p)}, subject
        single = live.post("/score", {"customer_id": subject, "top_k": 0}, role="crm").json()
        for risk in item["risks"]:
            model = fitted[risk["problem"]]
            row = feature_frame([subject], risk["problem"].split("-")[0])
            assert risk["probability"] == float(model.predict_proba(row)[0]), (subject, risk["problem"])
            assert risk in single["risks"]
            checked += 1
    assert checked >= 6 * len(fitted)


def test_posted_history_scores_as_the_stored_one(live):
    """/score_history on a customer's whole stored history gives /score's risks and reasons."""
    for subject in members(ELDERLY, limit=5):
        posted = live.post("/score_history", {**posted_history(subject), "top_k": 3}, role="crm")
        assert posted.status_code == 200, posted.text[:500]
        stored = live.post("/score", {"customer_id": subject, "top_k": 3}, role="crm").json()
        assert stored["risks"] and posted.json()["risks"] == stored["risks"], subject


def test_predict_row_over_http_equals_the_in_memory_model(live):
    """The route the guard answers itself (serving/row_endpoint.py): the model's probability for
    crm and admin keys, 401/403 without a key or with a clinician's, 4xx naming the field; counted
    in the Prometheus metrics (serving/metrics.py), left out of the access log (the other routes stay in it)."""
    model = models([ELDERLY])[ELDERLY]
    frame = feature_frame(members(ELDERLY, limit=20), "elderly")
    for i in range(len(frame)):
        response = live.post("/predict_row", {"problem": ELDERLY, "features": posted_row(frame, i)}, role=("crm", "admin")[i % 2])
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["probability"] == float(model.predict_proba(frame.iloc[[i]])[0])
        assert body["problem"] == ELDERLY and body["band"] and body["model_version"] == "1"
    posted = {"problem": ELDERLY, "features": live.row}
    assert live.post("/predict_row", posted, role=None).status_code == 401
    assert live.post("/predict_row", posted, headers={"Authorization": "Bearer sr_deadbeef.nope"}, role=None).status_code == 401
    assert live.post("/predict_row", posted, role="clinician").status_code == 403
    extra = live.post("/predict_row", {**posted, "colour": "red"}, role="crm")
    assert extra.status_code == 400 and extra.json()["errors"][0]["field"] == "colour"
    assert live.post("/predict_row", {"problem": "nope-nope", "features": live.row}, role="crm").json()["field"] == "problem"
    assert live.client.get("/predict_row", headers={"Authorization": f"Bearer {live.keys['crm']}"}).status_code == 405
    metrics = live.get("/metrics").text
    assert any('endpoint="/predict_row"' in line and 'http_response_code="200"' in line
               for line in metrics.splitlines() if line.startswith("sote_risk_request_total"))
    log = live.service.log.read_text()
    assert "path=/score," in log and "path=/predict_row" not in log


def test_explain_is_additive_and_in_plain_words(live):
    model = models([ELDERLY])[ELDERLY]
    frame = feature_frame([live.member], "elderly")
    body = live.post("/explain", {"customer_id": live.member, "problem": ELDERLY}, role="clinician").json()
    total = body["base_value"] + sum(c["contribution"] for c in body["contributions"])
    assert total == pytest.approx(body["raw_score"], abs=1e-6)
    assert [c["feature"] for c in body["contributions"]] == model.feature_names
    expected = model.contributions(frame).iloc[0]
    assert [c["contribution"] for c in body["contributions"]] == [float(expected[n]) for n in model.feature_names]
    assert body["base_value"] == float(expected["bias"])
    er = next(c for c in body["contributions"] if c["feature"] == "er_visits_90d")
    visits = int(frame["er_visits_90d"].iloc[0])
    assert er["value"] == visits
    # the catalogue's sentence for this count (0 and 1 have their own words)
    expected_en, expected_fi = {
        0: ("No emergency department visits in the last 90 days", "Ei päivystyskäyntejä viimeisen 90 päivän aikana"),
        1: ("1 emergency department visit in the last 90 days", "1 päivystyskäynti viimeisen 90 päivän aikana"),
    }.get(visits, (f"{visits} emergency department visits in the last 90 days",
                   f"Päivystyskäyntejä viimeisen 90 päivän aikana: {visits}"))
    assert (er["text_en"], er["text_fi"]) == (expected_en, expected_fi)
    score = live.post("/score", {"customer_id": live.member, "top_k": 3}, role="clinician").json()
    risk = next(r for r in score["risks"] if r["problem"] == ELDERLY)
    assert risk["probability"] == body["probability"] and len(risk["reasons"]) == 3
    assert risk["reasons"] == body["reasons"][:3]


def test_fhir_resource_validates(live):
    body = live.post("/fhir_risk_assessment", {"customer_id": live.member, "problem": ELDERLY}, role="crm").json()
    resource = RiskAssessment.model_validate(body)
    assert resource.subject.reference == f"Patient/{live.member}" and resource.prediction[0].whenPeriod.end
    score = live.post("/score", {"customer_id": live.member, "top_k": 0}, role="crm").json()
    probability = next(r["probability"] for r in score["risks"] if r["problem"] == ELDERLY)
    assert float(resource.prediction[0].probabilityDecimal) == pytest.approx(probability, abs=1e-6)


def test_page_over_http_is_html_with_band(live):
    response = live.get(f"/ui/customers/{live.member}?lang=fi", role="clinician")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert 'data-band="' in response.text and "Tärkeimmät syyt" in response.text
    assert live.get("/ui/customers/999999", role="clinician").status_code == 404


# (name, path, body: a value or live -> value, status, what the response must name)
BAD_INPUTS: list[tuple[str, str, Any, int, str]] = [
    ("score-json", "/score", b'{"customer_id": ', 400, "Invalid JSON"),
    ("score-text-id", "/score", {"customer_id": "five"}, 400, "customer_id"),
    ("score-extra", "/score", lambda v: {"customer_id": v.member, "colour": "red"}, 400, "colour"),
    ("score-empty", "/score", {}, 400, "customer_id"),
    ("score-negative", "/score", {"customer_id": -3}, 400, "customer_id"),
    ("score-huge", "/score", {"customer_id": 2**70}, 400, "customer_id"),
    ("score-bad-date", "/score", lambda v: {"customer_id": v.member, "as_of": "2023-02-30"}, 400, "as_of"),
    ("score-after-data", "/score", lambda v: {"customer_id": v.member, "as_of": "2031-01-01"}, 422, "as_of"),
    ("score-before-data", "/score", lambda v: {"customer_id": v.member, "as_of": "2019-06-01"}, 422, "as_of"),
    ("score-unknown", "/score", {"customer_id": 999999}, 404, "customer_id"),
    ("score-top-k", "/score", lambda v: {"customer_id": v.member, "top_k": 500}, 400, "top_k"),
    ("batch-too-many", "/score_batch", {"customer_ids": list(range(1, MAX_BATCH + 2))}, 400, "customer_ids"),
    ("batch-empty", "/score_batch", {"customer_ids": []}, 400, "customer_ids"),
    ("explain-unknown-problem", "/explain", lambda v: {"customer_id": v.member, "problem": "nope-nope"}, 404, "problem"),
    ("explain-short-problem", "/explain", lambda v: {"customer_id": v.member, "problem": "x"}, 400, "problem"),
    ("explain-not-in-cohort", "/explain", lambda v: {"customer_id": outside_every_cohort(limit=1)[0], "problem": ELDERLY},
     422, "problem"),
    ("row-missing-feature", "/predict_row",
     lambda v: {"problem": ELDERLY, "features": {k: x for k, x in v.row.items() if k != "er_visits_90d"}}, 422, "er_visits_90d"),
    ("row-text", "/predict_row", lambda v: {"problem": ELDERLY, "features": {**v.row, "age_years": "old"}}, 422, "age_years"),
    ("row-category", "/predict_row", lambda v: {"problem": ELDERLY, "features": {**v.row, "sex": "X"}}, 422, "sex"),
    ("row-municipality", "/predict_row", lambda v: {"problem": ELDERLY, "features": {**v.row, "municipality": "Helsinki"}},
     422, "municipality"),
    ("history-code", "/score_history",
     lambda v: {**v.history, "events": [*v.history["events"], {"time": "2024-05-01T10:00:00", "code": "NOPE/CODE"}]}, 422, "code"),
    ("history-time", "/score_history",  # well-formed, but no history holds 1850: 422 naming the event
     lambda v: {**v.history, "events": [{"time": "1850-05-01T10:00:00", "code": "ENC/EMERGENCY"}]}, 422, "events.0.time"),
    ("history-time-0001-offset", "/score_history",  # converting year 1 with its offset would overflow
     lambda v: {**v.history, "events": [{"time": "0001-01-01T00:00:00+05:00", "code": "ENC/EMERGENCY"}]}, 422, "events.0.time"),
    ("history-municipality", "/score_history",
     lambda v: {**v.history, "customer": {**v.history["customer"], "municipality": "Helsinki"}}, 400, "municipality"),
    ("history-extra", "/score_history", lambda v: {**v.history, "extra": 1}, 400, "extra"),
    ("feedback-unknown-card", "/feedback", lambda v: v.verdict(card="00000000-0000-0000-0000-000000000000"), 404, "card"),
    ("feedback-outcome", "/feedback", lambda v: v.verdict(outcome="maybe"), 400, "outcome"),
    ("feedback-no-time", "/feedback", lambda v: {k: x for k, x in v.verdict().items() if k != "outcomeTimestamp"}, 400,
     "outcomeTimestamp"),
    ("feedback-naive-time", "/feedback", lambda v: v.verdict(outcomeTimestamp="2025-01-02T09:30:00"), 400, "outcomeTimestamp"),
    ("feedback-time-9999", "/feedback", lambda v: v.verdict(outcomeTimestamp="9999-12-31T23:59:59-14:00"), 422,
     "outcomeTimestamp"),  # would outrank every real verdict (issue 16, item 7)
    ("feedback-time-1999", "/feedback", lambda v: v.verdict(outcomeTimestamp="1999-12-31T23:59:59Z"), 422, "outcomeTimestamp"),
    ("feedback-accepted-with-reason", "/feedback", lambda v: v.verdict(outcome="accepted"), 422, "overrideReason"),
    ("feedback-empty-reason", "/feedback", lambda v: v.verdict(overrideReason={"reason": {"code": ""}}), 400, "overrideReason"),
    ("feedback-extra", "/feedback", lambda v: v.verdict(verdict="yes"), 400, "verdict"),
]


@pytest.mark.parametrize("path, body, status, field", [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_gets_a_4xx_naming_the_field(live, path, body, status, field):
    """400: the request does not match its schema; 422: it does, but a rule the schema cannot
    state refuses it. Either way one shape: problem details naming the field."""
    response = live.post(path, body(live) if callable(body) else body)
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"] == "application/problem+json"
    got = response.json()
    assert got["status"] == status and got["type"] == "about:blank" and got["detail"]
    named = [got.get("field") or "", got["detail"], *(e[part] for e in got.get("errors", []) for part in ("field", "message"))]
    assert any(field in text for text in named), got


@pytest.mark.parametrize("content_type", ["multipart/form-data", "application/x-www-form-urlencoded", "text/plain",
                                          "application/vnd.bentoml+pickle"])
def test_non_json_bodies_are_refused_not_crashed(live, content_type):
    response = live.client.post("/score", content=f"customer_id={live.member}".encode(),
                                headers={"Authorization": f"Bearer {live.keys['crm']}", "Content-Type": content_type})
    assert response.status_code == 415 and "Content-Type" in response.json()["field"]


def test_customer_in_no_cohort_gets_empty_list_with_reason(live):
    outside = outside_every_cohort(limit=5)
    assert len(outside) == 5
    batch = live.post("/score_batch", {"customer_ids": [*outside, live.member], "top_k": 0}, role="crm").json()
    *empty, scored = batch["results"]
    for item in empty:
        assert item["risks"] == [] and item["error"] is None
        assert item["note"].startswith("in none of the scored cohorts"), item
    assert scored["risks"] and scored["note"] is None


# Where a rejected value would show if the log leaked it: pydantic's error text (input_value=...),
# the posted JSON (a key and its value), or the message of the line that reports the rejection.
# Not a bare search for the digits: every line also holds random trace and span ids and byte
# counts (length=...), which may contain them by chance.
def leaked(log: str, field: str, value: int) -> list[str]:
    pattern = re.compile(rf"input_value={value}\b|['\"]?{field}['\"]?\s*[:=]\s*{value}\b")
    return [line for line in log.splitlines() if pattern.search(line)]


def message(line: str) -> str:
    """A service log line's message: after the `[entry_service:...]` tag, before `(trace=...)`."""
    text = line.split("] ", 2)[-1]
    return text.rsplit(" (trace=", 1)[0]


def test_leak_check_finds_a_logged_value_not_an_id():
    assert leaked("Input should be greater than or equal to 1900 [type=greater_than_equal, input_value=1777, input_type=int]",
                  "birth_year", 1777)
    assert leaked('body {"customer": {"subject_id": 5, "birth_year": 1777}}', "birth_year", 1777)
    line = ("2026-01-01T00:00:00+0000 [INFO] [entry_service:sote_risk:1] 127.0.0.1:5 (scheme=http,method=POST,"
            "path=/score_history,type=application/json,length=1777) (status=400,type=application/json,length=238) 1.4ms "
            "(trace=ddbd1777d695eba478185222f3bc9237,span=1777a4934bc1717a,sampled=0,service.name=sote_risk)")
    assert not leaked(line, "birth_year", 1777)
    assert message(line).startswith("127.0.0.1:5 (scheme=http") and "trace=" not in message(line)


def test_reads_are_audited_without_keys_in_logs(live):
    subject = live.member
    before = len(read_audit(live.home / "audit.db", subject))
    live.post("/score", {"customer_id": subject}, role="crm")
    live.post("/explain", {"customer_id": subject, "problem": ELDERLY}, role="clinician")
    rows = read_audit(live.home / "audit.db", subject)[before:]
    assert [(r.role, r.endpoint) for r in rows] == [("crm", "score"), ("clinician", "explain")]
    assert sorted(rows[0].model_versions) == sorted(f"{p}:1" for p in models() if subject in eligible(p))
    assert f"{ELDERLY}:1" in rows[0].model_versions and rows[0].key_id in live.keys["crm"]
    log = live.service.log.read_text()
    for key in live.keys.values():
        assert key.split(".")[1] not in log
        assert key.split(".")[1].encode() not in (live.home / "audit.db").read_bytes()
    seen = len(log)
    rejected = live.post("/score_history", {**live.history, "customer": {**live.history["customer"], "birth_year": 1777}})
    assert rejected.status_code == 400 and "birth_year" in rejected.text  # the client is told which field
    log = live.service.log.read_text()
    reports = [message(line) for line in log[seen:].splitlines() if "rejected request on /score_history" in line]
    assert reports and all("customer.birth_year" in text for text in reports)  # the server's log names the field ...
    assert not any("1777" in text for text in reports) and leaked(log, "birth_year", 1777) == []  # ... not the value


def test_feedback_is_stored_once_and_reported(live):
    from alerts.feedback import report

    alert = live.alerts[1]
    body = {"card": alert, "outcome": "accepted", "outcomeTimestamp": "2025-01-03T08:00:00Z",
            "acceptedSuggestions": [{"id": "x"}]}
    first = live.post("/feedback", body, role="crm")
    assert first.status_code == 200 and first.json()["alert_id"] == alert and first.json()["duplicate"] is False
    again = live.post("/feedback", body, role="crm").json()
    assert again["duplicate"] is True and again["feedback_id"] == first.json()["feedback_id"]
    flat = live.post("/feedback", live.verdict(2, overrideReason={"code": "not-relevant", "display": "Not relevant"}), role="crm")
    assert flat.status_code == 200, flat.text
    conn = outbox.connect(live.home / "outbox.db")
    try:
        problem = next(r for r in report(conn) if r.problem == ELDERLY)
    finally:
        conn.close()
    assert problem.accepted >= 1 and problem.overridden >= 1


def test_infrastructure_endpoints_need_no_key(live):
    for path in ("/healthz", "/livez", "/readyz", "/docs.json", "/", "/docs"):
        assert live.client.get(path).status_code == 200, path
    assert live.client.get("/metrics").status_code == 401  # traffic is the operators' business: admin keys only
    assert "sote_risk_request_total" in live.get("/metrics").text


def test_openapi_describes_every_endpoint(live):
    spec = live.client.get("/docs.json").json()
    for _, route, _, _ in ENDPOINTS:
        assert route.split("?")[0] in spec["paths"], route
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


def add_customer(data: Path, copy_of: int, subject: int) -> int:
    """New data arrives: the dataset folder rewritten with one more customer (a copy of another's
    attributes and history under a new pseudonym); returns how many customers it now holds."""
    from data_contracts import read_dataset
    from data_contracts.io import Dataset, write_dataset

    dataset = read_dataset(data, validate=False)
    customer = dataset.customers.loc[dataset.customers["subject_id"] == copy_of].assign(subject_id=subject)
    events = dataset.events.loc[dataset.events["subject_id"] == copy_of].assign(subject_id=subject)
    assert subject > dataset.events["subject_id"].max()  # appended rows keep the events sorted by customer
    customers = pd.concat([dataset.customers, customer], ignore_index=True).astype(dataset.customers.dtypes)
    events = pd.concat([dataset.events, events], ignore_index=True).astype(dataset.events.dtypes)
    write_dataset(Dataset(events, customers, {**dataset.metadata, "customers": len(customers)}), data, overwrite=True)
    return len(customers)


def test_reload_reads_new_data_without_restart(live):
    unknown = live.post("/score", {"customer_id": NEW_CUSTOMER})
    assert unknown.status_code == 404 and unknown.json()["field"] == "customer_id"
    count = add_customer(live.home / "data", live.member, NEW_CUSTOMER)
    reloaded = live.post("/reload", {})
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json()["customers"] == count and reloaded.json()["champions"] == {p: "1" for p in models()}
    new = live.post("/score", {"customer_id": NEW_CUSTOMER, "top_k": 3})
    assert new.status_code == 200, new.text
    copied = live.post("/score", {"customer_id": live.member, "top_k": 3}).json()
    assert new.json()["risks"] and new.json()["risks"] == copied["risks"]  # the same history, the same risks
