"""Shared helpers for the alerts tests (outbox, dispatcher, receiver, CLI)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pandas as pd

from alerts.policy import AlertPolicy
from alerts.cycle import RunInfo, run_alert_cycle
from alerts.cards import CardInput, ProblemRisk, build_card
from explain.reasons import Reason

PROBLEM = "elderly-hospitalisation"
RUN = RunInfo(model_version="elderly-hospitalisation/3", pipeline_version="feat-1", run_id="run-test")
TOP_K = 5  # what the service and the population run show


@dataclass(frozen=True)
class Flagged:
    """One real customer of the test region as the scoring path sees them (tests/serving_fixture.py)."""

    subject_id: int
    time: pd.Timestamp
    probability: float
    band: str
    model_version: str
    pipeline_version: str
    reasons: tuple[Reason, ...]


@lru_cache(maxsize=1)
def flagged() -> Flagged:
    """The highest-risk elderly-hospitalisation customer of the test region (at the end of the
    data) whose top reasons go both ways and suggest a service chain, with those reasons as
    scoring/path.py makes them: what a card's reader gets. Built once per process, on first use."""
    from explain.chains import suggest_chains
    from scoring import path
    from tests.serving_fixture import make_backend, members, models, store

    champion = make_backend(models([PROBLEM])).champions[PROBLEM]
    held = store()
    time = held.resolve_time(None)
    ids = members(PROBLEM, time)
    rows = path.score_pairs(held.history, ids, [time] * len(ids), {PROBLEM: champion}).problems[PROBLEM]
    order = sorted(range(len(rows)), key=lambda r: (-float(rows.probabilities[r]), int(rows.positions[r])))[:50]
    for row, values in zip(order, path.contributions(rows, order)):
        reasons = path.reasons(rows, row, values, TOP_K)
        if {r.direction for r in reasons} == {"up", "down"} and suggest_chains(reasons):
            return Flagged(int(ids[rows.positions[row]]), time, float(rows.probabilities[row]), rows.band(row),
                           champion.version, champion.model.pipeline_version, tuple(reasons))
    raise AssertionError("the test region has no high-risk customer with reasons both ways and a chain")


def reasons() -> list[Reason]:
    """The flagged customer's top reasons (explain.reasons.Reason, from the real scoring path)."""
    return list(flagged().reasons)


def card_for(rows: pd.DataFrame, language: str = "en") -> dict:
    """run_alert_cycle's card_for: one card naming each row's problem (with the flagged
    customer's real reasons, whatever the problem: these tests are about the outbox)."""
    first = rows.iloc[0]
    return build_card(CardInput(
        subject_id=int(first["subject_id"]), as_of=first["as_of"],
        risks=[ProblemRisk(problem=r.problem, probability=float(r.probability), band=r.band,
                           model_version=RUN.model_version, reasons=reasons()) for r in rows.itertuples()],
        page_url=f"http://127.0.0.1/pages/{int(first['subject_id'])}",
    ), language=language)


def score_frame(subjects, probability=0.9, as_of="2025-03-01", municipality="Imatra", problem=PROBLEM) -> pd.DataFrame:
    subjects = list(subjects)
    return pd.DataFrame({
        "subject_id": subjects, "problem": problem, "as_of": pd.Timestamp(as_of),
        "probability": probability if isinstance(probability, list) else [probability] * len(subjects),
        "municipality": municipality if isinstance(municipality, list) else [municipality] * len(subjects),
    })


def scores_of(*rows, as_of="2025-03-01") -> pd.DataFrame:
    """Scores of several problems: rows are (subject_id, problem, probability[, municipality])."""
    return pd.DataFrame({
        "subject_id": [r[0] for r in rows], "problem": [r[1] for r in rows], "as_of": pd.Timestamp(as_of),
        "probability": [float(r[2]) for r in rows], "municipality": [r[3] if len(r) > 3 else "Imatra" for r in rows],
    })


def record(conn, subjects, *, policy=None, today=date(2025, 3, 1), **kwargs):
    policy = policy or AlertPolicy(threshold=0.2, cooldown_days=0)
    return run_alert_cycle(conn, score_frame(subjects, **kwargs), policy, RUN, card_for, today=today)


def record_many(conn, scores: pd.DataFrame, *, policy=None, today=date(2025, 3, 1)):
    """One cycle over the scores of several problems, each with `policy` (the same RunInfo)."""
    policy = policy or AlertPolicy(threshold=0.2, cooldown_days=0)
    problems = sorted(set(scores["problem"]))
    return run_alert_cycle(conn, scores, {p: policy for p in problems}, {p: RUN for p in problems}, card_for, today=today)


# --- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str, env: dict | None = None, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "from sote_risk.cli import main; main()", *args],
        env={**os.environ, **(env or {})}, **popen,
    )


def run_cli(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from sote_risk.cli import main; main()", *args],
        env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout,
    )


def wait_until(predicate, *, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    """Poll until predicate() is truthy; bounded, so a broken system fails instead of hanging."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


class Receiver:
    """A crm-receiver process on a free loopback port."""

    def __init__(self, store: Path, port: int | None = None, mode: str = "ok", secret_file: Path | None = None) -> None:
        """`secret_file`: the webhook secret the dispatcher signs with (default: the home folder's,
        from this process's SOTE_RISK_HOME)."""
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        secret = ("--secret-file", str(secret_file)) if secret_file is not None else ()
        self.process = cli("crm-receiver", "--port", str(self.port), "--store", str(store), "--mode", mode, *secret,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._up, what="the receiver to start")

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError("receiver exited")
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def mode(self, mode: str, **extra) -> None:
        httpx.post(f"{self.url}/admin/mode", json={"mode": mode, **extra}, timeout=5).raise_for_status()

    def received(self) -> list[dict]:
        return httpx.get(f"{self.url}/received", timeout=5).json()["items"]

    def stop(self) -> None:
        stop(self.process)


def load_json(text: str):
    return json.loads(text)


class HookReceiver:
    """A bare webhook on a free loopback port, in a thread of the test process: records every
    request (headers, body) and answers `status` (settable between requests). It accepts any JSON,
    where crm-receiver accepts only cards: the operator webhook's stand-in. A context manager."""

    def __init__(self, status: int = 201) -> None:
        self.status = status
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                       "body": body})
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:  # quiet: the test reads self.requests
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "HookReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def ids(self) -> list[str]:
        """The Idempotency-Key of each request, in order."""
        return [r["headers"].get("idempotency-key") for r in self.requests]
