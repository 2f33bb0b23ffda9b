"""CLI commands for the data area (registered on the main app by sote_risk.cli).

Thin commands: parse, call data_contracts, print. Heavy imports happen inside the commands so
`sote-risk --help` stays fast. Contract failures are SoteRiskErrors: the entry point prints
them as `error: ...` (one line per broken rule) and exits 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from data_contracts.io import Dataset

meds_app = typer.Typer(no_args_is_help=True, help="Export to and import from a MEDS dataset folder.")


def validate(
    directory: Path = typer.Argument(..., help="Dataset folder (events, customers, dataset.json)."),
    sources: bool = typer.Option(False, "--sources", help="Also show the year and source of every calibration target."),
) -> None:
    """Check a dataset folder against the contracts and print a summary with base rates vs targets."""
    from rich.console import Console

    from data_contracts.io import read_dataset

    dataset = read_dataset(directory)  # raises ContractError listing every broken rule
    console = Console()
    console.print(summary_table(dataset))
    console.print(service_area_table(dataset))
    calibration = compare_to_calibration_targets(dataset)
    if calibration is not None:
        shown = calibration if sources else calibration.drop(columns=["year", "source"], errors="ignore")
        console.print(frame_table(shown, "Base rates vs calibration targets (shared/CALIBRATION.md)"))
        misses = int((~calibration["ok"].astype(bool)).sum())
        if misses:
            console.print(f"[yellow]{misses} base rate(s) outside the stated tolerance[/yellow]")
    console.print(f"[green]OK[/green]: {directory} keeps the data contracts")


def compare_to_calibration_targets(dataset: "Dataset") -> "pd.DataFrame | None":
    """HOOK for the simulator: base rates vs shared/CALIBRATION.md targets.

    Calls synthetic.calibration.compare_to_targets(dataset) when that module exists; it returns
    a DataFrame with quantity, target, measured, tolerance, ok. Until then this part is skipped.
    """
    try:
        from synthetic.calibration import compare_to_targets  # type: ignore[import-not-found]
    except ImportError:
        return None
    return compare_to_targets(dataset)


def summary_table(dataset: "Dataset"):
    from rich.table import Table

    events = dataset.events
    table = Table(title="Dataset", show_header=False)
    table.add_row("name", str(dataset.metadata.get("name", "")))
    table.add_row("source", str(dataset.metadata.get("source", "")))
    table.add_row("events", f"{len(events):,}")
    table.add_row("customers", f"{len(dataset.customers):,}")
    table.add_row("customers with events", f"{events['subject_id'].nunique():,}")
    if len(events):
        table.add_row("event dates", f"{events['time'].min():%Y-%m-%d} .. {events['time'].max():%Y-%m-%d}")
    table.add_row("extract", f"{dataset.extract_start:%Y-%m-%d} .. {dataset.extract_end:%Y-%m-%d}")
    return table


def service_area_table(dataset: "Dataset"):
    from rich.table import Table

    events = dataset.events
    counts = events.groupby("service_area", observed=True).agg(
        events=("code", "size"), customers=("subject_id", "nunique"), cost_eur=("cost_eur", "sum")
    )
    table = Table(title="Events per service area")
    for name in ("service area", "events", "customers", "cost (EUR)"):
        table.add_column(name, justify="left" if name == "service area" else "right")
    for row in counts.sort_values("events", ascending=False).itertuples():
        table.add_row(str(row.Index), f"{row.events:,}", f"{row.customers:,}", f"{row.cost_eur:,.0f}")
    return table


def frame_table(frame: "pd.DataFrame", title: str):
    from rich.table import Table

    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column))
    for row in frame.itertuples(index=False):
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
    return table


@meds_app.command("export")
def meds_export(
    directory: Path = typer.Argument(..., help="Dataset folder to export."),
    out: Path = typer.Argument(..., help="New (or empty) folder for the MEDS dataset."),
) -> None:
    """Write a dataset folder as a MEDS dataset (data/, metadata/)."""
    from data_contracts.io import read_dataset
    from data_contracts.meds_format import export_meds

    dataset = read_dataset(directory)
    export_meds(dataset, out)
    typer.echo(f"exported {len(dataset.events):,} events of {len(dataset.customers):,} customers to {out}")


@meds_app.command("import")
def meds_import(
    source: Path = typer.Argument(..., help="MEDS dataset folder."),
    out: Path = typer.Argument(..., help="New (or empty) folder for the dataset."),
) -> None:
    """Read a MEDS dataset, validate it and write it as a dataset folder."""
    from data_contracts.io import write_dataset
    from data_contracts.meds_format import import_meds

    dataset = import_meds(source)
    write_dataset(dataset, out, validate=False)  # import_meds has just validated it
    typer.echo(f"imported {len(dataset.events):,} events of {len(dataset.customers):,} customers to {out}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.command("validate")(validate)
    app.add_typer(meds_app, name="meds")
