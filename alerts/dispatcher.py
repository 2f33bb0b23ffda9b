"""Delivers pending alerts (cards: one per customer per index date) from the outbox to the CRM webhook.

Guarantee: at-least-once sending + the CRM deduplicating by `Idempotency-Key` (the card id,
which is also the card's uuid and what CRM feedback names) = exactly-once effect in the CRM.
- Each alert is leased (claimed with an expiry) before it is sent, so two dispatchers never
  send the same alert at the same time; a dispatcher killed mid-send leaves its lease, which
  expires, and the alert is sent again (the CRM answers the repeat from its dedup store).
- The lease outlives the request timeout (validated), so a live dispatcher never loses its
  lease in the middle of a request.
- Failures retry with exponential backoff and full jitter (delay ~ U(0, min(cap, base*2^(n-1)))).
  The cap is a few minutes, so delivery resumes soon after the CRM comes back.
- An alert is dead only when it is older than its maximum age (`max_age_s` since it became
  due) or when the CRM refuses it for good: a 4xx other than 408/425/429 means the CRM rejects
  the body and retrying cannot help. A refused connection, a timeout or a 5xx is an outage,
  not a bad alert, so no count of attempts makes it dead (a count of 10 killed alerts about
  8 minutes into an outage). Dead letters: `sote-risk alerts dead`, `alerts retry ID` or
  `alerts retry --all-dead`.
Logs carry alert ids and HTTP statuses, never payloads.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from alerts import outbox
from base.errors import SoteRiskError
from base.settings import env_name, settings

WEBHOOK_ENV = env_name("crm_webhook_url")
RETRYABLE_4XX = frozenset({408, 425, 429})

log = logging.getLogger(__name__)


class DispatchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook_url: str
    base_delay_s: float = Field(2.0, gt=0)
    cap_delay_s: float = Field(120.0, gt=0)  # the longest wait after the CRM returns
    max_age_s: float = Field(24 * 3600.0, gt=0)
    lease_s: float = Field(60.0, gt=0)
    request_timeout_s: float = Field(10.0, gt=0)
    poll_interval_s: float = Field(2.0, gt=0)
    max_per_pass: int = Field(1000, ge=1)  # bounds one run-once pass

    @model_validator(mode="after")
    def _consistent(self) -> "DispatchConfig":
        if not self.webhook_url.startswith(("http://", "https://")):
            raise ValueError(f"webhook_url must be an http(s) URL, got {self.webhook_url!r}")
        if self.lease_s <= self.request_timeout_s:
            raise ValueError("lease_s must exceed request_timeout_s, or a slow request could be sent twice at once")
        if self.cap_delay_s < self.base_delay_s:
            raise ValueError("cap_delay_s must be at least base_delay_s")
        return self


def config_from_env(**overrides: object) -> DispatchConfig:
    """DispatchConfig with the webhook from SOTE_RISK_CRM_WEBHOOK_URL (unless given)."""
    values = {k: v for k, v in overrides.items() if v is not None}
    values.setdefault("webhook_url", settings().crm_webhook_url)
    if not values["webhook_url"]:
        raise SoteRiskError(f"no CRM webhook: set {WEBHOOK_ENV} (e.g. http://127.0.0.1:8900/alerts)")
    try:
        return DispatchConfig(**values)
    except ValueError as error:
        raise SoteRiskError(f"dispatch config: {error}".replace("\n", " ")) from None


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter (AWS architecture blog, 'Exponential Backoff and Jitter'): spreads retries."""
    return rng.uniform(0.0, min(cap, base * 2 ** (attempt - 1)))


POLL_SLICE_S = 0.1  # how often an idle wait looks at the stop flag: bounds how long a stop takes


class StopFlag:
    """Set by a signal handler, polled by the loop.

    Setting it is one attribute write and takes no lock. A handler that calls
    threading.Event.set takes the Event's Condition lock; a second signal landing while the first
    handler holds it runs the handler again on the same thread, which waits for that lock
    forever (seen: a dispatcher under `timeout`, which sends two signals, hung until kill -9).
    """

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def on_signal(self, signum: int, frame: object) -> None:  # noqa: ARG002 (signal handler signature)
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds in slices of POLL_SLICE_S, returning early once set."""
        deadline = time.monotonic() + timeout
        while not self._set:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, POLL_SLICE_S))
        return self._set


class Stop(Protocol):
    """What the loop needs of a stop signal: a StopFlag, or a threading.Event in tests."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float) -> bool: ...


