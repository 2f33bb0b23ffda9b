"""Backtests: judge a spec choice (a split, a search space) without looking at the test period.

A backtest is a copy of a spec whose whole split is moved back so that its "test" period lies in
the real validation window: every bound moves by (validation.end - test.end) months, so the
backtest's test period ends where the real validation period ends and keeps the test period's
length, and the gaps between periods stay as they are. Nothing of a backtest reaches the real test
window, so a choice made on backtest figures leaves the test period untouched (docs/PROTOCOL.md).

    # write the backtest specs of a variant (one folder of YAML specs, usable by `sote-risk train`)
    .venv/bin/python benchmarks/backtest.py write --variant validation-12 --out DIR
    # write them and train each (in-process, as `sote-risk train --experiments DIR/specs/VARIANT`
    # does), printing the backtest figures; features and dataset from the home (or --data, --dataset)
    .venv/bin/python benchmarks/backtest.py run --variant current -p children-hospitalisation --trials 10 --out DIR
    # paired difference of backtest-test AUROC between two variants trained on the same data
    .venv/bin/python benchmarks/backtest.py compare --out DIR --a current --b validation-12

`run` appends one JSON line per problem to DIR/results.jsonl and keeps the backtest-test
predictions (DIR/predictions/<dataset>/<variant>/<problem>.parquet) for `compare`. Its models and
Optuna studies go to DIR/home: a backtest model is registered as its problem's challenger, so it
never goes to the home the data came from. Variants are data (VARIANTS below): overrides of the
spec applied before the shift. Data of a seed or region held out for the final report
(HELD_OUT_SEEDS, HELD_OUT_REGIONS) are refused. The figures measured with this script, and the choices made on them,
are in docs/PROTOCOL.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PERIODS = ("train", "validation", "test")
# held out for the final report (docs/PROTOCOL.md): never backtested, never tuned on. A dataset
# says its region in dataset.json (`region`, Eksote when absent)
HELD_OUT_SEEDS = (20261206,)
HELD_OUT_REGIONS = ("vantaa-kerava", "kainuu")


class BacktestError(ValueError):
    """A spec that cannot be backtested (absolute dates, a test period longer than validation)."""


@dataclass(frozen=True)
class Variant:
    description: str
    overrides: dict[str, Any] = field(default_factory=dict)  # deep-merged into the spec's YAML data
    problems: tuple[str, ...] | None = None  # None: every problem


# The rare-outcome search space before commit b1596aa (also the common-outcome problems' space).
SEARCH_BEFORE_B1596AA = {
    "num_leaves": {"type": "int", "low": 7, "high": 63, "log": True},
    "min_data_in_leaf": {"type": "int", "low": 20, "high": 400, "log": True},
    "lambda_l2": {"type": "float", "low": 0.001, "high": 10.0, "log": True},
}

VARIANTS: dict[str, Variant] = {
    "current": Variant("the spec as it is in experiments/"),
    "validation-12": Variant(
        "a 12-month validation period (train end -26, validation -22..-10)",
        {"split": {"train": {"end": -26}, "validation": {"start": -22, "end": -10}}},
        ("children-hospitalisation",)),
    "search-before-b1596aa": Variant(
        "the rare-outcome search space before b1596aa: 7-63 leaves, 20-400 rows a leaf, L2 0.001-10",
        {"search": {"params": SEARCH_BEFORE_B1596AA}},
        ("children-hospitalisation", "elderly-homecare_failure")),
}


# ---- pure: spec data in, spec data out -------------------------------------------------------

def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of `base` with `overrides` merged in (mappings recursively, anything else replaced)."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def backtest_shift(split: dict[str, Any]) -> int:
    """Months every bound moves: the backtest's test period ends where validation ends."""
    bounds = [split[name].get(key) for name in PERIODS for key in ("start", "end")]
    if any(b is not None and (isinstance(b, bool) or not isinstance(b, int)) for b in bounds):
        raise BacktestError("a backtest moves periods given in months relative to the anchor; this split has dates")
    validation, test = split["validation"], split["test"]
    if test["end"] - test["start"] > validation["end"] - validation["start"]:
        raise BacktestError(f"the test period ({test['end'] - test['start']} months) is longer than validation "
                            f"({validation['end'] - validation['start']}): its backtest would reach past validation")
    return validation["end"] - test["end"]


