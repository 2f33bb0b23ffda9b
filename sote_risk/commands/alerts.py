"""CLI commands for the alerts area (registered on the main app by sote_risk.cli).

    sote-risk alerts list [--status S] [--limit N]
    sote-risk alerts show ID | retry [--operator] ID | retry --all-dead [--operator] [--problem P] [--as-of DATE]
    sote-risk alerts dead | report
    sote-risk alerts dispatch [--once] [--base-delay ... --max-age ...]   cards to the CRM, operator alerts to
                                                   SOTE_RISK_OPERATOR_WEBHOOK_URL (each when its webhook is set)
    sote-risk alerts operator [--status S] [--json]    monitoring's operator alerts and their delivery
    sote-risk crm-receiver --port P [--host 127.0.0.1] [--store FILE] [--mode ok] [--secret-file FILE]
    sote-risk run --as-of DATE [--public-url URL]   the population run (alerts/population.py)
    sote-risk run --engine spark --as-of DATE [--data DATA] [--regions A,B] [--features FEATURES] [--master URL]
                                                   every region of a multi-region dataset (scaleout/scoring.py),
                                                   then each region monitored (scaleout/monitoring.py)

An alert is a card: one per customer per index date, naming every problem that alerted.

Library imports happen inside the commands, so `sote-risk --help` stays fast.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Optional

import typer

from base.errors import SoteRiskError
from sote_risk.spark_options import master_option

alerts_app = typer.Typer(no_args_is_help=True, help="Alerts: the outbox (CRM cards, operator alerts), their delivery and feedback.")

DbOption = typer.Option(None, "--db", help="Outbox database (default: the home folder's outbox.db).")


def _connect(db: Optional[Path]):  # noqa: ANN202
    from alerts import outbox

    try:
        return outbox.connect(db)
    except SoteRiskError:  # OutboxError: already one line naming the file
        raise
    except Exception as error:  # sqlite3 errors name the file; keep the CLI one line
        raise SoteRiskError(f"cannot open outbox {db or 'in the home folder'}: {error}") from None


@alerts_app.command("list")
def list_alerts(
    status: Optional[str] = typer.Option(None, help="queued, pending, delivered, dead, superseded or expired."),
    limit: int = typer.Option(50, min=1),
    db: Optional[Path] = DbOption,
) -> None:
    """List alerts (cards), newest first, with the problems each names (highest risk first)."""
    from alerts import outbox

    rows = outbox.list_alerts(_connect(db), status=status, limit=limit)
    _print_rows(rows)


@alerts_app.command("dead")
def dead(limit: int = typer.Option(50, min=1), db: Optional[Path] = DbOption) -> None:
    """List dead letters (alerts the dispatcher gave up on), with their last error; and how many
    operator alerts are dead (`alerts operator --status dead` lists them)."""
    from alerts import outbox

    conn = _connect(db)
    _print_rows(outbox.list_alerts(conn, status="dead", limit=limit))
    operator_dead = outbox.operator_status_counts(conn).get("dead", 0)
    if operator_dead:
        typer.echo(f"{operator_dead} dead operator alert{'' if operator_dead == 1 else 's'}: "
                   "`sote-risk alerts operator --status dead`, `sote-risk alerts retry --operator`")


@alerts_app.command("show")
def show(alert_id: str, db: Optional[Path] = DbOption) -> None:
    """One alert: its delivery state, the problems it names and the card, as JSON."""
    from alerts import outbox

    typer.echo(json.dumps(outbox.get_alert(_connect(db), alert_id), indent=2, ensure_ascii=False))


@alerts_app.command("retry")
def retry(
    alert_id: Optional[str] = typer.Argument(None, help="One alert's id (or use --all-dead)."),
    all_dead: bool = typer.Option(False, "--all-dead", help="Every dead alert (narrowed by --problem, --as-of)."),
    operator: bool = typer.Option(False, "--operator", help="Operator alerts (monitoring's: `alerts operator`) "
                                  "instead of cards: one id, or --all-dead."),
    problem: Optional[str] = typer.Option(None, "--problem", help="With --all-dead: only alerts naming this problem."),
    as_of: Optional[datetime] = typer.Option(None, "--as-of", formats=["%Y-%m-%d"],
                                             help="With --all-dead: only alerts of this index date (YYYY-MM-DD)."),
    db: Optional[Path] = DbOption,
) -> None:
    """Send a dead alert again now (or every dead one with --all-dead), with a fresh age budget:
    cards, or operator alerts with --operator. `alerts dispatch` (or the running dispatcher)
    delivers it."""
    import time

    from alerts import outbox

    if (alert_id is None) == (not all_dead) or (alert_id is not None and (problem or as_of)):
        raise SoteRiskError("alerts retry: give one alert id, or --all-dead (optionally with --problem and --as-of); "
                            "add --operator for operator alerts")
    table, what = ("operator_alerts", "operator alert") if operator else ("alerts", "alert")
    conn = _connect(db)
    if alert_id is not None:
        _check_kind(outbox.holding_table(conn, alert_id), table, alert_id)
        previous = outbox.retry_alert(conn, alert_id, now=time.time(), table=table)
        typer.echo(f"{what} {alert_id}: {previous} -> pending")
        return
    ids = outbox.retry_dead(conn, now=time.time(), problem=problem, as_of=as_of.date() if as_of else None, table=table)
    narrowed = ", ".join(f for f in (f"problem {problem}" if problem else "",
                                      f"index date {as_of.date()}" if as_of else "") if f)
    typer.echo(f"{len(ids)} dead {what}{'' if len(ids) == 1 else 's'} -> pending" + (f" ({narrowed})" if narrowed else ""))
    for retried in ids:
        typer.echo(f"  {retried}")


def _check_kind(held_in: Optional[str], wanted: str, alert_id: str) -> None:
    """An id of the other kind is named as such, with the command that retries it."""
    if held_in == "operator_alerts" and wanted == "alerts":
        raise SoteRiskError(f"{alert_id} is an operator alert, not a card: `sote-risk alerts retry --operator {alert_id}`")
    if held_in == "alerts" and wanted == "operator_alerts":
        raise SoteRiskError(f"{alert_id} is a card, not an operator alert: `sote-risk alerts retry {alert_id}`")


@alerts_app.command("dispatch")
def dispatch(
    once: bool = typer.Option(False, "--once", help="Deliver what is due now, print counts, exit."),
    webhook: Optional[str] = typer.Option(None, help="CRM webhook URL for cards (default: SOTE_RISK_CRM_WEBHOOK_URL; "
                                          "operator alerts always go to SOTE_RISK_OPERATOR_WEBHOOK_URL)."),
    base_delay: Optional[float] = typer.Option(None, help="Backoff base in seconds (default 2)."),
    cap_delay: Optional[float] = typer.Option(None, help="Backoff cap in seconds (default 120)."),
    max_age: Optional[float] = typer.Option(None, help="An alert failing for longer than this many seconds since it "
                                            "became due is a dead letter (default 86400)."),
    lease: Optional[float] = typer.Option(None, help="Lease on a claimed alert in seconds (default 60)."),
    timeout: Optional[float] = typer.Option(None, help="HTTP request timeout in seconds (default 10)."),
    poll_interval: Optional[float] = typer.Option(None, help="Idle wait between passes in seconds (default 2)."),
    db: Optional[Path] = DbOption,
) -> None:
    """Deliver pending cards to the CRM webhook and pending operator alerts to the operator webhook
    (SOTE_RISK_OPERATOR_WEBHOOK_URL): loop until Ctrl-C / SIGTERM, or --once. The options but
    --webhook apply to both; a kind whose webhook is not set waits in the outbox (the output says
    so). Prints the cards' counts, with the operator alerts' in `operator`, as JSON."""
    import signal

    from alerts import dispatcher
    from sote_risk.logs import echo_logger

    webhooks = dispatcher.webhooks_from_env(
        webhook, base_delay_s=base_delay, cap_delay_s=cap_delay,
        max_age_s=max_age, lease_s=lease, request_timeout_s=timeout, poll_interval_s=poll_interval,
    )
    conn = _connect(db)
    if once:
        counts = dispatcher.run_pass(conn, webhooks)
        for line in webhooks.not_sent().values():
            typer.echo(line, err=True)
        typer.echo(json.dumps(dispatcher.dispatch_summary(counts, webhooks, _waiting(conn))))
        return
    echo_logger(dispatcher.log.name)  # the loop's own lines are its output (they also go to the home's log)
    stop = dispatcher.StopFlag()  # the handler only sets a flag: a burst of signals cannot deadlock it
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop.on_signal)
    total = dispatcher.run_loop(conn, webhooks, stop=stop)
    typer.echo(json.dumps(dispatcher.dispatch_summary(total, webhooks, _waiting(conn))))


def _waiting(conn) -> dict[str, int]:  # noqa: ANN001 (sqlite3.Connection)
    """Pending cards and operator alerts: what waits in the outbox for delivery."""
    from alerts import outbox

    return {"cards": outbox.status_counts(conn).get("pending", 0),
            "operator": outbox.operator_status_counts(conn).get("pending", 0)}


@alerts_app.command("report")
def report(db: Optional[Path] = DbOption, as_json: bool = typer.Option(False, "--json")) -> None:
    """Per problem: the cards naming it sent, delivered, dead, and CRM acceptance with top override
    reasons; then the operator alerts' delivery counts (not with --json, which lists the problems)."""
    from dataclasses import asdict

    from alerts import feedback, outbox

    conn = _connect(db)
    reports = feedback.report(conn)
    if as_json:
        typer.echo(json.dumps([asdict(r) | {"acceptance_rate": r.acceptance_rate} for r in reports], indent=2))
        return
    operator = outbox.operator_status_counts(conn)
    if not reports and not operator:
        typer.echo("no alerts yet")
    for r in reports:
        rate = "n/a" if r.acceptance_rate is None else f"{r.acceptance_rate:.0%}"
        typer.echo(
            f"{r.problem}: sent {r.sent}, delivered {r.delivered}, dead {r.dead}, queued {r.queued}; "
            f"feedback on {r.with_feedback}: accepted {r.accepted}, overridden {r.overridden} (acceptance {rate})"
        )
        for code, display, n in r.top_override_reasons:
            typer.echo(f"    override {code}{f' ({display})' if display else ''}: {n}")
    if operator:
        typer.echo("operator alerts (monitoring): " + ", ".join(f"{operator.get(s, 0)} {s}" for s in outbox.OPERATOR_STATUSES)
                   + " (`sote-risk alerts operator`)")


