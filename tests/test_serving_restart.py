"""A killed worker is replaced quickly (issue 16, item 14): the arbiter notices within a second
(serving/launcher.py), and the replacement maps the held histories from the home's cache
(scoring/history_cache.py) and loads the champions from the registry's folders as last recorded
(scoring/champion_record.py) instead of reading the dataset and asking MLflow again.

Neither cache may change an answer: what comes through them equals what comes without them, to
the array and to the score, and a changed dataset or registry is never served from them."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import time
from dataclasses import fields
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from features import History, pipeline_version
from scoring.backend import Backend
from scoring.champions import load_champions, served_problems
from scoring.history import HistoryStore, load_history
from scoring.history_cache import PREFIX
from scoring.scorer import Scorer
from tests.serving_fixture import models, register, region

ELDERLY = "elderly-hospitalisation"


def assert_same_store(cached: HistoryStore, read: HistoryStore) -> None:
    for name in (f.name for f in fields(History)):
        a, b = getattr(cached.history, name), getattr(read.history, name)
        if isinstance(b, np.ndarray):
            assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), name
        else:
            assert a == b, name
    pd.testing.assert_frame_equal(cached.customers, read.customers)
    assert (cached.start, cached.end, cached.events) == (read.start, read.end, read.events)


def scores(store: HistoryStore, subjects: list[int]) -> list:
    """Every problem's probability, band and top reasons for these customers, through the service's scorer."""
    held = store
    scorer = Scorer(Backend(champions_of(models()), lambda: held), cache_size=0)
    return scorer.score_customers(subjects, None, 3)[1]


def champions_of(chosen):  # noqa: ANN001, ANN201
    from scoring.champions import Gate, champion_from_model

    return {p: champion_from_model(p, m, gate=Gate("passed")) for p, m in chosen.items()}


@pytest.fixture()
def dataset(tmp_path) -> Path:
    """The serving region's dataset folder, as `sote-risk simulate` writes it."""
    from synthetic.io import write_simulated

    return write_simulated(region(), tmp_path / "data")


def cache_folders(cache: Path) -> list[Path]:
    return sorted(cache.glob(f"{PREFIX}*"))


def test_cached_histories_equal_the_dataset_and_score_the_same(dataset, tmp_path):
    cache = tmp_path / "cache"
    read = load_history(dataset)  # no cache: as before
    written = load_history(dataset, cache)  # the first load writes the cache and maps it
    (folder,) = cache_folders(cache)
    mapped = load_history(dataset, cache)  # a later worker maps it
    for store in (written, mapped):
        assert_same_store(store, read)
        time_ = store.history.time
        assert not time_.flags.writeable and isinstance(time_.base, np.memmap)  # mapped read-only, not copied
    subjects = [int(s) for s in read.ids()[::10]]
    assert scores(mapped, subjects) == scores(read, subjects)
    assert cache_folders(cache) == [folder]


def test_a_changed_dataset_is_never_served_from_the_cache(dataset, tmp_path):
    from data_contracts import read_dataset
    from data_contracts.io import Dataset, write_dataset

    cache = tmp_path / "cache"
    load_history(dataset, cache)
    (old,) = cache_folders(cache)

    # new data: the folder rewritten with one customer more (the generation file brings it to /reload)
    data = read_dataset(dataset, validate=False)
    copy_of = int(data.customers["subject_id"].iloc[0])
    new_id = int(data.customers["subject_id"].max()) + 1
    customers = pd.concat([data.customers, data.customers.iloc[[0]].assign(subject_id=new_id)], ignore_index=True)
    events = pd.concat([data.events, data.events.loc[data.events["subject_id"] == copy_of].assign(subject_id=new_id)],
                       ignore_index=True)
    write_dataset(Dataset(events.astype(data.events.dtypes), customers.astype(data.customers.dtypes),
                          {**data.metadata, "customers": len(customers)}), dataset, overwrite=True)
    reloaded = load_history(dataset, cache)
    assert reloaded.knows(new_id)
    assert_same_store(reloaded, load_history(dataset))
    (new,) = cache_folders(cache)
    assert new != old  # the old dataset's arrays are gone

    # events.parquet overwritten in place (same path and inode) with other events, its mtime set
    # back as `cp -p` or rsync would: the file's identity still changes (size, ctime)
    events_file = dataset / "events.parquet"
    before = events_file.stat()
    fewer = events.loc[events["subject_id"] != new_id].astype(data.events.dtypes)
    scratch = tmp_path / "scratch"
    write_dataset(Dataset(fewer, customers.astype(data.customers.dtypes), {**data.metadata, "customers": len(customers)}), scratch)
    shutil.copyfile(scratch / "events.parquet", events_file)
    os.utime(events_file, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert events_file.stat().st_ino == before.st_ino and events_file.stat().st_mtime_ns == before.st_mtime_ns
    rewritten = load_history(dataset, cache)
    assert rewritten.events == len(fewer) and rewritten.history.customer_index([new_id]).size == 1
    assert_same_store(rewritten, load_history(dataset))


def test_a_damaged_cache_is_a_miss_and_is_written_again(dataset, tmp_path):
    cache = tmp_path / "cache"
    read = load_history(dataset)
    load_history(dataset, cache)
    (folder,) = cache_folders(cache)
    cut = folder / "time.npy"
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])  # a truncated array
    assert_same_store(load_history(dataset, cache), read)
    assert_same_store(load_history(dataset, cache), read)  # and it was written whole again
    (folder / "meta.json").write_text("{")
    assert_same_store(load_history(dataset, cache), read)


