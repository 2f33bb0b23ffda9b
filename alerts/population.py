"""The population run: every customer, every problem whose cohort holds them, at one index date.

This is the nightly/monthly job behind `sote-risk run --as-of DATE`. It scores on the one scoring
path (scoring/path.py) that the service uses, with the same objects (scoring/backend.py
`Backend`: the champions and the histories held in memory), for everyone at once: one pass over
every customer's timeline gives the cohorts and each segment's feature rows, then one predict per
problem.

Every score is recorded, per problem. Then every problem's rules run together in one alert
cycle (alerts/cycle.py), so a customer whose scores alert in several problems gets ONE card
naming each of them, highest risk first, with one cool-down and one place in the municipality's
capacity. Only the scores a card names are explained (SHAP is the expensive part and a card is
the only reader), in one batch per problem through run_alert_cycle's `prepare_cards` hook.

Cards are in the CRM's language (SOTE_RISK_CRM_LANGUAGE) and link the customer's clinician page
on the service's public address (SOTE_RISK_PUBLIC_URL, never a process's own port), signed with
the home's link secret so a browser opens it without a key for SOTE_RISK_LINK_DAYS days
(base/links.py); each problem's FHIR RiskAssessment rides in the card's extension.

Two halves: `score_population` (the scores of everyone one process holds) and
`record_population` (the alert cycle: scores, cards, their reasons). `sote-risk run --engine
spark` scores shards of many regions on Spark (scaleout/scoring.py: the same scoring path, inside
the tasks) and hands each region's scores to the same `record_population`, so there is one
recording of scores and cards whichever engine scored.

Re-running the same date is safe: scores are keyed on (subject_id, problem, as_of) and cards on
(subject_id, as_of), so the scores are found already recorded, nothing is written and no card
is raised twice.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time as clock
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from alerts.cards import CardInput, ProblemRisk, build_card
from alerts.cycle import RunInfo, run_alert_cycle
from alerts.fhir import risk_assessment
from alerts.policy import AlertPolicy
from base.errors import SoteRiskError
from base.links import sign
from explain.reasons import Reason
from scoring import path
from scoring.backend import Backend
from scoring.champions import Champion
from scoring.history import HistoryStore
from vocabulary import Language, vocabulary

Progress = Callable[[str, int], None]  # (what is happening, steps completed) for a progress bar
TOP_REASONS = 5
DAY_SECONDS = 86_400
# The capacity of a threshold: a probability can reach 1.0 exactly, a policy threshold may not.
THRESHOLD_RANGE = (1e-6, 1.0 - 1e-9)
SCORED_COLUMNS = ["subject_id", "problem", "probability", "municipality"]  # PopulationScores.scores


class PopulationError(SoteRiskError):
    """The population run cannot go ahead: says which problem or input, and why."""


@dataclass(frozen=True)
class Links:
    """How a card's reader finds more, and in which language the card speaks: the customer's
    clinician page on the service's public address, signed with the home's link secret so a
    browser opens it without a key until `days` from when the card is made."""

    public_url: str
    secret: bytes = field(repr=False)
    language: Language = "fi"
    days: int = 14

    def __post_init__(self) -> None:
        if not self.public_url.startswith(("http://", "https://")):
            raise PopulationError(f"public URL {self.public_url!r}: must be the http(s) address browsers reach the service at")
        if self.language not in ("fi", "en"):
            raise PopulationError(f"card language {self.language!r}: must be fi or en")

    @classmethod
    def from_settings(cls, public_url: str | None = None) -> "Links":
        """SOTE_RISK_PUBLIC_URL (or the given address), SOTE_RISK_CRM_LANGUAGE, SOTE_RISK_LINK_DAYS
        and the home's link secret (created on first use)."""
        from base.links import link_secret
        from base.settings import settings

        s = settings()
        return cls(public_url or s.public_url, link_secret(s.layout.link_secret), s.crm_language, s.link_days)

    def page(self, subject_id: int, as_of: pd.Timestamp, *, now: float | None = None) -> str:
        """The signed address of the customer's page at as_of, in the card's language."""
        local = f"/ui/customers/{int(subject_id)}?as_of={as_of.date().isoformat()}&lang={self.language}"
        expires = int(clock.time() if now is None else now) + self.days * DAY_SECONDS
        return self.public_url.rstrip("/") + sign(local, self.secret, expires_at=expires)


@dataclass(frozen=True)
class ProblemRun:
    problem: str
    model_version: str
    eligible: int  # customers in the problem's cohort and eligible at as_of
    scores_written: int
    already_recorded: int  # scores of an earlier run of the same date (re-run: all of them)
    alerts_sent: int  # new cards released today that name this problem
    alerts_queued: int  # new cards waiting for capacity that name this problem
    explained: int  # customers whose SHAP contributions were computed (= named on new cards)
    threshold: float | None
    gate: str = "passed"  # the champion's promotion record: passed, forced, unchecked
    held: int = 0  # alerts not raised because the model was forced past its gates (no --allow-forced)


