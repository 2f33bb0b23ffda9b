"""One alert cycle: new scores of one problem -> rules -> outbox, in a single transaction.

This is the I/O edge around the pure rules (alerts/rules.py). The population run and
the scoring service call `run_alert_cycle`; the dispatcher calls `release_waiting` each pass so
alerts waiting for capacity go out on a later day even when no new scores come.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from alerts import outbox
from alerts.policy import AlertPolicy
from alerts.rules import allocate_capacity, decide_alerts, stale_queue


@dataclass(frozen=True)
class RunInfo:
    """Which model and feature pipeline produced the scores, and which run wrote them."""

    model_version: str
    pipeline_version: str
    run_id: str


@dataclass(frozen=True)
class CycleResult:
    scores_written: int
    already_recorded: int  # scores skipped because the same (customer, problem, as_of) exists
    alerts_sent: int  # new alerts released today (status pending)
    alerts_queued: int  # new alerts over today's budget (status queued)
    queue_released: int  # earlier waiting alerts released today
    queue_dropped: int  # earlier waiting alerts superseded or expired
    decisions: pd.DataFrame  # one row per new score: band, trigger, decision, released


CardFor = Callable[[pd.Series], dict[str, Any]]


def run_alert_cycle(
    conn: sqlite3.Connection,
    scores: pd.DataFrame,
    policy: AlertPolicy,
    run: RunInfo,
    card_for: CardFor,
    *,
    today: date,
    now: float | None = None,
    prepare_cards: Callable[[pd.DataFrame], None] | None = None,
) -> CycleResult:
    """Record new scores of one problem and the alerts the policy raises, atomically.

    scores: subject_id, problem, as_of, probability, municipality [, in_outcome_state]; one
        row per customer (record several index dates as separate calls, oldest first).
    card_for: builds the webhook body of one alerted row (a decision row with subject_id,
        problem, as_of, probability, band, trigger, municipality); called only for alerts,
        inside the transaction, so keep it fast. Its `uuid` must be the alert id.
    today: the region's calendar day the capacity budget is counted on.
    prepare_cards: called once with all alert rows before card_for is called on each, so a
        caller can explain the alerted customers in one batch (SHAP costs per call, not per row).
    A re-run with the same scores writes nothing and raises no alert twice.
    """
    now = time.time() if now is None else now
    if scores.empty:
        return CycleResult(0, 0, 0, 0, 0, 0, scores.copy())
    problems = scores["problem"].unique()
    if len(problems) != 1:
        raise ValueError("scores: one problem per alert cycle (each problem has its own policy)")
    problem = str(problems[0])
    if scores["subject_id"].duplicated().any():
        raise ValueError("scores: one row per customer per cycle; record index dates as separate calls")

    frame = scores.copy()
    frame["as_of_key"] = [outbox.as_of_key(t) for t in frame["as_of"]]
    with outbox.write_transaction(conn):
        keys = list(zip(frame["subject_id"].astype("int64"), frame["as_of_key"]))
        seen = outbox.existing_score_keys(conn, problem, keys)
        fresh_mask = [(int(s), a) not in seen for s, a in keys]
        fresh = frame.loc[fresh_mask].reset_index(drop=True)
        state = pd.DataFrame(
            outbox.previous_state(conn, problem, list(zip(fresh["subject_id"].astype("int64"), fresh["as_of_key"]))),
            columns=["subject_id", "problem", "last_band", "last_alert_as_of", "last_alert_band"],
        )
        decisions = decide_alerts(fresh, state, policy)
        candidates = decisions.loc[decisions["decision"] == "alert"]
        released_ids, released_new, dropped = _settle_queue(conn, problem, policy, candidates, fresh, today=today, now=now)
        decisions["released"] = decisions.index.isin(released_new)

        score_records = [
            outbox.ScoreRecord(
                subject_id=int(r.subject_id), problem=problem, as_of=r.as_of, probability=float(r.probability),
                band=r.band, model_version=run.model_version, pipeline_version=run.pipeline_version,
                run_id=run.run_id, municipality=r.municipality,
            )
            for r in decisions.itertuples()
        ]
        alert_records = []
        alerted = decisions.loc[decisions["decision"] == "alert"]
        if prepare_cards is not None and not alerted.empty:
            prepare_cards(alerted)
        for index, row in alerted.iterrows():
            alert_id = outbox.alert_id_for(row["subject_id"], problem, row["as_of"])
            payload = card_for(row)
            if payload.get("uuid") != alert_id:
                raise ValueError("card_for: the card's uuid must be the alert id (alerts.outbox.alert_id_for)")
            alert_records.append(
                outbox.AlertRecord(
                    subject_id=int(row["subject_id"]), problem=problem, as_of=row["as_of"],
                    probability=float(row["probability"]), band=row["band"], payload=payload,
                    municipality=row["municipality"], trigger=str(row["trigger"]),
                    status="pending" if index in released_new else "queued",
                )
            )
        written = outbox.record_scores_and_alerts(conn, score_records, alert_records, now=now, today=today)
        outbox.save_policy(conn, problem, policy.model_dump_json())
    sent = int(decisions["released"].sum())
    return CycleResult(
        scores_written=written.scores_written,
        already_recorded=len(frame) - len(fresh),
        alerts_sent=sent,
        alerts_queued=len(alert_records) - sent,
        queue_released=len(released_ids),
        queue_dropped=dropped,
        decisions=decisions.drop(columns=["as_of_key"]),
    )


def release_waiting(conn: sqlite3.Connection, *, today: date, now: float | None = None) -> dict[str, int]:
    """Release waiting alerts that today's budget allows, for every problem with a saved policy.

    Returns {"released": n, "dropped": m}. Safe to call from several dispatchers: it runs in one
    write transaction, and released alerts count against the same day's budget.
    """
    now = time.time() if now is None else now
    released = dropped = 0
    with outbox.write_transaction(conn):
        for problem, policy_json in outbox.saved_policies(conn).items():
            policy = AlertPolicy.model_validate_json(policy_json)
            no_candidates = pd.DataFrame(columns=["subject_id", "problem", "as_of", "probability", "municipality"])
            ids, _, n_dropped = _settle_queue(conn, problem, policy, no_candidates, no_candidates, today=today, now=now)
            released += len(ids)
            dropped += n_dropped
    return {"released": released, "dropped": dropped}


def _settle_queue(
    conn: sqlite3.Connection,
    problem: str,
    policy: AlertPolicy,
    candidates: pd.DataFrame,
    new_scores: pd.DataFrame,
    *,
    today: date,
    now: float,
) -> tuple[list[str], set[Any], int]:
    """Rank today's new candidates with the waiting ones under the budget (caller's transaction).

    Releases the waiting alerts that make the cut and drops stale ones; returns (released
    waiting alert ids, index labels of the new candidates released today, number dropped).
    """
    queued = pd.DataFrame(
        outbox.queued_alerts(conn, problem),
        columns=["alert_id", "subject_id", "problem", "as_of", "municipality", "probability", "queued_on"],
    )
    stale = stale_queue(queued, new_scores, policy, today)
    dropped = outbox.drop_queued(conn, dict(zip(stale["alert_id"], stale["reason"])))
    waiting = queued.loc[~queued["alert_id"].isin(stale["alert_id"])]

    cols = ["subject_id", "as_of", "probability", "municipality"]
    new = candidates.loc[:, cols].assign(source="new", alert_id=None, label=list(candidates.index))
    old = waiting.loc[:, cols].assign(source="queued", alert_id=waiting["alert_id"], label=None)
    pool = pd.concat([frame for frame in (new, old) if not frame.empty], ignore_index=True) if len(new) + len(old) else None
    if pool is None:
        return [], set(), dropped
    pool["as_of"] = pd.to_datetime(pool["as_of"])
    allocation = allocate_capacity(pool, policy.capacity_per_municipality_per_day, outbox.released_today(conn, problem, today))
    go = allocation.loc[allocation["released"]]
    released_ids = [str(a) for a in go.loc[go["source"] == "queued", "alert_id"]]
    outbox.release_queued(conn, released_ids, now=now, today=today)
    released_new = set(go.loc[go["source"] == "new", "label"])
    return released_ids, released_new, dropped
