"""Feature pipeline benchmark at region scale.

    .venv/bin/python benchmarks/bench_features.py [--data DIR] [--customers 130000] [--workers 2]

Without --data it generates a region-sized history (130,000 customers, 3 years, ~9 million
events, heavy-tailed: home care customers with daily visits and robot doses) with a numpy
generator; with --data it reads a dataset folder (e.g. the simulator's). Then, in a fresh
process so the figure is the pipeline's own: build the History, cohorts, features and labels
for every segment at every monthly index date, write the tables; and time online feature calls
for single customers with typical histories. Targets: batch <= 60 s and <= 6 GB peak on
2 cores; online p50 <= 2 ms, p99 <= 10 ms.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

START, END = pd.Timestamp("2022-01-01"), pd.Timestamp("2025-01-01")
MUNICIPALITIES = ["Lappeenranta", "Imatra", "Lemi", "Luumäki", "Parikkala", "Rautjärvi", "Ruokolahti", "Savitaipale", "Taipalsaari"]


def generate(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A rough region: age-dependent rates per code, home care spells with daily visits."""
    from data_contracts.catalogue import load_code_catalogue

    rng = np.random.default_rng(seed)
    cat = load_code_catalogue().set_index("code")
    age = np.clip(rng.gamma(2.2, 19, n), 0, 102).astype(int)
    customers = pd.DataFrame({
        "subject_id": np.arange(1, n + 1, dtype=np.int64),
        "birth_year": (2022 - age).astype(np.int16),
        "birth_month": rng.integers(1, 13, n).astype(np.int8),
        "sex": rng.choice(["F", "M"], n),
        "municipality": rng.choice(MUNICIPALITIES, n, p=[.56, .2, .02, .04, .04, .03, .04, .03, .04]),
        "language": rng.choice(["fi", "sv", "other"], n, p=[.93, .01, .06]),
    })
    old, child = age >= 75, age < 18
    frailty = rng.gamma(1.0, 1.0, n) * (1 + 2 * old)
    years = (END - START).days / 365.0
    per_year = {  # code -> base rate per year (x frailty); masks restrict who gets it
        "ENC/HC_DOCTOR": (1.5, None), "ENC/HC_NURSE": (2.0, None), "ENC/HC_REMOTE": (2.0, None),
        "ENC/MISSED_APPOINTMENT": (0.3, None), "ENC/EMERGENCY": (0.35, None), "ENC/PARAMEDIC": (0.1, None),
        "ENC/PSYCHIATRY": (0.4, None), "ENC/CRISIS": (0.05, None), "ENC/CHILD_HEALTH": (3.0, child),
        "ENC/SCHOOL_HEALTH": (1.5, child), "ICPC2/R74": (0.5, None), "ICPC2/K86": (0.1, ~child), "ICPC2/T90": (0.1, ~child),
        "ICD10/I50.9": (0.1, old), "ICD10/F03": (0.1, old), "ICPC2/P76": (0.06, None), "ICD10/F33": (0.03, None),
        "PHQ9": (0.2, None), "MED/ANTIDEPRESSANT": (0.6, None), "CHILDWELFARE/NOTIFICATION": (0.08, child),
        "ASSESS/HTA": (0.2, None), "RAI/MAPLE": (0.5, old), "RAI/CPS": (0.5, old), "RAI/ADLH": (0.5, old), "RAI/CHESS": (0.5, old),
        "IOT/FALL_ALARM": (1.0, old), "IOT/INACTIVITY_ALARM": (1.0, old), "ICD10/S72.0": (0.02, old),
    }
    parts = []
    for code, (rate, mask) in per_year.items():
        lam = rate * years * frailty * (1 if mask is None else mask)
        counts = rng.poisson(lam)
        parts.append((np.repeat(np.arange(n), counts), code))
    # stays: admissions with a discharge 0..20 days later
    adm = rng.poisson(0.15 * years * frailty)
    who = np.repeat(np.arange(n), adm)
    parts.append((who, "ADMIT/UNPLANNED"))
    # home care spells: ~4% (mostly old) with 1-2 visits a day and a medication robot for some
    hc = np.flatnonzero(rng.random(n) < np.where(old, 0.25, 0.004))
    visits = rng.poisson(1.2 * 365 * years * 0.6, len(hc))
    parts.append((np.repeat(hc, visits), "HOMECARE/VISIT"))
    robot = hc[rng.random(len(hc)) < 0.3]
    parts.append((np.repeat(robot, rng.poisson(365 * years * 0.5, len(robot))), "MEDROBOT/DISPENSE"))
    parts.append((np.repeat(robot, rng.poisson(8, len(robot))), "MEDROBOT/MISSED_DOSE"))
    span_s = int((END - START).total_seconds())
    frames = []
    for who, code in parts:
        t = START + pd.to_timedelta(rng.integers(0, span_s, len(who)), unit="s")
        frames.append(pd.DataFrame({"subject_id": who.astype(np.int64) + 1, "time": t, "code": code}))
    hc_start = pd.DataFrame({"subject_id": hc + 1, "time": START, "code": "HOMECARE/START"})
    events = pd.concat(frames + [hc_start], ignore_index=True)
    admits = events[events["code"] == "ADMIT/UNPLANNED"]
    los = rng.integers(0, 20, len(admits))
    discharges = pd.DataFrame({"subject_id": admits["subject_id"].to_numpy(), "time": admits["time"].to_numpy() + pd.to_timedelta(los, unit="D").to_numpy(),
                               "code": "DISCHARGE", "numeric_value": los.astype(float)})
    events = pd.concat([events, discharges[discharges["time"] < END]], ignore_index=True)
    values = {"PHQ9": (0, 27), "RAI/MAPLE": (1, 5), "RAI/CPS": (0, 6), "RAI/ADLH": (0, 6), "RAI/CHESS": (0, 5),
              "MED/ANTIDEPRESSANT": (28, 100), "HOMECARE/VISIT": (10, 60), "MEDROBOT/DISPENSE": (0, 4)}
    nv = events["numeric_value"].to_numpy(dtype=float, na_value=np.nan).copy()
    code = events["code"].to_numpy()
    for c, (lo, hi) in values.items():
        m = code == c
        nv[m] = rng.integers(lo, hi + 1, m.sum())
    events["numeric_value"] = nv
    events["service_area"] = cat.loc[code, "service_area"].to_numpy()
    units = np.array(["HC/Lappeenranta", "HC/Imatra", "EKKS/ER", "EKKS/W3", "HOMECARE/Lappeenranta/1", "PSY/LPR", "NEUVOLA/1"], dtype=object)
    events["unit"] = units[rng.integers(0, len(units), len(events))]
    events["cost_eur"] = cat.loc[code, "unit_cost_eur"].to_numpy() * np.where(code == "DISCHARGE", np.nan_to_num(nv), 1.0)
    events["time"] = events["time"].astype("datetime64[us]")
    events = events.sort_values(["subject_id", "time"], kind="stable", ignore_index=True)
    return customers, events