@dataclass
class DispatchCounts:
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    released: int = 0  # waiting alerts released from the capacity queue this pass

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    retryable: bool
    error: str = ""
    retry_after: float | None = None


def _send(client: httpx.Client, config: DispatchConfig, claimed: outbox.ClaimedAlert) -> _Outcome:
    try:
        response = client.post(
            config.webhook_url,
            content=json.dumps(claimed.payload, sort_keys=True),
            headers={"Idempotency-Key": claimed.alert_id, "Content-Type": "application/json"},
        )
    except httpx.HTTPError as error:  # refused, reset, timeout: the CRM may or may not have it
        return _Outcome(False, True, f"{type(error).__name__}: {error}")
    if 200 <= response.status_code < 300:
        return _Outcome(True, False)
    retryable = response.status_code >= 500 or response.status_code in RETRYABLE_4XX
    retry_after = response.headers.get("Retry-After")
    seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
    return _Outcome(False, retryable, f"HTTP {response.status_code}", seconds)


def run_once(
    conn: sqlite3.Connection,
    config: DispatchConfig,
    *,
    client: httpx.Client | None = None,
    owner: str | None = None,
    clock: Callable[[], float] = time.time,
    today: Callable[[], date] = date.today,
    rng: random.Random | None = None,
    stop: Stop | None = None,
) -> DispatchCounts:
    """Deliver what is due now (after releasing waiting alerts today's budget allows)."""
    owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    rng = rng or random.Random()
    counts = DispatchCounts()
    if outbox.has_queued(conn):
        from alerts.cycle import release_waiting  # pulls in pandas: only when there is a queue

        counts.released = release_waiting(conn, today=today(), now=clock())["released"]
    own_client = client is None
    client = client or httpx.Client(timeout=config.request_timeout_s)
    try:
        for _ in range(config.max_per_pass):
            if stop is not None and stop.is_set():
                break
            claimed = outbox.claim_next(conn, owner=owner, now=clock(), lease_seconds=config.lease_s)
            if claimed is None:
                break
            outcome = _send(client, config, claimed)
            if outcome.ok:
                outbox.mark_delivered(conn, claimed.alert_id)
                counts.delivered += 1
                log.info("alert %s delivered (attempt %d)", claimed.alert_id, claimed.attempts)
                continue
            now = clock()
            too_old = now - claimed.due_since >= config.max_age_s
            if not outcome.retryable or too_old:
                outbox.mark_failed(conn, claimed.alert_id, owner=owner, error=outcome.error, next_attempt_at=None)
                counts.dead += 1
                log.warning("alert %s dead after %d attempt(s): %s", claimed.alert_id, claimed.attempts, outcome.error)
                continue
            delay = backoff_delay(claimed.attempts, config.base_delay_s, config.cap_delay_s, rng)
            if outcome.retry_after is not None:
                delay = max(delay, min(outcome.retry_after, config.cap_delay_s))
            outbox.mark_failed(conn, claimed.alert_id, owner=owner, error=outcome.error, next_attempt_at=now + delay)
            counts.retrying += 1
            log.info("alert %s attempt %d failed (%s); retry in %.2fs", claimed.alert_id, claimed.attempts, outcome.error, delay)
    finally:
        if own_client:
            client.close()
    return counts


def run_loop(
    conn: sqlite3.Connection,
    config: DispatchConfig,
    *,
    stop: Stop,
    on_pass: Callable[[DispatchCounts], None] | None = None,
) -> DispatchCounts:
    """Deliver until `stop` is set; sleeps poll_interval_s when a pass found nothing to do."""
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    total = DispatchCounts()
    rng = random.Random()
    with httpx.Client(timeout=config.request_timeout_s) as client:
        while not stop.is_set():
            counts = run_once(conn, config, client=client, owner=owner, rng=rng, stop=stop)
            for key, value in counts.as_dict().items():
                setattr(total, key, getattr(total, key) + value)
            if on_pass is not None:
                on_pass(counts)
            if not (counts.delivered or counts.retrying or counts.dead):
                stop.wait(config.poll_interval_s)
    return total
