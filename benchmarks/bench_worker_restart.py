"""How fast a worker killed with SIGKILL is replaced (issue 16, item 14), and where the time goes.

    .venv/bin/python benchmarks/bench_worker_restart.py                  # the tests' fixture home, 2 workers
    .venv/bin/python benchmarks/bench_worker_restart.py --home PATH      # a home with a region's data and champions
    .venv/bin/python benchmarks/bench_worker_restart.py --home PATH --repo OTHER_CHECKOUT   # e.g. the base commit

1. The breakdown, in fresh interpreters that do what a new worker does (twice: the first may
   write what later starts read): interpreter start, BentoML's worker imports, the service
   module's imports, then `RiskService.__init__` with its parts timed (champions, histories, GC
   freeze: the first call of each of scoring.backend's loaders the checkout has).
2. `sote-risk serve --workers N` from --repo, with --load client threads scoring customers on
   fresh connections (so the kernel hands connections to every worker), and --repeats times:
   SIGKILL one worker, then time until the arbiter has started its replacement (a new worker
   pid) and until the replacement serves the socket (tests/serving_server.accepting: read from
   /proc, no probing traffic). Requests that failed meanwhile were in flight on the killed worker.
Prints one JSON object. The service's log is <home>/serve-<port>.log; a worker that logs its own
start-up breakdown ("worker <pid> ready ...", and which caches it used) has those lines copied
into the result. Bytecode matters: run it once as is and once with PYTHONPYCACHEPREFIX pointing
at a tree that `python -m compileall` filled (what a venv built by bin/bootstrap has in place).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.serving_server import (  # noqa: E402  (shared with the tests)
    ServiceProcess, accepting, service_env, start_service, wait_accepting, worker_pids,
)

# Run in a fresh interpreter in --repo: what a worker does before it accepts a connection.
BREAKDOWN = r"""
import json, sys, time
launched = float(sys.argv[1])
marks, parts = {"interpreter start": time.time() - launched}, {}
t = time.perf_counter()
import uvicorn, _bentoml_impl.worker.service, _bentoml_impl.loader  # the worker's own imports
marks["bentoml worker imports"] = time.perf_counter() - t; t = time.perf_counter()
import serving.service as service
marks["service module imports"] = time.perf_counter() - t
from scoring import backend

def timed(name, function):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            parts.setdefault(name, time.perf_counter() - started)  # the first call: start-up, not a reload
    return wrapper

for name in ("load_champions", "load_history"):
    if hasattr(backend, name):
        setattr(backend, name, timed(name, getattr(backend, name)))