def test_the_cache_is_its_owners_alone_whatever_the_umask(dataset, tmp_path):
    cache = tmp_path / "cache"
    previous = os.umask(0o022)
    try:
        load_history(dataset, cache)
    finally:
        os.umask(previous)
    (folder,) = cache_folders(cache)
    for path in [cache, folder, *folder.iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


# --- the champion record --------------------------------------------------------------------


@pytest.fixture()
def home(fixture_home, monkeypatch) -> Path:
    for name in [n for n in os.environ if n.startswith("SOTE_RISK_")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("SOTE_RISK_HOME", str(fixture_home))
    return fixture_home


def no_mlflow(monkeypatch) -> None:
    """From here on, asking the registry fails the test."""
    import models.registry

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the registry was asked")

    for name in ("load_model", "resolve_version", "local_folder", "configure_tracking"):
        monkeypatch.setattr(models.registry, name, refuse)


def test_recorded_champions_load_without_mlflow_and_score_the_same(home, monkeypatch):
    from tests.serving_fixture import store

    problems, cache = served_problems(None), home / "cache"
    asked = load_champions(problems, pipeline_version(), cache=cache)  # through MLflow; records them
    assert (cache / "champions.json").is_file()
    no_mlflow(monkeypatch)
    recorded = load_champions(problems, pipeline_version(), cache=cache)
    assert list(recorded) == list(asked)
    for problem, champion in recorded.items():
        other = asked[problem]
        assert (champion.version, champion.gate, champion.bands, dict(champion.tags)) == \
               (other.version, other.gate, other.bands, dict(other.tags))
        assert champion.model.metadata == other.model.metadata and champion.model.spec == other.model.spec
        assert champion.model.booster.model_to_string() == other.model.booster.model_to_string()
    held = store()
    subjects = [int(s) for s in held.ids()[::10]]
    through = [Scorer(Backend(c, lambda: held), cache_size=0).score_customers(subjects, None, 3)[1] for c in (recorded, asked)]
    assert through[0] == through[1]
    assert stat.S_IMODE((cache / "champions.json").stat().st_mode) & 0o077 == 0


def test_a_registry_change_is_never_served_from_the_record(home, monkeypatch):
    problems, cache = served_problems(None), home / "cache"
    load_champions(problems, pipeline_version(), cache=cache)
    assert register(home, models([ELDERLY]), "champion") == {ELDERLY: "2"}  # a promotion
    assert load_champions(problems, pipeline_version(), cache=cache)[ELDERLY].version == "2"
    no_mlflow(monkeypatch)  # recorded again: the next worker loads version 2 without MLflow
    assert load_champions(problems, pipeline_version(), cache=cache)[ELDERLY].version == "2"


def test_the_record_is_only_for_its_problems_and_the_homes_own_registry(home, monkeypatch):
    problems, cache = served_problems(None), home / "cache"
    load_champions(problems, pipeline_version(), cache=cache)
    import models.registry

    calls = []
    real = models.registry.load_model
    monkeypatch.setattr(models.registry, "load_model", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert list(load_champions([ELDERLY], pipeline_version(), cache=cache)) == [ELDERLY]
    assert calls  # another set of problems: asked the registry
    calls.clear()
    elsewhere = home.parent / "elsewhere.db"  # the same registry behind another store: never recorded
    shutil.copyfile(home / "mlflow.db", elsewhere)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{elsewhere}")
    assert list(load_champions(problems, pipeline_version(), cache=cache)) == problems
    assert list(load_champions(problems, pipeline_version(), cache=cache)) == problems
    assert len(calls) == 2 * len(problems)


# --- the arbiter, and a real kill -9 ---------------------------------------------------------


def test_the_arbiter_checks_its_workers_every_second(monkeypatch):
    from bentoml._internal.utils import circus

    from serving.launcher import RESPAWN_CHECK_SECONDS, respawn_promptly

    monkeypatch.setattr(circus, "create_standalone_arbiter", circus.create_standalone_arbiter)  # undone after the test
    respawn_promptly()
    respawn_promptly()  # idempotent: wrapped once
    arbiter = circus.create_standalone_arbiter([])
    assert arbiter.check_delay == RESPAWN_CHECK_SECONDS == 1.0


@pytest.mark.slow
def test_a_killed_worker_is_replaced_within_a_second_and_starts_from_the_caches(fixture_home):
    from tests.serving_server import start_service, wait_accepting, worker_pids

    service = start_service(fixture_home, timeout=180, workers=2)
    try:
        workers = worker_pids(service.process.pid)
        assert len(workers) == 2 and wait_accepting(workers, 180) is not None
        os.kill(min(workers), signal.SIGKILL)
        started = time.monotonic()
        while not worker_pids(service.process.pid) - workers and time.monotonic() - started < 10:
            time.sleep(0.02)
        spawned = time.monotonic() - started
        assert spawned < 2.5, f"the replacement started {spawned:.1f} s after the kill"  # BentoML's own arbiter: 0-10 s
        (replacement,) = worker_pids(service.process.pid) - workers
        for _ in range(50):  # the other worker answers meanwhile
            assert httpx.get(f"{service.url}/readyz", headers={"Connection": "close"}, timeout=10).status_code == 200
        assert wait_accepting({replacement}, 180) is not None
    finally:
        service.stop()
    # the log is whole once the server has stopped: the replacement (the third worker to start)
    # mapped the histories the first two cached and loaded the champions `serve` recorded
    lines = service.log.read_text(errors="replace").splitlines()
    assert any(f"worker {replacement} ready" in line for line in lines)
    histories = [line for line in lines if "histories read from" in line or "mapped from the cache" in line]
    champions = [line for line in lines if "champions loaded" in line]  # `serve` recorded them before the workers started
    assert len(histories) == len(champions) == 3
    assert "mapped from the cache" in histories[-1] and all("from their folders as recorded" in line for line in champions)
