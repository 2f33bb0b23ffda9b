"""`sote-risk costs`: the segment cost view of a year on the command line (costs/, issue 18).

Thin: parse the options, read the dataset's histories, call costs.cost_view, print the tables,
write the CSV. Every option is checked before anything is read or written, and the CSV goes to a
temporary sibling that is renamed into place only when whole: bad input gives one line naming
the option (`error: --age '50_65': ...`) and leaves nothing behind.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

if TYPE_CHECKING:  # pragma: no cover
    from costs import CostView


def costs(
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset folder (default: the home folder's data)."),
    year: Optional[int] = typer.Option(None, "--year", help="Calendar year (default: the last whole year of the data)."),
    group: Optional[str] = typer.Option(None, "--group", help="A named group (costs/groups.yaml), e.g. heart-failure-50-65."),
    codes: Optional[str] = typer.Option(None, "--codes", help="Group: an event in the year with one of these codes (comma list; ICD10/I50 takes ICD10/I50.9)."),
    age: Optional[str] = typer.Option(None, "--age", help="Group: age at the end of the year, FROM-TO inclusive (e.g. 50-65, or 75-)."),
    segment: Optional[str] = typer.Option(None, "--segment", help="Group: in this segment at the end of any month of the year."),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Also write every figure as one long CSV table here."),
    groups: bool = typer.Option(False, "--groups", help="List the named groups and exit."),
) -> None:
    """Annual cost and service use per customer segment and service area, cost concentration, cost
    per customer-day of each model of service production, and one customer group's costs."""
    from base.errors import SoteRiskError
    from base.settings import home
    from costs import cost_view, make_group, presets, write_csv
    from scoring.history import load_history

    if groups:
        for name, found in presets().items():
            typer.echo(f"{name}: {found.describe('en')}")
        return
    chosen = make_group(group, codes, age, segment)  # CostInputError names the option
    if csv is not None:
        _check_csv(csv)
    folder = data or home().data
    if not (Path(folder) / "dataset.json").exists():
        raise SoteRiskError(f"--data {str(folder)!r}: no dataset there (no dataset.json)")
    store = load_history(Path(folder), home().cache)
    view = cost_view(store.history, store.start, store.end, year, chosen)
    _print(view)
    if csv is not None:
        write_csv(view, csv)
        typer.echo(f"wrote {csv}")


def _check_csv(path: Path) -> None:
    from base.errors import SoteRiskError

    if path.is_dir():
        raise SoteRiskError(f"--csv {str(path)!r}: is a folder; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise SoteRiskError(f"--csv {str(path)!r}: {parent} is not a folder")


def _eur(value: float) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.0f}"


def _pct(value: float) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}%"


def _print(view: "CostView") -> None:
    import pandas as pd
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from costs.words import area_label, model_label, row_label

    console = Console()
    span = f"{view.start:%Y-%m-%d} .. {(view.end - pd.Timedelta(microseconds=1)):%Y-%m-%d}"
    console.print(f"Costs of {view.year} ({span}{', part of the year' if view.partial else ''}): "
                  f"EUR {_eur(view.total_cost)} in total, the plain sum of the events' cost_eur")

    table = Table(title="Customer segments (a customer can be in several; each row is its members' whole annual cost)")
    for name in ("segment", "customers", "users", "service events", "cost (EUR)", "per customer (EUR)", "share of cost",
                 "top 1%", "top 5%", "top 10%"):
        table.add_column(name, justify="left" if name == "segment" else "right")
    for item in view.segments.itertuples():
        row = item.Index
        top = view.concentration.loc[row]["share_of_cost"]
        table.add_row(row_label(str(row), "en"), f"{item.customers:,}", f"{item.users:,}", f"{item.events:,}", _eur(item.cost_eur),
                      _eur(item.cost_per_customer), _pct(item.share_of_cost), *(_pct(top.get(p)) for p in (1, 5, 10)))
    console.print(table)

    rows = list(view.segments.index)
    table = Table(title="Cost per service area (EUR)")
    table.add_column("service area")
    for row in rows:
        table.add_column(row_label(str(row), "en"), justify="right")
    shown = view.areas.loc["all"]
    for area in shown[shown["events"] > 0].sort_values("cost_eur", ascending=False).index:
        table.add_row(area_label(area, "en"), *(_eur(view.areas.loc[(row, area), "cost_eur"]) for row in rows))
    console.print(table)

    console.print(_production_table(view.production, "Models of service production: cost per customer-day"))
    for note in view.notes:
        console.print(f"note: {note}")
    if view.production["catalogue_daily_eur"].gt(0).any():
        priced = ", ".join(model_label(m, "en") for m, v in view.production["catalogue_daily_eur"].items() if v > 0)
        console.print(f"note: {priced}: the events carry no cost for its days; the per-day figures add the catalogue's "
                      "daily price, the annual totals above do not")

    g = view.group
    if g is None:
        return
    summary = g.summary
    console.print()
    console.print(escape(f"Group: {g.group.describe('en')}" + (f" [{g.group.name}]" if g.group.name != "custom" else "")
                  + (f" (codes {', '.join(g.codes)})" if g.codes else "")))
    console.print(f"  {int(summary['customers']):,} customers, EUR {_eur(summary['cost_eur'])} "
                  f"({_pct(summary['share_of_cost'])} of the region's cost), EUR {_eur(summary['cost_per_customer'])} per customer; "
                  + ", ".join(f"top {p}%: {_pct(g.concentration.loc[p, 'share_of_cost'])}" for p in g.concentration.index))
    table = Table(title="The group's service use")
    for name in ("service area", "users", "events", "cost (EUR)", "share of the group's cost"):
        table.add_column(name, justify="left" if name == "service area" else "right")
    for area, item in g.areas.sort_values("cost_eur", ascending=False).iterrows():
        if item.events:
            table.add_row(area_label(str(area), "en"), f"{int(item.users):,}", f"{int(item.events):,}", _eur(item.cost_eur), _pct(item.share_of_cost))
    console.print(table)
    if len(g.other_diagnoses):
        console.print("  other diagnoses in the year: " + ", ".join(
            f"{code} {_pct(item.share_of_customers)}" for code, item in g.other_diagnoses.iterrows()))
    console.print(_production_table(g.production, "The group's models of service production"))


def _production_table(frame, title: str):  # noqa: ANN001, ANN202 (pandas frame -> rich table)
    from rich.table import Table

    from costs.words import model_label

    table = Table(title=title)
    for name in ("model", "customers", "customer-days", "own service (EUR/day)", "all services (EUR/day)"):
        table.add_column(name, justify="left" if name == "model" else "right")
    for model, item in frame.iterrows():
        table.add_row(model_label(str(model), "en"), f"{int(item.customers):,}", f"{item.customer_days:,.0f}",
                      _eur(item.own_cost_per_day), _eur(item.all_cost_per_day))
    return table


def register(app: typer.Typer) -> None:
    app.command("costs")(costs)
