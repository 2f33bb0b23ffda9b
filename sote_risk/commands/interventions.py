"""CLI command for evaluating an intervention (registered on the main app by sote_risk.cli).

Thin: parse, read the dataset (and, for simulated data, the simulator's counterfactual twin), call
training.interventions, print. Method and measured figures: docs/INTERVENTIONS.md.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from base.errors import SoteRiskError

if TYPE_CHECKING:  # pragma: no cover
    from training.interventions import InterventionReport


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""

    @app.command("evaluate-intervention")
    def evaluate_intervention_command(
        intervention: str = typer.Option(..., "--intervention", help="remote_visits, medication_robot or home_rehabilitation."),
        data: Optional[Path] = typer.Option(None, "--data", help="Dataset folder (default: the home's data)."),
        bootstrap: int = typer.Option(500, "--bootstrap", help="Customer-bootstrap replicates of the interval."),
        seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
        truth: bool = typer.Option(True, "--truth/--no-truth", help="On simulated data, the true effect from the "
                                   "simulator's counterfactual twin (simulates the region once more)."),
        store: bool = typer.Option(False, "--store", help="Also store the estimate for the customer view's what-if "
                                   "(<home>/interventions/<intervention>.json; docs/INTERVENTIONS.md)."),
    ) -> None:
        """Naive 90-day before/after table of an intervention, a matched difference-in-differences
        estimate of its effect on ER visits and unplanned admissions with a customer-bootstrap
        interval, and on simulated data the true effect."""
        from training.interventions import intervention as known_intervention

        known_intervention(intervention)  # an unknown name fails before any reading
        if bootstrap < 0:
            raise SoteRiskError(f"--bootstrap must be >= 0 (got {bootstrap})")
        if data is None:
            from base.settings import settings

            data = settings().layout.data
        from data_contracts.io import read_dataset
        from training.interventions import evaluate_intervention

        dataset = read_dataset(data)
        twin, note = None, None
        if truth:
            twin, note = _twin_events(data, intervention)
        report = evaluate_intervention(dataset.events, dataset.customers, dataset.extract_start, dataset.extract_end,
                                       intervention, counterfactual_events=twin, bootstrap=bootstrap, seed=seed)
        print_report(report, data, note)
        if store:
            _store(report, dataset, bootstrap, seed)


def _store(report: "InterventionReport", dataset, bootstrap: int, seed: int) -> None:  # noqa: ANN001 (data_contracts.io.Dataset)
    """The what-if estimate of the report's trial rows, written where the service reads it."""
    from base.settings import settings
    from training.whatif import MIN_CELL_STARTERS, estimate, write_estimate

    found = estimate(report.rows, report.intervention, dataset_customers=len(dataset.customers),
                     dataset_events=len(dataset.events), extract_start=dataset.extract_start,
                     extract_end=dataset.extract_end, bootstrap=bootstrap, seed=seed)
    path = write_estimate(settings().layout.interventions, found)
    ratio = "not estimable" if None in (found.rate_ratio, found.rate_ratio_low, found.rate_ratio_high) else \
        f"{found.rate_ratio:.3f} [{found.rate_ratio_low:.3f}, {found.rate_ratio_high:.3f}]"
    typer.echo(f"what-if estimate stored: {path} (unplanned admissions in 90 days, rate ratio {ratio}, {found.matched:,} matched starters, "
               f"{sum(c.starters >= MIN_CELL_STARTERS for c in found.cells)} of {len(found.cells)} matching cells with "
               f"{MIN_CELL_STARTERS} or more)")


def _twin_events(data: Path, intervention: str):  # noqa: ANN202 (DataFrame | None, str | None)
    """The counterfactual twin's events, or None and why not (a real extract has no truth)."""
    from synthetic.counterfactual import NoTwinError, counterfactual_events, simulated_config

    try:
        config = simulated_config(data)
    except NoTwinError as error:
        return None, f"true effect not shown: {error}"
    typer.echo(f"simulating the counterfactual twin ({config.customers:,} residents, seed {config.seed}) ...", err=True)
    return counterfactual_events(config, intervention), None


def _f(value: float, digits: int = 1, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def print_report(report: "InterventionReport", data: Path, note: str | None = None) -> None:
    """Plain aligned lines (readable in a terminal and in a log alike)."""
    from training.interventions import OUTCOMES

    words = {key: text for key, _, text in OUTCOMES}
    iv, design = report.intervention, report.design
    users = report.naive[0].users if report.naive else 0
    echo = typer.echo
    echo(f"{iv.words} ({iv.name}) in {data}")
    echo(f"Naive before/after (the plan's table): {users:,} users, 90 days before and after each one's first start")
    echo(f"  {'outcome':<22}{'before':>8}{'after':>8}{'per 100 users':>18}{'change (percentage units)':>28}{'change %':>11}")
    for row in report.naive:
        per100 = f"{_f(row.per100_before)} -> {_f(row.per100_after)}"
        echo(f"  {words[row.outcome]:<22}{row.before:>8,}{row.after:>8,}{per100:>18}{_f(row.change_units, signed=True):>28}"
             f"{_f(row.change_percent, signed=True) + ' %':>11}")
    echo(f"Design: {design.matched:,} of {design.starters:,} starters matched to {design.control_rows:,} not-yet-starter trial "
         f"rows ({design.control_customers:,} customers) of the same month and cell; difference in differences of the "
         "90 days after and before time zero (the 1st of the month after the start)")
    head = f"  {'outcome':<22}{'effect per 100 starters [95 % CI]':>36}{'relative':>11}"
    if report.truth:
        head += f"{'true effect':>13}{'relative':>11}{'truth inside':>14}{'naive - true':>14}"
    echo(head)
    naive_by = {row.outcome: row for row in report.naive}
    for key, effect in design.effects.items():
        interval = f"{_f(effect.estimate, signed=True)} [{_f(effect.low, signed=True)}, {_f(effect.high, signed=True)}]"
        line = f"  {words[key]:<22}{interval:>36}{_f(effect.relative, signed=True) + ' %':>11}"
        if report.truth:
            true = report.truth[key]
            line += (f"{_f(true.estimate, signed=True):>13}{_f(true.relative, signed=True) + ' %':>11}"
                     f"{'yes' if effect.contains(true.estimate) else 'NO':>14}"
                     f"{_f(naive_by[key].change_units - true.estimate, signed=True):>14}")
        echo(line)
    echo("Effects: events per 100 starters in 90 days (percentage units, as in the plan's table); relative: % of the "
         "starters' events without the intervention" + ("; true effect: the starters' events minus theirs in the "
                                                        "simulator's twin without the effect" if report.truth else ""))
    if report.truth and report.placebo is not None:
        placebo = " and ".join(f"{_f(report.placebo[key], 2, signed=True)} {words[key]}" for key in report.placebo)
        echo(f"Twin check: before time zero, where the effect cannot act, the same starters' events differ between the data and "
             f"the twin by {placebo} per 100; the twin shares {report.twin_agreement:.1%} of the admissions of customers "
             "who never start")
    for line in report.notes + ((note,) if note else ()):
        echo(f"note: {line}")
