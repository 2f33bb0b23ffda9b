"""Delivers pending alerts from the outbox: cards (one per customer per index date) to the CRM
webhook, and operator alerts (a monitored model breached: outbox.operator_alerts) to the operator
webhook, each kind with the guarantees below; `alerts dispatch` runs both (run_pass, run_loop),
each only when its webhook is set.

Guarantee: at-least-once sending + the CRM deduplicating by `Idempotency-Key` (the card id,
which is also the card's uuid and what CRM feedback names) = exactly-once effect in the CRM.
- Each alert is leased (claimed with an expiry) before it is sent, so two dispatchers never
  send the same alert at the same time; a dispatcher killed mid-send leaves its lease, which
  expires, and the alert is sent again (the CRM answers the repeat from its dedup store).
- The lease outlives the request timeout (validated), so a live dispatcher never loses its
  lease in the middle of a request.
- Failures retry with exponential backoff and full jitter (delay ~ U(0, min(cap, base*2^(n-1)))).
  The cap is a few minutes; and once a card that had failed is delivered, every card waiting out
  a connection failure's backoff is due at once (outbox.resume_after_outage), so the queue drains
  as soon as the CRM is back rather than over the cap's random delays (a 30-minute outage drained
  in ~114 s without this: benchmarks/outage.py).
- An alert is dead only when it is older than its maximum age (`max_age_s` since it became
  due) or when the CRM refuses it for good: a 4xx other than 408/425/429 means the CRM rejects
  the body and retrying cannot help. A refused connection, a timeout or a 5xx is an outage,
  not a bad alert, so no count of attempts makes it dead (a small count killed alerts minutes
  into a short outage). Dead letters: `sote-risk alerts dead`, `alerts retry ID` or
  `alerts retry --all-dead` (operator alerts: `alerts operator --status dead`, `alerts retry
  --operator ID` or `--all-dead --operator`).
Bodies are signed (alerts/webhook_signing.py: webhook-id, webhook-timestamp, webhook-signature
headers, HMAC-SHA256 with the home folder's per-CRM secret), and the webhook must be https unless
it is on this machine (loopback): a card names a customer and their risks.
Logs carry alert ids and HTTP statuses, never payloads or the secret.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import random
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from alerts import outbox, webhook_signing
from base.errors import SoteRiskError
from base.settings import env_name, home, settings

WEBHOOK_ENV = env_name("crm_webhook_url")
OPERATOR_WEBHOOK_ENV = env_name("operator_webhook_url")
RETRYABLE_4XX = frozenset({408, 425, 429})

log = logging.getLogger(__name__)


class DispatchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook_url: str
    secret: SecretStr  # the per-CRM signing secret (`whsec_...`); never in a repr or log
    base_delay_s: float = Field(2.0, gt=0)
    cap_delay_s: float = Field(120.0, gt=0)  # the longest wait after the CRM returns
    max_age_s: float = Field(24 * 3600.0, gt=0)
    lease_s: float = Field(60.0, gt=0)
    request_timeout_s: float = Field(10.0, gt=0)
    poll_interval_s: float = Field(2.0, gt=0)
    max_per_pass: int = Field(1000, ge=1)  # bounds one run-once pass

    @model_validator(mode="after")
    def _consistent(self) -> "DispatchConfig":
        problem = webhook_url_problem(self.webhook_url)
        if problem:
            raise ValueError(problem)
        webhook_signing.secret_key(self.secret.get_secret_value())  # ValueError naming the format
        if self.lease_s <= self.request_timeout_s:
            raise ValueError("lease_s must exceed request_timeout_s, or a slow request could be sent twice at once")
        if self.cap_delay_s < self.base_delay_s:
            raise ValueError("cap_delay_s must be at least base_delay_s")
        return self


def webhook_url_problem(url: str) -> str | None:
    """Why `url` may not receive cards (one line naming the setting), or None. Plain http only to
    loopback, where nothing crosses a network; anywhere else a card (a customer's risks) and its
    signature would travel readable."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and _is_loopback(parts.hostname or ""):
        return None
    return (f"the CRM webhook ({WEBHOOK_ENV} or --webhook) must be an https URL; plain http only to loopback "
            f"(127.0.0.1, ::1, localhost); got {url!r}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def config_from_env(**overrides: object) -> DispatchConfig:
    """DispatchConfig with the webhook from SOTE_RISK_CRM_WEBHOOK_URL (unless given) and the
    signing secret from the home folder's crm_webhook_secret (made on first use)."""
    values = {k: v for k, v in overrides.items() if v is not None}
    values.setdefault("webhook_url", settings().crm_webhook_url)
    if not values["webhook_url"]:
        raise SoteRiskError(f"no CRM webhook: set {WEBHOOK_ENV} (e.g. http://127.0.0.1:8900/alerts)")
    problem = webhook_url_problem(str(values["webhook_url"]))
    if problem:
        raise SoteRiskError(problem)
    values.setdefault("secret", webhook_signing.load_secret(home().crm_webhook_secret))
    try:
        return DispatchConfig(**values)
    except ValidationError as error:  # the messages only: pydantic's own text repeats the input, secret included
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}"
                             for e in error.errors(include_url=False, include_input=False, include_context=False))
        raise SoteRiskError(f"dispatch config: {problems}".replace("\n", " ")) from None


