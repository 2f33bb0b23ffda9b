"""CLI commands for the training area (registered on the main app by sote_risk.cli).

Thin: parse options, call training/ and models/, print. Heavy imports happen inside commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from base.errors import SoteRiskError
from sote_risk.status import status_progress
from sote_risk.commands import pooled as pooled_commands
from sote_risk.spark_options import master_option

models_app = typer.Typer(no_args_is_help=True, help="Registered models (MLflow registry).")


def _console():
    """Progress on stderr (stdout holds the results), without rich's source-file column."""
    from rich.console import Console

    return Console(stderr=True, log_path=False)


def _problems(problem: list[str] | None, all_problems: bool, experiments: Path | None) -> list[str]:
    from training.spec import list_problems

    if bool(problem) == all_problems:
        raise SoteRiskError("give --problem P (one or more) or --all, not both and not neither")
    return list_problems(experiments) if all_problems else list(problem)


def train(
    problem: Optional[list[str]] = typer.Option(None, "--problem", "-p", help="Problem id, e.g. elderly-hospitalisation (repeatable)."),
    all_problems: bool = typer.Option(False, "--all", help="Train every spec in experiments/."),
    data: Optional[Path] = typer.Option(None, "--data", "--features", help="Features folder (default: home features); a "
                                        "multi-region one (from `features build --engine spark`) trains one pooled model on Spark."),
    dataset: Optional[Path] = typer.Option(None, "--dataset", help="Dataset folder with truth/ for oracle metrics (default: home data; "
                                           "for multi-region features, the dataset their manifest names)."),
    trials: Optional[int] = typer.Option(None, "--trials", min=1, help="Optuna trial budget (overrides the spec)."),
    experiments: Optional[Path] = typer.Option(None, "--experiments", help="Folder of experiment specs (default: experiments/)."),
    negatives_fraction: Optional[float] = typer.Option(None, "--negatives-fraction", help=pooled_commands.FRACTION_HELP),
    master: str = master_option(),
) -> None:
    """Tune, calibrate, evaluate and register models (alias `challenger`).

    On a multi-region features folder the training table is built on Spark and one pooled model is
    trained over every region, then evaluated region by region.

    Every problem is tried even when an earlier one fails; one line per problem says trained or
    failed (with the reason), and the exit code is 1 when any failed."""
    from base.settings import home
    from sote_risk.memory import release_memory
    from training.data import FeatureTableError
    from scaleout.layout import is_multi_region_features
    from training.pipeline import train_problem
    from training.spec import load_spec

    names = _problems(problem, all_problems, experiments)
    specs = [load_spec(name, experiments).with_trials(trials) for name in names]  # all specs checked before any work
    features_dir = data or home().features
    dataset_dir = dataset or home().data
    if not features_dir.is_dir():  # common to every problem: one error, not one per problem
        raise FeatureTableError(f"features directory {features_dir} does not exist (run `sote-risk features build`)")
    console = _console()
    if is_multi_region_features(features_dir):
        failed = pooled_commands.train_pooled_problems(specs, features_dir, dataset, negatives_fraction, master, console)
        if failed:
            typer.echo(f"error: {len(failed)} of {len(specs)} problem(s) failed: {', '.join(failed)}", err=True)
            raise typer.Exit(code=1)
        return
    pooled_commands.check_single_region_options(negatives_fraction)
    failed: list[str] = []
    for spec in specs:
        release_memory()  # the previous problem's tables: each problem's peak is then its own
        try:
            with status_progress(console, f"{spec.problem}: starting") as progress:
                result = train_problem(spec, features_dir, dataset_dir=dataset_dir, progress=progress)
        except SoteRiskError as error:  # the data or spec cannot support this problem: say why, go on
            failed.append(spec.problem)
            typer.echo(f"{spec.problem}: failed: {_one_line(str(error))}")
            continue
        except Exception as error:  # noqa: BLE001 (a bug in one problem must not stop the others)
            failed.append(spec.problem)
            log = _write_traceback(spec.problem)
            typer.echo(f"{spec.problem}: failed: {type(error).__name__}: {_one_line(str(error))} (traceback in {log})")
            continue
        m, nan = result.metrics, float("nan")
        typer.echo(
            f"{spec.problem}: trained version {result.model_version} (challenger) test_auroc {m['test_auroc']:.3f} "
            f"[{m['test_auroc_ci_low']:.3f}, {m['test_auroc_ci_high']:.3f}] baseline {m['baseline_auroc']:.3f} "
            f"gain {m.get('gain_over_baseline', nan):+.3f} [{m.get('gain_over_baseline_ci_low', nan):+.3f}, "
            f"{m.get('gain_over_baseline_ci_high', nan):+.3f}] oracle {m.get('oracle_auroc', nan):.3f} "
            f"O/E {m.get('test_observed_expected', nan):.2f} [{m.get('test_observed_expected_ci_low', nan):.2f}, "
            f"{m.get('test_observed_expected_ci_high', nan):.2f}] slope {m.get('test_calibration_slope', nan):.2f} "
            f"[{m.get('test_calibration_slope_ci_low', nan):.2f}, {m.get('test_calibration_slope_ci_high', nan):.2f}]"
        )
    if failed:
        typer.echo(f"error: {len(failed)} of {len(specs)} problem(s) failed: {', '.join(failed)}", err=True)
        raise typer.Exit(code=1)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _write_traceback(problem: str) -> Path:
    """The traceback of an unexpected failure, kept in the home folder's logs (not on the terminal)."""
    import traceback

    from base.atomic import atomic_write_text
    from base.settings import home

    return atomic_write_text(home().logs / f"train-{problem}.log", traceback.format_exc())


