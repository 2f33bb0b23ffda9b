"""A stand-in for the CRM's alert webhook, for tests and the demo (not a production CRM).

    POST /alerts        store a card; needs a valid signature (alerts/webhook_signing.py: 401
                        when missing, wrong, or its timestamp is more than 5 minutes from now)
                        and `Idempotency-Key` equal to the signed `webhook-id`; a repeated id
                        answers 200 with the original receipt and stores nothing new (it counts
                        `deliveries`), so a replay inside the 5 minutes has no effect either
    GET  /received      what was stored (JSON)
    GET  /health        {"status": "ok", "mode": ...}
    POST /admin/mode    {"mode": "ok" | "fail500" | "down" | "delay", "delay_s": 2,
                         "fail_count": 3}: fail500 answers 500, down answers 503 (a refused
                         connection is tested by pointing the dispatcher at a closed port),
                         delay stores the card and then waits delay_s before answering, so a
                         test can kill the sender between "stored" and "acknowledged";
                         fail_count: fail only the next N requests, then back to ok.

The initial mode can come from SOTE_RISK_CRM_MODE. The secret is the home folder's
crm_webhook_secret unless given (`crm-receiver --secret-file`): the one the dispatcher signs with.
Bodies are stored, never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from alerts import webhook_signing
from alerts.outbox import utc_iso
from base.settings import home, settings

MODES = ("ok", "fail500", "down", "delay")
INDICATORS = ("info", "warning", "critical")
MAX_KEY_LENGTH = 200


def default_store() -> Path:
    return home().root / "crm_receiver.db"


class ReceiverStore:
    """Received cards, unique by Idempotency-Key."""

    def __init__(self, path: Path | str) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS received (idempotency_key TEXT PRIMARY KEY, receipt_id TEXT NOT NULL,"
            " received_at TEXT NOT NULL, deliveries INTEGER NOT NULL, body TEXT NOT NULL)"
        )

    def store(self, key: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """(receipt, is_new). A repeated key keeps the first body and counts the delivery."""
        inserted = self._conn.execute(
            "INSERT INTO received VALUES (?,?,?,1,?) ON CONFLICT DO NOTHING",
            (key, str(uuid.uuid4()), utc_iso(), json.dumps(body, sort_keys=True)),
        ).rowcount
        if not inserted:
            self._conn.execute("UPDATE received SET deliveries = deliveries + 1 WHERE idempotency_key=?", (key,))
        row = self._conn.execute(
            "SELECT idempotency_key, receipt_id, received_at FROM received WHERE idempotency_key=?", (key,)
        ).fetchone()
        return dict(row), bool(inserted)

    def items(self) -> list[dict[str, Any]]:
        rows = self._conn.execute("SELECT * FROM received ORDER BY received_at, idempotency_key").fetchall()
        return [dict(r) | {"body": json.loads(r["body"])} for r in rows]

    def close(self) -> None:
        self._conn.close()


@dataclass
class Mode:
    mode: str = "ok"
    delay_s: float = 0.0
    fail_count: int | None = None  # None: stay in this mode until told otherwise

    def failing_status(self) -> int | None:
        """The error status to answer now, if the mode says fail (counts down fail_count)."""
        if self.mode not in ("fail500", "down"):
            return None
        status = 500 if self.mode == "fail500" else 503
        if self.fail_count is not None:
            self.fail_count -= 1
            if self.fail_count <= 0:
                self.mode, self.fail_count = "ok", None
        return status


def _card_problem(body: Any) -> str | None:
    """Why this body is not a card we accept, or None when it is."""
    if not isinstance(body, dict):
        return "body must be a JSON object (a CDS Hooks card)"
    for name in ("uuid", "summary", "indicator", "source"):
        if name not in body:
            return f"card: missing field {name!r}"
    if not isinstance(body["summary"], str) or len(body["summary"]) >= 140:
        return "card: summary must be a string shorter than 140 characters"
    if body["indicator"] not in INDICATORS:
        return f"card: indicator must be one of {', '.join(INDICATORS)}"
    if not isinstance(body["source"], dict) or "label" not in body["source"]:
        return "card: source must be an object with a label"
    return None


def create_app(store_path: Path | str | None = None, *, mode: str | None = None, secret: str | None = None) -> Starlette:
    key = webhook_signing.secret_key(secret or webhook_signing.load_secret(home().crm_webhook_secret))
    store = ReceiverStore(store_path or default_store())
    state = Mode(mode=mode or settings().crm_mode or "ok")
    if state.mode not in MODES:
        raise ValueError(f"unknown receiver mode {state.mode!r}; expected one of {', '.join(MODES)}")

    async def receive(request: Request) -> JSONResponse:
        failing = state.failing_status()
        if failing is not None:
            return JSONResponse({"error": f"receiver in mode {state.mode if failing == 500 else 'down'}"}, failing)
        raw = await request.body()
        try:
            msg_id = webhook_signing.verify(key, request.headers, raw, now=time.time())
        except webhook_signing.SignatureError as error:
            return JSONResponse({"error": f"signature: {error}"}, 401)
        idempotency = request.headers.get("idempotency-key", "").strip()
        if not idempotency or len(idempotency) > MAX_KEY_LENGTH or idempotency != msg_id:
            # the signed id is the key: an unsigned header naming another key must not store a copy
            return JSONResponse({"error": "missing or invalid Idempotency-Key header (must equal webhook-id)"}, 400)
        try:
            body = json.loads(raw)
        except ValueError:
            return JSONResponse({"error": "body is not valid JSON"}, 400)
        problem = _card_problem(body)
        if problem:
            return JSONResponse({"error": problem}, 400)
        receipt, is_new = store.store(msg_id, body)
        if state.mode == "delay" and state.delay_s > 0:
            await asyncio.sleep(state.delay_s)  # stored, not yet acknowledged
        return JSONResponse(receipt | {"duplicate": not is_new}, 201 if is_new else 200)

    async def received(_: Request) -> JSONResponse:
        items = store.items()
        return JSONResponse({"count": len(items), "items": items})

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "mode": state.mode})

    async def set_mode(request: Request) -> JSONResponse:
        try:
            body = json.loads(await request.body())
            new_mode = body["mode"]
            if new_mode not in MODES:
                raise ValueError
            delay_s = float(body.get("delay_s", 0.0))
            fail_count = body.get("fail_count")
            fail_count = None if fail_count is None else int(fail_count)
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": f"expected {{'mode': one of {', '.join(MODES)}, 'delay_s'?, 'fail_count'?}}"}, 400)
        state.mode, state.delay_s, state.fail_count = new_mode, delay_s, fail_count
        return JSONResponse({"mode": state.mode, "delay_s": state.delay_s, "fail_count": state.fail_count})

    return Starlette(
        routes=[
            Route("/alerts", receive, methods=["POST"]),
            Route("/received", received, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/admin/mode", set_mode, methods=["POST"]),
        ],
        lifespan=_closing(store),
    )


def _closing(store: ReceiverStore):  # noqa: ANN202 (starlette lifespan factory)
    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette):  # noqa: ANN202
        yield
        store.close()

    return lifespan


def serve(*, host: str, port: int, store_path: Path | str | None = None, mode: str | None = None,
          secret_file: Path | None = None) -> None:
    """Run the receiver in the foreground (uvicorn; access log off so nothing about customers is logged)."""
    import uvicorn

    secret = webhook_signing.load_secret(secret_file) if secret_file is not None else None
    uvicorn.run(create_app(store_path, mode=mode, secret=secret), host=host, port=port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=1)  # held (delay mode) requests must not block a stop
