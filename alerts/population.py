"""The population run: every customer, every problem whose cohort holds them, at one index date.

This is the nightly/monthly job behind `sote-risk run --as-of DATE`. It scores on the one scoring
path (scoring/path.py) that the service uses, with the same objects (scoring/backend.py
`Backend`: the champions and the histories held in memory), for everyone at once: one pass over
every customer's timeline gives the cohorts and each segment's feature rows, then one predict per
problem.

Every score is recorded; only the scores that become alerts are explained (SHAP is the expensive
part and a card is the only reader), in one batch per problem through run_alert_cycle's
`prepare_cards` hook. Cards carry a link to the clinician page and the FHIR RiskAssessment.

Re-running the same date is safe: the outbox is keyed on (subject_id, problem, as_of), so the
scores are found already recorded, nothing is written and no alert is raised twice.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time as clock
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from alerts.cards import CardInput, build_card
from alerts.cycle import RunInfo, run_alert_cycle
from alerts.fhir import risk_assessment
from alerts.policy import AlertPolicy
from base.errors import SoteRiskError
from explain.chains import suggest_chains
from scoring import path
from scoring.backend import Backend
from scoring.champions import Champion
from scoring.path import ProblemRows
from vocabulary import vocabulary

Progress = Callable[[str, int], None]  # (what is happening, steps completed) for a progress bar
TOP_REASONS = 5
# The capacity of a threshold: a probability can reach 1.0 exactly, a policy threshold may not.
THRESHOLD_RANGE = (1e-6, 1.0 - 1e-9)


class PopulationError(SoteRiskError):
    """The population run cannot go ahead: says which problem or input, and why."""


@dataclass(frozen=True)
class Links:
    """Where a card's reader finds more: the service's clinician page (and language)."""

    service_url: str = "http://127.0.0.1:3000"
    language: str = "fi"

    def page(self, subject_id: int, as_of: pd.Timestamp) -> str:
        return f"{self.service_url.rstrip('/')}/ui/customers/{int(subject_id)}?as_of={as_of.date().isoformat()}&lang={self.language}"


@dataclass(frozen=True)
class ProblemRun:
    problem: str
    model_version: str
    eligible: int  # customers in the problem's cohort and eligible at as_of
    scores_written: int
    already_recorded: int  # scores of an earlier run of the same date (re-run: all of them)
    alerts_sent: int
    alerts_queued: int
    explained: int  # customers whose SHAP contributions were computed (= new alerts)
    threshold: float | None


@dataclass(frozen=True)
class PopulationResult:
    as_of: pd.Timestamp
    run_id: str
    customers: int  # everyone in the data
    scored: int  # distinct customers with at least one score this run (new or already recorded)
    problems: list[ProblemRun] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # per stage

    @property
    def alerts(self) -> int:
        return sum(p.alerts_sent + p.alerts_queued for p in self.problems)


def alert_policy_for(champion: Champion) -> AlertPolicy:
    """The serving AlertPolicy of a problem, from the `alert_policy` of the experiment spec that
    travels with the model. Fields the serving policy knows (threshold, min_band, cooldown_days,
    capacity...) are taken as given; a spec that states only a budget (alerts per 1,000 per
    month, or a target PPV) gets the threshold training chose on validation for that budget
    (model.metadata['threshold']), so the run alerts at the rate the model card reports."""
    given = dict((champion.model.spec or {}).get("alert_policy") or {})
    values: dict[str, Any] = {k: v for k, v in given.items() if k in AlertPolicy.model_fields}
    values.setdefault("bands", champion.bands.model_dump())
    if values.get("threshold") is None and values.get("min_band") is None and not values.get("alert_on_band_rise"):
        threshold = champion.model.metadata.get("threshold")
        if threshold is None:
            raise PopulationError(
                f"{champion.problem}: no alert threshold: the spec's alert_policy sets none and model "
                f"version {champion.version} carries none; retrain it"
            )
        values["threshold"] = float(np.clip(float(threshold), *THRESHOLD_RANGE))
    try:
        return AlertPolicy.model_validate(values)
    except ValueError as error:
        raise PopulationError(f"{champion.problem}: alert_policy: {str(error).splitlines()[0]}") from None


class _Cards:
    """Cards of one problem's alerts: explained in one batch when the alerts are known."""

    def __init__(self, rows: ProblemRows, ids: np.ndarray, links: Links, time: pd.Timestamp, top_k: int) -> None:
        self.rows, self.links, self.time, self.top_k = rows, links, time, top_k
        self.row_of = {int(s): i for i, s in enumerate(ids)}
        self.reasons: dict[int, list] = {}

    def prepare(self, alerted: pd.DataFrame) -> None:
        subjects = [int(s) for s in alerted["subject_id"]]
        which = [self.row_of[s] for s in subjects]
        for subject, row, values in zip(subjects, which, path.contributions(self.rows, which)):
            self.reasons[subject] = path.reasons(self.rows, row, values, self.top_k)

    def card(self, row: pd.Series) -> dict[str, Any]:
        subject = int(row["subject_id"])
        if subject not in self.reasons:  # called without prepare (not by run_alert_cycle)
            self.prepare(pd.DataFrame({"subject_id": [subject]}))
        reasons = self.reasons[subject]
        c = self.rows.champion
        fhir = risk_assessment(
            subject_id=subject, problem=c.problem, time=self.time,
            outcome_label=vocabulary().problem_label(c.problem, "en"), horizon_days=c.horizon_days,
            probability=float(row["probability"]), band=str(row["band"]), model_version=c.version,
            pipeline_version=c.model.pipeline_version, reasons=reasons,
        )
        return build_card(CardInput(
            subject_id=subject, problem=c.problem, as_of=self.time, probability=float(row["probability"]),
            band=str(row["band"]), model_version=c.version, reasons=reasons,
            suggestions=[s.model_dump(include={"chain", "label_en", "label_fi"}) for s in suggest_chains(reasons)],
            page_url=self.links.page(subject, self.time), fhir=fhir,
        ))


