"""Several worker processes: /reload reaches every worker (the generation file), a promotion in the
registry reaches every worker's champions, a stale champion is refused by all of them, and
scoring in two workers gives the model's probabilities and reasons on the real feature rows."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from explain.reasons import top_reasons
from serving.auth import create_key
from serving.generation import Watcher, bump_generation, generation_file, read_generation
from tests.serving_fixture import members, models, outside_every_cohort, register, store
from tests.serving_server import start_service

ELDERLY = "elderly-hospitalisation"
NEW_CUSTOMER = 900_001  # not in the region: arrives with new data


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


def until_every_worker(url: str, log: Path, body: dict, key: str, serves, what: str, workers: int = 2) -> None:
    """Ask on fresh connections until each worker has answered `body` in the way `serves(response)`
    accepts (bounded: a worker that never does fails the test)."""
    deadline, answered = time.monotonic() + 60, set()
    while len(answered) < workers and time.monotonic() < deadline:
        response = fresh(url, "/score", body, key)
        if serves(response):
            answered.add(worker_of(log, response))
        time.sleep(0.05)
    assert len(answered) == workers, f"only {sorted(answered)} serve {what}"


def feature_row(subject: int, segment: str) -> pd.DataFrame:
    """The customer's real feature row at the end of the data (the feature package, not the service)."""
    from features import compute_features

    held = store()
    return compute_features(None, None, [subject], [held.resolve_time(None)], segment, history=held.history)


def add_customer(data: Path, copy_of: int, subject: int) -> int:
    """New data arrives: the dataset folder rewritten with one more customer (a copy of another's
    attributes and history under a new pseudonym); returns how many customers it now holds."""
    from data_contracts import read_dataset
    from data_contracts.io import Dataset, write_dataset

    dataset = read_dataset(data, validate=False)
    customer = dataset.customers.loc[dataset.customers["subject_id"] == copy_of].assign(subject_id=subject)
    events = dataset.events.loc[dataset.events["subject_id"] == copy_of].assign(subject_id=subject)
    assert subject > dataset.events["subject_id"].max()  # appended rows keep the events sorted by customer
    customers = pd.concat([dataset.customers, customer], ignore_index=True).astype(dataset.customers.dtypes)
    events = pd.concat([dataset.events, events], ignore_index=True).astype(dataset.events.dtypes)
    write_dataset(Dataset(events, customers, {**dataset.metadata, "customers": len(customers)}), data, overwrite=True)
    return len(customers)


@pytest.mark.slow
def test_reload_reaches_every_worker_and_two_workers_keep_parity(fixture_home):
    home = fixture_home
    fitted = models()
    key = create_key(home / "keys.json", "admin")[0]
    service = start_service(home, workers=2)
    try:
        workers = set()
        for _ in range(40):  # none knows the new customer yet
            response = fresh(service.url, "/score", {"customer_id": NEW_CUSTOMER}, key)
            assert response.status_code == 404
            workers.add(worker_of(service.log, response))
        assert len(workers) == 2, f"only {workers} answered 40 new connections"

        # parity in whichever worker answers: the problems the customer is eligible for, and each
        # one's probability and top reasons from the model on the customer's real feature row
        eligible = {p: set(members(p)) for p in fitted}
        subjects = sorted({s for p in fitted for s in members(p, limit=6)} | set(outside_every_cohort(limit=3)))
        checked = 0
        for subject in subjects:
            body = fresh(service.url, "/score", {"customer_id": subject, "top_k": 3}, key).json()
            assert {r["problem"] for r in body["risks"]} == {p for p in fitted if subject in eligible[p]}, subject
            for risk in body["risks"]:
                model = fitted[risk["problem"]]
                row = feature_row(subject, risk["problem"].split("-")[0])
                assert risk["probability"] == float(model.predict_proba(row)[0]), (subject, risk["problem"])
                contributions = model.contributions(row).iloc[0].to_numpy()
                expected = top_reasons(model.feature_names, contributions, [row[n].iloc[0] for n in model.feature_names], 3)
                assert risk["reasons"] == [r.model_dump(mode="json") for r in expected], (subject, risk["problem"])
                assert risk["model_version"] == "1"
                checked += 1
        assert checked >= 6 * len(fitted)

        # new data: /reload in one worker, the generation file takes it to the other
        member = members(ELDERLY, limit=1)[0]
        count = add_customer(home / "data", member, NEW_CUSTOMER)
        reloaded = fresh(service.url, "/reload", {}, key)
        assert reloaded.status_code == 200 and reloaded.json()["customers"] == count
        assert read_generation(generation_file(home)) == 1
        until_every_worker(service.url, service.log, {"customer_id": NEW_CUSTOMER}, key,
                           lambda r: r.status_code == 200, "the new data after /reload")
        for _ in range(20):  # and no worker falls back to the old data
            assert fresh(service.url, "/score", {"customer_id": NEW_CUSTOMER}, key).status_code == 200

        # a promotion: new versions become `champion` in the registry, and the generation file
        # (`sote-risk promote` bumps it) brings them to every worker
        promoted = register(home, models(), "champion")
        assert set(promoted.values()) == {"2"}
        assert bump_generation(generation_file(home)) == 2
        until_every_worker(service.url, service.log, {"customer_id": member}, key,
                           lambda r: {x["model_version"] for x in r.json()["risks"]} == {"2"}, "the promoted models")

        # a stale champion (trained on another feature pipeline) is refused: the reload answers 409
        # naming the problem, the other worker refuses it too, and both keep serving version 2
        stale = models([ELDERLY])
        stale[ELDERLY].pipeline_version = "stale-pipeline"
        assert register(home, stale, "champion") == {ELDERLY: "3"}
        refused = fresh(service.url, "/reload", {}, key)
        assert refused.status_code == 409 and ELDERLY in refused.json()["detail"], refused.text
        assert "stale-pipeline" in refused.json()["detail"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "still serving the previous data" not in service.log.read_text(errors="replace"):
            time.sleep(0.1)
        assert "still serving the previous data" in service.log.read_text(errors="replace")  # the other worker's refusal
        answered = set()
        for _ in range(40):
            response = fresh(service.url, "/score", {"customer_id": member}, key)
            assert response.status_code == 200
            assert {x["model_version"] for x in response.json()["risks"]} == {"2"}
            answered.add(worker_of(service.log, response))
        assert len(answered) == 2, f"only {answered} answered 40 new connections"
    finally:
        service.stop()
