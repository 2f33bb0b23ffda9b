"""CLI commands for the simulator (registered on the main app by sote_risk.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from base.errors import SoteRiskError
from sote_risk.spark_options import master_option

if TYPE_CHECKING:  # pragma: no cover
    from pydantic import ValidationError

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
                                              "recorded, `homecare_cut:` a home care capacity cut, `rollouts:` "
                                              "service roll-outs, `ageing:` older in-movers), to test monitoring "
                                              "against a known cause. None by default."),
        regions: Optional[int] = typer.Option(None, "--regions", help="Simulate N regions into one multi-region dataset "
                                              "(OUT/regions.json + OUT/region=<name>/, one Spark task a region; seeds "
                                              "SEED, SEED+1, ...; subject ids unique across regions). Eksote's "
                                              "parameter set unless --region-sets."),
        region_sets: Optional[str] = typer.Option(None, "--region-sets", help="With --regions: the parameter set of each "
                                                  "region, comma-separated (eksote,eksote,kainuu)."),
        master: str = master_option(),
    ) -> None:
        """Simulate the region's service history with ground truth into OUT."""
        if regions is not None or region_sets is not None:
            _simulate_regions(regions, region_sets, customers=customers, years=years, seed=seed, out=out, truth=truth,
                              region=region, shifts=shifts, master=master)
            return
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
            raise SoteRiskError(f"--shifts {shifts}: {_one_line(error)}") from None
        check_output(out)  # fail before spending minutes on the simulation
        dataset = simulate_to(config, out)
        typer.echo(
            f"wrote {out}: {config.region}, {len(dataset.customers):,} customers, {len(dataset.events):,} events, "
            f"{len(dataset.risk):,} truth rows ({dataset.metadata['extract_start'][:10]} .. "
            f"{dataset.metadata['extract_end'][:10]})"
        )


def _simulate_regions(regions: int | None, region_sets: str | None, *, customers: int, years: int, seed: int, out: Path,
                      truth: bool, region: str, shifts: Path | None, master: str) -> None:
    """`simulate --regions N`: a multi-region dataset on Spark (scaleout/simulate.py)."""
    from scaleout.layout import LayoutError
    from scaleout.session import require_java, spark_session
    from scaleout.simulate import plan_regions, simulate_regions
    from synthetic.io import check_output
    from data_contracts.regions import UnknownRegionError
    from sote_risk.spark_options import spark_settings

    if region != "eksote":
        raise SoteRiskError("--region names one region; with --regions use --region-sets (one parameter set a region)")
    if shifts is not None:
        raise SoteRiskError("--shifts applies to one region; it cannot be combined with --regions")
    if customers < 1 or not 1 <= years <= 30 or seed < 0:
        raise SoteRiskError(f"--customers must be positive, --years 1..30 and --seed >= 0 (got {customers}, {years}, {seed})")
    sets = [s.strip() for s in region_sets.split(",") if s.strip()] if region_sets else None
    n = regions if regions is not None else len(sets or [])
    try:
        plans = plan_regions(n, customers=customers, years=years, seed=seed, parameter_sets=sets, truth=truth)
    except UnknownRegionError as error:
        raise SoteRiskError(f"--region-sets: {error}") from None
    except LayoutError as error:
        raise SoteRiskError(str(error)) from None
    require_java()
    check_output(out)  # fail before starting Spark and spending minutes on the simulation
    typer.echo(f"simulating {n} region(s) of {customers:,} residents on Spark ({master})...", err=True)
    with spark_session(spark_settings(master)) as spark:
        entries = simulate_regions(spark, plans, out)
    for entry in entries:
        typer.echo(f"{out}/region={entry.name}: {entry.parameters}, seed {entry.seed}, {entry.customers:,} customers, "
                   f"{entry.events:,} events, ids from {entry.subject_id_offset + 100_000:,}")
    typer.echo(f"wrote {out}/regions.json ({len(entries)} regions)")


def _read_shifts(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise SoteRiskError(f"--shifts {path}: cannot read it ({error})") from None
    if not isinstance(data, dict):
        raise SoteRiskError(f"--shifts {path}: expected a mapping of `coding:`, `homecare_cut:`, `rollouts:` "
                            f"and/or `ageing:`")
    return data


def _one_line(error: "ValidationError") -> str:
    """A config's validation errors on one line: where each is (shifts.rollouts.0.service) and what."""
    parts = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        value = item.get("input")
        if isinstance(value, (str, int, float)) and repr(value) not in message:
            message += f" (got {value!r})"
        where = ".".join(str(part) for part in item["loc"])
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


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
