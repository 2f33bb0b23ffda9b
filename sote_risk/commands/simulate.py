"""CLI commands for the simulator (registered on the main app by sote_risk.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from base.errors import SoteRiskError

if TYPE_CHECKING:  # pragma: no cover
    from synthetic.config import SimulatorConfig
    from synthetic.simulate import SimulatedDataset


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""

    @app.command("simulate")
    def simulate_command(
        customers: int = typer.Option(20_000, "--customers", help="Residents at the extract start (130,000 = the region)."),
        years: int = typer.Option(5, "--years", help="Years of service history (5: enough for temporal train / validation / test splits)."),
        seed: int = typer.Option(42, "--seed", help="Random seed (same seed, same data)."),
        out: Path = typer.Option(..., "--out", help="Dataset folder to create (must not exist or be empty)."),
        truth: bool = typer.Option(True, "--truth/--no-truth", help="Compute the true outcome probabilities."),
        region: str = typer.Option("eksote", "--region", help="Region to simulate: eksote (the default), vantaa-kerava "
                                   "(younger, urban) or kainuu (sparse, older, more home care); the others are for "
                                   "external validation (`sote-risk evaluate --external`)."),
        shifts: Optional[Path] = typer.Option(None, "--shifts", help="A YAML file of changes of the world at a date "
                                              "(synthetic/config.py ShiftConfig: `coding:` changes of how a code is "
                                              "recorded, `homecare_cut:` a home care capacity cut), to test "
                                              "monitoring against a known cause. None by default."),
    ) -> None:
        """Simulate the region's service history with ground truth into OUT."""
        if customers < 1:
            raise SoteRiskError(f"--customers must be a positive number (got {customers})")
        if not 1 <= years <= 30:
            raise SoteRiskError(f"--years must be between 1 and 30 (got {years})")
        if seed < 0:
            raise SoteRiskError(f"--seed must be >= 0 (got {seed})")

        from pydantic import ValidationError

        from data_contracts.regions import UnknownRegionError
        from synthetic.io import check_output
        from synthetic.regions import region_config

        extra = {} if shifts is None else {"shifts": _read_shifts(shifts)}
        try:
            config = region_config(region, customers=customers, years=years, seed=seed, compute_truth=truth, **extra)
        except UnknownRegionError as error:
            raise SoteRiskError(f"--region: {error}") from None
        except ValidationError as error:
            raise SoteRiskError(f"--shifts {shifts}: {error}") from None
        check_output(out)  # fail before spending minutes on the simulation
        dataset = simulate_to(config, out)
        typer.echo(
            f"wrote {out}: {config.region}, {len(dataset.customers):,} customers, {len(dataset.events):,} events, "
            f"{len(dataset.risk):,} truth rows ({dataset.metadata['extract_start'][:10]} .. "
            f"{dataset.metadata['extract_end'][:10]})"
        )


def _read_shifts(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise SoteRiskError(f"--shifts {path}: cannot read it ({error})") from None
    if not isinstance(data, dict):
        raise SoteRiskError(f"--shifts {path}: expected a mapping with `coding:` and/or `homecare_cut:`")
    return data


def simulate_to(config: "SimulatorConfig", out: Path) -> "SimulatedDataset":
    """Simulate with a progress bar and write the dataset folder atomically (shared with demo)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from synthetic.io import write_simulated
    from synthetic.simulate import simulate

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} months"),
                  TimeElapsedColumn(), transient=True) as progress:
        task = progress.add_task("simulating", total=config.burn_in_months + 12 * config.years)
        dataset = simulate(config, progress=lambda done, total: progress.update(task, completed=done))
        progress.update(task, description="writing")
        write_simulated(dataset, out)
    return dataset