def evaluate(
    problem: Optional[list[str]] = typer.Option(None, "--problem", "-p", help="Problem id (repeatable)."),
    all_problems: bool = typer.Option(False, "--all", help="Every problem with a registered version under --alias."),
    alias: str = typer.Option("champion", "--alias", help="Registry alias to evaluate."),
    data: Optional[Path] = typer.Option(None, "--data", "--features", help="Features folder (default: home features)."),
    dataset: Optional[Path] = typer.Option(None, "--dataset", help="Dataset folder with truth/ (default: home data)."),
    leave_one_region_out: bool = typer.Option(False, "--leave-one-region-out", help="Multi-region features: for each "
                                              "region, train on the other regions (training and validation periods) "
                                              "and test on its test period; prints the table and writes "
                                              "OUT/loro-<problem>.csv and .md; an MLflow run per fold."),
    held_out: Optional[list[str]] = typer.Option(None, "--held-out", help="With --leave-one-region-out: only these "
                                                 "held-out regions (repeatable; default every region)."),
    negatives_fraction: Optional[float] = typer.Option(None, "--negatives-fraction", help=pooled_commands.FRACTION_HELP),
    trials: Optional[int] = typer.Option(None, "--trials", min=1, help="With --leave-one-region-out: Optuna trials a fold "
                                         "(overrides the spec)."),
    out: Optional[Path] = typer.Option(None, "--out", help="With --leave-one-region-out: folder of the report (default: "
                                       "the home's reports/)."),
    master: str = master_option(),
    external: Optional[Path] = typer.Option(None, "--external", help="Another region's dataset folder (e.g. from "
                                            "`sote-risk simulate --region kainuu`): score the registered models on "
                                            "its test period and report discrimination and calibration, overall and "
                                            "by subgroup (its features are built once into the home's external/)."),
    experiments: Optional[Path] = typer.Option(None, "--experiments", help="Folder of experiment specs (default: experiments/)."),
) -> None:
    """Evaluate a registered model on the test period of the current features, or (--external) of
    another region's data."""
    from base.settings import home
    from training.pipeline import evaluate_registered
    from training.spec import load_spec

    names = _problems(problem, all_problems, experiments)
    specs = [load_spec(name, experiments).with_trials(trials) for name in names]  # unknown problem -> one line, before MLflow
    console = _console()
    if leave_one_region_out:
        _leave_one_region_out(specs, data or home().features, dataset, negatives_fraction, master, held_out, out,
                              external, console)
        return
    for flag, value in (("--held-out", held_out), ("--negatives-fraction", negatives_fraction), ("--trials", trials),
                        ("--out", out)):
        if value:
            raise SoteRiskError(f"{flag} belongs to --leave-one-region-out")
    if external is not None:
        _evaluate_external(names, external, alias, console)
        return
    for name in names:
        with console.status(f"{name}: evaluating"):
            report = evaluate_registered(name, data or home().features, alias=alias, dataset_dir=dataset or home().data,
                                         progress=console.log)
        if len(names) > 1:
            typer.echo(f"== {name}")
        # customer figures come from each customer's rows before their first outcome (training/customers.py)
        for key in EVALUATE_KEYS:
            if key in report.metrics:
                typer.echo(f"{key}\t{report.metrics[key]:.4f}")
        for note in report.notes:
            typer.echo(f"note: {note}")


