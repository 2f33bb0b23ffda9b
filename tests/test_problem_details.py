"""One error shape (issue 16, item 11): every refusal leaves as RFC 9457 problem details, the FHIR
route's as an OperationOutcome, and the OpenAPI document declares each route's statuses.

The parts are tested here on the shapes BentoML and Starlette really write (taken from their
answers on main before the change); tests/test_openapi_conformance.py runs schemathesis against
the real service, and tests/test_serving_http.py checks the statuses and shapes route by route.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from serving.openapi import GUARDED, ROUTE_STATUSES, WITH_BODY, service_document, statuses
from serving.problems import FHIR_JSON, PROBLEM_JSON, ProblemResponses, from_foreign, operation_outcome, problem

# What BentoML 1.4 answered for {"customer_id": 0} on /score, and Starlette for an unknown path.
BENTOML_400 = (b'{"error":"1 validation error for ScoreRequest","detail":[{"type":"greater_than_equal","loc":["customer_id"],'
               b'"msg":"Input should be greater than or equal to 1","url":"https://errors.pydantic.dev/2.14/v/greater_than_equal"}]}')
FASTAPI_422 = (b'{"detail":[{"type":"greater_than_equal","loc":["path","customer_id"],"msg":"Input should be greater than or '
               b'equal to 1","input":"0","ctx":{"ge":1}},{"type":"literal_error","loc":["query","lang"],'
               b'"msg":"Input should be \'fi\' or \'en\'","input":"xx"}]}')


def test_a_bentoml_validation_body_becomes_a_problem_listing_fields_without_values():
    found = from_foreign(400, BENTOML_400)
    assert (found["type"], found["title"], found["status"]) == ("about:blank", "Bad Request", 400)
    assert found["detail"] == "1 validation error for ScoreRequest: customer_id" and found["field"] == "customer_id"
    assert found["errors"] == [{"field": "customer_id", "message": "Input should be greater than or equal to 1"}]


def test_fastapi_validation_errors_lose_their_inputs_and_location_prefix():
    found = from_foreign(422, FASTAPI_422)
    assert [e["field"] for e in found["errors"]] == ["customer_id", "lang"]
    assert '"0"' not in json.dumps(found) and "xx" not in json.dumps(found)


@pytest.mark.parametrize("status, body, detail", [
    (404, b"Not Found", "Not Found"),                                      # Starlette, plain text
    (405, b"Method Not Allowed", "Method Not Allowed"),
    (500, b'{"error": "An unexpected error has occurred, please check the server log."}',
     "an unexpected error has occurred; the server log has the details"),   # BentoML's 500
    (500, b"Traceback (most recent call last): secret", "an unexpected error has occurred; the server log has the details"),
    (409, b'{"error": "reload refused", "field": "champion"}', "reload refused"),
    (400, b"\x1b[31mbad\x1b[0m", "Bad Request"),                           # never echoes control characters
])
def test_other_foreign_bodies_keep_their_status_and_say_something_safe(status, body, detail):
    found = from_foreign(status, body)
    assert found["status"] == status and found["detail"] == detail


def test_the_fhir_form_carries_the_same_status_words_and_field():
    outcome = operation_outcome(problem(404, "unknown customer 5", "customer_id"))
    assert outcome == {"resourceType": "OperationOutcome",
                       "issue": [{"severity": "error", "code": "not-found", "diagnostics": "unknown customer 5",
                                  "expression": ["customer_id"]}]}
    from fhir.resources.R4B.operationoutcome import OperationOutcome

    OperationOutcome.model_validate(outcome)  # a valid FHIR resource


def _through(path: str, method: str, messages: list[dict]) -> list[dict]:
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def run() -> None:
        wrapper = ProblemResponses(send, path, method)
        for message in messages:
            await wrapper(message)

    asyncio.run(run())
    return sent


def _headers(message: dict) -> dict[bytes, bytes]:
    return dict(message["headers"])


def test_the_send_wrapper_rewrites_a_chunked_foreign_refusal_and_keeps_other_headers():
    start = {"type": "http.response.start", "status": 400,
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"999"), (b"x-trace", b"1")]}
    half = len(BENTOML_400) // 2
    sent = _through("/score", "POST", [start, {"type": "http.response.body", "body": BENTOML_400[:half], "more_body": True},
                                       {"type": "http.response.body", "body": BENTOML_400[half:]}])
    assert len(sent) == 2
    headers = _headers(sent[0])
    assert headers[b"content-type"] == PROBLEM_JSON.encode() and headers[b"x-trace"] == b"1"
    assert int(headers[b"content-length"]) == len(sent[1]["body"])
    assert json.loads(sent[1]["body"])["field"] == "customer_id"


def test_the_send_wrapper_passes_answers_html_and_problems_untouched_and_makes_fhir_outcomes():
    ok = [{"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]},
          {"type": "http.response.body", "body": b"{}"}]
    assert _through("/score", "POST", ok) == ok
    html = [{"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"text/html; charset=utf-8")]},
            {"type": "http.response.body", "body": b"<p>no</p>"}]
    assert _through("/ui/customers/5", "GET", html) == html
    mine = json.dumps(problem(404, "unknown customer 5", "customer_id")).encode()
    refusal = [{"type": "http.response.start", "status": 404, "headers": [(b"content-type", PROBLEM_JSON.encode())]},
               {"type": "http.response.body", "body": mine}]
    assert _through("/score", "POST", refusal) == refusal
    fhir = _through("/fhir_risk_assessment", "POST", refusal)
    assert _headers(fhir[0])[b"content-type"] == FHIR_JSON.encode()
    assert json.loads(fhir[1]["body"])["issue"][0]["diagnostics"] == "unknown customer 5"


# A trimmed BentoML document: the shapes serving/openapi.py rewrites.
BENTOML_SPEC = {
    "openapi": "3.0.2", "info": {"title": "sote_risk", "version": "None", "contact": {"name": "BentoML Team"}},
    "paths": {
        "/readyz": {"get": {"responses": {"200": {"description": "ok"}}}},
        "/score": {"post": {"requestBody": {"content": {"application/json": {"schema": {"required": ["customer_id"]}}}},
                            "responses": {200: {"description": "ok", "content": {"application/json": {"schema": {}}}},
                                          "400": {"$ref": "InvalidArgument"}, "404": {}, "500": {}}}},
        "/reload": {"post": {"requestBody": {"content": {"application/json": {"schema": {"properties": {}}}}},
                             "responses": {"200": {"description": "ok"}}}},
        "/fhir_risk_assessment": {"post": {
            "requestBody": {"content": {"application/json": {"schema": {
                "required": ["problem"], "properties": {"problem": {"type": "string", "pattern": "^x$", "minLength": 3}}}}}},
            "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {}}}}}}},
        "/page_link": {"post": {"requestBody": {"content": {"application/json": {"schema": {
            "required": ["customer_id"], "properties": {"days": {"type": "integer", "minimum": 1}}}}}},
            "responses": {"200": {"description": "ok"}}}},
        "/ui/model_card/{problem}": {"get": {"parameters": [{"name": "problem", "in": "path", "schema": {"type": "string"}}],
                                             "responses": {"200": {"description": "ok"}, "422": {}}}},
    },
    "components": {"schemas": {"InvalidArgument": {}, "NotFound": {}, "ScoreRequest": {}}},
}


def test_the_document_declares_version_security_bodies_and_every_status():
    spec = service_document(BENTOML_SPEC, "0.1.0", ["elderly-hospitalisation", "acute-hospitalisation"], link_days=14)
    assert spec["info"]["version"] == "0.1.0" and "BentoML" not in json.dumps(spec["info"])
    assert spec["components"]["securitySchemes"]["apiKey"] == {**spec["components"]["securitySchemes"]["apiKey"],
                                                               "type": "http", "scheme": "bearer"}
    assert spec["security"] == [{"apiKey": []}] and spec["paths"]["/readyz"]["get"]["security"] == []
    assert "InvalidArgument" not in spec["components"]["schemas"] and "ScoreRequest" in spec["components"]["schemas"]
    score = spec["paths"]["/score"]["post"]
    assert score["requestBody"]["required"] is True
    assert spec["paths"]["/reload"]["post"]["requestBody"]["required"] is False  # nothing in it is required
    assert sorted(score["responses"], key=int) == ["200", *map(str, sorted({*GUARDED, *WITH_BODY, *ROUTE_STATUSES["/score"]}))]
    assert score["responses"]["404"]["content"][PROBLEM_JSON]["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert "WWW-Authenticate" in score["responses"]["401"]["headers"] and "Allow" in score["responses"]["405"]["headers"]
    fhir = spec["paths"]["/fhir_risk_assessment"]["post"]
    assert list(fhir["responses"]["200"]["content"]) == [FHIR_JSON]
    assert fhir["responses"]["422"]["content"][FHIR_JSON]["schema"]["$ref"].endswith("/OperationOutcome")
    problem_schema = fhir["requestBody"]["content"]["application/json"]["schema"]["properties"]["problem"]
    assert problem_schema == {"type": "string", "enum": ["elderly-hospitalisation", "acute-hospitalisation"]}
    card = spec["paths"]["/ui/model_card/{problem}"]["get"]
    assert card["parameters"][0]["schema"]["enum"] == ["elderly-hospitalisation", "acute-hospitalisation"]
    assert "413" not in card["responses"] and "404" in card["responses"] and "422" not in card["responses"]
    assert spec["paths"]["/page_link"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]["days"][
        "maximum"] == 14
    assert BENTOML_SPEC["info"]["version"] == "None"  # the input is left as it was


def test_every_guarded_route_declares_the_guards_refusals():
    for path in ROUTE_STATUSES:
        method = "get" if path.startswith("/ui/") or path == "/metrics" else "post"
        declared = statuses(path, method)
        assert set(GUARDED) <= set(declared), path
        assert (set(WITH_BODY) <= set(declared)) == (method == "post"), path