def operator_config_from_env(**overrides: object) -> DispatchConfig | None:
    """The operator webhook's DispatchConfig (SOTE_RISK_OPERATOR_WEBHOOK_URL, the same rules as the
    CRM's: https, or http to loopback; bodies signed with the home's webhook secret), or None when
    it is not set (operator alerts then wait in the outbox)."""
    url = overrides.pop("webhook_url", None) or settings().operator_webhook_url
    if not url:
        return None
    problem = webhook_url_problem(str(url))
    if problem:
        raise SoteRiskError(problem.replace(f"the CRM webhook ({WEBHOOK_ENV} or --webhook)",
                                            f"the operator webhook ({OPERATOR_WEBHOOK_ENV})"))
    return config_from_env(webhook_url=url, **overrides)


def deliver_operator_alerts(conn: sqlite3.Connection, config: DispatchConfig, *, client: httpx.Client | None = None,
                            owner: str | None = None, clock: Callable[[], float] = time.time,
                            rng: random.Random | None = None, stop: Stop | None = None) -> DispatchCounts:
    """Deliver the due operator alerts (outbox.operator_alerts) as run_once delivers cards: leased,
    Idempotency-Key = the alert id, signed, retried with backoff on an outage, dead when refused for
    good (a 4xx but 408/425/429) or older than max_age_s. No capacity budget: there are few, and an
    operator wants every one."""
    owner = owner or _new_owner()
    rng = rng or random.Random()
    counts = DispatchCounts()
    own_client = client is None
    client = client or httpx.Client(timeout=config.request_timeout_s)
    table = "operator_alerts"
    try:
        for _ in range(config.max_per_pass):
            if stop is not None and stop.is_set():
                break
            claimed = outbox.claim_next(conn, owner=owner, now=clock(), lease_seconds=config.lease_s, table=table)
            if claimed is None:
                break
            outcome = _send(client, config, claimed)
            if outcome.ok:
                outbox.mark_delivered(conn, claimed.alert_id, table=table)
                counts.delivered += 1
                log.info("operator alert %s delivered (attempt %d)", claimed.alert_id, claimed.attempts)
                if claimed.attempts > 1:  # the operator webhook is back: so are the others waiting out its outage
                    resumed = outbox.resume_after_outage(conn, now=clock(), table=table)
                    if resumed:
                        log.info("the operator webhook answers again: %d waiting operator alert(s) due now", resumed)
                continue
            now = clock()
            delay = retry_delay(outcome, claimed, config, rng, now)
            if delay is None:
                outbox.mark_failed(conn, claimed.alert_id, owner=owner, error=outcome.error, next_attempt_at=None, table=table)
                counts.dead += 1
                log.warning("operator alert %s dead after %d attempt(s): %s", claimed.alert_id, claimed.attempts, outcome.error)
                continue
            outbox.mark_failed(conn, claimed.alert_id, owner=owner, error=outcome.error, next_attempt_at=now + delay,
                               table=table)
            counts.retrying += 1
            log.info("operator alert %s attempt %d failed (%s); retry in %.2fs", claimed.alert_id, claimed.attempts,
                     outcome.error, delay)
    finally:
        if own_client:
            client.close()
    return counts


