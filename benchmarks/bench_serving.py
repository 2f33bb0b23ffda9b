"""Serving speed: POST /score latency and throughput, and probability-only /predict_row against a
bare FastAPI endpoint and `mlflow models serve` of the same model, all measured in one run.

    .venv/bin/python benchmarks/bench_serving.py                 # fixture home (toy models)
    .venv/bin/python benchmarks/bench_serving.py --home PATH     # a real home: data + champions

With --home the service loads the real champions (models/registry) and histories; the
predict_row comparison uses the elderly-hospitalisation champion (or --problem). Prints one JSON
object with every figure. Servers run on 127.0.0.1, free ports, each in its own process group,
all with --workers worker processes (default 2, the target machine's cores).

Cold means a customer no worker has seen: members of a cohort are found in this process (the
feature package's cohorts on the held histories), never through the service, and every
measured set of customers is new to the service. The load generator is a minimal asyncio
HTTP/1.1 client (keep-alive connections, no httpx) so it takes little of the 2 cores; its CPU
share and the servers' are reported next to each throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.serving_server import ServiceProcess, free_port, start_service  # noqa: E402  (shared with the tests)

# The same work per request as the service's /predict_row (scoring.scorer.predict_row: the same
# function, request and response types), without BentoML: no auth, metrics or access log.
BARE_APP = '''
import os, pickle
from fastapi import FastAPI
from serving.api_types import PredictRowRequest, PredictRowResponse
from serving.responses import row_response
from scoring.champions import champion_from_model
from scoring.scorer import predict_row

with open(os.environ["BENCH_MODEL"], "rb") as handle:
    champion = champion_from_model(os.environ["BENCH_PROBLEM"], pickle.load(handle))
app = FastAPI()

@app.post("/predict_row")
async def predict(request: PredictRowRequest) -> PredictRowResponse:
    return row_response(predict_row(champion, request.features))
'''


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def sequential(client: httpx.Client, path: str, bodies: list[dict]) -> dict:
    times = []
    for body in bodies:
        started = time.perf_counter()
        response = client.post(path, json=body)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return {"n": len(times), "p50_ms": round(percentile(times, 50), 2), "p99_ms": round(percentile(times, 99), 2),
            "mean_ms": round(statistics.mean(times), 2)}


# --- a lean load generator ---------------------------------------------------------------------


async def _post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, body: bytes) -> int:
    """One request on a keep-alive connection; returns the status (the body is read and dropped)."""
    writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
    headers = await reader.readuntil(b"\r\n\r\n")
    status = int(headers[9:12])
    lines = headers.lower().split(b"\r\n")
    length = next((int(line[15:]) for line in lines if line.startswith(b"content-length:")), None)
    if length is not None:
        await reader.readexactly(length)
    elif any(line.startswith(b"transfer-encoding: chunked") for line in lines):
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        raise RuntimeError("a response without a length")
    return status


async def _load(url: str, path: str, bodies: list[bytes], concurrency: int, headers: dict) -> tuple[float, int, list[float]]:
    host, port = url.removeprefix("http://").split(":")
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "Content-Length: ").encode()
    queue = list(reversed(bodies))
    errors, latencies = 0, []
    # Connections are opened one at a time before the clock starts, as a client's pool grows:
    # opened in one burst, they all land in whichever worker process accepts first (BentoML's
    # and uvicorn's workers share one listening socket), and one core would do all the work.
    connections = []
    for _ in range(concurrency):
        connections.append(await asyncio.open_connection(host, int(port)))
        await asyncio.sleep(0.003)

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal errors
        try:
            while queue:
                body = queue.pop()
                started = time.perf_counter()
                try:
                    status = await _post(reader, writer, head, body)
                except (OSError, asyncio.IncompleteReadError, RuntimeError, ValueError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, int(port))
                    continue
                latencies.append((time.perf_counter() - started) * 1000)
                errors += status >= 400
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(reader, writer) for reader, writer in connections))
    return time.perf_counter() - started, errors, latencies


def concurrent(url: str, path: str, bodies: list[dict], concurrency: int, headers: dict | None = None,
               server_pids: list[int] | None = None) -> dict:
    """Throughput at `concurrency` connections; the client's CPU share of the machine and the
    servers' (their processes' CPU seconds over the run's wall seconds times the cores)."""
    encoded = [json.dumps(b).encode() for b in bodies]
    cpu0, servers0 = time.process_time(), cpu_seconds(server_pids or [])
    seconds, errors, latencies = asyncio.run(_load(url, path, encoded, concurrency, headers or {}))
    client_cpu, server_cpu = time.process_time() - cpu0, cpu_seconds(server_pids or []) - servers0
    cores = os.cpu_count() or 1
    return {"n": len(bodies), "concurrency": concurrency, "seconds": round(seconds, 2),
            "requests_per_s": round(len(bodies) / seconds, 1), "errors": errors,
            "p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
            "p99_ms": round(percentile(latencies, 99), 1) if latencies else None,
            "client_cpu_share": round(client_cpu / (seconds * cores), 3),
            "server_cpu_share": round(server_cpu / (seconds * cores), 3) if server_pids else None}