@dataclass(frozen=True)
class PopulationResult:
    as_of: pd.Timestamp
    run_id: str
    customers: int  # everyone in the data
    scored: int  # distinct customers with at least one score this run (new or already recorded)
    cards_sent: int = 0  # new cards released today: one per customer
    cards_queued: int = 0  # new cards waiting for capacity
    problems: list[ProblemRun] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # per stage

    @property
    def alerts(self) -> int:
        """New cards (= customers alerted by this run)."""
        return self.cards_sent + self.cards_queued


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


# (problem, subject ids) -> each subject's reasons for that problem, in the order asked
Explainer = Callable[[str, Sequence[int]], list[list[Reason]]]


@dataclass(frozen=True, eq=False)
class PopulationScores:
    """What scoring hands the recording: everyone's probabilities at one index time.

    The pandas engine makes one from a held region (`score_population`), the Spark engine one per
    region from the rows its shards send back (scaleout/scoring.py); `record_population` takes
    either, so the scores, cards and their reasons are recorded by one piece of code."""

    time: pd.Timestamp
    customers: int  # everyone in the data
    champions: Mapping[str, Champion]  # every served problem, also those that scored nobody
    scores: pd.DataFrame  # subject_id, problem, probability, municipality: one row per eligible pair
    explain: Explainer  # the reasons of the rows a card names (asked once per problem and batch)
    seconds: dict[str, float] = field(default_factory=dict)  # the scoring's own stages


class _Cards:
    """Cards of one run: the scores a card names are explained in one batch per problem when the
    cards are known; a card then gathers its problems' risks, reasons and FHIR resources."""

    def __init__(self, champions: Mapping[str, Champion], explain: Explainer, links: Links, time: pd.Timestamp) -> None:
        self.champions, self.explain, self.links, self.time = champions, explain, links, time
        self.reasons: dict[tuple[str, int], list] = {}

    def prepare(self, named: pd.DataFrame) -> None:
        for problem, part in named.groupby("problem", sort=True):
            subjects = [int(s) for s in part["subject_id"] if (str(problem), int(s)) not in self.reasons]
            if not subjects:
                continue
            for subject, reasons in zip(subjects, self.explain(str(problem), subjects), strict=True):
                self.reasons[str(problem), subject] = reasons

    def card(self, named: pd.DataFrame) -> dict[str, Any]:
        """The card of one customer from the decision rows it names (run_alert_cycle's card_for)."""
        self.prepare(named)  # a no-op for rows run_alert_cycle already had explained
        subject = int(named["subject_id"].iloc[0])
        lang = self.links.language
        risks = []
        for r in named.itertuples():
            champion = self.champions[r.problem]
            reasons = self.reasons[r.problem, subject]
            fhir = risk_assessment(
                subject_id=subject, problem=r.problem, time=self.time,
                outcome_label=vocabulary().problem_label(r.problem, lang), horizon_days=champion.horizon_days,
                probability=float(r.probability), band=str(r.band), model_version=champion.version,
                pipeline_version=champion.model.pipeline_version, reasons=reasons, lang=lang, gate=champion.gate,
            )
            risks.append(ProblemRisk(problem=r.problem, probability=float(r.probability), band=str(r.band),
                                     model_version=champion.version, reasons=reasons, fhir=fhir, gate=champion.gate))
        return build_card(CardInput(subject_id=subject, as_of=self.time, risks=risks,
                                    page_url=self.links.page(subject, self.time)), language=lang)


def policies_for(champions: Mapping[str, Champion]) -> dict[str, AlertPolicy]:
    """Every problem's alert policy (alert_policy_for), all checked before any work."""
    return {p: alert_policy_for(c) for p, c in champions.items()}


def run_population(
    backend: Backend,
    conn: sqlite3.Connection,
    as_of: dt.date,
    *,
    links: Links | None = None,
    today: dt.date | None = None,
    run_id: str | None = None,
    top_k: int = TOP_REASONS,
    progress: Progress | None = None,
    workers: int = 1,
    allow_forced: bool = False,
) -> PopulationResult:
    """Score everyone at `as_of` (00:00), record every score, raise one card per alerted customer
    and explain what the cards name, per the problems' policies.

    links: the cards' page links and language (default: from the settings, Links.from_settings).
    allow_forced: raise cards from models forced past their gates too (default: their scores are
        recorded, their alerts held, and the result says how many).
    as_of outside the data raises a one-line error (nothing is written); so does a problem
    without a usable alert policy (checked for every problem before any work).
    """
    tick = progress or (lambda what, n: None)
    time = backend.history.resolve_time(as_of)
    policies = policies_for(backend.champions)
    links = links or Links.from_settings()
    scored = score_population(backend.history, backend.champions, time, top_k=top_k, workers=workers)
    tick(f"{scored.customers:,} customers scored", 1)
    return record_population(conn, scored, policies=policies, links=links, today=today, run_id=run_id,
                             progress=progress, allow_forced=allow_forced)


