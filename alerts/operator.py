"""Operator alerts from monitoring: a monitored model that breached its thresholds
(training/monitoring.py) raises one alert to the operators through the outbox
(outbox.operator_alerts), delivered by the dispatcher to SOTE_RISK_OPERATOR_WEBHOOK_URL.

One alert per newest breached month of a model version under an alias: the alert's id is made of
the problem, alias, version and that month, so a monthly run that finds nothing new (the same
breach seen again, a re-run of the same date) raises nothing, and a new breached month raises a
new alert listing the run's breaches. A region of a multi-region features folder is monitored on
its own (scaleout/monitoring.py): its name joins the id and the payload, so a breach in two
regions raises two alerts, each naming its region (the home's one region keeps the id it had).
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from alerts import outbox

KIND = "monitor_breach"


def breach_payload(report: Any, alias: str, run_id: str) -> dict[str, Any]:  # report: training.monitoring.MonitorReport
    region = report.region
    return {
        "type": KIND, "problem": report.problem, **({"region": region} if region else {}), "alias": alias,
        "model_version": report.model_version, "as_of": f"{report.as_of:%Y-%m-%d}",
        "breached_months": len(report.breaches), "latest_breach": report.breaches[-1] if report.breaches else "",
        "breaches": report.breaches[-12:], "run_id": run_id,
        "page": f"/ui/monitoring/{report.problem}?lang=en&alias={alias}" + (f"&region={region}" if region else ""),
    }


def raise_breach_alert(conn: sqlite3.Connection, report: Any, alias: str, run_id: str,
                       now: float | None = None) -> tuple[str, bool] | None:
    """Queue the operator alert of a monitoring report with breaches; None when it has none.
    Returns (alert id, whether it is new)."""
    if not report.breaches:
        return None
    newest = report.breaches[-1].split(":", 1)[0]  # 'YYYY-MM'
    region = report.region
    return outbox.record_operator_alert(
        conn, kind=KIND, problem=report.problem, as_of=f"{report.as_of:%Y-%m-%d}",
        key=(alias, report.model_version, newest, *((f"region={region}",) if region else ())),
        payload=breach_payload(report, alias, run_id),
        now=time.time() if now is None else now)
