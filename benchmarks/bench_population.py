"""The population run at the region's size: `sote-risk run --as-of DATE`, all problems, SHAP for
alerts only. Target: <= 2 minutes on 2 cores for 130,000 residents.

    .venv/bin/python benchmarks/bench_population.py --home PATH [--as-of 2024-12-01]
    .venv/bin/python benchmarks/bench_population.py --home PATH --prepare   # simulate 130k, features,
                                                                            # train (3 trials), promote

The run goes to a fresh outbox in a temporary folder each time (the home's own is left alone),
as a subprocess, exactly as the nightly job runs; it is then run again on the same outbox to time
the idempotent re-run (no new scores, no new alerts). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-c", "from sote_risk.cli import main; main()"]


def sote_risk(*args: str, env: dict[str, str], timeout: float = 3600) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def prepare(home: Path, env: dict[str, str], customers: int, trials: int) -> dict:
    """Simulate, build features, train every problem with a small budget and promote (forced if
    the gates refuse: the benchmark needs a champion per problem, not a good one)."""
    timings = {}
    steps = [
        ("simulate", ["simulate", "--customers", str(customers), "--out", str(home / "data")]),
        ("features", ["features", "build", "--no-validate"]),
        ("train", ["train", "--all", "--trials", str(trials)]),
    ]
    for name, args in steps:
        started = time.perf_counter()
        result = sote_risk(*args, env=env)
        if result.returncode != 0:
            raise SystemExit(f"{name} failed: {result.stderr[-2000:]}")
        timings[name] = round(time.perf_counter() - started, 1)
    sys.path.insert(0, str(REPO))
    from training.spec import list_problems

    for problem in list_problems():
        if sote_risk("promote", "--problem", problem, env=env).returncode != 0:
            sote_risk("promote", "--problem", problem, "--force", env=env)
    return timings


def timed_run(as_of: str, db: Path, env: dict[str, str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = sote_risk("run", "--as-of", as_of, "--db", str(db), env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"run failed: {result.stderr[-2000:]}")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return {"wall_s": round(wall, 2), "cpu_s": round((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), 1),
            "max_rss_mib": round(after.ru_maxrss / 1024), "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--as-of", default="2024-12-01")
    parser.add_argument("--prepare", action="store_true")
    parser.add_argument("--customers", type=int, default=130_000)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "SOTE_RISK_HOME": str(args.home), "BENTOML_DO_NOT_TRACK": "true"}
    env.pop("SOTE_RISK_CRM_WEBHOOK_URL", None)  # time the run itself; delivery is the soak's business
    report: dict = {"cores": os.cpu_count()}
    if args.prepare:
        report["prepare_s"] = prepare(args.home, env, args.customers, args.trials)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "outbox.db"
        first = timed_run(args.as_of, db, env)
        again = timed_run(args.as_of, db, env)
    s1, s2 = first["summary"], again["summary"]
    report.update({
        "as_of": args.as_of, "customers": s1["customers"], "scored": s1["scored"],
        "first_run": {k: first[k] for k in ("wall_s", "cpu_s", "max_rss_mib")} | {"load_s": s1["load_seconds"], "in_run_s": s1["seconds"]},
        "alerts": {p: v["alerts_sent"] + v["alerts_queued"] for p, v in s1["problems"].items()},
        "explained": sum(v["explained"] for v in s1["problems"].values()),
        "scores": sum(v["new_scores"] for v in s1["problems"].values()),
        "rerun": {k: again[k] for k in ("wall_s",)} | {
            "new_scores": sum(v["new_scores"] for v in s2["problems"].values()),
            "new_alerts": sum(v["alerts_sent"] + v["alerts_queued"] for v in s2["problems"].values()),
        },
        "target_s": 120, "ok": first["wall_s"] <= 120,
    })
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
