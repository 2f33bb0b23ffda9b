"""Per-customer figures (training/customers.py through training/evaluate.py evaluate_test) count
only each customer's rows scored before their first outcome: a row scored after an admission
already contains it. Checked by hand on a tiny frame and against a naive per-customer loop on
random ones (issue 15, item 1)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from _naive_customers import naive_customer_figures
from training.customers import before_first_outcome, customer_level
from training.evaluate import evaluate_test

T = pd.Timestamp
NAT = pd.NaT
THRESHOLD = 0.5

# (customer, index date, p, label, outcome time): five customers; A, C and E have outcomes.
# A is admitted on 10 March; its April and May rows (0.9, 0.8) are scored after the admission
# and hold it: before it A's risk was at most 0.4. C's first outcome is on 15 February; its 1 March
# row (0.95) comes after it (and is positive again, for a second admission on 20 April).
TINY = [
    (1, "2024-01-01", 0.20, True, "2024-03-10"),   # A
    (1, "2024-02-01", 0.30, True, "2024-03-10"),
    (1, "2024-03-01", 0.40, True, "2024-03-10"),
    (1, "2024-04-01", 0.90, False, None),          # after the admission
    (1, "2024-05-01", 0.80, False, None),          # after the admission
    (2, "2024-01-01", 0.60, False, None),          # B: no outcome
    (2, "2024-02-01", 0.10, False, None),
    (2, "2024-03-01", 0.10, False, None),
    (3, "2024-01-01", 0.70, True, "2024-02-15"),   # C
    (3, "2024-02-01", 0.55, True, "2024-02-15"),
    (3, "2024-03-01", 0.95, True, "2024-04-20"),   # after the first outcome
    (4, "2024-01-01", 0.35, False, None),          # D: no outcome
    (4, "2024-02-01", 0.45, False, None),
    (5, "2024-01-01", 0.80, True, "2024-03-20"),   # E
    (5, "2024-02-01", 0.85, True, "2024-03-20"),
    (5, "2024-03-01", 0.90, True, "2024-03-20"),
    (5, "2024-04-01", 0.30, False, None),          # after the outcome
]


def tiny() -> tuple[pd.DataFrame, np.ndarray, np.ndarray, pd.Series]:
    keys = pd.DataFrame({"subject_id": np.array([r[0] for r in TINY], dtype=np.int64),
                         "prediction_time": pd.to_datetime([r[1] for r in TINY]).astype("datetime64[us]")})
    p = np.array([r[2] for r in TINY])
    y = np.array([r[3] for r in TINY])
    outcome = pd.Series(pd.to_datetime([r[4] for r in TINY])).astype("datetime64[us]")
    return keys, y, p, outcome


def test_the_tiny_frame_by_hand():
    """Highest risk before the first outcome: A 0.4, B 0.6, C 0.7, D 0.45, E 0.9; outcomes A, C, E.
    AUROC: of the 6 (outcome, no outcome) pairs, C and E rank above B and D, A below both: 4/6.
    The old figure (highest risk over every row: A 0.9, C 0.95) ranked every pair right: 1.0.
    At 0.5: B, C, E alerted, C and E with an outcome: PPV 2/3, sensitivity 2/3, 3 of 5 alerted.
    AUPRC: ranked E, C (outcomes), B, D, A (outcome): precisions 1, 1, 3/5 -> 2.6/3.
    Lead: C's first true alert 1 January, outcome 15 February (45 days); E's 1 January, 20 March
    (79 days): median 62 days (the old row-level median of 14, 19, 45, 47, 50, 79 was 46)."""
    keys, y, p, outcome = tiny()
    metrics = evaluate_test(keys, y, p, THRESHOLD, outcome_time=outcome, bootstrap_samples=10)
    assert metrics["test_customers"] == 5
    assert metrics["test_customer_auroc"] == pytest.approx(4 / 6)
    assert metrics["test_customer_auprc"] == pytest.approx(2.6 / 3)
    assert metrics["test_customer_ppv"] == pytest.approx(2 / 3)
    assert metrics["test_customer_sensitivity"] == pytest.approx(2 / 3)
    assert metrics["test_customer_alert_rate"] == pytest.approx(3 / 5)
    assert metrics["test_customer_lead_days"] == pytest.approx((45 + 79) / 2)
    # row-level figures still judge every row on its own label window
    assert metrics["test_rows"] == len(TINY) and metrics["test_auroc"] == pytest.approx(roc_auc_score(y, p))
    kept = before_first_outcome(keys, y, outcome)
    assert [r[1] for r, k in zip(TINY, kept) if not k and r[0] in (1, 3, 5)] == [
        "2024-04-01", "2024-05-01", "2024-03-01", "2024-04-01"]


def test_without_outcome_times_the_first_positive_row_is_the_last_kept():
    """A table without outcome times: the outcome comes after the first positive row, so that row
    and the ones before it are surely before it (E's 0.85 and 0.9 are dropped: unknowable)."""
    keys, y, p, _ = tiny()
    customers = customer_level(keys, y, p, None)
    assert customers["p"].to_dict() == {1: 0.2, 2: 0.6, 3: 0.7, 4: 0.45, 5: 0.8}
    assert customers["y"].to_dict() == {1: True, 2: False, 3: True, 4: False, 5: True}


def random_period(seed: int, customers: int = 120, months: int = 8) -> pd.DataFrame:
    """Monthly rows with labels made as features/labels.py makes them: each customer has 0 to 3
    outcome events at random hours; a row is positive when one falls in (t, t + 90 days], and its
    outcome time is the first such. Risk rises after an outcome, as a real score's does."""
    rng = np.random.default_rng(seed)
    start = T("2024-01-01")
    rows = []
    for subject in rng.permutation(np.arange(1, customers + 1) * 7):
        events = np.sort(start + pd.to_timedelta(rng.uniform(0, 30 * (months + 3), rng.integers(0, 4)), unit="D").floor("h"))
        base = rng.uniform(0, 0.6)
        for month in range(months):
            t = start + pd.DateOffset(months=month)
            ahead = [e for e in events if t < e <= t + pd.Timedelta(days=90)]
            after = sum(e <= t for e in events)
            rows.append({"subject_id": int(subject), "prediction_time": t, "y": bool(ahead),
                         "outcome_time": ahead[0] if ahead else NAT,
                         "p": min(0.99, base + 0.3 * after + rng.uniform(0, 0.2))})
    frame = pd.DataFrame(rows).sample(frac=1, random_state=seed).reset_index(drop=True)  # order must not matter
    frame["prediction_time"] = frame["prediction_time"].astype("datetime64[us]")
    frame["outcome_time"] = frame["outcome_time"].astype("datetime64[us]")
    return frame


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_customer_figures_equal_the_naive_loop(seed):
    rows = random_period(seed)
    expected = naive_customer_figures(rows, THRESHOLD)
    metrics = evaluate_test(rows[["subject_id", "prediction_time"]], rows["y"].to_numpy(), rows["p"].to_numpy(), THRESHOLD,
                            outcome_time=rows["outcome_time"], bootstrap_samples=10)
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, rel=1e-12), key
    # and the rows after outcomes matter here: the old maximum over every row is another figure
    old = rows.groupby("subject_id").agg(y=("y", "max"), p=("p", "max"))
    assert roc_auc_score(old["y"], old["p"]) > metrics["test_customer_auroc"] + 0.02


