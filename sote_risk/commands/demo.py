"""`sote-risk demo`: the whole flow on embedded defaults, in the home folder.

Each stage reuses what an earlier run left in the home folder when it is still valid (so a
second demo is quick), and `--fresh` starts over. The stages call the same library functions
as the individual commands; nothing here re-implements them.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import typer

from sote_risk.errors import SoteRiskError


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""

    @app.command("demo")
    def demo_command(
        customers: int = typer.Option(20_000, "--customers", help="Residents to simulate (130,000 = the region)."),
        seed: int = typer.Option(42, "--seed", help="Random seed for the simulation."),
        fresh: bool = typer.Option(False, "--fresh", help="Delete the home folder's data and start over."),
    ) -> None:
        """Simulate the region, validate it and print the summary (runs in the home folder)."""
        if customers < 100:
            raise SoteRiskError(f"--customers must be at least 100 for a meaningful demo (got {customers})")
        if seed < 0:
            raise SoteRiskError(f"--seed must be >= 0 (got {seed})")
        run_demo(customers=customers, seed=seed, fresh=fresh)


def run_demo(*, customers: int, seed: int, fresh: bool) -> None:
    from rich.console import Console

    from sote_risk.config import home

    console = Console()
    layout = home()
    layout.root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if fresh and layout.root.exists():
        for path in (layout.data, layout.features):
            shutil.rmtree(path, ignore_errors=True)

    console.rule("1. simulate the region")
    ensure_dataset(layout.data, customers=customers, seed=seed, console=console)

    console.rule("2. validate against the data contracts")
    from sote_risk.commands.data import validate

    validate(layout.data, sources=False)

    console.print(f"\ndemo finished in {time.monotonic() - started:.0f} s; home folder: {layout.root.resolve()}")


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
