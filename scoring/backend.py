"""The serving side's one adapter to the rest of the project.

Everything the service needs from features/, models/registry, training/spec and data_contracts
comes through here: the champion model of every problem, the customers' histories (read once from
the home folder, reloadable), the one feature function, cohort membership and the feature
catalogue's words. The rest of serving/ and explain/ sees only `Backend`, so tests build one
from a tiny real LightGBM model and a toy feature source (tests/serving_fixture.py).
"""

from __future__ import annotations

import functools
import importlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from explain.catalogue import FeatureText
from models.risk_model import RiskModel
from alerts.policy import BandThresholds
from base.errors import SoteRiskError


BACKEND_ENV = "SOTE_RISK_BACKEND"  # module:function returning a Backend (tests point it at a fake)
# Comma-separated problem ids to serve (default: every spec in experiments/), for a region that
# runs only some problems, or data too small to train them all (the demo at a few thousand).
PROBLEMS_ENV = "SOTE_RISK_PROBLEMS"
# Worker processes of the service (`sote-risk serve --workers`); serving/service.py reads it.
WORKERS_ENV = "SOTE_RISK_WORKERS"


class BackendError(SoteRiskError):
    """The service cannot start or reload: says which problem, model or file, and why."""


class ReloadRefused(BackendError):
    """A reload the running service refused (it keeps serving its old data and models): the
    service is fine, the new state conflicts with it, hence 409 rather than 422."""

    status = 409


@dataclass(frozen=True)
class Membership:
    """The problems one customer is scored for at one time, or why none."""

    problems: tuple[str, ...]
    note: str | None = None


@dataclass(frozen=True)
class Champion:
    """A problem's served model and what the responses say about it."""

    problem: str
    model: RiskModel
    version: str
    segment: str
    outcome: str
    horizon_days: int
    bands: BandThresholds


@dataclass(frozen=True)
class Histories:
    """Events and customers to compute from, plus the feature source's precomputed state for
    them (features.History: built once per load, so a call costs microseconds, not a rebuild)."""

    events: pd.DataFrame
    customers: pd.DataFrame  # indexed by subject_id (the column is kept too)
    prepared: Any = None


class FeatureSource(Protocol):
    """What serving needs from features/ (the real one: FeaturesPackage below)."""

    pipeline_version: str

    def prepare(self, events: pd.DataFrame, customers: pd.DataFrame) -> Any:
        """Precomputed state for repeated calls on these frames (or None)."""

    def compute(self, data: Histories, subject_ids: Sequence[int], times: Sequence[pd.Timestamp], segment: str) -> pd.DataFrame:
        """Feature rows for the (subject_id, time) pairs, in the same order (positional)."""

    def membership(
        self, data: Histories, subject_ids: Sequence[int], time: pd.Timestamp, champions: Mapping[str, Champion],
    ) -> dict[int, Membership]:
        """Which of the champions' problems each customer is in at `time` (alive, in the
        segment, eligible for the outcome), with a note when none."""

    def catalogue(self) -> Mapping[str, FeatureText]:
        """Words for every feature (name -> FeatureText)."""