def backtest_split(split: dict[str, Any]) -> dict[str, Any]:
    """Every period moved back by backtest_shift months (a train period open at the start stays open)."""
    months = backtest_shift(split)
    out = copy.deepcopy(split)
    for name in PERIODS:
        for key in ("start", "end"):
            if out[name].get(key) is not None:
                out[name][key] += months
    return out


def backtest_data(spec_data: dict[str, Any], variant: Variant) -> dict[str, Any]:
    """The YAML data of the backtest spec of a variant: overrides first, then the shift."""
    data = merged(spec_data, variant.overrides)
    return {**data, "split": backtest_split(data["split"])}


def applies(variant: Variant, problem: str) -> bool:
    return variant.problems is None or problem in variant.problems


# ---- I/O edges -------------------------------------------------------------------------------

def write_specs(variant_name: str, problems: list[str], out: Path, experiments: Path) -> Path:
    """Backtest specs of one variant in out/specs/<variant>/; each is checked by the spec loader."""
    import yaml

    from training.spec import load_spec_file

    variant = VARIANTS[variant_name]
    folder = out / "specs" / variant_name
    folder.mkdir(parents=True, exist_ok=True)
    for problem in problems:
        source = experiments / f"{problem}.yaml"
        original = yaml.safe_load(source.read_text(encoding="utf-8"))
        data = backtest_data(original, variant)
        months = backtest_shift(merged(original, variant.overrides)["split"])
        header = (f"# Backtest spec written by benchmarks/backtest.py from {source.name}, variant {variant_name!r} "
                  f"({variant.description}); every period moved {months} months, so its test period lies in the "
                  "real validation window.\n")
        path = folder / f"{problem}.yaml"
        path.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        load_spec_file(path)  # the gap rule and every other check, on the file as written
    return folder


def dataset_identity(dataset: Path) -> dict[str, Any]:
    path = dataset / "dataset.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"name": str(dataset)}


def features_identity(features: Path) -> dict[str, Any]:
    """The dataset.json of the data the feature tables were built from (features.json names it)."""
    path = features / "features.json"
    source = json.loads(path.read_text(encoding="utf-8")).get("source", {}) if path.exists() else {}
    return dataset_identity(Path(source["data"])) if "data" in source else {}