def write(directory: Path, customers: pd.DataFrame, events: pd.DataFrame) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    events.to_parquet(directory / "events.parquet", index=False)
    customers.to_parquet(directory / "customers.parquet", index=False)
    meta = {"name": "bench", "source": "synthetic", "seed": 0, "customers": len(customers), "extract_start": START.isoformat(),
            "extract_end": END.isoformat(), "simulator_version": "bench", "created": pd.Timestamp.now().isoformat()}
    (directory / "dataset.json").write_text(json.dumps(meta))


def measure(data: Path, out: Path, workers: int, warmup_days: int) -> dict:
    """Runs in a fresh process: read -> History -> all segments -> write; then online calls."""
    from features import compute_features
    from features.build import build_tables
    from features.history import History
    from features.io import write_tables

    figures = {}
    t0 = time.perf_counter()
    events = pd.read_parquet(data / "events.parquet")
    customers = pd.read_parquet(data / "customers.parquet")
    meta = json.loads((data / "dataset.json").read_text())
    figures["events"], figures["customers"] = len(events), len(customers)
    t1 = time.perf_counter()
    history = History.from_frames(events, customers)
    del events
    t2 = time.perf_counter()
    rows = {}

    def tables():
        for segment, table in build_tables(history, meta["extract_start"], meta["extract_end"], workers=workers, warmup_days=warmup_days):
            rows[segment] = len(table)
            yield segment, table

    write_tables(out, tables(), source={"bench": True})
    t3 = time.perf_counter()
    figures.update(read_s=round(t1 - t0, 2), history_s=round(t2 - t1, 2), build_and_write_s=round(t3 - t2, 2),
                   total_after_read_s=round(t3 - t1, 2), rows=rows,
                   peak_rss_gb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2))

    # online: one customer at a time against the service's prebuilt History
    counts = np.diff(history.ptr)
    typical = np.flatnonzero((counts >= np.percentile(counts, 40)) & (counts <= np.percentile(counts, 90)))
    rng = np.random.default_rng(1)
    picks = rng.choice(typical, 1000, replace=False)
    now = pd.Timestamp(meta["extract_end"]) - pd.Timedelta(days=1)
    durations = {}
    for segment in ("elderly", "acute"):
        compute_features(None, None, [history.subject_ids[picks[0]]], [now], segment, history=history)  # warm caches
        ms = []
        for i in picks:
            s = time.perf_counter()
            compute_features(None, None, [history.subject_ids[i]], [now], segment, history=history)
            ms.append((time.perf_counter() - s) * 1000)
        durations[segment] = {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3)}
    figures["online"] = durations
    figures["online_typical_events"] = int(np.median(counts[picks]))
    # online from a posted history (pandas frames for one customer, no prebuilt state)
    ev = pd.read_parquet(data / "events.parquet", filters=[("subject_id", "in", [int(history.subject_ids[i]) for i in picks[:200]])])
    ms = []
    for i in picks[:200]:
        sid = int(history.subject_ids[i])
        one, cust = ev[ev["subject_id"] == sid], customers[customers["subject_id"] == sid]
        s = time.perf_counter()
        compute_features(one, cust, [sid], [now], "elderly")
        ms.append((time.perf_counter() - s) * 1000)
    figures["online_from_frames"] = {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3)}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path)
    parser.add_argument("--customers", type=int, default=130_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup-days", type=int, default=0, help="0 = every month of the extract (the heaviest case)")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.data, args.out, args.workers, args.warmup_days)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            t = time.perf_counter()
            customers, events = generate(args.customers)
            data = Path(tmp) / "data"
            write(data, customers, events)
            print(f"generated {len(customers):,} customers, {len(events):,} events in {time.perf_counter() - t:.1f} s")
            del customers, events
        cmd = [sys.executable, __file__, "--measure", "--data", str(data), "--out", str(Path(tmp) / "features"),
               "--workers", str(args.workers), "--warmup-days", str(args.warmup_days)]
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if result.returncode:
            sys.exit(result.stderr)
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
