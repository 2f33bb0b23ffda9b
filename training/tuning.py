"""Optuna tuning of LightGBM on the temporal validation period.

The LightGBM Datasets are constructed once per problem (binning is the expensive part) and
reused by every trial; the objective only varies booster parameters, so nothing is re-split or
re-binned inside it. Trials are pruned by the median rule on validation AUROC reported every few
boosting rounds (optuna 5 ships no LightGBM pruning callback without optuna-integration, so the
small callback below reports intermediate values itself).

The study lives in SQLite (home().optuna_db) and is resumed with load_if_exists: its name
includes the spec and data hashes, so a resumed study never mixes trials fitted on other data.
Running again tops the study up to the spec's trial budget.
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass
from typing import Any, Callable

import lightgbm as lgb
import numpy as np
import optuna
import pandas as pd

from models.inputs import FeatureBlock, Inputs, model_input
from training.spec import CategoricalParam, ExperimentSpec, FloatParam, IntParam, SpecError

log = logging.getLogger(__name__)

# binning parameters belong to the Dataset, which is built once: they cannot be tuned
DATASET_PARAMS = ("max_bin", "min_data_in_bin", "bin_construct_sample_cnt", "max_bin_by_feature")
NUM_THREADS = 2


@dataclass
class TrainingData:
    """Model-input matrices (models/inputs.model_input, as scoring builds them) and labels."""

    feature_names: list[str]
    categories: dict[str, list[str]]
    train_x: np.ndarray
    train_y: np.ndarray
    valid_x: np.ndarray
    valid_y: np.ndarray
    # per training row; None = every row weighs 1. Pooled training keeps a fraction F of the
    # training period's negatives and gives them 1/F (training/pooled.py says why)
    train_w: np.ndarray | None = None


@dataclass
class TuningResult:
    booster: lgb.Booster
    params: dict[str, Any]
    best_iteration: int
    best_value: float
    study_name: str
    trials_completed: int
    trials_pruned: int


def categories_of(frame: pd.DataFrame, feature_names: list[str]) -> dict[str, list[str]]:
    """Fixed category lists from the table's `category` dtypes; other non-numeric dtypes are refused."""
    categories = {}
    for name in feature_names:
        dtype = frame[name].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            categories[name] = [str(c) for c in dtype.categories]
        elif not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            raise SpecError(f"feature {name!r} has dtype {dtype}; features must be numeric or pandas category")
    return categories


def monotone_constraints(feature_names: list[str], categories: dict, patterns: list[str]) -> list[int]:
    """+1 for numeric features matching the spec's monotone_increasing globs, else 0."""
    return [
        1 if name not in categories and any(fnmatch.fnmatchcase(name, p) for p in patterns) else 0
        for name in feature_names
    ]


def base_params(spec: ExperimentSpec, data: TrainingData) -> dict[str, Any]:
    params = {
        "objective": "binary",
        "metric": "auc",
        "verbosity": -1,
        "num_threads": NUM_THREADS,
        "seed": spec.seed,
        "deterministic": True,  # same seed, same trees (tests rely on it)
        "force_col_wise": True,
    }
    params.update({k: v for k, v in spec.search.fixed.items() if k not in DATASET_PARAMS})
    constraints = monotone_constraints(data.feature_names, data.categories, spec.monotone_increasing)
    if any(constraints):
        params["monotone_constraints"] = constraints
        params["monotone_constraints_method"] = "intermediate"
    return params


def build_datasets(spec: ExperimentSpec, data: TrainingData) -> tuple[lgb.Dataset, lgb.Dataset]:
    tuned_binning = [k for k in spec.search.params if k in DATASET_PARAMS]
    if tuned_binning:
        raise SpecError(f"{spec.problem}: search.params cannot tune Dataset parameters {tuned_binning}; fix them in search.fixed")
    dataset_params = {k: v for k, v in spec.search.fixed.items() if k in DATASET_PARAMS}
    # feature_pre_filter off so min_data_in_leaf may change between trials on the same Dataset
    dataset_params.update({"feature_pre_filter": False, "verbosity": -1, "num_threads": NUM_THREADS})
    categorical = list(data.categories) or "auto"
    train = lgb.Dataset(
        data.train_x, label=data.train_y, weight=data.train_w, feature_name=list(data.feature_names), categorical_feature=categorical,
        params=dataset_params, free_raw_data=False,
    )
    valid = lgb.Dataset(data.valid_x, label=data.valid_y, reference=train, feature_name=list(data.feature_names),
                        params=dataset_params, free_raw_data=False)
    train.construct()
    valid.construct()
    return train, valid


