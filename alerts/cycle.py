"""One alert cycle: new scores of every problem -> rules -> one card per customer -> outbox, in a
single transaction.

This is the I/O edge around the pure rules (alerts/rules.py). The population run and tests
call `run_alert_cycle`; the dispatcher calls `release_waiting` each pass so cards waiting for
capacity go out on a later day even when no new scores come.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

import pandas as pd

from alerts import outbox
from alerts.policy import AlertPolicy
from alerts.rules import allocate_capacity, card_rows, cards_of, combined_budget, decide_alerts, stale_queue


@dataclass(frozen=True)
class RunInfo:
    """Which model and feature pipeline produced a problem's scores, and which run wrote them."""

    model_version: str
    pipeline_version: str
    run_id: str


@dataclass(frozen=True)
class CycleResult:
    scores_written: int
    already_recorded: int  # scores skipped because the same (customer, problem, as_of) exists
    alerts_sent: int  # new cards released today (status pending), one per customer
    alerts_queued: int  # new cards over today's budget (status queued)
    queue_released: int  # earlier waiting cards released today
    queue_dropped: int  # earlier waiting cards superseded or expired
    # one row per new score: band, trigger, decision, card (row of `cards`, or -1), released
    decisions: pd.DataFrame
    # one row per new card: alert_id, subject_id, as_of, municipality, probability (its
    # highest), n_problems, problems (highest risk first), status
    cards: pd.DataFrame


# Builds the webhook body of one card from the decision rows it names (one customer, one index
# time, highest risk first; columns subject_id, problem, as_of, probability, band, trigger,
# decision, municipality). Its `uuid` must be outbox.card_id(subject_id, as_of).
CardFor = Callable[[pd.DataFrame], dict[str, Any]]
SCORE_COLUMNS = ["subject_id", "problem", "as_of", "probability", "municipality"]
CARD_COLUMNS = ["alert_id", "subject_id", "as_of", "municipality", "probability", "n_problems", "problems", "status"]

T = TypeVar("T")


