"""Signed links: a URL a browser can open without an Authorization header, for a while.

A clinician opens a customer's page from a CRM card with a click: the card's link carries an
expiry time and an HMAC-SHA256 signature over the path, the query and the expiry, made with the
home folder's link secret. The service checks the signature and the expiry instead of a key
(and audits the read as it audits every read). Pure functions: the secret and the time are
given; reading or creating the secret file is `link_secret` (0600, atomic).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import datetime as dt
import time
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from base.errors import SoteRiskError

EXPIRES = "exp"
SIGNATURE = "sig"
DAY_SECONDS = 86_400

# The service's pages (serving/service.py mounts them at /ui). Here, not in serving/, because the
# alerts layer (cards) and the command line make links to them too and may not import serving.
CUSTOMER_PAGE = "/ui/customers/{customer_id}"
MODEL_CARD = "/ui/model_card/{problem}"


class LinkError(SoteRiskError):
    """A signed link that is malformed, expired or not ours."""


def sign(path: str, secret: bytes, expires_at: int) -> str:
    """`path` (with its query, if any) plus `exp` and `sig` parameters."""
    base = _without_signature(path)
    joiner = "&" if urlsplit(base).query else "?"
    unsigned = f"{base}{joiner}{urlencode({EXPIRES: int(expires_at)})}"
    return f"{unsigned}&{urlencode({SIGNATURE: _mac(unsigned, secret)})}"


def verify(path: str, secret: bytes, now: float | None = None) -> None:
    """Raise LinkError unless `path` (as requested: path and query) carries a valid, unexpired
    signature made with `secret`."""
    parts = urlsplit(path)
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = [v for k, v in query if k == SIGNATURE]
    expires = [v for k, v in query if k == EXPIRES]
    if len(given) != 1 or len(expires) != 1:
        raise LinkError("not a signed link")
    if not query or query[-1][0] != SIGNATURE:
        raise LinkError("the signature must be the link's last parameter")
    unsigned = path[: path.rindex(f"&{SIGNATURE}=")]
    if not hmac.compare_digest(_mac(unsigned, secret), given[0]):
        raise LinkError("the link's signature does not match")
    try:
        expires_at = int(expires[0])
    except ValueError:
        raise LinkError("the link's expiry is not a time") from None
    if expires_at < (time.time() if now is None else now):
        raise LinkError("the link has expired")


def link_secret(path: Path) -> bytes:
    """The home folder's link secret, created (32 random bytes, mode 0600) on first use."""
    from base.atomic import atomic_write_text

    path = Path(path)
    if not path.exists():
        atomic_write_text(path, secrets.token_hex(32) + "\n", mode=0o600)
    text = path.read_text(encoding="utf-8").strip()
    if len(text) < 32:
        raise LinkError(f"{path}: the link secret is missing or too short; delete the file to make a new one")
    return text.encode("ascii")


def customer_page_path(customer_id: int, as_of: dt.date | None = None, lang: str = "fi", months: int | None = None) -> str:
    """The path (and query) of a customer's clinician page: as_of (if any), then lang, then the
    span in months (if any)."""
    query = ([("as_of", as_of.isoformat())] if as_of is not None else []) + [("lang", lang)]
    query += [("months", str(int(months)))] if months is not None else []
    return f"{CUSTOMER_PAGE.format(customer_id=int(customer_id))}?{urlencode(query)}"


def model_card_path(problem: str, lang: str = "fi") -> str:
    """The path (and query) of a problem's served model card."""
    return f"{MODEL_CARD.format(problem=quote(problem, safe=''))}?{urlencode({'lang': lang})}"


def expiry_after(days: int, now: float | None = None) -> int:
    """The expiry time (Unix seconds) of a link that opens for `days` days from now."""
    if days < 1:
        raise LinkError(f"a link must open for at least one day (got {days})")
    return int(time.time() if now is None else now) + int(days) * DAY_SECONDS


def public_link(public_url: str, path: str, secret: bytes, expires_at: int) -> str:
    """The signed link on the service's public address (settings().public_url): what a card or a
    person is given. The public URL may carry a path prefix (a reverse proxy that strips it)."""
    return public_url.rstrip("/") + sign(path, secret, expires_at)


def expiry_text(expires_at: int) -> str:
    """An expiry as people and the audit log read it: ISO 8601 in UTC, to the second."""
    return dt.datetime.fromtimestamp(int(expires_at), dt.timezone.utc).isoformat(timespec="seconds")


def _mac(message: str, secret: bytes) -> str:
    return hmac.new(secret, message.encode("utf-8"), hashlib.sha256).hexdigest()


def _without_signature(path: str) -> str:
    parts = urlsplit(path)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in (EXPIRES, SIGNATURE)]
    return parts.path + (f"?{urlencode(kept)}" if kept else "")
