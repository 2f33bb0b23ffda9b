"""The naive oracle of the per-customer figures (training/customers.py through evaluate_test):
one customer at a time, rows in date order, each customer's risk the highest before their first
outcome, their lead time from their first true alert before it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score


def naive_customer_figures(rows: pd.DataFrame, threshold: float) -> dict[str, float]:
    """`rows`: subject_id, prediction_time, y (bool), p, outcome_time (NaT unless y)."""
    risk, outcome, leads = [], [], []
    for _, own in rows.groupby("subject_id"):
        own = own.sort_values("prediction_time")
        outcomes = own.loc[own["y"], "outcome_time"]
        first = outcomes.min() if len(outcomes) else None
        before = own if first is None else own.loc[own["prediction_time"] < first]
        risk.append(before["p"].max())
        outcome.append(first is not None)
        true_alerts = before.loc[before["y"] & (before["p"] >= threshold)]
        if len(true_alerts):
            alert = true_alerts.iloc[0]
            leads.append((alert["outcome_time"] - alert["prediction_time"]).total_seconds() / 86400)
    risk, outcome = np.array(risk), np.array(outcome)
    alerted = risk >= threshold
    return {
        "test_customer_auroc": roc_auc_score(outcome, risk),
        "test_customer_auprc": average_precision_score(outcome, risk),
        "test_customer_ppv": (alerted & outcome).sum() / alerted.sum() if alerted.any() else float("nan"),
        "test_customer_sensitivity": (alerted & outcome).sum() / outcome.sum(),
        "test_customer_alert_rate": alerted.mean(),
        "test_customer_lead_days": float(np.median(leads)) if leads else float("nan"),
        "test_customers": float(len(risk)),
    }
