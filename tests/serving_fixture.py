"""The serving tests' region: a small simulated population on the real feature pipeline, served by
small real models.

The region is the pinned one (tests/pinned/: simulator seed 5, 2,500 residents, 3 years) and the
champions are its five pinned LightGBM models (one per problem, trained on the real feature
tables, deterministic), so every serving, explanation and page test runs what users get: the real
cohorts, features, catalogue words, model-input builder, TreeSHAP and reasons. Nothing here is a
stand-in for features/ or models/.

- `region()`: the simulated dataset (built once per test process; treat as read-only);
- `models()`: fresh copies of the five models, stamped with the code's feature-pipeline version;
- `make_backend(...)`: a scoring Backend over the region, for in-process tests;
- `write_fixture_home(home)`: the region's dataset folder and the models registered as
  `champion` in the home's MLflow registry: what `sote-risk serve` and `sote-risk run` load.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import pandas as pd

from models.risk_model import RiskModel

PINNED = Path(__file__).resolve().parent / "pinned"
SEED, CUSTOMERS, YEARS = 5, 2500, 3


@lru_cache(maxsize=1)
def region():  # noqa: ANN201 (synthetic.simulate.SimulatedDataset)
    from synthetic.config import SimulatorConfig
    from synthetic.simulate import simulate

    return simulate(SimulatorConfig(customers=CUSTOMERS, seed=SEED, years=YEARS))


def span() -> tuple[pd.Timestamp, pd.Timestamp]:
    meta = region().metadata
    return pd.Timestamp(meta["extract_start"]), pd.Timestamp(meta["extract_end"])


@lru_cache(maxsize=1)
def _pinned_models() -> dict[str, RiskModel]:
    from models.pyfunc import load_risk_model

    return {p.name: load_risk_model(p) for p in sorted((PINNED / "models").iterdir()) if p.is_dir()}


def models(problems: Sequence[str] | None = None) -> dict[str, RiskModel]:
    """Copies of the pinned models (callers may change spec or metadata), on the code's pipeline."""
    from features import pipeline_version

    out = {}
    for problem, model in _pinned_models().items():
        if problems is not None and problem not in problems:
            continue
        fresh = copy.copy(model)
        fresh.spec, fresh.metadata = copy.deepcopy(model.spec), copy.deepcopy(model.metadata)
        fresh.pipeline_version = pipeline_version()
        out[problem] = fresh
    return out


@lru_cache(maxsize=1)
def store():  # noqa: ANN201 (scoring.history.HistoryStore)
    from scoring.history import HistoryStore

    data = region()
    start, end = span()
    return HistoryStore.from_frames(data.events, data.customers, start, end)


def make_backend(chosen: Mapping[str, RiskModel] | None = None):  # noqa: ANN201 (scoring.backend.Backend)
    """The region's backend with the models as champions that passed their gates (as `sote-risk
    promote` leaves them; tests of the gate record give champions their own)."""
    from scoring.backend import Backend
    from scoring.champions import Gate, champion_from_model

    chosen = models() if chosen is None else chosen
    held = store()
    return Backend({p: champion_from_model(p, m, gate=Gate("passed")) for p, m in chosen.items()}, lambda: held)


def members(problem: str, time: pd.Timestamp | None = None, limit: int | None = None) -> list[int]:
    """Customers in the problem's cohort (and eligible for its outcome) at `time` (default the
    end of the data), found by the feature package directly, not through scoring."""
    from features import cohort_columns

    held = store()
    at = time if time is not None else held.resolve_time(None)
    ids = held.ids()
    flags = cohort_columns(held.history, ids, [at] * len(ids))[f"eligible_{problem}"]
    chosen = [int(s) for s in ids[flags]]
    return chosen[:limit] if limit is not None else chosen


def outside_every_cohort(time: pd.Timestamp | None = None, limit: int = 5) -> list[int]:
    from features import cohort_columns

    held = store()
    at = time if time is not None else held.resolve_time(None)
    ids = held.ids()
    columns = cohort_columns(held.history, ids, [at] * len(ids))
    inside = sum(values.astype(int) for name, values in columns.items() if name.startswith("in_"))
    return [int(s) for s in ids[inside == 0]][:limit]


# --- a home folder for `sote-risk serve` / `sote-risk run` ------------------------------------


def write_fixture_home(home: Path, problems: Sequence[str] | None = None, alias: str = "champion") -> dict[str, RiskModel]:
    """data/ (the region's dataset) and the models registered with `alias` in home/mlflow.db."""
    from synthetic.io import write_simulated

    write_simulated(region(), home / "data")  # what `sote-risk simulate` writes
    chosen = models(problems)
    register(home, chosen, alias)
    return chosen


def register(home: Path, chosen: Mapping[str, RiskModel], alias: str = "champion") -> dict[str, str]:
    """Register each model as a new version with `alias` in the home's registry; problem -> version."""
    import mlflow
    from mlflow import MlflowClient

    from models.pyfunc import log_risk_model
    from models.registry import configure_tracking, model_name
    from training.tracking import experiment_id

    saved = os.environ.get("SOTE_RISK_HOME")
    os.environ["SOTE_RISK_HOME"] = str(home)
    try:
        configure_tracking()
        client = MlflowClient()
        versions = {}
        for problem, model in chosen.items():
            with mlflow.start_run(experiment_id=experiment_id(problem), run_name=f"fixture-{problem}"):
                info = log_risk_model(model, registered_model_name=model_name(problem))
            version = str(info.registered_model_version)
            client.set_registered_model_alias(model_name(problem), alias, version)
            if alias == "champion":  # the tag `sote-risk promote` writes when the gates pass
                client.set_model_version_tag(model_name(problem), version, "promoted_at", "2026-12-01T00:00:00+00:00")
            versions[problem] = version
        return versions
    finally:
        if saved is None:
            os.environ.pop("SOTE_RISK_HOME", None)
        else:
            os.environ["SOTE_RISK_HOME"] = saved


def _example_rows(model: RiskModel) -> pd.DataFrame:
    """A few real feature rows of the model's segment (to check a loaded model predicts as the
    original; never logged with it: its input example is synthetic, models.pyfunc.synthetic_example)."""
    from features import compute_features

    segment = model.problem.split("-")[0]
    ids = members(model.problem, limit=5)
    held = store()
    return compute_features(None, None, ids, [held.resolve_time(None)] * len(ids), segment, history=held.history)



def posted_history(subject: int, with_as_of: bool = True) -> dict:
    """A stored customer's whole history as the CRM posts it to /score_history (as_of: the end
    of the data, or left out for the service's default)."""
    import pandas as pd

    def plain(value):  # noqa: ANN001, ANN202
        return value if isinstance(value, str) else (None if pd.isna(value) else float(value))

    data = region()
    customer = data.customers.loc[data.customers["subject_id"] == subject].iloc[0]
    events = data.events.loc[data.events["subject_id"] == subject]
    body = {
        "customer": {"subject_id": int(subject), "birth_year": int(customer["birth_year"]),
                     "birth_month": int(customer["birth_month"]), "sex": str(customer["sex"]),
                     "municipality": str(customer["municipality"]), "language": str(customer["language"])},
        "events": [{"time": e.time.isoformat(), "code": e.code, "numeric_value": plain(e.numeric_value),
                    "service_area": e.service_area, "unit": plain(e.unit), "cost_eur": float(e.cost_eur)}
                   for e in events.itertuples()],
    }
    if with_as_of:
        body["as_of"] = store().resolve_time(None).date().isoformat()
    return body