def test_the_customer_auroc_interval_resamples_customers_not_rows():
    """Adding rows that change no customer's highest risk leaves the per-customer interval as it
    was (a bootstrap over rows would move it); and the interval holds the figure."""
    rng = np.random.default_rng(5)
    n = 400
    risk = rng.random(n)
    outcome_customer = rng.random(n) < 0.1 + 0.5 * risk
    keys = pd.DataFrame({"subject_id": np.arange(n) + 1, "prediction_time": pd.Timestamp("2025-01-01")})
    metrics = evaluate_test(keys, outcome_customer, risk, 0.5, bootstrap_samples=200, seed=3)
    low, high = metrics["test_customer_auroc_ci_low"], metrics["test_customer_auroc_ci_high"]
    assert low < metrics["test_customer_auroc"] < high and high - low < 0.2
    extra = keys.assign(prediction_time=pd.Timestamp("2024-12-01"))  # earlier, lower scores, no outcome yet
    more = evaluate_test(pd.concat([keys, extra], ignore_index=True), np.r_[outcome_customer, np.zeros(n, bool)],
                         np.r_[risk, risk / 2], 0.5, bootstrap_samples=200, seed=3)
    assert more["test_customer_auroc"] == metrics["test_customer_auroc"]
    assert (more["test_customer_auroc_ci_low"], more["test_customer_auroc_ci_high"]) == (low, high)
