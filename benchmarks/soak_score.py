"""Soak: POST /score at half the measured peak rate for a long time, while alerts are being raised
(population runs of earlier months) and dispatched to a CRM stand-in. Pass: no errors, p99 stable
(per-minute p99s compared), RSS of the service's processes grows < 10 %.

    .venv/bin/python benchmarks/soak_score.py --home PATH [--minutes 10] [--peak-seconds 20]

PATH needs data and champions (e.g. the home bench_population.py --prepare made). Loopback only;
every loop is bounded by time or count; the service, receiver and dispatcher each run in their
own process group and are stopped at the end. The soak's outbox is the home's (alerts accumulate
there like in production); its delivery is checked against the receiver at the end.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sote_risk.processes import Child, free_port, start_cli, vm_rss_kib, wait_ready  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


async def closed_loop(url: str, key: str, ids: list[int], seconds: float, concurrency: int) -> float:
    """Requests per second with `concurrency` clients back to back (the peak)."""
    done = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, limits=limits, timeout=60) as client:
        async def worker(seed: int) -> None:
            nonlocal done
            rng = random.Random(seed)
            while time.monotonic() < deadline:
                response = await client.post("/score", json={"customer_id": rng.choice(ids), "top_k": 3})
                response.raise_for_status()
                done += 1

        started = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        return done / (time.monotonic() - started)


async def open_loop(url: str, key: str, ids: list[int], rate: float, seconds: float, on_sample, max_in_flight: int = 64) -> dict:
    """A fixed arrival rate (not slowed by the server: latency includes queueing). Per-minute stats."""
    minutes: dict[int, list[float]] = {}
    errors: dict[str, int] = {}
    late = 0
    rng = random.Random(7)
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
    gate = asyncio.Semaphore(max_in_flight)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, limits=limits, timeout=60) as client:
        async def one(customer: int, scheduled: float, minute: int) -> None:
            async with gate:
                try:
                    response = await client.post("/score", json={"customer_id": customer, "top_k": 3})
                    status = str(response.status_code) if response.status_code != 200 else None
                except httpx.HTTPError as error:
                    status = type(error).__name__
            if status:
                errors[status] = errors.get(status, 0) + 1
            minutes.setdefault(minute, []).append((time.monotonic() - scheduled) * 1000)

        start = time.monotonic()
        tasks: set[asyncio.Task] = set()
        n = int(rate * seconds)
        next_sample = start
        for i in range(n):  # bounded: exactly rate*seconds requests
            scheduled = start + i / rate
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1.0:
                late += 1
            if time.monotonic() >= next_sample:
                on_sample(time.monotonic() - start)
                next_sample += 10
            task = asyncio.create_task(one(rng.choice(ids), scheduled, int((scheduled - start) // 60)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
    per_minute = [{"minute": m, "n": len(v), "p50_ms": round(percentile(v, 50), 1), "p99_ms": round(percentile(v, 99), 1)}
                  for m, v in sorted(minutes.items())]
    every = [x for v in minutes.values() for x in v]
    return {"requests": len(every), "errors": errors, "late_starts": late, "per_minute": per_minute,
            "p50_ms": round(percentile(every, 50), 1), "p99_ms": round(percentile(every, 99), 1),
            "mean_ms": round(statistics.mean(every), 1) if every else None}


def earlier_months(as_of: str, n: int) -> list[str]:
    import pandas as pd

    last = pd.Timestamp(as_of)
    return [(last - pd.DateOffset(months=k)).date().isoformat() for k in range(1, n + 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--peak-seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--as-of", default="2024-12-01", help="the latest month; alerts come from the months before")
    parser.add_argument("--alert-months", type=int, default=6)
    args = parser.parse_args()

    from serving.auth import create_key, revoke_key
    from alerts import outbox

    home = args.home.resolve()
    env = {"SOTE_RISK_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    os.environ.update(env)
    keys_file = home / "keys.json"
    key, record = create_key(keys_file, "crm")
    logs = home / "soak-logs"
    children: list[Child] = []
    report: dict = {"cores": os.cpu_count()}
    try:
        service_port, crm_port = free_port(), free_port()
        service = start_cli("service", ["serve", "--port", str(service_port)], url=f"http://127.0.0.1:{service_port}",
                            log=logs / "service.log", env=env)
        children.append(service)
        receiver = start_cli("receiver", ["crm-receiver", "--port", str(crm_port), "--store", str(home / "soak-crm.db")],
                             url=f"http://127.0.0.1:{crm_port}", log=logs / "receiver.log", env=env)
        children.append(receiver)
        wait_ready(receiver, "/health", timeout=60)
        report["service_ready_s"] = round(wait_ready(service, "/readyz", timeout=600), 1)
        webhook = {**env, "SOTE_RISK_CRM_WEBHOOK_URL": f"{receiver.url}/alerts"}
        dispatcher = start_cli("dispatcher", ["alerts", "dispatch", "--poll-interval", "1"], url="", log=logs / "dispatcher.log", env=webhook)
        children.append(dispatcher)

        import pandas as pd

        ids = pd.read_parquet(home / "data" / "customers.parquet", columns=["subject_id"])["subject_id"].tolist()
        asyncio.run(closed_loop(service.url, key, ids, 5, args.concurrency))  # warm-up
        peak = asyncio.run(closed_loop(service.url, key, ids, args.peak_seconds, args.concurrency))
        rate = peak / 2
        report.update({"peak_rps": round(peak, 1), "soak_rps": round(rate, 1), "minutes": args.minutes})

        # Alerts flow during the soak: population runs of earlier months, one after the other (a
        # bounded list), each writing alerts that the dispatcher delivers to the receiver.
        months = earlier_months(args.as_of, args.alert_months)
        runner = subprocess.Popen(
            ["/bin/sh", "-c", " && ".join(f"{sys.executable} -c 'from sote_risk.cli import main; main()' run --as-of {m} --db {home / 'outbox.db'}"
                                          for m in months)],
            env={**os.environ, **env}, stdout=open(logs / "runs.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        children.append(Child("population runs", runner, "", logs / "runs.log"))

        rss: list[tuple[float, int]] = []
        soak = asyncio.run(open_loop(service.url, key, ids, rate, args.minutes * 60,
                                     lambda t: rss.append((round(t, 1), vm_rss_kib(service.pid)))))
        rss.append((args.minutes * 60, vm_rss_kib(service.pid)))
        report["soak"] = soak
        p99s = [m["p99_ms"] for m in soak["per_minute"] if m["n"] > rate * 30]
        report["p99_per_minute_ms"] = p99s
        report["p99_max_over_median"] = round(max(p99s) / statistics.median(p99s), 2) if p99s else None
        baseline = rss[min(1, len(rss) - 1)][1]  # after the first 10 s: the caches' first fill is not growth
        report["rss_mib"] = {"first": round(rss[0][1] / 1024), "baseline": round(baseline / 1024), "last": round(rss[-1][1] / 1024),
                             "max": round(max(v for _, v in rss) / 1024),
                             "growth_pct": round(100 * (rss[-1][1] - baseline) / baseline, 1) if baseline else None,
                             "samples": len(rss)}

        deadline = time.monotonic() + 300  # let the runs and the dispatcher finish (bounded)
        while runner.poll() is None and time.monotonic() < deadline:
            time.sleep(2)
        conn = outbox.connect(home / "outbox.db")
        while time.monotonic() < deadline and outbox.status_counts(conn).get("pending", 0):
            time.sleep(1)
        statuses = outbox.status_counts(conn)
        received = httpx.get(f"{receiver.url}/received", timeout=60).json()
        report["alerts"] = {"runs_exit": runner.returncode, "months": months, "outbox": statuses,
                            "received": received["count"],
                            "received_more_than_once": sum(1 for i in received["items"] if i["deliveries"] > 1)}
        report["ok"] = bool(not soak["errors"] and report["rss_mib"]["growth_pct"] is not None
                            and report["rss_mib"]["growth_pct"] < 10 and statuses.get("delivered", 0) == received["count"])
    finally:
        for child in reversed(children):
            child.stop()
        revoke_key(keys_file, record.key_id)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