EVALUATE_KEYS = ("test_auroc", "test_auroc_ci_low", "test_auroc_ci_high", "test_auprc", "test_brier", "test_ece",
                 "test_observed_expected", "test_observed_expected_ci_low", "test_observed_expected_ci_high",
                 "test_calibration_slope", "test_calibration_slope_ci_low", "test_calibration_slope_ci_high",
                 "test_calibration_intercept", "test_calibration_intercept_ci_low", "test_calibration_intercept_ci_high",
                 "baseline_auroc", "gain_over_baseline", "gain_over_baseline_ci_low", "gain_over_baseline_ci_high",
                 "oracle_auroc", "test_ppv", "test_sensitivity", "test_alert_rate", "test_customer_auroc",
                 "test_customer_auroc_ci_low", "test_customer_auroc_ci_high",
                 "test_customer_ppv", "test_customer_sensitivity", "test_customer_lead_days")


def _leave_one_region_out(specs, features_dir: Path, dataset, negatives_fraction, master, held_out, out, external,  # noqa: ANN001
                          console) -> None:  # noqa: ANN001
    from scaleout.layout import is_multi_region_features

    if external is not None:
        raise SoteRiskError("--leave-one-region-out and --external are two different evaluations: give one")
    if not is_multi_region_features(features_dir):
        pooled_commands.check_single_region_options(None, leave_one_region_out=True)
    pooled_commands.leave_one_region_out(specs, features_dir, dataset, negatives_fraction, master, held_out, out, console)


def interval_text(m: dict[str, float], key: str, digits: int = 3, signed: bool = False) -> str:
    """`value [low, high]` of a figure and its 95 % interval (nan where missing)."""
    nan = float("nan")
    form = f"{{:{'+' if signed else ''}.{digits}f}}"
    value, low, high = (m.get(k, nan) for k in (key, f"{key}_ci_low", f"{key}_ci_high"))
    return f"{form.format(value)} [{form.format(low)}, {form.format(high)}]"


def _figure(value: float, digits: int = 3) -> str:
    return "n/a" if value != value else f"{value:.{digits}f}"


def external_line(report) -> str:  # noqa: ANN001 (training.external.ExternalReport, imported lazily)
    """One line per problem and region: every headline figure with its 95 % interval."""
    m, nan = report.metrics, float("nan")
    return (f"{report.problem} on {report.region} (version {report.model_version}, {report.alias}): "
            f"{int(m.get('test_rows', 0)):,} rows, {int(m.get('test_events', 0)):,} outcomes; "
            f"AUROC {interval_text(m, 'test_auroc')} per customer {interval_text(m, 'test_customer_auroc')} "
            f"oracle {_figure(m.get('oracle_auroc', nan))} gain {interval_text(m, 'gain_over_baseline', signed=True)} "
            f"O/E {interval_text(m, 'test_observed_expected', 2)} slope {interval_text(m, 'test_calibration_slope', 2)} "
            f"intercept {interval_text(m, 'test_calibration_intercept', 2, signed=True)}")