@alerts_app.command("operator")
def operator_alerts(
    status: Optional[str] = typer.Option(None, help="pending, delivered or dead."),
    as_json: bool = typer.Option(False, "--json", help="Every alert with its payload, as JSON."),
    db: Optional[Path] = DbOption,
) -> None:
    """Operator alerts (a monitored model breached its thresholds: `sote-risk monitor`), oldest
    first, with their delivery state to SOTE_RISK_OPERATOR_WEBHOOK_URL: pending (not delivered yet:
    `sote-risk alerts dispatch`, or the next `monitor` or `run`, sends it when the webhook is set),
    delivered, or dead (the receiver refused it or it failed for too long; its last error is shown;
    `alerts retry --operator ID` or `--all-dead --operator` sends it again)."""
    from alerts import outbox

    rows = outbox.list_operator_alerts(_connect(db), status=status, with_payload=True)
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        typer.echo("no operator alerts" + (f" with status {status}" if status else ""))
        return
    for r in rows:
        payload = r["payload"]
        when = f"delivered {r['delivered_at']}" if r["delivered_at"] else f"attempts={r['attempts']}"
        error = f"  last_error={r['last_error']}" if r.get("last_error") else ""
        region = f" in {payload['region']}" if payload.get("region") else ""  # a region of a multi-region folder
        typer.echo(f"{r['alert_id']}  {r['status']:<9} {r['problem']}{region} version {payload.get('model_version', '?')} "
                   f"({payload.get('alias', '?')}) as_of={r['as_of']}  {payload.get('breached_months', '?')} month(s) "
                   f"breached, latest {payload.get('latest_breach') or '-'}  created {r['created']}  {when}{error}")