def run(args: argparse.Namespace) -> None:
    from base.settings import home, quiet_third_parties

    quiet_third_parties()
    features = (args.data or home().features).resolve()
    dataset = (args.dataset or home().data).resolve()
    identity = dataset_identity(dataset)
    for what, source in ((dataset, identity), (features, features_identity(features))):
        if source.get("seed") in HELD_OUT_SEEDS:
            sys.exit(f"error: {what} is of seed {source['seed']}, held out for the final report (docs/PROTOCOL.md)")
        if source.get("region") in HELD_OUT_REGIONS:
            sys.exit(f"error: {what} is of region {source['region']}, held out for the final report (docs/PROTOCOL.md)")
    # A backtest model is registered as its problem's challenger: keep it (and its Optuna study) in a
    # home of the backtests' own, never in the home the data came from or on a tracking server.
    os.environ["SOTE_RISK_HOME"] = str((args.out / "home").resolve())
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from training.pipeline import train_problem
    from training.spec import load_spec

    folder = write_specs(args.variant, args.problem, args.out, args.experiments)
    for problem in args.problem:
        spec = load_spec(problem, folder).with_trials(args.trials)
        result = train_problem(spec, features, dataset_dir=dataset)
        m = result.metrics
        record = {"dataset": identity.get("name"), "seed": identity.get("seed"),
                  "residents": identity.get("residents_at_start"), "variant": args.variant, "problem": problem,
                  "trials": spec.search.trials, "periods": result.model.metadata["periods"],
                  "validation_auroc": result.model.metadata["validation_auroc"],
                  **{k: m.get(k) for k in REPORTED}}
        with (args.out / "results.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        print(line(record), flush=True)
        predictions = args.out / "predictions" / str(identity.get("name")) / args.variant
        predictions.mkdir(parents=True, exist_ok=True)
        save_predictions(result, spec, features, predictions / f"{problem}.parquet")


REPORTED = ("train_rows", "train_events", "validation_rows", "validation_events", "test_rows", "test_events",
            "test_auroc", "test_auroc_ci_low", "test_auroc_ci_high", "baseline_auroc", "oracle_auroc",
            "test_observed_expected", "test_observed_expected_ci_low", "test_observed_expected_ci_high",
            "test_calibration_slope", "test_calibration_slope_ci_low", "test_calibration_slope_ci_high")


def line(r: dict[str, Any]) -> str:
    return (f"{r['dataset']} {r['variant']} {r['problem']}: train {r['train_rows']:,.0f} rows "
            f"({r['train_events']:,.0f} events), validation {r['validation_events']:,.0f} events, backtest-test "
            f"{r['test_events']:,.0f} events; validation AUROC {r['validation_auroc']:.3f}; backtest-test AUROC "
            f"{r['test_auroc']:.3f} [{r['test_auroc_ci_low']:.3f}, {r['test_auroc_ci_high']:.3f}] baseline "
            f"{r['baseline_auroc']:.3f} oracle {r['oracle_auroc']:.3f} O/E {r['test_observed_expected']:.2f} "
            f"[{r['test_observed_expected_ci_low']:.2f}, {r['test_observed_expected_ci_high']:.2f}] slope "
            f"{r['test_calibration_slope']:.2f} [{r['test_calibration_slope_ci_low']:.2f}, "
            f"{r['test_calibration_slope_ci_high']:.2f}]")


def save_predictions(result, spec, features: Path, path: Path) -> None:
    """The backtest-test rows' labels and calibrated probabilities (for the paired comparison)."""
    from training.data import read_feature_table
    from training.splits import split_table

    test = split_table(read_feature_table(features, spec), spec).test
    frame = test[["subject_id", "prediction_time"]].copy()
    frame["label"] = test[spec.label_column].astype(bool).to_numpy()
    frame["probability"] = result.model.predict_proba(test)
    frame.to_parquet(path, index=False)


def compare(args: argparse.Namespace) -> None:
    """Paired customer-bootstrap interval of AUROC(b) - AUROC(a) on the same backtest-test rows."""
    import pandas as pd

    from training.evaluate import auroc, bootstrap_auroc_gain_ci

    root = args.out / "predictions"
    for dataset in sorted(p for p in root.iterdir() if p.is_dir()):
        for path_a in sorted((dataset / args.a).glob("*.parquet")):
            path_b = dataset / args.b / path_a.name
            if not path_b.exists():
                continue
            a, b = pd.read_parquet(path_a), pd.read_parquet(path_b)
            both = a.merge(b, on=["subject_id", "prediction_time", "label"], suffixes=("_a", "_b"), validate="1:1")
            if len(both) != len(a) or len(both) != len(b):
                sys.exit(f"error: {path_a} and {path_b} are not the same rows")
            y = both["label"].to_numpy()
            diff = auroc(y, both["probability_b"]) - auroc(y, both["probability_a"])
            low, high = bootstrap_auroc_gain_ci(both["subject_id"], y, both["probability_b"], both["probability_a"],
                                                args.samples, 20240101)
            print(f"{dataset.name} {path_a.stem}: AUROC {args.b} - {args.a} {diff:+.3f} [{low:+.3f}, {high:+.3f}] "
                  f"({len(both):,} rows, {int(y.sum()):,} events)")


def main() -> None:
    from training.spec import experiments_dir, list_problems

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("write", "run"):
        sub = commands.add_parser(name)
        sub.add_argument("--variant", choices=sorted(VARIANTS), default="current")
        sub.add_argument("-p", "--problem", action="append", help="problems (default: every one the variant applies to)")
        sub.add_argument("--out", type=Path, required=True, help="folder for specs, results and predictions")
        sub.add_argument("--experiments", type=Path, default=experiments_dir(), help="source specs")
        if name == "run":
            sub.add_argument("--trials", type=int, default=None, help="Optuna trials (overrides the spec)")
            sub.add_argument("--data", type=Path, default=None, help="features folder (default: home features)")
            sub.add_argument("--dataset", type=Path, default=None, help="dataset folder (default: home data)")
    sub = commands.add_parser("compare")
    sub.add_argument("--out", type=Path, required=True)
    sub.add_argument("--a", default="current")
    sub.add_argument("--b", required=True)
    sub.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args()
    if args.command == "compare":
        compare(args)
        return
    variant = VARIANTS[args.variant]
    args.problem = args.problem or [p for p in list_problems(args.experiments) if applies(variant, p)]
    if skipped := [p for p in args.problem if not applies(variant, p)]:
        sys.exit(f"error: variant {args.variant!r} is for {', '.join(variant.problems)}, not {', '.join(skipped)}")
    if args.command == "write":
        print(write_specs(args.variant, args.problem, args.out, args.experiments))
    else:
        run(args)


if __name__ == "__main__":
    main()
