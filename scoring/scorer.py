"""The scoring service's logic without HTTP: every request kind on the one path (scoring/path.py),
with the caches a running service wants.

SHAP is computed only where it is read (top_k > 0, /explain, pages, model cards) and cached per
(data generation, problem, customer, time); a customer's scored rows are cached per (data
generation, customer, time). A reload bumps the generation, so no cache serves stale data or an
old model. Several customers' pairs go through one scoring pass and, per problem, one predict
and one pred_contrib call.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from explain.chains import suggest_chains
from models.inputs import FeatureBlock, FeatureMismatchError
from scoring import path
from scoring.backend import Backend
from scoring.champions import Champion
from scoring.errors import BadFeatureRow, NotInCohort, UnknownCustomer, UnknownProblem
from scoring.history import HistoryStore
from scoring.path import ProblemRows
from scoring.results import CustomerRisks, Explained, Risk, RowProbability
from scoring.bands import band_for
from vocabulary import vocabulary

T = TypeVar("T")


class LRU:
    """A small thread-safe LRU (functools.lru_cache cannot be cleared or sized per instance)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def peek(self, key: Hashable) -> Any | None:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Hashable, value: T) -> T:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@dataclass(frozen=True)
class CustomerRows:
    """One customer at one time: a one-row ProblemRows per problem they are scored for, or why none."""

    problems: Mapping[str, ProblemRows]
    note: str | None
    inside: frozenset[str] = frozenset()  # the segments whose cohort holds the pair (why a problem has no row)


def month_starts_before(time: pd.Timestamp, months: int) -> list[pd.Timestamp]:
    """The first day of each of the `months` months ending with time's month, oldest first."""
    first = time.normalize().replace(day=1)
    return [first - pd.DateOffset(months=k) for k in range(months - 1, -1, -1)]


def per_customer(scored: path.ScoredPairs) -> list[CustomerRows]:
    """A scoring pass split into one CustomerRows per pair (in pair order)."""
    out: list[dict[str, ProblemRows]] = [{} for _ in range(len(scored.subject_ids))]
    for problem, rows in scored.problems.items():
        for row, position in enumerate(rows.positions):
            out[int(position)][problem] = ProblemRows(rows.champion, np.zeros(1, dtype=np.int64), rows.block.take([row]),
                                                      rows.probabilities[row : row + 1])
    segments = sorted({rows.champion.segment for rows in scored.problems.values()})
    return [CustomerRows(problems, None if problems else scored.note(i),
                         frozenset(s for s in segments if bool(scored.cohorts[f"in_{s}"][i])))
            for i, problems in enumerate(out)]


def risk(rows: ProblemRows, row: int, reasons: list, context: list | None = None) -> Risk:
    champion = rows.champion
    probability = float(rows.probabilities[row])
    words = vocabulary()
    return Risk(
        problem=champion.problem, label_en=words.problem_label(champion.problem, "en"),
        label_fi=words.problem_label(champion.problem, "fi"), probability=probability,
        band=band_for(probability, champion.bands), model_version=champion.version,
        pipeline_version=champion.model.pipeline_version, reasons=reasons, gate=champion.gate, context=context or [],
    )