# --- processes ---------------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2:].split()


def descendants(root: int) -> list[int]:
    """root and every process under it (BentoML's arbiter starts the workers; uvicorn too)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except FileNotFoundError:
        return None
    return None


def worker_rss(root: int) -> dict[str, float | None]:
    """Resident memory of each process under root, by pid and what it runs (arbiter, workers)."""
    out = {}
    for pid in descendants(root):
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        role = "worker" if ("worker" in command.split(" -m ", 1)[-1] or "--worker-id" in command) and pid != root else (
            "main" if pid == root else "other")
        out[f"{role} {pid}"] = rss_mb(pid)
    return out


def requests_per_worker(log: Path) -> dict[str, dict[str, int]]:
    """Route -> worker -> requests answered, from BentoML's access log (is the load spread?)."""
    counts: dict[str, dict[str, int]] = {}
    for line in log.read_text(errors="replace").splitlines():
        if "[entry_service:" not in line or "path=" not in line:
            continue
        worker = line.split("[entry_service:", 1)[1].split("]", 1)[0].rsplit(":", 1)[-1]
        route = line.split("path=", 1)[1].split(",", 1)[0]
        counts.setdefault(route, {}).setdefault(f"worker {worker}", 0)
        counts[route][f"worker {worker}"] += 1
    return counts


def wait_for_workers(service: ServiceProcess, workers: int, timeout: float = 300) -> None:
    """Until every worker logged its start (readyz answers as soon as one is up)."""
    deadline = time.monotonic() + timeout
    while service.log.read_text(errors="replace").count("Service sote_risk initialized") < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{workers} workers not up after {timeout} s:\n{service.log.read_text()[-2000:]}")
        time.sleep(0.5)


