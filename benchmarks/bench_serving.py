"""Serving speed: POST /score latency and throughput, and probability-only /predict_row against a
bare FastAPI endpoint and `mlflow models serve` of the same model, all measured in one run.

    .venv/bin/python benchmarks/bench_serving.py                 # fixture home (toy models)
    .venv/bin/python benchmarks/bench_serving.py --home PATH     # a real home: data + champions

With --home the service loads the real champions (models/registry) and histories; the
predict_row comparison uses the elderly-hospitalisation champion (or --problem). Prints one JSON
object with every figure. Servers run on 127.0.0.1, free ports, each in its own process group.
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

BARE_APP = '''
import os, pickle
import pandas as pd
from fastapi import FastAPI
from serving.api_types import PredictRowRequest, PredictRowResponse
from serving.alert_policy import band_for
from serving.backend import champion_from_model

with open(os.environ["BENCH_MODEL"], "rb") as handle:
    champion = champion_from_model(os.environ["BENCH_PROBLEM"], pickle.load(handle))
app = FastAPI()

@app.post("/predict_row")
async def predict_row(request: PredictRowRequest) -> PredictRowResponse:
    probability = float(champion.model.predict_proba(pd.DataFrame([request.features]))[0])
    return PredictRowResponse(problem=request.problem, probability=probability,
                              band=band_for(probability, champion.bands), model_version=champion.version)
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


async def _concurrent(url: str, path: str, bodies: list[dict], concurrency: int, headers: dict) -> dict:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as client:
        queue: asyncio.Queue = asyncio.Queue()
        for body in bodies:
            queue.put_nowait(body)
        errors = 0

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                body = queue.get_nowait()
                response = await client.post(path, json=body)
                errors += response.status_code >= 400

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return {"n": len(bodies), "concurrency": concurrency, "seconds": round(seconds, 2),
            "requests_per_s": round(len(bodies) / seconds, 1), "errors": errors}


def concurrent(url: str, path: str, bodies: list[dict], concurrency: int, headers: dict | None = None) -> dict:
    return asyncio.run(_concurrent(url, path, bodies, concurrency, headers or {}))


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
    parser.add_argument("--home", type=Path, help="a home folder with data and champion models (default: a fixture home)")
    parser.add_argument("--problem", default="elderly-hospitalisation")
    parser.add_argument("--customers", type=int, default=2000, help="fixture size (ignored with --home)")
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # the same for every server measured
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    extra_env: dict[str, str] = {}

    from serving.auth import create_key

    if args.home is None:
        from tests.serving_fixture import write_fixture_home

        home = work / "home"
        models = write_fixture_home(home, n_customers=args.customers)
        model = models[args.problem]
        served = "fixture (toy features, tiny LightGBM)"
    else:
        home = args.home
        extra_env["SOTE_RISK_BACKEND"] = ""
        from models.registry import load_model
        from sote_risk.config import home as home_layout

        os.environ["SOTE_RISK_HOME"] = str(home)
        model = load_model(args.problem, alias="champion")
        served = f"{home_layout().root} champions"
    key = create_key(home / "keys.json", "admin")[0]
    auth = {"Authorization": f"Bearer {key}"}
    results: dict = {"served": served, "cpus": os.cpu_count()}

    service: ServiceProcess = start_service(home, **extra_env)
    processes: list[subprocess.Popen] = []
    try:
        client = httpx.Client(base_url=service.url, headers=auth, timeout=60)
        import pandas as pd

        known = pd.read_parquet(home / "data" / "customers.parquet", columns=["subject_id"])["subject_id"].tolist()
        members = []
        for start in range(0, len(known), 500):  # customers in at least one cohort (the ones /score explains)
            batch = client.post("/score_batch", json={"customer_ids": known[start:start + 500], "top_k": 0}).json()
            members += [r["customer_id"] for r in batch["results"] if r["risks"]]
            if len(members) >= args.requests:
                break
        members = members[: args.requests]
        client.post("/reload", json={}).raise_for_status()  # empty the caches the search filled
        bodies = [{"customer_id": s, "top_k": 5} for s in members]
        results["score_top5_sequential_cold"] = sequential(client, "/score", bodies)  # features + SHAP computed
        results["score_top5_sequential_warm"] = sequential(client, "/score", bodies)  # cached rows and reasons
        client.post("/reload", json={}).raise_for_status()  # empty the caches
        many = (bodies * (1 + 2000 // max(len(bodies), 1)))[:2000]
        results["score_top5_concurrency32_first_pass"] = concurrent(service.url, "/score", many[: len(bodies)], 32, auth)
        results["score_top5_concurrency32_mixed"] = concurrent(service.url, "/score", many, 32, auth)

        # probability-only on a posted feature row: BentoML vs bare FastAPI vs mlflow models serve
        from tests.serving_fixture import toy_rows

        events = pd.read_parquet(home / "data" / "events.parquet") if args.home is None else None
        if events is not None:
            customers = pd.read_parquet(home / "data" / "customers.parquet")
            rows = toy_rows(events, customers, members[:200], [pd.Timestamp("2024-01-01")] * len(members[:200]))
        else:
            from serving.backend import load_backend
            from serving.scoring import Scorer

            scorer = Scorer(load_backend())
            segment, as_of = model.spec["segment"], scorer.resolve_time(None)
            stored = scorer.stored_rows(members, as_of)
            # only customers in this problem's segment have a row for it
            rows = pd.concat([stored[s].rows[segment] for s in members if segment in stored[s].rows][:200])
        records = [{k: (None if pd.isna(v) else (v if isinstance(v, str) else float(v))) for k, v in r.items()}
                   for r in rows[model.feature_names].astype(object).to_dict("records")]
        row_bodies = [{"problem": args.problem, "features": rec} for rec in records]
        row_bodies = (row_bodies * (1 + args.requests // len(row_bodies)))[: args.requests]

        import pickle

        model_file = work / "model.pkl"
        model_file.write_bytes(pickle.dumps(model))
        bare_port = free_port()
        app_file = work / "bare_app.py"
        app_file.write_text(BARE_APP)
        env = {**os.environ, "BENCH_MODEL": str(model_file), "BENCH_PROBLEM": args.problem,
               "PYTHONPATH": os.pathsep.join([str(REPO), str(work)]),
               "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}  # mlflow execs `uvicorn`
        processes.append(spawn([sys.executable, "-m", "uvicorn", "bare_app:app", "--host", "127.0.0.1", "--port", str(bare_port),
                                "--log-level", "warning", "--no-access-log"], env, work / "bare.log", f"http://127.0.0.1:{bare_port}/docs"))

        import mlflow.pyfunc
        from mlflow.models import infer_signature
        from models.pyfunc import ARTIFACT_KEY, RiskModelPyfunc, save_risk_model, wire_frame

        example = wire_frame(model, rows.head(5))
        mlflow_dir = work / "mlflow-model"
        mlflow.pyfunc.save_model(
            str(mlflow_dir), python_model=RiskModelPyfunc(),
            artifacts={ARTIFACT_KEY: str(save_risk_model(model, work / "risk_model"))},
            signature=infer_signature(example, pd.DataFrame({"probability": model.predict_proba(example)})),
        )
        mlflow_port = free_port()
        processes.append(spawn([str(Path(sys.executable).with_name("mlflow")), "models", "serve", "-m", str(mlflow_dir), "--env-manager", "local",
                                "--host", "127.0.0.1", "--port", str(mlflow_port)], env, work / "mlflow.log",
                               f"http://127.0.0.1:{mlflow_port}/ping", timeout=180))
        mlflow_bodies = [{"dataframe_records": [b["features"]]} for b in row_bodies]

        for name, url, path, payload, headers in (
            ("bentoml_predict_row", service.url, "/predict_row", row_bodies, auth),
            ("bare_fastapi_predict_row", f"http://127.0.0.1:{bare_port}", "/predict_row", row_bodies, {}),
            ("mlflow_models_serve", f"http://127.0.0.1:{mlflow_port}", "/invocations", mlflow_bodies, {}),
        ):
            concurrent(url, path, payload[:100], 8, headers)  # warm-up
            results[name] = concurrent(url, path, payload, 8, headers)
        b, f, m = (results[k]["requests_per_s"] for k in ("bentoml_predict_row", "bare_fastapi_predict_row", "mlflow_models_serve"))
        results["predict_row_ratio_vs_fastapi"] = round(b / f, 2)
        results["predict_row_ratio_vs_mlflow"] = round(b / m, 1)
    finally:
        for process in processes:
            stop(process)
        service.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
