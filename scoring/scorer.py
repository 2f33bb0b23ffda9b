"""Scoring, explaining and trends on top of a Backend: the service's logic without HTTP.

The service (serving/service.py) is a thin BentoML shell over `Scorer`; tests call `Scorer`
directly for parity and additivity, and over HTTP for everything else.

SHAP is computed only where it is read (top_k > 0, /explain, pages) and cached per
(problem, model version, customer, time, data generation); feature rows are cached per
(customer, time, data generation), so a reload never serves stale rows.

Rows travel as numpy (scoring/rows.py FeatureBlock), not pandas: for one customer, frame
construction cost more than features, booster and TreeSHAP together. Several customers' pairs of
one problem go through one predict and one pred_contrib call.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import numpy as np
import pandas as pd

from explain.chains import suggest_chains
from explain.reasons import Explanation, explain_vector, top_reasons_vector
from models.risk_model import FeatureMismatchError
from alerts.policy import band_for
from serving.api_types import (
    BatchItem, ExplainResponse, PredictRowResponse, ProblemRisk, ScoreResponse,
)
from scoring.backend import Backend, Champion, Histories, HistoryStore, Membership
from vocabulary import vocabulary
from scoring.rows import FeatureBlock, InputPlan, input_plan, model_input, row_input
from base.errors import SoteRiskError

T = TypeVar("T")


class ServingError(SoteRiskError):
    """A request the service understood but cannot answer; status and field go to the client."""

    status = 422

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnknownCustomer(ServingError):
    status = 404


class UnknownProblem(ServingError):
    status = 404


class LRU:
    """A small thread-safe LRU (functools.lru_cache cannot be cleared per key or sized per instance)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()  # outside the lock: two threads may compute the same key once each
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def peek(self, key: Hashable) -> Any | None:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@dataclass(frozen=True)
class CustomerRows:
    """One customer at one time: the problems they are in and a 1-row feature block per segment."""

    membership: Membership
    rows: Mapping[str, FeatureBlock]


def day_ceiling(ts: pd.Timestamp) -> pd.Timestamp:
    return ts if ts == ts.normalize() else ts.normalize() + pd.Timedelta(days=1)


def month_starts_before(time: pd.Timestamp, months: int) -> list[pd.Timestamp]:
    """The first day of each of the `months` months ending with time's month, oldest first."""
    first = time.normalize().replace(day=1)
    return [first - pd.DateOffset(months=k) for k in range(months - 1, -1, -1)]


