"""Monitoring benchmark at region scale (issue 19: a monthly run of all problems in <= 60 s, and no
breach over the months of a region without a shift).

    .venv/bin/python benchmarks/bench_monitor.py --home DIR [--as-of 2026-12-01] [--alias champion] [--repeats 1]

Runs `sote-risk monitor --as-of DATE --alias ALIAS` as a separate process in the home DIR (a COPY
of a trained region: the run writes MLflow runs and a `monitor` tag, and its reference cache), as an
operator would: imports, model loading, reading the feature tables, the monthly figures, MLflow.
- `cold`: with the home's monitoring cache emptied first (a model registered before references
  were stored with models computes its reference from the table's training period, then keeps it);
- `warm`: the next run (the reference from the cache; a model trained since stores its own).
Prints per step the wall time (median of --repeats), the CPU time (user + system) of the process,
its peak memory, each problem's seconds and the breaches and notices; exit 1 when the warm run
takes more than 60 s or any month is breached. The machine's load is printed beside: wall time on
2 cores shared with other jobs is not the same figure as on an idle machine (the CPU time is).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTECTED = Path("/work/region-s42")  # the shared trained region: benchmarks run on a copy of it
TARGET_S = 60.0


def run_once(home: Path, as_of: str, alias: str) -> dict:
    env = {**os.environ, "SOTE_RISK_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true",
           "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    code = "import sys; sys.argv[0] = 'sote-risk'; from sote_risk.cli import main; main()"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, "monitor", "--as-of", as_of, "--alias", alias],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"sote-risk monitor failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    out = done.stdout
    return {
        "wall": wall,
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "peak_mb": after.ru_maxrss / 1024,
        "problems": re.findall(r"^== (\S+) version .*\[([0-9.]+) s\]$", out, flags=re.M),
        "breaches": re.findall(r"^  BREACH (.*)$", out, flags=re.M),
        "notices": re.findall(r"^  notice (.*)$", out, flags=re.M),
        "months": len(re.findall(r"^20\d\d-\d\d ", out, flags=re.M)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a COPY of a trained region's home")
    parser.add_argument("--as-of", default="2026-12-01")
    parser.add_argument("--alias", default="champion")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    home = args.home.resolve()
    if home == PROTECTED or PROTECTED in home.parents:
        raise SystemExit(f"{home} is the shared region: copy it first (cp -a {PROTECTED} /work/monitor-homes/s42)")
    if not (home / "mlflow.db").exists():
        raise SystemExit(f"{home} has no mlflow.db: not a trained home")

    print(f"home {home}, as of {args.as_of}, alias {args.alias}; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    results = {}
    for step in ("cold", "warm"):
        runs = []
        for _ in range(args.repeats):
            if step == "cold":
                shutil.rmtree(home / "cache" / "monitoring", ignore_errors=True)
            runs.append(run_once(home, args.as_of, args.alias))
        result = dict(runs[-1])
        result["wall"] = statistics.median(r["wall"] for r in runs)
        result["cpu"] = statistics.median(r["cpu"] for r in runs)
        results[step] = result
        per = ", ".join(f"{name} {seconds} s" for name, seconds in result["problems"])
        print(f"{step:5}  wall {result['wall']:6.1f} s  cpu {result['cpu']:6.1f} s  peak {result['peak_mb']:,.0f} MB  "
              f"({len(result['problems'])} problems, {result['months']} problem-months: {per})")
    warm = results["warm"]
    print(f"breaches: {len(warm['breaches'])}")
    for line in warm["breaches"]:
        print(f"  BREACH {line}")
    for line in warm["notices"]:
        print(f"  notice {line}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    failed = warm["wall"] > TARGET_S or warm["breaches"]
    print(f"target: warm run <= {TARGET_S:.0f} s and no breach: {'FAIL' if failed else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
