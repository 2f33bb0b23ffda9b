"""Request and response types of the service: what the OpenAPI document shows.

Requests subclass bentoml.IODescriptor so BentoML uses them as they are (its wrapper would rename
them `...IODescriptor` in error messages) and forbid unknown fields, so a misspelt field is a 400
naming it rather than silently ignored. They are strict: JSON `false` is not the integer 0 and the
number 0 is not a date, as the schema says (dates and times come as ISO strings). Limits are declared here, once, and show in the schema.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

import bentoml
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from explain.chains import SuggestedChain
from explain.reasons import FeatureContribution, Reason
from scoring.bands import Band
from scoring.history import EARLIEST_EVENT, LATEST_EVENT
from alerts.feedback import OverrideReason, SuggestionRef

MAX_BATCH = 500  # one batch must stay well under the request timeout on one worker
MAX_EVENTS = 20_000  # a long-term home care customer has a few thousand events a year
MAX_ROW_FEATURES = 2_000
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MUNICIPALITIES = (
    "Lappeenranta", "Imatra", "Lemi", "Luumäki", "Parikkala",
    "Rautjärvi", "Ruokolahti", "Savitaipale", "Taipalsaari",
)

CustomerId = Annotated[int, Field(ge=1, le=2**63 - 1, description="The customer's pseudonym (subject_id)")]
TopK = Annotated[int, Field(ge=0, le=20, description="How many reasons per problem; 0 = probability only (no SHAP)")]
ProblemId = Annotated[
    str, Field(min_length=3, max_length=64, pattern=r"^[a-z_]+-[a-z_]+$", description="e.g. elderly-hospitalisation")
]

AsOf = Annotated[
    dt.date | None,
    Field(description="Score as of this date (00:00 local time, like the monthly index times); default: the end of the data"),
]


def iso_date_text(value: Any) -> Any:
    """A page's `as_of` query parameter only as YYYY-MM-DD: pydantic would also read "0" as a Unix
    time (1970-01-01), a date nobody meant."""
    if isinstance(value, str) and not ISO_DATE.fullmatch(value):
        raise ValueError("as_of must be a date written YYYY-MM-DD")
    return value


PageDate = Annotated[dt.date, BeforeValidator(iso_date_text)]  # default None: left out, the end of the data


def openapi30(schema: dict[str, Any]) -> None:
    """Rewrite pydantic's `anyOf: [X, {type: null}]` as OpenAPI 3.0's `X + nullable: true`, in place.

    BentoML publishes an OpenAPI 3.0 document, where `type: null` does not exist; without this,
    schema-driven clients and fuzzers (schemathesis) reject every optional field.
    """
    for value in list(schema.values()):
        if isinstance(value, dict):
            openapi30(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    openapi30(item)
    options = schema.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        del schema["anyOf"]
        if len(rest) == 1:
            schema.update(rest[0])
        else:
            schema["anyOf"] = rest
        schema["nullable"] = True


class Request(bentoml.IODescriptor):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True, json_schema_extra=openapi30)


class Response(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=openapi30)


# --- requests ------------------------------------------------------------------------------


class ScoreRequest(Request):
    customer_id: CustomerId
    as_of: AsOf = None
    top_k: TopK = 5


class BatchRequest(Request):
    customer_ids: list[CustomerId] = Field(min_length=1, max_length=MAX_BATCH)
    as_of: AsOf = None
    top_k: TopK = 5


class CustomerRecord(BaseModel):
    """A customer's static attributes, as in customers.parquet (docs/INTERFACES.md)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True, json_schema_extra=openapi30)

    subject_id: CustomerId
    birth_year: int = Field(ge=1900, le=2100)
    birth_month: int = Field(ge=1, le=12)
    sex: Literal["F", "M"]
    municipality: Literal[MUNICIPALITIES]  # type: ignore[valid-type]
    language: Literal["fi", "sv", "other"]


class EventRecord(BaseModel):
    """One event of a posted history; service_area and cost default from the code catalogue."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True, json_schema_extra=openapi30)

    time: dt.datetime = Field(description="Local time (Europe/Helsinki), 1900-01-01 up to 2100-01-01 as written (else 422); "
                                          "an offset is converted to local time")
    code: str = Field(min_length=1, max_length=64)
    numeric_value: float | None = None
    service_area: str | None = Field(default=None, max_length=64)
    unit: str | None = Field(default=None, max_length=128)
    cost_eur: float | None = Field(default=None, ge=0, le=10_000_000)

    @field_validator("time")
    @classmethod
    def _local(cls, value: dt.datetime) -> dt.datetime:
        # A time outside 1900..2100 as written is refused later, with a 422 naming it
        # (scoring.history.check_event_times); its offset is left alone, as converting year 1 or
        # 9999 may overflow.
        if value.tzinfo is not None and EARLIEST_EVENT <= value.replace(tzinfo=None) < LATEST_EVENT:
            from zoneinfo import ZoneInfo

            value = value.astimezone(ZoneInfo("Europe/Helsinki")).replace(tzinfo=None)
        return value


class HistoryRequest(Request):
    customer: CustomerRecord
    events: list[EventRecord] = Field(max_length=MAX_EVENTS)
    as_of: AsOf = None
    top_k: TopK = 5


class ExplainRequest(Request):
    customer_id: CustomerId
    problem: ProblemId
    as_of: AsOf = None


class FhirRequest(Request):
    customer_id: CustomerId
    problem: ProblemId
    as_of: AsOf = None
    top_k: TopK = 5


class PredictRowRequest(Request):
    problem: ProblemId
    features: dict[Annotated[str, Field(max_length=128)], float | str | None] = Field(
        max_length=MAX_ROW_FEATURES, description="One feature row: feature name -> value (null = missing)"
    )


class ReloadRequest(Request):
    """Empty body: reload the histories from the home folder's data."""


