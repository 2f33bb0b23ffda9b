"""A small fake backend for the serving tests: toy features, tiny real LightGBM models.

The toy feature source stands in for features/ (same call shape: events, customers, ids, times,
segment); the models are real RiskModels (booster + calibrator), so parity and additivity are
checked on the real model code. `backend_from_home` is what a `bentoml serve` subprocess loads
(SOTE_RISK_BACKEND=tests.serving_fixture:backend_from_home) from a fixture home folder.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from data_contracts import load_code_catalogue
from explain.catalogue import FeatureText
from models.calibration import ScoreCalibrator
from models.risk_model import RiskModel
from scoring.backend import Backend, Champion, HistoryStore, Membership, champion_from_model, validate_with_contracts

PIPELINE = "toy-1"
START = pd.Timestamp("2022-01-01")
END = pd.Timestamp("2024-01-01")
FEATURES = ["age_years", "sex", "er_visits_90d", "missed_doses_30d", "fall_alarms_180d", "homecare_visits_30d"]
CATEGORIES = {"sex": ["F", "M"]}
PROBLEMS = {
    "elderly-hospitalisation": ("elderly", "hospitalisation"),
    "elderly-homecare_failure": ("elderly", "homecare_failure"),
    "acute-hospitalisation": ("acute", "hospitalisation"),
}
CATALOGUE = {
    "age_years": FeatureText(name="age_years", family="demographics", family_en="Age and background",
                             family_fi="Ikä ja tausta", description_en="Age", description_fi="Ikä", unit="years",
                             template_en="Age {value} years", template_fi="Ikä {value} vuotta"),
    "sex": FeatureText(name="sex", family="demographics", description_en="Sex", description_fi="Sukupuoli"),
    "er_visits_90d": FeatureText(name="er_visits_90d", family="emergency", family_en="Emergency care",
                                 family_fi="Päivystys", direction="higher_is_riskier",
                                 template_en="{value} emergency visits in the last 90 days",
                                 template_fi="{value} päivystyskäyntiä viimeisen 90 päivän aikana"),
    "missed_doses_30d": FeatureText(name="missed_doses_30d", family="medication", family_en="Medication",
                                    family_fi="Lääkitys", direction="higher_is_riskier",
                                    template_en="{value} missed medication doses in the last 30 days",
                                    template_fi="{value} ottamatta jäänyttä lääkeannosta viimeisen 30 päivän aikana"),
    "fall_alarms_180d": FeatureText(name="fall_alarms_180d", family="falls", family_en="Falls", family_fi="Kaatumiset",
                                    direction="higher_is_riskier",
                                    template_en="{value} fall alarms in the last 180 days",
                                    template_fi="{value} kaatumishälytystä viimeisen 180 päivän aikana"),
    "homecare_visits_30d": FeatureText(name="homecare_visits_30d", family="homecare", family_en="Home care",
                                       family_fi="Kotihoito", template_en="{value} home care visits in the last 30 days",
                                       template_fi="{value} kotihoidon käyntiä viimeisen 30 päivän aikana"),
}


# --- data ------------------------------------------------------------------------------------


def make_dataset(n_customers: int = 200, seed: int = 11) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers (ids 1..n) and contract-valid events between START and END."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n_customers + 1, dtype=np.int64)
    customers = pd.DataFrame({
        "subject_id": ids,
        "birth_year": rng.choice([1930, 1940, 1945, 1950, 1980, 2010], n_customers).astype("int16"),
        "birth_month": rng.integers(1, 13, n_customers).astype("int8"),
        "sex": rng.choice(["F", "M"], n_customers),
        "municipality": rng.choice(["Lappeenranta", "Imatra", "Lemi"], n_customers),
        "language": rng.choice(["fi", "sv"], n_customers, p=[0.9, 0.1]),
    })
    catalogue = load_code_catalogue().set_index("code")
    days = (END - START).days
    rows = []
    for subject in ids:
        frailty = rng.gamma(1.0, 1.0)
        counts = {
            "ENC/EMERGENCY": rng.poisson(1 + 3 * frailty),
            "MEDROBOT/MISSED_DOSE": rng.poisson(4 * frailty) if frailty > 1 else 0,
            "IOT/FALL_ALARM": rng.poisson(2 * frailty) if frailty > 0.8 else 0,
            "ENC/HC_DOCTOR": rng.poisson(3),
        }
        for code, count in counts.items():
            for offset in rng.integers(1, days, count):
                rows.append((subject, START + pd.Timedelta(days=int(offset), hours=10), code))
        if frailty > 1.2:  # home care from some day on, with visits
            begin = int(rng.integers(1, days // 2))
            rows.append((subject, START + pd.Timedelta(days=begin, hours=8), "HOMECARE/START"))
            for offset in range(begin + 1, days, 3):
                rows.append((subject, START + pd.Timedelta(days=offset, hours=9), "HOMECARE/VISIT"))
    events = pd.DataFrame(rows, columns=["subject_id", "time", "code"])
    events["time"] = events["time"].astype("datetime64[us]")
    events["numeric_value"] = np.nan
    events["service_area"] = catalogue.loc[events["code"], "service_area"].to_numpy()
    events["unit"] = None
    events["cost_eur"] = catalogue.loc[events["code"], "unit_cost_eur"].to_numpy().astype("float64")
    events = events.sort_values(["subject_id", "time"], kind="stable").reset_index(drop=True)
    events["unit"] = events["unit"].astype("string")
    return events, customers


# --- toy feature source --------------------------------------------------------------------


def _one_row(events: pd.DataFrame, customer: pd.Series, at: pd.Timestamp) -> dict:
    """The toy features of one customer at one time: plain window counts, obviously right."""
    at64 = np.datetime64(at, "us")
    codes, times = events["code"].to_numpy(), events["time"].to_numpy()

    def count(code: str, days: int) -> float:
        return float(((codes == code) & (times > at64 - np.timedelta64(days, "D")) & (times <= at64)).sum())

    age = at.year - int(customer["birth_year"]) - (1 if at.month < int(customer["birth_month"]) else 0)
    return {
        "age_years": float(age),
        "sex": str(customer["sex"]),
        "er_visits_90d": count("ENC/EMERGENCY", 90),
        "missed_doses_30d": count("MEDROBOT/MISSED_DOSE", 30),
        "fall_alarms_180d": count("IOT/FALL_ALARM", 180),
        "homecare_visits_30d": count("HOMECARE/VISIT", 30),
    }


def _frames(data, subject_ids):  # noqa: ANN001, ANN202
    events = data.events[data.events["subject_id"].isin([int(s) for s in subject_ids])]
    customers = data.customers.set_index("subject_id", drop=False) if "subject_id" in data.customers else data.customers
    return events, customers


class ToyFeatures:
    """FeatureSource for tests: six features, two segments, per-row (slow but obviously right)."""

    pipeline_version = PIPELINE

    def prepare(self, events, customers):  # noqa: ANN001
        return None

    def compute(self, data, subject_ids, times, segment):  # noqa: ANN001
        events, customers = _frames(data, subject_ids)
        grouped = dict(tuple(events.groupby("subject_id"))) if len(events) else {}
        empty = events.iloc[:0]
        rows = [
            _one_row(grouped.get(int(s), empty), customers.loc[int(s)], pd.Timestamp(t))
            for s, t in zip(subject_ids, times)
        ]
        frame = pd.DataFrame(rows, columns=FEATURES)
        frame["sex"] = pd.Categorical(frame["sex"], categories=CATEGORIES["sex"])
        return frame

    def membership(self, data, subject_ids, time, champions):  # noqa: ANN001
        events, customers = _frames(data, subject_ids)
        grouped = dict(tuple(events.groupby("subject_id"))) if len(events) else {}
        at64 = np.datetime64(pd.Timestamp(time), "us")
        out = {}
        for subject in subject_ids:
            history = grouped.get(int(subject), events.iloc[:0])
            history = history[history["time"].to_numpy() <= at64]
            row = _one_row(history, customers.loc[int(subject)], pd.Timestamp(time))
            homecare = bool((history["code"] == "HOMECARE/START").any())
            segments = set()
            if row["age_years"] >= 75 or homecare:
                segments.add("elderly")
            if row["er_visits_90d"] > 0:
                segments.add("acute")
            problems = [
                p for p, c in champions.items()
                if c.segment in segments and (c.outcome != "homecare_failure" or homecare)
            ]
            note = None if problems else f"not 75+, not a home care customer and no emergency visit in the 90 days before {pd.Timestamp(time).date()}"
            out[int(subject)] = Membership(tuple(problems), note)
        return out

    def catalogue(self) -> Mapping[str, FeatureText]:
        return CATALOGUE


def toy_rows(events: pd.DataFrame, customers: pd.DataFrame, subject_ids, times) -> pd.DataFrame:  # noqa: ANN001
    """The toy features straight from frames (the parity tests' in-memory side)."""
    from scoring.backend import Histories

    return ToyFeatures().compute(Histories(events, customers), subject_ids, times, "elderly")


# --- models ----------------------------------------------------------------------------------


def train_models(events: pd.DataFrame, customers: pd.DataFrame, seed: int = 3) -> dict[str, RiskModel]:
    """One tiny LightGBM per problem on toy features at a few index times (synthetic labels)."""
    rng = np.random.default_rng(seed)
    ids = customers["subject_id"].tolist()
    times = [pd.Timestamp("2023-03-01"), pd.Timestamp("2023-07-01"), pd.Timestamp("2023-11-01")]
    frame = pd.concat([toy_rows(events, customers, ids, [t] * len(ids)) for t in times], ignore_index=True)
    logit = -2.5 + 0.5 * frame["er_visits_90d"] + 0.3 * frame["missed_doses_30d"] + 0.4 * frame["fall_alarms_180d"] + 0.02 * (frame["age_years"] - 70)
    models = {}
    for i, problem in enumerate(PROBLEMS):
        outcome = rng.random(len(frame)) < 1 / (1 + np.exp(-(logit - 0.5 * i)))
        booster = lgb.train(
            {"objective": "binary", "verbose": -1, "num_leaves": 7, "seed": 1, "min_data_in_leaf": 5, "num_threads": 1},
            lgb.Dataset(frame[FEATURES], label=outcome.astype(int)),
            num_boost_round=25,
        )
        raw = booster.predict(frame[FEATURES], raw_score=True)
        calibrator = ScoreCalibrator("platt").fit(raw, outcome)
        segment, outcome_name = PROBLEMS[problem]
        models[problem] = RiskModel(
            problem=problem, booster=booster, calibrator=calibrator, feature_names=list(FEATURES),
            categories=dict(CATEGORIES), pipeline_version=PIPELINE,
            spec={"segment": segment, "outcome": outcome_name, "horizon_days": 180 if outcome_name == "homecare_failure" else 90,
                  "alert_policy": {"bands": {"moderate": 0.1, "high": 0.25, "very_high": 0.5}}},
            metadata={"model_version": str(3 + i)},
        )
    return models


def make_backend(events: pd.DataFrame, customers: pd.DataFrame, models: Mapping[str, RiskModel],
                 features: ToyFeatures | None = None) -> Backend:
    champions = {p: champion_from_model(p, m) for p, m in models.items()}
    store = HistoryStore.from_frames(events, customers, START, END)
    return Backend(champions, features or ToyFeatures(), lambda: store, validate_with_contracts)


# --- a fixture home for `bentoml serve` --------------------------------------------------------

MODELS_FILE = "fixture-models.pkl"


def write_fixture_home(home: Path, n_customers: int = 200) -> dict[str, RiskModel]:
    """data/ (events, customers, dataset.json) and the pickled models; returns the models."""
    events, customers = make_dataset(n_customers)
    models = train_models(events, customers)
    data = home / "data"
    data.mkdir(parents=True, exist_ok=True)
    events.to_parquet(data / "events.parquet", index=False)
    customers.to_parquet(data / "customers.parquet", index=False)
    (data / "dataset.json").write_text(json.dumps({
        "name": "serving-fixture", "source": "synthetic", "seed": 11, "customers": len(customers),
        "extract_start": START.isoformat(), "extract_end": END.isoformat(), "simulator_version": "fixture",
        "created": "2024-01-01T00:00:00",
    }))
    with open(home / MODELS_FILE, "wb") as handle:
        pickle.dump(models, handle)
    return models


def backend_from_home() -> Backend:
    """SOTE_RISK_BACKEND factory: the fixture home's data (re-read on reload) and models."""
    from base.settings import home

    root = home().root

    def champions() -> dict[str, Champion]:  # re-read on reload, as the registry is
        with open(root / MODELS_FILE, "rb") as handle:
            models = pickle.load(handle)
        return {p: champion_from_model(p, m) for p, m in models.items()}

    def load() -> HistoryStore:
        events = pd.read_parquet(root / "data" / "events.parquet")
        customers = pd.read_parquet(root / "data" / "customers.parquet")
        return HistoryStore.from_frames(events, customers, START, END)

    features = ToyFeatures()
    if os.environ.get("SOTE_RISK_FIXTURE_PIPELINE"):  # lets a test start a service with stale models
        features.pipeline_version = os.environ["SOTE_RISK_FIXTURE_PIPELINE"]
    return Backend(champions(), features, load, validate_with_contracts, load_champions=champions)


@lru_cache(maxsize=1)
def shared_fixture() -> tuple[pd.DataFrame, pd.DataFrame, dict[str, RiskModel]]:
    """Data and models built once per test process (treat as read-only)."""
    events, customers = make_dataset()
    return events, customers, train_models(events, customers)
