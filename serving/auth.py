"""API keys, roles and what each role may call.

A key is `sr_<key id>.<secret>`; only the key id, role, a per-key salt and sha256(salt + secret)
are stored (home().keys_file). sha256 rather than scrypt/pbkdf2 on purpose: the secret is 256
random bits, so there is nothing for a slow hash to protect against guessing, and the check runs
on every request (a slow hash would cost more than the scoring itself).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from base.atomic import atomic_write_text
from base.errors import SoteRiskError

Role = Literal["crm", "clinician", "admin"]
ROLES: tuple[Role, ...] = ("crm", "clinician", "admin")
KEY_PREFIX = "sr_"

# Which roles may take which action. Admin may do everything.
PERMISSIONS: Mapping[str, frozenset[str]] = {
    "score": frozenset({"crm", "clinician", "admin"}),
    "score_history": frozenset({"crm", "clinician", "admin"}),
    "score_batch": frozenset({"crm", "admin"}),
    "predict_row": frozenset({"crm", "admin"}),
    "fhir": frozenset({"crm", "admin"}),
    "explain": frozenset({"clinician", "admin"}),
    "page": frozenset({"clinician", "admin"}),
    "model_card": frozenset({"crm", "clinician", "admin"}),
    # a signed link opens a clinician page without a key, so only those who may read pages may make one
    "page_link": frozenset({"clinician", "admin"}),
    "reload": frozenset({"admin"}),
    "feedback": frozenset({"crm", "admin"}),  # the CRM's verdicts on alerts
    # the series name routes and statuses only (serving/metrics.py), but traffic is the operators' business
    "metrics": frozenset({"admin"}),
    # the segment cost view: the region's money, no customer on it (so no per-customer audit): admins
    "costs": frozenset({"admin"}),
    # the models' monitoring (drift, realised performance): monthly figures, no customer on it: admins
    "monitoring": frozenset({"admin"}),
}


class KeyRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str
    role: Role
    salt: str
    sha256: str
    created: str
    expires: str | None = None  # ISO 8601 UTC; None: until revoked (keys made before expiry existed)


class KeyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[KeyRecord] = []


class Identity(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str
    role: Role


class KeyExpired(SoteRiskError):
    """A key that was valid and is no longer: the client is told when it expired."""

    def __init__(self, key_id: str, expires: str) -> None:
        super().__init__(f"API key {key_id} expired on {expires}: ask for a new one")
        self.key_id, self.expires = key_id, expires


DURATION = re.compile(r"^\s*(\d{1,5})\s*([dhw])\s*$")
UNITS = {"h": dt.timedelta(hours=1), "d": dt.timedelta(days=1), "w": dt.timedelta(weeks=1)}


def parse_duration(text: str) -> dt.timedelta:
    """'90d', '12h', '2w' -> a timedelta (what `keys create --expires-in` takes)."""
    found = DURATION.match(text)
    if found is None or int(found.group(1)) == 0:
        raise SoteRiskError(f"--expires-in {text!r}: give a positive whole number of hours, days or weeks, e.g. 90d, 12h, 2w")
    return int(found.group(1)) * UNITS[found.group(2)]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def expired(record: KeyRecord, now: dt.datetime) -> bool:
    return record.expires is not None and dt.datetime.fromisoformat(record.expires) <= now


def allowed(role: str, action: str) -> bool:
    return role in PERMISSIONS.get(action, frozenset({"admin"}))


def digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode("utf-8")).hexdigest()


def parse_bearer(header: str | None) -> tuple[str, str] | None:
    """`Bearer sr_<id>.<secret>` -> (key id, secret); anything else -> None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(KEY_PREFIX):
        return None
    key_id, dot, secret = token[len(KEY_PREFIX):].partition(".")
    if not dot or not key_id or not secret:
        return None
    return key_id, secret


def read_keys(path: Path) -> KeyFile:
    if not path.exists():
        return KeyFile()
    try:
        return KeyFile.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise SoteRiskError(f"key file {path} is not valid: {error}") from error


def write_keys(path: Path, keys: KeyFile) -> None:
    """Atomic write (tmp + rename), readable by the owner only. A key without expiry is written
    without the field, as before expiry existed (a rolled-back service still reads the file)."""
    atomic_write_text(path, keys.model_dump_json(indent=2, exclude_none=True), mode=0o600)


def create_key(path: Path, role: str, expires_in: dt.timedelta | None = None,
               now: dt.datetime | None = None) -> tuple[str, KeyRecord]:
    """Add a key with this role (valid for `expires_in`, or until revoked); returns the full key
    (shown once) and its stored record."""
    if role not in ROLES:
        raise SoteRiskError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    keys = read_keys(path)
    taken = {record.key_id for record in keys.keys}
    key_id = secrets.token_hex(4)
    while key_id in taken:
        key_id = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    created = now or utc_now()
    record = KeyRecord(
        key_id=key_id, role=role, salt=salt, sha256=digest(salt, secret),
        created=created.isoformat(timespec="seconds"),
        expires=(created + expires_in).isoformat(timespec="seconds") if expires_in is not None else None,
    )
    write_keys(path, KeyFile(keys=[*keys.keys, record]))
    return f"{KEY_PREFIX}{key_id}.{secret}", record


def revoke_key(path: Path, key_id: str) -> None:
    keys = read_keys(path)
    kept = [record for record in keys.keys if record.key_id != key_id]
    if len(kept) == len(keys.keys):
        raise SoteRiskError(f"no key with id {key_id!r} in {path}")
    write_keys(path, KeyFile(keys=kept))


class KeyRing:
    """The keys the service accepts; re-reads the file when it changes, so keys created or
    revoked with the CLI take effect without a restart (one stat per request)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._by_id: dict[str, KeyRecord] = {}
        self._refresh()

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
        if stamp == self._stamp:
            return
        with self._lock:
            self._by_id = {record.key_id: record for record in read_keys(self.path).keys}
            self._stamp = stamp

    def identify(self, authorization: str | None, now: dt.datetime | None = None) -> Identity | None:
        """The key's identity; None for no key or a wrong one; KeyExpired for a right one past its
        expiry (checked after the secret, so the message tells nothing to who does not hold it)."""
        parsed = parse_bearer(authorization)
        if parsed is None:
            return None
        self._refresh()
        key_id, secret = parsed
        record = self._by_id.get(key_id)
        if record is None or not hmac.compare_digest(record.sha256, digest(record.salt, secret)):
            return None
        if expired(record, now or utc_now()):
            raise KeyExpired(record.key_id, record.expires or "")
        return Identity(key_id=record.key_id, role=record.role)