def _print_subgroups(table) -> None:  # noqa: ANN001 (a DataFrame)
    def cell(value, digits: int = 2) -> str:  # noqa: ANN001
        if value is None or (isinstance(value, float) and value != value):
            return "-"
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    typer.echo("  attribute\tvalue\trows\tcustomers\toutcomes\tauroc [95% CI]\tO/E [95% CI]\tslope [95% CI]\tintercept [95% CI]")
    for row in table.to_dict("records"):
        figures = [f"{cell(row[k], 3 if k == 'auroc' else 2)} [{cell(row[f'{k}_ci_low'], 3 if k == 'auroc' else 2)}, "
                   f"{cell(row[f'{k}_ci_high'], 3 if k == 'auroc' else 2)}]" for k in ("auroc", "o_e", "slope", "intercept")]
        typer.echo("  " + "\t".join([row["attribute"], row["value"], cell(row["rows"]), cell(row["customers"]),
                                      cell(row["events"]), *figures]))


def _evaluate_external(names: list[str], dataset_dir: Path, alias: str, console) -> None:  # noqa: ANN001
    from training.external import evaluate_external

    failed = []
    for name in names:
        try:
            with console.status(f"{name}: external evaluation"):
                report = evaluate_external(name, dataset_dir, alias=alias, progress=console.log)
        except SoteRiskError as error:
            if len(names) == 1:
                raise
            failed.append(name)
            typer.echo(f"{name}: failed: {_one_line(str(error))}")
            continue
        typer.echo(external_line(report))
        _print_subgroups(report.subgroups)
        for note in report.notes:
            typer.echo(f"note: {note}")
    if failed:
        typer.echo(f"error: {len(failed)} of {len(names)} problem(s) failed: {', '.join(failed)}", err=True)
        raise typer.Exit(code=1)


def recalibrate(
    problem: Optional[list[str]] = typer.Option(None, "--problem", "-p", help="Problem id (repeatable)."),
    all_problems: bool = typer.Option(False, "--all", help="Every problem."),
    data: Path = typer.Option(..., "--data", help="The new region's dataset folder (e.g. from `sote-risk simulate --region kainuu`)."),
    alias: str = typer.Option("champion", "--alias", help="Registry alias of the model to recalibrate."),
    experiments: Optional[Path] = typer.Option(None, "--experiments", help="Folder of experiment specs (default: experiments/)."),
) -> None:
    """Refit only the calibrator of a registered model on a new region's validation period (its
    trees unchanged), re-choose the alert threshold there, and register the result as a new
    version with alias recalibrated-<region>; prints the region's test-period figures before and after."""
    from training.external import recalibrate as run_recalibration
    from training.spec import load_spec

    names = _problems(problem, all_problems, experiments)
    for name in names:
        load_spec(name, experiments)
    console = _console()
    for name in names:
        with console.status(f"{name}: recalibrating"):
            result = run_recalibration(name, data, alias=alias, progress=console.log)
        typer.echo(f"before: {external_line(result.before)}")
        typer.echo(f"after:  {external_line(result.after)}")
        typer.echo(f"{name}: registered version {result.version} as {result.alias} ({result.method} calibrator fitted "
                   f"on {result.after.region}'s validation period; not a champion until promoted)")


def promote(
    problem: str = typer.Option(..., "--problem", "-p", help="Problem id."),
    force: bool = typer.Option(False, "--force", help="Promote even if gates fail (recorded on the model version)."),
) -> None:
    """Move alias `champion` to the challenger if it passes the gates."""
    from training.promotion import promote as run_promotion
    from training.spec import load_spec

    load_spec(problem)
    decision = run_promotion(problem, force=force)
    typer.echo(decision.message())
    for note in decision.notes:
        typer.echo(f"note: {note}")
    if not decision.promoted:
        raise typer.Exit(code=1)
    # Services on this home watch the generation file: they load the new champion within a second.
    from serving.generation import bump_generation, generation_file
    from base.settings import home

    bump_generation(generation_file(home().root))
    typer.echo("running services on this home reload their champions within a second")