def crm_receiver(
    port: int = typer.Option(..., "--port", min=1, max=65535),
    host: str = typer.Option("127.0.0.1", "--host"),
    store: Optional[Path] = typer.Option(None, "--store", help="SQLite file (default: home folder's crm_receiver.db)."),
    mode: Optional[str] = typer.Option(None, "--mode", help="ok, fail500, down or delay (default ok)."),
    secret_file: Optional[Path] = typer.Option(None, "--secret-file", help="The webhook signing secret to verify with "
                                               "(default: the home folder's crm_webhook_secret, what the dispatcher signs with)."),
) -> None:
    """Run a local stand-in for the CRM webhook (POST /alerts, GET /received, POST /admin/mode)."""
    from alerts import crm_receiver as receiver

    if mode is not None and mode not in receiver.MODES:
        raise SoteRiskError(f"unknown receiver mode {mode!r}; expected one of {', '.join(receiver.MODES)}")
    typer.echo(f"CRM receiver on http://{host}:{port}/alerts", err=True)
    receiver.serve(host=host, port=port, store_path=store, mode=mode, secret_file=secret_file)


def run(
    as_of: datetime = typer.Option(..., "--as-of", formats=["%Y-%m-%d"], help="Index date (YYYY-MM-DD), e.g. the first of the month."),
    public_url: Optional[str] = typer.Option(None, "--public-url", show_default="SOTE_RISK_PUBLIC_URL, or http://127.0.0.1:3000",
                                             help="The service's address as browsers reach it, for the clinician-page links in the cards."),
    db: Optional[Path] = DbOption,
    allow_forced: bool = typer.Option(False, "--allow-forced", help="Also raise cards from models forced past their "
                                      "promotion gates (their scores are always recorded; by default their alerts are held)."),
    monitor: bool = typer.Option(True, "--monitor/--no-monitor", help="Then monitor the champions up to DATE "
                                 "(`sote-risk monitor`; a new breach raises an operator alert); with --engine spark, "
                                 "every region run, on its rows of the multi-region features folder (--features)."),
    engine: str = typer.Option("pandas", "--engine", help="pandas (the home's region, in this process; the default) or "
                               "spark (every region of a multi-region dataset, by customer shard; same scores and cards)."),
    data: Optional[Path] = typer.Option(None, "--data", help="With --engine spark: the multi-region dataset "
                                        "(`simulate --regions N`; default: the home's data folder)."),
    regions: Optional[str] = typer.Option(None, "--regions", help="With --engine spark: only these regions (comma list "
                                          "of names as in regions.json; default: every region)."),
    features: Optional[Path] = typer.Option(None, "--features", help="With --engine spark: the multi-region features "
                                            "folder the monitoring step reads (`features build --engine spark`; "
                                            "default: the home's features folder)."),
    master: str = master_option(),
    shard_customers: int = typer.Option(10_000, "--shard-customers", min=1, help="With --engine spark: customers a "
                                        "shard (one task; its memory grows with it)."),
) -> None:
    """Score every customer for every problem whose cohort holds them at DATE, record the scores,
    raise one card per alerted customer (naming each problem, in SOTE_RISK_CRM_LANGUAGE, with a
    signed page link), and deliver them when SOTE_RISK_CRM_WEBHOOK_URL is set; then monitor the
    champions up to DATE (drift, realised performance; a new breach raises an operator alert,
    delivered when SOTE_RISK_OPERATOR_WEBHOOK_URL is set). Safe to re-run. With --engine spark,
    every region of a multi-region dataset on Spark, into the same outbox, then each region
    monitored on its rows of the multi-region features folder."""
    if engine not in ("pandas", "spark"):
        raise SoteRiskError(f"--engine must be pandas or spark, not {engine!r}")
    if engine == "spark":
        if features is not None:  # a folder named on the command line is checked before any work
            if not monitor:
                raise SoteRiskError("--features is the folder the monitoring step reads: it means nothing with --no-monitor")
            check_multi_region_features(features, regions)
        summary = run_spark_command(as_of.date(), data=data, regions=regions, master=master, shard_customers=shard_customers,
                                    public_url=public_url, db=db, allow_forced=allow_forced)
        if monitor:  # the regions the run scored, each on its own rows of the multi-region features
            summary["monitor"] = monitor_step(as_of, db, features=features, regions=list(summary["regions"]))
        typer.echo(json.dumps(summary))
        return
    if data is not None or regions is not None or features is not None:
        raise SoteRiskError("--data, --regions and --features are for --engine spark; the pandas engine runs the home's "
                            "region (SOTE_RISK_HOME's data and features folders)")
    summary = run_population_command(as_of.date(), public_url=public_url, db=db, allow_forced=allow_forced)
    if monitor:
        summary["monitor"] = monitor_step(as_of, db)
    typer.echo(json.dumps(summary))