def retry_delay(outcome: "_Outcome", claimed: outbox.ClaimedAlert, config: DispatchConfig, rng: random.Random,
                now: float) -> float | None:
    """Seconds until a failed delivery is tried again, or None when it is dead: refused for good
    (not retryable) or older than max_age_s. Backoff with jitter, never sooner than the receiver's
    Retry-After (capped). Cards and operator alerts follow the same rule."""
    if not outcome.retryable or now - claimed.due_since >= config.max_age_s:
        return None
    delay = backoff_delay(claimed.attempts, config.base_delay_s, config.cap_delay_s, rng)
    if outcome.retry_after is not None:
        delay = max(delay, min(outcome.retry_after, config.cap_delay_s))
    return delay


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter (AWS architecture blog, 'Exponential Backoff and Jitter'): spreads retries.
    The exponent stops at 60 (far past any cap): attempts are unbounded during an outage, and
    2 ** 1024 does not fit a float."""
    return rng.uniform(0.0, min(cap, base * 2 ** min(attempt - 1, 60)))


POLL_SLICE_S = 0.1  # how often an idle wait looks at the stop flag: bounds how long a stop takes


class StopFlag:
    """Set by a signal handler, polled by the loop.

    Setting it is one attribute write and takes no lock. A handler that calls
    threading.Event.set takes the Event's Condition lock; a second signal landing while the first
    handler holds it runs the handler again on the same thread, which waits for that lock
    forever (`timeout` sends two signals; so does Ctrl-C pressed twice).
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
    body = json.dumps(claimed.payload, sort_keys=True).encode()
    key = webhook_signing.secret_key(config.secret.get_secret_value())
    # Signed at send time with the wall clock: the receiver compares the timestamp with its own.
    signed = webhook_signing.signed_headers(key, claimed.alert_id, int(time.time()), body)
    try:
        response = client.post(
            config.webhook_url,
            content=body,
            headers={"Idempotency-Key": claimed.alert_id, "Content-Type": "application/json", **signed},
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
    """Deliver the cards due now (after releasing waiting cards today's budget allows)."""
    owner = owner or _new_owner()
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
                if claimed.attempts > 1:  # it had failed: the CRM is back, so are the others waiting out the outage
                    resumed = outbox.resume_after_outage(conn, now=clock())
                    if resumed:
                        log.info("the CRM answers again: %d waiting alert(s) due now", resumed)
                continue
            now = clock()
            delay = retry_delay(outcome, claimed, config, rng, now)
            if delay is None:
                outbox.mark_failed(conn, claimed.alert_id, owner=owner, error=outcome.error, next_attempt_at=None)
                counts.dead += 1
                log.warning("alert %s dead after %d attempt(s): %s", claimed.alert_id, claimed.attempts, outcome.error)
                continue
            outbox.mark_failed(conn, claimed.alert_id, owner=owner, error=outcome.error, next_attempt_at=now + delay)
            counts.retrying += 1
            log.info("alert %s attempt %d failed (%s); retry in %.2fs", claimed.alert_id, claimed.attempts, outcome.error, delay)
    finally:
        if own_client:
            client.close()
    return counts


def _new_owner() -> str:
    """A lease owner's name: this host and process, and a random part for each dispatcher in it."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Webhooks:
    """Where a dispatcher delivers: cards to the CRM, operator alerts to the operators. None: that
    kind is not sent and waits in the outbox. The two share the delivery settings (backoff, maximum
    age, lease, timeout, poll interval), never the URL."""

    cards: DispatchConfig | None
    operator: DispatchConfig | None

    def __post_init__(self) -> None:
        if self.cards is None and self.operator is None:
            raise SoteRiskError(f"no webhook to deliver to: set {WEBHOOK_ENV} (or --webhook) for cards, "
                                f"{OPERATOR_WEBHOOK_ENV} for operator alerts")

    @property
    def shared(self) -> DispatchConfig:
        """The delivery settings both kinds share (those of the first one set)."""
        return self.cards if self.cards is not None else self.operator  # type: ignore[return-value] (one is set)

    def not_sent(self) -> dict[str, str]:
        """For each kind ('cards', 'operator') this dispatcher does not send: one line saying why
        and where it waits."""
        unset = {"cards": (self.cards, WEBHOOK_ENV, "cards"),
                 "operator": (self.operator, OPERATOR_WEBHOOK_ENV, "operator alerts")}
        return {kind: f"{env} is not set: {what} wait in the outbox"
                for kind, (config, env, what) in unset.items() if config is None}


def webhooks_from_env(crm_webhook: str | None = None, **overrides: object) -> Webhooks:
    """The webhooks of `alerts dispatch`: the CRM's from `crm_webhook` or SOTE_RISK_CRM_WEBHOOK_URL,
    the operators' from SOTE_RISK_OPERATOR_WEBHOOK_URL (`crm_webhook` never redirects operator
    alerts), each with `overrides`; a bad URL or setting is one error, and so is neither set."""
    cards = config_from_env(webhook_url=crm_webhook, **overrides) if crm_webhook or settings().crm_webhook_url else None
    return Webhooks(cards=cards, operator=operator_config_from_env(**overrides))


@dataclass
class PassCounts:
    """What one or more passes did, cards and operator alerts apart."""

    cards: DispatchCounts = field(default_factory=DispatchCounts)
    operator: DispatchCounts = field(default_factory=DispatchCounts)

    def add(self, other: "PassCounts") -> None:
        for mine, theirs in ((self.cards, other.cards), (self.operator, other.operator)):
            for key, value in theirs.as_dict().items():
                setattr(mine, key, getattr(mine, key) + value)

    def did_something(self) -> bool:
        return any(c.delivered or c.retrying or c.dead for c in (self.cards, self.operator))


def run_pass(conn: sqlite3.Connection, webhooks: Webhooks, *, client: httpx.Client | None = None,
             owner: str | None = None, rng: random.Random | None = None, stop: Stop | None = None) -> PassCounts:
    """One pass: the due cards to the CRM, then the due operator alerts to the operators (each
    kind only when its webhook is set)."""
    owner = owner or _new_owner()
    counts = PassCounts()
    own_client = client is None
    client = client or httpx.Client(timeout=webhooks.shared.request_timeout_s)
    try:
        if webhooks.cards is not None:
            counts.cards = run_once(conn, webhooks.cards, client=client, owner=owner, rng=rng, stop=stop)
        if webhooks.operator is not None:
            counts.operator = deliver_operator_alerts(conn, webhooks.operator, client=client, owner=owner, rng=rng,
                                                      stop=stop)
    finally:
        if own_client:
            client.close()
    return counts


def run_loop(
    conn: sqlite3.Connection,
    webhooks: Webhooks,
    *,
    stop: Stop,
    on_pass: Callable[[PassCounts], None] | None = None,
) -> PassCounts:
    """Deliver until `stop` is set; sleeps poll_interval_s when a pass found nothing to do. Says
    once, at the start, which kind it does not send."""
    for line in webhooks.not_sent().values():
        log.info("%s", line)
    owner = _new_owner()
    total = PassCounts()
    rng = random.Random()
    with httpx.Client(timeout=webhooks.shared.request_timeout_s) as client:
        while not stop.is_set():
            counts = run_pass(conn, webhooks, client=client, owner=owner, rng=rng, stop=stop)
            total.add(counts)
            if on_pass is not None:
                on_pass(counts)
            if not counts.did_something():
                stop.wait(webhooks.shared.poll_interval_s)
    return total


def dispatch_summary(counts: PassCounts, webhooks: Webhooks, waiting: dict[str, int]) -> dict[str, object]:
    """The JSON `alerts dispatch` prints: the cards' counts at the top (as before operator alerts
    were delivered too: scripts read them there) and the operator alerts' in `operator`. A kind
    whose webhook is not set says so (`skipped`) with how many of it wait (`waiting`: pending in
    the outbox); `waiting` maps 'cards' and 'operator' to those numbers."""
    parts: dict[str, dict[str, object]] = {
        "cards": dict(counts.cards.as_dict()),
        "operator": {k: v for k, v in counts.operator.as_dict().items() if k != "released"},  # no capacity queue
    }
    for kind, line in webhooks.not_sent().items():
        parts[kind] |= {"skipped": line, "waiting": waiting[kind]}
    return parts["cards"] | {"operator": parts["operator"]}
