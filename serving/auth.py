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
}


class KeyRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str
    role: Role
    salt: str
    sha256: str
    created: str


class KeyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[KeyRecord] = []


class Identity(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str
    role: Role


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
    """Atomic write (tmp + rename), readable by the owner only."""
    atomic_write_text(path, keys.model_dump_json(indent=2), mode=0o600)


def create_key(path: Path, role: str) -> tuple[str, KeyRecord]:
    """Add a key with this role; returns the full key (shown once) and its stored record."""
    if role not in ROLES:
        raise SoteRiskError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    keys = read_keys(path)
    taken = {record.key_id for record in keys.keys}
    key_id = secrets.token_hex(4)
    while key_id in taken:
        key_id = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    record = KeyRecord(
        key_id=key_id, role=role, salt=salt, sha256=digest(salt, secret),
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
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

    def identify(self, authorization: str | None) -> Identity | None:
        parsed = parse_bearer(authorization)
        if parsed is None:
            return None
        self._refresh()
        key_id, secret = parsed
        record = self._by_id.get(key_id)
        if record is None or not hmac.compare_digest(record.sha256, digest(record.salt, secret)):
            return None
        return Identity(key_id=record.key_id, role=record.role)
