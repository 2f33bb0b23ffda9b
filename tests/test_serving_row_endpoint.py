"""POST /predict_row as the guard middleware answers it (serving/row_endpoint.py), in process:
the same probability as the model, the same 4xx bodies as BentoML's handler, keys and roles
checked first. Over HTTP through the real service: tests/test_serving_http.py."""

from __future__ import annotations

import asyncio
import json

import pandas as pd
import pytest

from serving import row_endpoint
from serving.auth import create_key
from serving.middleware import GuardMiddleware
from scoring.scorer import Scorer
from tests.serving_fixture import END, make_backend, shared_fixture, toy_rows

ELDERLY = "elderly-hospitalisation"
ROW = {"age_years": 82, "sex": "F", "er_visits_90d": 3, "missed_doses_30d": 2, "fall_alarms_180d": 1, "homecare_visits_30d": 10}


@pytest.fixture(scope="module")
def fixture():
    return shared_fixture()


@pytest.fixture()
def served(fixture):
    events, customers, models = fixture
    scorer = Scorer(make_backend(events, customers, models))
    row_endpoint.serve(scorer)
    try:
        yield scorer, models
    finally:
        row_endpoint.serve(None)


def call(app, path: str, body: bytes, headers: dict[str, str], method: str = "POST", chunks: int = 1) -> tuple[int, dict, dict]:
    """One request through an ASGI app; the body may arrive in several chunks (no Content-Length)."""
    size = max(1, -(-len(body) // chunks))
    parts = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
    messages = [{"type": "http.request", "body": part, "more_body": i < len(parts) - 1} for i, part in enumerate(parts)]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path,
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    asyncio.run(app(scope, receive, send))
    start, payload = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), json.loads(payload)


class Downstream:
    """Stands for BentoML behind the guard: records what reached it."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 (ASGI)
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


@pytest.fixture()
def guarded(tmp_path):
    keys = {role: create_key(tmp_path / "keys.json", role)[0] for role in ("crm", "clinician", "admin")}
    downstream = Downstream()
    return GuardMiddleware(downstream, keys_path=lambda: tmp_path / "keys.json"), downstream, keys


def test_probability_equals_the_in_memory_model(fixture, served, guarded):
    events, customers, _ = fixture
    scorer, models = served
    app, downstream, keys = guarded
    rows = toy_rows(events, customers, list(range(1, 41)), [END])
    model = models[ELDERLY]
    for _, row in rows.iterrows():
        features = {k: (None if pd.isna(v) else (v if isinstance(v, str) else float(v))) for k, v in row[model.feature_names].items()}
        body = json.dumps({"problem": ELDERLY, "features": features}).encode()
        status, headers, got = call(app, "/predict_row", body, {"Authorization": f"Bearer {keys['crm']}", "Content-Type": "application/json"})
        assert status == 200, got
        assert got["probability"] == float(model.predict_proba(row.to_frame().T[model.feature_names].infer_objects())[0])
        assert got == scorer.predict_row(ELDERLY, features).model_dump(mode="json")
        assert headers[b"content-type"] == b"application/json"
    assert downstream.paths == []  # every one answered by the guard, none by BentoML's handler


def test_keys_and_roles_are_checked_before_the_row_is_scored(served, guarded):
    app, downstream, keys = guarded
    body = json.dumps({"problem": ELDERLY, "features": ROW}).encode()
    status, headers, got = call(app, "/predict_row", body, {})
    assert status == 401 and got["field"] == "Authorization" and b"www-authenticate" in headers
    assert call(app, "/predict_row", body, {"Authorization": "Bearer sr_deadbeef.nope"})[0] == 401
    status, _, got = call(app, "/predict_row", body, {"Authorization": f"Bearer {keys['clinician']}"})
    assert status == 403 and "clinician" in got["error"]
    assert call(app, "/predict_row", body, {"Authorization": f"Bearer {keys['admin']}"})[0] == 200
    status, _, got = call(app, "/predict_row", body, {"Authorization": f"Bearer {keys['crm']}", "Content-Type": "text/plain"})
    assert status == 415 and got["field"] == "Content-Type"
    assert downstream.paths == []


def test_other_methods_and_a_service_not_yet_up_go_to_bentoml(guarded):
    app, downstream, keys = guarded
    body = json.dumps({"problem": ELDERLY, "features": ROW}).encode()
    auth = {"Authorization": f"Bearer {keys['crm']}"}
    assert call(app, "/predict_row", body, auth)[0] == 299  # no scorer registered yet: BentoML answers
    assert call(app, "/predict_row", b"", auth, method="GET")[0] == 299  # its 405
    assert downstream.paths == ["/predict_row", "/predict_row"]


# Bodies BentoML 1.4's own handler gave for the same requests (recorded from a running service
# before this route moved into the guard): status, error line, and each problem's type and loc.
@pytest.mark.parametrize("body, status, error, problems", [
    (b'{"problem": ', 400, "1 validation error for PredictRowRequest", [("json_invalid", [])]),
    (b"", 400, "2 validation error for PredictRowRequest", [("missing", ["problem"]), ("missing", ["features"])]),
    (b"[1, 2]", 400, "1 validation error for PredictRowRequest", [("model_type", [])]),
    (json.dumps({"features": ROW}).encode(), 400, "1 validation error for PredictRowRequest", [("missing", ["problem"])]),
    (json.dumps({"problem": ELDERLY, "features": ROW, "x": 1}).encode(), 400, "1 validation error for PredictRowRequest",
     [("extra_forbidden", ["x"])]),
    (json.dumps({"problem": ELDERLY, "features": {**ROW, "age_years": [1]}}).encode(), 400, "2 validation error for PredictRowRequest",
     [("float_type", ["features", "age_years", "float"]), ("string_type", ["features", "age_years", "str"])]),
    (b'{"problem": "elderly-hospitalisation", "features": {"age_years": NaN}}', 400, "2 validation error for PredictRowRequest",
     [("finite_number", ["features", "age_years", "float"]), ("string_type", ["features", "age_years", "str"])]),
    (json.dumps({"problem": "x", "features": ROW}).encode(), 400, "1 validation error for PredictRowRequest", [("string_too_short", ["problem"])]),
])
def test_bad_bodies_get_bentomls_400_without_echoing_the_input(served, body, status, error, problems):
    got_status, payload = row_endpoint.answer(body)
    got = json.loads(payload)
    assert (got_status, got["error"]) == (status, error)
    assert [(d["type"], d["loc"]) for d in got["detail"]] == problems
    assert all("input" not in d and "ctx" not in d for d in got["detail"])


def test_scoring_errors_name_the_field(served):
    status, payload = row_endpoint.answer(json.dumps({"problem": "nope-nope", "features": ROW}).encode())
    assert status == 404 and json.loads(payload)["field"] == "problem" and "elderly-hospitalisation" in json.loads(payload)["error"]
    status, payload = row_endpoint.answer(json.dumps({"problem": ELDERLY, "features": {"age_years": 80}}).encode())
    assert status == 422 and json.loads(payload)["field"] == "features" and "er_visits_90d" in json.loads(payload)["error"]
    status, payload = row_endpoint.answer(json.dumps({"problem": ELDERLY, "features": {**ROW, "sex": "X"}}).encode())
    assert status == 422 and "sex" in json.loads(payload)["error"]


def test_a_chunked_body_may_not_grow_past_the_limit(served, guarded, monkeypatch):
    import serving.middleware as middleware

    app, _, keys = guarded
    monkeypatch.setattr(middleware, "MAX_BODY_BYTES", 64)
    body = json.dumps({"problem": ELDERLY, "features": ROW}).encode()
    status, _, got = call(app, "/predict_row", body, {"Authorization": f"Bearer {keys['crm']}"}, chunks=4)
    assert status == 413 and got["field"] == "body"
    monkeypatch.setattr(middleware, "MAX_BODY_BYTES", 4096)
    assert call(app, "/predict_row", body, {"Authorization": f"Bearer {keys['crm']}"}, chunks=4)[0] == 200
