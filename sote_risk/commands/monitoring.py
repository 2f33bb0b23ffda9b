"""`sote-risk monitor` (registered on the main app by sote_risk.cli), also the monitoring step of
`sote-risk run` (sote_risk/commands/alerts.py).

Thin: parse options, call training/monitor_run.py (one region's tables) or, on a multi-region
features folder, the same once per region (scaleout/monitoring.py), print, raise operator alerts.
Heavy imports happen inside the functions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import typer

from base.errors import SoteRiskError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

Echo = Callable[[str], None]


def _console():
    """Progress on stderr (stdout holds the results), without rich's source-file column."""
    from rich.console import Console

    return Console(stderr=True, log_path=False)


def region_names(text: Optional[str]) -> list[str] | None:
    """`--regions a,b` as a list (None when not given); an empty list is refused."""
    if text is None:
        return None
    names = [r.strip() for r in text.split(",") if r.strip()]
    if not names:
        raise SoteRiskError("--regions names no region (a comma list of names as in the features folder's features.json)")
    return names


def monitor(
    as_of: str = typer.Option(..., "--as-of", help="The monitoring date (YYYY-MM-DD): every index month up to it is "
                              "checked, and outcomes count only where index month + horizon <= it."),
    problem: Optional[list[str]] = typer.Option(None, "--problem", "-p", help="Problem id (repeatable; default: every "
                                                "problem with a version under --alias)."),
    alias: str = typer.Option("champion", "--alias", help="Registry alias of the model to monitor."),
    data: Optional[Path] = typer.Option(None, "--data", "--features", help="Features folder (default: home features); "
                                        "a multi-region one (from `features build --engine spark`) is monitored "
                                        "region by region."),
    regions: Optional[str] = typer.Option(None, "--regions", help="With a multi-region features folder: only these "
                                          "regions (comma list of names as in its features.json; default: every region)."),
    experiments: Optional[Path] = typer.Option(None, "--experiments", help="Folder of experiment specs (thresholds)."),
    db: Optional[Path] = typer.Option(None, "--db", help="Outbox for operator alerts (default: the home's outbox.db)."),
) -> None:
    """Monitor the served models month by month: drift of every feature and of the score against
    the model's training reference (PSI), the alert rate, realised AUROC, O/E and calibration slope
    [95 % CI] where outcomes are complete, an estimate from the scores where they are not, the CRM's
    feedback on the month's alert cards (accepted and overridden shares, or "no feedback"), and the
    breaches of the spec's `monitoring:` thresholds. Recorded in MLflow (kind `monitor`); a new
    breach raises an operator alert through the outbox (delivered to SOTE_RISK_OPERATOR_WEBHOOK_URL
    when it is set). On a multi-region features folder every region is monitored on its own rows
    with the same models, and named in the table, the MLflow run, the home's record and the alert."""
    from sote_risk.commands.training import date_option

    when = date_option(as_of, "--as-of")
    run_monitoring(when, list(problem) if problem else None, alias=alias, data=data, experiments=experiments, db=db,
                   regions=region_names(regions))


@dataclass
class Monitored:
    """What a monitoring run found: each (region, problem)'s report ("" = the home's one region),
    and the problems it could not monitor with why."""

    reports: list[tuple[str, str, object]] = field(default_factory=list)  # (region, problem, MonitorReport)
    failed: dict[tuple[str, str], str] = field(default_factory=dict)  # (region, problem) -> error


def features_regions(features_dir: Path, regions: Optional[list[str]]) -> list[str] | None:
    """The regions to monitor of a multi-region features folder, or None for a single-region one;
    a folder that is neither is refused in one line, naming it."""
    from features.spec import segment_names
    from scaleout.layout import is_multi_region_features
    from scaleout.monitoring import monitored_regions
    from training.data import FeatureTableError, feature_table_path

    if not Path(features_dir).is_dir():
        raise FeatureTableError(f"features directory {features_dir} does not exist (run `sote-risk features build`)")
    if is_multi_region_features(features_dir):  # (the pandas engine's features.json is of another format)
        return monitored_regions(features_dir, regions)
    if regions is not None:
        raise SoteRiskError(f"--regions needs a multi-region features folder (FEATURES/features.json, from `sote-risk "
                            f"features build --engine spark`); {features_dir} holds one region's tables")
    if not any(feature_table_path(features_dir, segment).exists() for segment in segment_names()):
        raise FeatureTableError(f"{features_dir}: not a features folder (no <segment>.parquet table and no "
                                f"features.json; `sote-risk features build` writes one)")
    return None