def run_population(
    backend: Backend,
    conn: sqlite3.Connection,
    as_of: dt.date,
    *,
    links: Links = Links(),
    today: dt.date | None = None,
    run_id: str | None = None,
    top_k: int = TOP_REASONS,
    progress: Progress | None = None,
    workers: int = 1,
) -> PopulationResult:
    """Score everyone at `as_of` (00:00), record every score, alert and explain per policy.

    as_of outside the data raises a one-line error (nothing is written); so does a problem
    without a usable alert policy (checked for every problem before any work).
    """
    tick = progress or (lambda what, n: None)
    run_id = run_id or f"population-{as_of.isoformat()}-{uuid.uuid4().hex[:8]}"
    today = today or dt.date.today()
    store = backend.history
    time = store.resolve_time(as_of)
    policies = {p: alert_policy_for(c) for p, c in backend.champions.items()}
    seconds: dict[str, float] = {}

    started = clock.perf_counter()
    ids = store.ids()
    municipality = store.customers["municipality"].astype(str).to_numpy()
    scored = path.score_pairs(store.history, ids, np.full(len(ids), np.datetime64(time, "us")), backend.champions,
                              workers=workers)
    seconds["cohorts, features and probabilities"] = clock.perf_counter() - started
    tick(f"{len(ids):,} customers scored", 1)

    results, scored_any = [], np.zeros(len(ids), dtype=bool)
    for problem, rows in scored.problems.items():
        started = clock.perf_counter()
        champion = rows.champion
        scored_any[rows.positions] = True
        scores = pd.DataFrame({
            "subject_id": ids[rows.positions], "problem": problem, "as_of": time,
            "probability": rows.probabilities, "municipality": municipality[rows.positions],
        })
        cards = _Cards(rows, ids[rows.positions], links, time, top_k)
        cycle = run_alert_cycle(
            conn, scores, policies[problem],
            RunInfo(model_version=champion.version, pipeline_version=champion.model.pipeline_version, run_id=run_id),
            cards.card, today=today, prepare_cards=cards.prepare,
        )
        results.append(ProblemRun(
            problem=problem, model_version=champion.version, eligible=len(rows),
            scores_written=cycle.scores_written, already_recorded=cycle.already_recorded,
            alerts_sent=cycle.alerts_sent, alerts_queued=cycle.alerts_queued, explained=len(cards.reasons),
            threshold=policies[problem].threshold,
        ))
        seconds[f"alerts {problem}"] = clock.perf_counter() - started
        tick(f"{problem}: {len(rows):,} scored, {cycle.alerts_sent + cycle.alerts_queued:,} new alerts", 1)
    return PopulationResult(as_of=time, run_id=run_id, customers=len(ids), scored=int(scored_any.sum()),
                            problems=sorted(results, key=lambda r: r.problem), seconds=seconds)


def steps(backend: Backend) -> int:
    """How many progress steps run_population reports (for a progress bar's total)."""
    return 1 + len(backend.champions)


def deliver(conn: sqlite3.Connection, config: Any, *, max_passes: int = 100) -> dict[str, int]:
    """Dispatch what is due now until a pass delivers nothing (failures stay pending with their
    backoff, for `sote-risk alerts dispatch`). Bounded: at most max_passes passes."""
    import httpx

    from alerts.dispatcher import DispatchCounts, run_once  # noqa: I001 (httpx only when delivering)

    total = DispatchCounts()
    with httpx.Client(timeout=config.request_timeout_s) as client:
        for _ in range(max_passes):
            counts = run_once(conn, config, client=client)
            for key, value in counts.as_dict().items():
                setattr(total, key, getattr(total, key) + value)
            if not (counts.delivered or counts.released):
                break
    return total.as_dict()