class Scorer:
    def __init__(self, backend: Backend, cache_size: int = 512) -> None:
        self.backend = backend
        self._rows = LRU(cache_size)
        self._shap = LRU(cache_size)

    @property
    def champions(self) -> Mapping[str, Champion]:
        return self.backend.champions

    def champion(self, problem: str) -> Champion:
        try:
            return self.backend.champions[problem]
        except KeyError:
            served = ", ".join(sorted(self.backend.champions))
            raise UnknownProblem(f"problem {problem!r} is not served; served: {served}", field="problem") from None

    # --- rows -------------------------------------------------------------------------------------

    def stored_rows(self, subject_ids: Sequence[int], time: pd.Timestamp) -> dict[int, CustomerRows]:
        """Known customers' rows at `time` from the held histories: cached ones from the cache, the
        rest in one scoring pass."""
        generation, store = self.backend.generation, self.backend.history
        found: dict[int, CustomerRows] = {}
        missing = []
        for subject in dict.fromkeys(int(s) for s in subject_ids):
            item = self._rows.peek((generation, subject, time))
            if item is None:
                missing.append(subject)
            else:
                found[subject] = item
        if missing:
            scored = path.score_pairs(store.history, missing, [time] * len(missing), self.champions)
            for subject, item in zip(missing, per_customer(scored)):
                found[subject] = self._rows.put((generation, subject, time), item)
        return found

    def _contribution_rows(self, problem: str, items: Mapping[int, CustomerRows], time: pd.Timestamp | None) -> dict[int, np.ndarray]:
        """TreeSHAP rows of these customers for one problem: cached ones from the cache (when a
        time is given: stored histories only), the rest in one pred_contrib call."""
        generation = self.backend.generation
        found: dict[int, np.ndarray] = {}
        if time is not None:
            for subject in items:
                value = self._shap.peek((generation, problem, subject, time))
                if value is not None:
                    found[subject] = value
        todo = [s for s in items if s not in found]
        if todo:
            first = items[todo[0]].problems[problem]
            block = FeatureBlock.stack([items[s].problems[problem].block for s in todo])
            stacked = ProblemRows(first.champion, np.arange(len(todo)), block, np.zeros(len(todo)))
            for subject, row in zip(todo, path.contributions(stacked)):
                row = row.copy()  # owned by the cache, not a view of the batch
                found[subject] = self._shap.put((generation, problem, subject, time), row) if time is not None else row
        return found

    def _risks(self, items: Mapping[int, CustomerRows], top_k: int, time: pd.Timestamp | None) -> dict[int, list[Risk]]:
        """Every (customer, problem) risk, with top_k reasons (SHAP per problem in one call)."""
        risks: dict[int, list[Risk]] = {subject: [] for subject in items}
        for problem in self.champions:
            inside = {s: item for s, item in items.items() if problem in item.problems}
            if not inside:
                continue
            shap = self._contribution_rows(problem, inside, time) if top_k > 0 else {}
            for subject, item in inside.items():
                rows = item.problems[problem]
                if top_k > 0:
                    risks[subject].append(risk(rows, 0, path.reasons(rows, 0, shap[subject], top_k),
                                               path.background(rows, 0, shap[subject])))
                else:
                    risks[subject].append(risk(rows, 0, []))
        return risks

    # --- scoring ----------------------------------------------------------------------------------

    def score_customers(self, subject_ids: Sequence[int], as_of: dt.date | None, top_k: int) -> tuple[pd.Timestamp, list[CustomerRisks]]:
        """Known customers from the held histories; unknown ones come back with an error."""
        store = self.backend.history
        time = store.resolve_time(as_of)
        known = [int(s) for s in dict.fromkeys(subject_ids) if store.knows(s)]
        items = self.stored_rows(known, time)
        risks = self._risks(items, top_k, time)
        results = []
        for subject in (int(s) for s in subject_ids):
            if subject not in items:
                results.append(CustomerRisks(subject, time.date(), [], error=f"unknown customer {subject}"))
            else:
                results.append(CustomerRisks(subject, time.date(), risks[subject], note=items[subject].note))
        return time, results

    def score_customer(self, subject_id: int, as_of: dt.date | None, top_k: int) -> CustomerRisks:
        if not self.backend.history.knows(subject_id):
            raise UnknownCustomer(f"unknown customer {subject_id}", field="customer_id")
        _, (item,) = self.score_customers([subject_id], as_of, top_k)
        return item

    def score_posted(self, events: pd.DataFrame, customers: pd.DataFrame, as_of: dt.date | None, top_k: int) -> CustomerRisks:
        """A history the caller holds (checked by the contracts first: scoring.history.validate_posted);
        scored at as_of, inside the held data's span and by default its end, as /score is: the
        champions know the region only that far, and a date past it (today, 9999-12-31) is refused
        rather than scored on a history that stops years earlier. Nothing of it is cached."""
        subject = int(customers["subject_id"].iloc[0])
        time = self.backend.history.resolve_time(as_of)
        store = HistoryStore.from_frames(events, customers, time, time)
        (item,) = per_customer(path.score_pairs(store.history, [subject], [time], self.champions))
        risks = self._risks({subject: item}, top_k, None)[subject]
        return CustomerRisks(subject, time.date(), risks, note=item.note)

    # --- explaining -------------------------------------------------------------------------------

    def explain(self, subject_id: int, problem: str, as_of: dt.date | None) -> Explained:
        champion = self.champion(problem)
        store = self.backend.history
        if not store.knows(subject_id):
            raise UnknownCustomer(f"unknown customer {subject_id}", field="customer_id")
        time = store.resolve_time(as_of)
        item = self.stored_rows([subject_id], time)[subject_id]
        if problem not in item.problems:
            raise NotInCohort(f"customer {subject_id} is not in the cohort of {problem} on {time.date()}"
                              + (f" ({item.note})" if item.note else ""), field="problem")
        rows = item.problems[problem]
        shap = self._contribution_rows(problem, {subject_id: item}, time)[subject_id]
        explained = path.explain(rows, 0, shap)
        probability = float(rows.probabilities[0])
        return Explained(
            customer_id=subject_id, problem=problem, as_of=time.date(), model_version=champion.version,
            pipeline_version=champion.model.pipeline_version, probability=probability, band=rows.band(0),
            base_value=explained.base_value, raw_score=explained.raw_score, contributions=explained.contributions,
            reasons=explained.reasons, suggested_chains=suggest_chains(explained.reasons), gate=champion.gate,
            context=explained.context,
        )

    def trend(self, subject_id: int, time: pd.Timestamp, months: int = 12,
              since: pd.Timestamp | None = None) -> dict[str, list[tuple[dt.date, float | None, str | None]]]:
        """Each served problem's (date, probability, why not) at the first of each of the last
        `months` months and at `time`, oldest first. Where the customer was not scored the
        probability is None and `why` says why: "outside" (not in the problem's group then: not yet
        or no longer in it, not living in the region) or "not_eligible" (in the group but not
        scored for the outcome: in hospital, or already in 24-hour care). Every point's rows are
        cached as the scoring of one customer at one time is (so are `time`'s, for the scoring and
        explaining that follow on a page): a page seen again, or over a longer span, scores only
        the months not seen before, in one scoring pass. `since`: no point before it (a span's start)."""
        store = self.backend.history
        if not store.knows(subject_id):
            raise UnknownCustomer(f"unknown customer {subject_id}", field="customer_id")
        first = store.start.normalize() if since is None else max(store.start.normalize(), pd.Timestamp(since))
        points = [t for t in month_starts_before(time, months) if first <= t < time] + [time]
        generation, subject = self.backend.generation, int(subject_id)
        items = [self._rows.peek((generation, subject, point)) for point in points]
        missing = [i for i, item in enumerate(items) if item is None]
        if missing:
            scored = path.score_pairs(store.history, [subject] * len(missing), [points[i] for i in missing], self.champions)
            for i, item in zip(missing, per_customer(scored)):
                items[i] = self._rows.put((generation, subject, points[i]), item)
        series: dict[str, list[tuple[dt.date, float | None, str | None]]] = {}
        for problem, champion in self.champions.items():
            series[problem] = [
                (point.date(), float(item.problems[problem].probabilities[0]), None) if problem in item.problems
                else (point.date(), None, "not_eligible" if champion.segment in item.inside else "outside")
                for point, item in zip(points, items)
            ]
        return series

    def predict_row(self, problem: str, features: Mapping[str, Any]) -> RowProbability:
        """Probability only (no SHAP, no history): the CRM's own feature row through the same model."""
        return predict_row(self.champion(problem), features)

    def card_sample(self, problem: str, size: int = 200) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """(contributions, feature rows) of up to `size` members of the problem's cohort at the
        end of the data, for a model card's global importance. Customers are looked at in passes
        of evenly spread ids (deterministic) until `size` members are found: a small cohort (home
        care, 2 % of everyone) needs many passes, and a sample of a dozen would make the card's
        importance noise."""
        champion = self.champion(problem)
        store = self.backend.history
        ids = store.ids()
        if not len(ids):
            return None
        step = max(len(ids) // (size * 3), 1)  # a pass looks at ~3x `size` customers
        time = store.resolve_time(None)
        values, frames, found = [], [], 0
        for offset in range(step):
            candidates = ids[offset::step]
            rows = path.score_pairs(store.history, candidates, [time] * len(candidates), {problem: champion}).problems[problem]
            if len(rows):
                chosen = np.arange(min(size - found, len(rows)))
                values.append(path.contributions(rows, chosen))
                frames.append(rows.block.take(chosen).to_frame())
                found += len(chosen)
            if found >= size:
                break
        if not found:
            return None
        contributions = pd.DataFrame(np.vstack(values), columns=[*champion.model.feature_names, "bias"])
        return contributions, pd.concat(frames, ignore_index=True)

    def clear_caches(self) -> None:
        self._rows.clear()
        self._shap.clear()


def predict_row(champion: Champion, features: Mapping[str, Any]) -> RowProbability:
    """Scorer.predict_row for one champion (also what the benchmark's bare FastAPI app runs, so
    the comparison is of the frameworks, not of the work)."""
    try:
        matrix = champion.input(FeatureBlock.from_row(features, champion.model))
    except FeatureMismatchError as error:
        raise BadFeatureRow(str(error), field="features") from None
    probability = float(champion.model.predict_proba_matrix(matrix)[0])
    if not np.isfinite(probability):
        raise BadFeatureRow("features: the model returned no probability for this row", field="features")
    return RowProbability(problem=champion.problem, probability=probability, band=band_for(probability, champion.bands),
                          model_version=champion.version, gate=champion.gate)