def run_monitoring(when, problems: Optional[list[str]], *, alias: str = "champion", data: Optional[Path] = None,  # noqa: ANN001
                   experiments: Optional[Path] = None, db: Optional[Path] = None, echo: Echo = typer.echo,
                   regions: Optional[list[str]] = None) -> dict:
    """The monitor command's work (also a step of `sote-risk run`): every problem's report printed,
    operator alerts raised for new breaches and delivered when the operator webhook is set.
    Returns a JSON-ready summary. `problems` None: every problem, skipping those without a model
    under `alias`. On a multi-region features folder, every region (or `regions`) in turn: the
    summary then has `regions` (region -> problem -> figures) instead of `problems`."""
    from alerts import dispatcher
    from base.settings import home
    from training.monitor_run import SegmentTables
    from training.spec import list_problems

    config = dispatcher.operator_config_from_env()  # a bad URL fails before any work
    names = problems or list_problems(experiments)
    features_dir = data or home().features
    chosen = features_regions(features_dir, regions)
    console = _console()
    models = ModelCache(alias, explicit=bool(problems), echo=echo)
    found = Monitored()
    if chosen is None:
        feedback = crm_feedback(db, names)
        tables = SegmentTables(features_dir)  # the columns of each segment's table read once across problems
        _monitor_tables(names, problems, tables, when, models, feedback, experiments, console, echo, found)
    else:
        from scaleout.monitoring import RegionTables
        from sote_risk.memory import release_memory

        for region in chosen:
            release_memory()  # the previous region's tables: a region's peak is its own
            tables = RegionTables(features_dir, region)
            feedback = crm_feedback(db, names, subjects=tables.subjects)  # the region's own cards
            _monitor_tables(names, problems, tables, when, models, feedback, experiments, console, echo, found)
    delivered, raised = _summary(found, alias, db, config, echo)
    summary = {"as_of": str(when.date()), "alias": alias, "delivered": delivered}
    if chosen is None:
        summary["problems"] = {name: _figures(report, raised.get(("", name))) for _, name, report in found.reports}
        summary["failed"] = {name: error for (_, name), error in found.failed.items()}
        return summary
    summary["regions"] = {region: {name: _figures(report, raised.get((region, name)))
                                   for r, name, report in found.reports if r == region} for region in chosen}
    summary["failed"] = {region: {name: error for (r, name), error in found.failed.items() if r == region}
                         for region in chosen if any(r == region for r, _ in found.failed)}
    return summary


def _figures(report, alert_id: Optional[str]) -> dict:  # noqa: ANN001
    return {"model_version": report.model_version, "breached_months": len(report.breaches), "operator_alert": alert_id}


class ModelCache:
    """Each problem's monitored model loaded once for every region (the regions share the champions);
    a problem without one is said once and skipped (refused when the problem was named)."""

    def __init__(self, alias: str, *, explicit: bool, echo: Echo):
        self.alias, self.explicit, self.echo = alias, explicit, echo
        self._found: dict[str, object] = {}

    def get(self, name: str):  # noqa: ANN201 ((RiskModel, ExperimentSpec) or None: skipped)
        """The problem's (model, spec); None when it has no model under the alias (said the first
        time); a model that cannot be monitored (another feature pipeline, say) raises its error
        again for every region."""
        from models.registry import ModelNotFoundError
        from training.monitor_run import monitored_model

        if name not in self._found:
            try:
                self._found[name] = monitored_model(name, self.alias)
            except ModelNotFoundError as error:
                if self.explicit:
                    raise
                self.echo(f"== {name}: skipped ({error})")
                self._found[name] = None
            except SoteRiskError as error:
                self._found[name] = error
        found = self._found[name]
        if isinstance(found, SoteRiskError):
            raise found
        return found


def _monitor_tables(names: list[str], problems: Optional[list[str]], tables, when, models: ModelCache,  # noqa: ANN001
                    feedback: tuple[list | None, str], experiments: Optional[Path], console, echo: Echo,  # noqa: ANN001
                    found: Monitored) -> None:
    """Every problem monitored on one region's tables (`tables.region`: "" for the home's one)."""
    from training.monitor_run import monitor_registered

    region = tables.region
    lead = f"{region}: " if region else ""
    for name in names:
        started = time.perf_counter()
        try:
            loaded = models.get(name)
            if loaded is None:
                continue
            with console.status(f"{lead}{name}: monitoring"):
                report = monitor_registered(name, tables.features_dir, when, alias=models.alias, tables=tables,
                                            experiments=experiments, feedback=feedback[0], feedback_note=feedback[1],
                                            progress=console.log, loaded=loaded)
        except SoteRiskError as error:  # one problem's table or split: the others are still monitored
            if problems:
                raise
            echo(f"== {lead}{name}: NOT monitored: {error}")
            found.failed[region, name] = str(error)
            continue
        echo(f"== {lead}{name} version {report.model_version} ({models.alias}), as of {when.date()} "
             f"[{time.perf_counter() - started:.1f} s]")
        echo(f"reference: {report.reference_source}")
        for line in monitor_lines(report):
            echo(line)
        found.reports.append((region, name, report))


