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
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from base.errors import SoteRiskError

EXPIRES = "exp"
SIGNATURE = "sig"


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


def _mac(message: str, secret: bytes) -> str:
    return hmac.new(secret, message.encode("utf-8"), hashlib.sha256).hexdigest()


def _without_signature(path: str) -> str:
    parts = urlsplit(path)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in (EXPIRES, SIGNATURE)]
    return parts.path + (f"?{urlencode(kept)}" if kept else "")