class Scorer:
    def __init__(self, backend: Backend, cache_size: int = 512) -> None:
        self.backend = backend
        self._rows_cache = LRU(cache_size)
        self._explain_cache = LRU(cache_size)
        self._probability_cache = LRU(cache_size * 4)
        self._plans: dict[tuple[int, tuple[str, ...]], InputPlan] = {}

    # --- time ---------------------------------------------------------------------------------

    def resolve_time(self, as_of: dt.date | None, store: HistoryStore | None = None) -> pd.Timestamp:
        """as_of (a date) -> the prediction time (that day 00:00); default: the end of the data.
        Dates outside the data's window are refused: there is no history to score them on."""
        store = store or self.backend.history
        first, last = store.start.normalize(), day_ceiling(store.end)
        if as_of is None:
            return last
        time = pd.Timestamp(as_of)
        if not first <= time <= last:
            raise ServingError(
                f"as_of {as_of.isoformat()} is outside the data ({first.date()} .. {last.date()})", field="as_of"
            )
        return time

    # --- features -----------------------------------------------------------------------------

    def _compute_rows(self, data: Histories, subject_ids: Sequence[int], time: pd.Timestamp) -> dict[int, CustomerRows]:
        backend = self.backend
        members = backend.features.membership(data, subject_ids, time, backend.champions)
        by_segment: dict[str, list[int]] = {}
        for subject in subject_ids:
            for problem in members[int(subject)].problems:
                segment = backend.champions[problem].segment
                if subject not in by_segment.setdefault(segment, []):
                    by_segment[segment].append(int(subject))
        rows: dict[int, dict[str, FeatureBlock]] = {int(s): {} for s in subject_ids}
        for segment, ids in by_segment.items():
            block = self._block(data, ids, [time] * len(ids), segment)
            for position, subject in enumerate(ids):
                rows[subject][segment] = block.take([position])
        return {int(s): CustomerRows(members[int(s)], rows[int(s)]) for s in subject_ids}

    def _block(self, data: Histories, ids: Sequence[int], times: Sequence[pd.Timestamp], segment: str) -> FeatureBlock:
        """Feature rows from the source's numpy path if it has one, else from its frame."""
        features = self.backend.features
        if hasattr(features, "compute_block"):
            return features.compute_block(data, ids, times, segment)
        return FeatureBlock.from_frame(features.compute(data, ids, times, segment))

    def model_input(self, champion: Champion, block: FeatureBlock) -> np.ndarray:
        """The champion's input matrix for these rows (the plan cached per model and layout)."""
        key = (id(champion.model), block.names)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = input_plan(champion.model, block)
        return model_input(champion.model, block, plan)

    def stored_rows(self, subject_ids: Sequence[int], time: pd.Timestamp) -> dict[int, CustomerRows]:
        """Rows of known customers from the held histories, cached per (generation, id, time)."""
        generation, store = self.backend.generation, self.backend.history
        found: dict[int, CustomerRows] = {}
        missing = []
        for subject in subject_ids:
            found_item = self._rows_cache.peek((generation, int(subject), time))
            if found_item is None:
                missing.append(int(subject))
            else:
                found[int(subject)] = found_item
        if missing:
            for subject, item in self._compute_rows(store, missing, time).items():
                found[subject] = self._rows_cache.get_or_compute((generation, subject, time), lambda item=item: item)
        return found

    # --- scoring ------------------------------------------------------------------------------

    def _contributions(
        self, champion: Champion, items: Mapping[int, CustomerRows], subjects: Sequence[int], cache_keys: Mapping[int, Hashable] | None,
    ) -> dict[int, np.ndarray]:
        """TreeSHAP rows (features then bias) of these customers: cached ones from the cache, the
        rest in one pred_contrib call."""
        found: dict[int, np.ndarray] = {}
        if cache_keys is not None:
            for subject in subjects:
                value = self._explain_cache.peek((champion.problem, champion.version, *cache_keys[subject]))
                if value is not None:
                    found[subject] = value
        todo = [s for s in subjects if s not in found]
        if todo:
            block = FeatureBlock.stack([items[s].rows[champion.segment] for s in todo])
            values = champion.model.contributions_matrix(self.model_input(champion, block))
            for subject, row in zip(todo, values):
                row = row.copy()  # one row owned by the cache, not a view of the batch
                if cache_keys is not None:
                    row = self._explain_cache.get_or_compute((champion.problem, champion.version, *cache_keys[subject]), lambda r=row: r)
                found[subject] = row
        return found

    def _explanation(self, champion: Champion, item: CustomerRows, cache_key: Hashable | None) -> Explanation:
        row = item.rows[champion.segment]
        keys = {0: cache_key} if cache_key is not None else None
        contributions = self._contributions(champion, {0: item}, [0], keys)[0]
        return explain_vector(champion.model.feature_names, contributions, self._values(champion, row), self.backend.catalogue)

    def _values(self, champion: Champion, row: FeatureBlock) -> list[Any]:
        """The customer's value of each of the model's features, as explanations show them."""
        plain = dict(zip(row.names, row.plain_values(0)))
        return [plain.get(name) for name in champion.model.feature_names]

    def _risks(
        self, items: Mapping[int, CustomerRows], time: pd.Timestamp, top_k: int, cached: bool
    ) -> dict[int, list[ProblemRisk]]:
        """Score every (customer, problem) pair: one predict per problem for the pairs not cached
        yet, and SHAP (one pred_contrib per problem) only if top_k."""
        risks: dict[int, list[ProblemRisk]] = {subject: [] for subject in items}
        generation = self.backend.generation
        for problem, champion in self.backend.champions.items():
            subjects = [s for s, item in items.items() if problem in item.membership.problems]
            if not subjects:
                continue
            keys = {s: (problem, champion.version, generation, s, time) for s in subjects}
            known = {s: self._probability_cache.peek(keys[s]) for s in subjects} if cached else {}
            todo = [s for s in subjects if known.get(s) is None]
            if todo:
                block = FeatureBlock.stack([items[s].rows[champion.segment] for s in todo])
                for subject, probability in zip(todo, champion.model.predict_proba_matrix(self.model_input(champion, block))):
                    known[subject] = float(probability)
                    if cached:
                        self._probability_cache.get_or_compute(keys[subject], lambda p=float(probability): p)
            contributions = {}
            if top_k > 0:
                shap_keys = {s: (generation, s, time) for s in subjects} if cached else None
                contributions = self._contributions(champion, items, subjects, shap_keys)
            for subject in subjects:
                reasons = []
                if top_k > 0:
                    row = items[subject].rows[champion.segment]
                    reasons = top_reasons_vector(champion.model.feature_names, contributions[subject],
                                                 self._values(champion, row), self.backend.catalogue, top_k)
                risks[subject].append(self._risk(champion, known[subject], reasons))
        return risks

    def _risk(self, champion: Champion, probability: float, reasons: list) -> ProblemRisk:
        return ProblemRisk(
            problem=champion.problem,
            label_en=vocabulary().problem_label(champion.problem, "en"),
            label_fi=vocabulary().problem_label(champion.problem, "fi"),
            probability=probability,
            band=band_for(probability, champion.bands),
            model_version=champion.version,
            pipeline_version=champion.model.pipeline_version,
            reasons=reasons,
        )

    def score_customers(
        self, subject_ids: Sequence[int], as_of: dt.date | None, top_k: int
    ) -> tuple[pd.Timestamp, list[BatchItem]]:
        """Score known customers from the held histories; unknown ones come back with an error."""
        store = self.backend.history
        time = self.resolve_time(as_of, store)
        unique = list(dict.fromkeys(int(s) for s in subject_ids))
        known = [s for s in unique if store.knows(s)]
        items = self.stored_rows(known, time)
        risks = self._risks(items, time, top_k, cached=True)
        results = []
        for subject in subject_ids:
            subject = int(subject)
            if subject not in items:
                results.append(BatchItem(customer_id=subject, as_of=time.date(), risks=[], error=f"unknown customer {subject}"))
                continue
            membership = items[subject].membership
            results.append(
                BatchItem(customer_id=subject, as_of=time.date(), risks=risks[subject], note=None if risks[subject] else membership.note)
            )
        return time, results

    def score_customer(self, subject_id: int, as_of: dt.date | None, top_k: int) -> ScoreResponse:
        if not self.backend.history.knows(subject_id):
            raise UnknownCustomer(f"unknown customer {subject_id}", field="customer_id")
        _, (item,) = self.score_customers([subject_id], as_of, top_k)
        return ScoreResponse(customer_id=item.customer_id, as_of=item.as_of, risks=item.risks, note=item.note)

    def score_posted(
        self, events: pd.DataFrame, customers: pd.DataFrame, as_of: dt.date | None, top_k: int
    ) -> ScoreResponse:
        """Score a history the caller holds (already validated by the backend's contracts)."""
        subject = int(customers["subject_id"].iloc[0])
        time = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp(dt.date.today())
        indexed = customers.set_index("subject_id", drop=False)
        indexed.index.name = None
        data = Histories(events, indexed, self.backend.features.prepare(events, customers))
        items = self._compute_rows(data, [subject], time)
        risks = self._risks(items, time, top_k, cached=False)
        return ScoreResponse(
            customer_id=subject, as_of=time.date(), risks=risks[subject],
            note=None if risks[subject] else items[subject].membership.note,
        )

    # --- explaining ---------------------------------------------------------------------------

    def champion(self, problem: str) -> Champion:
        try:
            return self.backend.champions[problem]
        except KeyError:
            served = ", ".join(sorted(self.backend.champions))
            raise UnknownProblem(f"problem {problem!r} is not served; served: {served}", field="problem") from None

    def explain(self, subject_id: int, problem: str, as_of: dt.date | None) -> ExplainResponse:
        champion = self.champion(problem)
        if not self.backend.history.knows(subject_id):
            raise UnknownCustomer(f"unknown customer {subject_id}", field="customer_id")
        time = self.resolve_time(as_of)
        item = self.stored_rows([subject_id], time)[subject_id]
        if problem not in item.membership.problems:
            raise ServingError(
                f"customer {subject_id} is not in the cohort of {problem} on {time.date()}"
                + (f" ({item.membership.note})" if item.membership.note else ""),
                field="problem",
            )
        row = item.rows[champion.segment]
        explanation = self._explanation(champion, item, (self.backend.generation, subject_id, time))
        probability = float(champion.model.predict_proba_matrix(self.model_input(champion, row))[0])
        return ExplainResponse(
            customer_id=subject_id, problem=problem, as_of=time.date(), model_version=champion.version,
            pipeline_version=champion.model.pipeline_version, probability=probability,
            band=band_for(probability, champion.bands), base_value=explanation.base_value,
            raw_score=explanation.raw_score, contributions=explanation.contributions,
            reasons=explanation.reasons, suggested_chains=suggest_chains(explanation.reasons),
        )

    def trend(self, subject_id: int, time: pd.Timestamp, months: int = 12) -> dict[str, list[tuple[dt.date, float | None]]]:
        """Each served problem's probability at the first of each of the last `months` months and
        at `time` (None where the customer was not in the cohort), oldest first."""
        store = self.backend.history
        times = [t for t in month_starts_before(time, months) if store.start.normalize() <= t < time] + [time]
        series: dict[str, list[tuple[dt.date, float | None]]] = {p: [] for p in self.backend.champions}
        for point in times:
            item = self._compute_rows(store, [subject_id], point)[subject_id] if point != time else (
                self.stored_rows([subject_id], time)[subject_id]
            )
            for problem, champion in self.backend.champions.items():
                value = None
                if problem in item.membership.problems:
                    value = float(champion.model.predict_proba_matrix(self.model_input(champion, item.rows[champion.segment]))[0])
                series[problem].append((point.date(), value))
        return series

    # --- a posted feature row -----------------------------------------------------------------

    def predict_row(self, problem: str, features: Mapping[str, Any]) -> PredictRowResponse:
        """Probability only (no SHAP, no history): the CRM's own feature row through the same model."""
        return predict_row(self.champion(problem), features)

    def clear_caches(self) -> None:
        self._rows_cache.clear()
        self._explain_cache.clear()
        self._probability_cache.clear()
        self._plans.clear()