def _summary(found: Monitored, alias: str, db: Optional[Path], config, echo: Echo) -> tuple[dict | None, dict]:  # noqa: ANN001
    """The summary lines, the operator alerts of new breaches (one per region and problem) and
    their delivery. Returns (delivery counts or None, (region, problem) -> alert id)."""
    from alerts import dispatcher, outbox
    from alerts.operator import raise_breach_alert

    echo("== summary")
    raised: dict[tuple[str, str], str] = {}
    conn = outbox.connect(db) if any(report.breaches for *_, report in found.reports) or config is not None else None
    for region, name, report in found.reports:
        breaches = report.breaches
        echo(f"{region + ': ' if region else ''}{name}: "
             f"{'no breach' if not breaches else f'{len(breaches)} month(s) breached'}")
        for line in breaches:
            echo(f"  BREACH {line}")
        notices = report.months[report.months["notices"] != ""]
        if len(notices):
            echo(f"  notice (not a breach) in {len(notices)} month(s), last {notices['month'].iloc[-1]:%Y-%m}: "
                 f"{notices['notices'].iloc[-1]}")
        if breaches and conn is not None:
            alert_id, new = raise_breach_alert(conn, report, alias, report.run_id)
            raised[region, name] = alert_id
            echo(f"  operator alert {alert_id} {'raised' if new else 'already raised (nothing new)'}")
    echo("(estimates assume the model is calibrated; realised figures need index month + horizon <= as-of)")
    delivered = None
    if conn is not None:
        if config is not None:
            delivered = dispatcher.deliver_operator_alerts(conn, config).as_dict()
            echo(f"operator alerts: {delivered['delivered']} delivered, {delivered['retrying']} to retry, "
                 f"{delivered['dead']} dead")
        elif raised:
            echo(f"{dispatcher.OPERATOR_WEBHOOK_ENV} is not set: operator alerts wait in the outbox")
        conn.close()
    for (region, name), error in found.failed.items():
        echo(f"{region + ': ' if region else ''}{name}: NOT monitored: {error}")
    return delivered, raised


def crm_feedback(db: Optional[Path], problems: list[str],
                 subjects: Optional[Callable[[], "np.ndarray"]] = None) -> tuple[list | None, str]:
    """The outbox's CRM feedback by problem and index month (alerts/feedback.py monthly_feedback;
    with `subjects`, only the cards of the customers it returns: one region's, when one outbox
    holds several regions' cards), or None and why it is unknown (no outbox yet: no card was ever
    raised on this home)."""
    from alerts import feedback, outbox
    from base.settings import home

    path = db or home().outbox_db
    if not Path(path).exists():
        return None, f"no outbox at {path} (no card has been raised on this home)"
    chosen = set(subjects().tolist()) if subjects is not None else None
    conn = outbox.connect(path)
    try:
        return feedback.monthly_feedback(conn, problems, subjects=chosen), ""
    finally:
        conn.close()


def feedback_text(row) -> str:  # noqa: ANN001 (a row of MonitorReport.months)
    """A month's CRM feedback for the terminal: counts and shares of the cards with a verdict,
    or that there was none (never 0 % for no feedback)."""
    sent = getattr(row, "crm_sent", float("nan"))
    if sent != sent:  # NaN: unknown (no outbox)
        return "unknown"
    if not sent:
        return "no cards sent"
    judged = int(row.crm_feedback)
    if not judged:
        return f"no feedback ({int(sent)} sent)"
    return (f"acc {int(row.crm_accepted)}/{judged} {row.crm_accepted_share:.0%}, "
            f"ovr {int(row.crm_overridden)}/{judged} {row.crm_overridden_share:.0%}")


def monitor_lines(report) -> list[str]:  # noqa: ANN001 (training.monitoring.MonitorReport, imported lazily)
    """One line per month: rows, alert rate, score and top-feature PSI, then realised figures or
    the estimate (marked `est.`), then the breaches."""
    def ci(value: float, low: float, high: float, digits: int = 2) -> str:
        if value != value:  # NaN
            return "-"
        return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"

    lines = [f"{'month':7}  {'rows':>7}  {'alerts':>6}  {'PSI score':>9}  {'PSI top feature (recent)':<34}  "
             f"{'AUROC':<20}  {'O/E':<18}  {'slope':<18}  {'CRM feedback on cards':<28}  breaches"]
    for row in report.months.itertuples():
        top = f"{row.top_feature_psi:.3f} ({row.top_feature_step_psi:.3f}) {row.top_feature}"[:34]
        if row.complete and row.auroc == row.auroc:
            auroc = ci(row.auroc, row.auroc_ci_low, row.auroc_ci_high, 3)
            oe = ci(row.observed_expected, row.observed_expected_ci_low, row.observed_expected_ci_high)
            slope = ci(row.calibration_slope, row.calibration_slope_ci_low, row.calibration_slope_ci_high)
        else:
            auroc = f"est. {row.estimated_auroc:.3f}"
            oe = f"est. events {row.estimated_events:.0f}"
            slope = "-"
        lines.append(f"{row.month:%Y-%m}  {row.rows:>7,}  {row.alert_rate:>6.1%}  {row.score_psi:>9.3f}  {top:<34}  "
                     f"{auroc:<20}  {oe:<18}  {slope:<18}  {feedback_text(row):<28}  {row.breaches or ('notice: ' + row.notices if row.notices else '-')}")
    lines.extend(f"note: {note}" for note in report.notes)
    return lines


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.command()(monitor)