def monitor_step(as_of: datetime, db: Optional[Path], *, features: Optional[Path] = None,
                 regions: Optional[list[str]] = None) -> dict:
    """`run`'s monitoring step: its table goes to stderr (stdout is the run's JSON summary); a
    step that cannot run (no feature tables, say) is reported in the summary and on stderr, and the
    cards already recorded and delivered stand. `regions` (the Spark run's): those regions of the
    multi-region features folder `features` (default: the home's), which must be one."""
    import pandas as pd

    from base.settings import home
    from sote_risk.commands.monitoring import run_monitoring

    try:
        if regions is not None:
            check_multi_region_features(features or home().features, ",".join(regions))
        return run_monitoring(pd.Timestamp(as_of.date()), None, db=db, data=features, regions=regions,
                              echo=lambda line: typer.echo(line, err=True))
    except SoteRiskError as error:
        typer.echo(f"monitoring step failed: {error}", err=True)
        return {"error": str(error)}


def check_multi_region_features(folder: Path, regions: Optional[str]) -> None:
    """What the Spark run's monitoring step reads: a multi-region features folder holding the
    regions (comma list; None: any), or a one-line error naming the folder."""
    from scaleout.monitoring import monitored_regions
    from sote_risk.commands.monitoring import features_regions, region_names

    if features_regions(folder, None) is None:
        raise SoteRiskError(f"{folder}: not a multi-region features folder (no features.json), which monitoring after "
                            "`run --engine spark` reads: build one with `sote-risk features build --engine spark --data "
                            "DATA --out FEATURES` and pass --features FEATURES")
    monitored_regions(folder, region_names(regions))  # every region of the run is there


