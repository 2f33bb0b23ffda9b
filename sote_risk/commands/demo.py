"""`sote-risk demo`: the whole flow on embedded defaults, in the home folder.

Stages: simulate, validate, build features, train and promote every problem, start the service
and a stand-in CRM, run the latest month (score everyone, alert, explain, deliver), save the
clinician pages of the top five customers (Finnish and English, with the model cards they link to,
linked to each other by file name), summarise. Each stage reuses what an earlier run left
in the home folder when it is still valid (so a second demo is quick), and `--fresh` starts over.
The stages call the same library functions as the individual commands; nothing here
re-implements them. Every process the demo starts runs in its own process group and is stopped
at the end, also on failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import typer

from base.errors import SoteRiskError


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""

    @app.command("demo")
    def demo_command(
        customers: int = typer.Option(20_000, "--customers", help="Residents to simulate (130,000 = the region)."),
        seed: int = typer.Option(42, "--seed", help="Random seed for the simulation."),
        fresh: bool = typer.Option(False, "--fresh", help="Delete the home folder's data and start over."),
        trials: int = typer.Option(4, "--trials", min=1, help="Optuna trials per problem (small: this is a demo)."),
        pages: int = typer.Option(5, "--pages", min=0, help="Clinician pages to save (highest risks first)."),
    ) -> None:
        """The whole flow: simulate, validate, features, train, serve, score the latest month, deliver
        alerts to a local CRM, save clinician pages, summarise (runs in the home folder)."""
        if customers < 100:
            raise SoteRiskError(f"--customers must be at least 100 for a meaningful demo (got {customers})")
        if seed < 0:
            raise SoteRiskError(f"--seed must be >= 0 (got {seed})")
        run_demo(customers=customers, seed=seed, fresh=fresh, trials=trials, pages=pages)


SUMMARY_FILE = "demo-summary.json"


def run_demo(*, customers: int, seed: int, fresh: bool, trials: int = 4, pages: int = 5) -> None:
    import signal

    from rich.console import Console

    from base.settings import home

    console = Console()
    layout = home()
    layout.root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if fresh and layout.root.exists():
        for path in (layout.data, layout.features):
            shutil.rmtree(path, ignore_errors=True)
    stamps: dict[str, float] = {}

    def stage(n: int, title: str) -> None:
        stamps[title] = time.monotonic()
        console.rule(f"{n}. {title}")

    stage(1, "simulate the region")
    ensure_dataset(layout.data, customers=customers, seed=seed, console=console)

    stage(2, "validate against the data contracts")
    from sote_risk.commands.data import validate

    validate(layout.data, sources=False)

    from sote_risk import demo_stages

    stage(3, "build features")
    with console.status("features") as status:
        demo_stages.ensure_features(layout.features, layout.data, say=console.print, tick=status.update)

    stage(4, f"train and promote every problem ({trials} trials each)")
    with console.status("training") as status:
        champions = demo_stages.ensure_champions(layout.features, layout.data, trials=trials, say=console.print,
                                                 tick=lambda message: status.update(message))
    served = champions.served
    if not served:
        raise SoteRiskError("no problem could be trained on this data; try more --customers")

    # SIGTERM (e.g. `kill`, a CI timeout) must run the finally below, like Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        summary = serve_and_run(layout, problems=sorted(served), pages=pages, console=console, stage=stage)
    finally:
        signal.signal(signal.SIGTERM, previous)
    summary["models"] = served
    summary["forced"] = champions.forced
    summary["left_out"] = champions.left_out
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary["stage_seconds"] = _durations(stamps, time.monotonic())
    (layout.root / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    print_summary(summary, layout, console)


def _raise_interrupt(signum, frame) -> None:  # noqa: ANN001 (signal handler)
    raise KeyboardInterrupt(f"signal {signum}")


def _durations(stamps: dict[str, float], end: float) -> dict[str, float]:
    items = sorted(stamps.items(), key=lambda kv: kv[1])
    return {title: round((items[i + 1][1] if i + 1 < len(items) else end) - t, 1) for i, (title, t) in enumerate(items)}


def serve_and_run(layout, *, problems: list[str], pages: int, console, stage) -> dict:  # noqa: ANN001
    """Stages 5-7 with the service and the CRM receiver running; both stopped whatever happens."""
    from serving.auth import create_key, revoke_key
    from alerts.dispatcher import WEBHOOK_ENV
    from alerts.webhook_signing import load_secret
    from base.settings import env_name
    from sote_risk import demo_stages
    from sote_risk.commands.alerts import run_population_command
    from sote_risk.processes import free_port, start_cli, wait_ready

    stage(5, "start the service and a local CRM")
    problems_env = env_name("problems")
    keys = {role: create_key(layout.keys_file, role) for role in ("admin", "crm", "clinician")}
    children = []
    try:
        service_port, crm_port = free_port(), free_port()
        env = {env_name("home"): str(layout.root.resolve()), problems_env: ",".join(problems)}
        service = start_cli("service", ["serve", "--host", "127.0.0.1", "--port", str(service_port)],
                            url=f"http://127.0.0.1:{service_port}", log=layout.root / "logs" / "service.log", env=env)
        children.append(service)
        # The receiver verifies each card's signature with the secret the dispatcher signs with.
        secret_file = layout.crm_webhook_secret
        load_secret(secret_file)  # made here, before either side starts (0600)
        receiver = start_cli("CRM receiver", ["crm-receiver", "--host", "127.0.0.1", "--port", str(crm_port),
                                              "--store", str(layout.root / "crm_receiver.db"),
                                              "--secret-file", str(secret_file)],
                             url=f"http://127.0.0.1:{crm_port}", log=layout.root / "logs" / "crm-receiver.log", env=env)
        children.append(receiver)
        console.print(f"service pid {service.pid} on {service.url} (log {service.log}); "
                      f"CRM receiver pid {receiver.pid} on {receiver.url}")
        wait_ready(receiver, "/health", timeout=60)

        as_of = demo_stages.last_index_date(layout.data)
        stage(6, f"score the latest month ({as_of.date()}), alert, explain and deliver")
        saved = {name: os.environ.get(name) for name in (WEBHOOK_ENV, problems_env)}
        os.environ.update({WEBHOOK_ENV: f"{receiver.url}/alerts", problems_env: ",".join(problems)})
        try:
            # The demo serves every model, the forced ones too, and says so; `sote-risk run` holds a
            # forced model's alerts unless told (--allow-forced). Card links go to the public URL
            # (SOTE_RISK_PUBLIC_URL), not this throwaway port: the saved pages are the demo's record.
            run = run_population_command(as_of.date(), allow_forced=True)
            forced = [p for p, v in run["problems"].items() if v["gate"] == "forced"]
            if forced:
                console.print(f"cards from models forced past their gates were sent for the demo (--allow-forced), "
                              f"each flagged on the card: {', '.join(forced)}")
        finally:
            for name, value in saved.items():
                os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
        received = _received(receiver.url)

        stage(7, f"clinician pages of the top {pages} customers")
        with console.status("waiting for the service"):
            waited = wait_ready(service, "/readyz", timeout=300)
        top = demo_stages.top_customers(layout.outbox_db, as_of, pages)
        saved = demo_stages.write_pages(service.url, keys["clinician"][0], [s for s, _ in top], as_of, layout.pages)
        for path in saved.customer_pages:
            console.print(f"  {path}", soft_wrap=True, highlight=False)
        console.print(f"  and the {len(saved.model_cards)} model cards they link to, in {layout.pages}: the pages link to "
                      f"each other by file name, so the folder opens offline", soft_wrap=True, highlight=False)
        pids = {"service": service.tree(), "receiver": receiver.tree()}  # recorded so a test can check they are gone
        return {"as_of": run["as_of"], "customers": run["customers"], "scored": run["scored"],
                "alerts": demo_stages.alerts_at(layout.outbox_db, as_of),
                "new_alerts": sum(v["alerts_sent"] + v["alerts_queued"] for v in run["problems"].values()),
                "delivered": _delivered(layout.outbox_db), "received": received,
                "run_seconds": run["seconds"], "service_ready_after_s": round(waited, 1),
                "pages": [str(p) for p in saved.customer_pages], "model_cards": [str(p) for p in saved.model_cards],
                "service_url": service.url, "receiver_url": receiver.url,
                "pids": pids}
    finally:
        for child in reversed(children):
            child.stop()
        for _, record in keys.values():
            revoke_key(layout.keys_file, record.key_id)  # the demo's keys die with its processes


def _received(url: str) -> int:
    import httpx

    return int(httpx.get(f"{url}/received", timeout=30).json()["count"])


def _delivered(outbox_db: Path) -> int:
    from alerts import outbox

    conn = outbox.connect(outbox_db)
    try:
        return outbox.status_counts(conn).get("delivered", 0)
    finally:
        conn.close()


def print_summary(summary: dict, layout, console) -> None:  # noqa: ANN001
    from rich.table import Table

    console.rule("summary")
    table = Table(title=f"Latest month {summary['as_of']}: {summary['scored']:,} of {summary['customers']:,} customers scored")
    table.add_column("problem")
    table.add_column("cards naming it", justify="right")
    table.add_column("model")
    models = summary.get("models", {})
    for problem in sorted(set(summary["alerts"]) | set(models)):
        table.add_row(problem, f"{summary['alerts'].get(problem, 0):,}", models.get(problem, ""))
    if not summary["new_alerts"]:
        table.caption = "all recorded by an earlier run of this month (a re-run raises nothing twice)"
    console.print(table)
    console.print(f"delivered to the CRM: {summary['delivered']:,} in the outbox, {summary['received']:,} received by the CRM")
    if summary.get("forced"):  # say it again at the end: the scores above came from models that failed their gates
        console.print(f"[yellow]forced past the promotion gates (demo only; see stage 4 for every reason):[/yellow] "
                      f"{', '.join(sorted(summary['forced']))}")
    for problem, reason in sorted(summary.get("left_out", {}).items()):
        console.print(f"[yellow]left out:[/yellow] {problem}: {reason}")
    root = layout.root.resolve()
    console.print("where to look:")
    looks = [  # soft_wrap: commands and paths stay on one line, so they can be copied
        f"  clinician pages   {layout.pages.resolve()}",
        f"  experiments       mlflow ui --backend-store-uri sqlite:///{layout.mlflow_db.resolve()}",
        f"  outbox            {layout.outbox_db.resolve()}  (sote-risk alerts list / alerts report)",
        f"  summary           {root / SUMMARY_FILE}",
    ]
    for line in looks:
        console.print(line, soft_wrap=True, highlight=False)
    console.print(f"\ndemo finished in {summary['seconds']:.0f} s; home folder: {root}", soft_wrap=True, highlight=False)


def ensure_dataset(directory: Path, *, customers: int, seed: int, console) -> None:  # noqa: ANN001
    """Simulate into DIRECTORY unless it already holds a dataset of the same size and seed."""
    import json

    from synthetic.config import SimulatorConfig
    from sote_risk.commands.simulate import simulate_to

    meta_path = directory / "dataset.json"
    if meta_path.exists():
        metadata = json.loads(meta_path.read_text())
        if metadata.get("seed") == seed and metadata.get("residents_at_start") == customers:
            console.print(f"reusing the simulated region in {directory} (use --fresh to start over)")
            return
        shutil.rmtree(directory)
    config = SimulatorConfig(customers=customers, seed=seed)
    dataset = simulate_to(config, directory)
    console.print(f"simulated {len(dataset.customers):,} customers, {len(dataset.events):,} events into {directory}")
