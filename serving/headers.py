"""Security headers of everything a browser may open: the pages under /ui and the docs page.

A page carries a customer's risk, so no cache keeps it (`no-store`), no other site may frame it,
no Referer takes its (maybe signed) address elsewhere, and its Content-Security-Policy lets it
load nothing from anywhere: pages are one self-contained file with inline SVG and CSS and no
script (serving/pages.py). The policy allows exactly the page's own <style> elements, by their
sha256 (computed from the HTML served, so a template change cannot silently break the styling),
and style attributes, which matplotlib's SVG on a model card writes by the thousand (229
distinct values on one card: too many to list as hashes in a header); with nothing allowed to
load, an attribute can only restyle the page, never fetch or run anything. The model card's
colour bar is a data: image.
"""

from __future__ import annotations

import base64
import hashlib
import re

STYLE_ELEMENT = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.S | re.I)
FIXED = {
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
# What every policy says whatever the page: nothing to load, no base, no forms, no framing.
_BASE = "default-src 'none'; img-src data:; style-src-attr 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
CSP = "content-security-policy"


def style_hashes(html: str) -> list[str]:
    """CSP source expressions of the page's inline <style> elements, in order, without repeats."""
    found = []
    for text in STYLE_ELEMENT.findall(html):
        digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
        if f"'sha256-{digest}'" not in found:
            found.append(f"'sha256-{digest}'")
    return found


def content_security_policy(html: str = "") -> str:
    """The policy of one HTML document (its own style elements allowed), or of anything else."""
    hashes = style_hashes(html)
    return _BASE + (f"; style-src {' '.join(hashes)}" if hashes else "")


def page_headers(html: str) -> dict[str, str]:
    """The headers a page route sends with its HTML."""
    return {**FIXED, CSP: content_security_policy(html)}


def with_security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """An ASGI response's headers with the fixed ones forced and a CSP added unless the route set
    its own (a page's, with its style hashes)."""
    forced = {name.encode("ascii") for name in FIXED}
    kept = [(name, value) for name, value in headers if name.lower() not in forced]
    has_policy = any(name.lower() == CSP.encode("ascii") for name, _ in kept)
    added = [(name.encode("ascii"), value.encode("ascii")) for name, value in FIXED.items()]
    if not has_policy:
        added.append((CSP.encode("ascii"), content_security_policy().encode("ascii")))
    return kept + added