def retrain(
    if_degraded: bool = typer.Option(False, "--if-degraded", help="Retrain only the problems whose champion's latest "
                                     "monitoring run (`sote-risk monitor`) breached its thresholds; say which are skipped and why."),
    recalibrate: bool = typer.Option(False, "--recalibrate", help="Keep the champion's trees and refit only its "
                                     "calibrator (and alert threshold) on the latest complete index months whose "
                                     "outcomes closed before the first compared month (spec "
                                     "`monitoring.recalibration_months`, default 3); compared and gated like a "
                                     "retrain, on months held out from the new calibrator. For right after a "
                                     "change, when a full retrain's calibrator would still be fitted on months "
                                     "before it."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="YYYY-MM-DD: train on the data as they stood then and "
                                        "judge by the latest monitoring run dated then or before (default: the latest "
                                        "monitoring run's date; without --if-degraded, the feature table's last index date)."),
    problem: Optional[list[str]] = typer.Option(None, "--problem", "-p", help="Problem id (repeatable; with "
                                                "--if-degraded the default is every problem with a champion)."),
    trials: Optional[int] = typer.Option(None, "--trials", min=1, help="Optuna trial budget (overrides the spec; "
                                         "not with --recalibrate, which trains no trees)."),
    promote_after: bool = typer.Option(False, "--promote", help="Then promote each challenger that passes every gate "
                                       "(as `sote-risk promote`; never forced)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Features folder (default: home features)."),
    dataset: Optional[Path] = typer.Option(None, "--dataset", help="Dataset folder with truth/ (default: home data)."),
    experiments: Optional[Path] = typer.Option(None, "--experiments", help="Folder of experiment specs (default: experiments/)."),
) -> None:
    """Retrain on evidence: a new challenger per problem, trained on the data as of the date, and
    compared with the champion on the same rows of the most recent complete months (paired AUROC
    difference [95 % customer-bootstrap CI], O/E [CI] of both; spec `monitoring.compare_months`),
    recorded on the challenger's version. With --recalibrate the challenger is the champion's trees
    with a calibrator refitted on the recent months before the compared ones (tags
    `recalibrated_from`, `recalibration_months`). Without --if-degraded the named problems are
    retrained whatever their monitoring says. Promotion stays `sote-risk promote` (or --promote):
    its gates refuse a retrained challenger shown worse than the champion on those months."""
    from base.settings import home
    from scaleout.layout import is_multi_region_features
    from training.data import FeatureTableError
    from training.spec import list_problems, load_spec

    when = date_option(as_of, "--as-of")
    if not if_degraded and not problem:
        raise SoteRiskError("retrain: give --if-degraded (the problems whose monitoring breached) or --problem P "
                            "(retrained whatever their monitoring says)")
    if recalibrate and trials is not None:
        raise SoteRiskError("retrain: --trials tunes new trees; --recalibrate keeps the champion's (give one)")
    names = list(dict.fromkeys(problem)) if problem else list_problems(experiments)
    specs = {name: load_spec(name, experiments).with_trials(trials) for name in names}  # unknown problems: one line
    features_dir, dataset_dir = data or home().features, dataset or home().data
    if not features_dir.is_dir():
        raise FeatureTableError(f"features directory {features_dir} does not exist (run `sote-risk features build`)")
    many = is_multi_region_features(features_dir)
    if many and not if_degraded:
        raise SoteRiskError(_MANY_REGIONS.format(features_dir))
    verb = "recalibrating" if recalibrate else "retraining"
    chosen = _retrain_choices(names, specs, features_dir, when, if_degraded, bool(problem),
                              ("to recalibrate" if recalibrate else "to retrain") if many else verb)
    if not chosen:
        typer.echo(f"nothing to {'recalibrate' if recalibrate else 'retrain'}")
        return
    if many:  # the evidence is said above; the training it calls for is not this command's
        raise SoteRiskError(_MANY_REGIONS.format(features_dir))
    console = _console()
    failed, refused = [], []
    for name, evidence, when_name in chosen:
        try:
            with status_progress(console, f"{name}: {verb}") as progress:
                done = _retrain_one(specs[name], features_dir, when_name, evidence, dataset_dir, recalibrate, progress)
        except SoteRiskError as error:
            failed.append(name)
            typer.echo(f"{name}: failed: {_one_line(str(error))}")
            continue
        except Exception as error:  # noqa: BLE001 (a bug in one problem must not stop the others)
            failed.append(name)
            log = _write_traceback(name)
            typer.echo(f"{name}: failed: {type(error).__name__}: {_one_line(str(error))} (traceback in {log})")
            continue
        for line in retrained_lines(done):
            typer.echo(line)
        if promote_after:
            if not _promote_and_say(name):
                refused.append(name)
        elif not done.reasons:
            typer.echo(f"  promote it with `sote-risk promote -p {name}`")
    if failed:
        typer.echo(f"error: {len(failed)} of {len(chosen)} problem(s) failed: {', '.join(failed)}", err=True)
    if failed or refused:
        raise typer.Exit(code=1)


