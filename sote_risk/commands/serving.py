"""CLI commands for the serving area (registered on the main app by sote_risk.cli)."""

from __future__ import annotations

import datetime
from pathlib import Path

import typer

from base.errors import SoteRiskError

keys_app = typer.Typer(no_args_is_help=True, help="API keys of the scoring service (stored hashed in the home folder).")


@keys_app.command("create")
def keys_create(
    role: str = typer.Option(..., "--role", help="crm, clinician or admin"),
    expires_in: str = typer.Option(None, "--expires-in", help="valid for this long: 90d, 12h, 2w (default: until revoked)"),
) -> None:
    """Create a key with this role and print it once (only its hash is kept)."""
    from serving.auth import create_key, parse_duration
    from base.settings import home

    key, record = create_key(home().keys_file, role, parse_duration(expires_in) if expires_in is not None else None)
    typer.echo(key)
    until = f", expires {record.expires}" if record.expires else ""
    typer.echo(f"key id {record.key_id}, role {record.role}{until}: store the key now, it is not shown again", err=True)


@keys_app.command("list")
def keys_list() -> None:
    """List key ids, roles, creation and expiry times (never the keys); an expired key says so."""
    from serving.auth import expired, read_keys, utc_now
    from base.settings import home

    now = utc_now()
    for record in read_keys(home().keys_file).keys:
        until = "never" if record.expires is None else f"{record.expires}{' (expired)' if expired(record, now) else ''}"
        typer.echo(f"{record.key_id}\t{record.role}\t{record.created}\texpires {until}")


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="the key id shown by `keys list`")) -> None:
    """Remove a key; a running service stops accepting it at its next request."""
    from serving.auth import revoke_key
    from base.settings import home

    revoke_key(home().keys_file, key_id)
    typer.echo(f"revoked {key_id}")


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="interface to listen on"),
    port: int = typer.Option(3000, "--port", min=1, max=65535),
    workers: int = typer.Option(None, "--workers", min=1, max=64, show_default="2, or SOTE_RISK_WORKERS",
                                help="worker processes; each holds the models and histories (use the number of cores)"),
) -> None:
    """Start the scoring service (BentoML) on the home folder's data and champion models."""
    import os
    import sys
    from pathlib import Path

    import serving
    from base.settings import env_name, settings
    from scoring.backend import check_ready
    from sote_risk.logs import restore_environment

    # Fail here, in one line, if a setting is bad or a champion missing or stale: a BentoML worker
    # whose __init__ raises only logs a traceback and the server never becomes ready.
    served = check_ready(settings())
    # The link secret exists before the workers start, so they cannot race to make two.
    from base.links import link_secret

    link_secret(settings().layout.link_secret)
    typer.echo(f"serving {', '.join(served)} on http://{host}:{port}", err=True)
    root = Path(serving.__file__).resolve().parent.parent
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    # One OpenMP thread per LightGBM call: requests are single rows, parallel across the API's
    # threads; OpenMP teams per call would only contend for the same cores.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ[env_name("workers")] = str(workers or settings().workers)  # the worker processes read it at import
    # BentoML's `bentoml serve`, with a killed worker replaced within a second (serving/launcher.py)
    argv = [sys.executable, "-m", "serving.launcher", "serve", "serving.service:RiskService",
            "--host", host, "--port", str(port), "--working-dir", str(root)]
    restore_environment()  # as the user set it: the service keeps its own logging (sote_risk/logs.py)
    os.execv(sys.executable, argv)  # the server replaces this process: signals reach it directly


def audit(customer: int = typer.Option(..., "--customer", help="the customer's pseudonym (subject_id); 0 lists posted histories")) -> None:
    """List every read of one customer's risk (time, key id, role, endpoint, problems, model versions).
    Scores of histories a caller posted (/score_history) are not reads of the stored customer with
    that id: they are listed under customer 0 with the posted history's hash."""
    from serving.audit import read_audit
    from base.settings import home

    entries = read_audit(home().audit_db, customer)
    if not entries:
        typer.echo(f"no reads of customer {customer} in {home().audit_db}", err=True)
    for e in entries:
        link = f"\tlink expires {e.link_expires}" if e.link_expires else ""
        link += f"\tposted history {e.posted}" if e.posted else ""
        typer.echo(f"{e.time}\t{e.key_id}\t{e.role}\t{e.endpoint}\t{','.join(e.problems) or '-'}\t{','.join(e.model_versions) or '-'}{link}")