def score_population(store: HistoryStore, champions: Mapping[str, Champion], time: pd.Timestamp, *,
                     top_k: int = TOP_REASONS, workers: int = 1) -> PopulationScores:
    """Everyone the store holds (a region, or a shard of one) at `time` on the one scoring path
    (scoring/path.py); reasons are computed when asked (PopulationScores.explain), for the rows a
    card names."""
    started = clock.perf_counter()
    ids = store.ids()
    municipality = store.customers["municipality"].astype(str).to_numpy()
    scored = path.score_pairs(store.history, ids, np.full(len(ids), np.datetime64(time, "us")), champions, workers=workers)
    frames = [pd.DataFrame({"subject_id": ids[rows.positions].astype("int64"), "problem": problem,
                            "probability": rows.probabilities, "municipality": municipality[rows.positions]})
              for problem, rows in scored.problems.items()]
    row_of = {p: {int(ids[pos]): i for i, pos in enumerate(rows.positions)} for p, rows in scored.problems.items()}

    def explain(problem: str, subjects: Sequence[int]) -> list[list[Reason]]:
        rows = scored.problems[problem]
        which = [row_of[problem][int(s)] for s in subjects]
        return [path.reasons(rows, row, values, top_k) for row, values in zip(which, path.contributions(rows, which))]

    scores = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SCORED_COLUMNS)
    return PopulationScores(time=time, customers=len(ids), champions=champions, scores=scores, explain=explain,
                            seconds={"cohorts, features and probabilities": clock.perf_counter() - started})


def record_population(
    conn: sqlite3.Connection,
    scored: PopulationScores,
    *,
    policies: Mapping[str, AlertPolicy] | None = None,
    links: Links | None = None,
    today: dt.date | None = None,
    run_id: str | None = None,
    progress: Progress | None = None,
    allow_forced: bool = False,
) -> PopulationResult:
    """Record every score of one index time and raise one card per alerted customer (one alert
    cycle, one transaction): what `run` does after scoring, whichever engine scored. The cards'
    reasons come from scored.explain, asked only for the rows a new card names."""
    tick = progress or (lambda what, n: None)
    run_id = run_id or f"population-{scored.time.date().isoformat()}-{uuid.uuid4().hex[:8]}"
    today = today or dt.date.today()
    policies = dict(policies) if policies is not None else policies_for(scored.champions)
    links = links or Links.from_settings()
    seconds = dict(scored.seconds)

    started = clock.perf_counter()
    scores = scored.scores.assign(as_of=scored.time).loc[:, ["subject_id", "problem", "as_of", "probability", "municipality"]]
    runs = {problem: RunInfo(model_version=c.version, pipeline_version=c.model.pipeline_version, run_id=run_id)
            for problem, c in scored.champions.items()}
    cards = _Cards(scored.champions, scored.explain, links, scored.time)
    held = [p for p, c in scored.champions.items() if c.gate.status == "forced" and not allow_forced]
    cycle = run_alert_cycle(conn, scores, policies, runs, cards.card, today=today, prepare_cards=cards.prepare, held=held)
    seconds["alerts and cards"] = clock.perf_counter() - started

    results = []
    decisions = cycle.decisions
    eligible = scores["problem"].value_counts()
    for problem, champion in scored.champions.items():
        mine = decisions.loc[decisions["problem"] == problem] if len(decisions) else decisions
        on_card = mine.loc[mine["card"] >= 0] if len(mine) else mine
        released = int(on_card["released"].sum()) if len(on_card) else 0
        rows = int(eligible.get(problem, 0))
        results.append(ProblemRun(
            problem=problem, model_version=champion.version, eligible=rows,
            scores_written=len(mine), already_recorded=rows - len(mine),
            alerts_sent=released, alerts_queued=len(on_card) - released,
            explained=sum(1 for p, _ in cards.reasons if p == problem), threshold=policies[problem].threshold,
            gate=champion.gate.status, held=int((mine["decision"] == "held").sum()) if len(mine) else 0,
        ))
    tick(f"{cycle.alerts_sent + cycle.alerts_queued:,} new cards, one per customer "
         f"({cycle.alerts_queued:,} waiting for capacity)", 1)
    return PopulationResult(as_of=scored.time, run_id=run_id, customers=scored.customers,
                            scored=int(scores["subject_id"].nunique()),
                            cards_sent=cycle.alerts_sent, cards_queued=cycle.alerts_queued,
                            problems=sorted(results, key=lambda r: r.problem), seconds=seconds)


def steps(backend: Backend) -> int:
    """How many progress steps run_population reports (for a progress bar's total): scoring, then
    the alert cycle with its cards."""
    return 2


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
