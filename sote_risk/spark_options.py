"""The command line's side of the Spark engine: the --master option and the session settings.

Spark's own output goes to the home folder's log (sote_risk/logs.py), like every library's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:  # pragma: no cover
    from scaleout.session import SparkSettings

MASTER_HELP = ("Spark master: local[*] (every core of this machine, the default), local[N], or a cluster URL "
               "(spark://host:7077, yarn, k8s://...); on a cluster the folders must be on storage every executor sees.")


def master_option() -> str:
    return typer.Option("local[*]", "--master", help=MASTER_HELP)


def spark_settings(master: str) -> "SparkSettings":
    """Session settings for a command: the master it was given, Spark's output in the home log."""
    from base.errors import SoteRiskError
    from base.settings import settings
    from sote_risk.logs import LOG_NAME
    from scaleout.session import SparkSettings

    try:
        log_file = (settings().layout.logs / LOG_NAME).absolute()
    except SoteRiskError:
        log_file = None
    return SparkSettings(master=master, log_file=log_file)