def run_population_command(as_of: date, *, public_url: Optional[str] = None, db: Optional[Path] = None,
                           allow_forced: bool = False) -> dict:
    """The `run` command's work (also called by the demo): load, score, alert, deliver, with progress.
    Returns a JSON-ready summary. The cards' links go to `public_url` (default SOTE_RISK_PUBLIC_URL).
    Models forced past their gates raise no card unless `allow_forced`."""
    import time

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from alerts import dispatcher
    from alerts.population import Links, deliver, run_population, steps
    from base.settings import settings
    from scoring.backend import load_backend

    console = Console(stderr=True)
    started = time.perf_counter()
    webhook = settings().crm_webhook_url
    config = dispatcher.config_from_env() if webhook else None  # a bad URL fails before any work
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=False) as progress:
        task = progress.add_task("loading champions and histories", total=None)
        backend = load_backend(settings(), refusal="cannot run the population")
        links = Links.from_settings(public_url)  # a bad address fails before any scoring
        loaded = time.perf_counter() - started
        progress.update(task, total=1 + steps(backend) + (1 if config else 0), completed=1,
                        description=f"{len(backend.history.customers):,} customers loaded")
        conn = _connect(db)
        result = run_population(backend, conn, as_of, links=links, allow_forced=allow_forced,
                                progress=lambda what, n: progress.update(task, advance=n, description=what))
        delivered = None
        if config is not None:
            progress.update(task, description="delivering cards to the CRM")
            delivered = deliver(conn, config)
            progress.update(task, advance=1, description=f"delivered {delivered['delivered']:,} cards")
    _print_result(console, result, allow_forced)
    console.print(f"{result.alerts:,} new cards, one per customer: {result.cards_sent:,} sent, {result.cards_queued:,} "
                  f"waiting for capacity (in {links.language}, links to {links.public_url})")
    if config is None:
        console.print(f"{dispatcher.WEBHOOK_ENV} is not set: cards wait in the outbox for `sote-risk alerts dispatch`")
    return {
        "as_of": result.as_of.date().isoformat(), "run_id": result.run_id, "customers": result.customers,
        "scored": result.scored, "load_seconds": round(loaded, 2), "seconds": round(time.perf_counter() - started, 2),
        **_result_summary(result, links.language),
        "delivered": delivered,
    }


def _print_result(console, result, allow_forced: bool, prefix: str = "") -> None:  # noqa: ANN001 (rich Console, PopulationResult)
    for p in result.problems:
        console.print(f"{prefix}{p.problem}: {p.eligible:,} scored ({p.already_recorded:,} already recorded), "
                      f"named on {p.alerts_sent:,} cards sent and {p.alerts_queued:,} queued, {p.explained:,} explained")
        if p.gate == "forced":
            console.print(f"  {prefix}{p.problem}: its model was FORCED past its promotion gates: "
                          + (f"{p.held:,} alerts held (run with --allow-forced to send them)" if not allow_forced
                             else "its alerts were sent because of --allow-forced, each card flagged"))


def _result_summary(result, language: str) -> dict:  # noqa: ANN001 (PopulationResult)
    return {
        "stage_seconds": {k: round(v, 2) for k, v in result.seconds.items()},
        "cards": {"sent": result.cards_sent, "queued": result.cards_queued, "language": language},
        "problems": {p.problem: {"scored": p.eligible, "new_scores": p.scores_written, "already_recorded": p.already_recorded,
                                 "alerts_sent": p.alerts_sent, "alerts_queued": p.alerts_queued, "explained": p.explained,
                                 "gate": p.gate, "held": p.held}
                     for p in result.problems},
    }


