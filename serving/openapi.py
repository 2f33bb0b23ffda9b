"""The service's OpenAPI document (/docs.json): BentoML's, finished to say what the service does.

BentoML generates paths and request/response schemas from the typed APIs; this adds what it
cannot know and corrects what it gets wrong for this service:
- `info.version` is the package's version (BentoML's is "None" outside a built bento), the title
  and description ours (no third-party links);
- the bearer security scheme, required on every route but the probes (security: []);
- request bodies marked required where their schema has a required field (BentoML leaves them
  optional);
- every status each route answers, declared with its body: refusals are problem details
  (`application/problem+json`, serving/problems.py), the FHIR route's are OperationOutcome
  resources and its answer `application/fhir+json`; a 401 declares `WWW-Authenticate`, a 405
  `Allow`;
- the problems a route takes, as an enum of the problems served (`problem` fields and the model
  card's path parameter), and the page link's `days` bounded by the configured maximum.
Pure: takes BentoML's document as a dict and returns a new one.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from serving.problems import FHIR_JSON, FHIR_PATH, PROBLEM_JSON, title

SECURITY_SCHEME = "apiKey"
PROBES = ("/healthz", "/livez", "/readyz")

# What each route may answer besides 200, apart from the guard's refusals (below), and why.
ROUTE_STATUSES: Mapping[str, tuple[int, ...]] = {
    "/score": (404, 422),              # unknown customer; as_of outside the data
    "/score_history": (422,),          # posted history breaks a data rule; as_of outside it
    "/score_batch": (422,),            # as_of outside the data (unknown ids are answered per item)
    "/predict_row": (404, 422),        # unknown problem; a row the model cannot take
    "/explain": (404, 422),            # unknown customer or problem; not in its cohort, as_of outside
    FHIR_PATH: (404, 422),
    "/reload": (409, 422),             # refused reload (e.g. a stale champion); data that cannot load
    "/feedback": (404, 422),           # unknown card; a verdict its rules refuse
    "/page_link": (404, 422),          # unknown customer; as_of outside the data
    "/ui/customers/{customer_id}": (404, 422),
    "/ui/model_card/{problem}": (404,),
    "/ui/costs": (404, 422),           # unknown group; a year outside the data, unknown codes, a bad age range or segment
    "/ui/costs.csv": (404, 422),
    "/ui/monitoring/{problem}": (404,),  # unknown problem, or no monitoring run of it under the alias
    "/metrics": (),
}
# The guard's refusals (serving/middleware.py), on every route it guards: a second
# Authorization header or a body that does not match the schema (400), no or a bad key (401),
# a role that may not (403), a method the route does not take (405); with a JSON body also 413
# and 415. Every route may fail unexpectedly (500).
GUARDED = (400, 401, 403, 405, 500)
WITH_BODY = (413, 415)
PUBLIC_STATUSES = (400, 405, 500)

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details: why the request was refused.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "about:blank: the status and field say what went wrong"},
        "title": {"type": "string", "description": "the status's phrase"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "what was wrong, in words"},
        "field": {"type": "string", "description": "the request part at fault: a body field, Authorization, Content-Type, body or method"},
        "errors": {
            "type": "array",
            "description": "for a request that does not match its schema: each violation (never the value sent)",
            "items": {"type": "object", "required": ["field", "message"],
                      "properties": {"field": {"type": "string"}, "message": {"type": "string"}}},
        },
    },
}
OPERATION_OUTCOME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "OperationOutcome",
    "description": "FHIR R4 OperationOutcome: why the FHIR request was refused.",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
        "issue": {
            "type": "array", "minItems": 1,
            "items": {"type": "object", "required": ["severity", "code"],
                      "properties": {"severity": {"type": "string", "enum": ["fatal", "error", "warning", "information"]},
                                     "code": {"type": "string"}, "diagnostics": {"type": "string"},
                                     "expression": {"type": "array", "items": {"type": "string"}}}},
        },
    },
}
# BentoML's own error schemas and task types, which this service never answers with.
DROPPED_SCHEMAS = ("InvalidArgument", "NotFound", "InternalServerError", "HTTPValidationError", "ValidationError",
                   "TaskStatusResponse")
DESCRIPTION = (
    "Risk scores with their reasons for Eksote's social and health care customers (pseudonymous ids), "
    "FHIR RiskAssessments, CRM feedback on alerts, and clinician pages. Send `Authorization: Bearer <key>` "
    "(`sote-risk keys create --role crm|clinician|admin`). Every refusal is RFC 9457 problem details "
    "(application/problem+json); the FHIR route answers application/fhir+json and refuses with an OperationOutcome."
)


def statuses(path: str, method: str) -> tuple[int, ...]:
    """Every status a route answers besides 200, in order."""
    if path in PROBES:
        return PUBLIC_STATUSES
    found = set(GUARDED) | set(ROUTE_STATUSES.get(path, ()))
    if method == "post":
        found |= set(WITH_BODY)
    return tuple(sorted(found))


def _refusal(status: int, path: str) -> dict[str, Any]:
    media, schema = ((FHIR_JSON, "#/components/schemas/OperationOutcome") if path == FHIR_PATH
                     else (PROBLEM_JSON, "#/components/schemas/Problem"))
    response: dict[str, Any] = {"description": title(status), "content": {media: {"schema": {"$ref": schema}}}}
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True,
                                                    "description": "Bearer realm=\"sote-risk\""}}
    if status == 405:
        response["headers"] = {"Allow": {"schema": {"type": "string"}, "required": True,
                                         "description": "the methods the route takes"}}
    return response


def _problem_enum(schema: dict[str, Any], problems: Sequence[str]) -> None:
    """A `problem` property or parameter takes only the problems served."""
    schema.pop("pattern", None)
    schema.pop("minLength", None)
    schema.pop("maxLength", None)
    schema["enum"] = list(problems)


def _finish_operation(path: str, method: str, operation: dict[str, Any], problems: Sequence[str], link_days: int) -> None:
    # BentoML's refusals (its own error schemas) go; its 200 stays, keyed as a string like ours.
    answered = {str(code): response for code, response in operation.get("responses", {}).items() if str(code) == "200"}
    operation["responses"] = responses = answered
    if path == FHIR_PATH and "200" in responses:
        content = responses["200"].get("content", {})
        if "application/json" in content:
            content[FHIR_JSON] = content.pop("application/json")
    if path == "/metrics" and "200" in responses:
        responses["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}
    for status in statuses(path, method):
        responses[str(status)] = _refusal(status, path)
    if path in PROBES:
        operation["security"] = []
    body = operation.get("requestBody")
    if body is not None:
        schema = body.get("content", {}).get("application/json", {}).get("schema", {})
        body["required"] = bool(schema.get("required"))  # /reload's empty body may be left out
        properties = schema.get("properties", {})
        if "problem" in properties:
            _problem_enum(properties["problem"], problems)
        if path == "/page_link" and "days" in properties:
            properties["days"]["maximum"] = link_days
    for parameter in operation.get("parameters", []):
        if parameter.get("name") == "problem":
            _problem_enum(parameter.setdefault("schema", {}), problems)


def service_document(bentoml_spec: Mapping[str, Any], version: str, problems: Sequence[str], link_days: int) -> dict[str, Any]:
    """BentoML's OpenAPI document finished for this service (see the module's docstring)."""
    spec = copy.deepcopy(dict(bentoml_spec))
    spec["info"] = {"title": "sote-risk", "version": version, "description": DESCRIPTION}
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in DROPPED_SCHEMAS:
        schemas.pop(name, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["OperationOutcome"] = OPERATION_OUTCOME_SCHEMA
    components["securitySchemes"] = {SECURITY_SCHEME: {
        "type": "http", "scheme": "bearer", "bearerFormat": "sr_<key id>.<secret>",
        "description": "A key from `sote-risk keys create --role crm|clinician|admin`; roles decide the routes."}}
    spec["security"] = [{SECURITY_SCHEME: []}]
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            if isinstance(operation, dict):
                _finish_operation(path, method, operation, problems, link_days)
    return spec


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sote-risk")
    except PackageNotFoundError:  # run from a checkout without installing: the pyproject's version
        return "0+unknown"
