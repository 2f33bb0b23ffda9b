"""The BentoML service: `bentoml serve serving.service:RiskService` (or `sote-risk serve`).

Declaring the service is this module's only import-time work (BentoML needs the class at module
level); models and histories load in `RiskService.__init__`, once per worker. JSON APIs are
`@bentoml.api` methods with the typed requests of serving/api_types.py; the HTML pages are a
small FastAPI app mounted at /ui (BentoML merges its routes into the OpenAPI document). Keys and
roles are checked by serving/middleware.py before any route runs; a page may also be opened with
a signed link and no key (serving/page_links.py), and `POST /page_link` makes such links.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import pathlib
import time
from typing import Annotated, Any, Literal

import bentoml
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response

from base.errors import SoteRiskError
from base.settings import settings
from serving.api_types import (
    BatchRequest, BatchResponse, ExplainRequest, ExplainResponse, FeedbackRequest, FeedbackResponse,
    FhirRequest, FhirResource, HistoryRequest, PageDate, PageLinkRequest, PageLinkResponse, PredictRowRequest, PredictRowResponse,
    ReloadRequest, ReloadResponse, ScoreRequest, ScoreResponse,
)
from serving.headers import page_headers
from serving.metrics import JSON_ROUTES, MetricsMiddleware, untraced_urls
from serving.middleware import IDENTITY, GuardMiddleware
from serving.page_links import LINK_EXPIRES, LinkKeeper
from serving.problems import FHIR_JSON, PROBLEM_JSON, validation_problem
from serving.responses import batch_item, error_body, explain_response, row_response, score_response
from serving.row_endpoint import PATH as ROW_PATH

log = logging.getLogger("sote_risk.serving")

COST_VIEWS_KEPT = 16  # cost views a worker keeps (each a few hundred KB of frames)
THREADS = 8  # sync APIs run in a thread pool of this size (BentoML's default of 1 serialises them)


def worker_count() -> int:
    """SOTE_RISK_WORKERS, read at import: the one setting that is (BentoML takes the worker count
    from the decorator, in the server process and in each worker)."""
    try:
        return settings().workers
    except SoteRiskError as error:
        raise SystemExit(str(error)) from None


def _known_query_only(request: Request) -> None:
    """Every page takes only its declared query parameters and a signed link's own (exp, sig): any
    other is a 400 naming it, before a rule about the values can answer 422 (the published schema
    has no room for it)."""
    from base.links import EXPIRES, SIGNATURE

    route = request.scope.get("route")
    if route is None or not hasattr(route, "dependant"):
        return
    # the pages' own query parameters (no dependency of theirs takes any)
    allowed = {field.alias for field in route.dependant.query_params} | {EXPIRES, SIGNATURE}
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise RequestValidationError([{"loc": ("query", name), "msg": f"unknown query parameter; this page takes "
                                       f"{', '.join(sorted(allowed))}", "type": "extra_forbidden"} for name in unknown])


# No FastAPI docs under /ui: its Swagger and ReDoc pages load scripts from a CDN (BentoML reads the
# routes for its OpenAPI document from the app itself, not from openapi_url).
ui = FastAPI(title="sote-risk pages", description="Clinician pages and model cards (HTML)",
             docs_url=None, redoc_url=None, openapi_url=None, dependencies=[Depends(_known_query_only)])


def _error(ctx: bentoml.Context | None, error: SoteRiskError) -> JSONResponse:
    """Problem details naming the field; the status comes from the error type (serving/responses.py)."""
    status, body = error_body(error)
    if ctx is not None:
        ctx.response.status_code = status
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _freeze_loaded(reloaded: bool = False) -> None:
    """Move what is loaded now (models, histories: ~360k objects at the region's size) out of the
    cyclic GC's reach: each full collection would walk them again for nothing, and under load
    those pauses showed as latency spikes. After a reload, unfreeze and collect first so the old
    store's objects can be freed. At a worker's start there is next to nothing to collect (~120
    unreachable objects among ~220k at the region's size), and the full collection that finds
    them took 0.1-0.5 s of a replacement worker's start: freeze without it."""
    import gc

    if reloaded:
        gc.unfreeze()
        gc.collect()
    gc.freeze()


def _show_own_info() -> None:
    """Our own INFO lines (a worker's start, the caches it used) in the service's log: BentoML's
    logging passes INFO only for its own loggers. A level set by whoever runs it is kept."""
    own = logging.getLogger("sote_risk")
    if own.level == logging.NOTSET:
        own.setLevel(logging.INFO)


def _seconds_since_process_start() -> float | None:
    """How long ago this process started (Linux: /proc), None elsewhere."""
    try:
        start_ticks = int(pathlib.Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(pathlib.Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def _log_ready(started: float, loaded: float, frozen: float, done: float) -> None:
    """One line per worker start, with where its time went: how soon a killed worker's replacement
    answers is what the service can promise (docs/INTERFACES.md)."""
    since = _seconds_since_process_start()
    before = "?" if since is None else f"{since - (done - started):.2f}"
    log.info("worker %d ready %s s after its process started: interpreter and imports %s s, champions and histories "
             "%.2f s, GC freeze %.2f s, the rest %.2f s", os.getpid(), "?" if since is None else f"{since:.2f}", before,
             loaded - started, frozen - loaded, done - frozen)


def _with_status(error: SoteRiskError, status: int, field: str | None) -> SoteRiskError:
    error.status, error.field = status, field  # type: ignore[attr-defined]  (read by _error)
    return error


def _page(html: str) -> HTMLResponse:
    """A page with its security headers: its CSP allows its own inline styles by hash (the guard
    adds the same fixed headers to every /ui response, errors included)."""
    return HTMLResponse(html, headers=page_headers(html))


def _page_error(error: SoteRiskError) -> Response:
    return _error(None, error)


def _field_of(message: str) -> str | None:
    """The field a feedback message names: 'feedback for alert X: outcome: ...' -> 'outcome'."""
    parts = message.split(": ")
    return parts[1].split(".")[0] if len(parts) > 2 else None


@bentoml.asgi_app(ui, path="/ui")
@bentoml.service(
    name="sote_risk",
    threads=THREADS,
    workers=worker_count(),
    traffic={"timeout": 120},
    # BentoML's HTTP metrics label each series with the raw path, refused and unknown ones too:
    # serving/metrics.py records them by route template instead (MetricsMiddleware, below).
    metrics={"enabled": False},
    # /predict_row (answered in the guard, serving/row_endpoint.py) has no access-log line and no
    # tracing span: at thousands of rows a second they cost more than the scoring; the metrics
    # middleware still counts and times it.
    logging={"access": {"enabled": True, "request_content_length": True, "response_content_length": True,
                        "skip_paths": [ROW_PATH]}},
    # Traced: the routes and pages but /predict_row (serving/metrics.py untraced_urls says why).
    tracing={"excluded_urls": [untraced_urls(tuple(route for route in JSON_ROUTES if route != ROW_PATH))]},
)
class RiskService:
    """Risk scores, explanations, FHIR RiskAssessments and clinician pages for Eksote's customers."""

    def __init__(self) -> None:
        from base.settings import quiet_third_parties
        from scoring.backend import load_backend
        from scoring.scorer import Scorer
        from serving import row_endpoint
        from serving.audit import AuditLog
        from serving.generation import Watcher, generation_file
        from serving.logs import install_log_redaction

        started = time.perf_counter()
        quiet_third_parties()
        install_log_redaction()
        _show_own_info()
        self.settings = settings()
        backend = load_backend(self.settings)  # refuses with a clear message: no champion, stale pipeline
        self.scorer = Scorer(backend, cache_size=self.settings.cache_size)
        row_endpoint.serve(self.scorer)
        loaded = time.perf_counter()
        _freeze_loaded()
        frozen = time.perf_counter()
        home = self.settings.layout
        self.audit = AuditLog(home.audit_db)
        self.outbox_path = home.outbox_db
        self.links = LinkKeeper(home.link_secret)  # signs the links inside pages opened by a signed link
        from serving.whatif_section import EstimateShelf

        self.whatif_estimates = EstimateShelf(home.interventions)  # the customer view's what-if (re-read on change)
        self._card_samples: dict[tuple[str, int], Any] = {}
        self._cost_views: dict[tuple[Any, ...], Any] = {}  # (generation, year, group) -> costs.CostView
        # Another worker's /reload reaches this one through the generation file (serving/generation.py).
        self.watcher = Watcher(generation_file(home.root), lambda _: self._reload_local()).start()
        _log_ready(started, loaded, frozen, time.perf_counter())

    def __is_ready__(self) -> bool:
        return self.scorer.backend.history is not None

    # --- helpers --------------------------------------------------------------------------------

    def _record(self, request: Any, endpoint: str, reads: list[tuple[int, list[Any]]], link_expires: int | None = None,
                posted: str | None = None) -> None:
        """Audit every read of a customer's risk: one row per customer. A read through a signed
        link carries the link's expiry (so does the making of one: `link_expires`); a posted
        history's read its hash (`posted`, customer serving.audit.POSTED)."""
        from base.links import expiry_text
        from serving.audit import AuditEntry, now

        identity = getattr(request.state, IDENTITY, None)
        if identity is None:
            return
        expires = link_expires or getattr(request.state, LINK_EXPIRES, None)
        stamp = now()
        self.audit.append(
            AuditEntry(
                time=stamp, key_id=identity.key_id, role=identity.role, endpoint=endpoint, customer=int(customer),
                problems=[r.problem for r in risks], model_versions=[f"{r.problem}:{r.model_version}" for r in risks],
                link_expires=expiry_text(expires) if expires else None, posted=posted,
            )
            for customer, risks in reads
        )

    def _signer(self, request: Request) -> Any:
        """For a page opened by a signed link: sign its links with that link's expiry (else None)."""
        expires = getattr(request.state, LINK_EXPIRES, None)
        return None if expires is None else (lambda path: self.links.sign(path, expires))

    # --- JSON APIs ------------------------------------------------------------------------------

    @bentoml.api(route="/score", input_spec=ScoreRequest)
    def score(self, customer_id: int, as_of: dt.date | None, top_k: int, ctx: bentoml.Context) -> ScoreResponse:
        """Risk of one customer (by pseudonym) for every problem whose cohort holds them at as_of,
        with the top reasons; a customer in no cohort gets an empty list and a note; unknown: 404."""
        try:
            item = self.scorer.score_customer(customer_id, as_of, top_k)
        except SoteRiskError as error:
            return _error(ctx, error)
        self._record(ctx.request, "score", [(customer_id, item.risks)])
        return score_response(item)

    @bentoml.api(route="/score_history", input_spec=HistoryRequest)
    def score_history(self, customer: Any, events: list[Any], as_of: dt.date | None, top_k: int, ctx: bentoml.Context) -> ScoreResponse:
        """Risk for a history the caller posts (customer + events), checked by the data contracts,
        at as_of inside the data's span (default its end; a date outside it: 422 naming as_of)."""
        from scoring.errors import OutsideData
        from scoring.history import posted_frames, validate_posted
        from serving.audit import POSTED, posted_hash

        posted = (customer.model_dump(), [e.model_dump() for e in events])
        try:
            frames = posted_frames(*posted)
            validate_posted(*frames)
            item = self.scorer.score_posted(*frames, as_of, top_k)
        except OutsideData as error:  # understood, but no answer at that date: 422 as on /score
            return _error(ctx, _with_status(error, 422, "as_of"))
        except SoteRiskError as error:
            if not hasattr(error, "field"):
                error.field = "events"  # type: ignore[attr-defined]  (a contract rule on the posted history)
            return _error(ctx, error)
        # Not a read of the stored customer with this subject_id: the caller's own history.
        self._record(ctx.request, "score_history", [(POSTED, item.risks)], posted=posted_hash(*posted))
        return score_response(item)

    @bentoml.api(route="/score_batch", input_spec=BatchRequest)
    def score_batch(self, customer_ids: list[int], as_of: dt.date | None, top_k: int, ctx: bentoml.Context) -> BatchResponse:
        """Many customers at once (at most api_types.MAX_BATCH); unknown ids come back with an error."""
        try:
            time, results = self.scorer.score_customers(customer_ids, as_of, top_k)
        except SoteRiskError as error:
            return _error(ctx, error)
        self._record(ctx.request, "score_batch", [(r.customer_id, r.risks) for r in results if r.error is None])
        return BatchResponse(as_of=time.date(), results=[batch_item(r) for r in results])

    @bentoml.api(route="/explain", input_spec=ExplainRequest)
    def explain(self, customer_id: int, problem: str, as_of: dt.date | None, ctx: bentoml.Context) -> ExplainResponse:
        """Every feature's contribution (log-odds) for one customer and problem, with plain-language
        text; base_value + sum(contributions) = raw_score."""
        try:
            item = self.scorer.explain(customer_id, problem, as_of)
        except SoteRiskError as error:
            return _error(ctx, error)
        self._record(ctx.request, "explain", [(customer_id, [item])])
        return explain_response(item)

    @bentoml.api(route="/fhir_risk_assessment", input_spec=FhirRequest)
    def fhir_risk_assessment(
        self, customer_id: int, problem: str, as_of: dt.date | None, top_k: int, ctx: bentoml.Context
    ) -> FhirResource:
        """An HL7 FHIR R4 RiskAssessment for one customer and problem."""
        import pandas as pd

        from alerts.fhir import risk_assessment
        from scoring.errors import NotInCohort
        from vocabulary import vocabulary

        try:
            champion = self.scorer.champion(problem)
            item = self.scorer.score_customer(customer_id, as_of, top_k)
            risk = next((r for r in item.risks if r.problem == problem), None)
            if risk is None:
                raise NotInCohort(f"customer {customer_id} is not in the cohort of {problem} on {item.as_of}", field="problem")
        except SoteRiskError as error:
            return _error(ctx, error)
        self._record(ctx.request, "fhir", [(customer_id, [risk])])
        resource = risk_assessment(
            subject_id=customer_id, problem=problem, time=pd.Timestamp(item.as_of),
            outcome_label=vocabulary().problem_label(champion.problem, "en"),
            horizon_days=champion.horizon_days, probability=risk.probability, band=risk.band,
            model_version=risk.model_version, pipeline_version=risk.pipeline_version, reasons=risk.reasons, gate=risk.gate,
        )
        # FHIR's own media type (the declared return type still gives the schema in OpenAPI).
        return Response(json.dumps(resource, ensure_ascii=False), media_type=FHIR_JSON)

    @bentoml.api(route="/predict_row", input_spec=PredictRowRequest)
    async def predict_row(self, problem: str, features: dict[str, Any], ctx: bentoml.Context) -> PredictRowResponse:
        """Probability only for a feature row the caller computed (no history, no SHAP, no audit:
        there is no customer in it). Async: one row takes ~0.2 ms, less than a thread hop.
        Once the worker is up, the guard middleware answers this route itself with the same
        types and errors (serving/row_endpoint.py); this method declares it (OpenAPI) and is
        the same work through BentoML's handler."""
        try:
            return row_response(self.scorer.predict_row(problem, features))
        except SoteRiskError as error:
            return _error(ctx, error)

    @bentoml.api(route="/reload", input_spec=ReloadRequest)
    def reload(self, ctx: bentoml.Context) -> ReloadResponse:
        """Re-read the histories from the home folder's data and the champions from the registry
        without a restart (admin). Every worker reloads: this one now, the others within a second
        (they watch a generation file, which `sote-risk promote` bumps too)."""
        try:
            self.watcher.bump()
            store, generation, seconds = self._reload_local()
        except SoteRiskError as error:
            return _error(ctx, error)
        champions = {problem: c.version for problem, c in self.scorer.backend.champions.items()}
        return ReloadResponse(customers=len(store.customers), events=store.events, generation=generation,
                              seconds=seconds, champions=champions)

    def _reload_local(self) -> tuple[Any, int, float]:
        store, generation, seconds = self.scorer.backend.reload()
        self.scorer.clear_caches()
        self._card_samples.clear()
        _freeze_loaded(reloaded=True)
        return store, generation, seconds

    @bentoml.api(route="/feedback", input_spec=FeedbackRequest)
    def feedback(
        self, card: str, outcome: str, overrideReason: Any, acceptedSuggestions: Any,  # noqa: N803 (CDS Hooks names)
        outcomeTimestamp: dt.datetime, extension: Any, ctx: bentoml.Context,  # noqa: N803
    ) -> FeedbackResponse:
        """The CRM's verdict on an alert (accepted, or overridden with a reason): stored in the
        outbox for the acceptance report. Unknown alert: 404; a verdict its rules refuse: 422 naming the field.
        Repeating the same verdict is harmless (duplicate: true)."""
        from alerts import feedback, outbox

        body = {"card": card, "outcome": outcome, "outcomeTimestamp": outcomeTimestamp.isoformat()}
        if overrideReason is not None:
            body["overrideReason"] = overrideReason.model_dump(exclude_none=True)
        if acceptedSuggestions is not None:
            body["acceptedSuggestions"] = [s.model_dump() for s in acceptedSuggestions]
        if extension is not None:
            body["extension"] = extension
        conn = outbox.connect(self.outbox_path)  # per request: feedback is rare, a shared sqlite connection is not thread-safe
        try:
            result = feedback.record_feedback(conn, card, body)
        except feedback.NotFound as error:
            return _error(ctx, _with_status(error, 404, "card"))
        except feedback.FeedbackInvalid as error:
            return _error(ctx, _with_status(error, 422, _field_of(str(error))))
        finally:
            conn.close()
        return FeedbackResponse(alert_id=result.alert_id, outcome=result.outcome, feedback_id=result.feedback_id,
                                duplicate=result.duplicate)

    @bentoml.api(route="/page_link", input_spec=PageLinkRequest)
    def page_link(self, customer_id: int, as_of: dt.date | None, lang: str, days: int | None, ctx: bentoml.Context,
                  months: int | None = None) -> PageLinkResponse:
        """A signed link to one customer's clinician page (clinician, admin), for a browser that
        sends no key: it opens that page (customer, date, language) and the links in it until it
        expires, and every read through it is audited. Making it is audited too. Unknown customer:
        404; more days than SOTE_RISK_LINK_DAYS: 400; a date, or a span (`months`), outside the data: 422."""
        from base.links import customer_page_path, expiry_after, expiry_text, public_link
        from scoring.errors import UnknownCustomer

        try:
            if days is not None and days > self.settings.link_days:
                # 400: the OpenAPI document states this maximum (serving/openapi.py)
                raise _with_status(SoteRiskError(f"days must be at most {self.settings.link_days} (SOTE_RISK_LINK_DAYS), not {days}"),
                                   400, "days")
            if not self.scorer.backend.history.knows(customer_id):
                raise UnknownCustomer(f"unknown customer {customer_id}", field="customer_id")
            from serving.pages import view_span

            view_span(self.scorer, as_of, months)  # a date or a span outside the data: no page to open
        except SoteRiskError as error:
            return _error(ctx, error)
        expires = expiry_after(days or self.settings.link_days)
        url = public_link(self.settings.public_url, customer_page_path(customer_id, as_of, lang, months), self.links.secret(), expires)
        self._record(ctx.request, "page_link", [(customer_id, [])], link_expires=expires)
        return PageLinkResponse(url=url, expires=dt.datetime.fromisoformat(expiry_text(expires)))

    # --- HTML pages (FastAPI, mounted at /ui) ------------------------------------------------------

    @ui.get("/customers/{customer_id}", response_class=HTMLResponse, summary="Clinician page for one customer")
    def customer_page(
        self, request: Request, customer_id: int = Path(ge=1, le=2**63 - 1, description="the customer's pseudonym"),
        lang: Literal["fi", "en"] = "fi",
        # Not `| None`: OpenAPI 3.0 has no null type (the default None is not validated). Inside
        # Annotated, or FastAPI drops PageDate's validator.
        as_of: Annotated[PageDate, Query(description="default: the end of the data")] = None,
        months: Annotated[int, Query(ge=1, le=60, description=  # le: serving.pages.MAX_MONTHS
                                     "the span of the timeline and the risk trends, in months "
                                     "before as_of (default 24, or as far as the data reach)")] = None,
    ) -> HTMLResponse:
        from serving.pages import customer_page

        try:
            html, risks = customer_page(self.scorer, customer_id, as_of, lang, sign=self._signer(request), months=months,
                                        read_alerts=lambda start, end: self._customer_alerts(customer_id, start, end),
                                        whatif=self.whatif_estimates.estimates() or None)  # none stored: no block
        except SoteRiskError as error:
            return _page_error(error)
        self._record(request, "page", [(customer_id, risks)])
        return _page(html)

    def _customer_alerts(self, customer_id: int, start: Any, end: Any) -> list[dict[str, Any]]:
        """The customer's cards in a span with their CRM feedback (none while there is no outbox:
        a page read never creates one). A connection per request: sqlite's is not thread-safe."""
        from alerts import outbox

        if not self.outbox_path.exists():
            return []
        conn = outbox.connect(self.outbox_path)
        try:
            return outbox.customer_alerts(conn, customer_id, start, end)
        finally:
            conn.close()

    @ui.get("/model_card/{problem}", response_class=HTMLResponse, summary="Model card of one problem's champion")
    def model_card_page(self, request: Request, problem: str, lang: Literal["fi", "en"] = "fi") -> HTMLResponse:
        from serving.model_card import model_card

        try:
            self.scorer.champion(problem)
            key = (problem, self.scorer.backend.generation)
            if key not in self._card_samples:
                size = self.settings.card_sample
                self._card_samples[key] = self.scorer.card_sample(problem, size) if size else None
            return _page(model_card(self.scorer, problem, lang, self._card_samples[key], sign=self._signer(request)))
        except SoteRiskError as error:
            return _page_error(error)

    def _cost_view(self, year: int | None, group: str | None, codes: str | None, age: str | None, segment: str | None) -> Any:
        """The cost view of the held histories (costs/), kept per data generation: the whole region
        takes seconds, a page reload none. Bad options: 404 for an unknown group, else 422, naming
        the query parameter."""
        from costs import CostInputError, cost_view, make_group

        try:
            chosen = make_group(group, codes, age, segment)
            store = self.scorer.backend.history
            key = (self.scorer.backend.generation, year, chosen)
            found = self._cost_views.get(key)
            if found is None:
                found = cost_view(store.history, store.start, store.end, year, chosen)
                if len(self._cost_views) >= COST_VIEWS_KEPT:
                    self._cost_views.pop(next(iter(self._cost_views)))
                self._cost_views[key] = found
            return found, (store.start, store.end)
        except CostInputError as error:
            raise _with_status(SoteRiskError(error.detail()), 404 if error.option == "group" else 422, error.option) from None

    @ui.get("/costs", response_class=HTMLResponse, summary="Costs by customer segment (admin)")
    def costs_page(
        self, lang: Literal["fi", "en"] = "fi",
        year: Annotated[int, Query(ge=1900, le=2200, description="default: the last whole year of the data")] = None,
        group: Annotated[str, Query(max_length=100, description="a named group, e.g. heart-failure-50-65")] = None,
        codes: Annotated[str, Query(max_length=500, description="ad hoc group: codes, comma list (ICD10/I50 takes ICD10/I50.9)")] = None,
        age: Annotated[str, Query(max_length=20, description="ad hoc group: age at the end of the year, e.g. 50-65")] = None,
        segment: Annotated[str, Query(max_length=50, description="ad hoc group: a segment")] = None,
    ) -> HTMLResponse:
        from serving.cost_page import cost_page

        try:
            view, span = self._cost_view(year, group, codes, age, segment)
            return _page(cost_page(view, lang, span, group))
        except SoteRiskError as error:
            return _page_error(error)

    @ui.get("/monitoring/{problem}", response_class=HTMLResponse, summary="Monitoring of one problem's model (admin)")
    def monitoring_page(
        self, problem: str, lang: Literal["fi", "en"] = "fi",
        alias: Annotated[str, Query(pattern=r"^[a-z][a-z0-9_-]{0,39}$", description="registry alias (default champion)")] = "champion",
        region: Annotated[str, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$", description="a region of a "
                                     "multi-region monitoring run (default: the one with the newest breach, else the first)")] = None,
    ) -> HTMLResponse:
        """The latest `sote-risk monitor` run of the problem's model under the alias: drift, realised
        and estimated performance, alert rate, over the index months (read from the home, per request:
        a monitoring run in another process shows at the next load). Monitored region by region
        (a multi-region features folder): one region's, with links to the others."""
        from serving.monitor_page import monitoring_page, shown_record
        from training.monitor_run import read_latest, read_region_latest
        from vocabulary import problem_ids

        if problem not in problem_ids():
            return _page_error(_with_status(SoteRiskError(
                f"unknown problem {problem!r}; known: {', '.join(problem_ids())}"), 404, "problem"))
        folder = self.settings.layout.monitoring
        regions = read_region_latest(folder, problem, alias)
        if region is not None:
            record = regions.get(region)
            if record is None:
                known = f"regions monitored: {', '.join(regions)}" if regions else "no region has been monitored"
                return _page_error(_with_status(SoteRiskError(
                    f"no monitoring run of {problem} in region {region!r} under alias {alias!r} ({known})"), 404, "region"))
        else:
            record = shown_record(read_latest(folder, problem, alias), regions)
        if record is None:
            return _page_error(_with_status(SoteRiskError(
                f"no monitoring run of {problem} under alias {alias!r} yet (run `sote-risk monitor --as-of DATE "
                f"--alias {alias}`)"), 404, "problem"))
        return _page(monitoring_page(record, lang, alias, regions))

    @ui.get("/costs.csv", response_class=Response, summary="Costs by customer segment as one long CSV table (admin)")
    def costs_csv(
        self, lang: Literal["fi", "en"] = "fi",
        year: Annotated[int, Query(ge=1900, le=2200)] = None,
        group: Annotated[str, Query(max_length=100)] = None,
        codes: Annotated[str, Query(max_length=500)] = None,
        age: Annotated[str, Query(max_length=20)] = None,
        segment: Annotated[str, Query(max_length=50)] = None,
    ) -> Response:
        from costs.table import csv_text

        del lang  # the CSV has codes and numbers, no words; the page's link keeps its language
        try:
            view, _ = self._cost_view(year, group, codes, age, segment)
        except SoteRiskError as error:
            return _page_error(error)
        name = f"sote-risk-costs-{view.year}{'-' + view.group.group.name if view.group is not None else ''}.csv"
        return Response(csv_text(view), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


@ui.exception_handler(RequestValidationError)
async def _page_request_invalid(_: Request, error: RequestValidationError) -> JSONResponse:
    """A page request that does not match its parameters: 400 problem details, as on the JSON
    routes (FastAPI's own answer is a 422 that echoes the values sent)."""
    return JSONResponse(validation_problem(error.errors()), status_code=400, media_type=PROBLEM_JSON)


def openapi_document() -> dict[str, Any]:
    """BentoML's document of this service, finished by serving/openapi.py (served at /docs.json)."""
    from scoring.backend import served_problems
    from serving.openapi import package_version, service_document

    current = settings()
    return service_document(RiskService.openapi_spec.asdict(), package_version(), served_problems(current.problems),
                            current.link_days)


# The first added is the outer one: metrics see the guard's refusals.
RiskService.add_asgi_middleware(MetricsMiddleware)
RiskService.add_asgi_middleware(GuardMiddleware, openapi=openapi_document)
