"""The service's own API docs page at / and /docs (no key needed, like the OpenAPI document).

BentoML's stock page at / is a Swagger UI that loads Google Tag Manager: a third party learned
who opened the service and when. This page is plain HTML with no script and nothing loaded from
anywhere: what the service is, how to authenticate, each route, and the link to the OpenAPI
document (/docs.json) for tools that render or test it.
"""

from __future__ import annotations

import html

ROUTES: tuple[tuple[str, str, str], ...] = (
    ("POST", "/score", "risk of one customer for every problem whose cohort holds them, with the top reasons"),
    ("POST", "/score_batch", "many customers at once"),
    ("POST", "/score_history", "risk for a history the caller posts (customer and events)"),
    ("POST", "/predict_row", "probability only, for a feature row the caller computed"),
    ("POST", "/explain", "every feature's contribution for one customer and problem"),
    ("POST", "/fhir_risk_assessment", "an HL7 FHIR R4 RiskAssessment"),
    ("POST", "/feedback", "the CRM's verdict on an alert"),
    ("POST", "/page_link", "a signed link to a clinician page"),
    ("POST", "/reload", "re-read data and champions without a restart (admin)"),
    ("GET", "/ui/customers/{customer_id}", "clinician page (HTML)"),
    ("GET", "/ui/model_card/{problem}", "model card of a problem's champion (HTML)"),
    ("GET", "/metrics", "Prometheus metrics (admin)"),
    ("GET", "/healthz, /livez, /readyz", "health probes (no key)"),
)


def docs_page(routes: tuple[tuple[str, str, str], ...] = ROUTES) -> str:
    rows = "\n".join(f"<tr><td>{html.escape(method)}</td><td><code>{html.escape(path)}</code></td><td>{html.escape(what)}</td></tr>"
                     for method, path, what in routes)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>sote-risk API</title></head>\n<body>\n'
        "<h1>sote-risk API</h1>\n"
        "<p>Risk scores, explanations and clinician pages. Every route but the probes and this page needs "
        "<code>Authorization: Bearer &lt;key&gt;</code> (keys: <code>sote-risk keys create --role crm|clinician|admin</code>).</p>\n"
        '<p>The OpenAPI document: <a href="docs.json">docs.json</a>.</p>\n'
        f"<table>\n<tr><th>method</th><th>route</th><th>what</th></tr>\n{rows}\n</table>\n</body>\n</html>\n"
    )