@dataclass(frozen=True)
class HistoryStore(Histories):
    """All customers' events (sorted by subject_id, time) and attributes, held in memory, with
    the data's window. One customer's events are a contiguous slice found by binary search."""

    start: pd.Timestamp = pd.Timestamp(0)
    end: pd.Timestamp = pd.Timestamp(0)

    @classmethod
    def from_frames(
        cls, events: pd.DataFrame, customers: pd.DataFrame, start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None, features: FeatureSource | None = None,
    ) -> "HistoryStore":
        events = events.sort_values(["subject_id", "time"], kind="stable").reset_index(drop=True)
        customers = customers.set_index("subject_id", drop=False).sort_index()
        customers.index.name = None
        start = pd.Timestamp(start) if start is not None else pd.Timestamp(events["time"].min())
        end = pd.Timestamp(end) if end is not None else pd.Timestamp(events["time"].max())
        prepared = features.prepare(events, customers.reset_index(drop=True)) if features is not None else None
        return cls(events=events, customers=customers, prepared=prepared, start=start, end=end)

    @property
    def subject_ids(self) -> np.ndarray:
        return self.events["subject_id"].to_numpy()

    def knows(self, subject_id: int) -> bool:
        return int(subject_id) in self.customers.index

    def frames(self, subject_ids: Sequence[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(events, customers) of these known customers (for sources without prepared state)."""
        ids = self.subject_ids
        wanted = np.unique(np.asarray(subject_ids, dtype=np.int64))
        lo = np.searchsorted(ids, wanted, side="left")
        hi = np.searchsorted(ids, wanted, side="right")
        if len(wanted) == 1:
            events = self.events.iloc[int(lo[0]) : int(hi[0])]
        else:
            rows = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)]) if len(wanted) else np.array([], int)
            events = self.events.iloc[rows]
        return events, self.customers.loc[wanted]


class Backend:
    """Champions + feature source + the histories; the only stateful object of the service."""

    def __init__(
        self,
        champions: Mapping[str, Champion],
        features: FeatureSource,
        load_history: Callable[[], HistoryStore],
        validate_history: Callable[[pd.DataFrame, pd.DataFrame], None] | None = None,
        load_champions: Callable[[], Mapping[str, Champion]] | None = None,
    ) -> None:
        check_champions(champions, features.pipeline_version)
        self.champions = dict(champions)
        self.features = features
        self.catalogue = dict(features.catalogue())
        self._load_history = load_history
        self._validate_history = validate_history
        self._load_champions = load_champions
        self._lock = threading.Lock()
        self._history = load_history()
        self.generation = 1

    @property
    def pipeline_version(self) -> str:
        return self.features.pipeline_version

    @property
    def history(self) -> HistoryStore:
        return self._history

    def reload(self) -> tuple[HistoryStore, int, float]:
        """Read the histories (and, with a champion loader, the champions: a promotion reaches a
        running service this way) again; requests keep using the old ones until both new ones are
        in. A champion that cannot be loaded refuses the whole reload (ReloadRefused), so the
        service never mixes old data with a half-loaded set of models."""
        started = time.perf_counter()
        with self._lock:
            try:
                fresh = self._load_history()
                champions = self.champions
                if self._load_champions is not None:
                    loaded = dict(self._load_champions())
                    check_champions(loaded, self.features.pipeline_version)
                    # The same version keeps its loaded object (and the scorer's plans for it).
                    champions = {p: self.champions[p] if p in self.champions and self.champions[p].version == c.version
                                 else c for p, c in loaded.items()}
            except SoteRiskError as error:
                raise ReloadRefused(str(error)) from None
            self._history, self.champions = fresh, champions
            self.generation += 1
            return fresh, self.generation, time.perf_counter() - started

    def validate_history(self, events: pd.DataFrame, customers: pd.DataFrame) -> None:
        """A posted history must keep the data contracts (raises SoteRiskError naming the rule)."""
        if self._validate_history is not None:
            self._validate_history(events, customers)


def check_champions(champions: Mapping[str, Champion], pipeline_version: str) -> None:
    if not champions:
        raise BackendError("no champion models: train and promote at least one problem before serving")
    stale = [
        f"{c.problem} (model {c.version}: {c.model.pipeline_version!r})"
        for c in champions.values()
        if c.model.pipeline_version != pipeline_version
    ]
    if stale:
        raise BackendError(
            f"feature-pipeline version mismatch: the code computes {pipeline_version!r} but these champions "
            f"were trained on another: {', '.join(stale)}; retrain and promote them"
        )


def import_factory(spec: str) -> Callable[[], Backend]:
    module, _, name = spec.partition(":")
    if not module or not name:
        raise BackendError(f"{BACKEND_ENV} must be 'module:function', not {spec!r}")
    return getattr(importlib.import_module(module), name)


# --- the real wiring ---------------------------------------------------------------------------


def model_version(model: RiskModel) -> str:
    """The registry version the model was loaded as (registry's metadata key), else 'unknown'."""
    for key in ("model_version", "registered_version", "version"):
        value = model.metadata.get(key)
        if value not in (None, ""):
            return str(value)
    return "unknown"


def bands_of(model: RiskModel) -> BandThresholds:
    """The problem's risk bands, from the experiment spec that travels with the model."""
    policy = (model.spec or {}).get("alert_policy") or {}
    return BandThresholds.model_validate(policy.get("bands") or {})


def champion_from_model(problem: str, model: RiskModel, version: str | None = None) -> Champion:
    """The served form of a model: its problem as the vocabulary declares it, bands from its spec."""
    from vocabulary import vocabulary

    declared = vocabulary().problem(problem)
    return Champion(
        problem=problem, model=model, version=version or model_version(model), segment=declared.segment,
        outcome=declared.outcome, horizon_days=declared.horizon_days, bands=bands_of(model),
    )


def _require(module_name: str, *names: str) -> Any:
    """The first attribute of `module_name` among `names`, or a clear error saying what is missing."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise BackendError(f"serving needs {module_name} ({error})") from error
    for name in names:
        if hasattr(module, name):
            return getattr(module, name)
    raise BackendError(f"serving needs {module_name}.{' or '.join(names)}, which does not exist yet")


def code_pipeline_version() -> str:
    value = _require("features", "PIPELINE_VERSION", "pipeline_version")
    return str(value() if callable(value) else value)


def catalogue_entry(entry: Any) -> FeatureText:
    """One features/ catalogue entry (object or mapping) -> FeatureText, tolerant of field names."""
    get = entry.get if isinstance(entry, Mapping) else (lambda k, d=None: getattr(entry, k, d))
    templates = get("templates") or {}
    direction = get("direction")
    if direction not in ("higher_is_riskier", "lower_is_riskier", "neutral"):
        direction = {"up": "higher_is_riskier", "+": "higher_is_riskier", "1": "higher_is_riskier",
                     "down": "lower_is_riskier", "-": "lower_is_riskier", "-1": "lower_is_riskier"}.get(str(direction), "neutral")
    return FeatureText(
        name=str(get("name")),
        family=str(get("family") or "other"),
        family_en=get("family_en"), family_fi=get("family_fi"),
        description_en=get("description_en"), description_fi=get("description_fi"),
        unit=get("unit") or get("unit_en"), unit_fi=get("unit_fi"), direction=direction,
        template_en=get("template_en") or get("plain_en") or templates.get("en"),
        template_fi=get("template_fi") or get("plain_fi") or templates.get("fi"),
        never_en=get("never_en"), never_fi=get("never_fi"), decimals=int(get("decimals") or 0),
    )


class FeaturesPackage:
    """FeatureSource over the features/ package: its one feature function, cohorts and catalogue,
    on a features.History built once per load of the histories."""

    def __init__(self) -> None:
        self.pipeline_version = code_pipeline_version()
        self._features = importlib.import_module("features")

    def prepare(self, events: pd.DataFrame, customers: pd.DataFrame) -> Any:
        return self._features.History.from_frames(events, customers)

    def compute(self, data: Histories, subject_ids, times, segment):  # noqa: ANN001 (Protocol)
        history = data.prepared if data.prepared is not None else self.prepare(data.events, data.customers.reset_index(drop=True))
        frame = self._features.compute_features(None, None, list(subject_ids), list(times), segment, history=history)
        return frame.reset_index(drop=True)

    def compute_block(self, data: Histories, subject_ids, times, segment):  # noqa: ANN001 (optional FeatureSource method)
        """compute() as a FeatureBlock (scoring/rows.py), without the pandas frame: the same
        values (features.feature_columns is compute_features before its frame is built)."""
        from scoring.rows import FeatureBlock

        history = data.prepared if data.prepared is not None else self.prepare(data.events, data.customers.reset_index(drop=True))
        columns = self._features.feature_columns(history, list(subject_ids), list(times), segment)
        names = list(columns)
        return FeatureBlock.from_columns(names, columns, _categories_of(tuple(names)))

    def membership(self, data: Histories, subject_ids, time, champions):  # noqa: ANN001 (Protocol)
        history = data.prepared if data.prepared is not None else self.prepare(data.events, data.customers.reset_index(drop=True))
        ids = [int(s) for s in subject_ids]
        columns = self._features.cohort_columns(history, ids, [time] * len(ids))
        result = {}
        for position, subject in enumerate(ids):
            row = {name: bool(values[position]) for name, values in columns.items()}
            problems = tuple(
                c.problem for c in champions.values()
                if row.get(f"eligible_{c.segment}-{c.outcome}", False)
            )
            result[subject] = Membership(problems, None if problems else _why_not(row, champions))
        return result

    def catalogue(self) -> Mapping[str, FeatureText]:
        return {info.name: catalogue_entry(info) for info in self._features.catalogue()}

    def eligibility(self, data: Histories, subject_ids, time, champions) -> dict[str, np.ndarray]:  # noqa: ANN001
        """problem -> boolean array over subject_ids: in the cohort and eligible at `time`.
        Vectorised (one cohort pass over everyone), for the population run."""
        history = data.prepared if data.prepared is not None else self.prepare(data.events, data.customers.reset_index(drop=True))
        ids = np.asarray(subject_ids, dtype=np.int64)
        frame = self._features.compute_cohorts(None, None, ids, np.repeat(np.datetime64(pd.Timestamp(time), "us"), len(ids)),
                                               history=history)
        return {
            c.problem: frame[f"eligible_{c.segment}-{c.outcome}"].to_numpy(dtype=bool)
            if f"eligible_{c.segment}-{c.outcome}" in frame else np.zeros(len(ids), dtype=bool)
            for c in champions.values()
        }


@functools.lru_cache(maxsize=16)
def _categories_of(names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """The catalogue's fixed category list of every categorical feature among names."""
    from features import feature_info

    return {name: tuple(info.categories) for name in names if (info := feature_info(name)).kind == "categorical"}


def _why_not(row: Mapping[str, bool], champions: Mapping[str, Champion]) -> str:
    segments = sorted({c.segment for c in champions.values()})
    inside = [s for s in segments if bool(row.get(f"in_{s}", False))]
    if inside:
        return (f"in the {', '.join(inside)} cohort but not eligible for its outcomes at this time "
                "(e.g. in hospital, or already in 24-hour care)")
    return f"in none of the scored cohorts ({', '.join(segments)}) at this time"


def load_history_from_home(features: FeatureSource) -> HistoryStore:
    from data_contracts import read_dataset
    from base.settings import home

    folder = home().data
    dataset = read_dataset(folder, validate=False)  # validated when written; 130k customers load in seconds
    return HistoryStore.from_frames(
        dataset.events, dataset.customers, dataset.extract_start, dataset.extract_end, features=features
    )


def validate_with_contracts(events: pd.DataFrame, customers: pd.DataFrame) -> None:
    from data_contracts import validate_customers, validate_events

    validate_customers(customers)
    validate_events(events)


def load_champions(pipeline_version: str, refusal: str = "serving refuses to start") -> dict[str, Champion]:
    """The champion of every problem declared in experiments/; all problems' errors in one message
    (prefixed with `refusal`: what cannot go ahead)."""
    list_problems = _require("training.spec", "list_problems")
    load_model = _require("models.registry", "load_model")
    problems = served_problems(list_problems())
    champions, errors = {}, []
    for problem in problems:
        try:
            model = load_model(problem, alias="champion", expected_pipeline_version=pipeline_version)
        except Exception as error:  # noqa: BLE001 (MLflow raises its own types; all mean "no usable champion")
            errors.append(f"{problem}: {str(error).splitlines()[0] if str(error) else type(error).__name__}")
            continue
        champions[problem] = champion_from_model(problem, model)
    if errors:
        raise BackendError(f"{refusal}: " + "; ".join(errors))
    return champions


def served_problems(declared: Sequence[str]) -> list[str]:
    """The problems to serve: SOTE_RISK_PROBLEMS if set (each must be declared), else all declared."""
    import os

    if not declared:
        raise BackendError("no problems declared in experiments/")
    chosen = [p.strip() for p in os.environ.get(PROBLEMS_ENV, "").split(",") if p.strip()]
    unknown = [p for p in chosen if p not in declared]
    if unknown:
        raise BackendError(f"{PROBLEMS_ENV}: unknown problem(s) {', '.join(unknown)}; declared: {', '.join(declared)}")
    return chosen or list(declared)


def load_backend(refusal: str = "serving refuses to start") -> Backend:
    """The production backend: champions by alias, features/ and the home folder's data."""
    features = FeaturesPackage()
    champions = load_champions(features.pipeline_version, refusal)
    return Backend(champions, features, lambda: load_history_from_home(features), validate_with_contracts,
                   load_champions=lambda: load_champions(features.pipeline_version, "reload refused"))


def check_ready() -> list[str]:
    """What `sote-risk serve` checks before starting the server: champions and versions only
    (not the histories), so a bad set-up fails in a second with one line."""
    features = FeaturesPackage()
    champions = load_champions(features.pipeline_version)
    check_champions(champions, features.pipeline_version)
    return [f"{c.problem} v{c.version}" for c in champions.values()]


def posted_frames(customer: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A posted history (plain dicts) -> contract-shaped events and customers frames.

    service_area and cost_eur may be left out by the caller: they follow from the code catalogue
    (a DISCHARGE costs its length of stay times the day cost). Unknown codes are left for the
    contract check to name.
    """
    from data_contracts import load_code_catalogue

    catalogue = load_code_catalogue().set_index("code")
    subject = int(customer["subject_id"])
    customers = pd.DataFrame([{
        "subject_id": subject, "birth_year": int(customer["birth_year"]), "birth_month": int(customer["birth_month"]),
        "sex": customer["sex"], "municipality": customer["municipality"], "language": customer["language"],
    }]).astype({"subject_id": "int64", "birth_year": "int16", "birth_month": "int8"})
    rows = []
    for event in events:
        code = str(event["code"])
        known = code in catalogue.index
        value = event.get("numeric_value")
        area = event.get("service_area") or (catalogue.at[code, "service_area"] if known else "UNKNOWN")
        cost = event.get("cost_eur")
        if cost is None:
            unit_cost = float(catalogue.at[code, "unit_cost_eur"]) if known else 0.0
            basis = catalogue.at[code, "cost_basis"] if known else "event"
            cost = unit_cost * float(value) if basis == "day" and value is not None else (unit_cost if basis == "event" else 0.0)
        rows.append((subject, event["time"], code, value, area, event.get("unit"), float(cost)))
    frame = pd.DataFrame(rows, columns=["subject_id", "time", "code", "numeric_value", "service_area", "unit", "cost_eur"])
    frame = frame.astype({"subject_id": "int64", "numeric_value": "float64", "cost_eur": "float64"})
    frame["time"] = pd.to_datetime(frame["time"]).astype("datetime64[us]")
    frame["unit"] = frame["unit"].astype("string") if len(frame) else frame["unit"].astype("string")
    frame["code"] = frame["code"].astype(str)
    frame["service_area"] = frame["service_area"].astype(str)
    frame = frame.sort_values("time", kind="stable").reset_index(drop=True)
    return frame, customers
