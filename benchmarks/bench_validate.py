"""Benchmark: validate a synthetic, valid dataset of N events (default 8 million).

    .venv/bin/python benchmarks/bench_validate.py [--events 8000000] [--customers 130000]

Prints build time, validation seconds and events per second. The frame is generated here with
numpy (no simulator needed) and includes hospital stays, so the cross-row rules do real work.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from data_contracts import load_code_catalogue, validate_dataset
from data_contracts.catalogue import LANGUAGES, MUNICIPALITIES

EXTRACT_START = pd.Timestamp("2020-01-01")
EXTRACT_END = pd.Timestamp("2024-12-31 23:59")
PLAIN_CODES = ["ENC/HC_DOCTOR", "ENC/HC_NURSE", "ENC/EMERGENCY", "HOMECARE/VISIT", "PHQ9", "ICPC2/K86", "IOT/FALL_ALARM"]


def make_dataset(n_events: int, n_customers: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    rng = np.random.default_rng(seed)
    subject_ids = np.arange(1, n_customers + 1, dtype="int64") * 7 + 1000
    customers = pd.DataFrame(
        {
            "subject_id": subject_ids,
            "birth_year": rng.integers(1925, 2019, n_customers).astype("int16"),
            "birth_month": rng.integers(1, 13, n_customers).astype("int8"),
            "sex": pd.array(rng.choice(["F", "M"], n_customers), dtype="str"),
            "municipality": pd.array(rng.choice(MUNICIPALITIES, n_customers), dtype="str"),
            "language": pd.array(rng.choice(LANGUAGES, n_customers), dtype="str"),
        }
    )
    subject = np.sort(rng.choice(subject_ids, n_events))
    start_us = np.datetime64(EXTRACT_START, "us").astype("int64")
    span = np.datetime64(EXTRACT_END, "us").astype("int64") - start_us
    offset = rng.integers(0, span, n_events)
    order = np.lexsort((offset, subject))
    subject, offset = subject[order], offset[order]
    times = (start_us + offset).astype("datetime64[us]")

    catalogue = load_code_catalogue().set_index("code")
    codes = rng.choice(PLAIN_CODES, n_events).astype(object)
    first = np.r_[True, subject[1:] != subject[:-1]]
    second = np.r_[False, first[:-1]] & ~first
    # Each customer's first two events are an admission and its discharge: real stay pairs.
    codes[first] = "ADMIT/UNPLANNED"
    codes[second] = "DISCHARGE"
    value = np.full(n_events, np.nan)
    value[codes == "HOMECARE/VISIT"] = 30.0
    value[codes == "PHQ9"] = 5.0
    value[second] = rng.integers(0, 30, second.sum()).astype(float)
    cost = catalogue["unit_cost_eur"].reindex(codes).to_numpy().copy()
    cost[second] = value[second] * 750.0
    cost[first] = 0.0
    events = pd.DataFrame(
        {
            "subject_id": subject,
            "time": times,
            "code": pd.array(codes, dtype="str"),
            "numeric_value": value,
            "service_area": pd.array(catalogue["service_area"].reindex(codes).to_numpy(), dtype="str"),
            "unit": pd.array(np.where(rng.random(n_events) < 0.1, None, "HC/Imatra"), dtype="str"),
            "cost_eur": cost,
        }
    )
    metadata = {
        "name": "bench",
        "source": "synthetic",
        "seed": seed,
        "customers": n_customers,
        "extract_start": EXTRACT_START.isoformat(),
        "extract_end": EXTRACT_END.isoformat(),
    }
    return events, customers, metadata


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=8_000_000)
    parser.add_argument("--customers", type=int, default=130_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    t0 = time.perf_counter()
    events, customers, metadata = make_dataset(args.events, args.customers)
    print(f"built {len(events):,} events, {len(customers):,} customers in {time.perf_counter() - t0:.1f} s")
    load_code_catalogue()  # warm the cache so the figure is validation only
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        validate_dataset(events, customers, metadata)
        seconds = time.perf_counter() - t0
        print(f"validate_dataset: {seconds:.2f} s, {len(events) / seconds:,.0f} events/s")


if __name__ == "__main__":
    main()