class FeedbackRequest(Request):
    """The CRM's verdict on one alert card (a CDS Hooks feedback item). The nested types are the
    ones alerts/feedback.py validates with, so the schema and the check cannot drift apart."""

    card: str = Field(min_length=1, max_length=64, description="The card's uuid (= the outbox alert id)")
    outcome: Literal["accepted", "overridden"]
    overrideReason: OverrideReason | None = None  # noqa: N815 (CDS Hooks spelling)
    acceptedSuggestions: list[SuggestionRef] | None = Field(None, max_length=50)  # noqa: N815
    outcomeTimestamp: AwareDatetime = Field(description="When the professional decided (with a UTC offset)")  # noqa: N815
    extension: dict[str, Any] | None = None


class PageLinkRequest(Request):
    """A signed link to one customer's clinician page, for a browser that sends no key
    (serving/page_links.py). It opens that page only (this customer, date, language and span) and
    the links in it (the other language, the other spans, the model cards)."""

    customer_id: CustomerId
    as_of: AsOf = None
    lang: Literal["fi", "en"] = "fi"
    days: int | None = Field(default=None, ge=1, le=365,
                             description="How many days the link opens; default and most: SOTE_RISK_LINK_DAYS")
    months: int | None = Field(default=None, ge=1, le=60,
                               description="The page's span in months (default: 24, or what the data allow)")


# --- responses -----------------------------------------------------------------------------


class ModelGate(Response):
    """The served model's promotion record: whether it passed its quality gates before use."""

    status: Literal["passed", "forced", "unchecked"] = Field(
        description="passed: met its gates; forced: put in use although it failed them (reasons); "
                    "unchecked: made champion without the gates")
    reasons: list[str] = Field(description="The gates a forced model failed (empty otherwise)")
    label_en: str
    label_fi: str


class ProblemRisk(Response):
    problem: str
    label_en: str
    label_fi: str
    probability: float
    band: Band
    model_version: str
    pipeline_version: str
    reasons: list[Reason] = Field(description="The top_k families a nurse can act on (services, events, diagnoses, "
                                  "assessments), largest effect first")
    context: list[Reason] = Field(description="Background, not reasons to act on: age, sex, municipality, language and "
                                  "service costs, with their share of the score (empty when top_k is 0)")
    gate: ModelGate
    meaning_en: str = Field(description="What the probability is (and is not), in plain English")
    meaning_fi: str = Field(description="Mitä todennäköisyys tarkoittaa (ja mitä ei), suomeksi")


class ScoreResponse(Response):
    customer_id: int
    as_of: dt.date
    risks: list[ProblemRisk]
    note: str | None = Field(default=None, description="Why the list is empty, when it is")


class BatchItem(ScoreResponse):
    error: str | None = Field(default=None, description="e.g. an unknown customer; the rest of the batch is scored")


class BatchResponse(Response):
    as_of: dt.date
    results: list[BatchItem]


class ExplainResponse(Response):
    customer_id: int
    problem: str
    as_of: dt.date
    model_version: str
    pipeline_version: str
    probability: float
    band: Band
    base_value: float = Field(description="Expected raw score (log-odds); base_value + sum(contributions) = raw_score")
    raw_score: float
    contributions: list[FeatureContribution]
    reasons: list[Reason] = Field(description="Every family a nurse can act on, largest effect first")
    context: list[Reason] = Field(description="The background families (age, sex, municipality, language; service costs): "
                                  "base_value + reasons + context = raw_score")
    suggested_chains: list[SuggestedChain]
    gate: ModelGate
    meaning_en: str
    meaning_fi: str


class PredictRowResponse(Response):
    problem: str
    probability: float
    band: Band
    model_version: str
    gate: ModelGate


class ReloadResponse(Response):
    customers: int
    events: int
    generation: int
    seconds: float
    champions: dict[str, str] = Field(description="problem -> champion model version now served")


class FeedbackResponse(Response):
    alert_id: str
    outcome: str
    feedback_id: int
    duplicate: bool = Field(description="The same verdict (alert, outcome, time) was already stored")


class PageLinkResponse(Response):
    url: str = Field(description="The page's signed link on the service's public address (SOTE_RISK_PUBLIC_URL)")
    expires: dt.datetime = Field(description="When the link stops opening (UTC)")


FhirResource = dict[str, Any]
