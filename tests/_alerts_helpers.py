"""Shared helpers for the alerts tests (outbox, dispatcher, receiver, CLI)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
import pandas as pd

from alerts.policy import AlertPolicy
from alerts.cycle import RunInfo, run_alert_cycle
from alerts.cards import CardInput, build_card

PROBLEM = "elderly-hospitalisation"
RUN = RunInfo(model_version="elderly-hospitalisation/3", pipeline_version="feat-1", run_id="run-test")
REASONS = [
    {"text_en": "3 emergency visits in 90 days", "text_fi": "3 päivystyskäyntiä 90 päivässä",
     "direction": "up", "feature": "n_emergency_90d"},
    {"text_en": "Lives with a spouse", "text_fi": "Asuu puolison kanssa", "direction": "down", "feature": "lives_alone"},
]


def card_for(row: pd.Series) -> dict:
    return build_card(CardInput(
        subject_id=int(row["subject_id"]), problem=row["problem"], as_of=row["as_of"],
        probability=float(row["probability"]), band=row["band"], model_version=RUN.model_version,
        reasons=REASONS, page_url=f"http://127.0.0.1/pages/{row['problem']}",
    ))


def score_frame(subjects, probability=0.9, as_of="2025-03-01", municipality="Imatra", problem=PROBLEM) -> pd.DataFrame:
    subjects = list(subjects)
    return pd.DataFrame({
        "subject_id": subjects, "problem": problem, "as_of": pd.Timestamp(as_of),
        "probability": probability if isinstance(probability, list) else [probability] * len(subjects),
        "municipality": municipality,
    })


def record(conn, subjects, *, policy=None, today=date(2025, 3, 1), **kwargs):
    policy = policy or AlertPolicy(threshold=0.2, cooldown_days=0)
    return run_alert_cycle(conn, score_frame(subjects, **kwargs), policy, RUN, card_for, today=today)


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

    def __init__(self, store: Path, port: int | None = None, mode: str = "ok") -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = cli("crm-receiver", "--port", str(self.port), "--store", str(store), "--mode", mode,
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
