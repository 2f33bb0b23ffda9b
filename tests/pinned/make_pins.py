"""Pins today's /score outputs (scores, reasons, /explain, FHIR) before the house redesign.

Run once at the commit that adds it (`python tests/pinned/make_pins.py`): it simulates a small
region (seed 5, 2,500 residents, 3 years), trains one small deterministic LightGBM per problem on
the real feature tables, saves the models (models/pyfunc save_risk_model) and records what the
service's scoring path returned for a sample of customers at two dates. tests/test_pinned_scores.py
replays the same customers through the code of the day and requires the same bytes.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parents[1]))

SEED, CUSTOMERS, YEARS = 5, 2500, 3
DATES = ["2024-06-01", None]  # None: the end of the data


def simulate_region():
    from synthetic.config import SimulatorConfig
    from synthetic.simulate import simulate

    return simulate(SimulatorConfig(customers=CUSTOMERS, seed=SEED, years=YEARS))


def train(region) -> dict:
    from features import History
    from features.build import build_tables
    from features.pipeline import feature_names
    from features.version import pipeline_version
    from models.calibration import ScoreCalibrator
    from models.pyfunc import save_risk_model
    from models.risk_model import RiskModel
    from training.spec import load_spec, list_problems

    history = History.from_frames(region.events, region.customers)
    start, end = pd.Timestamp(region.metadata["extract_start"]), pd.Timestamp(region.metadata["extract_end"])
    tables = dict(build_tables(history, start, end, workers=1))
    models = {}
    for i, problem in enumerate(list_problems()):
        spec = load_spec(problem)
        table = tables[spec.segment]
        rows = table[table[spec.eligible_column] & table[spec.label_column].notna()]
        names = feature_names(spec.segment)
        categories = {n: list(rows[n].cat.categories) for n in names if isinstance(rows[n].dtype, pd.CategoricalDtype)}
        label = rows[spec.label_column].astype(bool).to_numpy()
        booster = lgb.train(
            {"objective": "binary", "verbose": -1, "num_leaves": 15, "min_data_in_leaf": 20, "num_threads": 1,
             "deterministic": True, "force_row_wise": True, "seed": 7, "learning_rate": 0.1},
            lgb.Dataset(rows[names], label=label.astype(int)), num_boost_round=40,
        )
        raw = booster.predict(rows[names], raw_score=True)
        calibrator = ScoreCalibrator("platt" if i % 2 else "isotonic").fit(raw, label)
        model = RiskModel(problem, booster, calibrator, list(names), categories, pipeline_version(),
                          spec=spec.as_dict(), metadata={"model_version": str(10 + i), "threshold": 0.2})
        save_risk_model(model, ROOT / "models" / problem)
        models[problem] = model
    return models


def pins(region, models) -> dict:
    from scoring.backend import Backend, FeaturesPackage, HistoryStore, champion_from_model
    from alerts.fhir import risk_assessment
    from serving.labels import problem_label
    from scoring.scorer import Scorer

    source = FeaturesPackage()
    store = HistoryStore.from_frames(region.events, region.customers, region.metadata["extract_start"],
                                     region.metadata["extract_end"], features=source)
    champions = {p: champion_from_model(p, m) for p, m in models.items()}
    scorer = Scorer(Backend(champions, source, lambda: store))
    ids = [int(s) for s in store.customers.index]
    out = {"seed": SEED, "customers": CUSTOMERS, "years": YEARS, "dates": DATES, "cases": []}
    for date in DATES:
        as_of = None if date is None else pd.Timestamp(date).date()
        _, items = scorer.score_customers(ids, as_of, 0)
        by_problem: dict[str, list[int]] = {}
        for item in items:
            for risk in item.risks:
                by_problem.setdefault(risk.problem, []).append(item.customer_id)
        chosen = sorted({s for members in by_problem.values() for s in members[:3]} | {ids[0], ids[1]})
        for subject in chosen:
            score = scorer.score_customer(subject, as_of, 5)
            case = {"customer_id": subject, "as_of": date, "score": score.model_dump(mode="json"), "explain": {}, "fhir": {}}
            for risk in score.risks:
                champion = champions[risk.problem]
                case["explain"][risk.problem] = scorer.explain(subject, risk.problem, as_of).model_dump(mode="json")
                case["fhir"][risk.problem] = risk_assessment(
                    subject_id=subject, problem=risk.problem, time=pd.Timestamp(score.as_of),
                    outcome_label=problem_label(champion.segment, champion.outcome, champion.horizon_days, "en"),
                    horizon_days=champion.horizon_days, probability=risk.probability, band=risk.band,
                    model_version=risk.model_version, pipeline_version=risk.pipeline_version, reasons=risk.reasons,
                )
            out["cases"].append(case)
        _, batch = scorer.score_customers(chosen, as_of, 3)
        out.setdefault("batch", {})[str(date)] = [b.model_dump(mode="json") for b in batch]
    return out


def main() -> None:
    region = simulate_region()
    models = train(region)
    result = pins(region, models)
    (ROOT / "pins.json.gz").write_bytes(gzip.compress(json.dumps(result, ensure_ascii=False).encode("utf-8"), mtime=0))
    print(len(result["cases"]), "cases;", sum(len(c["score"]["risks"]) for c in result["cases"]), "risks")


if __name__ == "__main__":
    main()
