"""Training test data: a small synthetic feature table in the INTERFACES.md shape (elderly
segment, catalogue column names), its simulator truth, and a fast experiment spec.

Fixtures are imported by the tests/test_training*.py modules (no shared conftest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

MUNICIPALITIES = ["Lappeenranta", "Imatra", "Lemi", "Luumäki", "Parikkala", "Rautjärvi", "Ruokolahti", "Savitaipale", "Taipalsaari"]
PIPELINE_VERSION = "test-pipeline-1"


# log-odds added per index month: the outcome rate drifts upwards over the table (about 2.5 times
# from the first month to the last), so train, validation and test each have a rate of their own
# and a metric computed on the wrong period shows it
DRIFT_PER_MONTH = 0.03


def synthetic_feature_table(subjects: int = 450, months: int = 40, seed: int = 3,
                            drift: float = DRIFT_PER_MONTH) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(feature table of the elderly segment, truth) with a known risk model behind the labels.

    The last 3 index months run past the end of the extract (censored `extract_end`), some
    customers move away (censored `moved_away`), and a few rows are not eligible. The outcome rate
    drifts over time (`drift` log-odds per month, in the truth too).
    """
    rng = np.random.default_rng(seed)
    times = pd.date_range("2020-01-01", periods=months, freq="MS")
    sid = np.repeat(np.arange(1, subjects + 1, dtype=np.int64) * 7 + 1000, months)
    t = np.tile(times.values, subjects)
    n = len(sid)
    frailty = np.repeat(rng.normal(0, 1, subjects), months) + rng.normal(0, 0.3, n)
    age = np.repeat(rng.uniform(75, 98, subjects), months) + np.tile(np.arange(months) / 12, subjects)
    er90 = rng.poisson(np.exp(-1.2 + 0.6 * frailty))
    er180 = er90 + rng.poisson(np.exp(-1.2 + 0.6 * frailty))
    er365 = er180 + rng.poisson(np.exp(-0.6 + 0.6 * frailty))
    adm365 = rng.poisson(np.exp(-1.5 + 0.5 * frailty))
    month_index = np.tile(np.arange(months), subjects)
    logit = -3.2 - drift * months / 2 + drift * month_index + 0.55 * frailty + 0.35 * er90 + 0.03 * (age - 85) + 0.25 * adm365
    true_p = 1 / (1 + np.exp(-logit))
    label = rng.random(n) < true_p
    frame = pd.DataFrame(
        {
            "subject_id": sid,
            "prediction_time": pd.to_datetime(t).astype("datetime64[us]"),
            "age_years": age,
            "sex": pd.Categorical(np.repeat(rng.choice(["F", "M"], subjects), months), categories=["F", "M"]),
            "municipality": pd.Categorical(
                np.repeat(rng.choice(MUNICIPALITIES, subjects, p=[.45, .2, .05, .05, .05, .05, .05, .05, .05]), months),
                categories=MUNICIPALITIES,
            ),
            "language": pd.Categorical(np.repeat(rng.choice(["fi", "sv", "other"], subjects, p=[.9, .05, .05]), months), categories=["fi", "sv", "other"]),
            "er_visits_90d": er90.astype(float),
            "er_visits_180d": er180.astype(float),
            "er_visits_365d": er365.astype(float),
            "unplanned_admissions_365d": adm365.astype(float),
            "bed_days_365d": (adm365 * rng.gamma(2, 3, n)).round(),
            "chronic_conditions": np.clip(rng.poisson(np.exp(0.3 + 0.3 * frailty)), 0, 8).astype(float),
            "homecare_visits_30d": np.where(rng.random(n) < 0.4, rng.poisson(16, n), 0).astype(float),
            "rai_maple_last": np.where(rng.random(n) < 0.5, np.clip(np.round(3 + frailty), 1, 5), np.nan),
            "rai_cps_last": np.where(rng.random(n) < 0.5, np.clip(np.round(2 + frailty), 0, 6), np.nan),
            "rai_adlh_last": np.where(rng.random(n) < 0.5, np.clip(np.round(2 + frailty), 0, 6), np.nan),
            "fall_alarms_90d": rng.poisson(0.2, n).astype(float),
            "noise_feature": rng.normal(0, 1, n),
        }
    )
    censor = pd.Series(pd.NA, index=frame.index, dtype="string")
    censor[month_index >= months - 3] = "extract_end"
    censor[(rng.random(n) < 0.01) & censor.isna().to_numpy()] = "moved_away"
    eligible = rng.random(n) > 0.02
    for outcome in ("hospitalisation", "homecare_failure"):
        lab = pd.Series(label if outcome == "hospitalisation" else rng.random(n) < true_p / 3, dtype="boolean")
        lab[censor.notna().to_numpy() | ~eligible] = pd.NA
        frame[f"label_{outcome}"] = lab
        frame[f"censor_{outcome}"] = censor.where(eligible, pd.NA)
        frame[f"eligible_{outcome}"] = eligible
    frame["outcome_time_hospitalisation"] = pd.Series(
        np.where(label, frame["prediction_time"] + pd.to_timedelta(rng.integers(1, 91, n), unit="D"), pd.NaT)
    ).astype("datetime64[us]")
    frame["pipeline_version"] = PIPELINE_VERSION
    truth = pd.DataFrame(
        {"subject_id": sid, "prediction_time": frame["prediction_time"], "outcome": "hospitalisation",
         "horizon_days": 90, "true_probability": true_p}
    )
    return frame, truth


def fast_spec_dict(**overrides) -> dict:
    """The real elderly-hospitalisation spec, shrunk for tests (2 trials, few rounds)."""
    path = Path(__file__).resolve().parents[1] / "experiments" / "elderly-hospitalisation.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec["search"].update({"trials": 2, "num_boost_round": 60, "early_stopping_rounds": 10, "report_every": 10})
    # one thread: tests share 2 cores with other suites, and OpenMP spinning under contention is slow
    spec["search"]["fixed"].update({"max_bin": 31, "num_threads": 1})
    spec["evaluation"] = {"bootstrap_samples": 20, "calibration_bins": 10, "shap_sample": 200}
    spec["extra_features"] = ["noise_feature"]  # not in the catalogue: exercises the glob path
    # the table's labels come from a logistic model of its columns, so the logistic baseline is
    # as good as a model can be here: the baseline gate is relaxed like the others
    spec["gates"].update({"max_oe_ratio": 10.0, "min_calibration_slope": 0.05, "max_calibration_slope": 20.0,
                          "subgroup_auroc_tolerance": 0.5, "subgroup_oe_tolerance": 5.0, "min_auroc_over_baseline": -0.1})
    spec.update(overrides)
    return spec


def write_tables(root: Path) -> tuple[Path, Path]:
    frame, truth = synthetic_feature_table()
    features_dir = root / "features"
    features_dir.mkdir(parents=True)
    frame.to_parquet(features_dir / "elderly.parquet")
    (root / "dataset" / "truth").mkdir(parents=True)
    truth.to_parquet(root / "dataset" / "truth" / "risk.parquet")
    return features_dir, root / "dataset"


@pytest.fixture(scope="module")
def feature_tables(tmp_path_factory) -> tuple[Path, Path]:
    """(features dir with elderly.parquet, dataset dir with truth/risk.parquet)."""
    return write_tables(tmp_path_factory.mktemp("data"))


@pytest.fixture()
def sote_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SOTE_RISK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    return tmp_path / "home"
