"""CLI commands for the features area (registered on the main app by sote_risk.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from sote_risk.spark_options import master_option

features_app = typer.Typer(no_args_is_help=True, help="Build feature tables and describe the feature catalogue.")


@features_app.command("build")
def build(
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset folder (default: the home folder's data)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: the home folder's features)."),
    segment: Optional[list[str]] = typer.Option(None, "--segment", help="Only these segments (repeatable)."),
    warmup_days: int = typer.Option(365, "--warmup-days", min=0, help="First index date at least this long after the extract start."),
    workers: int = typer.Option(2, "--workers", min=1, help="Threads for the feature computation."),
    validate: bool = typer.Option(True, "--validate/--no-validate", help="Validate the dataset against the contracts first."),
    engine: str = typer.Option("pandas", "--engine", help="pandas (one region, in this process; the default) or spark "
                               "(a multi-region dataset from `simulate --regions`: every region, by customer shard, "
                               "into OUT/region=<name>/segment=<segment>/ with the same tables)."),
    master: str = master_option(),
    shard_customers: int = typer.Option(10_000, "--shard-customers", min=1, help="With --engine spark: customers a shard "
                                        "(one task; its memory grows with it)."),
    region: Optional[list[str]] = typer.Option(None, "--region", help="With --engine spark: only these regions of the "
                                               "dataset (repeatable; default every region)."),
) -> None:
    """Write OUT/<segment>.parquet (features + labels + pipeline version), OUT/labels/<task>/ (MEDS labels), OUT/labels_censored/<task>/;
    with --engine spark, OUT/region=<name>/segment=<segment>/*.parquet and OUT/features.json."""
    from base.errors import SoteRiskError
    from scaleout.layout import is_multi_region

    if engine not in ("pandas", "spark"):
        raise SoteRiskError(f"--engine must be pandas or spark, not {engine!r}")
    if engine == "spark":
        _build_on_spark(data, out, segment, warmup_days=warmup_days, validate=validate, master=master,
                        shard_customers=shard_customers, regions=region)
        return
    if region:
        raise SoteRiskError("--region chooses regions of a multi-region dataset: it needs --engine spark")
    if data is not None and is_multi_region(data):
        raise SoteRiskError(f"{data} is a multi-region dataset (regions.json): build its features with --engine spark, "
                            f"or pass one region's folder ({data}/region=<name>) to the pandas engine")
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from features import io
    from features.build import build_tables
    from features.spec import segment_names, segment_outcomes
    from base.settings import home

    data = data or home().data
    out = out or home().features
    console = Console(stderr=True)
    segments = list(segment) if segment else list(segment_names())
    for name in segments:
        segment_outcomes(name)  # an unknown segment fails before any reading
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(f"reading {data}", total=3 + 2 * len(segments))
        loaded = io.load(data, validate=validate)
        progress.update(task, advance=1, description="cohorts")

        def tick(what: str, n: int) -> None:
            progress.update(task, advance=n, description=what)

        tables = build_tables(loaded.history, loaded.extract_start, loaded.extract_end, segments=segments,
                              warmup_days=warmup_days, workers=workers, progress=tick)
        source = {"data": str(data), "name": loaded.metadata.get("name"), "extract_start": str(loaded.extract_start),
                  "extract_end": str(loaded.extract_end), "warmup_days": warmup_days}
        manifest = io.write_tables(out, tables, source=source, code_months=loaded.code_months)
        progress.update(task, advance=1, description="written")
    for name, info in manifest["segments"].items():
        console.print(f"{name}: {info['rows']:,} rows, {info['customers']:,} customers -> {out / (name + '.parquet')}")
    console.print(f"pipeline version {manifest['pipeline_version'][:16]}")


def _build_on_spark(data: Optional[Path], out: Optional[Path], segment: Optional[list[str]], *, warmup_days: int,
                    validate: bool, master: str, shard_customers: int, regions: Optional[list[str]]) -> None:
    """`features build --engine spark` (scaleout/features.py)."""
    import time

    from rich.console import Console

    from base.atomic import check_output
    from base.errors import SoteRiskError
    from base.settings import home
    from features.spec import segment_names, segment_outcomes
    from scaleout.features import build_features
    from scaleout.layout import is_multi_region, read_dataset_manifest
    from scaleout.session import require_java, spark_session
    from sote_risk.spark_options import spark_settings

    data = data or home().data
    out = out or home().features
    segments = list(segment) if segment else list(segment_names())
    for name in segments:
        segment_outcomes(name)
    if not is_multi_region(data):
        raise SoteRiskError(f"{data}: --engine spark reads a multi-region dataset (regions.json and region=<name>/ folders, "
                            f"as `sote-risk simulate --regions N` writes); for one region's folder use --engine pandas")
    dataset = read_dataset_manifest(data)
    dataset.folders(regions)  # an unknown region names the known ones, before Spark starts
    require_java()
    check_output(out, overwrite=True)
    console = Console(stderr=True)
    console.print(f"features of {len(regions or dataset.names)} region(s) on Spark ({master})...")
    started = time.monotonic()
    with spark_session(spark_settings(master)) as spark:
        manifest = build_features(spark, data, out, segments=segments, warmup_days=warmup_days,
                                  regions=regions, shard_customers=shard_customers, validate=validate)
    for name, per_region in manifest["segments"].items():
        rows = sum(r["rows"] for r in per_region.values())
        customers = sum(r["customers"] for r in per_region.values())
        console.print(f"{name}: {rows:,} rows, {customers:,} customers in {len(per_region)} region(s)")
    console.print(f"wrote {out}/features.json and {out}/region=<name>/segment=<segment>/")
    console.print(f"pipeline version {manifest['pipeline_version'][:16]}; {time.monotonic() - started:.0f} s")


@features_app.command("describe")
def describe(
    lang: str = typer.Option("en", "--lang", help="fi or en."),
    segment: Optional[str] = typer.Option(None, "--segment", help="Only this segment's features."),
) -> None:
    """Print the feature catalogue: name, family, unit, direction, description, template."""
    from rich.console import Console
    from rich.table import Table

    from features.catalogue import catalogue
    from features.pipeline import feature_names
    from features.version import pipeline_version
    from base.errors import SoteRiskError

    if lang not in ("fi", "en"):
        raise SoteRiskError(f"--lang must be fi or en, not {lang!r}")
    names = set(feature_names(segment)) if segment else None
    arrows = {1: "↑ +1", -1: "↓ -1", 0: "0"}
    title = f"Feature catalogue{f' ({segment})' if segment else ''} - pipeline {pipeline_version()[:12]}"
    table = Table(title=title, show_lines=False)
    for column in ("feature", "family", "unit", "dir", "description", "template"):
        table.add_column(column, overflow="fold")
    for e in catalogue():
        if names is not None and e.name not in names:
            continue
        en = lang == "en"
        table.add_row(e.name, e.family, e.unit_en if en else e.unit_fi, arrows[e.direction],
                      e.description_en if en else e.description_fi, e.template_en if en else e.template_fi)
    Console(width=200).print(table)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.add_typer(features_app, name="features")
