"""CLI commands for the serving area (registered on the main app by sote_risk.cli)."""

from __future__ import annotations

import typer

keys_app = typer.Typer(no_args_is_help=True, help="API keys of the scoring service (stored hashed in the home folder).")


@keys_app.command("create")
def keys_create(role: str = typer.Option(..., "--role", help="crm, clinician or admin")) -> None:
    """Create a key with this role and print it once (only its hash is kept)."""
    from serving.auth import create_key
    from base.settings import home

    key, record = create_key(home().keys_file, role)
    typer.echo(key)
    typer.echo(f"key id {record.key_id}, role {record.role}: store the key now, it is not shown again", err=True)


@keys_app.command("list")
def keys_list() -> None:
    """List key ids, roles and creation times (never the keys)."""
    from serving.auth import read_keys
    from base.settings import home

    for record in read_keys(home().keys_file).keys:
        typer.echo(f"{record.key_id}\t{record.role}\t{record.created}")


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
    typer.echo(f"serving {', '.join(served)} on http://{host}:{port}", err=True)
    root = Path(serving.__file__).resolve().parent.parent
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    # One OpenMP thread per LightGBM call: requests are single rows, parallel across the API's
    # threads; OpenMP teams per call would only contend for the same cores.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ[env_name("workers")] = str(workers or settings().workers)  # the worker processes read it at import
    argv = [sys.executable, "-m", "bentoml", "serve", "serving.service:RiskService",
            "--host", host, "--port", str(port), "--working-dir", str(root)]
    restore_environment()  # as the user set it: the service keeps its own logging (sote_risk/logs.py)
    os.execv(sys.executable, argv)  # the server replaces this process: signals reach it directly


def audit(customer: int = typer.Option(..., "--customer", help="the customer's pseudonym (subject_id)")) -> None:
    """List every read of one customer's risk (time, key id, role, endpoint, problems, model versions)."""
    from serving.audit import read_audit
    from base.settings import home

    entries = read_audit(home().audit_db, customer)
    if not entries:
        typer.echo(f"no reads of customer {customer} in {home().audit_db}", err=True)
    for e in entries:
        typer.echo(f"{e.time}\t{e.key_id}\t{e.role}\t{e.endpoint}\t{','.join(e.problems) or '-'}\t{','.join(e.model_versions) or '-'}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.command("serve")(serve)
    app.command("audit")(audit)
    app.add_typer(keys_app, name="keys")
