"""Several worker processes: /reload reaches every worker (the generation file), and scoring in
two workers gives the batch path's probabilities and reasons."""

from __future__ import annotations

import dataclasses
import pickle
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from explain.reasons import explain_row, top_reasons
from serving.auth import create_key
from serving.generation import Watcher, bump_generation, generation_file, read_generation
from tests.serving_fixture import CATALOGUE, END, MODELS_FILE, make_dataset, toy_rows, write_fixture_home
from tests.serving_server import start_service


def test_a_bump_reaches_other_watchers_once_and_not_the_bumper(tmp_path):
    path = generation_file(tmp_path)
    seen_a, seen_b = [], []
    a, b = Watcher(path, seen_a.append), Watcher(path, seen_b.append)
    assert read_generation(path) == 0 and not a.check() and not b.check()
    assert a.bump() == 1
    assert not a.check() and seen_a == []  # its own reload: done by the caller, not again
    assert b.check() and seen_b == [1]
    assert not b.check()  # nothing new
    assert bump_generation(path) == 2  # e.g. another process
    assert a.check() and b.check() and seen_a == [2] and seen_b == [1, 2]
    late = Watcher(path, seen_a.append)  # a worker starting now takes the data as it is
    assert not late.check()


def worker_of(log: Path, response: httpx.Response, timeout: float = 10) -> str:
    """Which worker answered: BentoML's access log names it ([entry_service:sote_risk:N]) next
    to the span id it also returns as x-bentoml-request-id."""
    span = f"span={response.headers['x-bentoml-request-id']}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if span in line and "[entry_service:" in line:
                return line.split("[entry_service:", 1)[1].split("]", 1)[0]
        time.sleep(0.1)
    raise AssertionError(f"no access log line for {span}")


def fresh(url: str, path: str, body: dict, key: str) -> httpx.Response:
    """One request on a new connection, so the kernel may hand it to either worker."""
    return httpx.post(url + path, json=body, headers={"Authorization": f"Bearer {key}", "Connection": "close"}, timeout=30)


@pytest.mark.slow
def test_reload_reaches_every_worker_and_two_workers_keep_parity(tmp_path):
    home = tmp_path / "home"
    models = write_fixture_home(home)
    key = create_key(home / "keys.json", "admin")[0]
    service = start_service(home, workers=2)
    try:
        workers = set()
        for _ in range(40):  # none knows customer 500 yet
            response = fresh(service.url, "/score", {"customer_id": 500}, key)
            assert response.status_code == 404
            workers.add(worker_of(service.log, response))
        assert len(workers) == 2, f"only {workers} answered 40 new connections"

        # parity in whichever worker answers: probabilities and top reasons of the batch path
        events = pd.read_parquet(home / "data" / "events.parquet")
        customers = pd.read_parquet(home / "data" / "customers.parquet")
        checked, scored = 0, None
        for subject in range(1, 41):
            body = fresh(service.url, "/score", {"customer_id": subject, "top_k": 3}, key).json()
            scored = subject if body["risks"] else scored
            for risk in body["risks"]:
                model = models[risk["problem"]]
                row = toy_rows(events, customers, [subject], [END])
                assert risk["probability"] == float(model.predict_proba(row)[0])
                expected = top_reasons(explain_row(model.contributions(row).iloc[0], row.iloc[0], CATALOGUE), 3)
                assert risk["reasons"] == [r.model_dump(mode="json") for r in expected]
                checked += 1
        assert checked > 10

        events, customers = make_dataset(n_customers=500, seed=11)
        events.to_parquet(home / "data" / "events.parquet", index=False)
        customers.to_parquet(home / "data" / "customers.parquet", index=False)
        reloaded = fresh(service.url, "/reload", {}, key)
        assert reloaded.status_code == 200 and reloaded.json()["customers"] == 500
        assert read_generation(generation_file(home)) == 1
        deadline, answered = time.monotonic() + 60, {}
        while len(answered) < 2 and time.monotonic() < deadline:  # each worker, on fresh connections
            response = fresh(service.url, "/score", {"customer_id": 500}, key)
            worker = worker_of(service.log, response)
            if response.status_code == 200:
                answered[worker] = True
            time.sleep(0.05)
        assert len(answered) == 2, f"only {sorted(answered)} serve the new data after /reload"
        for _ in range(20):  # and no worker falls back to the old data
            assert fresh(service.url, "/score", {"customer_id": 500}, key).status_code == 200

        # a promotion (`sote-risk promote` bumps the same file) reaches every worker's champions
        promoted = {p: dataclasses.replace(m, metadata={**m.metadata, "model_version": "77"}) for p, m in models.items()}
        with open(home / MODELS_FILE, "wb") as handle:
            pickle.dump(promoted, handle)
        assert bump_generation(generation_file(home)) == 2
        deadline, answered = time.monotonic() + 60, {}
        while len(answered) < 2 and time.monotonic() < deadline:
            response = fresh(service.url, "/score", {"customer_id": scored}, key)
            if {r["model_version"] for r in response.json()["risks"]} == {"77"}:
                answered[worker_of(service.log, response)] = True
            time.sleep(0.05)
        assert len(answered) == 2, f"only {sorted(answered)} serve the promoted models"
    finally:
        service.stop()
