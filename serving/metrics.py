"""HTTP metrics labelled by route template, and the /metrics exposition.

Why not BentoML's own: its traffic middleware (bentoml/_internal/server/http/instruments.py,
`RunnerTrafficMetricsMiddleware`) is the outermost middleware and labels every series with the
raw `scope["path"]`, before any route or key is known. Every distinct path, even a refused one,
became a series of its own: a probe's 3,000 random paths grew /metrics to 5.75 MB and each
worker by 30-40 MB, and `/ui/customers/<pseudonym>` told anyone who could read /metrics which
customers' pages were opened. No BentoML setting changes its label, so the service turns
BentoML's metrics off (serving/service.py) and records the same three metrics here, with a
bounded label set: a route's template, or OTHER for any path that is no route or whose request
carried no valid credentials (401).

Series live in prometheus_client's multiprocess files when PROMETHEUS_MULTIPROC_DIR is set
(BentoML sets it for every worker), so /metrics on any worker adds up all workers.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from functools import lru_cache
from typing import Any

NAMESPACE = "sote_risk"
OTHER = "other"  # every path that is no route, and every request refused for want of a valid key
JSON_ROUTES = ("/score", "/score_history", "/score_batch", "/predict_row", "/explain", "/fhir_risk_assessment",
               "/reload", "/feedback", "/page_link")
INFRA_ROUTES = ("/", "/docs", "/docs.json", "/healthz", "/livez", "/readyz", "/metrics")
PAGE_ROUTES = ("/ui/costs", "/ui/costs.csv")  # exact page routes (the others take a parameter)
# prefix -> template: a prefix route matches one more path segment (its parameter), no more
PREFIX_TEMPLATES = {"/ui/customers/": "/ui/customers/{customer_id}", "/ui/model_card/": "/ui/model_card/{problem}",
                    "/ui/monitoring/": "/ui/monitoring/{problem}"}
EXACT = frozenset(JSON_ROUTES + INFRA_ROUTES + PAGE_ROUTES)
# seconds; the last bucket is the traffic timeout (serving/service.py)
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

Scope = MutableMapping[str, Any]


def route_template(path: str) -> str | None:
    """The route a path belongs to, as its template ('/ui/customers/42' -> '/ui/customers/{customer_id}');
    None for a path that is no route."""
    if path in EXACT:
        return path
    for prefix, template in PREFIX_TEMPLATES.items():
        rest = path[len(prefix):]
        if path.startswith(prefix) and rest and "/" not in rest:
            return template
    return None


def untraced_urls(traced: tuple[str, ...] = JSON_ROUTES) -> str:
    """A regex for BentoML's `tracing.excluded_urls` (OpenTelemetry searches it in
    scheme://host/path) that matches every URL but the traced routes and pages. Why: BentoML's
    TimeoutMiddleware keeps each request's context, its span included, until the traffic
    timeout fires (a timer it never cancels), so a burst of probe requests to paths that are no
    route would cost the worker a few KB each for two minutes, and its peak RSS for good."""
    routes = [re.escape(route.lstrip("/")) for route in traced]
    routes += [re.escape(prefix.lstrip("/")) + "[^/]+" for prefix in PREFIX_TEMPLATES]
    routes += [re.escape(route.lstrip("/")) for route in PAGE_ROUTES]
    return rf"^[A-Za-z]+://[^/]*(?!/(?:{'|'.join(routes)})$)/"


def endpoint_label(path: str, status: int | None = None) -> str:
    """The `endpoint` label of a request: its route template, or OTHER when it is no route or was
    refused for want of valid credentials (a scan of random paths stays one series)."""
    template = route_template(path)
    return OTHER if template is None or status == 401 else template


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        # Our own registry: in multiprocess mode the values live in files and the exposition reads
        # those; in one process (tests) this registry is what /metrics shows.
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["endpoint", "http_response_code"]
        self.total = Counter("request_total", "HTTP requests", labels, namespace=NAMESPACE, registry=self.registry)
        self.duration = Histogram("request_duration_seconds", "HTTP request duration in seconds", labels,
                                  namespace=NAMESPACE, buckets=BUCKETS, registry=self.registry)
        self.in_progress = Gauge("request_in_progress", "HTTP requests in progress", ["endpoint"],
                                 namespace=NAMESPACE, multiprocess_mode="livesum", registry=self.registry)


@lru_cache(maxsize=1)
def _metrics() -> _Metrics:
    """Made on first use, in the worker (prometheus_client reads PROMETHEUS_MULTIPROC_DIR then)."""
    return _Metrics()


def exposition() -> tuple[bytes, str]:
    """The Prometheus text of every worker's series (or this process's), and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(_metrics().registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Counts and times every HTTP request under its endpoint label. It sits outside the guard
    (serving/middleware.py), so refusals are counted too, under OTHER when they are 401s."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive, send) -> None:  # noqa: ANN001 (ASGI)
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics = _metrics()
        path = scope.get("path", "")
        start, status = time.perf_counter(), 500  # no response start at all: counted as the 500 the server sends

        async def counted_send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with metrics.in_progress.labels(endpoint_label(path)).track_inprogress():
            try:
                await self.app(scope, receive, counted_send)
            finally:
                label, code = endpoint_label(path, status), str(status)
                metrics.total.labels(label, code).inc()
                metrics.duration.labels(label, code).observe(time.perf_counter() - start)