_MANY_REGIONS = ("retrain trains on one region's feature tables as of a date, and {0} is a multi-region features "
                 "folder: train a pooled challenger on it with `sote-risk train -p P --features {0}`, or retrain a "
                 "region with --data on that region's own features folder")


def _retrain_choices(names: list[str], specs: dict, features_dir: Path, when, if_degraded: bool, named: bool,  # noqa: ANN001
                     verb: str) -> list[tuple]:
    """(problem, evidence, as-of) of each problem to retrain, each skipped one said with why; with
    --if-degraded a named problem that cannot be judged is refused before any work."""
    from models.registry import ModelNotFoundError
    from training.retrain import NoMonitorRun, breach_summary, monitor_evidence

    chosen = []
    for name in names:
        if not if_degraded:
            chosen.append((name, None, when if when is not None else _last_index_date(features_dir, specs[name])))
            typer.echo(f"{name}: {verb} as of {chosen[-1][2].date()} (without --if-degraded: whatever its monitoring says)")
            continue
        try:
            evidence = monitor_evidence(name, when)
        except (ModelNotFoundError, NoMonitorRun) as error:
            if named:  # a named problem that cannot be judged: refused before any training
                raise
            typer.echo(f"{name}: skipped: {_one_line(str(error)).removeprefix(name + ': ')}")
            continue
        seen = evidence.seen()
        if not evidence.breached:
            typer.echo(f"{name}: skipped: no breach in its {seen}")
            continue
        chosen.append((name, evidence, when if when is not None else evidence.as_of))
        typer.echo(f"{name}: BREACHED in its {seen}: {breach_summary(evidence)} -> {verb} as of {chosen[-1][2].date()}")
    return chosen


def _retrain_one(spec, features_dir: Path, when, evidence, dataset_dir: Path, recalibrate: bool, progress):  # noqa: ANN001, ANN202
    """One problem's challenger (training/retrain.Retrained): retrained, or recalibrated on recent months."""
    if recalibrate:
        from training.recalibrate_recent import recalibrate_problem

        return recalibrate_problem(spec, features_dir, when, evidence=evidence, dataset_dir=dataset_dir, progress=progress)
    from training.retrain import retrain_problem

    return retrain_problem(spec, features_dir, when, evidence=evidence, dataset_dir=dataset_dir, progress=progress)


def retrained_lines(done) -> list[str]:  # noqa: ANN001 (training.retrain.Retrained)
    """What a retrain or recalibration made, its comparison with the champion and the gates' verdict."""
    r = done.recalibration
    if r:
        months = r["recalibration_months"]
        lines = [f"{done.problem}: recalibrated version {r['recalibrated_from']} as version {done.version} (challenger) "
                 f"as of {done.as_of.date()}: its trees, a {r['calibration_method']} calibrator fitted on "
                 f"{r['recalibration_rows']:,} rows ({r['recalibration_events']:,} outcomes) of index months "
                 f"{months[0]}..{months[-1]}, alert threshold {r['threshold']:.4f}"]
    else:
        lines = [f"{done.problem}: trained version {done.version} (challenger) as of {done.as_of.date()}, test_auroc "
                 f"{interval_text(done.metrics, 'test_auroc')}"]
    lines.append(f"  {done.comparison.line()}" if done.comparison is not None else "  no champion to compare with")
    lines.append(f"  gates: FAIL: {'; '.join(done.reasons)}" if done.reasons else "  gates: pass")
    return lines


def date_option(text: Optional[str], option: str):  # noqa: ANN202 (pd.Timestamp | None)
    import pandas as pd

    if text is None:
        return None
    try:
        return pd.Timestamp(pd.to_datetime(text, format="%Y-%m-%d"))
    except (ValueError, TypeError):
        raise SoteRiskError(f"{option} must be a date YYYY-MM-DD (got {text!r})") from None