def predict_row(champion: Champion, features: Mapping[str, Any]) -> PredictRowResponse:
    """Scorer.predict_row for one champion (also what the benchmark's bare FastAPI app runs, so
    the comparison is of the frameworks, not of the work)."""
    try:
        probability = float(champion.model.predict_proba_matrix(row_input(champion.model, features))[0])
    except FeatureMismatchError as error:
        raise ServingError(str(error), field="features") from None
    except (ValueError, TypeError) as error:
        raise ServingError(f"features: a value is not a number where the model needs one ({error})", field="features") from None
    if not np.isfinite(probability):
        raise ServingError("features: the model returned no probability for this row", field="features")
    return PredictRowResponse(
        problem=champion.problem, probability=probability, band=band_for(probability, champion.bands),
        model_version=champion.version,
    )


def card_sample(scorer: Scorer, problem: str, size: int = 200) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """(contributions, feature rows) of up to `size` cohort members at the end of the data, for a
    model card's global importance; customers are taken evenly across ids (deterministic)."""
    champion = scorer.champion(problem)
    store = scorer.backend.history
    ids = store.customers.index.to_numpy()
    if len(ids) == 0:
        return None
    step = max(len(ids) // (size * 3), 1)  # members are a fraction of everyone: look at 3x as many
    candidates = [int(s) for s in ids[::step][: size * 3]]
    time = scorer.resolve_time(None, store)
    items = scorer._compute_rows(store, candidates, time)
    members = [s for s, item in items.items() if problem in item.membership.problems][:size]
    if not members:
        return None
    rows = FeatureBlock.stack([items[s].rows[champion.segment] for s in members]).to_frame()
    return champion.model.contributions(rows), rows
