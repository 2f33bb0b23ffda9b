"""The `sote-risk` command line: thin commands that parse options and call the library.

Each area registers its own commands from sote_risk/commands/<area>.py, so the areas do not
edit one shared file. Imports of heavy libraries happen inside commands, not here.
"""

from __future__ import annotations

import logging
import sys

import typer

from sote_risk.commands import data as data_commands
from sote_risk.commands import simulate as simulate_commands
from sote_risk.commands import features as features_commands
from sote_risk.commands import training as training_commands
from sote_risk.commands import monitoring as monitoring_commands
from sote_risk.commands import serving as serving_commands
from sote_risk.commands import alerts as alerts_commands
from sote_risk.commands import demo as demo_commands
from sote_risk.commands import costs as costs_commands
from sote_risk.commands import interventions as intervention_commands
from sote_risk import logs
from base.private import private_files
from base.settings import quiet_third_parties
from base.errors import SoteRiskError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="sote-risk: early risk alerts for integrated social and health care (Eksote).",
)

for module in (simulate_commands, data_commands, features_commands, training_commands, monitoring_commands,
               serving_commands, alerts_commands, demo_commands, costs_commands, intervention_commands):
    module.register(app)


@app.command()
def version() -> None:
    """Print the sote-risk version."""
    from sote_risk import __version__

    typer.echo(__version__)


@app.callback()
def _root() -> None:
    """sote-risk: early risk alerts for integrated social and health care (Eksote)."""


def _home_root():  # noqa: ANN202 (Path | None)
    """The home folder, or None when the settings cannot name one (the command then fails with
    its own one-line error)."""
    from base.settings import settings

    try:
        return settings().layout.root
    except SoteRiskError:
        return None


def main() -> None:
    """Console entry point: everything it writes private to its user (base/private.py); a
    command's own lines on the terminal, everything the libraries log or warn in the home
    folder's log (sote_risk/logs.py); a SoteRiskError becomes one line on stderr
    and a non-zero exit, and so does an unexpected error (its traceback goes to the log).

    Usage errors (unknown options, bad values) are click's own one-line messages (exit 2).
    """
    quiet_third_parties()
    with private_files(_home_root()), logs.home_log() as log:
        try:
            app()
        except SoteRiskError as error:
            typer.echo(f"error: {error}", err=True)
            sys.exit(error.exit_code)
        except Exception as error:  # noqa: BLE001 (a bug: one line here, the traceback in the log)
            if log is None:
                raise
            logging.getLogger("sote_risk").exception("unexpected error")
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            typer.echo(f"error: {type(error).__name__}{': ' + first if first else ''} (traceback in {log})", err=True)
            sys.exit(1)
