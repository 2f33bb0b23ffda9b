"""POST /predict_row as the guard middleware answers it (serving/row_endpoint.py), in process over
the serving region (tests/serving_fixture.py: real feature rows, real champions): the same
probability as the model, the same 4xx bodies as BentoML's handler, keys and roles checked first.
Over HTTP through the real service: tests/test_serving_http.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from scoring.scorer import Scorer
from serving import row_endpoint
from serving.auth import create_key
from serving.middleware import GuardMiddleware
from serving.responses import row_response
from tests.serving_fixture import make_backend, members, models, store

ELDERLY = "elderly-hospitalisation"
META = ("subject_id", "prediction_time", "pipeline_version")


def posted(frame: pd.DataFrame, i: int) -> dict[str, float | str | None]:
    """One real feature row as the CRM posts it: every feature of the segment, NaN as null."""
    row = frame.iloc[i]
    return {name: (row[name] if isinstance(row[name], str) else None if pd.isna(row[name]) else float(row[name]))
            for name in frame.columns if name not in META}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """The elderly feature rows of 40 members at the end of the data (the feature package's own)."""
    from features import compute_features

    held = store()
    ids = members(ELDERLY, limit=40)
    return compute_features(None, None, ids, [held.resolve_time(None)] * len(ids), "elderly", history=held.history)


@pytest.fixture(scope="module")
def row(frame) -> dict[str, float | str | None]:
    return posted(frame, 0)


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer(make_backend())


@pytest.fixture()
def served(scorer):
    row_endpoint.serve(scorer)
    try:
        yield scorer
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


def test_probability_equals_the_in_memory_model(frame, served, guarded):
    """Each member's real row: the model's probability, the scorer's answer, and the probability
    /score gives the same member from the stored history."""
    scorer = served
    app, downstream, keys = guarded
    model = models([ELDERLY])[ELDERLY]
    _, scored = scorer.score_customers(frame["subject_id"].tolist(), None, 0)
    for i, item in enumerate(scored):
        features = posted(frame, i)
        body = json.dumps({"problem": ELDERLY, "features": features}).encode()
        status, headers, got = call(app, "/predict_row", body, {"Authorization": f"Bearer {keys['crm']}", "Content-Type": "application/json"})
        assert status == 200, got
        assert got["probability"] == float(model.predict_proba(frame.iloc[[i]])[0])
        assert got["probability"] == next(r.probability for r in item.risks if r.problem == ELDERLY)
        assert got == row_response(scorer.predict_row(ELDERLY, features)).model_dump(mode="json")
        assert headers[b"content-type"] == b"application/json"
    assert len(scored) == 40
    assert downstream.paths == []  # every one answered by the guard, none by BentoML's handler


def test_only_the_models_features_are_read(frame, served):
    """Features the model does not read (another segment's, or unknown) change nothing."""
    features = posted(frame, 1)
    plain = served.predict_row(ELDERLY, features)
    assert served.predict_row(ELDERLY, {**features, "not_a_feature": 1.0}) == plain
    other = next(f for f in served.champion("children-hospitalisation").model.feature_names if f not in features)
    assert served.predict_row(ELDERLY, {**features, other: 3.0}) == plain


def test_keys_and_roles_are_checked_before_the_row_is_scored(row, served, guarded):
    app, downstream, keys = guarded
    body = json.dumps({"problem": ELDERLY, "features": row}).encode()
    status, headers, got = call(app, "/predict_row", body, {})
    assert status == 401 and got["field"] == "Authorization" and b"www-authenticate" in headers
    assert call(app, "/predict_row", body, {"Authorization": "Bearer sr_deadbeef.nope"})[0] == 401
    status, _, got = call(app, "/predict_row", body, {"Authorization": f"Bearer {keys['clinician']}"})
    assert status == 403 and "clinician" in got["detail"]
    assert call(app, "/predict_row", body, {"Authorization": f"Bearer {keys['admin']}"})[0] == 200
    status, _, got = call(app, "/predict_row", body, {"Authorization": f"Bearer {keys['crm']}", "Content-Type": "text/plain"})
    assert status == 415 and got["field"] == "Content-Type"
    assert downstream.paths == []


def test_other_methods_and_a_service_not_yet_up_go_to_bentoml(row, guarded):
    app, downstream, keys = guarded
    body = json.dumps({"problem": ELDERLY, "features": row}).encode()
    auth = {"Authorization": f"Bearer {keys['crm']}"}
    assert call(app, "/predict_row", body, auth)[0] == 299  # no scorer registered yet: BentoML answers
    status, headers, got = call(app, "/predict_row", b"", auth, method="GET")  # a method the route does not take:
    assert (status, headers[b"allow"], got["field"]) == (405, b"POST", "method")  # the guard's 405, before BentoML
    assert downstream.paths == ["/predict_row"]


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


# Bodies BentoML 1.4's own handler gave for the same requests (recorded from a running service
# before this route moved into the guard): status, error line, and each problem's type and loc.
# A body is bytes or a function of the real row.
BAD_BODIES: list[tuple[str, bytes | Callable[[dict], bytes], int, str, list]] = [
    ("truncated", b'{"problem": ', 400, "1 validation error for PredictRowRequest", [("json_invalid", [])]),
    ("empty", b"", 400, "2 validation error for PredictRowRequest", [("missing", ["problem"]), ("missing", ["features"])]),
    ("array", b"[1, 2]", 400, "1 validation error for PredictRowRequest", [("model_type", [])]),
    ("no-problem", lambda row: dumps({"features": row}), 400, "1 validation error for PredictRowRequest",
     [("missing", ["problem"])]),
    ("extra", lambda row: dumps({"problem": ELDERLY, "features": row, "x": 1}), 400, "1 validation error for PredictRowRequest",
     [("extra_forbidden", ["x"])]),
    ("list-value", lambda row: dumps({"problem": ELDERLY, "features": {**row, "age_years": [1]}}), 400,
     "2 validation error for PredictRowRequest",
     [("float_type", ["features", "age_years", "float"]), ("string_type", ["features", "age_years", "str"])]),
    ("nan", lambda row: dumps({"problem": ELDERLY, "features": {**row, "age_years": None}}).replace(b'"age_years": null', b'"age_years": NaN'), 400,
     "2 validation error for PredictRowRequest",
     [("finite_number", ["features", "age_years", "float"]), ("string_type", ["features", "age_years", "str"])]),
    ("short-problem", lambda row: dumps({"problem": "x", "features": row}), 400, "1 validation error for PredictRowRequest",
     [("string_too_short", ["problem"])]),
]


@pytest.mark.parametrize("body, status, error, problems", [case[1:] for case in BAD_BODIES], ids=[case[0] for case in BAD_BODIES])
def test_bad_bodies_get_a_400_problem_without_echoing_the_input(row, served, body, status, error, problems):
    sent = body(row) if callable(body) else body
    got_status, payload = row_endpoint.answer(sent)
    got = json.loads(payload)
    count = error.split()[0]
    assert (got_status, got["status"], got["title"]) == (status, status, "Bad Request")
    assert got["detail"].startswith(f"{count} validation error") and got["detail"].split(": ")[0].endswith("for PredictRowRequest")
    assert [e["field"] for e in got["errors"]] == [".".join(str(p) for p in loc) or "body" for _, loc in problems]
    assert got["field"] == got["errors"][0]["field"]
    assert all(set(e) == {"field", "message"} for e in got["errors"])  # no input, no context
    if b"age_years" in sent:
        assert "[1]" not in payload.decode() and "NaN" not in payload.decode()


def test_scoring_errors_name_the_field(row, served):
    status, payload = row_endpoint.answer(dumps({"problem": "nope-nope", "features": row}))
    assert status == 404 and json.loads(payload)["field"] == "problem" and ELDERLY in json.loads(payload)["detail"]
    missing = {k: v for k, v in row.items() if k not in ("er_visits_90d", "rai_falls_last")}
    status, payload = row_endpoint.answer(dumps({"problem": ELDERLY, "features": missing}))
    got = json.loads(payload)
    assert status == 422 and got["field"] == "features" and "er_visits_90d" in got["detail"]
    assert "2 feature(s)" in got["detail"] and "rai_falls_last" in got["detail"]
    status, payload = row_endpoint.answer(dumps({"problem": ELDERLY, "features": {**row, "sex": "X"}}))
    assert status == 422 and "sex" in json.loads(payload)["detail"] and "'X'" in json.loads(payload)["detail"]
    status, payload = row_endpoint.answer(dumps({"problem": ELDERLY, "features": {**row, "age_years": "old"}}))
    assert status == 422 and json.loads(payload)["field"] == "features" and "age_years" in json.loads(payload)["detail"]


def test_a_missing_value_is_scored_as_missing(row, served):
    """null is a missing value (LightGBM's NaN), not an error; the model decides what it means."""
    model = models([ELDERLY])[ELDERLY]
    status, payload = row_endpoint.answer(dumps({"problem": ELDERLY, "features": {**row, "er_visits_90d": None}}))
    assert status == 200
    frame = pd.DataFrame([{**row, "er_visits_90d": float("nan")}])
    for name, categories in model.categories.items():
        frame[name] = pd.Categorical(frame[name], categories=categories)
    assert json.loads(payload)["probability"] == float(model.predict_proba(frame)[0])


def test_a_chunked_body_may_not_grow_past_the_limit(row, served, guarded, monkeypatch):
    import serving.middleware as middleware

    app, _, keys = guarded
    body = json.dumps({"problem": ELDERLY, "features": row}).encode()
    monkeypatch.setattr(middleware, "MAX_BODY_BYTES", len(body) - 1)
    status, _, got = call(app, "/predict_row", body, {"Authorization": f"Bearer {keys['crm']}"}, chunks=4)
    assert status == 413 and got["field"] == "body"
    monkeypatch.setattr(middleware, "MAX_BODY_BYTES", len(body))
    assert call(app, "/predict_row", body, {"Authorization": f"Bearer {keys['crm']}"}, chunks=4)[0] == 200