def suggest(trial: optuna.Trial, spec: ExperimentSpec) -> dict[str, Any]:
    params = {}
    for name, p in spec.search.params.items():
        if isinstance(p, FloatParam):
            params[name] = trial.suggest_float(name, p.low, p.high, log=p.log)
        elif isinstance(p, IntParam):
            params[name] = trial.suggest_int(name, p.low, p.high, log=p.log)
        elif isinstance(p, CategoricalParam):
            params[name] = trial.suggest_categorical(name, p.choices)
    return params


def _pruning_callback(trial: optuna.Trial, every: int) -> Callable:
    def callback(env: lgb.callback.CallbackEnv) -> None:
        if (env.iteration + 1) % every:
            return
        for data_name, metric, value, _ in env.evaluation_result_list:
            if data_name == "validation" and metric == "auc":
                trial.report(value, env.iteration)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"validation auc {value:.4f} at round {env.iteration + 1}")

    callback.order = 40  # after evaluation, before early stopping's bookkeeping
    return callback


def fit_booster(
    params: dict[str, Any], train: lgb.Dataset, valid: lgb.Dataset, spec: ExperimentSpec, extra_callbacks=()
) -> lgb.Booster:
    return lgb.train(
        params,
        train,
        num_boost_round=spec.search.num_boost_round,
        valid_sets=[valid],
        valid_names=["validation"],
        callbacks=[lgb.early_stopping(spec.search.early_stopping_rounds, verbose=False), *extra_callbacks],
    )


def tune(
    spec: ExperimentSpec,
    data: TrainingData,
    *,
    storage: str,
    study_name: str,
    on_trial: Callable[[optuna.study.Study, optuna.trial.FrozenTrial], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TuningResult:
    """Run (or resume) the study up to the spec's trial budget; refit the best trial."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    train, valid = build_datasets(spec, data)
    fixed = base_params(spec, data)
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=spec.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=spec.search.report_every * 3),
        load_if_exists=True,
    )

    def objective(trial: optuna.Trial) -> float:
        booster = fit_booster({**fixed, **suggest(trial, spec)}, train, valid, spec, [_pruning_callback(trial, spec.search.report_every)])
        trial.set_user_attr("best_iteration", int(booster.best_iteration))
        return float(booster.best_score["validation"]["auc"])

    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len(study.get_trials(deepcopy=False, states=finished))
    remaining = max(spec.search.trials - done, 0)
    callbacks = []
    if on_trial:
        callbacks.append(on_trial)
    if progress:
        callbacks.append(lambda s, t: progress(len(s.get_trials(deepcopy=False, states=finished)), spec.search.trials))
    if remaining:
        study.optimize(objective, n_trials=remaining, callbacks=callbacks, gc_after_trial=False)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise SpecError(f"{spec.problem}: no Optuna trial completed in study {study_name}")
    best = study.best_trial
    # refit the best parameters: deterministic, so identical to the trial (also when it ran in
    # an earlier, resumed session whose booster is gone)
    params = {**fixed, **best.params}
    booster = fit_booster(params, train, valid, spec)
    # The booster would otherwise keep both Datasets, and with them (free_raw_data=False) the raw
    # training and validation frames, alive as long as the model object (0.3 GB of the 9.0 GB peak of
    # two problems in one `train` at region size; shap's import errors held the rest, see
    # explain/shap_import.py).
    booster.free_dataset()
    pruned = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,)))
    return TuningResult(booster, params, int(booster.best_iteration), float(best.value), study_name, len(complete), pruned)


def training_data(split_train: pd.DataFrame, split_valid: pd.DataFrame, spec: ExperimentSpec, feature_names: list[str],
                  train_weight: np.ndarray | None = None) -> TrainingData:
    if train_weight is not None and len(train_weight) != len(split_train):
        raise ValueError(f"{len(train_weight)} training weights for {len(split_train)} training rows")
    categories = categories_of(split_train, feature_names)
    inputs = Inputs(spec.problem, feature_names, categories)  # the model to be, as the input builder sees it
    return TrainingData(
        feature_names=feature_names,
        categories=categories,
        train_x=model_input(inputs, FeatureBlock.from_frame(split_train, feature_names, categories, spec.problem)),
        train_y=split_train[spec.label_column].astype(bool).to_numpy().astype(int),
        valid_x=model_input(inputs, FeatureBlock.from_frame(split_valid, feature_names, categories, spec.problem)),
        valid_y=split_valid[spec.label_column].astype(bool).to_numpy().astype(int),
        train_w=None if train_weight is None else np.asarray(train_weight, dtype=float),
    )