def run_alert_cycle(
    conn: sqlite3.Connection,
    scores: pd.DataFrame,
    policies: AlertPolicy | Mapping[str, AlertPolicy],
    runs: RunInfo | Mapping[str, RunInfo],
    card_for: CardFor,
    *,
    today: date,
    now: float | None = None,
    prepare_cards: Callable[[pd.DataFrame], None] | None = None,
    held: Collection[str] = (),
) -> CycleResult:
    """Record new scores of any number of problems and the cards the policies raise, atomically.

    scores: subject_id, problem, as_of, probability, municipality [, in_outcome_state]; one row
        per customer and problem, one index time per customer (record index dates as separate
        calls, oldest first).
    policies, runs: per problem (a single AlertPolicy / RunInfo when the scores are of one
        problem). The card budget (capacity per municipality, longest wait) is the tightest the
        policies state (alerts/rules.py combined_budget).
    card_for: builds one card from the rows it names; called only for new cards, inside the
        transaction, so keep it fast.
    today: the region's calendar day the capacity budget is counted on.
    prepare_cards: called once with every row on a new card before card_for is called, so a
        caller can explain them in one batch per problem (SHAP costs per call, not per row).
    held: problems whose scores are recorded but raise no card (a model forced past its gates,
        unless the run is told otherwise): their would-be alerts are decided as "held".
    A re-run with the same scores writes nothing and raises no card twice.
    """
    now = time.time() if now is None else now
    if scores.empty:
        return CycleResult(0, 0, 0, 0, 0, 0, scores.copy(), pd.DataFrame(columns=CARD_COLUMNS))
    problems = sorted(str(p) for p in scores["problem"].unique())
    policy_of = _per_problem(policies, problems, "policies")
    run_of = _per_problem(runs, problems, "runs")
    if scores.duplicated(["subject_id", "problem"]).any():
        raise ValueError("scores: one row per customer and problem per cycle; record index dates as separate calls")
    if (scores.groupby("subject_id")["as_of"].nunique() > 1).any():
        raise ValueError("scores: one index time per customer per cycle; record index dates as separate calls")

    frame = scores.copy()
    frame["as_of_key"] = [outbox.as_of_key(t) for t in frame["as_of"]]
    with outbox.write_transaction(conn):
        keys = list(zip(frame["subject_id"].astype("int64"), frame["problem"].astype(str), frame["as_of_key"]))
        seen = outbox.existing_score_keys(conn, keys)
        fresh = frame.loc[[k not in seen for k in keys]].reset_index(drop=True)
        decisions = _decide(conn, fresh, policy_of)
        holding = decisions["problem"].isin(list(held)) & (decisions["decision"] == "alert")
        decisions.loc[holding, "decision"] = "held"
        alerting = decisions.loc[decisions["decision"] == "alert"]
        already = outbox.carded(conn, sorted(set(zip(alerting["subject_id"].astype("int64"), alerting["as_of_key"]))))
        decisions, cards = cards_of(decisions, already)
        capacity, queue_max_days = combined_budget(policy_of)
        budget = outbox.Budget(capacity, queue_max_days)
        released_ids, released_new, dropped = _settle_queue(conn, budget, cards, fresh, today=today, now=now)
        decisions["released"] = decisions["card"].isin(released_new)

        score_records = [
            outbox.ScoreRecord(
                subject_id=int(r.subject_id), problem=r.problem, as_of=r.as_of, probability=float(r.probability),
                band=r.band, model_version=run_of[r.problem].model_version,
                pipeline_version=run_of[r.problem].pipeline_version, run_id=run_of[r.problem].run_id,
                municipality=r.municipality,
            )
            for r in decisions.itertuples()
        ]
        named = decisions.loc[decisions["card"] >= 0]
        if prepare_cards is not None and not named.empty:
            prepare_cards(named)
        card_records = []
        for number, card in cards.iterrows():
            rows = card_rows(decisions, number)
            payload = card_for(rows.drop(columns=["as_of_key", "card", "released"]))
            expected = outbox.card_id(card["subject_id"], card["as_of"])
            if payload.get("uuid") != expected:
                raise ValueError("card_for: the card's uuid must be the card id (alerts.outbox.card_id)")
            card_records.append(outbox.AlertRecord(
                subject_id=int(card["subject_id"]), as_of=card["as_of"],
                problems=[outbox.CardProblem(problem=r.problem, probability=float(r.probability), band=r.band,
                                             trigger=str(r.trigger), decision=r.decision) for r in rows.itertuples()],
                payload=payload, municipality=card["municipality"],
                status="pending" if number in released_new else "queued",
            ))
        written = outbox.record_scores_and_alerts(conn, score_records, card_records, now=now, today=today)
        for problem in problems:
            outbox.save_policy(conn, problem, policy_of[problem].model_dump_json())
        outbox.save_budget(conn, budget)
    sent = sum(r.status == "pending" for r in card_records)
    return CycleResult(
        scores_written=written.scores_written,
        already_recorded=len(frame) - len(fresh),
        alerts_sent=sent,
        alerts_queued=len(card_records) - sent,
        queue_released=len(released_ids),
        queue_dropped=dropped,
        decisions=decisions.drop(columns=["as_of_key"]),
        cards=pd.DataFrame(
            [{"alert_id": r.alert_id, "subject_id": r.subject_id, "as_of": pd.Timestamp(r.as_of),
              "municipality": r.municipality, "probability": r.lead.probability, "n_problems": len(r.problems),
              "problems": [p.problem for p in r.problems], "status": r.status} for r in card_records],
            columns=CARD_COLUMNS,
        ),
    )