def run_spark_command(as_of: date, *, data: Optional[Path], regions: Optional[str], master: str, shard_customers: int,
                      public_url: Optional[str] = None, db: Optional[Path] = None, allow_forced: bool = False) -> dict:
    """`run --engine spark` (scaleout/scoring.py): the champions from the home's registry, every
    chosen region of the multi-region dataset scored by customer shard on Spark, each region's
    scores and cards recorded into the outbox as `run` records them, then delivered as `run`
    delivers. Returns a JSON-ready summary with a part per region."""
    import time

    from rich.console import Console

    from alerts import dispatcher
    from alerts.population import Links, deliver
    from base.settings import settings
    from data_contracts.regions import DEFAULT_REGION
    from features import pipeline_version
    from scaleout.layout import is_multi_region, read_dataset_manifest
    from scaleout.scoring import run_regions
    from scaleout.session import require_java, spark_session
    from scoring.champions import load_champions, served_problems
    from sote_risk.spark_options import spark_settings

    console = Console(stderr=True)
    started = time.perf_counter()
    s = settings()
    data = data or s.layout.data
    if not is_multi_region(data):
        raise SoteRiskError(f"{data}: --engine spark reads a multi-region dataset (regions.json and region=<name>/ folders, "
                            f"as `sote-risk simulate --regions N` writes); for one region's folder use --engine pandas")
    dataset = read_dataset_manifest(data)
    chosen = [r.strip() for r in regions.split(",") if r.strip()] if regions else None
    if chosen is not None:
        dataset.folders(chosen)  # an unknown name fails here, naming the regions there are
    webhook = s.crm_webhook_url
    config = dispatcher.config_from_env() if webhook else None  # a bad URL fails before any work
    links = Links.from_settings(public_url)
    require_java()
    champions = load_champions(served_problems(s.problems), pipeline_version(), "cannot run the population", s.layout.cache)
    conn = _connect(db)
    console.print(f"champions: {', '.join(f'{p} v{c.version} ({c.gate.status})' for p, c in champions.items())}")
    with spark_session(spark_settings(master)) as spark:
        runs = run_regions(spark, dataset, conn, as_of, champions, home=s.layout.root, regions=chosen, links=links,
                           shard_customers=shard_customers, allow_forced=allow_forced,
                           progress=lambda line: console.print(line))
    delivered = deliver(conn, config) if config is not None else None
    for region in runs:
        if region.parameters not in (None, DEFAULT_REGION):
            console.print(f"{region.region}: a {region.parameters} dataset, scored by champions built for "
                          f"{DEFAULT_REGION}: validate them there first (`sote-risk evaluate --external`)")
        _print_result(console, region.result, allow_forced, prefix=f"{region.region} ")
    sent, queued = sum(r.result.cards_sent for r in runs), sum(r.result.cards_queued for r in runs)
    console.print(f"{sent + queued:,} new cards, one per customer: {sent:,} sent, {queued:,} waiting for capacity "
                  f"(in {links.language}, links to {links.public_url})")
    if config is None:
        console.print(f"{dispatcher.WEBHOOK_ENV} is not set: cards wait in the outbox for `sote-risk alerts dispatch`")
    first = runs[0].result
    return {
        "as_of": first.as_of.date().isoformat(), "run_id": first.run_id, "engine": "spark", "master": master,
        "customers": sum(r.result.customers for r in runs), "scored": sum(r.result.scored for r in runs),
        "seconds": round(time.perf_counter() - started, 2),
        "cards": {"sent": sent, "queued": queued, "language": links.language},
        "regions": {r.region: {"shards": r.shards, "customers": r.result.customers, "scored": r.result.scored,
                               **_result_summary(r.result, links.language)} for r in runs},
        "delivered": delivered,
    }


def _print_rows(rows: list[dict]) -> None:
    if not rows:
        typer.echo("no alerts")
        return
    for r in rows:
        error = f"  last_error={r['last_error']}" if r.get("last_error") else ""
        typer.echo(
            f"{r['alert_id']}  {r['status']:<10} customer={r['subject_id']} as_of={r['as_of']}  "
            f"p={r['probability']:.3f} {r['band']:<9} attempts={r['attempts']}  {','.join(r['problems'])}{error}"
        )


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.add_typer(alerts_app, name="alerts")
    app.command("crm-receiver")(crm_receiver)
    app.command("run")(run)
