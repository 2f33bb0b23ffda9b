"""CLI commands for the simulator (registered on the main app by sote_risk.cli)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