def release_waiting(conn: sqlite3.Connection, *, today: date, now: float | None = None) -> dict[str, int]:
    """Release waiting cards that today's budget allows (the budget the last cycle saved).

    Returns {"released": n, "dropped": m}. Safe to call from several dispatchers: it runs in one
    write transaction, and released cards count against the same day's budget.
    """
    now = time.time() if now is None else now
    with outbox.write_transaction(conn):
        budget = outbox.saved_budget(conn)
        if budget is None:
            return {"released": 0, "dropped": 0}
        no_cards = pd.DataFrame(columns=["subject_id", "as_of", "probability", "municipality"])
        no_scores = pd.DataFrame(columns=SCORE_COLUMNS)
        ids, _, dropped = _settle_queue(conn, budget, no_cards, no_scores, today=today, now=now)
    return {"released": len(ids), "dropped": dropped}


def _per_problem(given: T | Mapping[str, T], problems: list[str], name: str) -> dict[str, T]:
    if not isinstance(given, Mapping):
        if len(problems) != 1:
            raise ValueError(f"{name}: give one per problem (a mapping) when the scores hold several problems")
        return {problems[0]: given}
    missing = [p for p in problems if p not in given]
    if missing:
        raise ValueError(f"{name}: none for problem(s) {', '.join(missing)}")
    return dict(given)


def _decide(conn: sqlite3.Connection, fresh: pd.DataFrame, policy_of: Mapping[str, AlertPolicy]) -> pd.DataFrame:
    """Each problem's rules on its new scores, with the customer-wide state from the outbox."""
    parts = []
    for problem, rows in fresh.groupby("problem", sort=True):
        rows = rows.reset_index(drop=True)
        state = pd.DataFrame(
            outbox.previous_state(conn, str(problem), list(zip(rows["subject_id"].astype("int64"), rows["as_of_key"]))),
            columns=["subject_id", "problem", "last_band", "last_alert_as_of", "last_alert_band"],
        )
        parts.append(decide_alerts(rows, state, policy_of[str(problem)]))
    if not parts:
        return fresh.assign(band=None, previous_band=None, band_rose=False, trigger=None, decision=None,
                            last_alert_as_of=None, in_outcome_state=False)
    return pd.concat(parts, ignore_index=True)


def _settle_queue(
    conn: sqlite3.Connection,
    budget: outbox.Budget,
    cards: pd.DataFrame,
    new_scores: pd.DataFrame,
    *,
    today: date,
    now: float,
) -> tuple[list[str], set[Any], int]:
    """Rank today's new cards with the waiting ones under the budget (caller's transaction).

    Releases the waiting cards that make the cut and drops stale ones; returns (released
    waiting card ids, index labels of the new cards released today, number dropped).
    """
    queued = pd.DataFrame(
        outbox.queued_alerts(conn),
        columns=["alert_id", "subject_id", "as_of", "municipality", "probability", "queued_on"],
    )
    stale = stale_queue(queued, new_scores, budget.queue_max_days, today)
    dropped = outbox.drop_queued(conn, dict(zip(stale["alert_id"], stale["reason"])))
    waiting = queued.loc[~queued["alert_id"].isin(stale["alert_id"])]

    cols = ["subject_id", "as_of", "probability", "municipality"]
    new = cards.loc[:, cols].assign(source="new", alert_id=None, label=list(cards.index))
    old = waiting.loc[:, cols].assign(source="queued", alert_id=waiting["alert_id"], label=None)
    if not len(new) + len(old):
        return [], set(), dropped
    pool = pd.concat([frame for frame in (new, old) if not frame.empty], ignore_index=True)
    pool["as_of"] = pd.to_datetime(pool["as_of"])
    allocation = allocate_capacity(pool, budget.capacity, outbox.released_today(conn, today))
    go = allocation.loc[allocation["released"]]
    released_ids = [str(a) for a in go.loc[go["source"] == "queued", "alert_id"]]
    outbox.release_queued(conn, released_ids, now=now, today=today)
    released_new = set(go.loc[go["source"] == "new", "label"])
    return released_ids, released_new, dropped