def spawn(command: list[str], env: dict, log: Path, ready_url: str, timeout: float = 120) -> subprocess.Popen:
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[:3]} exited:\n{log.read_text()[-2000:]}")
        try:
            httpx.get(ready_url, timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError(f"{command[:3]} not ready:\n{log.read_text()[-2000:]}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="a home folder with data and champion models (default: the tests' fixture home)")
    parser.add_argument("--problem", default="elderly-hospitalisation")
    parser.add_argument("--requests", type=int, default=600, help="sequential /score requests (each a new customer)")
    parser.add_argument("--concurrent-requests", type=int, default=3000, help="/score requests at --concurrency (each a new customer)")
    parser.add_argument("--row-requests", type=int, default=3000, help="/predict_row requests per server (mlflow: a sixth)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="worker processes of every server measured")
    args = parser.parse_args()
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # the same for every server measured
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))

    from serving.auth import create_key

    if args.home is None:
        from tests.serving_fixture import write_fixture_home

        home = work / "home"
        write_fixture_home(home)
        served = "the tests' fixture home (2,500 simulated residents, five small real models)"
    else:
        home = args.home
        served = f"{home} champions"
    os.environ["SOTE_RISK_HOME"] = str(home)
    from base.settings import settings
    from scoring.backend import load_backend
    key = create_key(home / "keys.json", "admin")[0]
    auth = {"Authorization": f"Bearer {key}"}
    results: dict = {"served": served, "cpus": os.cpu_count(), "workers": args.workers, "load_before": os.getloadavg()}

    # Members of a cohort, found here (not through the service: its caches stay empty), and their
    # feature rows for the predict_row comparison.
    import pandas as pd

    import numpy as np

    from features import cohort_columns

    backend = load_backend(settings())
    model = backend.champions[args.problem].model
    store = backend.history
    time_ = store.resolve_time(None)
    ids = store.ids()
    cohorts = cohort_columns(store.history, ids, [time_] * len(ids))
    eligible = {p: cohorts[f"eligible_{p}"] for p in backend.champions}
    members = [int(s) for s in ids[np.logical_or.reduce(list(eligible.values()))]]
    step = max(1, len(members) // (args.requests + args.concurrent_requests))  # spread over the id range
    members = members[::step]
    sequential_set, concurrent_set = members[: args.requests], members[args.requests: args.requests + args.concurrent_requests]
    from scoring import path

    in_segment = [int(s) for s in ids[eligible[args.problem]]][:200]
    scored = path.score_pairs(store.history, in_segment, [time_] * len(in_segment), {args.problem: backend.champions[args.problem]})
    rows = scored.problems[args.problem].block.to_frame()
    del backend, store, cohorts, scored

    service: ServiceProcess = start_service(home, timeout=300, workers=args.workers)
    processes: list[subprocess.Popen] = []
    try:
        wait_for_workers(service, args.workers)
        pids = descendants(service.process.pid)
        results["rss_mb_after_start"] = worker_rss(service.process.pid)
        client = httpx.Client(base_url=service.url, headers=auth, timeout=60)
        bodies = [{"customer_id": s, "top_k": 5} for s in sequential_set]
        # one keep-alive connection: one worker sees each customer first, then again (cached: the
        # last 400, which its LRU of 512 rows still holds; earlier ones were evicted by the later)
        results["score_top5_sequential_cold"] = sequential(client, "/score", bodies)
        results["score_top5_sequential_cached"] = sequential(client, "/score", bodies[-400:])
        results[f"score_top5_concurrency{args.concurrency}_cold"] = concurrent(
            service.url, "/score", [{"customer_id": s, "top_k": 5} for s in concurrent_set], args.concurrency, auth, pids)
        results["rss_mb_after_score"] = worker_rss(service.process.pid)

        # probability-only on a posted feature row: BentoML vs bare FastAPI vs mlflow models serve
        records = [{k: (None if pd.isna(v) else (v if isinstance(v, str) else float(v))) for k, v in r.items()}
                   for r in rows[model.feature_names].astype(object).to_dict("records")]
        row_bodies = [{"problem": args.problem, "features": rec} for rec in records]
        row_bodies = (row_bodies * (1 + args.row_requests // len(row_bodies)))[: args.row_requests]

        import pickle

        model_file = work / "model.pkl"
        model_file.write_bytes(pickle.dumps(model))
        bare_port = free_port()
        app_file = work / "bare_app.py"
        app_file.write_text(BARE_APP)
        env = {**os.environ, "BENCH_MODEL": str(model_file), "BENCH_PROBLEM": args.problem,
               "PYTHONPATH": os.pathsep.join([str(REPO), str(work)]),
               "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}  # mlflow execs `uvicorn`
        bare = spawn([sys.executable, "-m", "uvicorn", "bare_app:app", "--host", "127.0.0.1", "--port", str(bare_port),
                      "--workers", str(args.workers), "--log-level", "warning", "--no-access-log"],
                     env, work / "bare.log", f"http://127.0.0.1:{bare_port}/docs")
        processes.append(bare)

        import mlflow.pyfunc
        from mlflow.models import infer_signature
        from models.pyfunc import ARTIFACT_KEY, RiskModelPyfunc, save_risk_model, synthetic_example

        example = synthetic_example(model)
        mlflow_dir = work / "mlflow-model"
        mlflow.pyfunc.save_model(
            str(mlflow_dir), python_model=RiskModelPyfunc(),
            artifacts={ARTIFACT_KEY: str(save_risk_model(model, work / "risk_model"))},
            signature=infer_signature(example, pd.DataFrame({"probability": model.predict_proba(example)})),
            input_example=example,  # as the registered model is logged (models/pyfunc.py)
        )
        mlflow_port = free_port()
        mlflow_server = spawn([str(Path(sys.executable).with_name("mlflow")), "models", "serve", "-m", str(mlflow_dir),
                               "--env-manager", "local", "--host", "127.0.0.1", "--port", str(mlflow_port),
                               "--workers", str(args.workers)],
                              env, work / "mlflow.log", f"http://127.0.0.1:{mlflow_port}/ping", timeout=180)
        processes.append(mlflow_server)
        mlflow_bodies = [{"dataframe_records": [b["features"]]} for b in row_bodies[: max(len(row_bodies) // 6, 100)]]
        time.sleep(3)  # uvicorn's other workers come up after the first answers

        for name, url, path, payload, headers, root in (
            ("bentoml_predict_row", service.url, "/predict_row", row_bodies, auth, service.process.pid),
            ("bare_fastapi_predict_row", f"http://127.0.0.1:{bare_port}", "/predict_row", row_bodies, {}, bare.pid),
            ("mlflow_models_serve", f"http://127.0.0.1:{mlflow_port}", "/invocations", mlflow_bodies, {}, mlflow_server.pid),
        ):
            concurrent(url, path, payload[:200], args.concurrency, headers)  # warm-up
            results[name] = concurrent(url, path, payload, args.concurrency, headers, descendants(root))
        b, f, m = (results[k]["requests_per_s"] for k in ("bentoml_predict_row", "bare_fastapi_predict_row", "mlflow_models_serve"))
        results["predict_row_ratio_vs_fastapi"] = round(b / f, 2)
        results["predict_row_ratio_vs_mlflow"] = round(b / m, 1)
        results["rss_mb_end"] = worker_rss(service.process.pid)
        results["requests_per_worker"] = requests_per_worker(service.log)
    finally:
        for process in processes:
            stop(process)
        service.stop()
    results["load_after"] = os.getloadavg()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