service._freeze_loaded = timed("gc freeze", service._freeze_loaded)
t = time.perf_counter()
instance = service.RiskService.inner()
marks["RiskService.__init__"] = time.perf_counter() - t
instance.watcher.stop()
marks["total since launch"] = time.time() - launched
print(json.dumps({"marks": marks, "init_parts": parts}))
"""


def breakdown(repo: Path, home: Path) -> dict:
    env = service_env(home, repo)
    launched = time.time()
    done = subprocess.run([sys.executable, "-c", BREAKDOWN, str(launched)], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"breakdown failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {k: {name: round(v, 2) for name, v in part.items()} for k, part in result.items()}


class Load:
    """Client threads, each scoring one customer after another on a fresh connection."""

    def __init__(self, url: str, key: str, subjects: list[int], threads: int) -> None:
        self.url, self.key, self.subjects, self.threads = url, key, subjects, threads
        self.ok = self.failed = 0
        self.errors: dict[str, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def start(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def counts(self) -> tuple[int, int]:
        with self._lock:
            return self.ok, self.failed

    def _run(self, index: int) -> None:
        i = index
        headers = {"Authorization": f"Bearer {self.key}", "Connection": "close"}
        while not self._stop.is_set():
            subject = self.subjects[i % len(self.subjects)]
            i += self.threads
            try:
                response = httpx.post(f"{self.url}/score", json={"customer_id": subject}, headers=headers, timeout=60)
                good, kind = response.status_code == 200, f"HTTP {response.status_code}"
            except httpx.HTTPError as error:
                good, kind = False, type(error).__name__
            with self._lock:
                if good:
                    self.ok += 1
                else:
                    self.failed += 1
                    self.errors[kind] = self.errors.get(kind, 0) + 1


def kill_one(service: ServiceProcess, load: Load | None, timeout: float) -> dict:
    workers = worker_pids(service.process.pid)
    victim = min(workers)
    before = load.counts() if load else (0, 0)
    started = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    spawned = ready = replacement = None
    while time.monotonic() - started < timeout:
        if replacement is None:
            new = worker_pids(service.process.pid) - workers
            if new:
                replacement, spawned = min(new), time.monotonic() - started
        elif accepting(replacement):
            ready = time.monotonic() - started
            break
        time.sleep(0.01)
    time.sleep(0.5)  # requests already on the killed worker's connections fail within this
    after = load.counts() if load else (0, 0)
    return {"killed": victim, "replacement": replacement,
            "seconds_to_new_process": None if spawned is None else round(spawned, 2),
            "seconds_to_ready": None if ready is None else round(ready, 2),
            "requests_ok_in_window": after[0] - before[0], "requests_failed_in_window": after[1] - before[1]}


def some_subjects(home: Path, n: int = 2000) -> list[int]:
    import pyarrow.parquet as pq

    ids = pq.read_table(home / "data" / "customers.parquet", columns=["subject_id"]).column(0).to_pylist()
    step = max(1, len(ids) // n)
    return [int(s) for s in ids[::step]][:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=None, help="a home with data and champions (default: the tests' fixture home)")
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose code the server runs (default: this one)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--load", type=int, default=2, help="client threads scoring during the kills (0: none)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds between a replacement's start and the next kill")
    parser.add_argument("--timeout", type=float, default=180.0, help="give up on a replacement after this long")
    parser.add_argument("--breakdowns", type=int, default=2, help="fresh-interpreter breakdown runs")
    args = parser.parse_args()
    for name, value in (("BENTOML_DO_NOT_TRACK", "true"), ("MLFLOW_DISABLE_TELEMETRY", "true"), ("OMP_NUM_THREADS", "1")):
        os.environ.setdefault(name, value)

    from serving.auth import create_key, revoke_key

    if args.home is None:
        from tests.serving_fixture import write_fixture_home

        home = Path(tempfile.mkdtemp(prefix="bench-restart-")) / "home"
        write_fixture_home(home)
    else:
        home = args.home
    os.environ["SOTE_RISK_HOME"] = str(home)
    repo = args.repo.resolve()
    commit = subprocess.run(["git", "-C", str(repo), "log", "-1", "--format=%h %s"], capture_output=True, text=True).stdout.strip()
    results: dict = {"home": str(home), "repo": str(repo), "commit": commit[:100], "cpus": os.cpu_count(),
                     "workers": args.workers, "load_threads": args.load, "load_before": [round(x, 2) for x in os.getloadavg()]}
    results["breakdown"] = [breakdown(repo, home) for _ in range(args.breakdowns)]

    key, record = create_key(home / "keys.json", "crm")
    service = start_service(home, timeout=900, workers=args.workers, repo=repo)
    load = None
    try:
        workers = worker_pids(service.process.pid)
        if len(workers) != args.workers or wait_accepting(workers, 900) is None:
            raise RuntimeError(f"not every worker is up: {workers}")
        load = Load(service.url, key, some_subjects(home), args.load).start() if args.load else None
        kills = []
        for _ in range(args.repeats):
            time.sleep(args.settle)
            kills.append(kill_one(service, load, args.timeout))
        time.sleep(1)
        results["kills"] = kills
        results["seconds_to_ready"] = [k["seconds_to_ready"] for k in kills]
        if load:
            load.stop()
            results["load"] = {"ok": load.ok, "failed": load.failed, "errors": load.errors}
    finally:
        if load:
            load.stop()
        service.stop()
        revoke_key(home / "keys.json", record.key_id)
    # the log reaches its file in blocks: whole once the server has stopped
    results["worker_lines"] = [line.split("] ", 1)[-1] for line in service.log.read_text(errors="replace").splitlines()
                               if re.search(r"worker \d+ ready|histories read from|mapped from the cache|champions loaded", line)]
    results["log"] = str(service.log)
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
