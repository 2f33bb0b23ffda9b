"""Signed webhook bodies, in the manner of the Standard Webhooks specification (standardwebhooks.com).

Each delivery carries three headers:

    webhook-id         the message id: the card's id, the same on every retry (the receiver's
                       idempotency key, so a repeat or a replay stores nothing new)
    webhook-timestamp  seconds since the epoch when this attempt was signed
    webhook-signature  `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, space-separated
                       when several (a receiver accepts any that matches: secrets can rotate)

The secret is per CRM: `whsec_` + base64 of 32 random bytes, the HMAC key being those bytes.
It lives in the home folder (`crm_webhook_secret`, 0600, made on first use); the dispatcher signs
with it and the CRM (or the bundled receiver) verifies with the same file's content.

Why the timestamp is signed: a receiver refuses one older (or further ahead) than TOLERANCE_S,
so a captured request cannot be replayed later; within the window the id makes a replay a
repeat the receiver already holds. Pure functions, except `load_secret` (the file).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from base.errors import SoteRiskError

PREFIX = "whsec_"
TOLERANCE_S = 300  # 5 minutes, as the specification suggests
MIN_KEY_BYTES = 24
ID, TIMESTAMP, SIGNATURE = "webhook-id", "webhook-timestamp", "webhook-signature"


class SignatureError(SoteRiskError):
    """A delivery whose signature headers are missing, stale or do not match (the receiver's 401)."""


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_...` secret; ValueError when it is not one."""
    text = secret.strip()
    try:
        key = base64.b64decode(text.removeprefix(PREFIX), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not text.startswith(PREFIX) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"a webhook secret is '{PREFIX}' and the base64 of at least {MIN_KEY_BYTES} random bytes")
    return key


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key, f"{msg_id}.{int(timestamp)}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def signed_headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {ID: msg_id, TIMESTAMP: str(int(timestamp)), SIGNATURE: signature(key, msg_id, timestamp, body)}


def verify(key: bytes, headers: Mapping[str, str], body: bytes, *, now: float,
           tolerance_s: float = TOLERANCE_S) -> str:
    """The message id of a delivery signed with `key` within `tolerance_s` of `now`; otherwise
    SignatureError saying which check failed (never the expected signature)."""
    msg_id, stamp, given = (headers.get(name, "").strip() for name in (ID, TIMESTAMP, SIGNATURE))
    if not (msg_id and stamp and given):
        raise SignatureError(f"missing {ID}, {TIMESTAMP} or {SIGNATURE} header")
    if not stamp.isdigit() or len(stamp) > 12:
        raise SignatureError(f"{TIMESTAMP} is not seconds since the epoch")
    if abs(now - int(stamp)) > tolerance_s:
        raise SignatureError(f"{TIMESTAMP} is more than {int(tolerance_s)} s from now (stale or replayed)")
    expected = signature(key, msg_id, int(stamp), body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in given.split()):
        raise SignatureError(f"{SIGNATURE} does not match")
    return msg_id


def load_secret(path: Path) -> str:
    """The CRM webhook secret in `path`, made (0600) on first use. Two processes starting at once
    agree on one secret: it is written whole to a private file, then linked into place, which
    fails for the second. A file others can read is refused: the secret lets anyone sign alerts."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(new_secret() + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            tmp.unlink()
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise SoteRiskError(f"{path}: the CRM webhook secret is readable by others; chmod 600 it")
    text = path.read_text(encoding="ascii").strip()
    try:
        secret_key(text)
    except ValueError as error:
        raise SoteRiskError(f"{path}: {error}; delete the file to make a new one (and give it to the CRM)") from None
    return text