def link(
    customer: int = typer.Option(..., "--customer", min=1, help="the customer's pseudonym (subject_id)"),
    as_of: datetime.datetime = typer.Option(None, "--as-of", formats=["%Y-%m-%d"], show_default="the end of the data",
                                            help="the date the page shows"),
    lang: str = typer.Option("fi", "--lang", help="fi or en"),
    days: int = typer.Option(None, "--days", min=1, max=365, show_default="SOTE_RISK_LINK_DAYS",
                             help="how many days the link opens"),
    months: int = typer.Option(None, "--months", min=1, max=60, show_default="24, or what the data allow",
                               help="the span of the page's timeline and risk trends, in months"),
) -> None:
    """Print a signed link to one customer's clinician page on the service's public address
    (SOTE_RISK_PUBLIC_URL): a browser opens it without a key until it expires; every read is audited."""
    from base.links import customer_page_path, expiry_after, expiry_text, link_secret, public_link
    from base.settings import settings
    from serving.audit import AuditEntry, AuditLog, now

    if lang not in ("fi", "en"):
        raise SoteRiskError(f"--lang must be fi or en, not {lang!r}")
    config = settings()
    layout = config.layout
    day = as_of.date() if as_of is not None else None
    _check_customer(layout.data, customer, day, months)
    expires = expiry_after(days or config.link_days)
    url = public_link(config.public_url, customer_page_path(customer, day, lang, months), link_secret(layout.link_secret), expires)
    log = AuditLog(layout.audit_db)  # who made which link, like the service's POST /page_link
    try:
        log.append([AuditEntry(time=now(), key_id="cli", role="admin", endpoint="link", customer=customer,
                               problems=[], model_versions=[], link_expires=expiry_text(expires))])
    finally:
        log.close()
    typer.echo(url)
    typer.echo(f"opens customer {customer}'s page ({lang}) until {expiry_text(expires)}", err=True)


def _check_customer(data: Path, customer: int, as_of: datetime.date | None, months: int | None = None) -> None:
    """The home's dataset knows the customer, as_of is inside it and the span of `months` before it
    begins no earlier than the data (the service would refuse the page otherwise: better said now
    than by the link)."""
    import pandas as pd

    from data_contracts.io import METADATA_FILE, read_metadata

    metadata = read_metadata(data / METADATA_FILE)  # one line naming the file when there is no dataset
    parquet, csv = data / "customers.parquet", data / "customers.csv"
    if not parquet.exists() and not csv.exists():
        raise SoteRiskError(f"{data}: neither customers.parquet nor customers.csv found")
    ids = (pd.read_parquet(parquet, columns=["subject_id"]) if parquet.exists()
           else pd.read_csv(csv, usecols=["subject_id"]))["subject_id"]
    if not (ids == customer).any():
        raise SoteRiskError(f"--customer {customer}: no such customer in {data}")
    start, end = pd.Timestamp(metadata["extract_start"]), pd.Timestamp(metadata["extract_end"])
    last = end.normalize() + pd.Timedelta(days=1) if end != end.normalize() else end
    if as_of is not None and not start.normalize() <= pd.Timestamp(as_of) <= last:
        raise SoteRiskError(f"--as-of {as_of.isoformat()} is outside the data ({start.date()} .. {last.date()})")
    shown = pd.Timestamp(as_of) if as_of is not None else last
    if months is not None and shown - pd.DateOffset(months=months) < start.normalize():
        raise SoteRiskError(f"--months {months}: the span would begin on {(shown - pd.DateOffset(months=months)).date()}, "
                            f"before the data ({start.date()} .. {last.date()})")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.command("serve")(serve)
    app.command("audit")(audit)
    app.command("link")(link)
    app.add_typer(keys_app, name="keys")
