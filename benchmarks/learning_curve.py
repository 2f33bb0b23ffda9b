"""Learning curve of a problem: does the model's gain over its logistic baseline still grow with
more positives? Prints validation AUROC of a fixed LightGBM and of a plain logistic regression on
the spec's baseline features, both trained on growing shares of the training customers.

    .venv/bin/python benchmarks/learning_curve.py --data HOME/features --problem children-hospitalisation

Scores the VALIDATION period only, so the test period stays untouched. The LightGBM settings are
fixed (a typical Optuna choice: learning rate 0.04, 7 leaves, early stopping on validation), so
the curve shows the data, not the tuning. A gain that still rises at 100 % says the problem is
short of positives at this size (issue 4: children and home-care failure).
Measured 2026-11-26 (seed-42 region features, simulator 1.4.0), load ~1.2, gain at 25/50/100 %:
children -0.007 / +0.008 / +0.023 (499 / 958 / 2,030 training events); home-care failure
+0.007 / +0.011 / +0.018 (1,239 / 2,387 / 4,609).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

SHARES = (0.25, 0.5, 1.0)
PARAMS = {"objective": "binary", "learning_rate": 0.04, "num_leaves": 7, "min_data_in_leaf": 100,
          "feature_fraction": 0.7, "lambda_l2": 1.0, "max_bin": 63, "verbose": -1, "seed": 1}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True, help="features folder (features/ output)")
    parser.add_argument("--problem", required=True, help="experiment id, e.g. children-hospitalisation")
    parser.add_argument("--seed", type=int, default=0, help="which customers make up each share")
    args = parser.parse_args()
    if not (args.data / "features.json").exists():
        sys.exit(f"error: {args.data} is not a features folder (no features.json)")

    import lightgbm as lgb
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from training.data import read_feature_table
    from training.spec import SpecError, load_spec
    from training.splits import select_features, split_table

    try:
        spec = load_spec(args.problem)
    except SpecError as error:
        sys.exit(f"error: {error}")
    frame = read_feature_table(args.data, spec)
    split = split_table(frame, spec)
    features = select_features(list(frame.columns), spec)
    baseline = list(spec.baselines.logistic.features)
    train, valid = split.train, split.validation
    y_train = train[spec.label_column].astype(bool).to_numpy()
    y_valid = valid[spec.label_column].astype(bool).to_numpy()
    print(f"{args.problem}: {len(train):,} train rows ({y_train.sum():,} events), {len(valid):,} validation rows "
          f"({y_valid.sum():,} events), {len(features)} features; load {os.getloadavg()[0]:.2f}")
    customers = train["subject_id"].unique()
    np.random.default_rng(args.seed).shuffle(customers)
    params = {**PARAMS, "num_threads": os.cpu_count() or 1}
    for share in SHARES:
        keep = train["subject_id"].isin(customers[: int(share * len(customers))]).to_numpy()
        data = lgb.Dataset(train.loc[keep, features], label=y_train[keep])
        booster = lgb.train(params, data, num_boost_round=400,
                            valid_sets=[lgb.Dataset(valid[features], label=y_valid, reference=data)],
                            callbacks=[lgb.early_stopping(30, verbose=False)])
        model_auc = roc_auc_score(y_valid, booster.predict(valid[features], num_iteration=booster.best_iteration))
        logistic = LogisticRegression(max_iter=2000).fit(train.loc[keep, baseline].fillna(0), y_train[keep])
        base_auc = roc_auc_score(y_valid, logistic.predict_proba(valid[baseline].fillna(0))[:, 1])
        print(f"share {share:4.2f}: {y_train[keep].sum():6,} training events  LightGBM {model_auc:.4f}  "
              f"logistic baseline {base_auc:.4f}  gain {model_auc - base_auc:+.4f}", flush=True)


if __name__ == "__main__":
    main()