def _last_index_date(features_dir: Path, spec):  # noqa: ANN001, ANN202
    """The feature table's last index date (the as-of date of a retrain without evidence)."""
    import pandas as pd

    from training.data import read_feature_table

    return pd.Timestamp(read_feature_table(features_dir, spec, ["prediction_time"])["prediction_time"].max())


def _promote_and_say(problem: str) -> bool:
    """`sote-risk promote`'s decision (never forced), said; running services reload a new champion."""
    from training.promotion import promote as run_promotion

    decision = run_promotion(problem)
    typer.echo(f"  {decision.message()}")
    for note in decision.notes:
        typer.echo(f"  note: {note}")
    if decision.promoted:
        from base.settings import home
        from serving.generation import bump_generation, generation_file

        bump_generation(generation_file(home().root))
    return decision.promoted


def monitored_regions_text(tag: dict) -> str:
    """`models list`'s monitor cell of a version monitored region by region: a breach in any
    region is the problem's, named with its regions and its latest month."""
    regions = tag["regions"]
    breached = {name: entry for name, entry in regions.items() if int(entry[0] or 0)}
    if not breached:
        return f"{tag.get('as_of', '')} ok ({len(regions)} region{'' if len(regions) == 1 else 's'})"
    last_month, last_region = max((str(entry[1]), name) for name, entry in breached.items())
    months = sum(int(entry[0]) for entry in breached.values())
    return (f"{tag.get('as_of', '')} BREACH {months} mo in {', '.join(breached)} ({len(breached)} of {len(regions)} "
            f"regions), last {last_region} {last_month}")


@models_app.command("list")
def list_models() -> None:
    """Problems, versions, aliases and key metrics."""
    from rich.console import Console
    from rich.table import Table

    from training.promotion import list_models as registry_rows

    def short(value: str | None) -> str:
        return f"{float(value):.3f}" if value else ""

    table = Table(title="sote-risk models", caption="n = versions; ! = promoted with --force; monitor = the last "
                  "`sote-risk monitor` run (date, breached months), or a retrained challenger's comparison with the "
                  "champion on the latest complete months (`sote-risk retrain`; its other gates: `sote-risk promote`)")
    table.add_column("problem", overflow="fold", min_width=23)  # fold, never cut: users copy the id
    for column in ("n", "alias", "ver", "auroc", "ece", "base", "oracle"):
        table.add_column(column)
    table.add_column("monitor", overflow="fold")

    def monitored(tag: dict | None, info: dict) -> str:
        if not tag:
            compared = info.get("recent_comparison")
            if not compared:
                return ""
            # only the recent-month rule: the other gates are `sote-risk promote`'s to say
            return (f"recent vs v{info.get('recent_champion_version')}: "
                    + ("not worse" if compared == "passed" else "FAILED"))
        breached = int(tag.get("breached_months") or 0)
        if isinstance(tag.get("regions"), dict):  # regions of a multi-region folder (monitor_run.version_tag)
            return monitored_regions_text(tag)
        last = str(tag.get("last_breach") or "")[:7]
        return f"{tag.get('as_of', '')} " + (f"BREACH {breached} mo, last {last}" if breached else "ok")
    for row in registry_rows():
        aliases = row["aliases"] or {"-": {"version": "-"}}
        for alias, info in aliases.items():
            shown_alias = f"{alias}!" if info.get("promotion_forced") else alias  # ! = forced past gates
            table.add_row(row["problem"], str(row["versions"]), shown_alias, info["version"],
                          *(short(info.get(k)) for k in ("test_auroc", "test_ece", "baseline_auroc", "oracle_auroc")),
                          monitored(info.get("monitor"), info))
    console = Console()
    if not console.is_terminal:  # piped: no terminal width to respect, never crop the table
        console = Console(width=120)
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.command()(train)
    app.command()(evaluate)
    app.command()(recalibrate)
    app.command()(promote)
    app.command()(retrain)
    app.add_typer(models_app, name="models")
